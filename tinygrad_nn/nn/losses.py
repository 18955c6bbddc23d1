"""Labels and costs: what a label array may hold, and the cross-entropies and the L2 term.

Labels: a last layer of one unit is a sigmoid over two classes, and ``Y`` is (1, m) with 1 = cat,
0 = non-cat. A last layer of K > 1 units is a softmax over K classes along axis 0 (the class
axis: examples are columns everywhere), and ``Y`` is either class indices of shape (m,)
(integers in [0, K)) or one-hot columns (K, m) (``one_hot(labels, K)``). Any other label array
is an error that says which form was expected.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from tinygrad_nn import ops
from tinygrad_nn.nn.functions import log_softmax
from tinygrad_nn.nn.params import PARAM_KEY, Params
from tinygrad_nn.tensor import ArrayLike, Tensor, dtype_of, integer, shape_of

__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "l2_penalty", "one_hot",
           "softmax_cross_entropy"]


def _float_tensor(x: ArrayLike) -> Tensor:
    """x as a Tensor of a float dtype (integers become float64; Tensors pass as they are)."""
    if type(x) is Tensor:
        return x if x.dtype.kind == "f" else ops.astype(x, np.float64)
    array = np.asarray(x)
    return Tensor(array if array.dtype.kind == "f" else array.astype(np.float64))



def label_form(Y: ArrayLike, classes: int, m: int, caller: str) -> str:
    """``"binary"``, ``"indices"`` or ``"one_hot"``: the form of the labels Y of m examples for a
    last layer of ``classes`` units, or an error saying which forms fit (a value outside its
    range: a ``tg.CheckError``)."""
    if classes == 1:
        _binary_labels(Y, m, caller)
        return "binary"
    return class_labels(Y, classes, m, caller)[0]


def _in_range(labels: Any, low: int, high: int, message: str) -> Any:
    """The labels, checked to lie in [low, high]: at once for an array, by a recorded
    ``ops.check_range`` for a Tensor (so that a jitted replay checks its labels too)."""
    if dtype_of(labels).kind not in "biuf":
        raise TypeError(message.format(value=f"values of dtype {dtype_of(labels)}"))
    return ops._any(ops.check_range, labels, low=low, high=high, message=message)


def _binary_labels(Y: ArrayLike, m: int, caller: str) -> Any:
    prefix = f"{caller}: " if caller else ""
    y_shape = shape_of(Y)
    if y_shape != (1, m):
        hint = ""
        if y_shape == (m,):
            hint = "; labels are one row, a label per column of X: Y = Y.reshape(1, -1)"
        elif y_shape == (m, 1):
            hint = (". A column of labels broadcasts against the (1, m) predictions into an "
                    "(m, m) matrix and silently gives a wrong cost: Y = Y.reshape(1, -1)")
        elif len(y_shape) == 2 and y_shape[1] == m:
            hint = (f"; labels of {y_shape[0]} classes need a last layer of {y_shape[0]} units "
                    "(softmax)")
        raise ValueError(f"{prefix}Y has shape {y_shape}; expected (1, m) = (1, {m}) for a last "
                         f"layer of one unit (sigmoid){hint}")
    return _in_range(Y, 0, 1, f"{prefix}Y holds {{value!r}}, not a binary label in [0, 1] (1 = "
                     "cat, 0 = non-cat); K classes need a last layer of K units, with labels as "
                     "class indices (m,) or one-hot (K, m)")


def class_labels(Y: ArrayLike, classes: int, m: int, caller: str) -> tuple[str, Any]:
    """(``"indices"`` or ``"one_hot"``, the labels): class indices (m,) checked to lie in
    [0, ``classes``), or one-hot (probability) columns (K, m); an error for any other form."""
    prefix = f"{caller}: " if caller else ""
    y_shape, dtype = shape_of(Y), dtype_of(Y)
    if y_shape == (m,):
        if dtype.kind not in "iu":
            raise TypeError(f"{prefix}Y holds class indices of dtype {dtype}; expected integers "
                            f"in [0, {classes}) (Y.astype(np.int64))")
        return "indices", _in_range(Y, 0, classes - 1, f"{prefix}Y holds the class index "
                                    f"{{value}}, outside [0, {classes}) for a last layer of "
                                    f"{classes} units")
    if y_shape == (classes, m) and dtype.kind in "biuf":
        return "one_hot", Y
    hint = ""
    if y_shape == (1, m):
        hint = f": class indices are Y.ravel(), one-hot labels nn.one_hot(Y.ravel(), {classes})"
    elif y_shape == (m, classes):
        hint = ": one-hot labels hold one example per column: pass Y.T"
    elif len(y_shape) == 2 and y_shape[1] == m:
        hint = f": {y_shape[0]} rows of labels for {classes} output units"
    raise ValueError(f"{prefix}Y has shape {y_shape}; expected class indices (m,) = ({m},) or "
                     f"one-hot labels (K, m) = ({classes}, {m}) for a last layer of K = "
                     f"{classes} units{hint}")


def one_hot(labels: ArrayLike, num_classes: int, dtype: npt.DTypeLike = np.float64) -> Any:
    """Class indices (m,), integers in [0, K), as one-hot columns (K, m) in ``dtype``: column i
    holds a 1 in row labels[i]. Labels in a Tensor give a Tensor computed by the ops (a traced
    program recomputes it); arrays give an array."""
    num_classes = integer(num_classes, "one_hot: num_classes", low=1)
    shape = shape_of(labels)
    if len(shape) != 1:
        raise ValueError(f"one_hot: labels have shape {shape}; expected class indices (m,)")
    labels = class_labels(labels, int(num_classes), shape[0], "one_hot")[1]
    rows = np.arange(num_classes).reshape(-1, 1)
    if type(labels) is Tensor:
        return ops.astype(ops.equal(rows, ops.reshape(labels, 1, -1)), dtype)
    return (rows == np.asarray(labels).reshape(1, -1)).astype(dtype)



def _labels_like(Y: ArrayLike, like: Tensor, caller: str) -> Any:
    """Y in the predictions' dtype (int64 labels must not upcast a float32 cost), same shape."""
    y_shape = shape_of(Y)
    if y_shape != like.shape:
        hint = ""
        if like.ndim == 2 and like.shape[0] == 1 and y_shape == (like.size,):
            hint = "; labels are one row, a label per column: Y = Y.reshape(1, -1)"
        elif like.ndim == 2 and like.shape[0] == 1 and y_shape == (like.size, 1):
            hint = ("; a column of labels would broadcast into an (m, m) matrix and silently "
                    "give a wrong cost: Y = Y.reshape(1, -1)")
        raise ValueError(
            f"{caller}: Y has shape {y_shape}; expected the predictions' shape {like.shape}{hint}"
        )
    if isinstance(Y, Tensor):  # a traced one too: int64 labels must not upcast a float32 cost
        return Y if Y.dtype == like.dtype else ops.astype(Y, like.dtype)
    return np.asarray(Y, dtype=like.dtype)


