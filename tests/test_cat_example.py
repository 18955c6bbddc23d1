"""Tests for examples/cat_classifier.py, run in-process through its main(argv).

Short runs only: the course's full-length figures are asserted in tests/test_nn.py, through
nn.train, once per model. Where a test must show that nothing was trained, nn.train is replaced
by one that fails.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import h5py
import numpy as np
import pytest

import tinygrad_nn.data as data_module
from tinygrad_nn import nn
from tinygrad_nn.data import DATA_ENV_VAR, CatDataset
from tinygrad_nn.nn import load_params

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cat_classifier.py"
TRAIN, TEST = "train_catvnoncat.h5", "test_catvnoncat.h5"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def example() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("cat_classifier", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as an import does (dataclasses look their module up)
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture(scope="module")
def stand_in() -> CatDataset:
    """The example's stand-in set, made once for the module (0.2 s a run), read-only so that no
    run can change what the next one sees."""
    dataset = data_module.synthetic_catvnoncat()
    for array in dataset:
        array.setflags(write=False)
    return dataset


@pytest.fixture
def no_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, example: ModuleType,
            stand_in: CatDataset) -> Path:
    """A fresh machine: no $TINYGRAD_NN_DATA, nothing in the project's data/; cwd is tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    monkeypatch.setattr(data_module, "PROJECT_DATA_DIR", tmp_path / "project" / "data")
    monkeypatch.setattr(example, "synthetic_catvnoncat", lambda: stand_in)
    return tmp_path


