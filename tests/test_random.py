"""tg.random: keys, split, the draws; reproducible across processes; keys through transforms."""

import json
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import random

SAMPLES = 100_000


def test_key_is_four_uint32_words_and_depends_on_the_seed_only() -> None:
    k = random.key(0)
    assert k.dtype == np.uint32 and k.shape == (4,)
    assert np.array_equal(k, random.key(0))
    # SeedSequence's hash of the seed: numpy promises these words never change
    assert k.tolist() == [2968811710, 3677149159, 745650761, 2884920346]
    assert not np.array_equal(random.key(1), k)
    for bad in (-1, 1.5, "0", None, True):
        with pytest.raises(ValueError, match="seed must be a non-negative integer"):
            random.key(bad)  # type: ignore[arg-type]


def test_split_gives_independent_keys_in_a_fixed_order() -> None:
    k = random.key(0)
    keys = random.split(k, 3)
    assert keys.shape == (3, 4) and keys.dtype == np.uint32
    assert keys[0].tolist() == [4121494196, 1236816796, 3998920184, 504562352]  # Philox's words
    assert np.array_equal(random.split(k, 3), keys)
    assert len({tuple(row) for row in keys.tolist()} | {tuple(k.tolist())}) == 4
    first, second = random.split(k)  # unpacking a pair of keys
    assert first.shape == (4,) and not np.array_equal(first, second)
    # the streams of split keys, and of the parent, are uncorrelated
    draws = np.stack([random.normal(x, SAMPLES) for x in (k, *keys)])
    correlations = np.corrcoef(draws)[np.triu_indices(4, 1)]
    assert np.abs(correlations).max() < 0.02
    with pytest.raises(ValueError, match="num must be a positive integer"):
        random.split(k, 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_draws_have_their_shape_dtype_and_distribution(dtype: type) -> None:
    k1, k2, k3 = random.split(random.key(7), 3)
    x = random.normal(k1, (SAMPLES,), dtype)
    assert x.dtype == dtype and x.shape == (SAMPLES,)
    assert abs(x.mean()) < 0.02 and abs(x.std() - 1) < 0.02
    u = random.uniform(k2, (200, 500), dtype, minval=-2.0, maxval=3.0)
    assert u.dtype == dtype and u.shape == (200, 500)
    assert u.min() >= -2.0 and u.max() < 3.0 and abs(u.mean() - 0.5) < 0.03
    assert random.normal(k1, (), dtype).shape == ()
    assert random.normal(k1, 3, dtype).shape == (3,)
    assert np.array_equal(random.normal(k1, (SAMPLES,), dtype), x)  # same key, same numbers
    assert not np.array_equal(random.normal(k3, (SAMPLES,), dtype), x)


def test_bernoulli_and_permutation() -> None:
    k1, k2 = random.split(random.key(3))
    mask = random.bernoulli(k1, 0.8, (400, 250))
    assert mask.dtype == np.bool_ and mask.shape == (400, 250)
    assert abs(mask.mean() - 0.8) < 0.01
    rows = random.bernoulli(k1, np.array([[0.0], [1.0]]), (2, 1000))  # p broadcast per row
    assert not rows[0].any() and rows[1].all()
    assert random.bernoulli(k1, np.full(5, 0.5)).shape == (5,)
    order = random.permutation(k2, 1000)
    assert order.dtype == np.int64 and sorted(order.tolist()) == list(range(1000))
    assert not np.array_equal(order, np.arange(1000))
    assert np.array_equal(random.permutation(k2, 1000), order)
    with pytest.raises(ValueError, match=r"p of shape \(3,\) does not broadcast to shape \(2,\)"):
        random.bernoulli(k1, np.full(3, 0.5), (2,))
    with pytest.raises(ValueError, match="n must be a non-negative integer"):
        random.permutation(k2, -1)


def test_bad_keys_and_arguments_are_clear_errors() -> None:
    with pytest.raises(TypeError, match=r"key has dtype int64; expected uint32 of shape \(4,\)"):
        random.normal(np.arange(4), (2,))
    with pytest.raises(ValueError, match=r"key has shape \(3, 4\).*pick one of the split keys"):
        random.normal(random.split(random.key(0), 3), (2,))
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        random.normal(random.key(0), (2,), np.int32)
    with pytest.raises(ValueError, match="shape must be non-negative integers"):
        random.uniform(random.key(0), (2, -1))
    with pytest.raises(ValueError, match="need minval < maxval"):
        random.uniform(random.key(0), 2, minval=1.0, maxval=1.0)


DRAW_SCRIPT = """
import json, numpy as np, tinygrad_nn as tg
k1, k2 = tg.random.split(tg.random.key(2024))
print(json.dumps({"normal": tg.random.normal(k1, (5,)).tolist(),
                  "uniform32": tg.random.uniform(k2, (3,), np.float32).tolist(),
                  "permutation": tg.random.permutation(k2, 8).tolist(),
                  "split": tg.random.split(k1, 2).tolist()}))
"""


def test_the_same_key_gives_the_same_numbers_in_another_process() -> None:
    completed = subprocess.run([sys.executable, "-c", DRAW_SCRIPT], capture_output=True,
                               text=True, timeout=60, check=True)
    there = json.loads(completed.stdout)
    k1, k2 = random.split(random.key(2024))
    assert there == {"normal": random.normal(k1, (5,)).tolist(),
                     "uniform32": random.uniform(k2, (3,), np.float32).tolist(),
                     "permutation": random.permutation(k2, 8).tolist(),
                     "split": random.split(k1, 2).tolist()}


# --- keys through the transforms ----------------------------------------------------------------
def noisy_cost(w: np.ndarray, key: np.ndarray, x: np.ndarray) -> tg.Tensor:
    """A cost with a random mask drawn from the key: fixed key, fixed function."""
    mask = random.bernoulli(key, 0.5, x.shape)
    return ((w * x * mask) ** 2).sum()


def test_a_key_passes_through_grad_value_and_grad_and_check_grads() -> None:
    w, x = np.array([1.0, -2.0, 3.0, 0.5]), np.array([0.3, 1.0, -1.5, 2.0])
    key = random.key(5)
    mask = random.bernoulli(key, 0.5, x.shape)
    expected = 2 * w * (x * mask) ** 2
    assert np.array_equal(tg.grad(noisy_cost)(w, key, x), expected)
    value, gradient = tg.value_and_grad(noisy_cost)(w, key, x)
    assert value == pytest.approx(((w * x * mask) ** 2).sum()) and np.array_equal(gradient,
                                                                                   expected)
    assert tg.check_grads(noisy_cost, (w, key, x), argnums=0).max_error < 1e-8
    assert key.dtype == np.uint32  # the caller's key is left alone


def test_differentiating_a_key_is_a_clear_error() -> None:
    w, x, key = np.ones(4), np.ones(4), random.key(5)
    with pytest.raises(TypeError, match=r"key has dtype float64.*leave the key out of argnums"):
        tg.grad(noisy_cost, argnums=(0, 1))(w, key, x)
    with pytest.raises(TypeError, match="leave the key out of argnums"):
        tg.check_grads(noisy_cost, (w, key, x))


def test_a_draw_is_recorded_in_a_traced_program_with_the_key_as_its_input() -> None:
    def f(w: tg.Tensor, key: tg.Tensor) -> tg.Tensor:
        k1, k2 = random.split(key)
        return (w * random.normal(k1, (3,)) + random.uniform(k2, (3,))).sum()

    graph = tg.make_graph(f, argnums=0)(np.ones(3), random.key(0))
    listing = str(graph)
    for op in ("random_split", "random_normal", "random_uniform"):
        assert op in listing, listing
    normal_line = next(line for line in listing.splitlines() if "random_normal" in line)
    assert "f64[3]" in normal_line

    def reads_the_key(key: tg.Tensor) -> tg.Tensor:
        return tg.Tensor(np.asarray(key))  # reading a traced key in Python: refused

    with pytest.raises(tg.TracedValueError):
        tg.make_graph(reads_the_key)(random.key(0))


def test_random_is_reachable_from_the_package() -> None:
    assert tg.random is random and tg.random.key(1).shape == (4,)
