"""A composer's helpers: ravel_pytree, tree_vdot and hvp (Hessian-vector products)."""

from typing import Any

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import nn
from tinygrad_nn.pytree import tree_flatten, tree_map


def mixed_tree() -> dict[str, Any]:
    return {"W": np.arange(6.0).reshape(2, 3), "b": [np.array([1.5, -2.5], np.float32),
                                                     (np.array(7, np.int64),)]}


# --------------------------------------------------------------------------- ravel_pytree


def test_ravel_pytree_round_trips_shapes_and_dtypes() -> None:
    tree = mixed_tree()
    flat, unravel = tg.ravel_pytree(tree)
    assert flat.shape == (9,) and flat.dtype == np.float64  # the leaves' common dtype
    assert flat.tolist() == [0, 1, 2, 3, 4, 5, 1.5, -2.5, 7]
    back = unravel(flat)
    for got, want in zip(tree_flatten(back)[0], tree_flatten(tree)[0]):
        assert got.shape == want.shape and got.dtype == want.dtype
        assert np.array_equal(got, want)
    assert tree_flatten(back)[1] == tree_flatten(tree)[1]
    changed = unravel(flat * 2)  # a new vector gets the tree's structure, each leaf its dtype
    assert changed["b"][0].dtype == np.float32 and changed["b"][1][0] == 14


def test_ravel_pytree_of_float32_leaves_stays_float32_and_empty_trees_work() -> None:
    params = nn.init_params([3, 2, 1], dtype=np.float32)
    flat, unravel = tg.ravel_pytree(params)
    assert flat.dtype == np.float32 and flat.size == 2 * 3 + 2 + 2 + 1
    assert all(np.array_equal(unravel(flat)[k], params[k]) for k in params)
    empty, unravel_empty = tg.ravel_pytree({})
    assert empty.shape == (0,) and unravel_empty(empty) == {}


def test_unravel_refuses_a_vector_of_another_size() -> None:
    _, unravel = tg.ravel_pytree(mixed_tree())
    for wrong in (np.zeros(8), np.zeros(10), np.zeros((9, 1))):
        with pytest.raises(ValueError, match=r"unravel: the vector has shape .*; expected \(9,\)"):
            unravel(wrong)


def test_a_cost_of_the_raveled_parameters_has_the_raveled_gradient() -> None:
    # The course's gradient check works on one vector (dictionary_to_vector): unravel is made of
    # ops, so the gradient with respect to the vector is the gradient tree, raveled.
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(3, 8)), (rng.random((1, 8)) > 0.5).astype(float)
    params = nn.init_params([3, 4, 1], seed=2)
    flat, unravel = tg.ravel_pytree(params)

    def cost_of_vector(theta: Any) -> tg.Tensor:
        return nn.model_cost(unravel(theta), X, Y)

    np.testing.assert_allclose(tg.grad(cost_of_vector)(flat),
                               tg.ravel_pytree(tg.grad(nn.model_cost)(params, X, Y))[0],
                               rtol=1e-14)
    assert tg.check_grads(cost_of_vector, (flat,)).max_error < 1e-7


def test_ravel_pytree_of_tensor_leaves_is_made_of_ops_and_differentiable() -> None:
    # As jax.flatten_util: the vector of a tree of Tensors is a Tensor (concatenate of reshaped
    # leaves), so a cost of the vector has gradients with respect to the tree's leaves.
    rng = np.random.default_rng(1)
    tree = {"W": rng.normal(size=(2, 3)), "b": [rng.normal(size=(3, 1))]}
    weights = rng.normal(size=9)

    def weighted(tree: Any) -> tg.Tensor:
        return (tg.ravel_pytree(tree)[0] * weights).sum()

    grads = tg.grad(weighted)(tree)  # by hand: the weights cut back into the tree
    assert np.array_equal(grads["W"], weights[:6].reshape(2, 3))
    assert np.array_equal(grads["b"][0], weights[6:].reshape(3, 1))

    def round_trip(tree: Any) -> tg.Tensor:  # ravel, then unravel a function of the vector
        flat, unravel = tg.ravel_pytree(tree)
        back = unravel(flat * flat)
        return tg.sum(back["W"] @ back["b"][0]) + (flat * weights).sum()

    assert tg.check_grads(round_trip, (tree,)).max_error < 1e-8
    leaves = {"W": tg.Tensor(tree["W"]), "b": [tree["b"][0]]}  # a Tensor among arrays
    flat, unravel = tg.ravel_pytree(leaves)
    assert type(flat) is tg.Tensor and flat.shape == (9,)
    assert type(unravel(flat)["b"][0]) is tg.Tensor
    assert type(tg.ravel_pytree(tree)[0]) is np.ndarray  # arrays give an array


