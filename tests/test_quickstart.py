"""examples/quickstart.py runs, its gradient check passes, its cost falls and is the stable one."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

import tinygrad_nn as tg

QUICKSTART = Path(__file__).resolve().parent.parent / "examples" / "quickstart.py"


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(QUICKSTART), *argv], capture_output=True,
                          text=True, timeout=120)


def test_quickstart_checks_gradients_and_trains() -> None:
    completed = run()
    assert completed.returncode == 0, completed.stderr
    output = completed.stdout
    error = re.search(r"largest relative error ([0-9.e+-]+)", output)
    assert error is not None and float(error.group(1)) < 1e-6, output
    costs = [float(c) for c in re.findall(r"Cost after iteration \d+: ([0-9.]+)", output)]
    assert len(costs) == 4 and costs == sorted(costs, reverse=True) and costs[-1] < 0.05, output


def test_quickstart_honours_help_and_its_options() -> None:
    completed = run("--help")
    assert completed.returncode == 0 and completed.stdout.startswith("usage: quickstart.py")
    assert "--iterations" in completed.stdout and "softplus" in completed.stdout
    completed = run("--iterations", "150", "--learning-rate", "0.2")
    assert completed.returncode == 0, completed.stderr
    assert re.findall(r"Cost after iteration (\d+)", completed.stdout) == ["0", "100", "149"]
    completed = run("--learning-rate", "-1")
    assert completed.returncode == 2 and "--learning-rate" in completed.stderr


def test_quickstart_cost_is_finite_where_the_sigmoid_saturates() -> None:
    # The log(AL) cost the README calls a trap gives inf (and NaN gradients) here.
    spec = importlib.util.spec_from_file_location("quickstart", QUICKSTART)
    assert spec is not None and spec.loader is not None
    quickstart = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(quickstart)
    params = {"W1": np.eye(4, 2) * 100.0, "b1": np.zeros((4, 1)),
              "W2": np.full((1, 4), 100.0), "b2": np.zeros((1, 1))}
    X, Y = np.ones((2, 3)), np.array([[0.0, 1.0, 0.0]])  # Z = 20000: AL rounds to 1
    value, grads = tg.value_and_grad(quickstart.cost)(params, X, Y)
    assert np.isclose(value, 2 * 20000.0 / 3)  # two wrong labels at logit 20000, mean over 3
    assert all(np.all(np.isfinite(g)) for g in grads.values())
