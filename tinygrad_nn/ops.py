"""Every op: a ``Primitive`` with its numpy forward, its VJP rules beside it, its math in one line.

A rule is ``rule(g, out, *inputs, **params) -> cotangent of that input``. In an ordinary
backward pass ``g``, ``out`` and the inputs are numpy arrays; with ``create_graph=True`` and in
traced programs they are Tensors, and the same rule records its ops. So a rule uses only
operators, methods and ``_any`` (a primitive on arrays or Tensors). A rule may return its
cotangent in the broadcast shape: ``autodiff.sum_to`` sums it back in one place. A primitive's
``batch`` rule (``vmap``; the shared ones in ``batching.py``) is the op on a batch. Ops that are
functions of these (``log_sigmoid``, ``swapaxes``, ``vstack``, …) are in ``composites.py``. At
the end, Tensor's operators and methods are these ops under numpy's names.
"""

from __future__ import annotations

import builtins
import functools
import math
import string
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tinygrad_nn import batching
from tinygrad_nn.tensor import (
    BROADCAST_ERROR,
    ArrayLike,
    CheckError,
    Primitive,
    Rule,
    Tensor,
    TracedValueError,
    shape_of,
)

Axis = int | Sequence[int] | None
BROADCAST = BROADCAST_ERROR
log: Primitive  # below: rules may use ops defined after them (power's uses log)
where: Primitive


def _any(primitive: Primitive, *args: Any, **params: Any) -> Any:
    """The primitive on Tensors (recorded), or its numpy forward on plain arrays."""
    for arg in args:
        if type(arg) is Tensor:
            return primitive(*args, **params)
    return primitive.impl(*args, **params) if params else primitive.impl(*args)


def _each(out: tuple[int, ...], *shapes: Any, **params: Any) -> int:
    return math.prod(out)  # one FLOP per output element


def _free(out: tuple[int, ...], *shapes: Any, **params: Any) -> int:
    return 0  # moves numbers, computes none


def _binary(name: str, impl: Any, rule_x: Rule, rule_y: Rule, math: str) -> Primitive:
    return Primitive(name, impl, (rule_x, rule_y), math, _each, BROADCAST, out=True,
                     elementwise=True)


def _pass(g: Any, out: Any, *inputs: Any, **params: Any) -> Any:
    return g


def _negate(g: Any, out: Any, *inputs: Any, **params: Any) -> Any:
    return -g


# --- arithmetic ---------------------------------------------------------------------------------
add = _binary("add", np.add, _pass, _pass, "d(x + y) = dx + dy")
sub = _binary("sub", np.subtract, _pass, _negate, "d(x - y) = dx - dy")
mul = _binary("mul", np.multiply, lambda g, out, x, y: g * y, lambda g, out, x, y: g * x,
              "d(x·y) = y·dx + x·dy")
div = _binary("div", np.true_divide, lambda g, out, x, y: g / y,
              lambda g, out, x, y: -g * out / y, "d(x / y) = dx / y - (x / y)·dy / y")


def _power_dx(g: Any, out: Any, x: Any, p: Any) -> Any:  # 0 where p = 0: x^0 is 1, even at 0
    if type(p) in (int, float):
        return g * (p * (x if p == 2 else x ** (p - 1))) if p != 0 else g * 0.0
    return g * (p * x ** _any(where, p == 0, 1.0, p - 1))  # there p·x^1 = 0, not 0·0^-1


def _power_dp(g: Any, out: Any, x: Any, p: Any) -> Any:  # 0 at x = 0, the limit of x^p·log x
    zero = x == 0
    return g * _any(where, zero, 0.0, out * _any(log, _any(where, zero, 1.0, x)))


power = _binary("pow", np.power, _power_dx, _power_dp,
                "d(x^p) = p·x^(p-1)·dx + x^p·log x·dp (0 where p = 0, and where x = 0)")
neg = Primitive("neg", np.negative, (_negate,), "d(-x) = -dx", _each, out=True, elementwise=True)


def _matmul_dx(g: Any, out: Any, x: Any, y: Any) -> Any:
    if y.ndim == 1:  # numpy took y as a column: an outer product (g is 0-d if x is 1-D too)
        return g[..., None] * y
    return (g[..., None, :] @ y.mT)[..., 0, :] if x.ndim == 1 else g @ y.mT  # x was a row


