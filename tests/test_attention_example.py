"""examples/attention.py runs as a script on a few steps: it trains, lists its program, checks
its gradients and (with onnxruntime) its ONNX model; its flags show their defaults."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "attention.py"


def run(*argv: str) -> str:
    done = subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_it_learns_to_reverse_lists_its_program_and_checks_its_gradients() -> None:
    out = run("--steps", "40", "--digits", "4", "--print-every", "10")
    costs = [float(c) for c in re.findall(r"step +\d+: cost (\d+\.\d{4}), token accuracy", out)]
    assert len(costs) == 5 and costs[-1] < costs[0] / 5, out  # steps 0, 10, 20, 30, 39
    assert re.search(r"Trained 40 steps of 128 sequences in \d+\.\d s", out), out
    test = re.search(r"Test \(1000 new sequences\): token accuracy (\d\.\d{3}), sequence "
                     r"accuracy (\d\.\d{3})", out)
    assert test and float(test.group(1)) >= 0.95, out
    assert re.search(r"The program: \d+ equations; forward ops add \d+, .*einsum \d+", out), out
    error = re.search(r"Gradient check \(float64, 17 arrays\): max relative error (\S+)", out)
    assert error and float(error.group(1)) < 1e-6, out
    if importlib.util.find_spec("onnxruntime") is None:
        assert "ONNX export skipped" in out
    else:
        close = re.search(r"ONNX Runtime: \d+ nodes, logits \(11, 8, 16\) within (\S+) of", out)
        assert close and float(close.group(1)) < 1e-4, out


def test_no_export_skips_the_export() -> None:
    out = run("--steps", "2", "--digits", "2", "--no-export")
    assert "ONNX" not in out and "Gradient check" in out


def test_help_shows_the_defaults() -> None:
    out = run("--help")
    for flag, default in [("--steps", "200"), ("--digits", "8"), ("--batch-size", "128"),
                          ("--width", "32"), ("--heads", "2"), ("--learning-rate", "0.01"),
                          ("--print-every", "50"), ("--seed", "0")]:
        assert re.search(rf"{flag} \S+\s+[^\n]*\(default: {default}\)", out), (flag, out)
    assert "--no-export" in out


@pytest.mark.slow
def test_the_default_run_gets_every_digit_right() -> None:
    out = run("--no-export")
    assert "token accuracy 1.000, sequence accuracy" in out, out