# --------------------------------------------------------------------------- tree_vdot


def test_tree_vdot_sums_the_products_of_matching_leaves() -> None:
    a, b = mixed_tree(), tree_map(lambda x: np.ones_like(x) * 2, mixed_tree())
    result = tg.tree_vdot(a, b)
    assert type(result) is float and result == 2 * (15 + 1.5 - 2.5 + 7)
    assert tg.tree_vdot({}, {}) == 0.0
    with pytest.raises(ValueError, match="tree_vdot: the trees differ in structure"):
        tg.tree_vdot({"W": np.ones(2)}, {"W": np.ones(2), "b": np.ones(1)})
    with pytest.raises(ValueError, match="differ in structure"):
        tg.tree_vdot([np.ones(2)], (np.ones(2),))


# --------------------------------------------------------------------------- hvp


def test_hvp_of_a_quadratic_is_the_symmetric_part_times_v() -> None:
    rng = np.random.default_rng(1)
    A, b, x, v = rng.normal(size=(5, 5)), rng.normal(size=5), rng.normal(size=5), rng.normal(
        size=5)

    def f(x: Any) -> tg.Tensor:  # ½ xᵀAx + bᵀx: its Hessian is (A + Aᵀ) / 2 everywhere
        return 0.5 * (x * (A @ x)).sum() + (b * x).sum()

    np.testing.assert_allclose(tg.hvp(f)(x, v), 0.5 * (A + A.T) @ v, rtol=1e-13)


def test_hvp_equals_central_differences_of_the_gradient_on_a_pytree() -> None:
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(4, 10)), (rng.random((1, 10)) > 0.5).astype(float)
    params = nn.init_params([4, 5, 1], "he", seed=3)
    params.update({k: 0.1 * rng.normal(size=p.shape) for k, p in params.items() if k[0] == "b"})
    v = tree_map(lambda p: rng.normal(size=p.shape), params)
    product = tg.hvp(nn.model_cost)(params, X, Y, v)
    assert tree_flatten(product)[1] == tree_flatten(params)[1]

    eps = 1e-5
    gradient = tg.grad(nn.model_cost)
    plus = gradient(tree_map(lambda p, d: p + eps * d, params, v), X, Y)
    minus = gradient(tree_map(lambda p, d: p - eps * d, params, v), X, Y)
    numeric = tree_map(lambda a, b: (a - b) / (2 * eps), plus, minus)
    exact, estimate = tg.ravel_pytree(product)[0], tg.ravel_pytree(numeric)[0]
    error = np.linalg.norm(exact - estimate) / (np.linalg.norm(exact) + np.linalg.norm(estimate))
    assert error < 1e-7, error
    # symmetric: ⟨u, H v⟩ = ⟨v, H u⟩
    u = tree_map(lambda p: rng.normal(size=p.shape), params)
    assert tg.tree_vdot(u, product) == pytest.approx(
        tg.tree_vdot(v, tg.hvp(nn.model_cost)(params, X, Y, u)), rel=1e-12)


def test_hvp_of_another_argument_and_its_structure_check() -> None:
    rng = np.random.default_rng(3)
    X, w, v = rng.normal(size=(3, 6)), rng.normal(size=3), rng.normal(size=3)

    def f(X: np.ndarray, w: Any) -> tg.Tensor:
        return tg.softplus(w @ X).sum()  # Hessian: X diag(σ'(wX)) Xᵀ

    s = 1 / (1 + np.exp(-(w @ X)))
    expected = X @ (s * (1 - s) * (X.T @ v))
    np.testing.assert_allclose(tg.hvp(f, argnums=1)(X, w, v), expected, rtol=1e-13)
    with pytest.raises(ValueError, match="hvp: v must have the structure of argument 1"):
        tg.hvp(f, argnums=1)(X, w, [v, v])
