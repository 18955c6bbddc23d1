"""The benchmark scripts run to the end on a few iterations and print every bar they judge.

These are smoke tests, never timings: the figures themselves come from running the scripts
(benchmarks/README.md). Without $TINYGRAD_NN_DATA the cat scripts use the synthetic stand-in.

One Python process runs the seven scripts in turn, each as ``python script.py`` would (runpy,
as ``__main__``, with its arguments in ``sys.argv`` and benchmarks/ on ``sys.path``): the
interpreter's, numpy's and jax's imports are paid once rather than seven times (half the time
of these tests). Each script's test then reads what its run printed and how it ended.
"""

import json
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


RUN_EACH = """
import contextlib, io, json, runpy, sys, traceback
sys.path.insert(0, sys.argv[1])
runs = {}
for script, arguments in json.loads(sys.argv[2]):
    sys.argv = [script, *arguments]
    out, err, code = io.StringIO(), io.StringIO(), 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(script, run_name="__main__")
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
        err.write("" if stop.code is None or isinstance(stop.code, int) else str(stop.code))
    except BaseException:
        code = 1
        err.write(traceback.format_exc())
    runs[script] = {"returncode": code, "stdout": out.getvalue(), "stderr": err.getvalue()}
print(json.dumps(runs))
"""


@pytest.fixture(scope="module")
def runs() -> dict[str, dict[str, object]]:
    """Every script of QUICK_RUNS run once, in one process: by script, its exit code and what
    it printed to stdout and stderr."""
    scripts = [(str(BENCHMARKS / script), arguments)
               for script, (arguments, _) in sorted(QUICK_RUNS.items())]
    completed = subprocess.run(
        [sys.executable, "-c", RUN_EACH, str(BENCHMARKS), json.dumps(scripts)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    last_line = completed.stdout.splitlines()[-1]  # after anything written past sys.stdout
    return {Path(script).name: run for script, run in json.loads(last_line).items()}


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(QUICK_RUNS))
def test_benchmark_runs_and_reports(script: str, runs: dict[str, dict[str, object]]) -> None:
    expected = QUICK_RUNS[script][1]
    run = runs[script]
    assert run["returncode"] == 0, run["stderr"]
    output = run["stdout"]
    assert isinstance(output, str)
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
