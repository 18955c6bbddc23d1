"""Optimizers as pairs of pure functions over any pytree of parameters, in optax's style.

    optimizer = optim.adam(learning_rate=1e-3)
    state = optimizer.init(params)
    params, state = optimizer.update(grads, state, params)   # every step

``grads`` has the structure and shapes of ``params`` (as ``value_and_grad`` gives it). Nothing
is modified: each step returns new parameters and a new state, and the old ones stay valid.
Every new parameter (and state) keeps the parameter's dtype: float32 stays float32.

On numpy arrays an update computes in arrays of its own (in place, in fresh memory), the
formulas rounded exactly as written below. Where a parameter, gradient or state leaf is a
Tensor (inside a traced program such as ``jit``, or differentiating through a step) the same
formulas run as ops and are recorded; the step count is then an array too, so a replayed
program corrects its bias at the right step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from tinygrad_nn import ops
from tinygrad_nn.pytree import TreeDef, tree_flatten, tree_paths, tree_unflatten
from tinygrad_nn.tensor import Tensor

__all__ = ["AdamState", "MomentumState", "Optimizer", "RMSPropState", "adam", "momentum",
           "rmsprop", "sgd"]


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
def _positive(name: str, **numbers: float) -> None:
    for key, number in numbers.items():
        if not number > 0:
            raise ValueError(f"optim.{name}: {key} must be > 0, got {number}")


def _decay(name: str, **numbers: float) -> None:
    for key, number in numbers.items():
        if not 0 <= number < 1:
            raise ValueError(f"optim.{name}: {key} must be in [0, 1), got {number}")


def _flatten_like(tree: Any, treedef: TreeDef, params: Any, what: str, caller: str) -> list[Any]:
    """The leaves of ``tree``, after checking it has the structure of ``params``."""
    leaves, structure = tree_flatten(tree)
    if structure != treedef:
        mine, theirs = tree_paths(params), tree_paths(tree)
        missing = [p for p in mine if p not in theirs]
        extra = [p for p in theirs if p not in mine]
        detail = (f"missing {missing}, extra {extra}" if missing or extra else
                  "the same paths in other containers")
        raise ValueError(f"optim.{caller}: {what} must have the structure of params; {detail}")
    return leaves


def _leaves(grads: Any, params: Any, caller: str) -> tuple[list[Any], list[Any], TreeDef]:
    """(params' leaves, grads' leaves, params' structure), after checking that each leaf is a
    float array (or Tensor) and each gradient has its parameter's shape."""
    param_leaves, treedef = tree_flatten(params)
    grad_leaves = _flatten_like(grads, treedef, params, "grads", caller)
    for k, (p, g) in enumerate(zip(param_leaves, grad_leaves)):
        if not hasattr(p, "dtype") or p.dtype.kind != "f":
            found = f"dtype {p.dtype}" if hasattr(p, "dtype") else "not an array"
            raise TypeError(f"optim.{caller}: params leaf '{tree_paths(params)[k]}' is "
                            f"{type(p).__name__} ({found}); expected a float array")
        if not hasattr(g, "dtype") or g.shape != p.shape:
            found = f"has shape {g.shape}" if hasattr(g, "dtype") else (
                f"is {type(g).__name__}, not an array")
            raise ValueError(f"optim.{caller}: grads leaf '{tree_paths(params)[k]}' {found}; "
                             f"expected an array of params' shape {p.shape} (a gradient is "
                             "never broadcast into a parameter)")
    return param_leaves, grad_leaves, treedef


def _state_leaves(state: Any, kind: type, treedef: TreeDef, params: Any, caller: str) -> Any:
    if type(state) is not kind:
        raise TypeError(f"optim.{caller}: state is {type(state).__name__}; expected the "
                        f"{kind.__name__} that {caller}(...).init(params) returns")
    named: Any = state  # one of the NamedTuples above
    return [_flatten_like(tree, treedef, params, f"state.{field}", caller)
            for field, tree in zip(named._fields, named) if field != "step"]


def _zeros(params: Any) -> Any:
    """Zeros of each parameter's shape and (float) dtype."""
    leaves, treedef = tree_flatten(params)
    return tree_unflatten(treedef, [np.zeros(np.shape(p), getattr(p, "dtype", np.float64))
                                    for p in leaves])


def _plain(*arrays: Any) -> bool:
    """All numpy arrays: the fast path, each result written into a fresh array of the
    parameter's shape and dtype (``out=``: a 0-d result stays an array); else the ops."""
    return all(type(a) is np.ndarray for a in arrays)


def _like(g: Any, p: Any) -> Any:
    """g in p's dtype (the new parameter keeps the old one's dtype)."""
    if g.dtype == p.dtype:
        return g
    return g.astype(p.dtype) if type(g) is np.ndarray else ops.astype(g, p.dtype)


# --- the optimizers -------------------------------------------------------------------------
def sgd(learning_rate: float) -> Optimizer:
    """Gradient descent: p ← p − lr·g (rounded as ``nn.sgd_update``: (−lr·g) + p, the same)."""
    _positive("sgd", learning_rate=learning_rate)

    def init(params: Any) -> tuple[()]:
        return ()

    def update(grads: Any, state: Any, params: Any) -> tuple[Any, Any]:
        ps, gs, treedef = _leaves(grads, params, "sgd")
        new = []
        for p, g in zip(ps, gs):
            g = _like(g, p)
            scale = p.dtype.type(-learning_rate)
            if _plain(p, g):
                step = np.multiply(g, scale, out=np.empty_like(p))
                step += p
                new.append(step)
            else:
                new.append(ops.add(ops.mul(g, scale), p))
        return tree_unflatten(treedef, new), state

    return Optimizer(init, update)


def momentum(learning_rate: float, beta: float = 0.9) -> Optimizer:
    """Momentum in the course's convention: v ← β·v + (1 − β)·g, p ← p − lr·v (v starts at 0;
    no bias correction). PyTorch's SGD momentum is v ← μ·v + g instead: the same direction
    with lr scaled by 1 / (1 − β) once it settles."""
    _positive("momentum", learning_rate=learning_rate)
    _decay("momentum", beta=beta)

    def init(params: Any) -> MomentumState:
        return MomentumState(_zeros(params))

    def update(grads: Any, state: Any, params: Any) -> tuple[Any, Any]:
        ps, gs, treedef = _leaves(grads, params, "momentum")
        (vs,) = _state_leaves(state, MomentumState, treedef, params, "momentum")
        new_ps, new_vs = [], []
        for p, g, v in zip(ps, gs, vs):
            g = _like(g, p)
            if _plain(p, g, v):
                v_new = np.multiply(v, beta, out=np.empty_like(p))
                scratch = np.multiply(g, 1 - beta, out=np.empty_like(p))
                v_new += scratch
                p_new = np.multiply(v_new, learning_rate, out=scratch)
                np.subtract(p, p_new, out=p_new)
            else:
                v_new = v * beta + g * (1 - beta)
                p_new = p - v_new * learning_rate
            new_ps.append(p_new)
            new_vs.append(v_new)
        return (tree_unflatten(treedef, new_ps),
                MomentumState(tree_unflatten(treedef, new_vs)))

    return Optimizer(init, update)


def rmsprop(learning_rate: float, decay: float = 0.9, eps: float = 1e-8) -> Optimizer:
    """RMSprop: s ← d·s + (1 − d)·g², p ← p − lr·g / (√s + ε) (the course's β₂ is ``decay``,
    PyTorch's ``alpha``; ε outside the root, as both)."""
    _positive("rmsprop", learning_rate=learning_rate, eps=eps)
    _decay("rmsprop", decay=decay)

    def init(params: Any) -> RMSPropState:
        return RMSPropState(_zeros(params))

    def update(grads: Any, state: Any, params: Any) -> tuple[Any, Any]:
        ps, gs, treedef = _leaves(grads, params, "rmsprop")
        (ss,) = _state_leaves(state, RMSPropState, treedef, params, "rmsprop")
        new_ps, new_ss = [], []
        for p, g, s in zip(ps, gs, ss):
            g = _like(g, p)
            if _plain(p, g, s):
                s_new = np.multiply(s, decay, out=np.empty_like(p))
                scratch = np.multiply(g, g, out=np.empty_like(p))
                scratch *= 1 - decay
                s_new += scratch
                np.sqrt(s_new, out=scratch)
                scratch += eps
                p_new = np.multiply(g, learning_rate, out=np.empty_like(p))
                p_new /= scratch
                np.subtract(p, p_new, out=p_new)
            else:
                s_new = s * decay + g * g * (1 - decay)
                p_new = p - g * learning_rate / (ops.sqrt(s_new) + eps)
            new_ps.append(p_new)
            new_ss.append(s_new)
        return (tree_unflatten(treedef, new_ps),
                RMSPropState(tree_unflatten(treedef, new_ss)))

    return Optimizer(init, update)


def adam(learning_rate: float = 1e-3, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-8) -> Optimizer:
    """Adam with bias correction, at step t = 1, 2, …:

    m ← b1·m + (1 − b1)·g,  v ← b2·v + (1 − b2)·g²,
    p ← p − lr·(m / (1 − b1ᵗ)) / (√(v / (1 − b2ᵗ)) + ε)

    as the course writes it; ``torch.optim.Adam`` computes the same (to rounding)."""
    _positive("adam", learning_rate=learning_rate, eps=eps)
    _decay("adam", b1=b1, b2=b2)

    def init(params: Any) -> AdamState:
        return AdamState(np.zeros((), np.int64), _zeros(params), _zeros(params))

    def update(grads: Any, state: Any, params: Any) -> tuple[Any, Any]:
        ps, gs, treedef = _leaves(grads, params, "adam")
        ms, vs = _state_leaves(state, AdamState, treedef, params, "adam")
        step: Any = state.step
        if type(step) is Tensor:  # a traced count: the corrections are computed by the ops
            step = step + 1
            correction1: Any = 1.0 - ops.power(b1, step)
            correction2: Any = 1.0 - ops.power(b2, step)
        else:
            step = np.asarray(int(step) + 1)
            correction1, correction2 = 1.0 - b1 ** int(step), 1.0 - b2 ** int(step)
        new_ps, new_ms, new_vs = [], [], []
        for p, g, m, v in zip(ps, gs, ms, vs):
            g = _like(g, p)
            c1, c2 = correction1, correction2
            if type(c1) is Tensor:
                c1, c2 = _like(c1, p), _like(c2, p)
            if _plain(p, g, m, v) and type(c1) is float:
                m_new = np.multiply(m, b1, out=np.empty_like(p))
                scratch = np.multiply(g, 1 - b1, out=np.empty_like(p))
                m_new += scratch
                v_new = np.multiply(v, b2, out=np.empty_like(p))
                np.multiply(g, g, out=scratch)
                scratch *= 1 - b2
                v_new += scratch
                np.divide(v_new, c2, out=scratch)
                np.sqrt(scratch, out=scratch)
                scratch += eps
                p_new = np.divide(m_new, c1, out=np.empty_like(p))
                p_new *= learning_rate
                p_new /= scratch
                np.subtract(p, p_new, out=p_new)
            else:
                m_new = m * b1 + g * (1 - b1)
                v_new = v * b2 + g * g * (1 - b2)
                p_new = p - m_new / c1 * learning_rate / (ops.sqrt(v_new / c2) + eps)
            new_ps.append(p_new)
            new_ms.append(m_new)
            new_vs.append(v_new)
        return tree_unflatten(treedef, new_ps), AdamState(
            step, tree_unflatten(treedef, new_ms), tree_unflatten(treedef, new_vs))

    return Optimizer(init, update)
