"""The Tensor itself: what it reports, dtype rules, reflected operators and comparisons."""

import operator
from typing import Any

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Tensor


def test_basic_attributes() -> None:
    data = np.arange(6.0).reshape(2, 3)
    t = Tensor(data)
    assert t.shape == (2, 3) and t.dtype == np.float64 and t.ndim == 2 and t.size == 6
    assert len(t) == 2 and t.is_leaf and not t.requires_grad and t.grad is None
    assert t.numpy() is t.data and np.array_equal(t.numpy(), data)
    assert t.T.shape == (3, 2) and np.array_equal(t.T.numpy(), data.T)
    assert Tensor(np.array(2.5)).item() == 2.5 and type(Tensor(np.array(2.5)).item()) is float
    assert float(Tensor(np.array(2.5))) == 2.5 and bool(Tensor(np.array(1.0)))
    assert Tensor([1, 2, 3]).dtype.kind == "i" and Tensor(2.0).shape == ()


def test_repr_shows_shape_dtype_and_what_recorded_it() -> None:
    t = Tensor(np.ones((2, 3), np.float32))
    assert "shape=(2, 3)" in repr(t) and "dtype=float32" in repr(t)
    assert "requires_grad" not in repr(t)
    y = Tensor(np.ones(3), requires_grad=True) * 2.0
    assert "shape=(3,)" in repr(y) and "requires_grad=True" in repr(y) and "op=mul" in repr(y)
    big = repr(Tensor(np.zeros((100, 100))))
    assert "shape=(100, 100)" in big and len(big) < 300


def test_results_always_hold_arrays() -> None:
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    for result in (x.sum(), x.max(), x[0], x.mean(), tg.exp(x.sum()), x @ x):
        assert type(result.data) is np.ndarray and result.shape == ()


def test_tensors_hash_by_identity() -> None:
    a, b = Tensor(np.ones(2)), Tensor(np.ones(2))
    table = {a: "a", b: "b"}
    assert table[a] == "a" and table[b] == "b" and len({a, b, a}) == 2


# --- dtypes ---------------------------------------------------------------------------------
def test_integer_and_bool_data_that_require_grad_become_float64() -> None:
    assert Tensor(np.arange(3), requires_grad=True).dtype == np.float64
    assert Tensor([True, False], requires_grad=True).dtype == np.float64
    assert Tensor(np.arange(3)).dtype == np.arange(3).dtype  # no grad: left as it is
    assert Tensor(np.arange(3, dtype=np.float32), requires_grad=True).dtype == np.float32
    t = Tensor(np.arange(3)).requires_grad_()
    assert t.requires_grad and t.dtype == np.float64
    (t * t).sum().backward()
    assert t.grad is not None and t.grad.dtype == np.float64