def _log_floored(x: Tensor, floor: float) -> Tensor:
    """log(x) for x in [0, 1], with log(floor) where x is exactly 0 (gradient 0 there)."""
    positive = x > 0  # a comparison op: a traced program recomputes it
    # The inner where keeps log's input at 1 where x == 0, so no 1/0 in the backward pass.
    safe = ops.log(ops.where(positive, x, 1))
    return ops.where(positive, safe, np.log(np.asarray(floor, dtype=x.dtype)))


def binary_cross_entropy(AL: ArrayLike, Y: ArrayLike) -> Tensor:
    """The course's cost −(1/m) Σ [Y log AL + (1 − Y) log(1 − AL)] of probabilities AL (1, m).

    Equal to the course's formula wherever that is finite. Where the sigmoid saturated (AL
    rounded to exactly 0 or 1) the course's ``log(AL)`` gives −inf and ``0 · log 0`` NaN; here a
    saturated AL counts as the nearest value the float can hold short of it (the smallest
    positive float for AL, 1 − eps/2 for 1 − AL), so the cost stays finite and its gradient is 0
    at those entries. To train, prefer ``binary_cross_entropy_with_logits``: it is exact there.
    """
    probabilities = ops.check_range(_float_tensor(AL), low=0, high=1, message=(
        "binary_cross_entropy: AL holds {value}; AL must hold probabilities in [0, 1] (sigmoid "
        "outputs); for raw scores use binary_cross_entropy_with_logits"))
    labels = _labels_like(Y, probabilities, "binary_cross_entropy")
    info = np.finfo(probabilities.dtype)
    log_p = _log_floored(probabilities, float(info.smallest_subnormal))
    log_not_p = _log_floored(1 - probabilities, float(info.epsneg))
    return ops.neg(ops.mean(labels * log_p + (1 - labels) * log_not_p))


