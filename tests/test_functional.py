"""The functional transforms: grad, value_and_grad and vjp over pytrees, nested."""

import copy
from collections import namedtuple
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_nn as tg
from tinygrad_nn import Tensor

Layer = namedtuple("Layer", ["W", "b"])


def nested_params(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "layers": [
            Layer(rng.normal(size=(3, 2)), rng.normal(size=(3, 1))),
            Layer(rng.normal(size=(1, 3)), rng.normal(size=(1, 1))),
        ],
        "scale": (np.array(0.7), {"inner": rng.normal(size=(2,))}),
        "unused": None,
    }


def nested_cost(params: dict[str, Any], X: np.ndarray) -> Tensor:
    A = X
    for layer in params["layers"]:
        A = tg.tanh(layer.W @ A + layer.b)
    scale, extra = params["scale"]
    return (A * scale).sum() + (extra["inner"] ** 2).sum()


def assert_same_tree(a: Any, b: Any) -> None:
    """Same structure and container types; leaves equal arrays."""
    leaves_a, tree_a = tg.tree_flatten(a)
    leaves_b, tree_b = tg.tree_flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b):
        assert np.array_equal(x, y)


# --- pytrees and argnums --------------------------------------------------------------------
def test_grad_of_a_nested_pytree_has_its_structure() -> None:
    rng = np.random.default_rng(0)
    params, X = nested_params(rng), rng.normal(size=(2, 5))
    grads = tg.grad(nested_cost)(params, X)
    assert isinstance(grads["layers"], list) and isinstance(grads["layers"][1], Layer)
    assert isinstance(grads["scale"], tuple) and grads["unused"] is None
    for leaf, g in zip(tg.tree_flatten(params)[0], tg.tree_flatten(grads)[0]):
        assert type(g) is np.ndarray and g.shape == np.shape(leaf) and g.dtype == np.float64
    assert np.allclose(grads["scale"][1]["inner"], 2 * params["scale"][1]["inner"])
    check = tg.check_grads(nested_cost, (params, X), eps=1e-6)
    assert check.max_error < 1e-6, check


