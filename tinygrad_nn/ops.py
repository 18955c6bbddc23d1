"""Every differentiable op: its numpy forward and, beside it, one VJP rule per input.

A rule is ``rule(g, out, *inputs) -> cotangent of that input``. In the ordinary backward
pass ``g``, ``out`` and the inputs are numpy arrays; with ``create_graph=True`` they are
Tensors, and the same rule records the backward pass. So rules use only operators, methods
and the few helpers below that accept both. A rule may return a cotangent of the
broadcast shape: the engine sums it back to its input's shape in one place
(``autodiff.sum_to``). Rules run only for inputs that need a gradient.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_nn.tensor import ArrayLike, Rule, Tensor, record, result

Axis = int | tuple[int, ...] | None


def value(x: Any) -> Any:
    """The numpy value behind a Tensor; anything else as it is."""
    return x.data if isinstance(x, Tensor) else x


def _pass(g: Any, out: Any, *inputs: Any) -> Any:
    return g


def _negate(g: Any, out: Any, *inputs: Any) -> Any:
    return -g


def _binary(op: str, forward: Any, x: Any, y: Any, rule_x: Rule, rule_y: Rule) -> Tensor:
    if type(x) is Tensor:
        x_value, x_needs = x.data, x.requires_grad
    else:
        x_value, x_needs = x, False
    if type(y) is Tensor:
        y_value, y_needs = y.data, y.requires_grad
    else:
        y_value, y_needs = y, False
    try:
        data = forward(x_value, y_value)
    except ValueError:
        raise ValueError(_shape_message(op, np.shape(x_value), np.shape(y_value))) from None
    if not (x_needs or y_needs):
        return result(data, op, (x, y), (), (), False, 0)
    traces = (x.traces if x_needs else 0) | (y.traces if y_needs else 0)
    vjps = (rule_x if x_needs else None, rule_y if y_needs else None)
    return result(data, op, (x, y), (x_value, y_value), vjps, True, traces)


def _shape_message(op: str, x_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> str:
    if op == "matmul":
        return (
            f"matmul: cannot multiply shapes {x_shape} and {y_shape}: need x[..., n, k] @ "
            "y[..., k, m] with equal k (1-D operands allowed, 0-d not)"
        )
    return f"{op}: shapes {x_shape} and {y_shape} do not broadcast"


def _unary(op: str, data: Any, x: Any, rule: Rule) -> Tensor:
    if type(x) is Tensor and x.requires_grad:
        return result(data, op, (x,), (x.data,), (rule,), True, x.traces)
    return result(data, op, (x,), (), (), False, 0)


# --- helpers that rules call on arrays (first order) or Tensors (create_graph) ------------
def _where_any(condition: np.ndarray, g: Any) -> Any:
    """g where condition holds, else 0 (never 0 * inf)."""
    return where(condition, g, 0) if type(g) is Tensor else np.where(condition, g, 0)


def _sigmoid_any(x: Any) -> Any:
    return sigmoid(x) if type(x) is Tensor else _sigmoid_forward(x)


def _log_any(x: Any) -> Any:
    return log(x) if type(x) is Tensor else np.log(x)


def _constant_like(mask: np.ndarray, g: Any) -> np.ndarray:
    """A mask as a constant of g's dtype, so a float32 cotangent stays float32."""
    return mask.astype(g.dtype, copy=False)


# --- arithmetic ---------------------------------------------------------------------------
def add(x: ArrayLike, y: ArrayLike) -> Tensor:
    # d(x + y) = dx + dy
    return _binary("add", np.add, x, y, _pass, _pass)


def sub(x: ArrayLike, y: ArrayLike) -> Tensor:
    # d(x - y) = dx - dy
    return _binary("sub", np.subtract, x, y, _pass, _negate)


def _mul_dx(g: Any, out: Any, x: Any, y: Any) -> Any:
    return g * y


def _mul_dy(g: Any, out: Any, x: Any, y: Any) -> Any:
    return g * x


def mul(x: ArrayLike, y: ArrayLike) -> Tensor:
    # d(x y) = y dx + x dy
    return _binary("mul", np.multiply, x, y, _mul_dx, _mul_dy)


def _div_dx(g: Any, out: Any, x: Any, y: Any) -> Any:
    return g / y


def _div_dy(g: Any, out: Any, x: Any, y: Any) -> Any:
    return -g * out / y


