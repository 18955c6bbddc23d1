"""Benchmark 1: the course's 5-layer cat net; an iteration = forward, cost, backward, update.

Contenders, alternating in one process: our engine eager (``value_and_grad``, the cost as a user
writes it; and with the update as a dict comprehension), the same step under ``tg.jit`` (the
parameters donated), the course's hand-written numpy, lean numpy (the engine's work by hand),
the floor (W1·X, dZ1·Xᵀ, W1 update), and PyTorch eager and ``jax.jit`` when installed. Then the
engine trains in float64 and float32 to compare accuracies.

    python3 benchmarks/cat_workload.py [--rounds N] [--dtype float64|float32|both] [--data DIR]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from common import (
    CAT_LAYER_DIMS,
    CAT_LEARNING_RATE,
    Problem,
    add_timing_arguments,
    alternate,
    argument_parser,
    cat_problem,
    initial_params,
    parse_arguments,
    print_configuration,
    print_ratio,
    print_times,
    print_verdict,
    selected_dtypes,
)
from contenders import (
    EngineTraining,
    L_model_backward,
    L_model_forward,
    engine_cost,
    predict,
    training_factories,
)

import tinygrad_nn as tg

# The bars: eager engine / floor by dtype (issue 5), jitted / floor (issue 10), and engine /
# hand-written in float64.
FLOOR_BARS = {"float64": 1.10, "float32": 1.15}
JIT_FLOOR_BARS = {"float64": 1.05, "float32": 1.08}
HANDWRITTEN_BAR_FLOAT64 = 0.75


def parse_args() -> argparse.Namespace:
    parser = argument_parser(__doc__, "both", with_data=True)
    add_timing_arguments(parser, rounds=120, warmup=3, inner=3)
    parser.add_argument(
        "--accuracy-iterations",
        type=int,
        default=2500,
        help="training iterations for the accuracy comparison (0 skips it; the course uses 2500)",
    )
    return parse_arguments(parser)


def gradient_agreement(params: dict[str, np.ndarray], problem: Problem) -> tuple[float, str]:
    """Largest relative difference engine vs hand-written gradients, and the engine's dtypes."""
    cost, grads = tg.value_and_grad(engine_cost)(params, problem.X, problem.Y)
    AL, caches = L_model_forward(problem.X, params)
    reference = L_model_backward(AL, problem.Y, caches)
    worst = max(
        float(np.max(np.abs(grads[k] - reference[f"d{k}"])) / np.max(np.abs(reference[f"d{k}"])))
        for k in params
    )
    dtypes = sorted({str(g.dtype) for g in grads.values()})
    return worst, f"cost {np.asarray(cost).dtype}, gradients {', '.join(dtypes)}"


def time_workload(problem: Problem, dtype: np.dtype[Any], args: argparse.Namespace) -> None:
    name = str(dtype)
    params = initial_params(CAT_LAYER_DIMS, dtype)
    worst, dtypes = gradient_agreement(params, problem)
    print(f"=== cat workload, {name}: {CAT_LAYER_DIMS} on {problem.X.shape[1]} images")
    print(f"engine vs hand-written gradients: max relative difference {worst:.1e}; {dtypes}")
    factories = training_factories(
        params,
        problem.X,
        problem.Y,
        CAT_LEARNING_RATE,
        with_floor=True,
        with_torch=not args.no_torch,
    )
    print(
        f"{args.rounds} rounds x {args.inner} iterations (+{args.warmup} warm-up rounds), "
        "each contender after each other equally often; times per iteration"
    )
    timings = alternate(factories, args.rounds, args.warmup, args.inner)
    print_times(timings, "ms")
    print("medians of per-round ratios:")
    print_ratio("engine, jit / floor", timings.ratio("engine, jit", "floor"), JIT_FLOOR_BARS[name])
    print_ratio("engine / floor", timings.ratio("engine", "floor"), FLOOR_BARS[name])
    handwritten_bar = HANDWRITTEN_BAR_FLOAT64 if name == "float64" else None
    print_ratio("engine / handwritten", timings.ratio("engine", "handwritten"), handwritten_bar)
    print_ratio("engine, dict update / floor", timings.ratio("engine, dict update", "floor"))
    print_ratio("handwritten / floor", timings.ratio("handwritten", "floor"))
    print_ratio("lean numpy / floor", timings.ratio("lean numpy", "floor"))
    print_ratio("engine / lean numpy", timings.ratio("engine", "lean numpy"))
    if "torch" in factories:
        print_ratio("torch / engine", timings.ratio("torch", "engine"))
        print_ratio("torch / floor", timings.ratio("torch", "floor"))
    if "jax.jit" in timings.per_round:
        print_ratio("jax.jit / floor", timings.ratio("jax.jit", "floor"))
        print_ratio("jax.jit / engine, jit", timings.ratio("jax.jit", "engine, jit"))
    print()


def accuracy(params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> float:
    return float(np.mean(predict(params, X) == Y))


def train_and_score(problem: Problem, dtype: np.dtype[Any], iterations: int) -> tuple[float, ...]:
    """(final cost, train accuracy, test accuracy) of the engine after ``iterations``."""
    training = EngineTraining(
        initial_params(CAT_LAYER_DIMS, dtype), problem.X, problem.Y, CAT_LEARNING_RATE
    )
    cost = float("nan")
    for _ in range(iterations):
        cost = float(training.step())
    params = training.params
    return (
        cost,
        accuracy(params, problem.X, problem.Y),
        accuracy(params, problem.X_test, problem.Y_test),
    )


def compare_accuracy(problems: dict[str, Problem], iterations: int) -> None:
    print(f"=== accuracy: the engine trained {iterations} iterations, lr {CAT_LEARNING_RATE}")
    print(f"{'dtype':<10} {'final cost':>12} {'train acc':>10} {'test acc':>10}")
    scores = {}
    for name, problem in problems.items():
        scores[name] = train_and_score(problem, np.dtype(name), iterations)
        cost, train, test = scores[name]
        print(f"{name:<10} {cost:>12.6f} {train:>10.4f} {test:>10.4f}")
    if len(scores) == 2:
        same = scores["float32"][1:] == scores["float64"][1:]
        print_verdict("float32 accuracies == float64", same, "train and test")
    print()


def main() -> None:
    args = parse_args()
    problems = {str(d): cat_problem(args.data, d) for d in selected_dtypes(args.dtype)}
    print_configuration(next(iter(problems.values())).description, with_torch=not args.no_torch,
                        with_jax=True)
    for name, problem in problems.items():
        time_workload(problem, np.dtype(name), args)
    if args.accuracy_iterations > 0:
        compare_accuracy(problems, args.accuracy_iterations)


if __name__ == "__main__":
    main()
