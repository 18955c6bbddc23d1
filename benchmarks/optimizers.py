"""Benchmark: an Adam step against the plain SGD step, on the tiny net [2, 16, 16, 1] (64 points).

One step is the same for every contender up to the update: the cost written op by op
(``contenders.engine_cost``), ``tg.value_and_grad``, then the update — ``nn.sgd_update``, the
thin use of ``optim.sgd`` that ``EngineTraining`` makes ("sgd"), or ``optim.sgd`` /
``optim.momentum`` / ``optim.rmsprop`` / ``optim.adam`` from ``tg.optim`` (init once, ``update``
each step). The
contenders alternate in one process (``common.alternate``); the bar: Adam ≤ 1.5 × SGD.

    python3 benchmarks/optimizers.py [--rounds N] [--dtype float64|float32|both]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from common import (
    TINY_LAYER_DIMS,
    TINY_LEARNING_RATE,
    StepFactory,
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
from contenders import EngineTraining, Params, engine_cost

import tinygrad_nn as tg
from tinygrad_nn import optim

ADAM_BAR = 1.5  # Adam step / SGD step


def parse_args() -> argparse.Namespace:
    parser = argument_parser(__doc__, "float64", with_data=False)
    add_timing_arguments(parser, rounds=420, warmup=20, inner=20, torch=False)
    return parse_arguments(parser)


class OptimizerTraining:
    """The engine's step with an update from ``tg.optim``: its state lives across steps."""

    def __init__(self, optimizer: optim.Optimizer, params: Params, X: np.ndarray,
                 Y: np.ndarray):
        self.params = {k: v.copy() for k, v in params.items()}
        self.optimizer, self.state = optimizer, optimizer.init(self.params)
        self.X, self.Y = X, Y
        self.cost_and_grads = tg.value_and_grad(engine_cost)

    def step(self) -> Any:
        cost, grads = self.cost_and_grads(self.params, self.X, self.Y)
        self.params, self.state = self.optimizer.update(grads, self.state, self.params)
        return cost


def factories(params: Params, X: np.ndarray, Y: np.ndarray) -> dict[str, StepFactory]:
    lr = TINY_LEARNING_RATE
    chosen = {"optim.sgd": optim.sgd(lr), "momentum": optim.momentum(lr),
              "rmsprop": optim.rmsprop(lr / 50), "adam": optim.adam(lr / 50)}
    runs: dict[str, StepFactory] = {"sgd": lambda: EngineTraining(params, X, Y, lr).step}
    for name, optimizer in chosen.items():
        runs[name] = lambda optimizer=optimizer: OptimizerTraining(optimizer, params, X, Y).step
    return runs


def measure(dtype: np.dtype[Any], args: argparse.Namespace) -> None:
    problem = tiny_problem(dtype)
    params = initial_params(TINY_LAYER_DIMS, dtype)
    print(f"=== tiny net, {dtype}: {TINY_LAYER_DIMS} on {problem.X.shape[1]} points")
    print(f"{args.rounds} rounds x {args.inner} steps (+{args.warmup} warm-up rounds), each "
          "contender after each other equally often; times per step")
    timings = alternate(factories(params, problem.X, problem.Y), args.rounds, args.warmup,
                        args.inner)
    print_times(timings, "us")
    print("medians of per-round ratios:")
    for name in ("optim.sgd", "momentum", "rmsprop"):
        print_ratio(f"{name} / sgd", timings.ratio(name, "sgd"))
    print_ratio("adam / sgd", timings.ratio("adam", "sgd"), ADAM_BAR)
    extra = timings.difference("adam", "sgd")
    print(f"{'adam - sgd per step':<40} {extra * 1e6:>7.1f} us")
    print()


def main() -> None:
    args = parse_args()
    print_configuration(tiny_problem().description, with_torch=False)
    for dtype in selected_dtypes(args.dtype):
        measure(dtype, args)


if __name__ == "__main__":
    main()
