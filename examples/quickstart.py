"""The engine in a minute: gradients of a tiny network, checked against finite differences."""

import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import nn


def cost(params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> tg.Tensor:
    A = tg.relu(params["W1"] @ X + params["b1"])
    AL = tg.sigmoid(params["W2"] @ A + params["b2"])
    return -(Y * tg.log(AL) + (1 - Y) * tg.log(1 - AL)).mean()


def main() -> None:
    rng = np.random.default_rng(0)
    params = {
        "W1": rng.normal(size=(4, 2)),
        "b1": np.zeros((4, 1)),
        "W2": rng.normal(size=(1, 4)),
        "b2": np.zeros((1, 1)),
    }
    X = rng.normal(size=(2, 8))
    Y = (X[:1] * X[1:] > 0).astype(np.float64)
    value, grads = tg.value_and_grad(cost)(params, X, Y)
    print(f"cost = {float(value):.6f}")
    for name, gradient in grads.items():
        print(f"d{name}: shape {gradient.shape}, norm {np.linalg.norm(gradient):.6f}")
    check = tg.check_grads(cost, (params, X, Y))
    print(f"gradient check: largest relative error {check.max_error:.2e} (at {check.worst_leaf})")
    for iteration in range(301):
        value, grads = tg.value_and_grad(cost)(params, X, Y)
        params = nn.sgd_update(params, grads, learning_rate=0.5)  # new arrays, params untouched
        if iteration % 100 == 0:
            print(f"Cost after iteration {iteration}: {float(value):.6f}")


if __name__ == "__main__":
    main()