def div(x: ArrayLike, y: ArrayLike) -> Tensor:
    # d(x / y) = dx / y - (x / y) dy / y
    return _binary("div", np.true_divide, x, y, _div_dx, _div_dy)


def _pow_dx(g: Any, out: Any, x: Any, p: Any) -> Any:
    return g * p * x ** (p - 1)


def _pow_dp(g: Any, out: Any, x: Any, p: Any) -> Any:
    return g * out * _log_any(x)


def power(x: ArrayLike, p: ArrayLike) -> Tensor:
    # d(x^p) = p x^(p-1) dx + x^p log(x) dp
    return _binary("pow", np.power, x, p, _pow_dx, _pow_dp)


def neg(x: ArrayLike) -> Tensor:
    # d(-x) = -dx
    return _unary("neg", np.negative(value(x)), x, _negate)


def _matmul_dx(g: Any, out: Any, x: Any, y: Any) -> Any:
    if x.ndim == 2 and y.ndim == 2:
        return g @ y.T
    g, _, y_matrix = _as_matrices(g, x, y)
    grad = g @ y_matrix.swapaxes(-1, -2)
    return grad.reshape(grad.shape[:-2] + x.shape[-1:]) if x.ndim == 1 else grad


def _matmul_dy(g: Any, out: Any, x: Any, y: Any) -> Any:
    if x.ndim == 2 and y.ndim == 2:
        return x.T @ g
    g, x_matrix, _ = _as_matrices(g, x, y)
    grad = x_matrix.swapaxes(-1, -2) @ g
    return grad.reshape(grad.shape[:-2] + y.shape[:1]) if y.ndim == 1 else grad


def _as_matrices(g: Any, x: Any, y: Any) -> tuple[Any, Any, Any]:
    """Promote 1-D operands (and g) to matrices the way numpy's matmul does."""
    if x.ndim == 1:
        x = x.reshape((1,) + x.shape)
        g = g.reshape(g.shape[:-1] + (1,) + g.shape[-1:]) if y.ndim > 1 else g.reshape((1,))
    if y.ndim == 1:
        y = y.reshape(y.shape + (1,))
        g = g.reshape(g.shape + (1,))
    return g, x, y


def matmul(x: ArrayLike, y: ArrayLike) -> Tensor:
    """Matrix product with numpy's rules: 2-D, 1-D (promoted) and batched (broadcast)."""
    # d(x @ y) = dx @ y + x @ dy, so x̄ = ḡ @ yᵀ and ȳ = xᵀ @ ḡ
    return _binary("matmul", np.matmul, x, y, _matmul_dx, _matmul_dy)


# --- elementwise functions ----------------------------------------------------------------
def _exp_dx(g: Any, out: Any, x: Any) -> Any:
    return g * out


def exp(x: ArrayLike) -> Tensor:
    # d exp(x) = exp(x) dx
    return _unary("exp", np.exp(value(x)), x, _exp_dx)


def _log_dx(g: Any, out: Any, x: Any) -> Any:
    return g / x


def log(x: ArrayLike) -> Tensor:
    # d log(x) = dx / x
    return _unary("log", np.log(value(x)), x, _log_dx)


def _sqrt_dx(g: Any, out: Any, x: Any) -> Any:
    return g / (out * 2.0)


def sqrt(x: ArrayLike) -> Tensor:
    # d sqrt(x) = dx / (2 sqrt(x))
    return _unary("sqrt", np.sqrt(value(x)), x, _sqrt_dx)


def _abs_dx(g: Any, out: Any, x: Any) -> Any:
    return g * _constant_like(np.sign(value(x)), g)


def abs(x: ArrayLike) -> Tensor:
    # d|x| = sign(x) dx
    return _unary("abs", np.abs(value(x)), x, _abs_dx)


def _relu_dx(g: Any, out: Any, x: Any) -> Any:
    # sign(relu(x)) is the 0/1 mask in g's dtype: cheaper than where() or a bool mask
    return g * np.sign(value(out))


def relu(x: ArrayLike) -> Tensor:
    """max(x, 0); its derivative at 0 is 0, as the course and PyTorch take it."""
    # d relu(x) = [x > 0] dx
    return _unary("relu", np.maximum(value(x), 0.0), x, _relu_dx)


