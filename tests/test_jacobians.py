"""Forward mode and Jacobians: jvp against central differences and jax.jvp, jacfwd = jacrev =
jax.jacobian in shapes and values on pytrees, the Hessian of an MLP cost against differences of
its gradient, hvp; each eagerly and under jit on a second draw."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import nn


def jax_x64() -> Any:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


def ordered(tree: Any, like: Any) -> Any:
    """``tree`` (JAX's: dicts sorted by key) with the dict order of ``like`` (ours: as built)."""
    if isinstance(like, dict):
        return {k: ordered(tree[k], v) for k, v in like.items()}
    if isinstance(like, (list, tuple)):
        return type(like)(ordered(t, v) for t, v in zip(tree, like))
    return tree


def leaves(tree: Any) -> list[np.ndarray]:
    return [np.asarray(x) for x in tg.tree_flatten(tree)[0]]


def assert_trees_close(got: Any, expected: Any, rtol: float = 1e-12, atol: float = 1e-13
                       ) -> None:
    assert tg.tree_flatten(got)[1] == tg.tree_flatten(expected)[1]
    for g, e in zip(leaves(got), leaves(expected)):
        assert type(g) is np.ndarray and g.shape == e.shape, (g.shape, e.shape)
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol)


def model(p: dict[str, Any], pair: tuple[Any, Any]) -> dict[str, Any]:
    """A pytree in, a pytree out: tanh layers, a reduction, an index, a product of inputs."""
    x, scale = pair
    hidden = tg.tanh(p["W"] @ x + p["b"])
    return {"out": (hidden * scale).sum(axis=0), "norm": (hidden ** 2).sum() * p["b"][0, 0],
            "first": [hidden[1:, 0] * scale]}


def model_jax(p: dict[str, Any], pair: tuple[Any, Any]) -> dict[str, Any]:
    import jax.numpy as jnp
    x, scale = pair
    hidden = jnp.tanh(p["W"] @ x + p["b"])
    return {"out": (hidden * scale).sum(axis=0), "norm": (hidden ** 2).sum() * p["b"][0, 0],
            "first": [hidden[1:, 0] * scale]}


def model_args(rng: np.random.Generator) -> tuple[Any, ...]:
    p = {"W": rng.normal(size=(3, 2)), "b": rng.normal(size=(3, 1))}
    return p, (rng.normal(size=(2, 4)), np.array(rng.normal()))


def like(tree: Any, rng: np.random.Generator) -> Any:
    return tg.tree_map(lambda x: rng.normal(size=np.shape(x)), tree)


def shifted(tree: Any, direction: Any, eps: float) -> Any:
    return tg.tree_map(lambda x, d: x + eps * d, tree, direction)


# --- jvp ----------------------------------------------------------------------------------------
def test_jvp_equals_central_differences_on_pytrees() -> None:
    rng = np.random.default_rng(0)
    primals = model_args(rng)
    tangents = like(primals, rng)
    out, tangent_out = tg.jvp(model, primals, tangents)
    assert_trees_close(out, tg.tree_map(lambda t: t.data, model(*primals)))
    eps = 1e-6
    plus = model(*shifted(primals, tangents, eps))
    minus = model(*shifted(primals, tangents, -eps))
    numeric = tg.tree_map(lambda a, b: (a.data - b.data) / (2 * eps), plus, minus)
    assert_trees_close(tangent_out, numeric, rtol=1e-7, atol=1e-8)


@pytest.mark.slow
def test_jvp_equals_jax_jvp() -> None:
    jax = jax_x64()
    rng = np.random.default_rng(1)
    primals = model_args(rng)
    tangents = like(primals, rng)
    out, tangent_out = tg.jvp(model, primals, tangents)
    jax_out, jax_tangent = jax.jit(lambda p, t: jax.jvp(model_jax, p, t))(primals, tangents)
    assert_trees_close(out, ordered(jax_out, out))
    assert_trees_close(tangent_out, ordered(jax_tangent, out))


def test_jvp_under_jit_on_a_second_draw_and_with_aux() -> None:
    def f(primals: Any, tangents: Any) -> Any:
        return tg.jvp(lambda p, pair: (model(p, pair), {"seen": pair[1] * 2.0}), primals,
                      tangents, has_aux=True)

    jitted = tg.jit(f)
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        primals = model_args(rng)
        tangents = like(primals, rng)
        assert_trees_close(jitted(primals, tangents), f(primals, tangents))
    _, tangent_out, aux = f(primals, tangents)
    assert_trees_close(aux, {"seen": 2.0 * primals[1][1]})
    assert_trees_close(tangent_out, tg.jvp(model, primals, tangents)[1])


