"""The many-class ops at their exact values: logsumexp, log_softmax, softmax, var, std, argmax and
the comparisons. Their gradients against finite differences are in test_ops_gradients.py.

The class axis is 0 everywhere (examples are columns): ``softmax(Z)`` of logits Z (K, m) sums
each column to 1.
"""

import math

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Tensor

DTYPES = [np.float64, np.float32]


def reference_logsumexp(x: np.ndarray, axis: int | None) -> np.ndarray:
    shift = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(np.log(np.sum(np.exp(x - shift), axis=axis, keepdims=True)) + shift, axis)


@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp_is_exact_for_logits_of_plus_minus_1000(dtype: type) -> None:
    x = np.array([[1000.0, -1000.0, 1000.0, -1000.0], [-1000.0, 1000.0, 1000.0, -1000.0]], dtype)
    log2 = math.log(2.0)
    expected = np.array([1000.0, 1000.0, 1000.0 + log2, -1000.0 + log2], dtype)
    # any overflow or invalid operation raises; so does a NaN / inf in forward or backward
    with tg.detect_anomaly(), np.errstate(over="raise", invalid="raise", divide="raise"):
        out = tg.logsumexp(Tensor(x))
        log_probabilities = tg.log_softmax(x).numpy()
        probabilities = tg.softmax(x).numpy()
        slope = tg.grad(lambda t: tg.logsumexp(t).sum())(x)
    assert out.dtype == log_probabilities.dtype == probabilities.dtype == slope.dtype == dtype
    assert np.array_equal(out.numpy(), expected)
    # x - logsumexp(x): exact up to the rounding of logsumexp(x) ≈ 1000, a few ulps of 1000
    ulps = 4 * np.spacing(dtype(1000.0))
    np.testing.assert_allclose(log_probabilities, np.array(
        [[0, -2000, -log2, -log2], [-2000, 0, -log2, -log2]], dtype), rtol=0, atol=ulps)
    half_and_one = np.array([[1, 0, 0.5, 0.5], [0, 1, 0.5, 0.5]], dtype)
    np.testing.assert_allclose(probabilities, half_and_one, rtol=0, atol=ulps)
    np.testing.assert_allclose(slope, half_and_one, rtol=0, atol=ulps)  # its VJP: the softmax
    assert np.array_equal(slope[:, :2], half_and_one[:, :2])  # 1 and 0 exactly


def test_logsumexp_limits_and_shapes() -> None:
    assert tg.logsumexp(np.array([-np.inf, -np.inf])).item() == -np.inf  # log 0, no warning
    assert tg.logsumexp(np.array([np.inf, 1.0])).item() == np.inf
    assert np.isnan(tg.logsumexp(np.array([np.nan, 1.0])).item())
    assert tg.logsumexp(np.array(3.0), axis=None).item() == 3.0  # a 0-d input
    x = np.random.default_rng(0).normal(size=(2, 3, 4))
    for axis in (0, 1, -1, None, (0, 2)):
        for keepdims in (False, True):
            out = tg.logsumexp(x, axis, keepdims)
            expected = np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))
            np.testing.assert_allclose(out.numpy(), expected, rtol=1e-14)
    with pytest.raises(ValueError, match=r"logsumexp: axis 3 is invalid for shape \(2, 3, 4\)"):
        tg.logsumexp(x, 3)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_the_vjp_of_logsumexp_is_the_softmax(axis: int) -> None:
    x = np.random.default_rng(1).normal(size=(3, 4, 5)) * 10
    weights = np.random.default_rng(2).normal(size=np.sum(x, axis=axis).shape)
    # d Σ w·lse(x) / dx = w (broadcast back) · softmax(x)
    gradient = tg.grad(lambda t: (tg.logsumexp(t, axis) * weights).sum())(x)
    expected = np.expand_dims(weights, axis) * tg.softmax(x, axis).numpy()
    np.testing.assert_allclose(gradient, expected, rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_and_log_softmax_over_the_class_axis(dtype: type) -> None:
    Z = np.random.default_rng(3).normal(size=(10, 7)).astype(dtype) * 5  # 10 classes, 7 examples
    probabilities = tg.softmax(Z).numpy()
    assert probabilities.dtype == dtype and probabilities.shape == (10, 7)
    tolerance = 1e-6 if dtype == np.float32 else 1e-15
    np.testing.assert_allclose(probabilities.sum(axis=0), np.ones(7), rtol=tolerance * 10)
    shifted = np.exp(Z - Z.max(axis=0))
    np.testing.assert_allclose(probabilities, shifted / shifted.sum(axis=0), rtol=tolerance * 10)
    np.testing.assert_allclose(tg.log_softmax(Z).numpy(), Z - reference_logsumexp(Z, 0),
                               rtol=tolerance * 10, atol=tolerance)
    # the other axis is examples-as-rows, for those who hold them so
    np.testing.assert_allclose(tg.softmax(Z.T, axis=1).numpy(), probabilities.T, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [None, 0, 1, (0, 2)])
def test_var_and_std_are_numpys_population_statistics(dtype: type, axis: object) -> None:
    x = np.random.default_rng(4).normal(size=(3, 4, 2)).astype(dtype)
    for op, reference in ((tg.var, np.var), (tg.std, np.std)):
        for keepdims in (False, True):
            out = op(x, axis, keepdims)
            expected = reference(x, axis=axis, keepdims=keepdims)  # ddof=0
            assert out.dtype == dtype and out.shape == expected.shape
            np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5 if dtype == np.float32
                                       else 1e-14)