@pytest.mark.parametrize(
    "expression",
    [
        lambda x: x * 2.0,
        lambda x: 2.0 * x,
        lambda x: x + 1,
        lambda x: 1.5 - x,
        lambda x: x / 3.0,
        lambda x: 3.0 / x,
        lambda x: x**2.0,
        lambda x: 2.0**x,
        lambda x: tg.maximum(x, 0.5),
        lambda x: tg.where(x.data > 1.5, x, 0.0),
        lambda x: x.clip(0.0, 1.5),
        lambda x: x.mean(),
    ],
)
def test_a_python_scalar_never_upcasts_float32(expression: Any) -> None:
    x = Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    y = expression(x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad is not None and x.grad.dtype == np.float32
    assert tg.grad(lambda t: expression(t).sum())(x.data).dtype == np.float32


# --- reflected operators --------------------------------------------------------------------
REFLECTED = [
    ("add", operator.add, lambda x: np.ones_like(x)),
    ("sub", operator.sub, lambda x: -np.ones_like(x)),
    ("mul", operator.mul, lambda x: np.full_like(x, 3.0)),
    ("div", operator.truediv, lambda x: -3.0 / x**2),
    ("pow", operator.pow, lambda x: np.log(3.0) * 3.0**x),
]


@pytest.mark.parametrize(("name", "op", "derivative"), REFLECTED, ids=[r[0] for r in REFLECTED])
@pytest.mark.parametrize("left", [np.full(3, 3.0), 3.0, 3], ids=["array", "float", "int"])
def test_numpy_arrays_and_scalars_on_the_left(
    name: str, op: Any, derivative: Any, left: Any
) -> None:
    x = Tensor(np.array([0.5, 1.0, 2.0]), requires_grad=True)
    y = op(left, x)
    assert type(y) is Tensor and y.requires_grad and y.op == name
    assert np.allclose(y.numpy(), op(left, x.data))
    y.sum().backward()
    assert np.allclose(x.grad, derivative(x.data))


def test_matmul_with_an_array_on_the_left() -> None:
    W = np.arange(6.0).reshape(2, 3)
    x = Tensor(np.ones((3, 4)), requires_grad=True)
    y = W @ x
    assert type(y) is Tensor and y.shape == (2, 4) and y.op == "matmul"
    y.sum().backward()
    assert np.array_equal(x.grad, W.T @ np.ones((2, 4)))


# --- comparisons ----------------------------------------------------------------------------
COMPARISONS = [operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne]


@pytest.mark.parametrize("compare", COMPARISONS, ids=[c.__name__ for c in COMPARISONS])
def test_comparisons_give_constant_tensors(compare: Any) -> None:
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    other = np.array([2.0, 2.0, 2.0])
    for result, expected in (
        (compare(x, 2.0), compare(x.data, 2.0)),
        (compare(x, Tensor(other)), compare(x.data, other)),
        (compare(other, x), compare(other, x.data)),  # numpy on the left: reflected
    ):
        assert type(result) is Tensor and result.dtype == np.bool_
        assert not result.requires_grad and result.op is None
        assert np.array_equal(result.numpy(), expected)


# --- forward values: every op computes what numpy computes ---------------------------------

_x = np.array([[-2.0, -0.5, 0.0], [0.5, 1.5, 3.0]])
_y = np.array([[1.0, -1.0, 2.0]])
_positive = np.abs(_x) + 0.5

FORWARD_CASES: list[tuple[str, Any, Any]] = [
    ("add", lambda t: t + _y, _x + _y),
    ("sub", lambda t: t - _y, _x - _y),
    ("mul", lambda t: t * _y, _x * _y),
    ("div", lambda t: t / _y, _x / _y),
    ("pow", lambda t: t**3, _x**3),
    ("neg", lambda t: -t, -_x),
    ("matmul", lambda t: t @ _x.T, _x @ _x.T),
    ("exp", tg.exp, np.exp(_x)),
    ("abs", tg.abs, np.abs(_x)),
    ("relu", tg.relu, np.maximum(_x, 0)),
    ("sigmoid", tg.sigmoid, 1 / (1 + np.exp(-_x))),
    ("tanh", tg.tanh, np.tanh(_x)),
    ("softplus", tg.softplus, np.log1p(np.exp(_x))),
    ("log_sigmoid", tg.log_sigmoid, -np.log1p(np.exp(-_x))),
    ("maximum", lambda t: tg.maximum(t, _y), np.maximum(_x, _y)),
    ("minimum", lambda t: tg.minimum(t, _y), np.minimum(_x, _y)),
    ("where", lambda t: tg.where(_x > 0, t, _y), np.where(_x > 0, _x, _y)),
    ("clip", lambda t: tg.clip(t, -1.0, 1.0), np.clip(_x, -1.0, 1.0)),
    ("sum", lambda t: t.sum(axis=1, keepdims=True), _x.sum(axis=1, keepdims=True)),
    ("mean", lambda t: t.mean(axis=0), _x.mean(axis=0)),
    ("max", lambda t: t.max(axis=1), _x.max(axis=1)),
    ("reshape", lambda t: t.reshape(3, 2), _x.reshape(3, 2)),
    ("transpose", lambda t: t.T, _x.T),
    ("flatten", lambda t: t.flatten(), _x.flatten()),
    ("getitem", lambda t: t[1, [0, 2, 2]], _x[1, [0, 2, 2]]),
    ("concatenate", lambda t: tg.concatenate([t, t], axis=1), np.concatenate([_x, _x], 1)),
    ("stack", lambda t: tg.stack([t, t], axis=0), np.stack([_x, _x])),
]


@pytest.mark.parametrize(
    ("name", "op", "expected"), FORWARD_CASES, ids=[case[0] for case in FORWARD_CASES]
)
def test_forward_values_equal_numpy(name: str, op: Any, expected: np.ndarray) -> None:
    out = op(Tensor(_x, requires_grad=True))
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("name", "op"), [("log", tg.log), ("sqrt", tg.sqrt)])
def test_forward_values_of_positive_only_ops(name: str, op: Any) -> None:
    expected = {"log": np.log, "sqrt": np.sqrt}[name](_positive)
    np.testing.assert_allclose(op(Tensor(_positive)).data, expected, rtol=1e-12)
