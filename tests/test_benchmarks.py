"""The benchmark scripts run to the end on a few iterations and print every bar they judge.

These are smoke tests, never timings: the figures themselves come from running the scripts
(benchmarks/README.md). Without $TINYGRAD_NN_DATA the cat scripts use the synthetic stand-in.
"""

import subprocess
import sys
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
from common import balanced_orders  # noqa: E402  (benchmarks/ is scripts, not a package)

QUICK_RUNS = {
    "cat_workload.py": (
        ["--no-torch", "--rounds", "2", "--warmup", "1", "--inner", "1",
         "--accuracy-iterations", "3"],
        ["engine, jit / floor", "engine / floor", "engine / handwritten",
         "engine, dict update / floor", "lean numpy / floor", "float32 accuracies == float64"],
    ),
    "overhead.py": (
        ["--no-torch", "--rounds", "3", "--warmup", "1", "--inner", "2"],
        ["engine, jit / handwritten", "engine / handwritten", "overhead per op"],
    ),
    "memory.py": (
        ["--iterations", "3", "--growth-from", "2", "--growth-to", "5"],
        ["engine / handwritten peak", "jitted step: most memory taken during a call",
         "engine growth 2 -> 5", "engine, jit growth 2 -> 5"],
    ),
    "export.py": (
        ["--runs", "2", "--dtype", "both"],
        ["=== export, float64", "=== export, float32", "export time, median",
         "labels as the engine: True"],
    ),
    "optimizers.py": (
        ["--rounds", "2", "--warmup", "1", "--inner", "2", "--dtype", "both"],
        ["adam / sgd", "momentum / sgd", "rmsprop / sgd", "tiny net, float32"],
    ),
    "per_example.py": (
        ["--rounds", "2", "--warmup", "1", "--inner", "1", "--examples", "16", "--dtype", "both"],
        ["vmap / loop of grad", "jit(vmap) / loop of grad", "per-example gradients == loop of "
         "grad", "per-example gradients, float32"],
    ),
    "profile_engine.py": (
        ["--cat-iterations", "2", "--tiny-iterations", "10", "--top", "3"],
        ["=== profile: cat workload", "=== profile: tiny net", "ms per iteration"],
    ),
}


@pytest.mark.parametrize("script", sorted(QUICK_RUNS))
def test_benchmark_runs_and_reports(script: str) -> None:
    arguments, expected = QUICK_RUNS[script]
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *arguments],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    output = completed.stdout
    assert "=== configuration" in output and "numpy" in output
    for line in expected:
        assert line in output, f"{script} did not print {line!r}:\n{output}"
    bars = [line for line in output.splitlines() if "bar ≤" in line]
    assert all(line.rstrip().endswith(("PASS", "MISS")) for line in bars), bars


@pytest.mark.parametrize("count", range(1, 9))
def test_balanced_orders_put_each_contender_after_each_other_equally_often(count: int) -> None:
    orders = balanced_orders(count)
    assert len(orders) == (count if count % 2 == 0 else 2 * count)
    assert all(sorted(order) == list(range(count)) for order in orders)
    followers = Counter(pair for order in orders for pair in pairwise(order))
    assert len(followers) == count * (count - 1)  # every ordered pair occurs ...
    assert len(set(followers.values())) <= 1  # ... equally often
