"""Benchmark 2: a tiny net [2, 16, 16, 1] on 64 points, where the engine's bookkeeping dominates.

Contenders, alternating in one process: our engine eager (the cost as a user writes it, and
with the update as a dict comprehension), the same step under ``tg.jit``, the course's
hand-written numpy, and PyTorch eager and ``jax.jit`` when installed. Reports the eager engine's
overhead per op.

    python3 benchmarks/overhead.py [--rounds N] [--dtype float64|float32|both]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from common import (
    TINY_LAYER_DIMS,
    TINY_LEARNING_RATE,
    Problem,
    add_timing_arguments,
    alternate,
    argument_parser,
    initial_params,
    parse_arguments,
    print_configuration,
    print_ratio,
    print_times,
    selected_dtypes,
    tiny_problem,
)
from contenders import engine_cost, training_factories

import tinygrad_nn as tg
from tinygrad_nn.autodiff import toposort

HANDWRITTEN_BAR = 2.0  # eager engine / hand-written per iteration (issue 5)
JIT_HANDWRITTEN_BAR = 1.3  # jitted / hand-written (issue 10); and jitted faster than jax.jit


def parse_args() -> argparse.Namespace:
    parser = argument_parser(__doc__, "float64", with_data=False)
    add_timing_arguments(parser, rounds=420, warmup=20, inner=20)
    return parse_arguments(parser)


def engine_op_counts(params: dict[str, np.ndarray], problem: Problem) -> tuple[int, int]:
    """(forward ops recorded, VJP rules run) in one engine iteration of the cost."""
    leaves = {k: tg.Tensor(v, requires_grad=True) for k, v in params.items()}
    loss = engine_cost(leaves, problem.X, problem.Y)
    recorded = [node for node in toposort(loss) if node.op is not None]
    vjps = 0
    for node in recorded:
        vjps += sum(type(x) is tg.Tensor and x.requires_grad for x in node.inputs or ())
    return len(recorded), vjps


def measure(problem: Problem, dtype: np.dtype[Any], args: argparse.Namespace) -> None:
    params = initial_params(TINY_LAYER_DIMS, dtype)
    X, Y, lr = problem.X, problem.Y, TINY_LEARNING_RATE
    print(f"=== tiny net, {dtype}: {TINY_LAYER_DIMS} on {X.shape[1]} points")
    forward_ops, vjps = engine_op_counts(params, problem)
    print(f"engine ops per iteration: {forward_ops} forward ops recorded + {vjps} VJPs run")
    factories = training_factories(params, X, Y, lr, with_floor=False, with_torch=not args.no_torch)
    print(
        f"{args.rounds} rounds x {args.inner} iterations (+{args.warmup} warm-up rounds), "
        "each contender after each other equally often; times per iteration"
    )
    timings = alternate(factories, args.rounds, args.warmup, args.inner)
    print_times(timings, "us")
    print("medians of per-round ratios:")
    print_ratio("engine, jit / handwritten", timings.ratio("engine, jit", "handwritten"),
                JIT_HANDWRITTEN_BAR)
    print_ratio("engine / handwritten", timings.ratio("engine", "handwritten"), HANDWRITTEN_BAR)
    if "jax.jit" in factories:
        print_ratio("engine, jit / jax.jit", timings.ratio("engine, jit", "jax.jit"), 1.0)
    if "torch" in factories:
        print_ratio("torch / engine", timings.ratio("torch", "engine"))
    extra = timings.difference("engine", "handwritten")
    ops = forward_ops + vjps
    print(f"{'engine - handwritten per iteration':<40} {extra * 1e6:>7.1f} us")
    print(f"{'overhead per op (' + str(ops) + ' ops)':<40} {extra * 1e6 / ops:>7.2f} us")
    print(f"{'engine time per op':<40} {timings.median('engine') * 1e6 / ops:>7.2f} us")
    print()


def main() -> None:
    args = parse_args()
    problem = tiny_problem()
    print_configuration(problem.description, with_torch=not args.no_torch, with_jax=True)
    for dtype in selected_dtypes(args.dtype):
        measure(tiny_problem(dtype), dtype, args)


if __name__ == "__main__":
    main()
