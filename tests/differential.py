"""The differential protocol of issue 17: a function run eagerly and under ``tg.jit`` agrees.

``check_replay(f, first, second)`` calls ``jit(f)`` on ``first`` (trace and first replay), then
on ``second`` (a replay), and checks each call against ``f`` run eagerly on its own copy of the
same arguments: the same structure, dict key order, shapes and dtypes, numbers equal to 1e-12,
or the same error type and message. It also checks that the second call left the first call's
results as they were, and (``one_plan``) that it did not trace again.

A table entry is a ``Case``: the callable, a hypothesis strategy drawing one call's arguments (a
tuple, or a ``Call`` with keywords) and what to expect. ``as_case`` also takes the shorter forms
a table may use: ``(callable, strategy)``, ``(callable, generator)`` where ``generator(rng)``
returns the arguments from a numpy ``Generator``, either with a dict of ``Case`` fields; and
``tests/op_cases.py``'s ``OpCase`` (its ``fn`` on Tensors, its inputs from ``draw_inputs``).

``check_draw(case, data)`` is the protocol for one hypothesis draw of a case: a first call, and
a second call of the same signature whose eager result differs from the first's (in value or,
where the case has one, in gradient), so that a replay handing back the first call's values
fails; the value and the gradient of a weighted sum of the output are checked by one jitted
function.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from hypothesis import reject
from hypothesis import strategies as st

import tinygrad_nn as tg

TOLERANCE = 1e-12
SEEDS = st.integers(0, 2**32 - 1)  # an array's numbers come from numpy, seeded by hypothesis


class Call(NamedTuple):
    """One call's arguments, with keywords."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass(frozen=True)
class Case:
    """``fn(*args)`` on arguments drawn by ``args`` (a tuple or a ``Call`` per draw; the shapes
    and dtypes must not depend on the draw, so that two draws are two calls of one signature).

    ``grad``: True if the function has a gradient (checked with its value, in one jitted
    function), False if it is zero by design (checked too: comparisons, draws), None to check
    the value only (idioms, which compute their own gradients; functions of no float argument).
    ``one_plan``: the second call must replay the first call's plan. ``jit_options`` go to
    ``tg.jit``; a second draw whose static arguments differ from the first's is drawn again.
    """

    fn: Callable[..., Any]
    args: st.SearchStrategy[Any]
    grad: bool | None = True
    one_plan: bool = True
    jit_options: Mapping[str, Any] = field(default_factory=dict)


def tensor_of(x: Any) -> Any:
    """x as a Tensor: an array becomes a constant; a Tensor (traced, or differentiated) is kept.
    So that ``fn``'s operators and methods are the engine's when it runs eagerly too."""
    return x if isinstance(x, tg.Tensor) else tg.Tensor(x)