def _matmul_dy(g: Any, out: Any, x: Any, y: Any) -> Any:
    if x.ndim == 1:  # numpy took x as a row
        return x[:, None] * g[..., None, :] if y.ndim > 1 else x * g
    return (x.mT @ g[..., None])[..., 0] if y.ndim == 1 else x.mT @ g  # y was a column


matmul = Primitive(
    "matmul", np.matmul, (_matmul_dx, _matmul_dy), "d(x @ y) = dx @ y + x @ dy: x̄ = ḡ·yᵀ, ȳ = xᵀ·ḡ",
    lambda out, x, y: 2 * math.prod(out) * (x[-1] if x else 1), "cannot multiply shapes "
    "{shapes}: need x[..., n, k] @ y[..., k, m] with equal k (1-D operands allowed, 0-d not)",
    out=True, batch=batching.matmul)


# --- elementwise functions ------------------------------------------------------------------------
def _sigmoid(x: Any, out: Any = None) -> Any:
    """1 / (1 + exp(-x)), into ``out`` when given; exp(-x) = inf for x < -709 gives the limit, 0.
    -x is 0 - x: a float for an int, and numpy has no negative of a bool."""
    with np.errstate(over="ignore"):
        denominator = np.add(np.exp(np.subtract(0.0, x, out=out), out=out), 1.0, out=out)
    return np.divide(1.0, denominator, out=out)  # float literals: an int costs a cast


def _unary(name: str, impl: Any, rule: Rule | None, math: str) -> Primitive:
    return Primitive(name, impl, None if rule is None else (rule,), math, _each, out=True,
                     elementwise=True)


exp = _unary("exp", np.exp, lambda g, out, x: g * out, "d exp(x) = exp(x)·dx")
log = _unary("log", np.log, lambda g, out, x: g / x, "d log(x) = dx / x")
sqrt = _unary("sqrt", np.sqrt, lambda g, out, x: g / (out * 2.0), "d √x = dx / (2√x)")
sign = _unary("sign", np.sign, None, "sign(x): no gradient (its derivative is 0 almost everywhere)")
abs = _unary("abs", np.abs, lambda g, out, x: g * _any(sign, x), "d|x| = sign(x)·dx")
# sign(relu(x)) is the mask [x > 0] in g's dtype: cheaper than a comparison and a cast
relu = _unary("relu", lambda x, out=None: np.maximum(x, 0.0, out=out),
              lambda g, out, x: g * _any(sign, out), "d relu x = [x > 0]·dx (0 at 0: the course's)")
sigmoid = _unary("sigmoid", _sigmoid, lambda g, out, x: g * out * (1.0 - out),
                 "d σ(x) = σ(x)·(1 - σ(x))·dx")
tanh = _unary("tanh", np.tanh, lambda g, out, x: g * (1.0 - out * out), "d tanh x = (1-tanh²x)·dx")
# log(1 + exp(x)) exactly for every x: no overflow, no underflow to 0
softplus = _unary("softplus", lambda x, out=None: np.logaddexp(0.0, x, out=out),
                  lambda g, out, x: g * _any(sigmoid, x), "d softplus(x) = σ(x)·dx")


def _wins(mine: Any, other: Any, g: Any) -> Any:
    """1 where this side wins, 1/2 on ties (as JAX and PyTorch split them), else 0: g's dtype."""
    return ((mine > other) + (mine == other) * 0.5).astype(g.dtype)


maximum = _binary("maximum", np.maximum, lambda g, out, x, y: g * _wins(x, y, g),
                  lambda g, out, x, y: g * _wins(y, x, g), "d max(x, y) = [x > y]·dx + [y > x]·dy")
minimum = _binary("minimum", np.minimum, lambda g, out, x, y: g * _wins(y, x, g),
                  lambda g, out, x, y: g * _wins(x, y, g), "d min(x, y) = [x < y]·dx + [y < x]·dy")
where = Primitive("where", np.where, (None, lambda g, out, c, x, y: _any(where, c, g, 0.0),
                                      lambda g, out, c, x, y: _any(where, c, 0.0, g)),
                  "d where(c, x, y) = where(c, dx, 0) + where(c, 0, dy); c has no gradient",
                  _each, BROADCAST, fresh=True, elementwise=True)


def _inside(g: Any, out: Any, x: Any, low: Any, high: Any) -> Any:
    inside = (x >= low) if low is not None else True
    return _any(where, inside * (x <= high) if high is not None else inside, g, 0.0)


