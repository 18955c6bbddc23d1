"""examples/per_example_dp.py: vmap's per-example gradients are the loop's, clipping bounds
each one, the noise has its scale, and the script trains on a few steps."""

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import nn


def load() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "examples" / "per_example_dp.py"
    spec = importlib.util.spec_from_file_location("per_example_dp", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dp = load()
PARAMS = nn.init_params([2, 16, 1], "he", seed=1)
X, Y = dp.disc(np.random.default_rng(1), 12)


def looped(clip: float) -> dict[str, np.ndarray]:
    """The clipped mean by a Python loop of grad over the examples."""
    total = {name: np.zeros_like(p) for name, p in PARAMS.items()}
    for i in range(X.shape[1]):
        g = tg.grad(dp.loss)(PARAMS, X[:, i], Y[:, i])
        norm = np.sqrt(sum(np.sum(v * v) for v in g.values()))
        for name in total:
            total[name] += g[name] * min(1.0, clip / norm) / X.shape[1]
    return total


@pytest.mark.parametrize("clip", [1e6, 0.3])
def test_the_clipped_mean_is_the_loops(clip: float) -> None:
    private, clipped = dp.private_gradient(PARAMS, X, Y, tg.random.key(0), clip, 0.0)
    for name, g in looped(clip).items():
        np.testing.assert_allclose(np.asarray(private[name]), g, rtol=1e-12, atol=1e-15)
    assert (float(clipped) == 0.0) == (clip == 1e6)


def test_the_noise_has_standard_deviation_sigma_c_over_m() -> None:
    noisy, _ = dp.private_gradient(PARAMS, X, Y, tg.random.key(3), 0.3, 2.0)
    noise = np.concatenate([(np.asarray(noisy[k]) - v).ravel() for k, v in looped(0.3).items()])
    assert np.std(noise) == pytest.approx(2.0 * 0.3 / 12, rel=0.2)  # 65 draws


def test_the_script_trains_privately(capsys: pytest.CaptureFixture[str]) -> None:
    assert dp.main(["--steps", "60", "--print-every", "20"]) == 0
    out = capsys.readouterr().out
    costs = [float(c) for c in re.findall(r"step +\d+: cost (\d\.\d{4}), \d+% of the examples "
                                          r"clipped", out)]
    assert len(costs) == 4 and costs[-1] < costs[0], out
    assert float(re.findall(r"Test accuracy \(2000 new points\): (\d\.\d{3})", out)[0]) > 0.7
