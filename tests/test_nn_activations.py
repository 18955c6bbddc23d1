"""tg.nn's activations and masked softmax as jax.nn's (issue 19), and the ``erf`` primitive.

``op_cases.NN_ACTIVATIONS`` already runs each activation through the shared tests (values
against a numpy formula, first and second order gradients against central differences on
hypothesis-drawn shapes, a ``jit`` replay, ``vmap``, ONNX Runtime). Here: the values at chosen
points, the gradients at the kinks, ±1000 (finite, no warning), jax.nn itself where jax is
installed, and ``where=`` masks, rows with no True entry included.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_export import run
from test_ops_gradients import assert_gradients

import tinygrad_nn as tg
from tinygrad_nn import nn

ACTIVATIONS: dict[str, Callable[..., Any]] = {
    "gelu": nn.gelu, "gelu_exact": lambda x: nn.gelu(x, approximate=False), "elu": nn.elu,
    "selu": nn.selu, "leaky_relu": nn.leaky_relu, "relu6": nn.relu6, "silu": nn.silu,
    "swish": nn.swish, "mish": nn.mish, "hard_tanh": nn.hard_tanh,
}


@contextmanager
def no_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def derivative(f: Callable[..., Any], x: np.ndarray) -> np.ndarray:
    """f'(x) elementwise, by the engine."""
    return tg.grad(lambda t: f(t).sum())(x)


# --- values at chosen points ---------------------------------------------------------------------
def test_the_activations_at_chosen_points() -> None:
    x = np.array([-2.0, -0.5, 0.0, 0.5, 1.0, 7.0])
    phi = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x])  # the normal CDF
    np.testing.assert_allclose(nn.gelu(x, approximate=False).numpy(), x * phi, rtol=1e-15)
    assert abs(nn.gelu(1.0).item() - 0.8411919906082768) < 1e-15  # jax.nn.gelu(1.0) in float64
    np.testing.assert_allclose(nn.elu(x).numpy(), [math.expm1(-2), math.expm1(-0.5), 0, .5, 1, 7])
    np.testing.assert_allclose(nn.leaky_relu(x).numpy(), [-0.02, -0.005, 0, 0.5, 1, 7])
    np.testing.assert_array_equal(nn.relu6(x).numpy(), [0, 0, 0, 0.5, 1, 6])
    np.testing.assert_array_equal(nn.hard_tanh(x).numpy(), [-1, -0.5, 0, 0.5, 1, 1])
    np.testing.assert_allclose(nn.silu(x).numpy(), x / (1 + np.exp(-x)))
    np.testing.assert_allclose(nn.mish(x).numpy(), x * np.tanh(np.log1p(np.exp(x))))
    # selu: its fixed point (mean 0, variance 1) needs these constants
    assert nn.selu(1.0).item() == pytest.approx(1.0507009873554805)
    assert nn.selu(-1.0).item() == pytest.approx(1.0507009873554805 * 1.6732632423543772
                                                 * math.expm1(-1.0))
    assert nn.swish is nn.silu and nn.ACTIVATIONS["gelu"] is nn.gelu


def test_the_gradients_at_the_kinks_are_jaxs() -> None:
    """jax.nn's choices where the derivative jumps: 0 for relu6 at 0 and 6, 1 for leaky_relu
    at 0, alpha for elu at 0, 1 for hard_tanh at ±1."""
    assert derivative(nn.relu6, np.array([0.0, 6.0])).tolist() == [0.0, 0.0]
    assert derivative(nn.leaky_relu, np.array([0.0])).tolist() == [1.0]
    assert derivative(lambda t: nn.elu(t, 0.5), np.array([0.0])).tolist() == [0.5]
    assert derivative(nn.hard_tanh, np.array([-1.0, 1.0, 1.5])).tolist() == [1.0, 1.0, 0.0]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_finite_values_and_gradients_at_1000_without_warnings(name: str, dtype: Any) -> None:
    f, x = ACTIVATIONS[name], np.array([-1000.0, -100.0, 100.0, 1000.0], dtype)
    with no_warnings():
        value, first = f(x).numpy(), derivative(f, x)
        second = tg.grad(lambda t: tg.grad(lambda s: f(s).sum())(t).sum())(x)
    assert value.dtype == first.dtype == dtype
    assert np.isfinite(value).all() and np.isfinite(first).all() and np.isfinite(second).all()
    if name not in ("elu", "selu", "leaky_relu", "hard_tanh"):  # these keep a slope or a floor
        assert abs(value[0]) < 1e-30
    top = {"relu6": 6.0, "hard_tanh": 1.0, "selu": 1050.7009873554805}.get(name, 1000.0)
    assert value[-1] == pytest.approx(top)