def test_linearize_runs_f_once_and_its_jvp_is_linear() -> None:
    calls = []

    def f(x: Any) -> Any:
        calls.append(1)
        return tg.tanh(x) * x

    x, t, u = np.random.default_rng(2).normal(size=(3, 5))
    out, f_jvp = tg.linearize(f, x)
    assert len(calls) == 1
    np.testing.assert_allclose(out, np.tanh(x) * x, rtol=1e-15)
    np.testing.assert_allclose(f_jvp(t) + f_jvp(u), f_jvp(t + u), rtol=1e-12)
    np.testing.assert_allclose(f_jvp(t), tg.jvp(f, (x,), (t,))[1], rtol=1e-12)
    assert len(calls) == 2  # jvp ran f once more; f_jvp never


def test_jvp_of_an_output_independent_of_the_input_and_of_an_integer_output() -> None:
    x, t = np.ones(3), np.arange(3.0)
    _, tangent = tg.jvp(lambda x: {"c": np.ones(2), "i": tg.argmax(x), "y": x * 2.0}, (x,), (t,))
    np.testing.assert_array_equal(tangent["c"], np.zeros(2))
    np.testing.assert_array_equal(tangent["y"], 2 * t)
    assert tangent["i"] == 0


def test_jvp_errors() -> None:
    with pytest.raises(ValueError, match="tangents must have the primals' structure"):
        tg.jvp(tg.exp, (np.ones(3),), (np.ones(2),))
    with pytest.raises(ValueError, match="1 primals but 2 tangents"):
        tg.jvp(tg.exp, (np.ones(3),), (np.ones(3), np.ones(3)))
    with pytest.raises(TypeError, match="primals and tangents must be tuples"):
        tg.jvp(tg.exp, np.ones(3), np.ones(3))


def test_grad_of_jvp_and_vjp_fn_of_a_traced_cotangent() -> None:
    rng = np.random.default_rng(3)
    x, t = rng.normal(size=4), rng.normal(size=4)

    def directional(x: Any) -> Any:  # tᵀ∇(Σ tanh x²) = Σ 2x·(1 - tanh²x²)·t
        return tg.jvp(lambda x: tg.tanh(x * x).sum(), (x,), (t,))[1]

    expected = tg.grad(lambda x: (2 * x * (1 - tg.tanh(x * x) ** 2) * t).sum())(x)
    np.testing.assert_allclose(tg.grad(directional)(x), expected, rtol=1e-12)

    def pulled(x: Any, u: Any) -> Any:  # vjp_fn of a cotangent traced by jit: recorded
        return tg.vjp(tg.tanh, x)[1](u)[0]

    jitted = tg.jit(pulled)
    for seed in (4, 5):
        a, u = np.random.default_rng(seed).normal(size=(2, 4))
        np.testing.assert_allclose(jitted(a, u), (1 - np.tanh(a) ** 2) * u, rtol=1e-12)


# --- jacobians ----------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("argnums", [0, 1, (0, 1), (1,)])
def test_jacfwd_equals_jacrev_equals_jax_jacobian_on_pytrees(argnums: Any) -> None:
    jax = jax_x64()
    args = model_args(np.random.default_rng(6))
    expected = jax.jit(jax.jacrev(model_jax, argnums=argnums))(*args)
    for transform in (tg.jacfwd, tg.jacrev, tg.jacobian):
        jac = transform(model, argnums=argnums)(*args)
        assert_trees_close(jac, ordered(expected, jac))


def test_jacobian_shapes_are_output_shape_then_input_shape() -> None:
    p, pair = model_args(np.random.default_rng(7))
    jac = tg.jacrev(model)(p, pair)
    assert jac["out"]["W"].shape == (4, 3, 2) and jac["norm"]["b"].shape == (3, 1)
    assert jac["first"][0]["W"].shape == (2, 3, 2)
    both = tg.jacfwd(model, argnums=(0, 1))(p, pair)
    assert both["out"][1][0].shape == (4, 2, 4) and both["out"][1][1].shape == (4,)


@pytest.mark.parametrize("transform", [tg.jacfwd, tg.jacrev])
def test_a_jacobian_under_jit_on_a_second_draw_and_with_aux(transform: Any) -> None:
    def f(p: Any, pair: Any) -> Any:
        return transform(lambda p: (model(p, pair), pair[1] + 1.0), has_aux=True)(p)

    jitted = tg.jit(f)
    for seed in (8, 9):
        args = model_args(np.random.default_rng(seed))
        jac, aux = jitted(*args)
        assert_trees_close((jac, aux), f(*args))
        assert_trees_close(jac, tg.jacrev(model)(*args))
        np.testing.assert_allclose(aux, args[1][1] + 1.0)


