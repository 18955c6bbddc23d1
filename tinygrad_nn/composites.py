"""Functions of primitives under numpy's names, with no rules of their own (as jax.numpy sits on
jax.lax): each calls ``ops``' primitives, so its gradient, its ``jit`` replay and its ONNX form
are theirs. Shapes, axes and index arrays are worked out here from the inputs' shapes (never
their values): a traced input gives the same program on every call. At the end, the Tensor
methods numpy's arrays have.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_nn import ops
from tinygrad_nn.ops import Axis, concatenate, getitem, reshape, transpose, where
from tinygrad_nn.tensor import ArrayLike, Tensor, dtype_of, shape_of


def _axis(axis: int, ndim: int, op: str) -> int:
    return ops._axes(axis, (1,) * ndim, op)[0]


def _along(axis: int, part: Any) -> tuple[Any, ...]:
    """An index taking ``part`` at ``axis`` and all of each axis before it."""
    return (slice(None),) * axis + (part,)


# --- elementwise ----------------------------------------------------------------------------------
def log_sigmoid(x: ArrayLike) -> Tensor:
    """log σ(x) = -softplus(-x): finite where log(sigmoid(x)) gives -inf."""
    return ops.neg(ops.softplus(ops.neg(x)))


def square(x: ArrayLike) -> Tensor:
    return ops.mul(x, x)


def reciprocal(x: ArrayLike) -> Tensor:
    """1 / x (a float, also for integers)."""
    return ops.div(1.0, x)


def log2(x: ArrayLike) -> Tensor:
    return ops.div(ops.log(x), math.log(2.0))


def log10(x: ArrayLike) -> Tensor:
    return ops.div(ops.log(x), math.log(10.0))


def round(x: ArrayLike, decimals: int = 0) -> Tensor:
    """x rounded to ``decimals`` places, halves to even; no gradient. As numpy: rint(x·10ᵈ)/10ᵈ
    (x/10⁻ᵈ, rint, ·10⁻ᵈ for d < 0); an integer x with d ≥ 0 as it is."""
    if decimals == 0 or (dtype_of(x).kind in "biu" and decimals > 0):
        return ops.rint(x) if dtype_of(x).kind == "f" else ops.identity(x)
    scale = 10.0 ** abs(decimals)
    if decimals > 0:
        return ops.div(ops.rint(ops.mul(x, scale)), scale)
    return ops.mul(ops.rint(ops.div(x, scale)), scale)


# --- reductions -----------------------------------------------------------------------------------
def logsumexp(x: ArrayLike, axis: Axis = 0, keepdims: bool = False,
              where: ArrayLike | None = None) -> Tensor:
    """log Σ exp(x) over ``axis`` (the class axis, 0), without overflow. ``where`` (booleans
    broadcast to x's shape): only its True entries count; -inf where none does, as jax.nn's."""
    if where is None:
        return ops.logsumexp(x, axis, keepdims)
    masked = ops.where(where, x, -math.inf)
    # a row with no True entry (its max is -inf) sums zeros instead: finite, so its gradient is
    # 0, never NaN; its result is -inf all the same
    counted = ops.greater(ops.max(masked, axis, keepdims=True), -math.inf)
    total = ops.logsumexp(ops.where(counted, masked, 0.0), axis, keepdims)
    return ops.where(ops.greater(ops.max(masked, axis, keepdims), -math.inf), total, -math.inf)


# --- contractions ---------------------------------------------------------------------------------
def einsum(subscripts: str, *operands: ArrayLike) -> Tensor:
    """numpy's Einstein sum: ``einsum("ij,jk->ik", a, b)``, with ``...`` for broadcast axes and
    the implicit output (``"ij,jk"``: the letters used once, in order). The op is recorded with
    explicit letters: ``...`` becomes unused ones."""
    inputs, arrow, output = subscripts.replace(" ", "").partition("->")
    terms = inputs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum: {subscripts!r} names {len(terms)} operands, got "
                         f"{len(operands)}")
    ranks = [len(shape_of(x)) - len(t) + 3 if "..." in t else 0 for t, x in zip(terms, operands)]
    spare = "".join(sorted(set(string.ascii_letters) - set(subscripts)))
    dots = spare[:max(ranks, default=0)]
    letters = "".join(terms).replace("...", "")
    if not arrow:  # implicit: the broadcast axes, then the letters used once, in order
        output = "..." + "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    terms = [t.replace("...", dots[len(dots) - r:]) for t, r in zip(terms, ranks)]
    return ops._einsum(*operands, subscripts=",".join(terms) + "->" + output.replace("...", dots))


def tensordot(a: ArrayLike, b: ArrayLike, axes: int | Sequence[Any] = 2) -> Tensor:
    """Σ over a's ``axes[0]`` and b's ``axes[1]`` (an int n: a's last n and b's first n)."""
    na, nb = len(shape_of(a)), len(shape_of(b))
    pairs = (range(na - axes, na), range(axes)) if isinstance(axes, int) else axes
    left, right = ([p] if isinstance(p, int) else list(p) for p in pairs)
    if len(left) != len(right):
        raise ValueError(f"tensordot: axes {axes} pair {len(left)} axes of a with "
                         f"{len(right)} of b")
    a_letters = list(string.ascii_letters[:na])
    b_letters = list(string.ascii_letters[na:na + nb])
    for i, j in zip(left, right):
        b_letters[_axis(j, nb, "tensordot")] = a_letters[_axis(i, na, "tensordot")]
    out = [c for c in a_letters if c not in b_letters] + [c for c in b_letters
                                                          if c not in a_letters]
    return ops._einsum(a, b, subscripts=f"{''.join(a_letters)},{''.join(b_letters)}->"
                                        f"{''.join(out)}")


def dot(a: ArrayLike, b: ArrayLike) -> Tensor:
    """numpy's dot: a product with a 0-d operand, matmul up to 2-D, else Σ over a's last axis
    and b's second to last."""
    na, nb = len(shape_of(a)), len(shape_of(b))
    if na == 0 or nb == 0:
        return ops.mul(a, b)
    return ops.matmul(a, b) if na <= 2 and nb <= 2 else tensordot(a, b, ([-1], [max(nb - 2, 0)]))


def inner(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Σ over the last axes of a and b (a product with a 0-d operand)."""
    if not shape_of(a) or not shape_of(b):
        return ops.mul(a, b)
    return tensordot(a, b, ([-1], [-1]))


def outer(a: ArrayLike, b: ArrayLike) -> Tensor:
    """out[i, j] = a[i]·b[j], of a and b flattened."""
    return ops.mul(reshape(a, -1, 1), reshape(b, -1))


# --- reductions, scans and sorts ----------------------------------------------------------------
def _flat(x: ArrayLike, axis: int | None, op: str) -> tuple[ArrayLike, int]:
    """(x, axis) normalised; axis None: the flattened x and 0, as numpy's scans and sorts."""
    x, axis = (reshape(x, -1), 0) if axis is None else (x, axis)
    return x, _axis(axis, len(shape_of(x)), op)


def argmin(x: ArrayLike, axis: int | None = 0) -> Tensor:
    """The index of the smallest element along ``axis`` (0, the class axis, by default, as
    ``argmax``; None: of the flattened x, as numpy)."""
    return ops._argmin(x, axis=None if axis is None else _axis(axis, len(shape_of(x)), "argmin"))


def cumsum(x: ArrayLike, axis: int | None = None) -> Tensor:
    """Running sums along ``axis`` (None: of the flattened x)."""
    x, axis = _flat(x, axis, "cumsum")
    return ops._cumsum(x, axis=axis)


def argsort(x: ArrayLike, axis: int | None = -1) -> Tensor:
    """The indices that sort x along ``axis`` (None: the flattened x); ties keep their order."""
    x, axis = _flat(x, axis, "argsort")
    return ops._argsort(x, axis=axis)


def sort(x: ArrayLike, axis: int | None = -1) -> Tensor:
    """x sorted along ``axis`` (None: flattened); the gradient goes back through the
    permutation (ties keep their order). A new Tensor (numpy's ``ndarray.sort`` sorts in
    place; as JAX's, ``Tensor.sort`` returns the sorted values)."""
    x, axis = _flat(x, axis, "sort")
    return ops._take_along_axis(x, ops._argsort(x, axis=axis), axis=axis)


def take_along_axis(x: ArrayLike, indices: Any, axis: int | None) -> Tensor:
    """x's values at ``indices`` along ``axis`` (an integer array of x's rank, broadcast at the
    other axes; None: of the flattened x), as numpy's: ``argsort``'s indices give the sorted x.
    The indices are an input of the program (recomputed on every ``jit`` call)."""
    x, axis = _flat(x, axis, "take_along_axis")
    return ops._take_along_axis(x, indices, axis=axis)


# --- shapes ---------------------------------------------------------------------------------------
def flatten(x: ArrayLike) -> Tensor:
    return reshape(x, -1)


def swapaxes(x: ArrayLike, axis1: int, axis2: int) -> Tensor:
    axes = list(range(len(shape_of(x))))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return transpose(x, axes)


def moveaxis(x: ArrayLike, source: int | Sequence[int], destination: int | Sequence[int]
             ) -> Tensor:
    """x with the axes ``source`` moved to ``destination``, the others kept in order."""
    ndim = len(shape_of(x))
    sources, destinations = (ops._axes(a, (1,) * ndim, "moveaxis") if isinstance(a, int) else
                             [_axis(i, ndim, "moveaxis") for i in a]
                             for a in (source, destination))
    if len(sources) != len(destinations):
        raise ValueError(f"moveaxis: source {source} and destination {destination} differ in "
                         "length")
    order = [a for a in range(ndim) if a not in sources]
    for to, a in sorted(zip(destinations, sources)):
        order.insert(to, a)
    return transpose(x, order)


def squeeze(x: ArrayLike, axis: Axis = None) -> Tensor:
    """x without its size-1 axes (``axis``: only those, each of size 1)."""
    shape = shape_of(x)
    axes = [a for a, n in enumerate(shape) if n == 1] if axis is None else ops._axes(
        axis, shape, "squeeze")
    if any(shape[a] != 1 for a in axes):
        raise ValueError(f"squeeze: axis {axis} of shape {shape} is not of size 1")
    return reshape(x, tuple(n for a, n in enumerate(shape) if a not in axes))


def expand_dims(x: ArrayLike, axis: int | Sequence[int]) -> Tensor:
    """x with new size-1 axes at ``axis`` (positions in the result)."""
    shape = iter(shape_of(x))
    ndim = len(shape_of(x)) + (1 if isinstance(axis, int) else len(axis))
    axes = ops._axes(axis, (1,) * ndim, "expand_dims")
    return reshape(x, tuple(1 if a in axes else next(shape) for a in range(ndim)))


def vstack(tensors: Sequence[ArrayLike]) -> Tensor:
    """Join along axis 0, a 1-D (n,) as a row (1, n)."""
    ops._joined(tensors, "vstack")
    return concatenate([reshape(x, (1, -1)) if len(shape_of(x)) < 2 else x for x in tensors])


def hstack(tensors: Sequence[ArrayLike]) -> Tensor:
    """Join along axis 1 (along axis 0 for 1-D inputs)."""
    shape = ops._joined(tensors, "hstack")
    return concatenate([reshape(x, -1) if not shape_of(x) else x for x in tensors],
                       axis=0 if len(shape) <= 1 else 1)


def array_split(x: ArrayLike, indices_or_sections: int | Sequence[int], axis: int = 0
                ) -> list[Tensor]:
    """x in pieces along ``axis``: n pieces of sizes differing by at most one (the first ones
    larger), or cut at the given indices."""
    axis = _axis(axis, len(shape_of(x)), "array_split")
    n = shape_of(x)[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        if indices_or_sections <= 0:
            raise ValueError(f"array_split: {indices_or_sections} sections; need at least 1")
        size, extra = divmod(n, int(indices_or_sections))
        sizes = [size + 1] * extra + [size] * (int(indices_or_sections) - extra)
        cuts = list(np.cumsum(sizes)[:-1].tolist())
    else:
        cuts = [int(i) for i in indices_or_sections]
    bounds = [0, *cuts, n]
    return [getitem(x, _along(axis, slice(start, stop))) for start, stop in zip(bounds,
                                                                                 bounds[1:])]


def split(x: ArrayLike, indices_or_sections: int | Sequence[int], axis: int = 0) -> list[Tensor]:
    """x in n equal pieces along ``axis`` (an error if they are not equal), or cut at indices."""
    n = shape_of(x)[_axis(axis, len(shape_of(x)), "split")]
    if isinstance(indices_or_sections, (int, np.integer)) and indices_or_sections > 0 and \
            n % indices_or_sections:
        raise ValueError(f"split: {n} does not split into {indices_or_sections} equal pieces "
                         "(array_split allows unequal ones)")
    return array_split(x, indices_or_sections, axis)


def tile(x: ArrayLike, reps: int | Sequence[int]) -> Tensor:
    """x repeated ``reps[k]`` times along axis k (shapes aligned at the right, as numpy)."""
    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    ndim = max(len(reps), len(shape_of(x)))
    shape = (1,) * (ndim - len(shape_of(x))) + shape_of(x)
    reps = (1,) * (ndim - len(reps)) + reps
    spread = (n for pair in zip(reps, shape) for n in pair)  # (r0, n0, r1, n1, …)
    x = reshape(x, tuple(n for size in shape for n in (1, size)))
    return reshape(ops.broadcast_to(x, tuple(spread)), tuple(r * n for r, n in zip(reps, shape)))


def repeat(x: ArrayLike, repeats: int | Sequence[int], axis: int | None = None) -> Tensor:
    """Each element repeated ``repeats`` times (or repeats[i] times) along ``axis`` (None: of
    the flattened x)."""
    x, axis = (reshape(x, -1), 0) if axis is None else (x, _axis(axis, len(shape_of(x)),
                                                                  "repeat"))
    return getitem(x, _along(axis, np.repeat(np.arange(shape_of(x)[axis]), repeats)))


def pad(x: ArrayLike, pad_width: Any, mode: str = "constant", constant_values: Any = 0
        ) -> Tensor:
    """x with ``pad_width`` = (before, after) values added along each axis (numpy's forms: n,
    (before, after), or one pair per axis), all ``constant_values`` (mode "constant" only)."""
    if mode != "constant":
        raise NotImplementedError(f"pad: mode {mode!r}; only 'constant' is implemented")
    ndim, dtype = len(shape_of(x)), dtype_of(x)
    widths = np.broadcast_to(np.asarray(pad_width), (ndim, 2)).tolist()
    values = np.broadcast_to(np.asarray(constant_values), (ndim, 2)).tolist()
    if any(w < 0 or not isinstance(w, int) for pair in widths for w in pair):
        raise ValueError(f"pad: pad_width {pad_width} must hold non-negative ints")
    for axis, ((before, after), (low, high)) in enumerate(zip(widths, values)):
        if before or after:
            block = list(shape_of(x))
            block[axis] = before
            low_block = np.full(block, low, dtype)
            block[axis] = after
            x = concatenate([low_block, x, np.full(block, high, dtype)], axis)
    return x if isinstance(x, Tensor) else Tensor(x)


def roll(x: ArrayLike, shift: int | Sequence[int], axis: Axis = None) -> Tensor:
    """x's elements shifted by ``shift`` along ``axis``, those pushed off the end coming back
    at the start (None: of the flattened x, in x's shape)."""
    if axis is None:
        return reshape(roll(reshape(x, -1), shift, 0), shape_of(x))
    ndim = len(shape_of(x))
    axes = [axis] if isinstance(axis, int) else list(axis)
    shifts = np.broadcast_to(np.asarray(shift), (len(axes),)).tolist()
    for a, s in zip(axes, shifts):
        a = _axis(a, ndim, "roll")
        n = shape_of(x)[a]
        if n and s % n:
            k = n - s % n
            x = concatenate([getitem(x, _along(a, slice(k, None))),
                             getitem(x, _along(a, slice(None, k)))], a)
    return x if isinstance(x, Tensor) else Tensor(x)


def flip(x: ArrayLike, axis: Axis = None) -> Tensor:
    """x with the order of its elements reversed along ``axis`` (None: every axis)."""
    axes = ops._axes(axis, shape_of(x), "flip")
    return getitem(x, tuple(slice(None, None, -1) if a in axes else slice(None)
                            for a in range(len(shape_of(x)))))


def take(x: ArrayLike, indices: Any, axis: int | None = None) -> Tensor:
    """x's elements at ``indices`` along ``axis`` (None: of the flattened x); the indices are
    an input of the program (recomputed on every ``jit`` call)."""
    if axis is None:
        return getitem(reshape(x, -1), indices)
    return getitem(x, _along(_axis(axis, len(shape_of(x)), "take"), indices))


# --- matrices -------------------------------------------------------------------------------------
def _tri(x: ArrayLike, k: int) -> np.ndarray:
    """True on and below the k-th diagonal of x's last two axes (n × n for a 1-D x, as numpy)."""
    shape = shape_of(x)
    return np.tri(shape[-min(len(shape), 2)], shape[-1], k, dtype=bool)


def tril(x: ArrayLike, k: int = 0) -> Tensor:
    """x with the elements above the k-th diagonal of its last two axes zero."""
    return where(_tri(x, k), x, 0)


def triu(x: ArrayLike, k: int = 0) -> Tensor:
    """x with the elements below the k-th diagonal of its last two axes zero."""
    return where(~_tri(x, k - 1), x, 0)


def diagonal(x: ArrayLike, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """The elements x[…, i, i + offset] of axes ``axis1`` and ``axis2``, along a new last axis
    (numpy's): one gather from the two axes flattened."""
    x = moveaxis(x, (axis1, axis2), (-2, -1))
    *rest, n, m = shape_of(x)
    i = np.arange(max(0, min(n, m - offset) if offset >= 0 else min(n + offset, m)))
    rows, columns = (i, i + offset) if offset >= 0 else (i - offset, i)
    return getitem(reshape(x, (*rest, n * m)), (Ellipsis, rows * m + columns))


def trace(x: ArrayLike, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """The sum of ``diagonal(x, offset, axis1, axis2)``."""
    return ops.sum(diagonal(x, offset, axis1, axis2), -1)


def diag(v: ArrayLike, k: int = 0) -> Tensor:
    """A 1-D v as the k-th diagonal of a square matrix; a 2-D v's k-th diagonal."""
    ndim = len(shape_of(v))
    if ndim == 2:
        return diagonal(v, k)
    if ndim != 1:
        raise ValueError(f"diag: v must be 1-D or 2-D, got shape {shape_of(v)}")
    n = shape_of(v)[0] + abs(k)
    column = reshape(pad(v, (max(-k, 0), max(k, 0))), (n, 1))
    return where(np.eye(n, k=k, dtype=bool), column, 0)


# --- Tensor's methods of these, as numpy's arrays have them ---------------------------------------
Tensor.log_sigmoid, Tensor.flatten, Tensor.swapaxes = log_sigmoid, flatten, swapaxes
Tensor.squeeze, Tensor.repeat, Tensor.take, Tensor.sort = squeeze, repeat, take, sort
Tensor.dot, Tensor.diagonal, Tensor.trace = dot, diagonal, trace
Tensor.argmin, Tensor.cumsum, Tensor.argsort, Tensor.round = argmin, cumsum, argsort, round

__all__ = [
    "argmin", "argsort", "array_split", "cumsum", "diag", "diagonal", "dot", "einsum",
    "expand_dims", "flatten", "flip", "hstack", "inner", "log2", "log10", "log_sigmoid",
    "logsumexp", "moveaxis", "outer", "pad", "reciprocal", "repeat", "roll", "round", "sort",
    "split", "square", "squeeze", "swapaxes", "take", "take_along_axis", "tensordot", "tile",
    "trace", "tril", "triu", "vstack"
]