def test_var_and_std_gradients_are_the_textbook_formulas() -> None:
    x = np.random.default_rng(5).normal(size=(4, 6))
    n = x.shape[0]
    deviation = x - x.mean(axis=0)
    # d var / dx = 2 (x - mean) / n; d std / dx = (x - mean) / (n · std)
    np.testing.assert_allclose(tg.grad(lambda t: tg.var(t, 0).sum())(x), 2 * deviation / n,
                               rtol=1e-13)
    np.testing.assert_allclose(tg.grad(lambda t: tg.std(t, 0).sum())(x),
                               deviation / (n * x.std(axis=0)), rtol=1e-13)


def test_argmax_picks_the_class_and_has_no_gradient() -> None:
    scores = np.array([[0.1, 2.0, 3.0], [0.9, 2.0, -1.0], [0.5, 0.0, 3.0]])
    assert tg.argmax(scores).numpy().tolist() == [1, 0, 0]  # class axis 0; ties: the first
    assert tg.argmax(scores, axis=-1).numpy().tolist() == [2, 1, 2]
    assert tg.argmax(scores, None).item() == 2  # flattened, as numpy
    assert Tensor(scores).argmax().numpy().tolist() == [1, 0, 0]
    out = tg.argmax(Tensor(scores, requires_grad=True))
    assert out.dtype == np.int64 and not out.requires_grad and out.primitive is None

    def uses_argmax(t: Tensor) -> Tensor:  # a chosen score: the gradient flows through t only
        return t[tg.argmax(t), np.arange(3)].sum()

    assert np.array_equal(tg.grad(uses_argmax)(scores),
                          [[0, 1, 1], [1, 0, 0], [0, 0, 0]])
    with pytest.raises(ValueError, match="argmax: axis 2 is invalid for shape"):
        tg.argmax(scores, 2)


def test_comparisons_are_numpys_and_carry_no_gradient() -> None:
    x = Tensor(np.array([[1.0, 2.0, 3.0]]), requires_grad=True)
    y = np.array([[2.0], [1.0]])  # broadcasts to (2, 3)
    for op, reference in ((tg.less, np.less), (tg.less_equal, np.less_equal),
                          (tg.greater, np.greater), (tg.greater_equal, np.greater_equal),
                          (tg.equal, np.equal), (tg.not_equal, np.not_equal)):
        out = op(x, y)
        assert out.dtype == np.bool_ and not out.requires_grad
        assert np.array_equal(out.numpy(), reference(x.data, y))
    assert np.array_equal((x > 1.5).numpy(), [[False, True, True]])
    assert np.array_equal((x == 2.0).numpy(), [[False, True, False]])
    with pytest.raises(ValueError, match=r"less: shapes \(1, 3\) and \(2,\) do not broadcast"):
        tg.less(x, np.zeros(2))
    # a mask made by a comparison selects; the gradient reaches only the selected branch
    gradient = tg.grad(lambda t: tg.where(t > 1.5, t * t, 0.0).sum())(x.data)
    assert np.array_equal(gradient, [[0.0, 4.0, 6.0]])


@pytest.mark.slow
def test_log_softmax_and_logsumexp_equal_torch() -> None:
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install "
                                "torch==2.13.0, the CPU wheel) to compare with it")
    x = np.random.default_rng(6).normal(size=(5, 8)) * 30
    x[0, :4], x[1, 4:] = 1000.0, -1000.0
    weights = np.random.default_rng(7).normal(size=x.shape)
    t = torch.tensor(x, requires_grad=True)
    (torch.log_softmax(t, dim=0) * torch.tensor(weights)).sum().backward()
    ours = tg.grad(lambda s: (tg.log_softmax(s) * weights).sum())(x)
    ulps = 4 * np.spacing(1000.0)  # both round a logsumexp near 1000 (a different way)
    np.testing.assert_allclose(tg.log_softmax(x).numpy(),
                               torch.log_softmax(torch.tensor(x), 0).numpy(), rtol=1e-13, atol=ulps)
    np.testing.assert_allclose(ours, t.grad.numpy(), rtol=1e-12, atol=ulps)
    np.testing.assert_allclose(tg.logsumexp(x).numpy(),
                               torch.logsumexp(torch.tensor(x), 0).numpy(), rtol=1e-14)
