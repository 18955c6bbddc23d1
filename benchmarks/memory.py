"""Benchmark 3: peak memory of cat-workload training, and that it does not grow over iterations.

Memory is what tracemalloc sees (numpy reports its array buffers to it) beyond what existed
before the run: the data and the starting parameters are made first. Each contender runs alone,
one after the other (a peak is a property of one run, so they are not alternated). PyTorch's
allocator does not report to tracemalloc, so it is not a contender here.

    python3 benchmarks/memory.py [--iterations N] [--growth-from N] [--growth-to N] [--data DIR]
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc
from typing import Any, NamedTuple

import numpy as np
from common import (
    CAT_LAYER_DIMS,
    CAT_LEARNING_RATE,
    Problem,
    StepFactory,
    argument_parser,
    cat_problem,
    initial_params,
    parse_arguments,
    print_configuration,
    print_ratio,
    print_verdict,
    selected_dtypes,
)
from contenders import training_factories

MiB = 1024 * 1024
PEAK_BAR = 1.3  # engine / hand-written
GROWTH_LIMIT = 1 * MiB


def parse_args() -> argparse.Namespace:
    parser = argument_parser(__doc__, "float64", with_data=True)
    parser.add_argument("--iterations", type=int, default=500, help="iterations for the peak")
    parser.add_argument("--growth-from", type=int, default=100, help="first growth reading")
    parser.add_argument("--growth-to", type=int, default=2000, help="last growth reading")
    return parse_arguments(parser)


def peak_bytes(new_training: StepFactory, iterations: int) -> int:
    """Highest traced memory over ``iterations`` steps, above what existed before them."""
    step = new_training()
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(iterations):
            step()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


class Reading(NamedTuple):
    """Traced memory held after some step: as it is, and after a full ``gc.collect()``."""

    held: int
    held_after_collect: int
    unreachable: int  # objects the collector found in reference cycles


def readings_after(new_training: StepFactory, iterations: tuple[int, int]) -> list[Reading]:
    """A reading after the ``iterations[0]``-th and after the ``iterations[1]``-th step."""
    step = new_training()
    gc.collect()
    tracemalloc.start()
    try:
        readings = []
        for iteration in range(1, iterations[1] + 1):
            step()
            if iteration in iterations:
                held = tracemalloc.get_traced_memory()[0]
                unreachable = gc.collect()  # also empties Python's free lists
                readings.append(Reading(held, tracemalloc.get_traced_memory()[0], unreachable))
        return readings
    finally:
        tracemalloc.stop()


def measure(problem: Problem, dtype: np.dtype[Any], args: argparse.Namespace) -> None:
    params = initial_params(CAT_LAYER_DIMS, dtype)
    print(f"=== memory, {dtype}: cat workload {CAT_LAYER_DIMS} on {problem.X.shape[1]} images")
    factories = training_factories(
        params, problem.X, problem.Y, CAT_LEARNING_RATE, with_floor=True, with_torch=False,
        with_jax=False,
    )
    print(f"peak traced memory over {args.iterations} iterations, each contender alone:")
    peaks = {name: peak_bytes(factory, args.iterations) for name, factory in factories.items()}
    for name, peak in peaks.items():
        print(f"{name:<24} {peak / MiB:>10.2f} MiB")
    print_ratio("engine / handwritten peak", peaks["engine"] / peaks["handwritten"], PEAK_BAR)

    step = factories["engine, jit"]()
    step()  # the first call traces and plans; its buffers are made once
    largest = 0
    tracemalloc.start()
    try:
        for _ in range(20):
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            step()
            largest = max(largest, tracemalloc.get_traced_memory()[1] - before)
    finally:
        tracemalloc.stop()
    print_verdict("jitted step: most memory taken during a call", largest < 4 * 1024,
                  f"{largest} bytes (no array beyond 1 KiB: 0-d results and Python objects)")

    first, last = args.growth_from, args.growth_to
    for name in ("engine", "engine, jit"):
        readings = readings_after(factories[name], (first, last))
        print(f"{name} memory held after iteration   {first:>8} {last:>8}   growth")
        for label, field in (("as it is", "held"), ("after gc.collect()", "held_after_collect")):
            start, end = (getattr(reading, field) for reading in readings)
            print(
                f"  {label:<34} {start / MiB:>5.2f} MiB {end / MiB:>5.2f} MiB "
                f"{(end - start) / 1024:>+8.1f} KiB"
            )
        cycles = ", ".join(str(reading.unreachable) for reading in readings)
        print(f"  objects in reference cycles found by gc.collect(): {cycles}")
        growth = readings[1].held - readings[0].held
        detail = f"{growth / 1024:+.1f} KiB (limit < {GROWTH_LIMIT // 1024} KiB)"
        print_verdict(f"{name} growth {first} -> {last}", growth < GROWTH_LIMIT, detail)
    print()


def main() -> None:
    args = parse_args()
    if not 0 < args.growth_from < args.growth_to:
        raise SystemExit("memory.py: need 0 < --growth-from < --growth-to")
    problems = {str(d): cat_problem(args.data, d) for d in selected_dtypes(args.dtype)}
    print_configuration(next(iter(problems.values())).description, with_torch=False)
    for name, problem in problems.items():
        measure(problem, np.dtype(name), args)


if __name__ == "__main__":
    main()
