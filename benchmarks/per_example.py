"""Benchmark: per-example gradients of the tiny net [2, 16, 16, 1] over 256 examples, by
``tg.vmap`` against a Python loop of ``tg.grad``.

The loss is the course's cross-entropy of one example (``contenders.engine_cost`` on one column
of X and of Y); every contender returns each parameter's gradients stacked, ``(256, *W.shape)``.
Contenders, alternating in one process (``common.alternate``): a loop of ``tg.grad`` over the
columns, then ``np.stack``; ``tg.vmap(tg.grad(loss), in_axes=(None, 1, 1))`` eagerly (it traces
the loss on one example at each call, then runs the batch); the same under ``tg.jit``; and
``jax.jit(jax.vmap(jax.grad(loss)))`` when JAX is installed. The bar (issue 19): vmap at least
10 times faster than the loop.

    python3 benchmarks/per_example.py [--rounds N] [--examples 256] [--dtype float64|float32|both]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from common import (
    TINY_LAYER_DIMS,
    StepFactory,
    add_timing_arguments,
    alternate,
    argument_parser,
    import_jax,
    initial_params,
    parse_arguments,
    print_configuration,
    print_ratio,
    print_times,
    selected_dtypes,
)
from contenders import Params, engine_cost

import tinygrad_nn as tg

VMAP_BAR = 0.1  # vmap / loop of grad: at least 10 times faster (issue 19)


def parse_args() -> argparse.Namespace:
    parser = argument_parser(__doc__, "float64", with_data=False)
    parser.add_argument("--examples", type=int, default=256, help="examples (columns) (256)")
    add_timing_arguments(parser, rounds=30, warmup=3, inner=2, torch=False)
    return parse_arguments(parser)


def examples(m: int, dtype: np.dtype[Any]) -> tuple[np.ndarray, np.ndarray]:
    """m points in the plane as columns, labelled by the sign of x0·x1 (as the tiny problem)."""
    X = np.random.RandomState(0).randn(2, m)
    return X.astype(dtype), (X[:1] * X[1:] > 0).astype(dtype)


def example_loss(params: dict[str, Any], x: Any, y: Any) -> tg.Tensor:
    """The cost of one example: x of shape (n_x,) and y of shape (1,), as columns."""
    return engine_cost(params, x[:, None], y[:, None])


def loop_of_grad(params: Params, X: np.ndarray, Y: np.ndarray) -> dict[str, np.ndarray]:
    grad = tg.grad(example_loss)
    grads = [grad(params, X[:, i], Y[:, i]) for i in range(X.shape[1])]
    return {k: np.stack([g[k] for g in grads]) for k in params}


PER_EXAMPLE = tg.vmap(tg.grad(example_loss), in_axes=(None, 1, 1))
JITTED = tg.jit(PER_EXAMPLE)


def jax_per_example(jax: Any) -> Any:
    import jax.numpy as jnp

    def loss(params: dict[str, Any], x: Any, y: Any) -> Any:
        A = x[:, None]
        L = len(params) // 2
        for layer in range(1, L):
            A = jax.nn.relu(params[f"W{layer}"] @ A + params[f"b{layer}"])
        AL = jax.nn.sigmoid(params[f"W{L}"] @ A + params[f"b{L}"])
        return -jnp.mean(y * jnp.log(AL) + (1 - y) * jnp.log(1 - AL))

    return jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 1, 1)))


def factories(params: Params, X: np.ndarray, Y: np.ndarray) -> dict[str, StepFactory]:
    runs: dict[str, StepFactory] = {
        "loop of grad": lambda: lambda: loop_of_grad(params, X, Y),
        "vmap": lambda: lambda: PER_EXAMPLE(params, X, Y),
        "jit(vmap)": lambda: lambda: JITTED(params, X, Y),
    }
    jax = import_jax()
    if jax is not None:
        per_example = jax_per_example(jax)
        runs["jax.jit(vmap)"] = lambda: lambda: jax.block_until_ready(per_example(params, X, Y))
    return runs


def check_equal(params: Params, X: np.ndarray, Y: np.ndarray, dtype: np.dtype[Any]) -> None:
    """The contenders' gradients against the loop's (the jitted one on a second draw too)."""
    expected = loop_of_grad(params, X, Y)
    worst = 0.0
    for got in (PER_EXAMPLE(params, X, Y), JITTED(params, X, Y)):
        for k, g in expected.items():
            scale = max(float(np.abs(g).max()), 1e-300)
            worst = max(worst, float(np.abs(got[k] - g).max()) / scale)
    second = {k: v[:, ::-1].copy() for k, v in (("X", X), ("Y", Y))}
    replay, again = JITTED(params, second["X"], second["Y"]), loop_of_grad(
        params, second["X"], second["Y"])
    worst = max(worst, *(float(np.abs(replay[k] - g).max()) / max(float(np.abs(g).max()),
                                                                   1e-300)
                         for k, g in again.items()))
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    verdict = "PASS" if worst <= tolerance else "MISS"
    print(f"{'per-example gradients == loop of grad':<40} max relative difference {worst:.1e} "
          f"(≤ {tolerance:g})   {verdict}")


def measure(dtype: np.dtype[Any], args: argparse.Namespace) -> None:
    params = initial_params(TINY_LAYER_DIMS, dtype)
    X, Y = examples(args.examples, dtype)
    print(f"=== per-example gradients, {dtype}: {TINY_LAYER_DIMS} on {X.shape[1]} examples")
    check_equal(params, X, Y, dtype)
    print(f"{args.rounds} rounds x {args.inner} calls (+{args.warmup} warm-up rounds), each "
          "contender after each other equally often; times per call (all examples)")
    timings = alternate(factories(params, X, Y), args.rounds, args.warmup, args.inner)
    print_times(timings, "ms")
    print("medians of per-round ratios:")
    print_ratio("vmap / loop of grad", timings.ratio("vmap", "loop of grad"), VMAP_BAR)
    print_ratio("jit(vmap) / loop of grad", timings.ratio("jit(vmap)", "loop of grad"))
    print_ratio("jit(vmap) / vmap", timings.ratio("jit(vmap)", "vmap"))
    if "jax.jit(vmap)" in timings.per_round:
        print_ratio("jit(vmap) / jax.jit(vmap)", timings.ratio("jit(vmap)", "jax.jit(vmap)"))
    print(f"{'loop of grad / vmap (speed-up)':<40} "
          f"{1 / timings.ratio('vmap', 'loop of grad'):>7.1f} x")
    print()


def main() -> None:
    args = parse_args()
    print_configuration(f"{args.examples} random points as columns, label sign(x0·x1)",
                        with_torch=False, with_jax=True)
    for dtype in selected_dtypes(args.dtype):
        measure(dtype, args)


if __name__ == "__main__":
    main()