def _sigmoid_forward(x: np.ndarray) -> np.ndarray:
    # exp(-x) overflows to inf for x < -709, and 1 / (1 + inf) = 0 is the right limit.
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))  # float literals: an int scalar costs a cast


def _sigmoid_dx(g: Any, out: Any, x: Any) -> Any:
    return g * out * (1.0 - out)


def sigmoid(x: ArrayLike) -> Tensor:
    # d σ(x) = σ(x) (1 - σ(x)) dx
    return _unary("sigmoid", _sigmoid_forward(value(x)), x, _sigmoid_dx)


def _tanh_dx(g: Any, out: Any, x: Any) -> Any:
    return g * (1.0 - out * out)


def tanh(x: ArrayLike) -> Tensor:
    # d tanh(x) = (1 - tanh²(x)) dx
    return _unary("tanh", np.tanh(value(x)), x, _tanh_dx)


def _softplus_dx(g: Any, out: Any, x: Any) -> Any:
    return g * _sigmoid_any(x)


def softplus(x: ArrayLike) -> Tensor:
    """log(1 + exp(x)), exact for every x (no overflow, no underflow to 0)."""
    # d softplus(x) = σ(x) dx
    return _unary("softplus", np.logaddexp(0, value(x)), x, _softplus_dx)


def log_sigmoid(x: ArrayLike) -> Tensor:
    """log σ(x) = -softplus(-x): finite where log(sigmoid(x)) gives -inf."""
    return neg(softplus(neg(x)))


def _tie_weights(mine: Any, other: Any, g: Any) -> np.ndarray:
    """1 where this side wins, 1/2 on ties (as JAX and PyTorch split them), else 0."""
    mine, other = value(mine), value(other)
    return _constant_like((mine > other) + (mine == other) * 0.5, g)


def _maximum_dx(g: Any, out: Any, x: Any, y: Any) -> Any:
    return g * _tie_weights(x, y, g)


def _maximum_dy(g: Any, out: Any, x: Any, y: Any) -> Any:
    return g * _tie_weights(y, x, g)


def maximum(x: ArrayLike, y: ArrayLike) -> Tensor:
    # d max(x, y) = [x > y] dx + [y > x] dy, ties split evenly
    return _binary("maximum", np.maximum, x, y, _maximum_dx, _maximum_dy)


def _minimum_dx(g: Any, out: Any, x: Any, y: Any) -> Any:
    return g * _tie_weights(y, x, g)


def _minimum_dy(g: Any, out: Any, x: Any, y: Any) -> Any:
    return g * _tie_weights(x, y, g)


def minimum(x: ArrayLike, y: ArrayLike) -> Tensor:
    # d min(x, y) = [x < y] dx + [y < x] dy, ties split evenly
    return _binary("minimum", np.minimum, x, y, _minimum_dx, _minimum_dy)


def where(condition: ArrayLike, x: ArrayLike, y: ArrayLike) -> Tensor:
    """x where condition holds, else y; the condition is a constant."""
    # d where(c, x, y) = where(c, dx, 0) + where(c, 0, dy)
    mask = np.asarray(value(condition), dtype=bool)
    x_value, y_value = value(x), value(y)
    try:
        data = np.where(mask, x_value, y_value)
    except ValueError:
        raise ValueError(
            f"where: shapes {mask.shape}, {np.shape(x_value)} and {np.shape(y_value)} "
            "do not broadcast"
        ) from None
    return record(
        data,
        "where",
        (x, y),
        (
            lambda g, out, x, y: _where_any(mask, g),
            lambda g, out, x, y: _where_any(~mask, g),
        ),
    )


def clip(x: ArrayLike, low: float | None, high: float | None) -> Tensor:
    """x limited to [low, high]; the gradient passes where low <= x <= high (as PyTorch)."""
    # d clip(x) = [low <= x <= high] dx

    def clip_dx(g: Any, out: Any, x: Any) -> Any:
        inside = np.ones(np.shape(value(x)), dtype=bool)
        if low is not None:
            inside &= value(x) >= low
        if high is not None:
            inside &= value(x) <= high
        return _where_any(inside, g)

    return _unary("clip", np.clip(value(x), low, high), x, clip_dx)


# --- reductions ---------------------------------------------------------------------------
def _normalize_axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(a % ndim if ndim else a for a in axes)


