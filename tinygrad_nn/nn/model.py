"""The network: [LINEAR → hidden activation] × (L − 1) → LINEAR → output activation, as pure
functions of the parameter dict; its training cost, its predictions and their accuracy.

``X`` is (n_x, m) with one example per column; labels as ``nn.losses`` says.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_nn import ops
from tinygrad_nn.nn.functions import activation
from tinygrad_nn.nn.losses import (
    binary_cross_entropy_with_logits,
    label_form,
    softmax_cross_entropy,
)
from tinygrad_nn.nn.params import Params, layer_dims
from tinygrad_nn.tensor import ArrayLike, Tensor, no_grad, shape_of, value

__all__ = ["accuracy", "check_shapes", "forward", "linear", "logits", "model_cost", "predict"]


def check_shapes(params: Params, X: ArrayLike, Y: ArrayLike | None = None) -> list[int]:
    """Raise ValueError (saying how to fix it) unless X is (n_x, m) and Y holds labels for the
    last layer: (1, m) in [0, 1] for one unit, class indices (m,) or one-hot (K, m) for K units.

    Returns ``layer_dims(params)``.
    """
    dims = layer_dims(params)
    n_x = dims[0]
    x_shape = shape_of(X)
    if len(x_shape) != 2 or x_shape[0] != n_x:
        hint = ""
        if len(x_shape) == 4:
            hint = "; flatten pictures with tinygrad_nn.data.flatten_images(images)"
        elif len(x_shape) == 1 and x_shape[0] == n_x:
            hint = "; one example is a column: X.reshape(-1, 1)"
        elif len(x_shape) == 2 and x_shape[1] == n_x:
            hint = "; it holds examples in rows: pass X.T"
        raise ValueError(
            f"X has shape {x_shape}; expected (n_x, m) = ({n_x}, m), one example per column{hint}"
        )
    if Y is not None:
        label_form(Y, dims[-1], x_shape[1], "")
    return dims



def linear(A: ArrayLike, W: ArrayLike, b: ArrayLike) -> Tensor:
    """Z = W A + b: (n_l, n_{l-1}) @ (n_{l-1}, m) + (n_l, 1) -> (n_l, m)."""
    return ops.add(ops.matmul(W, A), b)



def logits(params: Params, X: ArrayLike, hidden_activation: str = "relu") -> Tensor:
    """Z_L (n_L, m): the last layer's linear output, before the output activation.

    params is checked as ``layer_dims`` checks it (a missing ``W4`` is an error naming it, not
    a 3-layer net), and X as ``check_shapes`` does."""
    dims = layer_dims(params)
    n_layers = len(dims) - 1
    x_shape = shape_of(X)
    if len(x_shape) != 2 or x_shape[0] != dims[0]:
        check_shapes(params, X)  # a 1-D X would broadcast silently against the (n, 1) biases
    hidden = activation(hidden_activation)
    A: Any = X
    for layer in range(1, n_layers):
        A = hidden(linear(A, params[f"W{layer}"], params[f"b{layer}"]))
    return linear(A, params[f"W{n_layers}"], params[f"b{n_layers}"])


def forward(
    params: Params,
    X: ArrayLike,
    hidden_activation: str = "relu",
    output_activation: str | None = None,
) -> Tensor:
    """A_L (n_L, m): ``hidden_activation`` (ReLU) on layers 1..L-1, ``output_activation`` last
    (None: sigmoid for one output unit, softmax over the class axis 0 for K > 1)."""
    Z = logits(params, X, hidden_activation)
    if output_activation is None:
        output_activation = "sigmoid" if Z.shape[0] == 1 else "softmax"
    return activation(output_activation)(Z)



def model_cost(
    params: Params, X: ArrayLike, Y: ArrayLike, hidden_activation: str = "relu"
) -> Tensor:
    """The training cost from the logits (stable): binary cross-entropy for one output unit,
    softmax cross-entropy for K > 1 (Y as class indices (m,) or one-hot (K, m))."""
    Z = logits(params, X, hidden_activation)
    if Z.shape[0] == 1:
        return binary_cross_entropy_with_logits(Z, Y)
    return softmax_cross_entropy(Z, Y)


def predict(
    params: Params, X: ArrayLike, hidden_activation: str = "relu", threshold: float = 0.5
) -> np.ndarray:
    """Predicted labels, int64: for one output unit (1, m), 1 (cat) where sigmoid(Z_L) >
    threshold, as the course's ``predict``; for K > 1 units the class indices (m,), argmax of
    Z_L over the class axis 0 (``threshold`` is not used)."""
    check_shapes(params, X)
    with no_grad():
        Z = logits(params, X, hidden_activation).data
    if Z.shape[0] > 1:
        return np.argmax(Z, axis=0)
    return (ops.sigmoid.impl(Z) > threshold).astype(np.int64)


def accuracy(
    params: Params, X: ArrayLike, Y: ArrayLike, hidden_activation: str = "relu"
) -> float:
    """The fraction of the m examples in X whose predicted label equals Y: binary labels (1, m)
    of 0 and 1 for one output unit; class indices (m,) or one-hot columns (K, m) for K units."""
    dims = check_shapes(params, X, Y)
    labels = np.asarray(value(Y))
    if dims[-1] == 1 and not np.isin(labels, (0, 1)).all():
        raise ValueError("accuracy: Y holds labels that are neither 0 nor 1 (soft labels?); "
                         "expected binary labels (1, m) of 0 and 1")
    if dims[-1] > 1 and labels.ndim == 2:
        if not (np.isin(labels, (0, 1)).all() and (labels.sum(axis=0) == 1).all()):
            raise ValueError("accuracy: Y (K, m) is not one-hot (a single 1 in each column); "
                             "expected class indices (m,) or one-hot columns (K, m)")
        labels = np.argmax(labels, axis=0)
    return float(np.mean(predict(params, X, hidden_activation) == labels))

