"""examples/optimizers.py and examples/digits.py run to the end on a few epochs (smoke tests),
in-process through their main(argv)."""

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def without(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    """Make ``import package`` fail, as on a machine without it."""
    for name in [name for name in sys.modules if name.split(".")[0] == package]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)


def test_optimizers_trains_each_optimizer_and_draws_the_boundaries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    argv = ["--epochs", "3", "--print-every", "1", "--points", "80", "--out", str(tmp_path)]
    assert load("optimizers").main(argv) == 0
    out = capsys.readouterr().out
    for name in ("gradient descent", "momentum", "adam"):
        assert f"--- {name}" in out
        assert re.search(rf"{name} accuracy: [01]\.\d{{4}}", out), out
    assert len(re.findall(r"Cost after epoch [012]: \d\.\d{6}", out)) == 9
    png = tmp_path / "optimizers.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"Wrote {png.resolve()}" in out


def test_optimizers_skips_the_plot_without_matplotlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    without(monkeypatch, "matplotlib")
    assert load("optimizers").main(["--epochs", "1", "--out", str(tmp_path / "plots")]) == 0
    out = capsys.readouterr().out
    assert "Plots skipped" in out and "pip install -e '.[examples]'" in out
    assert not (tmp_path / "plots").exists()


def test_digits_trains_a_ten_class_net(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sklearn", reason="scikit-learn is not installed (the examples extra)")
    assert load("digits").main(["--epochs", "3", "--print-every", "1"]) == 0
    out = capsys.readouterr().out
    assert "Data: 1500 training and 297 test pictures" in out
    costs = [float(c) for c in re.findall(r"Cost after epoch \d: (\d\.\d+)", out)]
    assert len(costs) == 3 and costs[-1] < costs[0]
    test = float(re.search(r"Test accuracy: (\d\.\d+)", out).group(1))  # type: ignore[union-attr]
    assert test > 0.8, out  # three epochs already


def test_digits_says_how_to_install_scikit_learn(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    without(monkeypatch, "sklearn")
    assert load("digits").main([]) == 0
    assert "pip install scikit-learn" in capsys.readouterr().out


@pytest.mark.parametrize(("name", "defaults"), [
    ("digits", {"--epochs": "60", "--batch-size": "64", "--learning-rate": "0.005",
                "--hidden": "64", "--keep-prob": "0.8", "--lambd": "0.05", "--test": "297",
                "--print-every": "10", "--seed": "0"}),
    ("optimizers", {"--epochs": "5000", "--batch-size": "64", "--learning-rate": "0.0007",
                    "--points": "300", "--print-every": "1000", "--seed": "3", "--out": "out"}),
])
def test_help_shows_every_default(name: str, defaults: dict[str, str],
                                  monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # one line per option: no wrap inside "(default: …)"
    with pytest.raises(SystemExit) as exit_info:
        load(name).main(["--help"])
    assert exit_info.value.code == 0
    options: dict[str, str] = {}  # an option's help, its wrapped lines joined
    for line in capsys.readouterr().out.split("options:")[1].splitlines():
        if line.startswith("  -"):
            flag = line.split()[0]
            options[flag] = line
        elif options:
            options[flag] += " " + line.strip()
    for flag, default in defaults.items():
        assert options[flag].endswith(f"(default: {default})"), options[flag]
