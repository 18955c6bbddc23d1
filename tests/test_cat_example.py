"""Tests for examples/cat_classifier.py, run in-process through its main(argv).

Short runs only: the course's full-length figures are asserted in tests/test_nn.py, through
nn.train, once per model.
"""

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tinygrad_nn.data import DATA_ENV_VAR
from tinygrad_nn.nn import load_params

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cat_classifier.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cat_classifier", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def no_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh machine: no ./data, no $TINYGRAD_NN_DATA."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    return tmp_path


def test_stand_in_data_runs_the_whole_pipeline(
    example: ModuleType, no_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    out, saved = no_data / "plots", no_data / "deep.npz"
    assert example.main(["--iterations", "101", "--out", str(out), "--save", str(saved)]) == 0
    lines = capsys.readouterr().out.splitlines()
    data_lines = [line for line in lines if line.startswith("Data:")]
    assert len(data_lines) == 1 and "generated stand-in" in data_lines[0]
    costs = [line for line in lines if line.startswith("Cost after iteration")]
    assert [line.split(":")[0][len("Cost after iteration "):] for line in costs] == ["0", "100"]
    assert any(line.startswith("Train accuracy: ") for line in lines)
    assert any(line.startswith("Test accuracy: ") for line in lines)
    for name in ("cost.png", "mislabeled.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"Wrote {out / name}" in lines
    params = load_params(saved, [12288, 20, 7, 5, 1], np.float64)
    assert params["W1"].shape == (20, 12288)


def test_load_and_predict_a_picture_of_ones_own(
    example: ModuleType, no_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image_module = pytest.importorskip("PIL.Image")
    saved = no_data / "two.npz"
    argv = ["--model", "two-layer", "--iterations", "1", "--no-plots", "--dtype", "float32"]
    assert example.main([*argv, "--save", str(saved)]) == 0
    picture = no_data / "mine.png"
    pixels = np.random.default_rng(0).integers(0, 256, size=(90, 120, 4), dtype=np.uint8)
    image_module.fromarray(pixels).save(picture)  # not 64×64, and RGBA
    capsys.readouterr()
    assert example.main([*argv, "--load", str(saved), "--predict", str(picture)]) == 0
    out = capsys.readouterr().out
    assert "Cost after iteration" not in out  # loaded, not trained
    assert not (no_data / "out").exists()  # --no-plots: nothing in the default out/
    assert f"{picture}: y = " in out and ('"cat" picture' in out or '"non-cat" picture' in out)


def test_plots_are_skipped_without_matplotlib(
    example: ModuleType, no_data: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in [name for name in sys.modules if name.split(".")[0] == "matplotlib"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert example.main(["--iterations", "1", "--out", str(no_data / "plots")]) == 0
    out = capsys.readouterr().out
    assert "Plots skipped" in out and "pip install -e '.[examples]'" in out
    assert not (no_data / "plots").exists()


def test_a_missing_data_dir_is_an_error_not_a_silent_stand_in(
    example: ModuleType, no_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert example.main(["--data", str(no_data / "nowhere"), "--iterations", "1"]) == 2
    captured = capsys.readouterr()
    assert "nowhere" in captured.err and "stand-in" not in captured.out


@pytest.mark.parametrize("model, first_cost", [("deep", "0.771749"), ("two-layer", "0.693050")])
def test_real_data_starts_at_the_course_cost(
    example: ModuleType, capsys: pytest.CaptureFixture[str], model: str, first_cost: str,
) -> None:
    data_dir = os.environ.get(DATA_ENV_VAR)
    if not data_dir:
        pytest.skip(f"{DATA_ENV_VAR} is unset; point it at the course's cat data")
    argv = ["--data", data_dir, "--model", model, "--iterations", "1", "--no-plots"]
    assert example.main(argv) == 0
    out = capsys.readouterr().out
    assert f"Data: {data_dir} (209 train, 50 test pictures)" in out
    (cost_line,) = [line for line in out.splitlines() if line.startswith("Cost after iteration 0")]
    assert f"{float(cost_line.split(': ')[1]):.6f}" == first_cost