_clip = Primitive("clip", lambda x, low, high, out=None: np.clip(x, low, high, out=out),
                  (_inside,), "d clip(x) = [low ≤ x ≤ high]·dx (as PyTorch)", _each,
                  "bounds {low!r} and {high!r} must be numbers or None ({error})", out=True,
                  elementwise=True)


def clip(x: ArrayLike, low: float | None, high: float | None) -> Tensor:
    """x limited to [low, high] (None: no bound); the gradient passes where low ≤ x ≤ high."""
    return _clip(x, low=low, high=high)


def _compare(name: str, impl: Any) -> Primitive:
    return Primitive(name, impl, None, f"{name}(x, y): no gradient", _each, BROADCAST, out=True,
                     elementwise=True)


less, less_equal = _compare("less", np.less), _compare("less_equal", np.less_equal)
greater, equal = _compare("greater", np.greater), _compare("equal", np.equal)
greater_equal = _compare("greater_equal", np.greater_equal)
not_equal = _compare("not_equal", np.not_equal)


# --- more of numpy's elementwise functions ---------------------------------------------------
log1p = _unary("log1p", np.log1p, lambda g, out, x: g / (x + 1.0), "d log(1+x) = dx / (1+x)")
expm1 = _unary("expm1", np.expm1, lambda g, out, x: g * (out + 1.0), "d (eˣ-1) = eˣ·dx")
sin = _unary("sin", np.sin, lambda g, out, x: g * _any(cos, x), "d sin x = cos x·dx")
cos: Primitive = _unary("cos", np.cos, lambda g, out, x: -g * _any(sin, x), "d cos x = -sin x·dx")
tan = _unary("tan", np.tan, lambda g, out, x: g * (out * out + 1.0), "d tan x = (1+tan²x)·dx")
arcsin = _unary("arcsin", np.arcsin, lambda g, out, x: g / _any(sqrt, 1.0 - x * x),
                "d arcsin x = dx / √(1-x²)")
arccos = _unary("arccos", np.arccos, lambda g, out, x: -g / _any(sqrt, 1.0 - x * x),
                "d arccos x = -dx / √(1-x²)")
arctan = _unary("arctan", np.arctan, lambda g, out, x: g / (x * x + 1.0), "d arctan x = dx/(1+x²)")
sinh = _unary("sinh", np.sinh, lambda g, out, x: g * _any(cosh, x), "d sinh x = cosh x·dx")
cosh: Primitive = _unary("cosh", np.cosh, lambda g, out, x: g * _any(sinh, x), "d cosh = sinh·dx")
floor = _unary("floor", np.floor, None, "floor(x): no gradient (its derivative is 0 or none)")
ceil = _unary("ceil", np.ceil, None, "ceil(x): no gradient (its derivative is 0 or none)")
rint = _unary("rint", np.rint, None, "rint(x), to an integer (halves to even): no gradient")
logaddexp = _binary("logaddexp", np.logaddexp, lambda g, out, x, y: g * _any(exp, x - out),
                    lambda g, out, x, y: g * _any(exp, y - out), "d log(eˣ+eʸ) = eˣ⁻ᶻ·dx + eʸ⁻ᶻ·dy")
arctan2 = _binary("arctan2", np.arctan2, lambda g, out, y, x: g * x / (x * x + y * y),
                  lambda g, out, y, x: -g * y / (x * x + y * y), "d atan2 = (x·dy - y·dx)/(x²+y²)")
_erf_of_each = np.frompyfunc(math.erf, 1, 1)  # numpy has no erf: math.erf's, exact to float64
erf = Primitive("erf", lambda x: np.asarray(_erf_of_each(x), np.result_type(x, 1.0)), (
    lambda g, out, x: g * _any(exp, -(x * x)) * (2 / math.sqrt(math.pi)),),
    "d erf x = 2/√π·exp(-x²)·dx", _each, fresh=True, elementwise=True)
mod = _binary("mod", np.remainder, _pass, lambda g, out, x, y: -g * _any(floor, x / y),
              "d (x mod y) = dx - floor(x/y)·dy (numpy's: the sign of y)")


# --- reductions (params: ``axis``, a sorted tuple of non-negative axes, and ``keepdims``) -------
def _axes(axis: Axis, shape: tuple[int, ...], op: str) -> tuple[int, ...]:
    return _axes_of(tuple(axis) if isinstance(axis, (list, np.ndarray)) else axis, shape, op)


