"""Issue 17: every public op and a catalogue of idioms, run eagerly and under ``tg.jit`` on two
draws of arguments of one signature, agree to 1e-12 (or raise the same error).

The protocol is ``differential.check_draw``: ``jit(f)`` traces on a first draw and replays on a
second whose eager result differs, each call equal to ``f`` run eagerly on the same arguments,
the first result untouched by the second call, one plan. An op is checked for its value and for
the gradient of a weighted sum of its output, in one jitted function; one test per public op
runs its cases, this file's ``OPS`` and the shared table ``tests/op_cases.py``'s alike. Then
the idioms, the test of the test (a stale replay is caught), the side doors that must raise
``TracedValueError``, random straight-line programs for the planner, and the findings: each
was a wrong number or a crash with no error (its test says where it was), now held right.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import math
from collections import defaultdict, namedtuple
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from differential import (
    Call,
    Case,
    arrays,
    as_case,
    assert_same,
    booleans,
    calls,
    check_draw,
    check_replay,
    differ,
    integers,
    keys,
    number,
    numbers_of,
    tensor_of,
    tied,
    whole,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import tinygrad_nn as tg
from tinygrad_nn import nn, ops
from tinygrad_nn.jit import Plan

# One draw per case and run (each draw is two calls whose eager results differ, so each can catch
# a stale replay; every run draws anew), tiny shapes, no shrinking (a failing draw is small
# already; shrinking a training step would take minutes): the whole file runs in seconds.
FAST = settings(max_examples=1, deadline=None, database=None, phases=[Phase.generate],
                suppress_health_check=list(HealthCheck))

positive = arrays(2, 3, low=0.1, high=3.0)


# --- the ops --------------------------------------------------------------------------------------
flip = tg.Primitive("flip", lambda x: np.flip(x), (lambda g, out, x: flip(g),), "flipped")
same = tg.Primitive("same", lambda x: x, (lambda g, out, x: g,), "its input")



OPS: dict[str, Case] = {
    # elementwise
    "neg": Case(tg.neg, calls(arrays(2, 3))),
    "abs": Case(tg.abs, calls(tied(2, 3))),
    "exp": Case(tg.exp, calls(arrays(2, 3))),
    "log": Case(tg.log, calls(positive)),
    "sqrt": Case(tg.sqrt, calls(positive)),
    "sign": Case(tg.sign, calls(arrays(2, 3)), grad=False),
    "relu": Case(tg.relu, calls(tied(2, 3))),
    "sigmoid": Case(tg.sigmoid, calls(arrays(2, 3, low=-40.0, high=40.0))),
    "sigmoid[float32]": Case(tg.sigmoid, calls(arrays(3, dtype=np.float32))),
    "tanh": Case(tg.tanh, calls(arrays(2, 3))),
    "softplus": Case(tg.softplus, calls(arrays(2, 3, low=-40.0, high=40.0))),
    "log_sigmoid": Case(tg.log_sigmoid, calls(arrays(2, 3, low=-40.0, high=40.0))),
    "clip": Case(lambda x: tg.clip(x, -1.0, 1.0), calls(tied(2, 3))),
    "clip[one bound]": Case(lambda x: tg.clip(x, None, 0.5), calls(arrays(2, 3))),
    "stop_gradient": Case(tg.stop_gradient, calls(arrays(2, 3)), grad=False),
    "astype": Case(lambda x: tg.astype(x, np.float32), calls(arrays(2, 3))),
    "astype[int64]": Case(lambda x: tg.astype(x, np.int64), calls(arrays(2, 3)), grad=False),
    # two inputs, broadcast
    "add": Case(tg.add, calls(arrays(2, 3), arrays(3))),
    "add[a python float]": Case(tg.add, calls(arrays(2, 3, dtype=np.float32), number())),
    "add[ints and a python int]": Case(tg.add, calls(integers(3, low=-5, high=5), whole(-9, 9)),
                                       grad=None),
    "sub": Case(tg.sub, calls(arrays(2, 1), arrays(1, 3))),
    "mul": Case(tg.mul, calls(arrays(2, 3, dtype=np.float32), arrays(3, dtype=np.float32))),
    "mul[float32 by a python float]": Case(tg.mul, calls(arrays(3, dtype=np.float32), number())),
    "div": Case(tg.div, calls(arrays(2, 3), arrays(3, low=0.5, high=3.0))),
    "power": Case(tg.power, calls(positive, arrays(2, 3, low=-2.0, high=2.0))),
    "power[a python int exponent]": Case(tg.power, calls(arrays(3), whole(0, 3))),
    "maximum": Case(tg.maximum, calls(tied(2, 3), tied(3))),
    "minimum": Case(tg.minimum, calls(tied(2, 3), tied(2, 1))),
    "matmul": Case(tg.matmul, calls(arrays(2, 3), arrays(3, 4))),
    "matmul[vector @ matrix]": Case(tg.matmul, calls(arrays(3), arrays(3, 2))),
    "matmul[matrix @ vector]": Case(tg.matmul, calls(arrays(2, 3), arrays(3))),
    "matmul[vector @ vector]": Case(tg.matmul, calls(arrays(3), arrays(3))),
    "matmul[batched]": Case(tg.matmul, calls(arrays(2, 2, 3), arrays(3, 2))),
    "where": Case(tg.where, calls(booleans(2, 3), arrays(2, 3), arrays(3))),
    "where[a traced condition]": Case(lambda x, y: tg.where(x > y, x, y * 0.5),
                                      calls(arrays(2, 3), arrays(3))),
    "less": Case(tg.less, calls(tied(2, 3), tied(3)), grad=False),
    "less_equal": Case(tg.less_equal, calls(tied(2, 3), tied(3)), grad=False),
    "greater": Case(tg.greater, calls(tied(2, 3), tied(3)), grad=False),
    "greater_equal": Case(tg.greater_equal, calls(tied(2, 3), tied(3)), grad=False),
    "equal": Case(tg.equal, calls(tied(2, 3), tied(3)), grad=False),
    "not_equal": Case(tg.not_equal, calls(tied(2, 3), tied(3)), grad=False),
    # reductions
    "sum": Case(tg.sum, calls(arrays(2, 3))),
    "sum[axis 1, kept]": Case(lambda x: tg.sum(x, 1, keepdims=True), calls(arrays(2, 3))),
    "mean": Case(tg.mean, calls(arrays(2, 3))),
    "mean[axes (0, 2)]": Case(lambda x: tg.mean(x, (0, 2)), calls(arrays(2, 3, 2))),
    "max": Case(tg.max, calls(tied(2, 3))),
    "max[axis -1, kept]": Case(lambda x: tg.max(x, -1, keepdims=True), calls(tied(2, 3))),
    "argmax": Case(tg.argmax, calls(arrays(3, 2)), grad=False),
    "argmax[flattened]": Case(lambda x: tg.argmax(x, None), calls(arrays(3, 2)), grad=False),
    "logsumexp": Case(tg.logsumexp, calls(arrays(3, 2, low=-500.0, high=500.0))),
    "logsumexp[axis 1]": Case(lambda x: tg.logsumexp(x, 1), calls(arrays(3, 2))),
    "softmax": Case(tg.softmax, calls(arrays(3, 2))),
    "log_softmax": Case(lambda x: tg.log_softmax(x, axis=1), calls(arrays(3, 2))),
    "logsumexp[where]": Case(lambda x, m: tg.where(tg.astype(m, float).sum(1) > 0,
                                                   tg.logsumexp(x, 1, where=m), 0.0),
                             calls(arrays(3, 2), booleans(3, 2))),
    "softmax[where]": Case(lambda x, m: tg.softmax(x, axis=1, where=m),
                           calls(arrays(3, 2), booleans(3, 2))),
    "softmax[a traced mask]": Case(lambda x, y: tg.softmax(x, where=x > y),
                                   calls(arrays(3, 2), arrays(2))),
    "log_softmax[where]": Case(lambda x, m: tg.where(m, tg.log_softmax(x, where=m), 0.0),
                               calls(arrays(3, 2), booleans(3, 2))),
    "var": Case(tg.var, calls(arrays(2, 3))),
    "std": Case(lambda x: tg.std(x, 1, keepdims=True), calls(arrays(2, 3))),
    # shapes
    "reshape": Case(lambda x: tg.reshape(x, 3, 2), calls(arrays(2, 3))),
    "flatten": Case(tg.flatten, calls(arrays(2, 3))),
    "transpose": Case(tg.transpose, calls(arrays(2, 3))),
    "transpose[axes]": Case(lambda x: tg.transpose(x, 2, 0, 1), calls(arrays(2, 3, 2))),
    "swapaxes": Case(lambda x: tg.swapaxes(x, 0, 2), calls(arrays(2, 3, 2))),
    "broadcast_to": Case(lambda x: tg.broadcast_to(x, (2, 3)), calls(arrays(3))),
    "concatenate": Case(lambda x, y: tg.concatenate([x, y], axis=1),
                        calls(arrays(2, 3), arrays(2, 1))),
    "stack": Case(lambda x, y, z: tg.stack([x, y, z], axis=1),
                  calls(arrays(2), arrays(2), arrays(2))),
    # indexing
    "getitem[slices]": Case(lambda x: tensor_of(x)[1:, ::-1], calls(arrays(3, 2))),
    "getitem[an int]": Case(lambda x: tensor_of(x)[-1], calls(arrays(3, 2))),
    "getitem[None and Ellipsis]": Case(lambda x: tensor_of(x)[None, ..., 0],
                                       calls(arrays(3, 2))),
    "getitem[an integer array]": Case(lambda x: tensor_of(x)[np.array([0, 2, 0])],
                                      calls(arrays(3, 2))),
    "getitem[a boolean mask]": Case(lambda x: tensor_of(x)[np.array([True, False, True])],
                                    calls(arrays(3, 2))),
    "getitem[a traced integer array]": Case(lambda x, i: tensor_of(x)[i],
                                            calls(arrays(3, 2), integers(4, low=-3, high=2))),
    "getitem[traced rows and columns]": Case(
        lambda x, rows, columns: tensor_of(x)[rows, columns],
        calls(arrays(3, 4), integers(4, low=0, high=2), integers(4, low=0, high=3))),
    "getitem[a traced python int]": Case(lambda x, k: tensor_of(x)[k],
                                         calls(arrays(3, 2), whole(-3, 2))),
    # random draws from a traced key
    "random.split": Case(lambda k: tg.random.split(k, 3), calls(keys()), grad=None),
    "random.normal": Case(lambda k: tg.random.normal(k, (2, 3)), calls(keys()), grad=None),
    "random.uniform": Case(lambda k: tg.random.uniform(k, 4, np.float32, -1.0, 2.0),
                           calls(keys()), grad=None),
    "random.bernoulli": Case(tg.random.bernoulli, calls(keys(), arrays(5, low=0.0, high=1.0)),
                             grad=False),
    "random.permutation": Case(lambda k: tg.random.permutation(k, 5), calls(keys()), grad=None),
    # nn's building blocks
    "nn.one_hot": Case(lambda y: nn.one_hot(y, 3), calls(integers(5, low=0, high=2)), grad=None),
    "nn.linear": Case(nn.linear, calls(arrays(3, 4), arrays(2, 3), arrays(2, 1))),
    "nn.dropout": Case(lambda k, a: nn.dropout(k, a, 0.5), calls(keys(), arrays(3, 4))),
    "nn.l2_penalty": Case(lambda w1, w2: nn.l2_penalty({"W1": w1, "W2": w2}, 0.7, 5),
                          calls(arrays(2, 3), arrays(1, 2))),
    # Tensor's operators and numpy's calls on Tensors
    "operator[2 - x]": Case(lambda x: 2.0 - tensor_of(x), calls(arrays(2, 3))),
    "operator[1 / x]": Case(lambda x: 1.0 / tensor_of(x), calls(positive)),
    "operator[2 ** x]": Case(lambda x: 2.0 ** tensor_of(x), calls(arrays(2, 3))),
    "operator[x ** 2]": Case(lambda x: tensor_of(x) ** 2, calls(arrays(2, 3))),
    "operator[x @ y]": Case(lambda x, y: tensor_of(x) @ y, calls(arrays(2, 3), arrays(3, 2))),
    "operator[-x, abs]": Case(lambda x: abs(-tensor_of(x)), calls(arrays(2, 3))),
    "operator[.T, .mT]": Case(lambda x: tensor_of(x).mT.T, calls(arrays(2, 3, 2))),
    "operator[array * x]": Case(lambda x: np.arange(3.0) * tensor_of(x), calls(arrays(2, 3))),
    "operator[np.exp(x)]": Case(lambda x: np.exp(tensor_of(x)), calls(arrays(2, 3))),
    "method[x.sum(axis=0)]": Case(lambda x: tensor_of(x).sum(axis=0), calls(arrays(2, 3))),
    # a user's primitives
    "Primitive[returns its input]": Case(same, calls(arrays(2, 3))),
    "Primitive[returns a view]": Case(flip, calls(arrays(2, 3))),
}


def shared_op_cases() -> dict[str, Any]:
    """The shared table ``tests/op_cases.py``'s ``CASES`` (a list of entries with a ``name``, or
    a dict of name -> entry), by name; empty while there is none."""
    if importlib.util.find_spec("op_cases") is None:
        return {}
    table = importlib.import_module("op_cases").CASES
    return dict(table) if isinstance(table, dict) else {entry.name: entry for entry in table}


# This file's cases and the shared table's entries (``shared:`` names), each made a Case by its
# own test (an entry of a form as_case does not know fails that test alone).
OP_CASES: dict[str, Any] = {**OPS, **{f"shared:{name}": entry
                                     for name, entry in shared_op_cases().items()}}


def op_name(case_name: str) -> str:
    """The public op a case calls: an OpCase's ``op``, else its name up to ``[``."""
    return getattr(OP_CASES[case_name], "op", None) or case_name.split("[")[0]


