"""The course's functions by their names, signatures and return conventions.

deeplearning.ai course 1, week 4 ("Building your Deep Neural Network: Step by Step" and "Deep
Neural Network - Application"), so a learner can hold their own answers against these. All
arrays are numpy arrays in and out. This is a thin veneer: the forward functions call
``tinygrad_nn.nn``, the backward functions take their numbers from the engine (``vjp``), and the
two models run ``nn.train``. From course 2 ("Optimization methods"): ``random_mini_batches``.

Conventions kept from the course: X is (n_x, m), Y is (1, m) with 1 = cat (old docstrings say
0); ``[12288, 20, 7, 5, 1]`` has L = 4 layers of weights; ``cache = (linear_cache,
activation_cache)`` with ``linear_cache = (A_prev, W, b)`` and ``activation_cache = Z``;
``grads["dA" + str(l)]`` holds dA_prev of layer l + 1 (dA0 … dA{L-1}), with ``dW{l}``, ``db{l}``.
As in the course, dA and dZ are gradients of the summed loss m·J and dW, db those of the cost J
(``linear_backward`` divides by m). Costs are recorded every 100 iterations (old plots say
"per tens").

Traps of the widely copied answers, fixed here:
- the hidden layers' backward uses the ReLU derivative (many copies use the sigmoid one);
- weights drawn as randn × 0.01 make the deep net stall at cost ≈ 0.644 (the entropy of the
  labels: it only learns the cat fraction); the application uses randn / sqrt(n_prev), seed 1;
- ``log(AL)`` is −inf, and the cost and dAL NaN, when the sigmoid saturates to exactly 0 or 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

import tinygrad_nn.nn as nn
from tinygrad_nn import ops
from tinygrad_nn.functional import vjp
from tinygrad_nn.tensor import Tensor, no_grad

__all__ = [
    "L_layer_model",
    "L_model_backward",
    "L_model_forward",
    "compute_cost",
    "initialize_parameters",
    "initialize_parameters_deep",
    "linear_activation_backward",
    "linear_activation_forward",
    "linear_backward",
    "linear_forward",
    "predict",
    "random_mini_batches",
    "relu",
    "relu_backward",
    "sigmoid",
    "sigmoid_backward",
    "two_layer_model",
    "update_parameters",
]

LinearCache = tuple[np.ndarray, np.ndarray, np.ndarray]
Cache = tuple[LinearCache, np.ndarray]


def _numpy(function: Callable[..., Tensor], *args: Any) -> np.ndarray:
    """An engine function's value as a numpy array, recording nothing."""
    with no_grad():
        return function(*args).data


def _pull_back(function: Callable[..., Tensor], *primals: Any) -> Callable[[Any], tuple[Any, ...]]:
    """The engine's vjp_fn of ``function`` at ``primals``: cotangent -> input cotangents."""
    result = vjp(function, *primals)
    return result[1]


# --------------------------------------------------------------------------- activations