def on_tensors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` called with its arguments as Tensors (``tensor_of``)."""

    def called_on_tensors(*args: Any) -> Any:
        return fn(*map(tensor_of, args))

    called_on_tensors.__name__ = getattr(fn, "__name__", "fn")
    return called_on_tensors


def as_case(entry: Any) -> Case:
    """A ``Case`` from any of the forms a table may hold (see the module docstring), and from
    ``tests/op_cases.py``'s ``OpCase``: ``fn`` on Tensors, ``draw_inputs(rng)``, ``grad``."""
    if isinstance(entry, Case):
        return entry
    if callable(getattr(entry, "draw_inputs", None)) and callable(getattr(entry, "fn", None)):
        drawn = SEEDS.map(lambda seed: tuple(entry.draw_inputs(np.random.default_rng(seed))))
        return Case(on_tensors(entry.fn), drawn, grad=bool(getattr(entry, "grad", True)))
    if isinstance(entry, tuple) and len(entry) in (2, 3) and callable(entry[0]):
        fn, inputs, options = entry[0], entry[1], entry[2] if len(entry) == 3 else {}
        if not isinstance(inputs, st.SearchStrategy):  # a generator of one call's arguments
            generator = inputs
            inputs = SEEDS.map(lambda seed: generator(np.random.default_rng(seed)))
        return Case(fn, inputs, **options)
    raise TypeError(f"a table entry is a Case, an OpCase, (callable, strategy or generator) or "
                    f"that with a dict of Case fields; got {entry!r}")


# --- strategies: fixed shapes, small finite values ----------------------------------------------
# An array is drawn as one seed (which also picks its pattern), its numbers made by numpy: one
# choice per array, not one per element (hypothesis's cost per choice dominates these cases).
PATTERNS = ("uniform", "ties", "uniform", "edges")


def _numbers(seed: int, patterns: tuple[str, ...], shape: tuple[int, ...], low: float,
             high: float, dtype: Any) -> np.ndarray:
    """Floats in [low, high]: uniform; or ties (a few values, repeated); or a grid of -1, 0 and 1
    (ties across arrays too); or uniform with some entries at the bounds and at 0."""
    rng, pattern = np.random.default_rng(seed), patterns[seed % len(patterns)]
    values = rng.uniform(low, high, shape)
    if pattern == "grid":
        values = rng.choice([v for v in (-1.0, 0.0, 1.0) if low <= v <= high], shape)
    elif pattern == "ties":
        values = rng.choice(np.unique(np.round(rng.uniform(low, high, 3))).clip(low, high), shape)
    elif pattern == "edges":
        special = [v for v in (low, high, 0.0) if low <= v <= high]
        values = np.where(rng.random(shape) < 0.4, rng.choice(special, shape), values)
    return np.asarray(values, dtype)


def arrays(*shape: int, low: float = -3.0, high: float = 3.0, dtype: Any = np.float64,
           patterns: tuple[str, ...] = PATTERNS) -> st.SearchStrategy[np.ndarray]:
    """Float arrays of ``shape`` with values in [low, high]."""
    return st.builds(_numbers, SEEDS, st.just(patterns), st.just(shape), st.just(low),
                     st.just(high), st.just(dtype))


def tied(*shape: int) -> st.SearchStrategy[np.ndarray]:
    """Float arrays that often hold ties, within one array and across arrays: for max,
    maximum, relu, clip and the comparisons."""
    return arrays(*shape, low=-2.0, high=2.0, patterns=("grid", "ties", "grid", "uniform"))


def _integers(seed: int, shape: tuple[int, ...], low: int, high: int, dtype: Any) -> np.ndarray:
    return np.random.default_rng(seed).integers(low, high, shape, dtype, endpoint=True)


def integers(*shape: int, low: int, high: int) -> st.SearchStrategy[np.ndarray]:
    """int64 arrays of ``shape`` with values in [low, high]."""
    return st.builds(_integers, SEEDS, st.just(shape), st.just(low), st.just(high),
                     st.just(np.int64))


def booleans(*shape: int) -> st.SearchStrategy[np.ndarray]:
    return integers(*shape, low=0, high=1).map(lambda bits: bits.astype(bool))


def keys() -> st.SearchStrategy[np.ndarray]:
    """A ``tg.random`` key: 4 uint32 words."""
    return st.builds(_integers, SEEDS, st.just((4,)), st.just(0), st.just(2**32 - 1),
                     st.just(np.uint32))


def number(low: float = -3.0, high: float = 3.0) -> st.SearchStrategy[float]:
    """A Python float: a traced, weakly typed input of a jitted function."""
    return st.floats(low, high, allow_subnormal=False)


def whole(low: int, high: int) -> st.SearchStrategy[int]:
    """A Python int: a traced, weakly typed input of a jitted function."""
    return st.integers(low, high)


def calls(*arguments: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.tuples(*arguments)


# --- the arguments of a call ----------------------------------------------------------------------
def as_call(drawn: Any) -> Call:
    """A drawn call: a ``Call``, or a tuple (or list) of positional arguments."""
    if isinstance(drawn, Call):
        return drawn
    if type(drawn) in (tuple, list):
        return Call(tuple(drawn), {})
    raise TypeError(f"a call's arguments are a tuple or a Call, got {type(drawn).__name__}")


def _copied(tree: Any) -> Any:
    """``tree`` with every numpy array copied (a jitted call may overwrite donated ones)."""
    if isinstance(tree, np.ndarray):
        return tree.copy()
    if isinstance(tree, dict):
        return _dict_like(tree, {key: _copied(value) for key, value in tree.items()})
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*map(_copied, tree))
    if isinstance(tree, (list, tuple)):
        return type(tree)(map(_copied, tree))
    return tree


def _dict_like(tree: dict[Any, Any], items: dict[Any, Any]) -> dict[Any, Any]:
    """A dict of ``tree``'s type (a defaultdict keeps its factory) holding ``items``."""
    result = copy.copy(tree)
    result.clear()
    result.update(items)
    return result


def _traced(leaf: Any) -> bool:
    """What ``tg.jit`` traces: arrays, numpy numbers, Python ints and floats (not bools)."""
    return isinstance(leaf, (np.ndarray, np.number, tg.Tensor)) or type(leaf) in (int, float)


def _leaves(tree: Any, path: str = "") -> list[tuple[str, Any]]:
    """(path, leaf) pairs, containers' types and dict keys in order as leaves of their own."""
    if isinstance(tree, dict):
        return [(path, ("dict", type(tree), tuple(tree)))] + [
            pair for key, value in tree.items() for pair in _leaves(value, f"{path}[{key!r}]")]
    if isinstance(tree, (list, tuple)):
        return [(path, ("sequence", type(tree), len(tree)))] + [
            pair for i, value in enumerate(tree) for pair in _leaves(value, f"{path}[{i}]")]
    return [(path, tree)]


def _is_marker(leaf: Any) -> bool:
    """A container's entry in ``_leaves``: its type and keys, or its type and length."""
    return isinstance(leaf, tuple) and len(leaf) == 3 and leaf[0] in ("dict", "sequence")


def _static_key(leaf: Any) -> Any:
    """Equal for the values ``tg.jit`` may give one plan: of one type, floats by repr."""
    return (type(leaf), repr(leaf) if isinstance(leaf, float) else leaf)


def _leaf_key(leaf: Any, static: bool) -> Any:
    """What two calls of one plan share of a leaf: its shape and dtype if traced (its type for
    a Python number), else its value."""
    if _is_marker(leaf):
        return leaf
    if not static and isinstance(leaf, (np.ndarray, np.number, tg.Tensor)):
        return np.shape(leaf), leaf.dtype
    if not static and _traced(leaf):
        return type(leaf)
    return _static_key(leaf)


def _named(call: Call) -> list[tuple[Any, Any]]:
    """(position or keyword, argument) pairs, keywords sorted."""
    return [*enumerate(call.args), *sorted(call.kwargs.items())]


def _signature(call: Call, static: set[Any]) -> list[Any]:
    """What must be equal in two calls of one plan: structure, shapes and dtypes of the traced
    leaves, the values of the other leaves and of static arguments."""
    return [(name, path, _leaf_key(leaf, name in static))
            for name, argument in _named(call) for path, leaf in _leaves(argument)]


def _changed(call: Call, other: Call, static: set[Any]) -> bool:
    """Some traced leaf of ``call`` differs from ``other``'s."""
    return any(name not in static and _traced(leaf) and not np.array_equal(leaf, before)
               for (name, argument), (_, old) in zip(_named(call), _named(other))
               for (_, leaf), (_, before) in zip(_leaves(argument), _leaves(old)))


def static_of(jit_options: Mapping[str, Any]) -> set[Any]:
    """The positions and names of static arguments in ``jit_options``."""
    numbers = jit_options.get("static_argnums", ())
    names = jit_options.get("static_argnames", ())
    return {*((numbers,) if isinstance(numbers, int) else numbers),
            *((names,) if isinstance(names, str) else names)}


# --- results --------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What a call gave: ``value`` (a snapshot, Tensors as arrays) and ``raw`` (the objects
    themselves), or ``error`` (its type and message)."""

    value: Any = None
    raw: Any = None
    error: tuple[type[BaseException], str] | None = None


def numbers_of(tree: Any) -> Any:
    """A copy of ``tree`` with Tensors as numpy arrays and every array copied."""
    if isinstance(tree, tg.Tensor):
        return np.array(tree.data)
    if isinstance(tree, np.ndarray):
        return tree.copy()
    if isinstance(tree, dict):
        return _dict_like(tree, {key: numbers_of(value) for key, value in tree.items()})
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*map(numbers_of, tree))
    if isinstance(tree, (list, tuple)):
        return type(tree)(map(numbers_of, tree))
    return copy.copy(tree)


def outcome(f: Callable[..., Any], drawn: Any) -> Outcome:
    """``f`` called on a copy of the drawn arguments."""
    call = as_call(drawn)
    args, kwargs = _copied(call.args), _copied(call.kwargs)
    try:
        with np.errstate(all="ignore"):  # NaN and inf are compared as numbers, both ways
            raw = f(*args, **kwargs)
    except Exception as error:  # the protocol compares errors too
        return Outcome(error=(type(error), str(error)))
    return Outcome(numbers_of(raw), raw)


def _describe(leaf: Any) -> str:
    """A leaf or a container's entry in ``_leaves``, as a message names it."""
    if _is_marker(leaf):
        kind, container, keys = leaf
        return f"a {container.__name__} of keys {list(keys)}" if kind == "dict" else \
            f"a {container.__name__} of {keys} items"
    if leaf is None:
        return "None"
    return f"{np.asarray(leaf).dtype}{list(np.shape(leaf))} ({type(leaf).__name__})"


def assert_same(got: Any, expected: Any, where: str) -> None:
    """``got`` (a jitted call's result) is ``expected`` (eager's snapshot) to 1e-12: the same
    containers and dict key order, shapes and dtypes."""
    __tracebackhide__ = True  # the message says where
    got_leaves, expected_leaves = _leaves(got), _leaves(expected)
    for (path, g), (_, e) in zip(got_leaves, expected_leaves):
        label = f"{where}{path}"
        if _is_marker(g) or _is_marker(e) or g is None or e is None:
            same = _is_marker(g) == _is_marker(e) and (g == e if _is_marker(e) else g is e)
            assert same, f"{label}: {_describe(g)} but eager gave {_describe(e)}"
            continue
        g_array, e_array = np.asarray(g), np.asarray(e)
        assert (g_array.shape, g_array.dtype) == (e_array.shape, e_array.dtype), (
            f"{label}: {g_array.dtype}{list(g_array.shape)} but eager gave "
            f"{e_array.dtype}{list(e_array.shape)}")
        if e_array.dtype.kind in "fc":
            if not np.allclose(g_array, e_array, rtol=TOLERANCE, atol=TOLERANCE,
                               equal_nan=True):  # numpy's message only when it fails: slow
                np.testing.assert_allclose(g_array, e_array, rtol=TOLERANCE, atol=TOLERANCE,
                                           equal_nan=True, err_msg=label)
        elif not np.array_equal(g_array, e_array):
            np.testing.assert_array_equal(g_array, e_array, err_msg=label)
    assert len(got_leaves) == len(expected_leaves), f"{where}: structure differs from eager's"


def assert_outcome(got: Outcome, expected: Outcome, where: str) -> None:
    """Equal results, or the same error type and message."""
    __tracebackhide__ = True  # the message says where
    if expected.error is not None:
        kind, message = expected.error
        assert got.error is not None, f"{where}: eager raised {kind.__name__}({message!r}), the " \
                                      f"jitted call returned {got.value!r}"
        assert got.error == expected.error, f"{where}: {got.error[0].__name__}" \
            f"({got.error[1]!r}) but eager raised {kind.__name__}({message!r})"
        return
    assert got.error is None, f"{where}: raised {got.error[0].__name__}({got.error[1]!r}), " \
                              "eager did not"
    assert_same(got.value, expected.value, where)


def differ(first: Outcome, second: Outcome, part: int | None = None) -> bool:
    """Two eager outcomes that a stale replay could not both match (compared in ``part`` of
    their values only, when given)."""
    if first.error is None and second.error is None and part is not None:
        first, second = Outcome(first.value[part]), Outcome(second.value[part])
    if first.error is not None or second.error is not None:
        return first.error != second.error
    first_leaves, second_leaves = _leaves(first.value), _leaves(second.value)
    return len(first_leaves) != len(second_leaves) or any(
        _leaf_differs(a, b) for (_, a), (_, b) in zip(first_leaves, second_leaves))


def _leaf_differs(a: Any, b: Any) -> bool:
    """Two leaves (or containers' entries) of ``_leaves`` that are not the same."""
    if a is None or b is None:
        return a is not b
    if _is_marker(a) or _is_marker(b):
        return not (_is_marker(a) and _is_marker(b) and a == b)
    a, b = np.asarray(a), np.asarray(b)
    return not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc" and b.dtype.kind in "fc")


def check_replay(f: Callable[..., Any], first: Any, second: Any, *, one_plan: bool = True,
                 make_jit: Callable[..., Any] = tg.jit, label: str = "",
                 expected: tuple[Outcome, Outcome] | None = None,
                 **jit_options: Any) -> tuple[Outcome, Outcome]:
    """The protocol: ``jit(f)`` on ``first``, then on ``second`` (tuples of positional
    arguments, or ``Call``s), each equal to ``f`` run eagerly on the same arguments (``expected``,
    when the caller ran them already). Returns the two eager outcomes (``differ`` tells whether a
    stale replay would have been caught). ``label`` starts each message."""
    __tracebackhide__ = True  # the message says where
    where = f"{label}: " if label else ""
    expected = expected or (outcome(f, first), outcome(f, second))
    jitted = make_jit(f, **jit_options)
    traced = outcome(jitted, first)
    assert_outcome(traced, expected[0], f"{where}the first (tracing) call: result")
    replayed = outcome(jitted, second)
    assert_outcome(replayed, expected[1], f"{where}the second call (a replay): result")
    if traced.error is None:
        assert_same(numbers_of(traced.raw), traced.value,
                    f"{where}the first call's result, after the second call: result")
    if one_plan and traced.error is None and replayed.error is None:
        assert len(jitted.plans) == 1, \
            f"{where}the second call traced again ({len(jitted.plans)} plans)"
    return expected[0], expected[1]


def float_positions(call: Call) -> tuple[int, ...]:
    """The positional arguments that are float arrays: the ones a gradient case differentiates."""
    return tuple(p for p, a in enumerate(call.args)
                 if isinstance(a, np.ndarray) and a.dtype.kind == "f")


def value_and_gradient(fn: Callable[..., Any], argnums: tuple[int, ...]) -> Callable[..., Any]:
    """``(*args, weights) -> (fn(*args), gradient of Σ_k Σ out_k · weights[k])`` over the leaves
    ``out_k`` of fn's result: one function, so that one trace checks an op's value and its
    gradient; the gradient is of the arguments at ``argnums``."""

    def weighted_sum(*args_and_weights: Any) -> Any:
        *args, weights = args_and_weights
        total: Any = 0.0
        for out, weight in zip(tg.tree_flatten(fn(*args))[0], weights, strict=True):
            total = total + tg.sum(tg.mul(out, weight))
        return total

    def both(*args_and_weights: Any) -> Any:
        gradient = tg.grad(weighted_sum, argnums=argnums)(*args_and_weights)
        return fn(*args_and_weights[:-1]), gradient

    both.__name__ = f"value_and_gradient_of_{getattr(fn, '__name__', 'fn')}"
    return both


def output_shapes(fn: Callable[..., Any], call: Call) -> list[tuple[int, ...]] | None:
    """The shapes of the leaves of ``fn``'s result on ``call`` run eagerly; None if it raises
    (the protocol compares the error) or gives no leaf."""
    try:
        leaves = tg.tree_flatten(numbers_of(fn(*_copied(call.args))))[0]
    except Exception:  # the protocol compares the error
        return None
    return [np.shape(leaf) for leaf in leaves] or None


def _with_weights(call: Call, seed: int, shapes: list[tuple[int, ...]]) -> Call:
    """``call`` with the cotangent weights of its output's leaves appended (a list)."""
    weights = [_numbers(seed + k, ("uniform",), shape, -3.0, 3.0, np.float64)
               for k, shape in enumerate(shapes)]
    return Call((*call.args, weights), call.kwargs)


ATTEMPTS = 12  # second draws tried before a case is said unable to tell its calls apart


def _second_draw(case: Case, data: st.DataObject, first: Call, static: set[Any]) -> Call:
    """A call of ``first``'s signature with some traced leaf changed."""
    signature = _signature(first, static)
    for _ in range(2):
        second = as_call(data.draw(case.args, label="second call"))
        if _signature(second, static) == signature and _changed(second, first, static):
            return second
    reject()  # hypothesis's all-zero example: every draw is the first one


def check_draw(case: Case, data: st.DataObject, make_jit: Callable[..., Any] = tg.jit) -> None:
    """The protocol on one draw of ``case`` (see the module docstring)."""
    __tracebackhide__ = True  # the message says where
    static = static_of(case.jit_options)
    drawn = as_call(data.draw(case.args, label="first call"))
    candidate = _second_draw(case, data, drawn, static)
    shapes = output_shapes(case.fn, drawn) if case.grad is not None else None
    f: Callable[..., Any] = case.fn
    parts: list[int | None] = [None]  # the parts of the result the second call may change
    first = drawn
    if shapes is not None:  # the gradient too: with respect to the float arrays
        f = value_and_gradient(case.fn, float_positions(drawn))
        parts = [0, 1] if case.grad else [0]
        first = _with_weights(drawn, data.draw(SEEDS, label="first weights"), shapes)
    expected_first = outcome(f, first)
    for _ in range(ATTEMPTS):
        second = candidate
        if shapes is not None:
            second = _with_weights(candidate, data.draw(SEEDS, label="second weights"), shapes)
        expected_second = outcome(f, second)
        if any(differ(expected_first, expected_second, part) for part in parts):
            break
        candidate = _second_draw(case, data, drawn, static)
    else:  # a case whose second call never changes its result: a stale replay would pass
        raise AssertionError(f"no second draw in {ATTEMPTS} had eager results different from "
                             "the first's: a replay keeping the first call's values would pass "
                             "unseen (draw other values, or say grad=False)")
    check_replay(f, first, second, one_plan=case.one_plan, make_jit=make_jit,
                 label="(value, gradient)" if shapes is not None else "value",
                 expected=(expected_first, expected_second), **case.jit_options)


__all__ = [
    "SEEDS", "TOLERANCE", "Call", "Case", "Outcome", "arrays", "as_call", "as_case",
    "assert_same", "booleans", "calls", "check_draw", "check_replay", "differ",
    "float_positions", "integers", "keys", "number", "numbers_of", "on_tensors", "output_shapes",
    "static_of", "tensor_of", "tied", "value_and_gradient", "whole",
]