@pytest.fixture
def no_training(example: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """nn.train fails the test if it is called: the run must stop before training."""

    def train(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("nn.train was called: the error came after training")

    monkeypatch.setattr(nn, "train", train)  # the example's nn is tinygrad_nn.nn


def lines_of(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def first_data_line(lines: list[str]) -> str:
    return next(line for line in lines if line.startswith("Data:"))


def make_course_files(directory: Path, m_train: int = 12, m_test: int = 6) -> Path:
    """Small valid stand-ins for the course's two files, with its keys and dtypes."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, m in (("train", m_train), ("test", m_test)):
        with h5py.File(directory / f"{split}_catvnoncat.h5", "w") as h5:
            h5.create_dataset(f"{split}_set_x", data=rng.integers(0, 256, (m, 64, 64, 3),
                                                                  dtype=np.uint8))
            h5.create_dataset(f"{split}_set_y", data=np.arange(m, dtype=np.int64) % 2)
            h5.create_dataset("list_classes", data=np.array([b"non-cat", b"cat"], dtype="S7"))
    return directory


class Saved:
    """Captures the figures the example saves (matplotlib's Figure.savefig), by file name."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        from matplotlib.figure import Figure

        self.figures: dict[str, Any] = {}
        real_savefig = Figure.savefig

        def savefig(figure: Any, path: Any, *args: Any, **kwargs: Any) -> None:
            self.figures[Path(path).name] = figure
            real_savefig(figure, path, *args, **kwargs)

        monkeypatch.setattr(Figure, "savefig", savefig)

    def cost_curve(self) -> tuple[np.ndarray, np.ndarray, str]:
        axes = self.figures["cost.png"].axes[0]
        (line,) = axes.lines
        return np.asarray(line.get_xdata()), np.asarray(line.get_ydata()), axes.get_title()


# --------------------------------------------------------------------------- whole runs


def test_stand_in_data_runs_the_whole_pipeline(
    example: ModuleType, no_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    out, saved = no_data / "plots", no_data / "two.npz"
    argv = ["--model", "two-layer", "--iterations", "101", "--out", str(out), "--save", str(saved)]
    assert example.main(argv) == 0
    lines = lines_of(capsys)
    data_lines = [line for line in lines if line.startswith("Data:")]
    assert len(data_lines) == 2 and "generated stand-in" in data_lines[1]
    costs = [line for line in lines if line.startswith("Cost after iteration")]
    assert [line.split(":")[0][len("Cost after iteration "):] for line in costs] == [
        "0", "100"]
    assert any(line.startswith("Trained 101 iterations in ") for line in lines)
    assert any(line.startswith("Train accuracy (stand-in data): ") for line in lines)
    assert any(line.startswith("Test accuracy (stand-in data): ") for line in lines)
    assert lines[0].startswith("BLAS: ")
    assert lines[-1].startswith("Time: training ") and lines[-1].endswith(" s")
    for name in ("cost.png", "mislabeled.png"):
        assert (out / name).read_bytes()[:8] == PNG
        assert any(line.startswith(f"Wrote {out / name} (") for line in lines)
    assert f"Saved the parameters to {saved}" in lines
    params = load_params(saved, [12288, 7, 1], np.float64)
    assert params["W1"].shape == (7, 12288)


def test_the_readme_pair_float32_save_then_load_and_predict(
    example: ModuleType, no_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `--dtype float32 --save out/params.npz`, then `--load out/params.npz --predict my_cat.jpg`:
    # the saved file knows its dtype (this failed with "has dtype float32; expected float64").
    image_module = pytest.importorskip("PIL.Image")
    argv = ["--model", "two-layer", "--iterations", "1", "--no-plots"]
    assert example.main([*argv, "--dtype", "float32", "--save", "out/params.npz"]) == 0
    picture = no_data / "my_cat.jpg"
    pixels = np.random.default_rng(0).integers(0, 256, size=(90, 120, 3), dtype=np.uint8)
    image_module.fromarray(pixels).save(picture)  # not 64×64
    capsys.readouterr()
    assert example.main(["--load", "out/params.npz", "--predict", "my_cat.jpg"]) == 0
    out = "\n".join(lines_of(capsys))
    assert "Cost after iteration" not in out  # loaded, not trained
    assert "Loaded out/params.npz: two-layer net [12288, 7, 1], float32 (no training)" in out
    assert 'my_cat.jpg: y = ' in out and ('"cat" picture' in out or '"non-cat" picture' in out)
    # No data here: the accuracies are the stand-in's, not the course's, and say so.
    for split in ("Train", "Test"):
        assert f"\n{split} accuracy (stand-in data): " in out
    assert "my_cat.jpg: resized from 120×90 to 64×64, as the training pictures" in out
    assert out.endswith("(no training: parameters loaded)")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_export_writes_an_onnx_model_that_labels_as_the_engine(
    example: ModuleType, no_data: Path, capsys: pytest.CaptureFixture[str], dtype: str
) -> None:
    ort = pytest.importorskip("onnxruntime")
    argv = ["--model", "two-layer", "--iterations", "5", "--no-plots", "--dtype", dtype]
    assert example.main([*argv, "--export", "out/cat.onnx"]) == 0
    assert "ONNX Runtime labels 50 of 50 test pictures as the engine does" in "\n".join(
        lines_of(capsys))
    session = ort.InferenceSession("out/cat.onnx")
    X = np.random.default_rng(0).random((12288, 3)).astype(dtype)  # a batch of another size
    assert session.run(None, {"X": X})[0].shape == (1, 3)


def test_export_is_checked_before_training(
    example: ModuleType, no_data: Path, no_training: None, capsys: pytest.CaptureFixture[str]
) -> None:
    (no_data / "out.onnx").mkdir()
    assert example.main(["--export", "out.onnx"]) == 2
    assert "--export: out.onnx is a directory" in capsys.readouterr().err
    assert example.main(["--export", "out/cat.txt"]) == 2
    assert "--export: out/cat.txt does not end in .onnx" in capsys.readouterr().err


def test_an_rgba_picture_of_any_size_is_classified(
    example: ModuleType, no_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image_module = pytest.importorskip("PIL.Image")
    picture = no_data / "mine.png"
    pixels = np.random.default_rng(1).integers(0, 256, size=(30, 200, 4), dtype=np.uint8)
    image_module.fromarray(pixels).save(picture)
    argv = ["--model", "two-layer", "--iterations", "0", "--no-plots", "--predict", str(picture)]
    assert example.main(argv) == 0
    lines = lines_of(capsys)
    assert any(line.startswith(f"{picture}: y = ") for line in lines)
    assert (f"{picture}: converted from RGBA to RGB and resized from 200×30 to 64×64, as the "
            "training pictures") in lines
    assert not (no_data / "out").exists()  # --no-plots: nothing in the default out/


def test_plots_are_skipped_without_matplotlib(
    example: ModuleType, no_data: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in [name for name in sys.modules if name.split(".")[0] == "matplotlib"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert example.main(["--iterations", "1", "--out", str(no_data / "plots")]) == 0
    lines = lines_of(capsys)
    assert "Plots skipped" in lines[0] and "pip install -e '.[examples]'" in lines[0]  # at once
    assert not (no_data / "plots").exists()


# --------------------------------------------------------------------------- checked first


def test_predict_of_a_missing_picture_fails_before_training(
    example: ModuleType, no_data: Path, no_training: None, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.perf_counter()
    assert example.main(["--predict", "typo.jpg"]) == 2
    assert time.perf_counter() - started < 5
    captured = capsys.readouterr()
    assert "--predict: typo.jpg not found" in captured.err
    assert "Data:" not in captured.out  # not even the data was loaded


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["--predict", "notes.txt"], ["--predict", "cannot read notes.txt as a picture"]),
        (["--predict", "folder"], ["--predict", "folder is a directory"]),
        (["--load", "missing.npz"], ["--load", "missing.npz", "not found"]),
        (["--load", "notes.txt"], ["--load", "notes.txt is not an .npz file"]),
        (["--save", "notes.txt/params.npz"], ["--save", "notes.txt is a file"]),
        (["--save", "folder"], ["--save", "folder.npz"]),  # .npz is added, as save_params does
        (["--save", "folder.npz"], ["--save", "folder.npz is a directory"]),
        (["--out", "notes.txt"], ["--out", "notes.txt is a file, not a directory"]),
        (["--out", "notes.txt/deeper/x"], ["--out", "notes.txt is a file, not a directory, so "
                                           "notes.txt/deeper/x cannot be made"]),
        (["--out", "cost_dir"], ["--out", "cost.png is a directory"]),
        (["--data", "nowhere"], ["--data", "nowhere", "does not exist"]),
        (["--data", "folder"], ["--data", TRAIN, "not found"]),
    ],
)
def test_every_path_is_checked_before_training(
    example: ModuleType, no_data: Path, no_training: None, capsys: pytest.CaptureFixture[str],
    argv: list[str], fragments: list[str],
) -> None:
    pytest.importorskip("PIL")
    (no_data / "notes.txt").write_text("not a picture, not an .npz")
    (no_data / "folder.npz").mkdir()
    (no_data / "folder").mkdir()
    (no_data / "cost_dir" / "cost.png").mkdir(parents=True)
    assert example.main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and all(fragment in error for fragment in fragments), error


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--iterations", "-1"], "--iterations must be >= 0"),
        (["--learning-rate", "0"], "--learning-rate must be a finite number > 0"),
        (["--learning-rate", "nan"], "--learning-rate must be a finite number > 0"),
        (["--seed", "-1"], "--seed must be between 0 and 2**32 - 1"),
        (["--load", "p.npz", "--iterations", "10"], "--load uses saved parameters"),
        (["--load", "p.npz", "--learning-rate", "0.1", "--seed", "3"],
         "drop --learning-rate and --seed"),
    ],
)
def test_flags_that_cannot_work_are_refused_at_once(
    example: ModuleType, no_data: Path, no_training: None, capsys: pytest.CaptureFixture[str],
    argv: list[str], fragment: str,
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        example.main(argv)
    assert exit_info.value.code == 2 and fragment in capsys.readouterr().err


def test_a_loaded_file_must_agree_with_model_and_dtype(
    example: ModuleType, no_data: Path, no_training: None, capsys: pytest.CaptureFixture[str]
) -> None:
    nn.save_params("p32.npz", nn.init_params([12288, 7, 1], "small", dtype=np.float32))
    nn.save_params("tiny.npz", nn.init_params([5, 3, 1]))
    for argv, fragment in [
        (["--load", "p32.npz", "--dtype", "float64"], "holds float32 parameters, --dtype asks "
         "for float64: drop --dtype"),
        (["--load", "p32.npz", "--model", "deep"], "holds a two-layer net [12288, 7, 1], "
         "--model deep is [12288, 20, 7, 5, 1]: drop --model"),
        (["--load", "tiny.npz"], "holds a network [5, 3, 1]; this example needs 12288 inputs"),
    ]:
        assert example.main(argv) == 2
        assert fragment in capsys.readouterr().err


def probe_fails(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Creating a file in ``directory`` fails as on a read-only mount (root's rights included)."""
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args: Any, dir: Any = None, **kwargs: Any) -> Any:
        if dir is not None and Path(dir).resolve() == directory.resolve():
            raise OSError(30, "Read-only file system", str(Path(dir) / ".tmp-a1b2c3"))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def test_an_unwritable_save_directory_is_found_before_training(
    example: ModuleType, no_data: Path, no_training: None, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (no_data / "locked").mkdir()
    probe_fails(no_data / "locked", monkeypatch)
    assert example.main(["--save", "locked/params.npz"]) == 2
    error = capsys.readouterr().err
    assert error == "error: --save: cannot write in locked (Read-only file system)\n"
    assert list((no_data / "locked").iterdir()) == []  # the probe left nothing behind
    assert example.check_save_target("new/deeper/params") == Path("new/deeper/params.npz")
    assert list((no_data / "new" / "deeper").iterdir()) == []  # made, as saving would, and empty


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="needs a POSIX user whom directory permissions bind (not root)")
def test_a_read_only_save_directory_is_found_before_training(
    example: ModuleType, no_data: Path, no_training: None, capsys: pytest.CaptureFixture[str]
) -> None:
    locked = no_data / "locked"
    locked.mkdir(mode=0o500)
    try:
        assert example.main(["--save", "locked/params.npz"]) == 2
    finally:
        locked.chmod(0o700)
    assert "--save: cannot write in locked" in capsys.readouterr().err


@pytest.mark.parametrize("failing", [["target"], ["target", "cwd"]])
def test_a_save_that_fails_after_training_keeps_the_parameters_elsewhere(
    example: ModuleType, no_data: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], failing: list[str],
) -> None:
    target_dir = no_data / "target"
    real_save = nn.save_params
    directories = {"target": target_dir, "cwd": no_data}

    def save_params(path: Any, params: Any) -> Path:  # the disk filled up during training
        if any(Path(path).parent.resolve() == directories[name].resolve() for name in failing):
            raise OSError(28, "No space left on device", str(Path(path).parent / ".p.npz.x1y2"))
        return real_save(path, params)

    monkeypatch.setattr(nn, "save_params", save_params)
    argv = ["--model", "two-layer", "--iterations", "1", "--no-plots", "--save",
            "target/params.npz"]
    assert example.main(argv) == 1
    captured = capsys.readouterr()
    rescued = no_data / ("out" if "cwd" in failing else "") / "params.npz"
    assert (f"error: --save: could not write {Path('target/params.npz')} (No space left on "
            f"device); the trained parameters are saved in {rescued} instead") in captured.err
    assert ".x1y2" not in captured.err  # never the name of a temporary file
    assert load_params(rescued, [12288, 7, 1])["W1"].dtype == np.float64
    assert captured.out.splitlines()[-1].startswith("Time: training ")


def test_a_rescue_never_overwrites_a_file(example: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "params.npz").write_bytes(b"old")
    (tmp_path / "params-1.npz").write_bytes(b"old")
    assert example.unused_path(tmp_path / "params.npz") == tmp_path / "params-2.npz"
    assert example.unused_path(tmp_path / "other.npz") == tmp_path / "other.npz"


# --------------------------------------------------------------------------- what a run says


def test_the_run_names_the_blas_and_its_threads_first(
    example: ModuleType, no_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    assert example.main(["--iterations", "0", "--no-plots"]) == 0
    first = lines_of(capsys)[0]
    pools = [pool for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]
    assert first.startswith(f"BLAS: {pools[0]['internal_api']} ")
    assert first.endswith(f" {pools[-1]['num_threads']} thread" if pools[-1]["num_threads"] == 1
                          else f" {pools[-1]['num_threads']} threads")


def test_without_threadpoolctl_the_blas_comes_from_numpys_build(
    example: ModuleType, no_data: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import threadpoolctl -> ImportError
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert example.main(["--iterations", "0", "--no-plots"]) == 0
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]  # type: ignore[index]
    first = lines_of(capsys)[0]
    assert first == (f"BLAS: {blas['name']} {blas['version']} (numpy's build), "
                     "OPENBLAS_NUM_THREADS=1")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    assert "threads unknown (pip install threadpoolctl" in example.blas_line()


@pytest.mark.parametrize(("size", "mode", "said"), [
    ((64, 64), "RGB", ""),
    ((64, 64), "L", "converted from L to RGB"),
    ((120, 90), "RGB", "resized from 120×90 to 64×64"),
    ((30, 200), "P", "converted from P to RGB and resized from 30×200 to 64×64"),
])
def test_predict_says_how_the_picture_was_made_64_by_64_rgb(
    example: ModuleType, no_data: Path, size: tuple[int, int], mode: str, said: str
) -> None:
    image_module = pytest.importorskip("PIL.Image")
    image_module.new(mode, size).save(no_data / "picture.png")
    picture = example.read_picture(str(no_data / "picture.png"))
    assert picture.pixels.shape == (64, 64, 3) and picture.pixels.dtype == np.uint8
    assert picture.changes == said


# --------------------------------------------------------------------------- the data


def test_the_stand_in_fallback_names_the_missing_file_where(
    example: ModuleType, no_data: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = make_course_files(no_data / "env")
    (env / TRAIN).unlink()  # one file missing
    monkeypatch.setenv(DATA_ENV_VAR, str(env))
    assert example.main(["--iterations", "0", "--no-plots"]) == 0
    first = first_data_line(lines_of(capsys))
    assert first.startswith("Data: the course's files were not found: ")
    assert f"${DATA_ENV_VAR} ({env}) lacks {TRAIN};" in first
    assert f"the project's data/ ({no_data / 'project' / 'data'}) lacks {TRAIN} and {TEST}" in first


def test_the_projects_data_is_found_from_any_directory(
    example: ModuleType, no_data: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project_data = make_course_files(no_data / "project" / "data")
    elsewhere = no_data / "examples"  # as `cd examples && python cat_classifier.py`
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert example.main(["--iterations", "0", "--no-plots"]) == 0
    assert first_data_line(lines_of(capsys)) == f"Data: {project_data} (12 train, 6 test pictures)"
    env = make_course_files(no_data / "env", 8, 4)  # $TINYGRAD_NN_DATA comes first
    monkeypatch.setenv(DATA_ENV_VAR, str(env))
    assert example.main(["--iterations", "0", "--no-plots"]) == 0
    assert first_data_line(lines_of(capsys)) == f"Data: {env} (8 train, 4 test pictures)"


# --------------------------------------------------------------------------- plots


@pytest.mark.slow
@pytest.mark.parametrize(("model", "iterations"), [("two-layer", 1), ("deep", 10)])
def test_a_short_run_plots_the_cost_of_every_iteration_and_names_its_data(
    example: ModuleType, no_data: Path, monkeypatch: pytest.MonkeyPatch, model: str,
    iterations: int,
) -> None:
    pytest.importorskip("matplotlib")
    saved = Saved(monkeypatch)
    assert example.main(["--model", model, "--iterations", str(iterations)]) == 0
    x, y, title = saved.cost_curve()
    assert np.array_equal(x, np.arange(iterations)) and np.all(np.isfinite(y))
    assert "stand-in" in title and model in title
    assert "stand-in" in saved.figures["mislabeled.png"].get_suptitle()


def test_plots_of_the_course_data_say_so(
    example: ModuleType, no_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    make_course_files(no_data / "project" / "data")
    saved = Saved(monkeypatch)
    assert example.main(["--model", "two-layer", "--iterations", "3"]) == 0
    assert "the course's cat pictures" in saved.cost_curve()[2]
    assert "stand-in" not in saved.cost_curve()[2]
    assert "the course's cat pictures" in saved.figures["mislabeled.png"].get_suptitle()


@pytest.mark.slow
def test_load_writes_no_cost_plot_says_so_and_removes_the_old_one(
    example: ModuleType, no_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    assert example.main(["--model", "two-layer", "--iterations", "2", "--save", "p.npz"]) == 0
    assert (no_data / "out" / "cost.png").is_file()
    capsys.readouterr()
    assert example.main(["--load", "p.npz"]) == 0
    lines = lines_of(capsys)
    assert ("No cost.png this run (parameters loaded from p.npz, not trained): removed the old "
            f"{Path('out') / 'cost.png'}") in lines
    assert not (no_data / "out" / "cost.png").exists()
    assert (no_data / "out" / "mislabeled.png").is_file()
    assert example.main(["--load", "p.npz"]) == 0  # nothing to remove: still says why
    assert "No cost.png this run (parameters loaded from p.npz, not trained)" in lines_of(capsys)


def test_no_mislabeled_picture_removes_an_old_grid(
    example: ModuleType, no_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    stale = no_data / "mislabeled.png"
    stale.write_bytes(PNG)
    dataset = data_module.synthetic_catvnoncat()
    example.write_mislabeled_plot(stale, dataset, dataset.test_y, "a set")
    assert not stale.exists()
    assert f"No mislabeled.png this run (no test picture is mislabeled): removed the old {stale}" \
        in lines_of(capsys)


# --------------------------------------------------------------------------- Ctrl-C


def interrupted_train(stop_after: int, raises: bool) -> Callable[..., Any]:
    """An nn.train that Ctrl-C stops after ``stop_after`` steps: it returns what it reached (the
    contract of nn.train), or lets the KeyboardInterrupt through (``raises``)."""
    real_train = nn.train

    def train(params: Any, X: Any, Y: Any, learning_rate: float, num_iterations: int,
              **kwargs: Any) -> Any:
        callback = kwargs.pop("callback", None)

        def step(i: int, cost: float, new: Any) -> bool | None:
            if callback is not None:
                callback(i, cost, new)
            if raises and i + 1 == stop_after:
                raise KeyboardInterrupt
            return i + 1 == stop_after

        return real_train(params, X, Y, learning_rate, num_iterations, callback=step, **kwargs)

    return train


@pytest.mark.slow
@pytest.mark.parametrize("raises", [False, True], ids=["train returns", "interrupt comes through"])
def test_an_interrupted_run_still_evaluates_saves_and_plots_what_it_reached(
    example: ModuleType, no_data: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], raises: bool,
) -> None:
    pytest.importorskip("matplotlib")
    real_train = nn.train
    monkeypatch.setattr(nn, "train", interrupted_train(3, raises))
    saved = Saved(monkeypatch)
    argv = ["--model", "two-layer", "--iterations", "50", "--save", "p.npz"]
    assert example.main(argv) == 130
    lines = lines_of(capsys)
    assert any(line.startswith("Interrupted (Ctrl-C) after 3 of 50 iterations") for line in lines)
    assert any(line.startswith("Test accuracy (stand-in data): ") for line in lines)
    assert "Saved the parameters to p.npz" in lines
    kept = load_params("p.npz")
    expected = real_train(nn.init_params([12288, 7, 1], "small"),
                        data_module.flatten_images(data_module.synthetic_catvnoncat()[0]),
                        data_module.synthetic_catvnoncat()[1], 0.0075, 3)[0]
    assert all(np.array_equal(kept[key], expected[key]) for key in expected)  # 3 steps' params
    x, _, title = saved.cost_curve()
    assert np.array_equal(x, [0, 1, 2]) and "interrupted at 3 of 50" in title


def test_ctrl_c_in_a_real_run_keeps_what_was_reached(no_data: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg",
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}  # two would fight for 2 cores
    env.pop(DATA_ENV_VAR, None)
    argv = [sys.executable, str(EXAMPLE), "--synthetic", "--model", "two-layer",
            "--iterations", "1000000", "--no-plots", "--save", "kept.npz"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env, cwd=no_data) as process:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:
            seen.append(line)
            if line.startswith("Cost after iteration 0:"):
                process.send_signal(signal.SIGINT)
                break
        out, err = process.communicate(timeout=120)
    text = "".join(seen) + out
    assert process.returncode == 130, text + err
    assert "Interrupted (Ctrl-C) after " in text and "of 1000000 iterations" in text
    assert "Saved the parameters to kept.npz" in text
    assert load_params(no_data / "kept.npz", [12288, 7, 1])["W1"].dtype == np.float64


# --------------------------------------------------------------------------- the real data


@pytest.mark.parametrize("model, first_cost", [("deep", "0.771749"), ("two-layer", "0.693050")])
def test_real_data_starts_at_the_course_cost(
    example: ModuleType, capsys: pytest.CaptureFixture[str], course_data_dir: Path, model: str,
    first_cost: str,
) -> None:
    argv = ["--data", str(course_data_dir), "--model", model, "--iterations", "1", "--no-plots"]
    assert example.main(argv) == 0
    out = capsys.readouterr().out
    assert f"Data: {course_data_dir} (209 train, 50 test pictures)" in out
    (cost_line,) = [line for line in out.splitlines() if line.startswith("Cost after iteration 0")]
    assert f"{float(cost_line.split(': ')[1]):.6f}" == first_cost