# --- erf --------------------------------------------------------------------------------------
def test_erf_is_math_erf_with_its_derivative() -> None:
    x = np.linspace(-6.0, 6.0, 97)
    assert tg.erf(x).numpy().tolist() == [math.erf(v) for v in x]
    assert tg.erf(x.astype(np.float32)).dtype == np.float32
    assert tg.erf(np.array([1, 2])).dtype == np.float64  # integers: a float, as numpy's ufuncs
    np.testing.assert_allclose(derivative(tg.erf, x), 2 / math.sqrt(math.pi) * np.exp(-x * x),
                               rtol=1e-15)
    assert_gradients(tg.erf, [np.array([-2.0, -0.3, 0.1, 1.7])], seed=0)
    with no_warnings():
        assert derivative(tg.erf, np.array([-1e3, 1e3])).tolist() == [0.0, 0.0]


# --- where= masks -------------------------------------------------------------------------------
MASKED: dict[str, Callable[..., Any]] = {
    "softmax": nn.softmax, "log_softmax": nn.log_softmax, "logsumexp": tg.logsumexp}


def finite_part(name: str, x: Any, mask: Any, axis: int) -> tg.Tensor:
    """The masked op, with -inf (masked-out entries, rows of none) replaced by 0."""
    out = MASKED[name](x, axis=axis, where=mask)
    if name == "log_softmax":
        return tg.where(mask, out, 0.0)
    if name == "logsumexp":
        return tg.where(tg.astype(mask, float).sum(axis) > 0, out, 0.0)
    return out


X = np.array([[1.0, 2.0, 3.0, -1.0], [4.0, 5.0, 6.0, 0.5], [0.2, -0.3, 700.0, -800.0]])
MASK = np.array([[True, False, True, True], [False, False, False, False],
                 [True, True, True, False]])


@pytest.mark.parametrize("name", MASKED)
def test_masked_out_entries_count_for_nothing(name: str) -> None:
    rows = MASKED[name](X, axis=1, where=MASK).numpy()
    for row, x, mask in zip(rows, X, MASK):
        expected = MASKED[name](x[mask], axis=0).numpy() if mask.any() else None
        if name == "logsumexp":
            assert row == (expected if mask.any() else -np.inf)
        elif name == "softmax":
            assert (row[~mask] == 0).all() and np.allclose(row[mask], expected if mask.any()
                                                           else [])
        else:
            assert (row[~mask] == -np.inf).all() and np.allclose(row[mask], expected if
                                                                 mask.any() else [])


@pytest.mark.parametrize("name", MASKED)
def test_masked_gradients_are_finite_and_zero_where_masked(name: str) -> None:
    weights = np.random.default_rng(0).normal(size=X.shape)
    with no_warnings():
        grad = tg.grad(lambda t: (finite_part(name, t, MASK, 1) * weights[:, :1]).sum())(X)
        second = tg.grad(lambda t: (tg.grad(lambda s: (finite_part(name, s, MASK, 1) ** 2)
                                            .sum())(t) * weights).sum())(X)
    assert np.isfinite(grad).all() and np.isfinite(second).all()
    assert (grad[~MASK] == 0).all() and (second[~MASK] == 0).all()


@settings(max_examples=15, deadline=None)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
       name=st.sampled_from(sorted(MASKED)), data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_masked_gradients_match_central_differences(shape: tuple[int, ...], name: str,
                                                    data: st.DataObject, seed: int) -> None:
    rng = np.random.default_rng(seed)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    mask = rng.random(shape) < 0.6  # a row of no True entry now and then
    assert_gradients(lambda t: finite_part(name, t, mask, axis), [rng.normal(size=shape)], seed)


