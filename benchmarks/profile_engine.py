"""Where the engine spends its time: cProfile over engine iterations, top entries by tottime.

Profiles the cat workload (where the matmuls should dominate) and the tiny net (where the
engine's bookkeeping does), each with the cost as a user writes it.

    python3 benchmarks/profile_engine.py [--cat-iterations N] [--tiny-iterations N] [--top N]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats

from common import (
    CAT_LAYER_DIMS,
    CAT_LEARNING_RATE,
    TINY_LAYER_DIMS,
    TINY_LEARNING_RATE,
    Problem,
    argument_parser,
    cat_problem,
    initial_params,
    parse_arguments,
    print_configuration,
    selected_dtypes,
    tiny_problem,
)
from contenders import EngineTraining

RESTART_EVERY = 100


def parse_args() -> argparse.Namespace:
    parser = argument_parser(__doc__, "float64", with_data=True)
    parser.add_argument("--cat-iterations", type=int, default=50)
    parser.add_argument("--tiny-iterations", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25, help="entries printed per profile")
    return parse_arguments(parser)


def profile_training(
    label: str,
    problem: Problem,
    layer_dims: tuple[int, ...],
    learning_rate: float,
    iterations: int,
    top: int,
) -> None:
    params = initial_params(layer_dims, problem.X.dtype)
    EngineTraining(params, problem.X, problem.Y, learning_rate).step()  # warm-up
    profiler = cProfile.Profile()
    for iteration in range(iterations):
        # Restarted now and then (untimed), so that long runs do not train into saturation.
        if iteration % RESTART_EVERY == 0:
            training = EngineTraining(params, problem.X, problem.Y, learning_rate)
        profiler.enable()
        training.step()
        profiler.disable()
    print(f"=== profile: {label}, {iterations} engine iterations ({problem.X.dtype})")
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]  # set by Stats, not in its stub
    print(f"total {total:.3f} s, {total / iterations * 1e3:.3f} ms per iteration (under cProfile)")
    stats.sort_stats("tottime").print_stats(top)


def main() -> None:
    args = parse_args()
    cats = {dtype: cat_problem(args.data, dtype) for dtype in selected_dtypes(args.dtype)}
    print_configuration(next(iter(cats.values())).description, with_torch=False)
    for dtype, cat in cats.items():
        cat_net, tiny_net = f"cat workload {CAT_LAYER_DIMS}", f"tiny net {TINY_LAYER_DIMS}"
        profile_training(
            cat_net, cat, CAT_LAYER_DIMS, CAT_LEARNING_RATE, args.cat_iterations, args.top
        )
        profile_training(
            tiny_net,
            tiny_problem(dtype),
            TINY_LAYER_DIMS,
            TINY_LEARNING_RATE,
            args.tiny_iterations,
            args.top,
        )


if __name__ == "__main__":
    main()
