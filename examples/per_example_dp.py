"""Per-example gradients with ``tg.vmap``, clipped and noised as DP-SGD does, train a small net.

    python3 examples/per_example_dp.py                # 300 steps: a few seconds
    python3 examples/per_example_dp.py --noise 0      # clipping only

DP-SGD (Abadi et al., 2016) bounds what any one example can do to a step: each example's
gradient is scaled down to norm at most C, the clipped gradients are averaged, and Gaussian
noise of standard deviation σ·C / m is added to the mean. ``tg.vmap(tg.grad(loss), in_axes=(None,
1, 1))`` gives the m per-example gradients in one batched program (the parameters shared, the
examples the columns of X and Y), each leaf with the examples on a new first axis; ``tg.jit``
replays the whole private step. The task: the points of a square inside the unit circle, for a
[2, 16, 1] ReLU network.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import nn, optim


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, metavar="N", help="SGD steps")
    parser.add_argument("--batch-size", type=int, default=128, metavar="M", help="per step")
    parser.add_argument("--clip", type=float, default=1.0, metavar="C",
                        help="each example's gradient norm is clipped to C")
    parser.add_argument("--noise", type=float, default=0.5, metavar="SIGMA",
                        help="the noise's standard deviation, in units of C / m")
    parser.add_argument("--learning-rate", type=float, default=0.5, metavar="RATE", help="SGD's")
    parser.add_argument("--print-every", type=int, default=50, metavar="N",
                        help="print the cost every N steps")
    parser.add_argument("--seed", type=int, default=0, help="data, initialization and noise")
    return parser.parse_args(argv)


def disc(rng: np.random.Generator, m: int) -> tuple[np.ndarray, np.ndarray]:
    """X (2, m) uniform in [-1.5, 1.5]²; Y (1, m): 1 inside the unit circle."""
    X = rng.uniform(-1.5, 1.5, size=(2, m))
    return X, (np.sum(X * X, axis=0, keepdims=True) < 1.0).astype(np.float64)


def loss(params: Any, x: Any, y: Any) -> Any:
    """The cross-entropy of one example: x (2,), y (1,) (a column each)."""
    z = nn.logits(params, x[:, None])[0, 0]
    return tg.softplus(z) - y[0] * z


def private_gradient(params: Any, X: Any, Y: Any, key: Any, clip: float,
                     noise: float) -> tuple[Any, Any]:
    """The mean of the per-example gradients, each clipped to norm ``clip``, plus Gaussian
    noise of standard deviation noise·clip / m; and the fraction of examples clipped."""
    per_example = tg.vmap(tg.grad(loss), in_axes=(None, 1, 1))(params, X, Y)  # leaves (m, …)
    m = X.shape[1]
    norms = tg.sqrt(sum((g.reshape(m, -1) ** 2).sum(axis=1) for g in per_example.values()))
    scale = 1.0 / tg.maximum(norms / clip, 1.0)  # (m,): g · min(1, C / ‖g‖)
    keys = tg.random.split(key, len(per_example))
    private = {}
    for k, (name, g) in zip(keys, per_example.items()):
        clipped = (g * scale.reshape(-1, *[1] * (g.ndim - 1))).mean(axis=0)
        private[name] = clipped + tg.random.normal(k, clipped.shape) * (noise * clip / m)
    return private, (norms > clip).mean()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rng, key = np.random.default_rng(args.seed), tg.random.key(args.seed)
    params = nn.init_params([2, 16, 1], "he", seed=args.seed)
    optimizer = optim.sgd(args.learning_rate)

    def step(params: Any, state: Any, X: Any, Y: Any, key: Any) -> tuple[Any, ...]:
        grads, clipped = private_gradient(params, X, Y, key, args.clip, args.noise)
        params, state = optimizer.update(grads, state, params)
        return params, state, clipped

    step = tg.jit(step)
    state = optimizer.init(params)
    for k in range(args.steps):
        X, Y = disc(rng, args.batch_size)
        key, step_key = tg.random.split(key)
        params, state, clipped = step(params, state, X, Y, step_key)
        if k % args.print_every == 0 or k == args.steps - 1:
            cost = float(tg.vmap(loss, in_axes=(None, 1, 1))(params, X, Y).mean())
            print(f"step {k:4d}: cost {cost:.4f}, {float(clipped):.0%} of the examples clipped")
    X, Y = disc(rng, 2000)
    print(f"Test accuracy (2000 new points): {nn.accuracy(params, X, Y):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