@pytest.mark.parametrize("name", MASKED)
def test_a_masked_float32_stays_float32_and_exports_for_any_batch(name: str) -> None:
    out = MASKED[name](X.astype(np.float32), axis=1, where=MASK)
    assert out.dtype == np.float32
    pytest.importorskip("onnxruntime")
    model = tg.export_onnx(lambda x: finite_part(name, x, MASK.T[:, :1], 0), X.T[:, :2])
    got = run(model, x0=X.T)["output"]  # a batch of 3 columns; traced with 2
    np.testing.assert_allclose(got, finite_part(name, X.T, MASK.T[:, :1], 0).numpy(), rtol=1e-12)


def test_a_traced_mask_under_jit_and_vmap_is_recomputed() -> None:
    def attend(scores: Any, lengths: Any) -> tg.Tensor:  # the mask from a traced input
        return nn.softmax(scores, axis=-1, where=np.arange(4) < lengths[:, None])

    lengths, other = np.array([4, 2, 0]), np.array([1, 3, 4])
    jitted = tg.jit(attend)
    jitted(X, lengths)
    got = jitted(X, other)
    assert np.array_equal(got, attend(X, other).numpy()) and len(jitted.plans) == 1
    assert (got[0, 1:] == 0).all() and got[0, 0] == 1.0
    mapped = tg.vmap(lambda s, m: nn.softmax(s, axis=0, where=m))(X, MASK)
    assert np.array_equal(mapped, nn.softmax(X, axis=1, where=MASK).numpy())


# --- against jax.nn, where jax is installed ------------------------------------------------------
@pytest.fixture(scope="module")
def jax_x64() -> Iterator[Any]:
    jax = pytest.importorskip("jax")
    if not hasattr(jax, "enable_x64"):
        pytest.skip("this jax has no jax.enable_x64")
    with jax.enable_x64(True):
        yield jax


@pytest.mark.slow
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_values_and_gradients_are_jax_nns(name: str, jax_x64: Any) -> None:
    jax, jnp = jax_x64, jax_x64.numpy
    jax_f = (lambda x: jax.nn.gelu(x, approximate=False)) if name == "gelu_exact" else getattr(
        jax.nn, name)
    x = np.array([-1000.0, -7.0, -1.0, -0.5, 0.0, 0.3, 1.0, 2.5, 6.0, 9.0, 1000.0])
    # to roundoff: the two compute the same formulas, in other orders
    np.testing.assert_allclose(ACTIVATIONS[name](x).numpy(), jax_f(jnp.asarray(x)), rtol=1e-13,
                               atol=1e-14)
    jax_derivative = jax.vmap(jax.grad(jax_f))
    np.testing.assert_allclose(derivative(ACTIVATIONS[name], x), jax_derivative(x), rtol=1e-12,
                               atol=1e-14)
    second = tg.grad(lambda t: tg.grad(lambda s: ACTIVATIONS[name](s).sum())(t).sum())(x)
    np.testing.assert_allclose(second, jax.vmap(jax.grad(jax.grad(jax_f)))(x), rtol=1e-7,
                               atol=1e-13)


@pytest.mark.slow
@pytest.mark.parametrize("name", MASKED)
def test_masked_values_and_gradients_are_jax_nns(name: str, jax_x64: Any) -> None:
    jax, jnp = jax_x64, jax_x64.numpy
    jax_f = getattr(jax.nn, name)
    np.testing.assert_allclose(MASKED[name](X, axis=1, where=MASK).numpy(),
                               jax_f(jnp.asarray(X), axis=1, where=MASK), rtol=1e-14)
    weights = np.random.default_rng(1).normal(size=X.shape)

    def jax_finite_part(t: Any) -> Any:
        out = jax_f(t, axis=1, where=MASK)
        if name == "log_softmax":
            return jnp.where(MASK, out, 0.0)
        return jnp.where(MASK.any(1), out, 0.0) if name == "logsumexp" else out

    expected = jax.grad(lambda t: (jax_finite_part(t) * weights[:, :1]).sum())(X)
    got = tg.grad(lambda t: (finite_part(name, t, MASK, 1) * weights[:, :1]).sum())(X)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
