"""Gradient descent, momentum and Adam train the same network on two moons, in mini-batches.

    python3 examples/optimizers.py                  # 5000 epochs each, as the course
    python3 examples/optimizers.py --epochs 1000 --out out

The experiment of deeplearning.ai's course 2 ("Optimization methods"): 300 points of two noisy
interleaved half circles, a [2, 5, 2, 1] ReLU network with He initialization, mini-batches of
64, learning rate 0.0007, each optimizer from the same start and the same shuffles. It prints
each one's cost every --print-every epochs and its accuracy, and draws the three decision
boundaries and the cost curves to OUT/optimizers.png (needs matplotlib: ``pip install -e
'.[examples]'``; skipped with a message without it). Adam separates the moons; with this small
learning rate gradient descent and momentum have not yet by the end.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import nn, optim

LAYER_DIMS = [2, 5, 2, 1]
INSTALL_HINT = "pip install -e '.[examples]'"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5000, metavar="N",
                        help="passes over the data, for each optimizer")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N",
                        help="points per mini-batch")
    parser.add_argument("--learning-rate", type=float, default=0.0007, metavar="RATE",
                        help="the same for every optimizer")
    parser.add_argument("--points", type=int, default=300, metavar="M", help="points of the moons")
    parser.add_argument("--print-every", type=int, default=1000, metavar="N",
                        help="print the cost every N epochs")
    parser.add_argument("--seed", type=int, default=3, help="data, initialization and shuffles")
    parser.add_argument("--out", default="out", metavar="DIR", help="where the PNG goes")
    parser.add_argument("--no-plots", action="store_true", help="write no PNG file")
    return parser.parse_args(argv)


def two_moons(key: Any, m: int, noise: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """X (2, m): half of the points on the upper half circle, half on the lower one shifted to
    interleave with it, plus Gaussian noise; Y (1, m): 1 for the lower moon."""
    angle_key, noise_key = tg.random.split(key)
    upper = m // 2
    angles = tg.random.uniform(angle_key, (m,), maxval=np.pi)
    x = np.where(np.arange(m) < upper, np.cos(angles), 1 - np.cos(angles))
    y = np.where(np.arange(m) < upper, np.sin(angles), 0.5 - np.sin(angles))
    X = np.stack([x, y]) + noise * tg.random.normal(noise_key, (2, m))
    Y = (np.arange(m) >= upper).astype(np.float64).reshape(1, m)
    return X, Y


def optimizers(learning_rate: float) -> dict[str, optim.Optimizer]:
    return {
        "gradient descent": optim.sgd(learning_rate),
        "momentum": optim.momentum(learning_rate, beta=0.9),
        "adam": optim.adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8),
    }


def write_plot(path: Path, X: np.ndarray, Y: np.ndarray,
               results: dict[str, tuple[dict[str, np.ndarray], list[float], float]],
               record_every: int) -> None:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print(f"Plots skipped: matplotlib is not installed ({INSTALL_HINT})")
        return
    figure = Figure(figsize=(4 * (len(results) + 1), 3.6), layout="constrained")
    axes = figure.subplots(1, len(results) + 1)
    low, high = X.min(axis=1) - 0.5, X.max(axis=1) + 0.5
    grid_x, grid_y = np.meshgrid(np.linspace(low[0], high[0], 200),
                                 np.linspace(low[1], high[1], 200))
    grid = np.stack([grid_x.ravel(), grid_y.ravel()])
    for panel, (name, (params, costs, accuracy)) in zip(axes[1:], results.items()):
        predictions = nn.predict(params, grid).reshape(grid_x.shape)
        panel.contourf(grid_x, grid_y, predictions, levels=[-0.5, 0.5, 1.5],
                       colors=["#b6cdf4", "#f4b6b6"])  # as the dots: 0 blue, 1 red
        panel.scatter(X[0], X[1], c=Y[0], cmap="coolwarm", s=8, edgecolors="k", linewidths=0.3)
        panel.set_title(f"{name}: accuracy {accuracy:.3f}")
        axes[0].plot(np.arange(len(costs)) * record_every, costs, label=name)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("cost")
    axes[0].legend()
    axes[0].set_title("cost per epoch")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    print(f"Wrote {path.resolve()}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    data_key, shuffle_key = tg.random.split(tg.random.key(args.seed))
    X, Y = two_moons(data_key, args.points)
    start = nn.init_params(LAYER_DIMS, "he", seed=args.seed)
    record_every = max(1, min(args.print_every, args.epochs // 50 or 1))
    results = {}
    for name, optimizer in optimizers(args.learning_rate).items():
        print(f"--- {name}")
        params, costs = nn.train(
            start, X, Y, num_iterations=args.epochs, optimizer=optimizer,
            batch_size=args.batch_size, key=shuffle_key, record_every=record_every,
        )
        for epoch, cost in enumerate(costs):
            if (epoch * record_every) % args.print_every == 0:
                print(f"Cost after epoch {epoch * record_every}: {cost:.6f}")
        accuracy = nn.accuracy(params, X, Y)
        print(f"{name} accuracy: {accuracy:.4f}")
        results[name] = (params, costs, accuracy)
    if not args.no_plots:
        write_plot(Path(args.out) / "optimizers.png", X, Y, results, record_every)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
