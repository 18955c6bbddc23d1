"""The engine in a minute: gradients of a tiny network, checked against finite differences.

    python3 examples/quickstart.py                  # 300 iterations, learning rate 0.5
    python3 examples/quickstart.py --iterations 1000 --learning-rate 0.1

The cost is the cross-entropy computed from the logits Z, softplus(Z) − Y·Z, which equals
−[Y log σ(Z) + (1 − Y) log(1 − σ(Z))] and stays finite where log(sigmoid(Z)) gives −inf.
"""

import argparse
from collections.abc import Sequence

import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import nn


def cost(params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> tg.Tensor:
    A = tg.relu(params["W1"] @ X + params["b1"])
    Z = params["W2"] @ A + params["b2"]  # logits, (1, m)
    return (tg.softplus(Z) - Y * Z).mean()  # cross-entropy from logits: never NaN


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--iterations", type=int, default=300, metavar="N",
                        help="gradient steps (default: 300)")
    parser.add_argument("--learning-rate", type=float, default=0.5, metavar="RATE",
                        help="default: 0.5")
    parser.add_argument("--seed", type=int, default=0, help="data and weights (default: 0)")
    args = parser.parse_args(argv)
    if args.iterations < 0 or not np.isfinite(args.learning_rate) or args.learning_rate <= 0:
        parser.error("--iterations must be >= 0 and --learning-rate a finite number > 0")
    if not 0 <= args.seed < 2**63:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    params = {
        "W1": rng.normal(size=(4, 2)),
        "b1": np.zeros((4, 1)),
        "W2": rng.normal(size=(1, 4)),
        "b2": np.zeros((1, 1)),
    }
    X = rng.normal(size=(2, 8))
    Y = (X[:1] * X[1:] > 0).astype(np.float64)  # 1 where both coordinates have one sign
    value, grads = tg.value_and_grad(cost)(params, X, Y)
    print(f"cost = {float(value):.6f}")
    for name, gradient in grads.items():
        print(f"d{name}: shape {gradient.shape}, norm {np.linalg.norm(gradient):.6f}")
    check = tg.check_grads(cost, (params, X, Y), argnums=0)  # only the parameters
    print(f"gradient check: largest relative error {check.max_error:.2e} (at {check.worst_leaf})")
    for iteration in range(args.iterations):
        value, grads = tg.value_and_grad(cost)(params, X, Y)
        params = nn.sgd_update(params, grads, args.learning_rate)  # new arrays, params untouched
        if iteration % 100 == 0 or iteration == args.iterations - 1:
            print(f"Cost after iteration {iteration}: {float(value):.6f}")


if __name__ == "__main__":
    main()
