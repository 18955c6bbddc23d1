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

import itertools
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from tinygrad_nn import ops
from tinygrad_nn.functional import grad
from tinygrad_nn.pytree import TreeDef, tree_flatten, tree_paths, tree_unflatten
from tinygrad_nn.tensor import Tensor

__all__ = [
    "AdamState",
    "MomentumState",
    "Optimizer",
    "RMSPropState",
    "adam",
    "momentum",
    "ravel_pytree",
    "rmsprop",
    "sgd",
    "tree_vdot",
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
def _positive(name: str, **numbers: float) -> None:
    for key, number in numbers.items():
        if not number > 0:
            raise ValueError(f"optim.{name}: {key} must be > 0, got {number}")


def _decay(name: str, **numbers: float) -> None:
    for key, number in numbers.items():
        if not 0 <= number < 1:
            raise ValueError(f"optim.{name}: {key} must be in [0, 1), got {number}")


Structure = TreeDef | tuple[Any, ...]  # a TreeDef, or a dict of arrays' keys (the fast path)


def _flatten(tree: Any) -> tuple[list[Any], Structure]:
    """(leaves, structure): a dict of arrays — parameters as ``nn`` keeps them — read without
    the general pytree walk, which costs more than the update of a small net."""
    if type(tree) is dict:
        leaves = list(tree.values())
        if all(type(leaf) is np.ndarray for leaf in leaves):
            return leaves, tuple(tree)
    return tree_flatten(tree)


def _unflatten(structure: Structure, leaves: list[Any]) -> Any:
    if type(structure) is tuple:
        return dict(zip(structure, leaves))
    return tree_unflatten(structure, leaves)  # type: ignore[arg-type]


def _flatten_like(tree: Any, structure: Structure, params: Any, what: str,
                  caller: str) -> list[Any]:
    """The leaves of ``tree``, after checking it has the structure of ``params``."""
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
    """(params' leaves, grads' leaves, params' structure), after checking that each leaf is a
    float array (or Tensor) and each gradient has its parameter's shape."""
    param_leaves, structure = _flatten(params)
    grad_leaves = _flatten_like(grads, structure, params, "grads", caller)
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
    return param_leaves, grad_leaves, structure


def _check_state(state: Any, kind: type, caller: str) -> None:
    if type(state) is not kind:
        raise TypeError(f"optim.{caller}: state is {type(state).__name__}; expected the "
                        f"{kind.__name__} that {caller}(...).init(params) returns")


def _zeros(params: Any) -> Any:
    """Zeros of each parameter's shape and (float) dtype."""
    leaves, treedef = tree_flatten(params)
    return tree_unflatten(treedef, [np.zeros(np.shape(p), getattr(p, "dtype", np.float64))
                                    for p in leaves])


def _like(g: Any, p: Any) -> Any:
    """g in p's dtype (the new parameter keeps the old one's dtype)."""
    if g.dtype == p.dtype:
        return g
    return g.astype(p.dtype) if type(g) is np.ndarray else ops.astype(g, p.dtype)


# Below this many elements in all, the leaves are updated as one flat array: numpy's cost per
# call (about 0.5 µs) outweighs copying a small tree into one array and back out as views.
_FLAT_UP_TO = 1 << 16

Kernel = Callable[..., tuple[Any, ...]]


def _apply(caller: str, grads: Any, params: Any, states: dict[str, Any], kernel: Kernel,
           formula: Kernel, **scalars: Any) -> tuple[Any, ...]:
    """(new params, new state trees…): ``kernel(p, g, *state, **scalars)`` on numpy arrays,
    ``formula`` (the same with ops) where a leaf or a scalar is a Tensor."""
    ps, gs, structure = _leaves(grads, params, caller)
    kinds = [ps, [_like(g, p) for g, p in zip(gs, ps)], *[
        _flatten_like(tree, structure, params, f"state.{name}", caller)
        for name, tree in states.items()]]  # parameters, gradients, each state's leaves
    traced = any(type(x) is Tensor for x in scalars.values())
    plain = not traced and {type(x) for leaves in kinds for x in leaves} == {np.ndarray}
    if (plain and len(ps) > 1 and len({p.dtype for p in ps}) == 1
            and sum(p.size for p in ps) <= _FLAT_UP_TO):
        flats = kernel(*[np.concatenate([x.ravel() for x in leaves]) for leaves in kinds],
                       **scalars)
        bounds = [0, *itertools.accumulate(p.size for p in ps)]
        rows = [[flat[a:b].reshape(p.shape) for p, a, b in zip(ps, bounds, bounds[1:])]
                for flat in flats]
    else:
        rows = [list(row) for row in zip(*[
            kernel(*column, **scalars) if not traced and all(
                type(x) is np.ndarray for x in column) else formula(*column, **scalars)
            for column in zip(*kinds)])]
    return tuple(_unflatten(structure, row) for row in rows)


def _fresh(like: np.ndarray) -> np.ndarray:
    return np.empty(like.shape, like.dtype)


# --- the optimizers: each a numpy kernel (its own memory, rounded as the formula is written)
# --- and the formula itself on Tensors ---------------------------------------------------------
def sgd(learning_rate: float) -> Optimizer:
    """Gradient descent: p ← p − lr·g (rounded as ``nn.sgd_update``: (−lr·g) + p, the same)."""
    _positive("sgd", learning_rate=learning_rate)
    rate = float(learning_rate)

    def kernel(p: Any, g: Any) -> tuple[Any]:
        new = np.multiply(g, -rate, out=_fresh(p))
        new += p
        return (new,)

    def formula(p: Any, g: Any) -> tuple[Any]:
        return (ops.add(ops.mul(g, -rate), p),)

    def init(params: Any) -> tuple[()]:
        return ()

    def update(grads: Any, state: Any, params: Any) -> tuple[Any, Any]:
        (new,) = _apply("sgd", grads, params, {}, kernel, formula)
        return new, state

    return Optimizer(init, update)


def momentum(learning_rate: float, beta: float = 0.9) -> Optimizer:
    """Momentum in the course's convention: v ← β·v + (1 − β)·g, p ← p − lr·v (v starts at 0;
    no bias correction). PyTorch's SGD momentum is v ← μ·v + g instead: the same direction
    with lr scaled by 1 / (1 − β) once it settles."""
    _positive("momentum", learning_rate=learning_rate)
    _decay("momentum", beta=beta)
    rate, beta = float(learning_rate), float(beta)

    def kernel(p: Any, g: Any, v: Any) -> tuple[Any, Any]:
        v_new = np.multiply(v, beta, out=_fresh(p))
        scratch = np.multiply(g, 1 - beta, out=_fresh(p))
        v_new += scratch
        p_new = np.multiply(v_new, rate, out=scratch)
        return np.subtract(p, p_new, out=p_new), v_new

    def formula(p: Any, g: Any, v: Any) -> tuple[Any, Any]:
        v_new = v * beta + g * (1 - beta)
        return p - v_new * rate, v_new

    def init(params: Any) -> MomentumState:
        return MomentumState(_zeros(params))

    def update(grads: Any, state: Any, params: Any) -> tuple[Any, Any]:
        _check_state(state, MomentumState, "momentum")
        new, velocity = _apply("momentum", grads, params, {"velocity": state.velocity}, kernel,
                               formula)
        return new, MomentumState(velocity)

    return Optimizer(init, update)


def rmsprop(learning_rate: float, decay: float = 0.9, eps: float = 1e-8) -> Optimizer:
    """RMSprop: s ← d·s + (1 − d)·g², p ← p − lr·g / (√s + ε) (the course's β₂ is ``decay``,
    PyTorch's ``alpha``; ε outside the root, as both)."""
    _positive("rmsprop", learning_rate=learning_rate, eps=eps)
    _decay("rmsprop", decay=decay)
    rate, decay, eps = float(learning_rate), float(decay), float(eps)

    def kernel(p: Any, g: Any, s: Any) -> tuple[Any, Any]:
        s_new = np.multiply(s, decay, out=_fresh(p))
        scratch = np.multiply(g, g, out=_fresh(p))
        scratch *= 1 - decay
        s_new += scratch
        np.sqrt(s_new, out=scratch)
        scratch += eps
        p_new = np.multiply(g, rate, out=_fresh(p))
        p_new /= scratch
        return np.subtract(p, p_new, out=p_new), s_new

    def formula(p: Any, g: Any, s: Any) -> tuple[Any, Any]:
        s_new = s * decay + g * g * (1 - decay)
        return p - g * rate / (ops.sqrt(s_new) + eps), s_new

    def init(params: Any) -> RMSPropState:
        return RMSPropState(_zeros(params))

    def update(grads: Any, state: Any, params: Any) -> tuple[Any, Any]:
        _check_state(state, RMSPropState, "rmsprop")
        new, square_average = _apply("rmsprop", grads, params,
                                     {"square_average": state.square_average}, kernel, formula)
        return new, RMSPropState(square_average)

    return Optimizer(init, update)


def adam(learning_rate: float = 1e-3, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-8) -> Optimizer:
    """Adam with bias correction, at step t = 1, 2, …:

    m ← b1·m + (1 − b1)·g,  v ← b2·v + (1 − b2)·g²,
    p ← p − lr·(m / (1 − b1ᵗ)) / (√(v / (1 − b2ᵗ)) + ε)

    as the course writes it; ``torch.optim.Adam`` computes the same (to rounding)."""
    _positive("adam", learning_rate=learning_rate, eps=eps)
    _decay("adam", b1=b1, b2=b2)
    rate, b1, b2, eps = float(learning_rate), float(b1), float(b2), float(eps)

    def kernel(p: Any, g: Any, m: Any, v: Any, c1: float, c2: float) -> tuple[Any, Any, Any]:
        m_new = np.multiply(m, b1, out=_fresh(p))
        scratch = np.multiply(g, 1 - b1, out=_fresh(p))
        m_new += scratch
        v_new = np.multiply(v, b2, out=_fresh(p))
        np.multiply(g, g, out=scratch)
        scratch *= 1 - b2
        v_new += scratch
        np.divide(v_new, c2, out=scratch)
        np.sqrt(scratch, out=scratch)
        scratch += eps
        p_new = np.divide(m_new, c1, out=_fresh(p))
        p_new *= rate
        p_new /= scratch
        return np.subtract(p, p_new, out=p_new), m_new, v_new

    def formula(p: Any, g: Any, m: Any, v: Any, c1: Any, c2: Any) -> tuple[Any, Any, Any]:
        if type(c1) is Tensor:  # a traced step count: the corrections in p's dtype
            c1, c2 = _like(c1, p), _like(c2, p)
        m_new = m * b1 + g * (1 - b1)
        v_new = v * b2 + g * g * (1 - b2)
        return p - m_new / c1 * rate / (ops.sqrt(v_new / c2) + eps), m_new, v_new

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
        new, mu, nu = _apply("adam", grads, params, {"mu": state.mu, "nu": state.nu}, kernel,
                             formula, c1=c1, c2=c2)
        return new, AdamState(step, mu, nu)

    return Optimizer(init, update)


# --------------------------------------------------------------------------- whole-tree helpers
# For composers: a parameter tree as one vector (gradient checks, second-order methods), the
# inner product of two trees (as jax.flatten_util.ravel_pytree and optax's tree_vdot), and
# Hessian-vector products.


def ravel_pytree(tree: Any) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """Every leaf in one flat vector (in their common dtype), and the function that cuts such a
    vector back into the tree, each leaf in its own shape and dtype (as ``jax.flatten_util``)."""
    leaves, treedef = tree_flatten(tree)
    arrays = [np.asarray(leaf) for leaf in leaves]
    bounds = np.cumsum([0] + [a.size for a in arrays])

    def unravel(vector: np.ndarray) -> Any:
        if np.shape(vector) != (bounds[-1],):
            raise ValueError(f"unravel: the vector has shape {np.shape(vector)}; expected "
                             f"({bounds[-1]},), as ravel_pytree made it")
        return tree_unflatten(treedef, [vector[start:stop].reshape(a.shape).astype(a.dtype)
                                        for a, start, stop in zip(arrays, bounds, bounds[1:])])

    return np.concatenate([a.ravel() for a in arrays]) if arrays else np.zeros(0), unravel


def tree_vdot(a: Any, b: Any) -> float:
    """Σ over the leaves of a and b (same structure) of their elementwise products."""
    (a_leaves, a_def), (b_leaves, b_def) = tree_flatten(a), tree_flatten(b)
    if a_def != b_def:
        raise ValueError(f"tree_vdot: the trees differ in structure: leaves {tree_paths(a)} "
                         f"and {tree_paths(b)}")
    return float(sum(np.vdot(x, y) for x, y in zip(a_leaves, b_leaves)))


def hvp(f: Callable[..., Any], argnums: int = 0) -> Callable[..., Any]:
    """``hvp(f)(*args, v)``: the Hessian of scalar ``f`` at ``args[argnums]`` times ``v`` (a pytree
    of that argument's structure), as the gradient of ⟨∇f, v⟩."""

    def hvp_f(*args_and_v: Any) -> Any:
        *args, v = args_and_v

        directions, v_def = tree_flatten(v)
        if v_def != tree_flatten(args[argnums])[1]:  # zip would pair leaves silently wrong
            raise ValueError(f"hvp: v must have the structure of argument {argnums}")

        def along(*xs: Any) -> Any:  # ⟨∇f(xs), v⟩
            pairs = zip(tree_flatten(grad(f, argnums)(*xs))[0], directions)
            return sum(ops.sum(ops.mul(g, u)) for g, u in pairs)

        return grad(along, argnums)(*args)

    return hvp_f
