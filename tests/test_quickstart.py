"""examples/quickstart.py runs, its gradient check passes and its cost falls."""

import re
import subprocess
import sys
from pathlib import Path

QUICKSTART = Path(__file__).resolve().parent.parent / "examples" / "quickstart.py"


def test_quickstart_checks_gradients_and_trains() -> None:
    completed = subprocess.run(
        [sys.executable, str(QUICKSTART)], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    output = completed.stdout
    error = re.search(r"largest relative error ([0-9.e+-]+)", output)
    assert error is not None and float(error.group(1)) < 1e-6, output
    costs = [float(c) for c in re.findall(r"Cost after iteration \d+: ([0-9.]+)", output)]
    assert len(costs) == 4 and costs == sorted(costs, reverse=True) and costs[-1] < 0.05, output