def binary_cross_entropy_with_logits(Z: ArrayLike, Y: ArrayLike) -> Tensor:
    """The same cost from logits Z (1, m), where AL = sigmoid(Z): mean(softplus(Z) − Y Z).

    −[Y log σ(Z) + (1 − Y) log(1 − σ(Z))] = softplus(Z) − Y Z exactly, and softplus never
    overflows, so the cost is finite for every finite Z and its gradient is (σ(Z) − Y) / m.
    """
    scores = _float_tensor(Z)
    labels = _labels_like(Y, scores, "binary_cross_entropy_with_logits")
    return ops.mean(ops.softplus(scores) - labels * scores)


def softmax_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> Tensor:
    """−(1/m) Σ_i log softmax(Z)[y_i, i]: the cross-entropy of logits Z (K, m), one column of K
    class scores per example, against class indices (m,) (integers in [0, K)) or one-hot (or
    probability) columns (K, m). Exact for any finite logits (``log_softmax`` shifts by the
    max), and finite for logits of −inf where a class is excluded, as long as the label's own
    is finite (as PyTorch's); PyTorch's ``cross_entropy(Z.T, y)``, which holds examples in
    rows."""
    scores = _float_tensor(logits)
    if scores.ndim != 2:
        raise ValueError(f"softmax_cross_entropy: logits have shape {scores.shape}; expected "
                         "(K, m), a column of K class scores per example")
    classes, m = scores.shape
    form, labels = class_labels(labels, classes, m, "softmax_cross_entropy")
    log_probabilities = log_softmax(scores, 0)
    if form == "indices":  # each label's own log-probability: its gradient a scatter back
        return ops.neg(ops.mean(log_probabilities[labels, np.arange(m)]))
    targets = _labels_like(labels, scores, "softmax_cross_entropy")
    # where a target is 0 its term is 0, even where an excluded class's log-probability is −inf
    terms = ops.where(ops.not_equal(targets, 0), ops.mul(targets, log_probabilities), 0.0)
    return ops.neg(ops.mean(ops.sum(terms, 0)))



def l2_penalty(params: Params, lambd: float, m: int) -> Tensor:
    """The course's L2 term λ/(2m) · Σ_l ‖W_l‖² (squared Frobenius norms of W1..WL; biases
    excluded), to add to the cost of m examples: its gradient adds (λ/m)·W_l to dW_l."""
    m = integer(m, "l2_penalty: m (the number of examples)", low=1)
    if not lambd >= 0:
        raise ValueError(f"l2_penalty: lambd must be >= 0, got {lambd}")
    weights = [params[key] for key in params if (match := PARAM_KEY.fullmatch(key))
               and match.group(1) == "W"]
    if not weights:
        raise ValueError(f"l2_penalty: params has keys {sorted(params)}; expected weights W1, "
                         "W2, … (biases b1, b2, … are not penalized)")
    total: Any = ops.sum(ops.mul(weights[0], weights[0]))
    for W in weights[1:]:
        total = ops.add(total, ops.sum(ops.mul(W, W)))
    return ops.mul(total, lambd / (2 * int(m)))