@functools.lru_cache(maxsize=1024)
def _axes_of(axis: Axis, shape: tuple[int, ...], op: str) -> tuple[int, ...]:
    ndim = len(shape)
    axes = range(ndim) if axis is None else _ints(axis, f"{op}: axis")
    if any(not -ndim <= a < builtins.max(ndim, 1) for a in axes):
        raise ValueError(f"{op}: axis {axis} is invalid for shape {shape}")
    return tuple(sorted(a % ndim if ndim else a for a in axes))


@functools.lru_cache(maxsize=1024)
def _kept(shape: tuple[int, ...], axis: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axis else n for i, n in enumerate(shape))


def _spread(g: Any, x: Any, axis: tuple[int, ...], keepdims: bool, count: float = 1.0) -> Any:
    """A reduction's cotangent (divided by ``count``) copied back over the reduced axes of x."""
    g = g if keepdims or g.ndim == 0 else g.reshape(_kept(x.shape, axis))  # 0-d: broadcasts
    g = g / count if count != 1.0 else g
    if type(g) is Tensor:
        return broadcast_to(g, x.shape)
    spread = np.empty(x.shape, dtype=g.dtype)  # cheaper than np.broadcast_to, and writable
    spread[...] = g
    return spread


def _average(x: Any, axis: tuple[int, ...], keepdims: Any) -> Any:
    total = np.add.reduce(x, axis, keepdims=keepdims)
    return total / (np.size(x) / builtins.max(total.size, 1))  # / the count per output element