CASES_BY_OP: dict[str, list[str]] = {}  # one test per op runs its cases (pytest's and
for case_name in OP_CASES:  # hypothesis's cost per test is more than a case's own)
    CASES_BY_OP.setdefault(op_name(case_name), []).append(case_name)


NOT_OPS = {"CheckError", "GradCheck", "Graph", "GraphReleasedError", "Primitive", "Tensor",
           "TracedValueError", "check_grads", "course", "data", "detect_anomaly", "enable_grad",
           "export_onnx", "is_grad_enabled", "make_graph", "nn", "no_grad", "optim", "random",
           "ravel_pytree", "tree_flatten", "tree_map", "tree_unflatten", "tree_vdot",
           # the transforms: idioms below run them under jit
           "grad", "hessian", "hvp", "jacfwd", "jacobian", "jacrev", "jit", "jvp", "linearize",
           "value_and_grad", "vjp", "vmap"}


def test_every_public_op_has_a_case() -> None:
    public = {name for name in tg.__all__ if name not in NOT_OPS}
    public |= {f"random.{name}" for name in tg.random.__all__ if name not in ("key", "KEY_SHAPE")}
    covered = set(map(op_name, OP_CASES))
    assert public <= covered, f"no differential case for {sorted(public - covered)}"


# --- running a case -------------------------------------------------------------------------------
def run_case(case: Case, make_jit: Callable[..., Any] = tg.jit, checks: settings = FAST) -> None:
    """``check_draw`` on ``checks.max_examples`` draws of ``case``."""

    @checks
    @given(st.data())
    def protocol(data: st.DataObject) -> None:
        check_draw(case, data, make_jit)

    protocol()