def sigmoid(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(A, cache): A = 1 / (1 + exp(−Z)), cache = Z. No overflow warning for very negative Z."""
    return _numpy(ops.sigmoid, Z), Z


def relu(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(A, cache): A = max(0, Z), cache = Z."""
    return _numpy(ops.relu, Z), Z


def sigmoid_backward(dA: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """dZ = dA · s (1 − s), s = sigmoid(Z): the engine's vjp of sigmoid at Z = cache."""
    (dZ,) = _pull_back(ops.sigmoid, cache)(dA)
    return dZ


def relu_backward(dA: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """dZ = dA where Z > 0, else 0 (the derivative at 0 taken as 0, as the course does).

    The hidden layers need this one: copies that use ``sigmoid_backward`` there still run, and
    silently train a different, worse model.
    """
    (dZ,) = _pull_back(ops.relu, cache)(dA)
    return dZ


_FORWARD = {"sigmoid": sigmoid, "relu": relu}
_BACKWARD = {"sigmoid": sigmoid_backward, "relu": relu_backward}


def _check_activation(activation: str) -> None:
    if activation not in _FORWARD:
        raise ValueError(f"activation must be 'sigmoid' or 'relu', got {activation!r}")


# --------------------------------------------------------------------------- initialization


def initialize_parameters(n_x: int, n_h: int, n_y: int, seed: int = 1) -> dict[str, np.ndarray]:
    """The two-layer model's parameters: seed 1, W = randn × 0.01, b = 0 (as the course)."""
    return nn.init_params([n_x, n_h, n_y], scheme="small", seed=seed)


def initialize_parameters_deep(
    layer_dims: Sequence[int], seed: int = 1, scheme: nn.Scheme = "scaled"
) -> dict[str, np.ndarray]:
    """{"W1": (n_1, n_0), "b1": (n_1, 1), …}: the application's randn / sqrt(n_prev), seed 1.

    The step-by-step notebook's exercise draws randn × 0.01 with seed 3: its expected output is
    ``initialize_parameters_deep([5, 4, 3], seed=3, scheme="small")``. Do not train the deep net
    with that: it stalls at cost ≈ 0.644. ``len(layer_dims) - 1`` is L, the number of layers.
    """
    return nn.init_params(layer_dims, scheme=scheme, seed=seed)


# --------------------------------------------------------------------------- forward


def linear_forward(A: np.ndarray, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, LinearCache]:
    """(Z, cache): Z = W A + b (n_l, m); cache = (A, W, b)."""
    return _numpy(nn.linear, A, W, b), (A, W, b)


def linear_activation_forward(
    A_prev: np.ndarray, W: np.ndarray, b: np.ndarray, activation: str
) -> tuple[np.ndarray, Cache]:
    """(A, cache): A = g(W A_prev + b), g "sigmoid" or "relu"; cache = ((A_prev, W, b), Z)."""
    _check_activation(activation)
    Z, linear_cache = linear_forward(A_prev, W, b)
    A, activation_cache = _FORWARD[activation](Z)
    return A, (linear_cache, activation_cache)


def L_model_forward(
    X: np.ndarray, parameters: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, list[Cache]]:
    """(AL, caches): [LINEAR → RELU] × (L − 1) → LINEAR → SIGMOID; one cache per layer."""
    L = len(parameters) // 2
    caches = []
    A = X
    for layer in range(1, L + 1):
        activation = "sigmoid" if layer == L else "relu"
        A, cache = linear_activation_forward(
            A, parameters[f"W{layer}"], parameters[f"b{layer}"], activation
        )
        caches.append(cache)
    return A, caches


def compute_cost(AL: np.ndarray, Y: np.ndarray) -> np.floating[Any]:
    """−(1/m) Σ [Y log AL + (1 − Y) log(1 − AL)] as a 0-d float (the course's ``np.squeeze``).

    Finite where the copied ``np.log(AL)`` answer gives NaN (AL exactly 0 or 1); see
    ``nn.binary_cross_entropy``.
    """
    AL = np.asarray(AL)
    cost = _numpy(nn.binary_cross_entropy, AL, Y)
    return np.squeeze(cost)[()]  # type: ignore[return-value]


# --------------------------------------------------------------------------- backward


def linear_backward(dZ: np.ndarray, cache: LinearCache) -> tuple[np.ndarray, ...]:
    """(dA_prev, dW, db) of Z = W A_prev + b: W^T dZ, (1/m) dZ A_prev^T, (1/m) Σ_columns dZ.

    The engine's vjp of ``linear`` gives W^T dZ, dZ A^T and Σ dZ; dW and db are then divided by
    m, the course's convention (dZ is a gradient of m·J; dW and db are gradients of J).
    """
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dA_prev, dW, db = _pull_back(nn.linear, A_prev, W, b)(dZ)
    return dA_prev, dW / m, db / m


def linear_activation_backward(
    dA: np.ndarray, cache: Cache, activation: str
) -> tuple[np.ndarray, ...]:
    """(dA_prev, dW, db) of A = g(W A_prev + b), for g "relu" (hidden) or "sigmoid" (output)."""
    _check_activation(activation)
    linear_cache, activation_cache = cache
    dZ = _BACKWARD[activation](dA, activation_cache)
    return linear_backward(dZ, linear_cache)


def _summed_loss(AL: Any, Y: np.ndarray) -> Any:
    # The course's per-example loss, summed: its gradient is the course's dAL.
    return ops.sum(ops.neg(Y * ops.log(AL) + (1 - Y) * ops.log(1 - AL)))


def L_model_backward(
    AL: np.ndarray, Y: np.ndarray, caches: Sequence[Cache]
) -> dict[str, np.ndarray]:
    """grads with dA0 … dA{L-1}, dW1 … dWL, db1 … dbL, from ``L_model_forward``'s caches.

    dAL = −(Y / AL − (1 − Y) / (1 − AL)) comes from the engine's vjp of the loss. Where the
    sigmoid saturated (AL exactly 0 or 1) that is ∞ or 0/0 and the copied answer's dZ is NaN;
    here dZ takes its limit AL − Y there. The hidden layers use ``relu_backward``.
    """
    L = len(caches)
    AL = np.asarray(AL)
    Y = np.asarray(Y, dtype=AL.dtype).reshape(AL.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        (dAL,) = _pull_back(lambda probabilities: _summed_loss(probabilities, Y), AL)(
            np.ones((), dtype=AL.dtype)
        )
        linear_cache, Z = caches[L - 1]
        dZ = sigmoid_backward(dAL, Z)
    saturated = (AL == 0) | (AL == 1)
    if saturated.any():
        dZ = np.where(saturated, AL - Y, dZ)
    grads: dict[str, np.ndarray] = {}
    grads[f"dA{L - 1}"], grads[f"dW{L}"], grads[f"db{L}"] = linear_backward(dZ, linear_cache)
    for layer in range(L - 1, 0, -1):
        grads[f"dA{layer - 1}"], grads[f"dW{layer}"], grads[f"db{layer}"] = (
            linear_activation_backward(grads[f"dA{layer}"], caches[layer - 1], "relu")
        )
    return grads


def update_parameters(
    parameters: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray], learning_rate: float
) -> dict[str, np.ndarray]:
    """W_l − learning_rate · dW_l and b_l − learning_rate · db_l, as new arrays (no mutation)."""
    L = len(parameters) // 2
    updated = {}
    for layer in range(1, L + 1):
        for kind in "Wb":
            key = f"{kind}{layer}"
            updated[key] = parameters[key] - learning_rate * grads[f"d{key}"]
    return updated


# --------------------------------------------------------------------------- models


def two_layer_model(
    X: np.ndarray,
    Y: np.ndarray,
    layers_dims: Sequence[int],
    learning_rate: float = 0.0075,
    num_iterations: int = 3000,
    print_cost: bool = False,
) -> tuple[dict[str, np.ndarray], list[float]]:
    """(parameters, costs): LINEAR → RELU → LINEAR → SIGMOID, layers_dims = (n_x, n_h, n_y).

    ``initialize_parameters`` (seed 1, × 0.01), then ``nn.train``; ``costs`` holds the cost at
    iterations 0, 100, 200, … (before that iteration's update). With print_cost it prints
    "Cost after iteration i: …" at those and at the last iteration. (The course's
    ``if print_cost and i % 100 == 0 or i == num_iterations - 1`` prints the last line even
    with print_cost=False; here print_cost decides.)
    """
    n_x, n_h, n_y = layers_dims
    parameters = initialize_parameters(n_x, n_h, n_y)
    parameters, costs = nn.train(parameters, X, Y, learning_rate, num_iterations,
                                 print_cost=print_cost)
    return parameters, list(costs)  # the course's plain list


def L_layer_model(
    X: np.ndarray,
    Y: np.ndarray,
    layers_dims: Sequence[int],
    learning_rate: float = 0.0075,
    num_iterations: int = 3000,
    print_cost: bool = False,
) -> tuple[dict[str, np.ndarray], list[float]]:
    """(parameters, costs): [LINEAR → RELU] × (L − 1) → LINEAR → SIGMOID.

    ``initialize_parameters_deep`` (seed 1, randn / sqrt(n_prev)), then ``nn.train``; costs and
    printing as ``two_layer_model``. With [12288, 20, 7, 5, 1], learning_rate 0.0075 and 2500
    iterations on the cat data: cost 0.771749 at 0, 0.092878 at 2400.
    """
    parameters = initialize_parameters_deep(layers_dims)
    parameters, costs = nn.train(parameters, X, Y, learning_rate, num_iterations,
                                 print_cost=print_cost)
    return parameters, list(costs)  # the course's plain list


def predict(X: np.ndarray, y: np.ndarray, parameters: Mapping[str, np.ndarray]) -> np.ndarray:
    """p (1, m) float: 1 where AL > 0.5, else 0; prints "Accuracy: …" against y (1, m)."""
    m = X.shape[1]
    probabilities, _ = L_model_forward(X, parameters)
    p = (probabilities > 0.5).astype(np.float64)
    # The course's expression, so the printed digits are the course's (0.9856459330143539).
    print("Accuracy: " + str(np.sum((p == y) / m)))
    return p


# --------------------------------------------------------------------------- course 2: mini-batches


def random_mini_batches(
    X: np.ndarray, Y: np.ndarray, mini_batch_size: int = 64, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(mini_batch_X, mini_batch_Y), …]: the columns of X (n_x, m) and Y (1, m) shuffled, then
    cut into batches of ``mini_batch_size``, the last one smaller (course 2, "Optimization
    methods").

    The course's order and numbers: ``np.random.seed(seed)`` then ``list(np.random.permutation
    (m))`` — here from a ``RandomState(seed)`` of its own, the same numbers without touching
    numpy's global state. With the notebook's test case (``np.random.seed(1)``, X = randn(12288,
    148), Y = randn(1, 148) < 0.5) the batches are 64, 64 and 20 columns and the first begins
    [0.90085595, -0.7612069, 0.2344157]. ``nn.mini_batches`` does the same from a ``tg.random``
    key.
    """
    m = X.shape[1]
    permutation = list(nn.legacy_stream(seed, "random_mini_batches").permutation(m))
    shuffled_X = X[:, permutation]
    shuffled_Y = Y[:, permutation].reshape((1, m))
    complete = math.floor(m / mini_batch_size)
    mini_batches = [(shuffled_X[:, k * mini_batch_size:(k + 1) * mini_batch_size],
                     shuffled_Y[:, k * mini_batch_size:(k + 1) * mini_batch_size])
                    for k in range(complete)]
    if m % mini_batch_size != 0:
        mini_batches.append((shuffled_X[:, complete * mini_batch_size:],
                             shuffled_Y[:, complete * mini_batch_size:]))
    return mini_batches