def _keepdims_shape(shape: tuple[int, ...], axis: Axis) -> tuple[int, ...]:
    axes = _normalize_axes(axis, len(shape))
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _reduce(op: str, forward: Any, x: Any, axis: Axis, keepdims: bool) -> Any:
    x_value = value(x)
    try:
        return forward(x_value, axis=axis, keepdims=keepdims)
    except (ValueError, np.exceptions.AxisError) as error:
        raise ValueError(f"{op}: axis {axis} is invalid for shape {np.shape(x_value)}") from error


def _spread(g: Any, shape: tuple[int, ...], axis: Axis, keepdims: bool) -> Any:
    """A reduction's cotangent copied back over the reduced axes."""
    if not keepdims and axis is not None:  # a full reduction's 0-d g broadcasts as it is
        g = g.reshape(_keepdims_shape(shape, axis))
    if type(g) is Tensor:
        return broadcast_to(g, shape)
    spread = np.empty(shape, dtype=g.dtype)  # cheaper than np.broadcast_to, and writable
    spread[...] = g
    return spread


def sum(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    # d sum(x) = sum(dx): the cotangent is copied back over the summed axes
    data = _reduce("sum", np.add.reduce, x, axis, keepdims)
    return _unary("sum", data, x, lambda g, out, x: _spread(g, x.shape, axis, keepdims))


def mean(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    # d mean(x) = mean(dx): the cotangent / n is copied back over the averaged axes
    x_value = value(x)
    if axis is None:
        count = float(np.size(x_value))
    else:
        shape = np.shape(x_value)
        count = float(math.prod([shape[a] for a in _normalize_axes(axis, len(shape))]))
    data = _reduce("mean", np.add.reduce, x, axis, keepdims) / count
    return _unary(
        "mean", data, x, lambda g, out, x: _spread(g / count, x.shape, axis, keepdims)
    )


def max(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Largest element along ``axis``; ties share the gradient evenly (as JAX)."""
    # d max(x) = dx at the argmax (split evenly among ties)

    def max_dx(g: Any, out: Any, x: Any) -> Any:
        x_value = value(x)
        kept_shape = _keepdims_shape(x_value.shape, axis)
        winners = x_value == value(out).reshape(kept_shape)
        weights = winners / winners.sum(axis=axis, keepdims=True)
        return g.reshape(kept_shape) * _constant_like(weights, g)

    return _unary("max", _reduce("max", np.maximum.reduce, x, axis, keepdims), x, max_dx)


# --- shape ----------------------------------------------------------------------------------
def reshape(x: ArrayLike, shape: int | Sequence[int]) -> Tensor:
    # reshape moves no numbers: the cotangent is reshaped back
    x_value = value(x)
    try:
        data = np.reshape(x_value, shape)
    except ValueError:
        raise ValueError(
            f"reshape: cannot reshape shape {np.shape(x_value)} ({np.size(x_value)} elements) "
            f"to {shape}"
        ) from None
    return _unary("reshape", data, x, _reshape_dx)


def _reshape_dx(g: Any, out: Any, x: Any) -> Any:
    return g.reshape(x.shape)


def transpose(x: ArrayLike, axes: Sequence[int] | None = None) -> Tensor:
    # the cotangent is permuted back by the inverse permutation
    x_value = value(x)
    if axes is None:
        data = np.transpose(x_value)
        return _unary("transpose", data, x, _transpose_reversed_dx)
    try:
        data = np.transpose(x_value, axes)
    except ValueError:
        raise ValueError(
            f"transpose: axes {tuple(axes)} do not permute shape {np.shape(x_value)}"
        ) from None
    inverse = tuple(int(i) for i in np.argsort(axes))
    return _unary("transpose", data, x, lambda g, out, x: g.transpose(inverse))


def _transpose_reversed_dx(g: Any, out: Any, x: Any) -> Any:
    return g.transpose()


def swapaxes(x: ArrayLike, axis1: int, axis2: int) -> Tensor:
    # swapping twice is the identity
    data = np.swapaxes(value(x), axis1, axis2)
    return _unary("swapaxes", data, x, lambda g, out, x: g.swapaxes(axis1, axis2))


def broadcast_to(x: ArrayLike, shape: tuple[int, ...]) -> Tensor:
    # the engine sums the broadcast cotangent back to x's shape
    x_value = value(x)
    try:
        data = np.broadcast_to(x_value, shape)
    except ValueError:
        raise ValueError(
            f"broadcast_to: shape {np.shape(x_value)} does not broadcast to {shape}"
        ) from None
    return _unary("broadcast_to", data, x, _pass)


def astype(x: ArrayLike, dtype: Any) -> Tensor:
    # the cotangent goes back in x's dtype
    return _unary("astype", np.asarray(value(x)).astype(dtype), x, _astype_dx)


def _astype_dx(g: Any, out: Any, x: Any) -> Any:
    return g.astype(x.dtype)


def flatten(x: ArrayLike) -> Tensor:
    return reshape(x, (-1,))


# --- indexing and joining -----------------------------------------------------------------
def _is_basic_index(index: Any) -> bool:
    """Slices, integers, None and Ellipsis select each element at most once."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(
        part is None or part is Ellipsis or isinstance(part, (slice, int, np.integer))
        for part in parts
    )


def _plain_index(index: Any) -> Any:
    if isinstance(index, tuple):
        return tuple(value(part) for part in index)
    return value(index)


def getitem(x: ArrayLike, index: Any) -> Tensor:
    """x[index] for slices, integers, None, Ellipsis and integer or boolean arrays."""
    # the cotangent is added back into zeros at the selected places (repeats accumulate)
    index = _plain_index(index)
    x_value = value(x)
    try:
        data = x_value[index]
    except IndexError as error:
        raise IndexError(
            f"getitem: index {index!r} is invalid for shape {x_value.shape}: {error}"
        ) from None
    return _unary("getitem", data, x, lambda g, out, x: scatter_add(g, index, x.shape))


def scatter_add(g: ArrayLike, index: Any, shape: tuple[int, ...]) -> Tensor | np.ndarray:
    """Zeros of ``shape`` with g added at ``index``: the transpose of ``x[index]``."""
    # d scatter_add(g) = dg[index]
    g_value = value(g)
    result = np.zeros(shape, dtype=g_value.dtype)
    if _is_basic_index(index):
        result[index] = g_value
    else:
        np.add.at(result, index, g_value)
    if type(g) is not Tensor:
        return result
    return _unary("scatter_add", result, g, lambda dg, out, g: dg[index])


def _axis_slice(axis: int, start: Any) -> tuple[Any, ...]:
    return (slice(None),) * axis + (start,)


def concatenate(tensors: Sequence[ArrayLike], axis: int = 0) -> Tensor:
    """Join along an existing axis."""
    # each input's cotangent is its slice of the output's cotangent
    values = [value(t) for t in tensors]
    try:
        data = np.concatenate(values, axis=axis)
    except (ValueError, np.exceptions.AxisError):
        shapes = [np.shape(v) for v in values]
        raise ValueError(f"concatenate: shapes {shapes} do not join along axis {axis}") from None
    axis = axis % data.ndim
    bounds = np.cumsum([0] + [np.shape(v)[axis] for v in values])
    rules = tuple(
        _slice_rule(_axis_slice(axis, slice(int(start), int(stop))))
        for start, stop in zip(bounds[:-1], bounds[1:])
    )
    return record(data, "concatenate", tuple(tensors), rules)


def stack(tensors: Sequence[ArrayLike], axis: int = 0) -> Tensor:
    """Join along a new axis."""
    # each input's cotangent is its index along the new axis
    values = [value(t) for t in tensors]
    try:
        data = np.stack(values, axis=axis)
    except (ValueError, np.exceptions.AxisError):
        shapes = [np.shape(v) for v in values]
        raise ValueError(f"stack: shapes {shapes} differ or axis {axis} is invalid") from None
    axis = axis % data.ndim
    rules = tuple(_slice_rule(_axis_slice(axis, i)) for i in range(len(values)))
    return record(data, "stack", tuple(tensors), rules)


def _slice_rule(index: tuple[Any, ...]) -> Rule:
    return lambda g, out, *inputs: g[index]


# --- no gradient ----------------------------------------------------------------------------
def stop_gradient(x: ArrayLike) -> Tensor:
    """The same values as a constant: no gradient flows through."""
    return Tensor(value(x))


def identity(x: ArrayLike) -> Tensor:
    """A recorded copy-free identity: a node of its own in the graph."""
    # d x = dx
    return _unary("identity", value(x), x, _pass)