def test_jacobian_of_a_vector_function_is_the_matrix() -> None:
    A = np.random.default_rng(10).normal(size=(4, 3))
    x = np.ones(3)
    for transform in (tg.jacfwd, tg.jacrev):
        np.testing.assert_allclose(transform(lambda x: A @ x)(x), A, rtol=1e-14)
        np.testing.assert_allclose(transform(lambda x: tg.tanh(A @ x))(x),
                                   (1 - np.tanh(A @ x) ** 2)[:, None] * A, rtol=1e-12)


# --- hessian and hvp ---------------------------------------------------------------------------
def mlp_problem(seed: int) -> tuple[Any, ...]:
    rng = np.random.default_rng(seed)
    params = nn.init_params([3, 4, 1], "he", seed=seed)
    params = {k: v + 0.1 * rng.normal(size=v.shape) for k, v in params.items()}
    X = rng.normal(size=(3, 8))
    return params, X, (rng.random((1, 8)) > 0.5).astype(float)


def mlp_cost(params: dict[str, Any], X: Any, Y: Any) -> Any:
    """A smooth cost (tanh hidden layer), so that differences of the gradient converge."""
    A = tg.tanh(params["W1"] @ X + params["b1"])
    return nn.binary_cross_entropy_with_logits(params["W2"] @ A + params["b2"], Y)


def test_hessian_of_an_mlp_cost_equals_differences_of_its_gradient() -> None:
    params, X, Y = mlp_problem(0)
    H = tg.hessian(mlp_cost)(params, X, Y)
    gradient = tg.grad(mlp_cost)
    eps = 1e-6
    for name, p in params.items():
        for index in np.ndindex(p.shape):
            step = {k: np.zeros_like(v) for k, v in params.items()}
            step[name][index] = 1.0
            plus, minus = gradient(shifted(params, step, eps), X, Y), gradient(
                shifted(params, step, -eps), X, Y)
            for other in params:
                column = (plus[other] - minus[other]) / (2 * eps)
                np.testing.assert_allclose(H[other][name][(..., *index)], column, rtol=1e-5,
                                           atol=1e-8)
    for a in params:  # symmetric: H[a][b] is H[b][a] transposed
        for b in params:
            flat_ab = H[a][b].reshape(params[a].size, params[b].size)
            flat_ba = H[b][a].reshape(params[b].size, params[a].size)
            np.testing.assert_allclose(flat_ab, flat_ba.T, rtol=1e-10, atol=1e-13)


@pytest.mark.slow
def test_hessian_equals_jax_hessian_and_hvp_is_the_hessian_times_v() -> None:
    jax = jax_x64()
    import jax.numpy as jnp

    def cost_jax(params: Any, X: Any, Y: Any) -> Any:
        Z = params["W2"] @ jnp.tanh(params["W1"] @ X + params["b1"]) + params["b2"]
        return jnp.mean(jnp.logaddexp(0.0, Z) - Y * Z)

    params, X, Y = mlp_problem(1)
    H = tg.hessian(mlp_cost)(params, X, Y)
    assert_trees_close(H, ordered(jax.jit(jax.hessian(cost_jax))(params, X, Y), H), rtol=1e-10,
                       atol=1e-13)
    v = like(params, np.random.default_rng(2))
    product = tg.hvp(mlp_cost)(params, X, Y, v)
    for a in params:
        expected = sum(np.tensordot(H[a][b], v[b], axes=v[b].ndim) for b in params)
        np.testing.assert_allclose(product[a], expected, rtol=1e-10, atol=1e-13)


def test_hessian_and_hvp_under_jit_on_a_second_draw() -> None:
    hessian, hvp = tg.jit(tg.hessian(mlp_cost)), tg.jit(tg.hvp(mlp_cost))
    v = like(mlp_problem(0)[0], np.random.default_rng(3))
    for seed in (0, 1):
        args = mlp_problem(seed)
        assert_trees_close(hessian(*args), tg.hessian(mlp_cost)(*args))
        assert_trees_close(hvp(*args, v), tg.hvp(mlp_cost)(*args, v))


def test_hvp_of_several_arguments() -> None:
    def f(x: Any, y: Any) -> Any:
        return (x * x * y).sum() + (y ** 3).sum()

    x, y, u, w = np.random.default_rng(4).normal(size=(4, 3))
    hx, hy = tg.hvp(f, argnums=(0, 1))(x, y, (u, w))
    np.testing.assert_allclose(hx, 2 * y * u + 2 * x * w, rtol=1e-12)
    np.testing.assert_allclose(hy, 2 * x * u + 6 * y * w, rtol=1e-12)
    with pytest.raises(ValueError, match="hvp: v must have the structure of argument"):
        tg.hvp(f, argnums=(0, 1))(x, y, u)

