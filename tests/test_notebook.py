"""examples/step_by_step.ipynb: it runs end to end (nbclient), on the stand-in set and on the
course's data when found, and the committed copy holds the outputs of a full run on that data.

The runs here are short: STEP_BY_STEP_ITERATIONS sets the training loop's length (the notebook's
default is the course's 2500).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from tinygrad_nn.data import DATA_ENV_VAR

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "step_by_step.ipynb"
ITERATIONS = 30


def outputs(notebook: Any) -> tuple[str, list[dict[str, Any]]]:
    """Everything the code cells printed, and their rich (non-stream) outputs."""
    text, rich = [], []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.outputs:
            assert output.output_type != "error", f"{output.ename}: {output.evalue}"
            if output.output_type == "stream":
                text.append(output.text)
            else:
                rich.append(output.get("data", {}))
    return "".join(text), rich


def execute(monkeypatch: pytest.MonkeyPatch, **environment: str) -> tuple[str, list[Any]]:
    monkeypatch.setenv("STEP_BY_STEP_ITERATIONS", str(ITERATIONS))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    started = time.perf_counter()
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    print(f"step_by_step.ipynb ran in {time.perf_counter() - started:.1f} s")
    return outputs(notebook)


def check_the_lessons(text: str, rich: list[Any]) -> None:
    """What every run must show: the engine equals the hand formulas, the check passes, the
    stable cost stays finite, training runs with its bar, and the pictures are drawn."""
    differences = [float(d) for d in re.findall(r"largest difference (?:from the hand backprop )?"
                                                r"([0-9.e+-]+)", text)]
    assert len(differences) == 6 + 6 and max(differences) < 1e-12, text
    (error,) = re.findall(r"largest relative error ([0-9.e+-]+)", text)
    assert float(error) < 2e-7
    assert "saturated, course formula: inf" in text
    assert re.search(r"saturated, from logits: +20\.02", text)
    assert "the same numbers as nn.init_params: True" in text
    assert "the same as the course's L_model_forward: True" in text
    lines = re.findall(r"Cost after iteration (\d+)", text)
    assert lines == ["0", str(ITERATIONS - 1)]
    assert f"{ITERATIONS}/{ITERATIONS}" in text  # the finished progress bar, as text
    assert sum("image/png" in data for data in rich) == 3  # a picture, the costs, the mislabeled
    assert any("image/svg+xml" in data for data in rich) or "dot is not installed" in text


@pytest.mark.slow
def test_the_notebook_runs_on_the_stand_in_set(monkeypatch: pytest.MonkeyPatch) -> None:
    text, rich = execute(monkeypatch, STEP_BY_STEP_STAND_IN="1")
    assert "using a generated stand-in set" in text
    check_the_lessons(text, rich)


@pytest.mark.slow
def test_the_notebook_runs_on_the_course_data(
    monkeypatch: pytest.MonkeyPatch, course_data_dir: Path
) -> None:
    monkeypatch.delenv("STEP_BY_STEP_STAND_IN", raising=False)
    text, rich = execute(monkeypatch, **{DATA_ENV_VAR: str(course_data_dir)})
    assert "Data: the course's files, found in" in text
    assert "Cost after iteration 0: 0.771749" in text  # the course's first cost
    check_the_lessons(text, rich)


def test_the_committed_notebook_holds_a_full_run_on_the_course_data() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), (
        "run the notebook top to bottom before committing it")
    text, rich = outputs(notebook)
    for line in ("Data: the course's files, found in", "Cost after iteration 0: 0.771749",
                 "Cost after iteration 2400: 0.092878", "train accuracy: 0.9856",
                 "test accuracy:  0.8000"):
        assert line in text, f"{line!r}: run it on the course's data, with 2500 iterations"
    assert sum("image/png" in data for data in rich) == 1  # the cost curve
    pictures = [cell for cell in code if "imshow(" in cell.source]  # the course's pictures
    assert len(pictures) == 2 and not any(
        "image/png" in output.get("data", {}) for cell in pictures for output in cell.outputs)
    assert any("image/svg+xml" in data for data in rich)
    assert "/work/" not in NOTEBOOK.read_text() and "/home/" not in NOTEBOOK.read_text()