def _at_max(g: Any, out: Any, x: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    winners = x == out.reshape(_kept(x.shape, axis))
    return g.reshape(_kept(x.shape, axis)) * (winners / winners.sum(axis, keepdims=True)).astype(
        g.dtype)


def _reduced(out: tuple[int, ...], x: tuple[int, ...], **params: Any) -> int:
    return math.prod(x)  # one FLOP per input element


_sum = Primitive("sum", lambda x, axis, keepdims, out=None: np.add.reduce(
    x, axis, keepdims=keepdims, out=out), (lambda g, out, x, **p: _spread(g, x, **p),),
    "d Σx = Σdx: the cotangent is copied back over the summed axes", _reduced, out=True,
    batch=batching.reduce)
_mean = Primitive("mean", _average, (lambda g, out, x, axis, keepdims: _spread(
    g, x, axis, keepdims, x.size / builtins.max(out.size, 1)),),
    "d mean(x) = mean(dx): the cotangent / n is copied back over the averaged axes",
    lambda out, x, **params: math.prod(x) + math.prod(out), fresh=True,
    batch=batching.reduce)
_max = Primitive("max", lambda x, axis, keepdims: np.maximum.reduce(x, axis, keepdims=keepdims),
                 (_at_max,), "d max(x) = dx at the maximum (ties split evenly, as JAX)", _reduced,
                 fresh=True, batch=batching.reduce)


def _reduction(primitive: Primitive, axis: Axis, doc: str) -> Callable[..., Tensor]:
    """The public op: ``op(x, axis, keepdims)`` with ``axis`` made a sorted tuple."""

    def reduce(x: ArrayLike, axis: Axis = axis, keepdims: bool = False) -> Tensor:
        return primitive(x, axis=_axes(axis, shape_of(x), primitive.name), keepdims=keepdims)

    reduce.__name__, reduce.__doc__ = primitive.name, doc
    return reduce


sum = _reduction(_sum, None, "Σ of x over ``axis`` (None: all axes).")
mean = _reduction(_mean, None, "The mean of x over ``axis`` (None: all axes).")
max = _reduction(_max, None, "The largest element over ``axis``; ties share the gradient evenly.")
_argmax = Primitive("argmax", lambda x, axis: np.argmax(x, axis), None, "no gradient", _reduced,
                    fresh=True, batch=batching.arg_reduce)


def argmax(x: ArrayLike, axis: int | None = 0) -> Tensor:
    """The index of the largest element along ``axis`` (the class axis, 0, by default; None: of
    the flattened x, as numpy)."""
    return _argmax(x, axis=None if axis is None else _axes(axis, shape_of(x), "argmax")[0])


_min = Primitive("min", lambda x, axis, keepdims: np.minimum.reduce(x, axis, keepdims=keepdims),
                 (_at_max,), "d min(x) = dx at the minimum (ties split)", _reduced, fresh=True,
                 batch=batching.reduce)
min = _reduction(_min, None, "The smallest element over ``axis``; ties share the gradient evenly.")
_argmin = Primitive("argmin", lambda x, axis: np.argmin(x, axis), None, "no gradient", _reduced,
                    fresh=True, batch=batching.arg_reduce)


def _others(g: Any, out: Any, x: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    """d Πx/dxᵢ = Π of the others, exact at zeros: the reduced axes moved last as one of n, an
    (…, n, n) copy of them with 1 on the diagonal, multiplied along its last axis."""
    order = [a for a in range(x.ndim) if a not in axis] + list(axis)
    moved, n = x.transpose(order), math.prod(x.shape[a] for a in axis)
    rows = moved.reshape((*moved.shape[:x.ndim - len(axis)], 1, n))
    others = _any(_prod, _any(where, np.eye(n, dtype=bool), 1.0, rows), axis=(rows.ndim - 1,),
                  keepdims=False)
    back = others.reshape(moved.shape).transpose(tuple(np.argsort(order).tolist()))
    return _spread(g, x, axis, keepdims) * back


_prod = Primitive("prod", lambda x, axis, keepdims, out=None: np.multiply.reduce(
    x, axis, keepdims=keepdims, out=out), (_others,), "d Πx = Σᵢ (Π of the others)·dxᵢ",
    _reduced, out=True, batch=batching.reduce)
prod = _reduction(_prod, None, "The product of x over ``axis`` (None: all axes).")


def _reverse_cumsum(g: Any, out: Any, x: Any, axis: int) -> Any:
    back = (slice(None),) * axis + (slice(None, None, -1),)  # the sums run from the end
    return _any(_cumsum, g[back], axis=axis)[back]


_cumsum = Primitive("cumsum", lambda x, axis, out=None: np.cumsum(x, axis, out=out),
                    (_reverse_cumsum,), "d Σ≤ᵢx = Σ≤ᵢdx: x̄ is ḡ summed from the end", _each,
                    out=True, batch=batching.reduce)
_argsort = Primitive("argsort", lambda x, axis: np.argsort(x, axis, kind="stable"), None,
                     "no gradient: the permutation that sorts x (stable)", _reduced, fresh=True,
                     batch=batching.reduce)


# --- many classes: the class axis is 0, examples are columns ------------------------------------
def _logsumexp_impl(x: np.ndarray, axis: tuple[int, ...], keepdims: bool) -> np.ndarray:
    shift = np.maximum.reduce(x, axis, keepdims=True)
    shift = np.where(np.isfinite(shift), shift, 0.0)  # all -inf (or an inf) along the axis
    with np.errstate(divide="ignore"):  # log 0 = -inf: all -inf along the axis
        total = np.log(np.add.reduce(np.exp(x - shift), axis, keepdims=True)) + shift
    return total if keepdims else np.squeeze(total, axis)


_logsumexp = Primitive(
    "logsumexp", _logsumexp_impl, (lambda g, out, x, axis, keepdims: _spread(g, x, axis, keepdims)
                              * _any(exp, x - _spread(out, x, axis, keepdims)),),
    "d log Σ exp(x) = softmax(x)·dx; shifted by the max: exact for ±1000",
    lambda out, x, **params: 4 * math.prod(x), fresh=True,
    batch=batching.reduce)


logsumexp = _reduction(_logsumexp, 0, "log Σ exp(x) over ``axis`` (the class axis, 0), without "
                       "overflow.")


# --- shapes ---------------------------------------------------------------------------------------
_reshape = Primitive("reshape", lambda x, shape: np.reshape(x, shape), (
    lambda g, out, x, shape: g.reshape(x.shape),), "the cotangent is reshaped back", _free,
    "cannot reshape shape {shapes} to {shape} ({error})", batch=batching.reshape)
_transpose = Primitive("transpose", lambda x, axes: x.transpose(axes), (
    lambda g, out, x, axes: g.transpose(tuple(np.argsort(axes).tolist())),),
    "the cotangent is permuted back", _free, "axes {axes} do not permute shape {shapes}",
    batch=batching.transpose)
_broadcast_to = Primitive("broadcast_to", lambda x, shape: np.broadcast_to(x, shape), (_pass,),
                          "the engine sums the cotangent back to x's shape", _free,
                          "shape {shapes} does not broadcast to {shape}",
                          batch=batching.broadcast_to)
_astype = Primitive("astype", lambda x, dtype: np.asarray(x).astype(dtype), (
    lambda g, out, x, dtype: g.astype(x.dtype),), "the cotangent goes back in x's dtype", _free,
    fresh=True, elementwise=True)
identity = Primitive("identity", lambda x: x, (_pass,), "d x = dx", _free,
                     batch=batching.unchanged)


def _ints(values: Any, what: str) -> tuple[int, ...]:
    """``values`` (an int or a sequence of ints) as a tuple, or a TypeError naming ``what``."""
    values = values.tolist() if isinstance(values, np.ndarray) else values
    values = (values,) if isinstance(values, (int, np.integer, Tensor)) else values
    for v in values if isinstance(values, (tuple, list)) else ():
        if type(v) is Tensor:
            v.concrete(what)  # a traced size: TracedValueError
    if not isinstance(values, (tuple, list)) or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{what} must be an int or a sequence of ints, got {values!r}")
    return tuple(map(int, values))


def _shape_arg(args: tuple[Any, ...], op: str) -> tuple[int, ...]:
    """``(2, 3)`` from ``f(x, 2, 3)`` or ``f(x, (2, 3))``."""
    return _ints(args[0] if len(args) == 1 else args, f"{op}: the shape or axes")


def reshape(x: ArrayLike, *shape: Any) -> Tensor:
    """x's numbers in ``shape`` (one -1 allowed): ``reshape(x, 2, 3)`` or ``reshape(x, (2, 3))``."""
    return _reshape(x, shape=_shape_arg(shape, "reshape"))


def transpose(x: ArrayLike, *axes: Any) -> Tensor:
    """x with its axes permuted (reversed when ``axes`` is empty)."""
    reverse = tuple(range(len(shape_of(x))))[::-1]
    return _transpose(x, axes=_shape_arg(axes, "transpose") if axes else reverse)


def broadcast_to(x: ArrayLike, *shape: Any) -> Tensor:
    return _broadcast_to(x, shape=_shape_arg(shape, "broadcast_to"))


def astype(x: ArrayLike, dtype: Any) -> Tensor:
    try:
        return _astype(x, dtype=np.dtype(dtype))
    except TypeError as error:  # numpy's "data type 'foo' not understood"
        raise TypeError(f"astype: {error}; expected a numpy dtype such as np.float32") from None


# --- indexing and joining ---------------------------------------------------------------------
class _Slot:
    """Where an index array stands in ``getitem``'s and ``scatter_add``'s ``index`` param: the
    arrays themselves are inputs, so a traced index is recomputed on every call."""

    def __repr__(self) -> str:
        return "#"


SLOT = _Slot()
_getitem: Primitive  # below: scatter_add's rule is a getitem


def _place(index: tuple[Any, ...], arrays: tuple[Any, ...]) -> tuple[Any, ...]:
    """``index`` with its slots filled by ``arrays``, in order."""
    filled = iter(arrays)
    return tuple(next(filled) if part is SLOT else part for part in index)


def _scatter_add(g: Any, *arrays: Any, index: tuple[Any, ...], shape: tuple[int, ...]) -> Any:
    result = np.zeros(shape, dtype=np.result_type(g))
    if arrays:
        np.add.at(result, _place(index, arrays), g)  # repeated places accumulate
    else:
        result[index] = g  # basic indexing: each place once
    return result


def _gather(x: Any, *arrays: Any, index: tuple[Any, ...]) -> Any:
    return x[_place(index, arrays) if arrays else index]


def _first_only(rule: Rule) -> Callable[[int], Rule]:
    return lambda position: rule if position == 0 else None  # type: ignore[return-value]


scatter_add = Primitive(
    "scatter_add", _scatter_add, _first_only(lambda dg, out, g, *arrays, index, shape: _any(
        _getitem, dg, *arrays, index=index)), "the transpose of x[index]: d scatter_add(g) = "
    "dg[index]", lambda out, g, *arrays, **params: math.prod(g), fresh=True,
    batch=lambda p, args, dims, index, shape: batching.scatter_add(p, args, dims, index, shape,
                                                                    SLOT))
_getitem = Primitive("getitem", _gather, _first_only(lambda g, out, x, *arrays, index: _any(
    scatter_add, g, *arrays, index=index, shape=x.shape)),
    "the cotangent is added back at the places (repeated places accumulate)", _free,
    "index {index} is invalid for shape {shapes}: {error}",
    batch=lambda p, args, dims, index: batching.getitem(p, args, dims, index, SLOT))


def getitem(x: ArrayLike, index: Any) -> Tensor:
    """x[index] for slices, integers, None, Ellipsis and integer or boolean arrays (or Tensors:
    a traced integer index is an input of the program; a traced boolean mask is an error)."""
    parts, arrays = [], []
    for part in index if isinstance(index, tuple) else (index,):
        if type(part) is Tensor or isinstance(part, (np.ndarray, list)):
            if type(part) is Tensor and part.program is not None and part.dtype == bool:
                raise TracedValueError(
                    f"{part.program.name}: x[mask] with a traced boolean mask: the result's shape "
                    "would depend on the values. Keep the shape: tg.where(mask, x, 0), or sum "
                    "over the mask")
            empty = isinstance(part, list) and not part  # numpy's x[[]]: an empty integer index
            arrays.append(part if type(part) is Tensor else np.asarray(part, np.intp if empty
                                                                         else None))
            parts.append(SLOT)
        else:
            parts.append(part)
    return _getitem(x, *arrays, index=tuple(parts))


def _piece(position: int) -> Rule:
    """The rule of a joined input: its own slice of the output's cotangent."""

    def rule(g: Any, out: Any, *inputs: Any, axis: int) -> Any:
        if g.ndim > len(shape_of(inputs[position])):  # stacked: its index along the new axis
            return g[(slice(None),) * axis + (position,)]
        start = builtins.sum(shape_of(x)[axis] for x in inputs[:position])
        return g[(slice(None),) * axis + (slice(start, start + shape_of(inputs[position])[axis]),)]

    return rule


_concatenate = Primitive("concatenate", lambda *xs, axis: np.concatenate(xs, axis), _piece,
                         "each input's cotangent is its slice of the output's cotangent", _free,
                         "shapes {shapes} do not join along axis {axis}", fresh=True,
                         batch=batching.aligned)
_stack = Primitive("stack", lambda *xs, axis: np.stack(xs, axis), _piece,
                   "each input's cotangent is its index along the new axis", _free,
                   "shapes {shapes} differ: cannot stack them", fresh=True,
                   batch=batching.aligned)


def _joined(tensors: Any, op: str) -> tuple[int, ...]:
    """The first input's shape, or an error unless ``tensors`` is a non-empty sequence."""
    if not isinstance(tensors, (list, tuple)) or not tensors:
        raise TypeError(f"{op}: expected a non-empty list or tuple of Tensors or arrays, got "
                        f"{tensors!r}")
    return shape_of(tensors[0])


def concatenate(tensors: Sequence[ArrayLike], axis: int = 0) -> Tensor:
    """Join along an existing axis."""
    return _concatenate(*tensors, axis=_axes(axis, _joined(tensors, "concatenate"),
                                               "concatenate")[0])


def stack(tensors: Sequence[ArrayLike], axis: int = 0) -> Tensor:
    """Join along a new axis (the shapes must be equal)."""
    return _stack(*tensors, axis=_axes(axis, (1, *_joined(tensors, "stack")), "stack")[0])


def _along(indices: Any, shape: tuple[int, ...], axis: int) -> tuple[Any, ...]:
    """take_along_axis as x[index arrays]: ``indices`` at ``axis``, a range at each other axis."""
    return tuple(indices if a == axis else np.arange(n).reshape((n,) + (1,) * (len(shape) - a - 1))
                 for a, n in enumerate(shape))


_take_along_axis = Primitive("take_along_axis", np.take_along_axis, _first_only(
    lambda g, out, x, i, axis: _any(scatter_add, g, *_along(i, x.shape, axis), index=(SLOT,) *
                                    x.ndim, shape=x.shape)), "x̄ is ḡ added back at the places "
    "taken (repeated places accumulate)", _free, "{error} (shapes {shapes}, axis {axis})",
    fresh=True, batch=batching.aligned)


# --- contractions -------------------------------------------------------------------------------
def _einsum_vjp(position: int) -> Rule:
    """Input ``position``'s cotangent: ḡ contracted with the other inputs onto its letters; a
    letter no other operand has comes from a ones vector, a repeated one from an identity."""

    def rule(g: Any, out: Any, *xs: Any, subscripts: str) -> Any:
        terms = subscripts.replace("->", ",").split(",")  # the inputs', then the output's
        mine, target, operands = terms.pop(position), "", [*xs[:position], *xs[position + 1:], g]
        spare = iter(sorted(set(string.ascii_letters) - set(subscripts)))
        for letter, n in zip(mine, shape_of(xs[position])):
            if letter in target:  # repeated: an identity puts it on a diagonal, a new letter
                letter += next(spare)
                terms.append(letter)
                operands.append(np.eye(n, dtype=g.dtype))
            elif letter not in "".join(terms):  # its own: a ones vector spreads it
                terms.append(letter)
                operands.append(np.ones(n, g.dtype))
            target += letter[-1]
        grad = _any(_einsum, *operands, subscripts=",".join(terms) + "->" + target)
        # a letter the other operands broadcast (size 1 there) comes back of size 1: spread it
        shape = np.broadcast_shapes(grad.shape, shape_of(xs[position]))
        return grad if grad.shape == shape else _any(_broadcast_to, grad, shape=shape)

    return rule


def _einsum_flops(out: tuple[int, ...], *shapes: Any, subscripts: str) -> int:
    sizes = dict(zip(subscripts.replace(",", ""), builtins.sum(shapes, ())))  # each letter's
    return len(shapes) * math.prod(sizes.values())  # a multiply-add per operand and grid point


_einsum = Primitive(
    "einsum", lambda *xs, subscripts: np.einsum(subscripts, *xs, optimize=len(xs) > 1),
    _einsum_vjp, "d einsum(…, xₖ, …) = Σₖ einsum(…, dxₖ, …)", _einsum_flops,
    "{error} (subscripts {subscripts!r}, input shapes {shapes})", batch=batching.einsum)


# --- checks a program keeps ----------------------------------------------------------------
def _in_range(x: Any, low: float, high: float, message: str) -> Any:
    outside = (x < low) | (x > high)
    if outside.any():
        raise CheckError(message.format(value=np.asarray(x)[outside].flat[0].item()))
    return x


check_range = Primitive("check_range", _in_range, (_pass,), "x, checked: d x = dx", _free,
                        batch=batching.unchanged)
"""x itself, after checking that low ≤ x ≤ high, else a CheckError of ``message`` (its
``{value}``: the first value outside). Recorded, so a ``jit`` replay checks its new inputs."""


# --- Tensor's operators and methods: the ops under numpy's names, each written out here ------
def _method(op: Callable[..., Tensor]) -> Callable[..., Tensor]:
    return lambda self: op(self)


def _operator(op: Callable[..., Tensor]) -> Callable[..., Tensor]:
    return lambda self, other: op(self, other)


def _reflected(op: Callable[..., Tensor]) -> Callable[..., Tensor]:
    return lambda self, other: op(other, self)


Tensor.__add__, Tensor.__radd__ = _operator(add), _reflected(add)
Tensor.__sub__, Tensor.__rsub__ = _operator(sub), _reflected(sub)
Tensor.__mul__, Tensor.__rmul__ = _operator(mul), _reflected(mul)
Tensor.__truediv__, Tensor.__rtruediv__ = _operator(div), _reflected(div)
Tensor.__pow__, Tensor.__rpow__ = _operator(power), _reflected(power)
Tensor.__matmul__, Tensor.__rmatmul__ = _operator(matmul), _reflected(matmul)
Tensor.__neg__, Tensor.__abs__, Tensor.__getitem__ = _method(neg), _method(abs), getitem
Tensor.__lt__, Tensor.__le__ = _operator(less), _operator(less_equal)
Tensor.__gt__, Tensor.__ge__ = _operator(greater), _operator(greater_equal)
Tensor.__eq__, Tensor.__ne__ = _operator(equal), _operator(not_equal)  # type: ignore[assignment]
Tensor.__mod__, Tensor.__rmod__ = _operator(mod), _reflected(mod)
Tensor.T = property(transpose)  # type: ignore[assignment]
Tensor.mT = property(lambda self: transpose(  # type: ignore[assignment]
    self, (*range(self.ndim - 2), self.ndim - 1, self.ndim - 2)))
Tensor.exp, Tensor.log, Tensor.sqrt, Tensor.abs = _method(exp), _method(log), _method(sqrt), \
    _method(abs)
Tensor.relu, Tensor.sigmoid, Tensor.tanh = _method(relu), _method(sigmoid), _method(tanh)
Tensor.softplus = _method(softplus)
Tensor.clip, Tensor.sum, Tensor.mean, Tensor.max, Tensor.argmax = clip, sum, mean, max, argmax
Tensor.min, Tensor.prod = min, prod
Tensor.reshape, Tensor.astype = reshape, astype
Tensor.transpose, Tensor.broadcast_to = transpose, broadcast_to