def test_argnums_int_tuple_and_negative() -> None:
    def f(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
        return (a * b * b * c).sum()

    a, b, c = np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.array(5.0)
    assert np.array_equal(tg.grad(f)(a, b, c), b * b * c)
    assert np.array_equal(tg.grad(f, argnums=1)(a, b, c), 2 * a * b * c)
    ga, gc = tg.grad(f, argnums=(0, 2))(a, b, c)
    assert np.array_equal(ga, b * b * c) and gc == (a * b * b).sum()
    assert np.array_equal(tg.grad(f, argnums=-1)(a, b, c), gc)
    (only,) = tg.grad(f, argnums=(1,))(a, b, c)
    assert np.array_equal(only, 2 * a * b * c)


def test_value_and_grad_and_has_aux() -> None:
    def f(x: Tensor) -> tuple[Tensor, dict[str, Any]]:
        y = tg.exp(x)
        return y.sum(), {"y": y, "note": "aux passes through untouched"}

    x = np.array([0.0, 1.0])
    (value, aux), g = tg.value_and_grad(f, has_aux=True)(x)
    assert type(value) is np.ndarray and value.shape == () and np.isclose(value, 1 + np.e)
    assert np.allclose(g, np.exp(x))
    assert aux["note"] == "aux passes through untouched" and np.allclose(aux["y"].data, np.exp(x))
    g2, aux2 = tg.grad(f, has_aux=True)(x)
    assert np.array_equal(g2, g) and aux2["note"] == aux["note"]
    value, g3 = tg.value_and_grad(lambda t: (t * t).sum())(x)
    assert value == 1.0 and np.array_equal(g3, 2 * x)


def test_check_grads_gives_f_tensors_as_grad_does() -> None:
    result = tg.check_grads(lambda x: x.exp().T.sum(), (np.ones((2, 3)),), eps=1e-6)
    assert result.max_error < 1e-8 and result.worst_leaf == "x0"


def test_keyword_arguments_are_passed_but_not_differentiated() -> None:
    def f(x: Tensor, *, power: int) -> Tensor:
        return (x**power).sum()

    assert np.array_equal(tg.grad(f)(np.array([2.0]), power=3), [12.0])


# --- no side effects ------------------------------------------------------------------------
def test_transforms_never_mutate_their_inputs_nor_leave_state() -> None:
    rng = np.random.default_rng(1)
    params, X = nested_params(rng), rng.normal(size=(2, 5))
    params_before, X_before = copy.deepcopy(params), X.copy()
    tg.value_and_grad(nested_cost, argnums=(0, 1))(params, X)
    tg.grad(lambda p, X: tg.grad(nested_cost)(p, X)["scale"][0])(params, X)
    _, vjp_fn = tg.vjp(nested_cost, params, X)
    vjp_fn(np.array(2.0))
    tg.check_grads(nested_cost, (params, X))
    assert_same_tree(params, params_before)
    assert np.array_equal(X, X_before)

    # Tensors passed in keep their data, their requires_grad and get no .grad.
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    c = Tensor(np.array([3.0, 4.0]))
    data_before = w.data.copy()
    g = tg.grad(lambda w, c: (w * w * c).sum(), argnums=(0, 1))(w, c)
    assert np.array_equal(g[0], 2 * w.data * c.data) and np.array_equal(g[1], w.data**2)
    assert w.grad is None and c.grad is None and not c.requires_grad and w.requires_grad
    assert np.array_equal(w.data, data_before) and w.op is None


def test_calls_are_independent() -> None:
    grad_f = tg.grad(lambda x: (x**3).sum())
    x = np.array([1.0, 2.0])
    first = grad_f(x)
    assert np.array_equal(grad_f(x), first)  # nothing accumulates between calls
    assert not tg.functional.records_backward()


def test_returned_gradients_are_writable_and_never_aliased() -> None:
    ga, gb = tg.grad(lambda a, b: (a + b).sum(), argnums=(0, 1))(np.ones(3), np.ones(3))
    assert ga is not gb and ga.flags.writeable and gb.flags.writeable
    ga[0] = 5.0
    assert gb[0] == 1.0
    both = tg.grad(lambda p: (p["a"] + p["b"]).sum())({"a": np.ones(2), "b": np.ones(2)})
    assert not np.shares_memory(both["a"], both["b"])
    # A 0-d gradient is an array, not a numpy or Python scalar.
    g = tg.grad(lambda x: x * 2.0)(3.0)
    assert type(g) is np.ndarray and g.shape == () and g == 2.0


def test_vjp_never_hands_back_the_cotangent() -> None:
    _, vjp_fn = tg.vjp(lambda a: a + 0.0, np.ones(3))
    cotangent = np.array([1.0, 2.0, 3.0])
    (first,), (second,) = vjp_fn(cotangent), vjp_fn(cotangent)
    assert first is not cotangent and second is not cotangent and first is not second
    first[0] = 50.0
    assert cotangent[0] == 1.0 and second[0] == 1.0


# --- outputs that do not depend on an input -------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_an_input_the_output_ignores_gets_zeros_of_its_dtype_and_shape(dtype: type) -> None:
    x, unused = np.ones((2, 3), dtype), np.ones((4,), dtype)
    g_x, g_unused = tg.grad(lambda x, u: (x * 2.0).sum(), argnums=(0, 1))(x, unused)
    assert np.array_equal(g_x, np.full((2, 3), 2.0)) and g_x.dtype == dtype
    assert np.array_equal(g_unused, np.zeros(4)) and g_unused.dtype == dtype
    constants = (lambda x: 3.0, lambda x: Tensor(np.ones(())), lambda x: tg.stop_gradient(x).sum())
    for constant in constants:
        g = tg.grad(constant)(x)
        assert np.array_equal(g, np.zeros((2, 3))) and g.dtype == dtype


def test_integer_inputs_get_float64_gradients() -> None:
    g = tg.grad(lambda x: (x * x).sum())(np.arange(3))
    assert g.dtype == np.float64 and np.array_equal(g, [0.0, 2.0, 4.0])
    assert tg.grad(lambda x: x * x)(3) == 6.0


# --- higher order ---------------------------------------------------------------------------
def test_grad_of_grad_on_scalars() -> None:
    def f(x: Tensor) -> Tensor:
        return x**3 + 2.0 * x

    assert tg.grad(f)(2.0) == 14.0
    assert tg.grad(tg.grad(f))(2.0) == 12.0
    assert tg.grad(tg.grad(tg.grad(f)))(2.0) == 6.0
    assert tg.grad(tg.grad(tg.grad(tg.grad(f))))(2.0) == 0.0

    t = np.tanh(0.3)
    assert np.isclose(tg.grad(tg.grad(tg.tanh))(0.3), -2 * t * (1 - t**2))
    # A function of two variables: d²(x²y)/dxdy = 2x.
    mixed = tg.grad(lambda x, y: tg.grad(lambda x: x * x * y)(x), argnums=1)
    assert mixed(3.0, 5.0) == 6.0


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_hessian_vector_product_equals_differences_of_the_gradient(seed: int) -> None:
    rng = np.random.default_rng(seed)
    params, X = nested_params(rng), rng.normal(size=(2, 5))
    direction = tg.tree_map(lambda leaf: rng.normal(size=np.shape(leaf)), params)
    gradient = tg.grad(nested_cost)

    def along(params: Any) -> Tensor:
        g, _ = tg.tree_flatten(gradient(params, X))
        u, _ = tg.tree_flatten(direction)
        return sum((a * b).sum() for a, b in zip(g, u))

    hvp = tg.grad(along)(params)
    eps = 1e-5
    plus = gradient(tg.tree_map(lambda p, u: p + eps * u, params, direction), X)
    minus = gradient(tg.tree_map(lambda p, u: p - eps * u, params, direction), X)
    numeric = tg.tree_map(lambda a, b: (a - b) / (2 * eps), plus, minus)
    for exact, approx in zip(tg.tree_flatten(hvp)[0], tg.tree_flatten(numeric)[0]):
        np.testing.assert_allclose(exact, approx, rtol=1e-5, atol=1e-7)


# --- vjp ------------------------------------------------------------------------------------
def test_vjp_of_a_non_scalar_output_with_a_cotangent() -> None:
    rng = np.random.default_rng(2)
    W, x = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    out, vjp_fn = tg.vjp(lambda W, x: tg.tanh(W @ x), W, x)
    assert type(out) is np.ndarray and np.allclose(out, np.tanh(W @ x))
    cotangent = rng.normal(size=(3, 2))
    dZ = cotangent * (1 - out**2)
    dW, dx = vjp_fn(cotangent)
    assert np.allclose(dW, dZ @ x.T) and np.allclose(dx, W.T @ dZ)
    # Callable twice, and with another cotangent; same answers, fresh arrays.
    dW_again, dx_again = vjp_fn(cotangent)
    assert np.array_equal(dW_again, dW) and dW_again is not dW
    assert np.array_equal(dx_again, dx) and dx_again is not dx
    dW_ones, _ = vjp_fn(np.ones((3, 2)))
    assert np.allclose(dW_ones, (1 - out**2) @ x.T)
    # A Tensor cotangent at the top level gives numpy arrays too.
    dW_tensor, _ = vjp_fn(Tensor(cotangent))
    assert type(dW_tensor) is np.ndarray and dW_tensor.dtype == np.float64
    assert np.allclose(dW_tensor, dW)


def test_vjp_with_a_pytree_and_aux() -> None:
    def f(p: dict[str, Any]) -> tuple[Tensor, str]:
        return p["a"] * p["b"], "aux"

    p = {"a": np.array([1.0, 2.0]), "b": np.array([3.0, 4.0])}
    out, vjp_fn, aux = tg.vjp(f, p, has_aux=True)
    assert aux == "aux" and np.array_equal(out, [3.0, 8.0])
    (grads,) = vjp_fn(np.array([1.0, 10.0]))
    assert np.array_equal(grads["a"], [3.0, 40.0]) and np.array_equal(grads["b"], [1.0, 20.0])


def test_vjp_inside_grad_differentiates_through_a_tensor_cotangent() -> None:
    def f(x: Tensor) -> Tensor:
        _, vjp_fn = tg.vjp(lambda a: a * a, x)
        (pulled,) = vjp_fn(x)  # 2a · x with a = x: 2x²
        return pulled.sum()

    assert np.array_equal(tg.grad(f)(np.array([1.0, 2.0])), [4.0, 8.0])
