"""Optimizers as pairs of pure functions over any pytree of parameters, in optax's style.

    optimizer = optim.adam(learning_rate=1e-3)
    state = optimizer.init(params)
    params, state = optimizer.update(grads, state, params)   # every step

``grads`` has the structure and shapes of ``params`` (as ``value_and_grad`` gives it). Nothing
is modified: each step returns new parameters and a new state, and the old ones stay valid.
Every new parameter (and state) keeps the parameter's dtype: float32 stays float32.

Each optimizer's formula is written once, with Python's operators and ``np.sqrt`` (on a Tensor,
numpy hands it to the engine's op): on numpy arrays it computes new arrays, rounded exactly as
written; where a parameter, gradient or state leaf is a Tensor (inside ``jit``, or
differentiating through a step) the same lines record ops, and under ``tg.jit`` the traced
formula is planned into buffers reused from step to step. Adam's step count is then an array
too, so a replayed program corrects its bias at the right step.
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from tinygrad_nn import ops
from tinygrad_nn.flatten_util import ravel_pytree as ravel_pytree  # its old home: still here
from tinygrad_nn.flatten_util import tree_vdot as tree_vdot
from tinygrad_nn.pytree import TreeDef, tree_flatten, tree_paths, tree_unflatten
from tinygrad_nn.tensor import Tensor

__all__ = [
    "AdamState",
    "MomentumState",
    "Optimizer",
    "RMSPropState",
    "adam",
    "momentum",
    "rmsprop",
    "sgd",
]


class Optimizer(NamedTuple):
    """``init(params) -> state`` and ``update(grads, state, params) -> (params, state)``."""

    init: Callable[[Any], Any]
    update: Callable[[Any, Any, Any], tuple[Any, Any]]


class MomentumState(NamedTuple):
    velocity: Any  # v, in the parameters' structure


class RMSPropState(NamedTuple):
    square_average: Any  # s, in the parameters' structure


class AdamState(NamedTuple):
    step: Any  # steps taken so far: an int64 0-d array
    mu: Any  # first moment m
    nu: Any  # second moment v


# --- checks ---------------------------------------------------------------------------------
def number(caller: str, name: str, x: Any) -> Any:
    """``x`` as a float, or a TypeError naming ``caller`` and ``name``: a rate given as the
    string "0.01" (or a bool, a list, None) is refused here, not deep inside a step. A 0-d
    Tensor (a rate traced by ``jit``, a schedule's) is kept: the formulas use it in the
    parameters' dtype."""
    if type(x) is float or type(x) is int:  # the usual case, without an ABC's isinstance
        return float(x)
    if type(x) is Tensor and x.shape == () and x.dtype.kind in "iuf":
        return x
    if isinstance(x, (bool, np.bool_)) or not (
            isinstance(x, numbers.Real) or (type(x) is np.ndarray and x.shape == ()
                                            and x.dtype.kind in "iuf")):
        raise TypeError(f"{caller}: {name} must be a number, got {x!r}")
    return float(x)


def _positive(caller: str, **named: Any) -> list[Any]:
    found = [number(f"optim.{caller}", key, x) for key, x in named.items()]
    for key, x in zip(named, found):
        if type(x) is not Tensor and not x > 0:  # a traced number's value cannot be read
            raise ValueError(f"optim.{caller}: {key} must be > 0, got {x}")
    return found


def _decay(caller: str, **named: Any) -> list[Any]:
    found = [number(f"optim.{caller}", key, x) for key, x in named.items()]
    for key, x in zip(named, found):
        if type(x) is not Tensor and not 0 <= x < 1:
            raise ValueError(f"optim.{caller}: {key} must be in [0, 1), got {x}")
    return found


Structure = TreeDef | tuple[Any, ...]  # a TreeDef, or a dict of arrays' keys (the fast path)


def _flatten(tree: Any) -> tuple[list[Any], Structure]:
    """(leaves, structure): a dict of arrays — parameters as ``nn`` keeps them — read without
    the general pytree walk, which costs more than the update of a small net."""
    if type(tree) is dict:
        leaves = list(tree.values())
        if {*map(type, leaves)} <= _ARRAY:
            return leaves, tuple(tree)
    return tree_flatten(tree)


_ARRAY = {np.ndarray}


def _unflatten(structure: Structure, leaves: list[Any]) -> Any:
    if type(structure) is tuple:
        return dict(zip(structure, leaves))
    return tree_unflatten(structure, leaves)  # type: ignore[arg-type]


def _flatten_like(tree: Any, structure: Structure, params: Any, what: str,
                  caller: str) -> list[Any]:
    """The leaves of ``tree``, after checking it has the structure of ``params``."""
    if type(tree) is dict and type(structure) is tuple and tuple(tree) == structure:
        return list(tree.values())  # the keys of params in their order: the same structure
    leaves, mine = _flatten(tree)
    if mine != structure and type(mine) is not type(structure):  # one read fast: walk both
        leaves, mine = tree_flatten(tree)
        structure = tree_flatten(params)[1]
    if mine != structure:
        mine_paths, theirs = tree_paths(params), tree_paths(tree)
        missing = [p for p in mine_paths if p not in theirs]
        extra = [p for p in theirs if p not in mine_paths]
        detail = (f"missing {missing}, extra {extra}" if missing or extra else
                  "the same paths in other containers")
        raise ValueError(f"optim.{caller}: {what} must have the structure of params; {detail}")
    return leaves


def _leaves(grads: Any, params: Any, caller: str) -> tuple[list[Any], list[Any], Structure]:
    """(params' leaves, grads' leaves in the parameters' dtypes, params' structure), after
    checking that each leaf is a float array (or Tensor) and each gradient has its parameter's
    shape."""
    param_leaves, structure = _flatten(params)
    grad_leaves = _flatten_like(grads, structure, params, "grads", caller)
    for k, (p, g) in enumerate(zip(param_leaves, grad_leaves)):
        try:
            dtype, grad_dtype = p.dtype, g.dtype
            if grad_dtype is dtype and dtype.kind == "f" and g.shape == p.shape:
                continue  # the usual case, checked first: a small net's step is short
            fits = dtype.kind == "f" and g.shape == p.shape and grad_dtype.kind in "biuf"
        except AttributeError:  # not an array
            fits = False
        if not fits:
            _leaf_error(p, g, tree_paths(params)[k], caller)
        if grad_dtype != dtype:  # the new parameter keeps the old one's dtype
            grad_leaves[k] = g.astype(dtype) if type(g) is np.ndarray else ops.astype(g, dtype)
    return param_leaves, grad_leaves, structure


def _leaf_error(p: Any, g: Any, path: str, caller: str) -> None:
    """The error for a parameter that is not a float array, or a gradient not of its shape."""
    dtype = getattr(p, "dtype", None)
    if dtype is None or dtype.kind != "f":
        found = "not an array" if dtype is None else f"dtype {dtype}"
        raise TypeError(f"optim.{caller}: params leaf '{path}' is {type(p).__name__} ({found}); "
                        "expected a float array")
    found = f"has shape {g.shape}" if hasattr(g, "shape") else (
        f"is {type(g).__name__}, not an array")
    if hasattr(g, "shape") and g.shape == p.shape:
        found = f"has dtype {g.dtype}"
    raise ValueError(f"optim.{caller}: grads leaf '{path}' {found}; expected an array of params' "
                     f"shape {p.shape} (a gradient is never broadcast into a parameter)")


def _check_state(state: Any, kind: type, caller: str) -> None:
    if type(state) is not kind:
        raise TypeError(f"optim.{caller}: state is {type(state).__name__}; expected the "
                        f"{kind.__name__} that {caller}(...).init(params) returns")


def _zeros(params: Any) -> Any:
    """Zeros of each parameter's shape and (float) dtype."""
    leaves, treedef = tree_flatten(params)
    return tree_unflatten(treedef, [np.zeros(np.shape(p), getattr(p, "dtype", np.float64))
                                    for p in leaves])


def _in_dtype_of(p: Any, x: Any) -> Any:
    """A number in p's dtype: a float as p's scalar type (the number the Python float becomes,
    and a replayed float32 multiply takes it faster than a Python float), a Tensor (a traced
    rate, Adam's float64 corrections) cast: float32 parameters stay float32."""
    if type(x) is float:
        return p.dtype.type(x)
    return ops.astype(x, p.dtype) if type(x) is Tensor and x.dtype != p.dtype else x


# Below this many elements in all, a stateful update runs on all leaves at once as flat arrays:
# numpy's cost per call (about 0.5 µs) times a formula's many ops outweighs copying a small tree
# into one array per kind and back out as views. SGD's two ops per leaf do not.
_FLAT_UP_TO = 1 << 16

Formula = Callable[..., tuple[Any, ...]]


def _apply(caller: str, grads: Any, params: Any, states: dict[str, Any], formula: Formula,
           **scalars: Any) -> tuple[Any, ...]:
    """(new params, new state trees…): ``formula(p, g, *state, **scalars)`` on each leaf, or
    once on flat arrays of all leaves where they are small numpy arrays of one dtype."""
    ps, gs, structure = _leaves(grads, params, caller)
    if not states:  # one result a leaf (SGD): no state trees to read, nothing to zip
        rows = [[formula(p, g, **scalars)[0] for p, g in zip(ps, gs)]]
    else:
        kinds = [ps, gs, *[_flatten_like(tree, structure, params, f"state.{name}", caller)
                           for name, tree in states.items()]]  # parameters, gradients, states
        if (len(ps) > 1 and sum(p.size for p in ps) <= _FLAT_UP_TO
                and len({p.dtype for p in ps}) == 1
                and all(type(x) is not Tensor for x in scalars.values())
                and all(type(x) is np.ndarray for leaves in kinds for x in leaves)):
            flats = formula(*[np.concatenate([x.ravel() for x in leaves]) for leaves in kinds],
                            **scalars)
            bounds = [0, *itertools.accumulate(p.size for p in ps)]
            rows = [[flat[a:b].reshape(p.shape) for p, a, b in zip(ps, bounds, bounds[1:])]
                    for flat in flats]
        else:
            results = [formula(*column, **scalars) for column in zip(*kinds)]
            rows = [list(row) for row in zip(*results)]
    if not all(p.shape for p in ps):  # numpy's arithmetic on 0-d arrays gives numbers
        rows = [[x if type(x) is Tensor else np.asarray(x) for x in row] for row in rows]
    return tuple([_unflatten(structure, row) for row in rows])


# --- the optimizers: each formula written once ------------------------------------------------
def sgd(learning_rate: float | Tensor) -> Optimizer:
    """Gradient descent: p ← p − lr·g, computed as (−lr·g) + p (the same rounding; on a large
    array numpy then adds p into the product's own memory, one new array instead of two)."""
    (rate,) = _positive("sgd", learning_rate=learning_rate)

    def formula(p: Any, g: Any) -> tuple[Any]:
        return (g * _in_dtype_of(p, -rate) + p,)

    def init(params: Any) -> tuple[()]:
        return ()

    def update(grads: Any, state: Any, params: Any) -> tuple[Any, Any]:
        (new,) = _apply("sgd", grads, params, {}, formula)
        return new, state

    return Optimizer(init, update)


def momentum(learning_rate: float | Tensor, beta: float = 0.9) -> Optimizer:
    """Momentum in the course's convention: v ← β·v + (1 − β)·g, p ← p − lr·v (v starts at 0;
    no bias correction). PyTorch's SGD momentum is v ← μ·v + g instead: the same direction
    with lr scaled by 1 / (1 − β) once it settles."""
    (rate,), (beta,) = _positive("momentum", learning_rate=learning_rate), _decay(
        "momentum", beta=beta)

    def formula(p: Any, g: Any, v: Any) -> tuple[Any, Any]:
        v_new = v * beta + g * (1 - beta)
        return p - v_new * _in_dtype_of(p, rate), v_new

    def init(params: Any) -> MomentumState:
        return MomentumState(_zeros(params))

    def update(grads: Any, state: Any, params: Any) -> tuple[Any, Any]:
        _check_state(state, MomentumState, "momentum")
        new, velocity = _apply("momentum", grads, params, {"velocity": state.velocity}, formula)
        return new, MomentumState(velocity)

    return Optimizer(init, update)


def rmsprop(learning_rate: float, decay: float = 0.9, eps: float = 1e-8) -> Optimizer:
    """RMSprop: s ← d·s + (1 − d)·g², p ← p − lr·g / (√s + ε) (the course's β₂ is ``decay``,
    PyTorch's ``alpha``; ε outside the root, as both)."""
    (rate, eps), (decay,) = _positive("rmsprop", learning_rate=learning_rate, eps=eps), _decay(
        "rmsprop", decay=decay)

    def formula(p: Any, g: Any, s: Any) -> tuple[Any, Any]:
        s_new = s * decay + g * g * (1 - decay)
        return p - g * _in_dtype_of(p, rate) / (np.sqrt(s_new) + eps), s_new

    def init(params: Any) -> RMSPropState:
        return RMSPropState(_zeros(params))

    def update(grads: Any, state: Any, params: Any) -> tuple[Any, Any]:
        _check_state(state, RMSPropState, "rmsprop")
        new, square_average = _apply("rmsprop", grads, params,
                                     {"square_average": state.square_average}, formula)
        return new, RMSPropState(square_average)

    return Optimizer(init, update)


def adam(learning_rate: float = 1e-3, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-8) -> Optimizer:
    """Adam with bias correction, at step t = 1, 2, …:

    m ← b1·m + (1 − b1)·g,  v ← b2·v + (1 − b2)·g²,
    p ← p − lr·(m / (1 − b1ᵗ)) / (√(v / (1 − b2ᵗ)) + ε)

    as the course writes it; ``torch.optim.Adam`` computes the same (to rounding)."""
    (rate, eps), (b1, b2) = _positive("adam", learning_rate=learning_rate, eps=eps), _decay(
        "adam", b1=b1, b2=b2)

    def formula(p: Any, g: Any, m: Any, v: Any, c1: Any, c2: Any) -> tuple[Any, Any, Any]:
        m_new = m * b1 + g * (1 - b1)
        v_new = v * b2 + g * g * (1 - b2)
        corrected = np.sqrt(v_new / _in_dtype_of(p, c2)) + eps
        return p - m_new / _in_dtype_of(p, c1) * _in_dtype_of(p, rate) / corrected, m_new, v_new

    def init(params: Any) -> AdamState:
        return AdamState(np.zeros((), np.int64), _zeros(params), _zeros(params))

    def update(grads: Any, state: Any, params: Any) -> tuple[Any, Any]:
        _check_state(state, AdamState, "adam")
        step: Any = state.step
        if type(step) is Tensor:  # a traced count: the corrections are computed by the ops
            step = step + 1
            c1: Any = 1.0 - ops.power(b1, step)
            c2: Any = 1.0 - ops.power(b2, step)
        else:
            step = np.asarray(int(step) + 1)
            c1, c2 = 1.0 - b1 ** int(step), 1.0 - b2 ** int(step)
        new, mu, nu = _apply("adam", grads, params, {"mu": state.mu, "nu": state.nu}, formula,
                             c1=c1, c2=c2)
        return new, AdamState(step, mu, nu)

    return Optimizer(init, update)