@pytest.mark.parametrize("op", list(CASES_BY_OP))
@FAST
@given(data=st.data())
def test_an_op_replays_like_eager(op: str, data: st.DataObject) -> None:
    for name in CASES_BY_OP[op]:
        try:
            check_draw(as_case(OP_CASES[name]), data)
        except AssertionError as failure:
            raise AssertionError(f"case {name!r}: {failure}") from None


# --- the test of the test: a replay that keeps a first-call value is caught -----------------------
@pytest.fixture
def stale_plans(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every plan made from here on hands back its first call's result on every later call."""
    make = Plan.__init__

    def stale_init(plan: Plan, *args: Any, **kwargs: Any) -> None:
        make(plan, *args, **kwargs)
        replay, kept = plan.replay, []

        def stale_replay(*leaves: Any) -> Any:
            if not kept:
                kept.append(copy.deepcopy(replay(*leaves)))
            return copy.deepcopy(kept[0])

        plan.replay = plan.namespace["replay"] = stale_replay

    monkeypatch.setattr(Plan, "__init__", stale_init)


@pytest.mark.parametrize("name", ["matmul", "getitem[a traced integer array]", "random.normal"])
def test_a_plan_keeping_its_first_result_is_caught(name: str, stale_plans: None) -> None:
    with pytest.raises(AssertionError, match="the second call"):
        run_case(OPS[name], checks=FAST)


def test_a_gradient_plan_keeping_its_first_result_is_caught(stale_plans: None) -> None:
    with pytest.raises(AssertionError, match="gradient: the second call"):
        check_replay(tg.grad(lambda x: tg.tanh(x).sum()), (np.array([0.5, 1.0]),),
                     (np.array([-1.0, 2.0]),), label="gradient")


def stale_exp() -> tg.Primitive:
    """exp, right eagerly; its ``out=`` form (the one a replay uses) keeps its first numbers."""
    first_numbers: list[np.ndarray] = []

    def impl(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if out is None:
            return np.exp(x)
        if not first_numbers:
            first_numbers.append(np.exp(x))
        out[...] = first_numbers[0]
        return out

    return tg.Primitive("stale_exp", impl, (lambda g, out, x: g * out,), out=True,
                        elementwise=True)


def test_a_primitive_stale_only_under_jit_is_caught() -> None:
    x, y = np.array([0.0, 1.0]), np.array([2.0, 3.0])
    assert not differ(*check_replay(lambda t: t, (x,), (x,)))  # nothing to tell apart
    broken = stale_exp()
    with pytest.raises(AssertionError, match="second call"):
        check_replay(lambda t: broken(t) * 2.0, (x,), (y,))
    broken = stale_exp()
    with pytest.raises(AssertionError, match="the second call"):
        run_case(Case(lambda t: broken(t * 1.0), calls(arrays(3))), checks=FAST)


def test_a_result_a_later_call_overwrites_is_caught() -> None:
    """A primitive that claims a fresh result but returns its input: the plan hands back a
    buffer it reuses, and the second call changes the first call's result."""
    lying = tg.Primitive("lying_copy", lambda x: x, (lambda g, out, x: g,), fresh=True)
    with pytest.raises(AssertionError, match="first call's result, after the second call"):
        check_replay(lambda t: lying(t * 2.0), (np.array([1.0, 2.0]),),
                     (np.array([3.0, 5.0]),))


def test_a_case_that_cannot_tell_its_calls_apart_is_refused() -> None:
    """An output the second call cannot change would let a stale replay pass unseen."""
    with pytest.raises(AssertionError, match="no second draw"):
        run_case(Case(lambda x: x * 0.0, calls(arrays(3))))


def test_a_shared_table_entry_runs_in_any_of_its_forms() -> None:
    """``tests/op_cases.py`` may hold Cases, (callable, strategy) or (callable, generator)
    pairs, with a dict of Case fields as a third item."""
    def generator(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        return rng.normal(size=(2, 3)), rng.normal(size=3)

    for entry in [(tg.sub, calls(arrays(2, 3), arrays(3))), (tg.sub, generator),
                  (tg.less, generator, {"grad": False}), Case(tg.sub, calls(arrays(3), number()))]:
        run_case(as_case(entry))
    with pytest.raises(TypeError, match="a table entry is"):
        as_case(tg.sub)


def test_a_retrace_is_caught() -> None:
    with pytest.raises(AssertionError, match="traced again"):
        check_replay(lambda x, flag: x * 2.0 if flag else x, (np.ones(2), True),
                     (np.zeros(2), False))


# --- idioms ---------------------------------------------------------------------------------------
class Pair(namedtuple("Pair", "W b")):
    """A layer's weights and bias as a named tuple: a pytree node."""


def mlp_params() -> st.SearchStrategy[dict[str, Any]]:
    """A 3-4-1 network as a pytree: a dict holding a dict and a named tuple."""
    return st.builds(lambda w1, b1, w2, b2: {"hidden": {"W": w1, "b": b1}, "out": Pair(w2, b2)},
                     arrays(4, 3), arrays(4, 1), arrays(1, 4), arrays(1, 1))


def mlp_cost(params: Any, X: Any, Y: Any) -> Any:
    hidden = tg.tanh(params["hidden"]["W"] @ X + params["hidden"]["b"])
    W, b = params["out"]
    return nn.binary_cross_entropy_with_logits(W @ hidden + b, Y)


def course_params(dims: list[int], dtype: Any = np.float64) -> st.SearchStrategy[dict[str, Any]]:
    """``nn``'s parameter dict W1, b1, …, for layer sizes ``dims``."""
    shapes = {f"{kind}{layer}": (dims[layer], dims[layer - 1] if kind == "W" else 1)
              for layer in range(1, len(dims)) for kind in "Wb"}
    # not fixed_dictionaries: it shuffles the keys, and their order is part of jit's signature
    return st.tuples(*[arrays(*shape, low=-1.0, high=1.0, dtype=dtype)
                       for shape in shapes.values()]).map(lambda leaves: dict(zip(shapes, leaves)))


def binary_labels(m: int, dtype: Any = np.float64) -> st.SearchStrategy[np.ndarray]:
    return integers(1, m, low=0, high=1).map(lambda y: y.astype(dtype))


def sgd_step(params: Any, X: Any, Y: Any, learning_rate: float) -> Any:
    cost, grads = tg.value_and_grad(nn.model_cost)(params, X, Y)
    return nn.sgd_update(params, grads, learning_rate), cost


adam = tg.optim.adam(learning_rate=0.05)


def adam_step(params: Any, state: Any, X: Any, Y: Any) -> Any:
    cost, grads = tg.value_and_grad(mlp_cost)(params, X, Y)
    params, state = adam.update(grads, state, params)
    return params, state, cost


def adam_states() -> st.SearchStrategy[Any]:
    magnitudes = mlp_params().map(lambda tree: tg.tree_map(np.abs, tree))
    return st.builds(tg.optim.AdamState, integers(low=0, high=5), mlp_params(), magnitudes)


def straight_through(x: Any) -> Any:  # forward: sign(x); backward: the identity
    return ((x + tg.stop_gradient(tg.sign(x) - x)) * np.arange(1.0, 4.0)).sum()


def constants_of_traced_values(x: Any) -> Any:
    y = x * 1.5
    return (tg.stop_gradient(x) * 2.0).sum() + y.detach().sum() + tg.Tensor(y).sum() + \
        (x * x).sum()


def label_cost(Z: Any, y: Any) -> Any:
    logp = nn.log_softmax(Z)
    return -logp[y, np.arange(Z.shape[1])].mean()


def backward_inside(x: Any) -> Any:
    w = tg.Tensor(np.arange(3.0), requires_grad=True)
    (w * x * x).sum().backward()
    return w.grad


def dropout_layer(key: Any, A: Any, W: Any) -> Any:
    first, second = tg.random.split(key)
    hidden = nn.dropout(first, tg.relu(W @ A), 0.7)
    return nn.dropout(second, hidden, 0.5).sum(axis=0)


def split_chain(key: Any) -> Any:
    first, rest = tg.random.split(key)
    second, third = tg.random.split(rest)
    keys_ = tg.random.split(third, 3)
    return (tg.random.normal(first, (2,)), tg.random.uniform(second, 3),
            tg.random.bernoulli(keys_[1], 0.5, (4,)), keys_)


def scaled(x: Any, scale: float = 1.0, mode: str = "sum") -> Any:
    return (x * scale).sum() if mode == "sum" else (x * scale).max()


def pytree_in_and_out(tree: Any) -> Any:
    (x, nothing), pair = tree["a"], tree["b"]
    assert nothing is None
    return {"z": Pair(x * pair.W, None), "a": [pair.b.sum(), None]}


def cubes(x: Any, v: Any) -> Any:
    """grad of grad: the Hessian of Σx³ times v, as the gradient of <∇f, v>."""
    return tg.grad(lambda u: (tg.grad(lambda t: (t ** 3).sum())(u) * v).sum())(x)


def user_primitives(x: Any) -> Any:
    y = same(x * 2.0)
    z = flip(x + 1.0)
    return y, y + 1.0, z, same(x) * x, z * 3.0


def loss_of_user_primitives(x: Any) -> Any:
    outputs = user_primitives(x)
    return (outputs[2] * outputs[0]).sum() + outputs[3].sum()


def per_example_costs(params: Any, X: Any, Y: Any) -> Any:
    """vmap of the cost over the examples (the columns of X and Y)."""
    def one(x: Any, y: Any) -> Any:
        return mlp_cost(params, tg.reshape(x, 3, 1), tg.reshape(y, 1, 1))

    return tg.vmap(one, in_axes=(1, 1))(X, Y)


def forward_and_transposed(x: Any, tangent: Any, cotangent: Any) -> Any:
    """jvp, linearize and vjp of one function: J·t twice, and vᵀ·J."""
    def f(t: Any) -> Any:
        return tg.tanh(t) * t[::-1]

    value, forward = tg.jvp(f, (x,), (tangent,))
    _, linear = tg.linearize(f, x)
    _, pull = tg.vjp(f, x)
    return value, forward, linear(tangent), pull(cotangent)[0]


def jacobians(x: Any) -> Any:
    def f(t: Any) -> Any:
        return tg.sin(t) * t.sum()

    return tg.jacrev(f)(x), tg.jacfwd(f)(x), tg.jacobian(f)(x), \
        tg.hessian(lambda t: (t ** 3).sum() * t[0])(x)


def idiom(fn: Callable[..., Any], args: st.SearchStrategy[Any], **options: Any) -> Case:
    """A case run for its value only: an idiom computes its own gradients."""
    return Case(fn, args, grad=None, **options)


learning_rates = number(0.01, 0.5)
nets = course_params([3, 4, 1])
classes = course_params([3, 4, 3])
X35 = arrays(3, 5)

IDIOMS: dict[str, Case] = {
    "a training step: value_and_grad and nn.sgd_update": idiom(
        sgd_step, calls(nets, X35, binary_labels(5), learning_rates)),
    "a training step in float32 with a python float learning rate": idiom(
        sgd_step, calls(course_params([3, 4, 1], np.float32), arrays(3, 5, dtype=np.float32),
                        binary_labels(5, np.float32), learning_rates)),
    "a training step with donated params": idiom(
        sgd_step, calls(nets, X35, binary_labels(5), learning_rates),
        jit_options={"donate_argnums": 0}),
    "a training step: optim.adam on a pytree of params": idiom(
        adam_step, calls(mlp_params(), adam_states(), X35, binary_labels(5))),
    "grad inside jit": idiom(tg.grad(mlp_cost), calls(mlp_params(), X35, binary_labels(5))),
    "grad of grad": idiom(cubes, calls(arrays(3), arrays(3))),
    "vmap of a cost over examples, and its gradient": idiom(
        lambda *a: (per_example_costs(*a), tg.grad(lambda *b: per_example_costs(*b).sum())(*a)),
        calls(mlp_params(), X35, binary_labels(5))),
    "jvp, linearize and vjp": idiom(forward_and_transposed, calls(arrays(3), arrays(3),
                                                                   arrays(3))),
    "jacrev, jacfwd, jacobian and hessian": idiom(jacobians, calls(arrays(3))),
    "tg.hvp": idiom(tg.hvp(mlp_cost), calls(mlp_params(), X35, binary_labels(5), mlp_params())),
    "stop_gradient, detach and Tensor(x) of a traced value": idiom(
        tg.value_and_grad(constants_of_traced_values), calls(arrays(3))),
    "a straight-through estimator": idiom(tg.value_and_grad(straight_through), calls(arrays(3))),
    "logp[y, arange(m)] by a traced label array": idiom(
        tg.value_and_grad(label_cost), calls(arrays(4, 6), integers(6, low=0, high=3))),
    "indexing by tg.argmax": idiom(
        tg.value_and_grad(lambda x: (x[tg.argmax(x)] * 2.0).sum()), calls(arrays(5))),
    "user primitives returning their input or a view": idiom(user_primitives, calls(arrays(4))),
    "the gradient through user primitives": idiom(tg.grad(loss_of_user_primitives),
                                                 calls(arrays(4))),
    "keyword arguments, one of them static": idiom(
        scaled, st.builds(lambda x, s, mode: Call((x,), {"scale": s, "mode": mode}), arrays(3),
                          number(), st.sampled_from(["sum", "max"])),
        jit_options={"static_argnames": "mode"}),
    "a static positional argument": idiom(
        lambda x, mode: scaled(x, 2.0, mode), calls(arrays(3), st.sampled_from(["sum", "max"])),
        jit_options={"static_argnums": 1}),
    "Tensor.backward() inside jit": idiom(backward_inside, calls(arrays(3))),
    "a dropout mask from a traced key": idiom(dropout_layer, calls(keys(), arrays(3, 4),
                                                                  arrays(5, 3))),
    "tg.random.split chains": idiom(split_chain, calls(keys())),
    "pytrees with None and named tuples, in and out": idiom(
        pytree_in_and_out, calls(st.builds(lambda x, w, b: {"a": (x, None), "b": Pair(w, b)},
                                           arrays(2), arrays(2), arrays(3)))),
    "nn.forward, softmax over classes": idiom(nn.forward, calls(classes, X35)),
    "nn.forward, a sigmoid unit": idiom(nn.forward, calls(nets, X35)),
    "nn.model_cost with float labels": idiom(nn.model_cost, calls(nets, X35, binary_labels(5))),
    "nn.model_cost's gradient, class indices": idiom(
        tg.grad(nn.model_cost), calls(classes, X35, integers(5, low=0, high=2))),
    "nn.softmax_cross_entropy with class indices": idiom(
        tg.value_and_grad(nn.softmax_cross_entropy), calls(arrays(3, 5),
                                                           integers(5, low=0, high=2))),
    "nn.binary_cross_entropy_with_logits": idiom(
        tg.value_and_grad(nn.binary_cross_entropy_with_logits), calls(arrays(1, 5),
                                                                     binary_labels(5))),
}


@pytest.mark.parametrize("name", list(IDIOMS))
@FAST
@given(data=st.data())
def test_an_idiom_replays_like_eager(name: str, data: st.DataObject) -> None:
    check_draw(IDIOMS[name], data)


@FAST
@given(st.data())
def test_jit_inside_grad_differentiates_the_jitted_function(data: st.DataObject) -> None:
    """A jitted cost that has a plan, differentiated eagerly: its ops join grad's, call by call."""
    jitted = tg.jit(mlp_cost)
    drawn = calls(mlp_params(), X35, binary_labels(5))
    first, second = data.draw(drawn), data.draw(drawn)
    for arguments in (first, second):
        jitted(*arguments)  # its plan replays on its own
        expected = numbers_of(tg.value_and_grad(mlp_cost)(*arguments))
        assert_same(tg.value_and_grad(jitted)(*arguments), expected, "grad(jit(cost))")
        assert_same(jitted(*arguments), expected[0], "jit(cost)")
    assert len(jitted.plans) == 1


# --- donation, static arguments, closures ---------------------------------------------------------
def test_a_donation_another_argument_aliases_is_refused() -> None:
    def step(params: Any, ema: Any) -> Any:
        new = {k: v * 0.5 for k, v in params.items()}
        return new, {k: 0.9 * ema[k] + 0.1 * new[k] for k in ema}

    jitted = tg.jit(step, donate_argnums=0)
    params = {"W": np.ones((2, 2))}
    for ema in (params, {"W": params["W"][:]}, {"W": params["W"].T}):
        with pytest.raises(ValueError, match="donated array is also another argument"):
            jitted(params, ema)
    np.testing.assert_array_equal(params["W"], np.ones((2, 2)))  # refused before writing
    check_replay(step, ({"W": np.ones((2, 2))}, {"W": np.full((2, 2), 3.0)}),
                 ({"W": np.full((2, 2), 2.0)}, {"W": np.zeros((2, 2))}), donate_argnums=0)


def test_static_values_of_other_types_or_signs_are_other_plans() -> None:
    def f(x: Any, s: Any) -> Any:
        return x * math.copysign(1.0, s) * {int: 2.0, float: 3.0, bool: 5.0}[type(s)]

    jitted = tg.jit(f, static_argnums=1)
    for s in (1, 1.0, True, 0.0, -0.0, 1, -0.0):
        np.testing.assert_array_equal(jitted(np.ones(2), s), f(np.ones(2), s).data)
    assert len(jitted.plans) == 5


def test_a_python_float_schedule_replays_one_float32_plan() -> None:
    traces = []

    def step(w: Any, learning_rate: float) -> Any:
        traces.append(learning_rate)
        return w - learning_rate * (w * w)

    jitted = tg.jit(step)
    w = np.linspace(0.5, 1.0, 3, dtype=np.float32)
    for epoch in range(4):
        rate = 0.1 * 0.5**epoch
        got = jitted(w, rate)
        expected = step(w, rate)
        assert got.dtype == np.float32 and got.tobytes() == expected.tobytes()
    assert len(jitted.plans) == 1 and len(traces) == 1 + 4  # one trace; the rest are eager


def test_a_closed_over_array_is_captured_at_trace_time() -> None:
    table = np.arange(3.0)
    direct = tg.jit(lambda x: (x * 2.0, table))
    through = tg.jit(lambda x: x * table + table.sum())
    first_direct, first_through = direct(np.ones(3)), through(np.ones(3))
    table[:] = 7.0  # changed after the trace: neither use sees it
    second_direct, second_through = direct(np.full(3, 2.0)), through(np.full(3, 2.0))
    np.testing.assert_array_equal(second_direct[1], [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(second_through, 2.0 * np.arange(3.0) + 3.0)
    np.testing.assert_array_equal(first_direct[1], [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(first_through, np.arange(3.0) + 3.0)
    second_direct[1][:] = -1.0  # what is handed back is the caller's own
    np.testing.assert_array_equal(direct(np.ones(3))[1], [0.0, 1.0, 2.0])


# --- the value checks eager makes, made by the replay too -----------------------------------------
@pytest.mark.parametrize("cost", [nn.softmax_cross_entropy, lambda Z, y: nn.one_hot(y, 3) * Z])
def test_a_label_outside_the_classes_is_refused_by_the_replay(cost: Any) -> None:
    Z = np.arange(15.0).reshape(3, 5) / 7.0
    check_replay(cost, (Z, np.array([0, 1, 2, 1, 0])), (Z * 2.0, np.array([0, 1, 2, 5, 0])))


# --- reading a traced value in Python: TracedValueError -------------------------------------------
kept_from_a_finished_trace: list[Any] = []

SIDE_DOORS: dict[str, Any] = {
    ".data": lambda x, n: x * x.data.sum(),
    ".numpy()": lambda x, n: x * x.numpy().sum(),
    "float()": lambda x, n: x * float(x[0]),
    "int()": lambda x, n: x * int(x[0]),
    "bool()": lambda x, n: x if x.sum() > 0 else -x,
    ".item()": lambda x, n: x * x.sum().item(),
    "np.asarray": lambda x, n: x * np.asarray(x).sum(),
    "np.sum": lambda x, n: x * np.sum(x),
    "range(traced int)": lambda x, n: tg.stack([x[i] for i in range(n)]),
    "a list index": lambda x, n: x * [1.0, 2.0, 3.0][n],
    "a slice bound": lambda x, n: x[:n],
    "a reshape to a traced size": lambda x, n: tg.reshape(x, (n, -1)),
    "an op's param given a Tensor": lambda x, n: ops.clip(x, low=x[0], high=None),
    "a float() of a python float argument": lambda x, n: x * float(n * 1.0),
    "a Tensor kept past its trace": lambda x, n: kept_from_a_finished_trace[-1] + x,
}


@pytest.mark.parametrize("door", [pytest.param(*entry.values, marks=entry.marks, id=name)
                                  if isinstance(entry, type(pytest.param(0))) else
                                  pytest.param(entry, id=name)
                                  for name, entry in SIDE_DOORS.items()])
def test_reading_a_traced_value_raises(door: Callable[..., Any]) -> None:
    keep = tg.jit(lambda x: kept_from_a_finished_trace.append(x * 2.0) or x)
    keep(np.ones(3))
    with pytest.raises(tg.TracedValueError, match="traced"):
        tg.jit(door)(np.ones(3), 2)


# --- the planner: random straight-line programs over square matrices ------------------------------
UNARY: dict[str, Callable[[Any], Any]] = {
    "T": lambda a: a.T, "mT": lambda a: a.mT, "neg": tg.neg, "tanh": tg.tanh, "flip": flip,
    "same": same, "rows reversed": lambda a: a[::-1], "columns reversed": lambda a: a[:, ::-1],
    "reshaped twice": lambda a: a.reshape(9).reshape(3, 3), "relu": tg.relu,
    "sigmoid": tg.sigmoid, "stop_gradient": tg.stop_gradient, "sqrt|x|": lambda a: abs(a) ** 0.5,
    "row broadcast": lambda a: tg.broadcast_to(a[0], (3, 3)), "clip": lambda a: tg.clip(a, -.5, .5),
    "astype": lambda a: tg.astype(a, np.float64), "where": lambda a: tg.where(a > 0, a, 0.5 * a),
    "column sums": lambda a: a.sum(axis=0, keepdims=True) + 0.0 * a,
}
BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "add": tg.add, "mul": tg.mul, "sub": tg.sub, "matmul": tg.matmul, "maximum": tg.maximum,
    "div": lambda a, b: a / (b * b + 1.0),
}


def programs() -> st.SearchStrategy[tuple[list[tuple[str, int, int]], list[int]]]:
    """Steps (an op and the values it reads, as indices modulo the values so far) and the
    indices of the values returned."""
    step = st.tuples(st.sampled_from([*UNARY, *BINARY]), st.integers(0, 99), st.integers(0, 99))
    return st.tuples(st.lists(step, min_size=1, max_size=8),
                     st.lists(st.integers(0, 99), min_size=1, max_size=3))


def as_function(steps: list[tuple[str, int, int]], returned: list[int]) -> Callable[..., Any]:
    def program(a: Any, b: Any) -> Any:
        values = [a, b]
        for op, i, j in steps:
            x, y = values[i % len(values)], values[j % len(values)]
            values.append(UNARY[op](x) if op in UNARY else BINARY[op](x, y))
        return tuple(values[k % len(values)] for k in returned)

    return program


def summed(program: Callable[..., Any]) -> Callable[..., Any]:
    return lambda a, b: sum(tg.sum(v * (k + 1.0)) for k, v in enumerate(program(a, b)))


@settings(FAST, max_examples=20)
@given(programs(), arrays(3, 3), arrays(3, 3), arrays(3, 3), arrays(3, 3), st.booleans())
def test_random_programs_replay_like_eager(program: Any, a: Any, b: Any, c: Any, d: Any,
                                           donate: bool) -> None:
    """Views, transposes of square matrices, in-place buffers, an output that is an input."""
    f = as_function(*program)
    options = {"donate_argnums": 0} if donate else {}
    check_replay(f, (a, b), (c, d), **options)
    check_replay(tg.grad(summed(f), argnums=(0, 1)), (a, b), (c, d), **options)


# --- findings: each was a wrong number with no error (the nn ones still are, marked) ------------
def test_dict_key_order() -> None:
    def first_value(d: Any) -> Any:
        return next(iter(d.values())) * 2.0

    check_replay(first_value, ({"a": np.ones(2), "b": np.full(2, 5.0)},),
                 ({"b": np.full(2, 5.0), "a": np.zeros(2)},), one_plan=False)


def test_static_numpy_floats() -> None:
    check_replay(lambda x, s: x * math.copysign(1.0, s), (np.ones(1), np.float64(0.0)),
                 (np.full(1, 2.0), np.float64(-0.0)), one_plan=False, static_argnums=1)


def test_jit_of_grad_of_a_jitted_function() -> None:
    inner = tg.jit(mlp_cost)
    rng = np.random.default_rng(1)
    params = {"hidden": {"W": rng.normal(size=(4, 3)), "b": np.zeros((4, 1))},
              "out": Pair(rng.normal(size=(1, 4)), np.zeros((1, 1)))}
    labels = np.array([[0.0, 1.0, 1.0, 0.0, 1.0]])
    check_replay(tg.grad(inner), (params, rng.normal(size=(3, 5)), labels),
                 (params, rng.normal(size=(3, 5)), 1.0 - labels))


def test_grad_of_an_int_argument() -> None:
    cubic = tg.grad(lambda x: (x * x * 1.5).sum())
    check_replay(cubic, (np.array([3, 1]),), (np.array([2, 5]),))


def test_astype_of_a_python_number() -> None:
    def add(x: Any, n: int) -> Any:
        return x + tg.astype(n, np.int64)

    check_replay(add, (np.array([1], np.int8), 1), (np.array([100], np.int8), 100))


def test_ops_on_python_numbers() -> None:
    def step(w: Any, learning_rate: float) -> Any:
        return w * tg.sqrt(learning_rate)

    w = np.linspace(0.1, 1.0, 3, dtype=np.float32)
    check_replay(step, (w, 0.1), (w * 2, 0.3))


def test_python_int_overflow_is_an_error_not_a_wrapped_number() -> None:
    """A traced Python int is an int64, as numpy computes it: where Python's exact int would
    leave int64 the replay (and an op on such numbers eagerly) raises, never wraps around."""
    jitted = tg.jit(lambda x, n: x * (n * n))
    np.testing.assert_array_equal(jitted(np.ones(2), 3), [9.0, 9.0])
    with pytest.raises(OverflowError, match="overflow int64"):
        jitted(np.ones(2), 2**40)
    with pytest.raises(OverflowError, match="overflow int64"):
        tg.mul(2**40, 2**40)
    assert float(jitted(np.ones(2), 2**70)[0]) == 2.0**140  # beyond int64: a constant


def test_sgd_update_with_an_array_rate() -> None:
    params = {"W": np.ones((2, 2), np.float32)}
    grads = {"W": np.full((2, 2), 0.5, np.float32)}
    check_replay(nn.sgd_update, (params, grads, np.array(0.1)), (params, grads, np.array(0.3)))


def test_integer_labels_under_jit() -> None:
    rng = np.random.default_rng(0)
    params = {"W1": rng.normal(size=(1, 3)).astype(np.float32),
              "b1": np.zeros((1, 1), np.float32)}
    X = rng.normal(size=(3, 4)).astype(np.float32)
    check_replay(nn.model_cost, (params, X, np.array([[0, 1, 1, 0]])),
                 (params, X * 2, np.array([[1, 1, 0, 0]])))


def test_float_inside_grad() -> None:
    def loss(t: Any) -> Any:
        return (t * float(t.sum())).sum()

    with pytest.raises(TypeError):  # (TracedValueError is one)
        tg.grad(loss)(np.array([1.0, 2.0]))


# --- findings: each was a crash, a refusal or a wrong message where eager works ----------------
def test_stop_gradient_of_a_python_number() -> None:
    check_replay(lambda w, lr: w * tg.stop_gradient(lr), (np.ones(2), 0.5), (np.zeros(2), 0.25))


def test_tensor_arguments() -> None:
    check_replay(lambda x: x * 2.0, (tg.Tensor(np.ones(3)),), (tg.Tensor(np.arange(3.0)),))


def test_a_call_with_another_number_of_arguments() -> None:
    def scaled_by(x: Any, scale: float = 2.0) -> Any:
        return x * scale

    jitted = tg.jit(scaled_by)
    jitted(np.ones(2))
    np.testing.assert_array_equal(jitted(np.ones(2), 3.0), [3.0, 3.0])


def test_a_defaultdict_argument() -> None:
    def first(d: Any) -> Any:
        return d["a"] * 2.0

    check_replay(first, (defaultdict(float, a=np.ones(2)),), (defaultdict(float, a=np.zeros(2)),))


def test_binary_cross_entropy_under_jit() -> None:
    check_replay(nn.binary_cross_entropy, (np.array([[0.2, 0.9]]), np.array([[0.0, 1.0]])),
                 (np.array([[0.7, 0.4]]), np.array([[1.0, 1.0]])))


def test_replay_errors_lack_the_op() -> None:
    check_replay(lambda x, i: tensor_of(x)[i], (np.arange(3.0), np.array([0, 2])),
                 (np.arange(3.0) + 1, np.array([0, 5])))


def test_a_binary_ops_error_under_jit_and_eagerly() -> None:
    check_replay(tg.power, (np.array([2]), np.array([1])), (np.array([2]), np.array([-1])))


def test_numpy_scalars_handed_back() -> None:
    result = tg.jit(tg.mean)(np.ones(3))
    assert type(result) is np.ndarray, type(result)
