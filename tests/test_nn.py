"""Tests for tinygrad_nn.nn: initialization, model, costs, training, and the course's figures.

The course's exact figures need the real data: they run when $TINYGRAD_NN_DATA or the project's
data/ holds the two .h5 files (tests/conftest.py) and are skipped otherwise. Each 2500-iteration
run (deep and two-layer) happens once per session, in a module-scoped fixture shared by the tests
that read it; those tests, and the 1501-iteration stall run, are `slow` (``pytest -m slow``).
The first 201 iterations of the deep run, all that the float32 and numpy comparisons need, are
a fixture of their own, in the default run.
"""

import contextlib
import io
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_nn as tg
from tinygrad_nn import course, nn, optim
from tinygrad_nn.data import (
    CatDataset,
    flatten_images,
    load_catvnoncat,
    synthetic_catvnoncat,
)

DEEP_DIMS = [12288, 20, 7, 5, 1]
TWO_LAYER_DIMS = [12288, 7, 1]


# --------------------------------------------------------------------------- the course, in numpy
# A plain numpy transcription of the course's formulas: the oracle the engine is held against.


def numpy_forward(params: dict[str, np.ndarray], X: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    L = len(params) // 2
    A, caches = X, []
    for layer in range(1, L + 1):
        Z = np.dot(params[f"W{layer}"], A) + params[f"b{layer}"]
        caches.append((A, Z))
        A = 1 / (1 + np.exp(-Z)) if layer == L else np.maximum(0, Z)
    return A, caches


def numpy_cost(AL: np.ndarray, Y: np.ndarray) -> float:
    m = Y.shape[1]
    return float(np.squeeze(-1 / m * np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL))))


def numpy_gradients(params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> tuple[
    float, dict[str, np.ndarray]
]:
    """(cost, {"W1": dW1, …}) by the course's hand-derived backprop."""
    L, m = len(params) // 2, X.shape[1]
    AL, caches = numpy_forward(params, X)
    dA = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    grads = {}
    for layer in range(L, 0, -1):
        A_prev, Z = caches[layer - 1]
        if layer == L:
            s = 1 / (1 + np.exp(-Z))
            dZ = dA * s * (1 - s)
        else:
            dZ = np.where(Z > 0, dA, 0)
        grads[f"W{layer}"] = np.dot(dZ, A_prev.T) / m
        grads[f"b{layer}"] = np.sum(dZ, axis=1, keepdims=True) / m
        if layer > 1:  # the course also computes dA0, the gradient of X, and never reads it
            dA = np.dot(params[f"W{layer}"].T, dZ)
    return numpy_cost(AL, Y), grads


def numpy_train(params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray,
                learning_rate: float, num_iterations: int) -> tuple[dict[str, np.ndarray],
                                                                    list[float]]:
    costs = []
    for i in range(num_iterations):
        cost, grads = numpy_gradients(params, X, Y)
        params = {key: value - learning_rate * grads[key] for key, value in params.items()}
        if i % 100 == 0:
            costs.append(cost)
    return params, costs


def small_problem(seed: int = 0, m: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """A separable-ish (5, m) problem with labels (1, m)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(5, m))
    Y = (X[0:1] - 0.5 * X[1:2] + 0.3 * rng.normal(size=(1, m)) > 0).astype(np.int64)
    return X, Y


# --------------------------------------------------------------------------- init_params


def test_init_params_are_the_legacy_stream_and_leave_global_state_alone() -> None:
    state = np.random.get_state()
    params = nn.init_params(DEEP_DIMS[:1] + [6, 4, 1], "scaled", seed=1)
    after = np.random.get_state()
    assert all(np.array_equal(a, b) for a, b in zip(state[1:3], after[1:3]))
    stream = np.random.RandomState(1)  # the same numbers as np.random.seed(1)
    dims = [12288, 6, 4, 1]
    for layer in range(1, 4):
        expected = stream.randn(dims[layer], dims[layer - 1]) / np.sqrt(dims[layer - 1])
        assert np.array_equal(params[f"W{layer}"], expected)
        assert np.array_equal(params[f"b{layer}"], np.zeros((dims[layer], 1)))
    assert list(params) == ["W1", "b1", "W2", "b2", "W3", "b3"]


@pytest.mark.parametrize(
    "scheme, scale",
    [("scaled", lambda n: 1 / np.sqrt(n)), ("he", lambda n: np.sqrt(2 / n)),
     ("xavier", lambda n: np.sqrt(1 / n)), ("small", lambda n: 0.01)],
)
def test_init_schemes_scale_the_same_draws(scheme: str, scale: Any) -> None:
    params = nn.init_params([30, 8, 1], scheme, seed=4)  # type: ignore[arg-type]
    stream = np.random.RandomState(4)
    for layer, (n, n_prev) in enumerate([(8, 30), (1, 8)], start=1):
        np.testing.assert_allclose(
            params[f"W{layer}"], stream.randn(n, n_prev) * scale(n_prev), rtol=1e-15
        )


def test_init_small_seed_3_is_the_step_by_step_expected_output() -> None:
    params = nn.init_params([5, 4, 3], "small", seed=3)
    np.testing.assert_allclose(
        params["W1"][0], [0.01788628, 0.0043651, 0.00096497, -0.01863493, -0.00277388], atol=5e-9
    )
    assert params["W2"].shape == (3, 4) and params["b2"].shape == (3, 1)


def test_init_params_float32_is_the_float64_draw_rounded() -> None:
    p64 = nn.init_params([10, 3, 1], seed=2)
    p32 = nn.init_params([10, 3, 1], seed=2, dtype=np.float32)
    for key in p64:
        assert p32[key].dtype == np.float32
        assert np.array_equal(p32[key], p64[key].astype(np.float32))


@pytest.mark.parametrize(
    "kwargs, fragment",
    [({"layer_dims": [5]}, "at least 2"), ({"layer_dims": [5, 0, 1]}, "positive"),
     ({"layer_dims": [5, 1], "scheme": "glorot"}, "unknown scheme"),
     ({"layer_dims": [5, 1], "dtype": np.int32}, "float dtype")],
)
def test_init_params_rejects_bad_arguments(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        nn.init_params(**kwargs)


def test_deep_dims_have_four_layers_of_weights() -> None:
    params = nn.init_params(DEEP_DIMS)
    assert len(params) // 2 == 4
    assert nn.layer_dims(params) == DEEP_DIMS


# --------------------------------------------------------------------------- shapes


def test_layer_dims_rejects_broken_params() -> None:
    params = nn.init_params([4, 3, 1])
    with pytest.raises(ValueError, match="expected W1, b1"):
        nn.layer_dims({"W1": params["W1"]})
    with pytest.raises(ValueError, match=r"W2 has shape \(1, 2\)"):
        nn.layer_dims({**params, "W2": np.zeros((1, 2))})
    with pytest.raises(ValueError, match="one dtype"):
        nn.layer_dims({**params, "b2": np.zeros((1, 1), np.float32)})


def test_check_shapes_explains_the_fix() -> None:
    params = nn.init_params([4, 3, 1])
    X, Y = np.zeros((4, 7)), np.zeros((1, 7))
    assert nn.check_shapes(params, X, Y) == [4, 3, 1]
    # (m,) would broadcast right, (m, 1) into an (m, m) matrix: each message says its own case
    with pytest.raises(ValueError, match=r"Y = Y.reshape\(1, -1\)") as flat:
        nn.check_shapes(params, X, np.zeros(7))
    assert "(m, m)" not in str(flat.value) and "one row" in str(flat.value)
    with pytest.raises(ValueError, match=r"Y = Y.reshape\(1, -1\)") as column:
        nn.check_shapes(params, X, np.zeros((7, 1)))
    assert "A column of labels broadcasts" in str(column.value) and "(m, m)" in str(column.value)
    with pytest.raises(ValueError, match=r"pass X.T"):
        nn.check_shapes(params, X.T)
    with pytest.raises(ValueError, match="flatten_images"):
        nn.check_shapes(params, np.zeros((7, 2, 2, 1)))
    with pytest.raises(ValueError, match=r"X.reshape\(-1, 1\)"):
        nn.forward(params, np.zeros(4))


def test_train_rejects_a_flat_label_vector_before_training() -> None:
    X, Y = small_problem()
    with pytest.raises(ValueError, match=r"Y.reshape\(1, -1\)"):
        nn.train(nn.init_params([5, 3, 1]), X, Y[0], num_iterations=1)


# --------------------------------------------------------------------------- the model


def test_forward_and_logits_are_the_course_forward() -> None:
    X, _ = small_problem()
    params = nn.init_params([5, 4, 3, 1], seed=5)
    expected, caches = numpy_forward(params, X)
    np.testing.assert_allclose(nn.forward(params, X).data, expected, rtol=1e-14)
    np.testing.assert_allclose(nn.logits(params, X).data, caches[-1][1], rtol=1e-14)


@pytest.mark.parametrize("missing", ["W4", "b2"])
def test_forward_logits_and_the_cost_check_the_parameter_dict(missing: str) -> None:
    # Without W4 the net used to answer as a 3-layer one; without b2 it was a bare KeyError.
    X, Y = small_problem()
    params = nn.init_params([5, 4, 3, 2, 1], seed=5)
    del params[missing]
    calls = [lambda: nn.forward(params, X), lambda: nn.logits(params, X),
             lambda: nn.model_cost(params, X, Y), lambda: tg.grad(nn.model_cost)(params, X, Y),
             lambda: tg.jit(nn.forward)(params, X)]
    for call in calls:
        with pytest.raises(ValueError, match=rf"missing \['{missing}'\]"):
            call()
    with pytest.raises(ValueError, match=r"X has shape \(4, 40\); expected \(n_x, m\) = \(5, m\)"):
        nn.forward(nn.init_params([5, 1]), X[:4])


def test_forward_activations_are_selectable() -> None:
    X, _ = small_problem()
    params = nn.init_params([5, 4, 1], seed=5)
    hidden = np.tanh(params["W1"] @ X + params["b1"])
    Z = params["W2"] @ hidden + params["b2"]
    np.testing.assert_allclose(nn.forward(params, X, "tanh", "linear").data, Z, rtol=1e-14)
    with pytest.raises(ValueError, match="unknown activation"):
        nn.forward(params, X, "sine")


def test_predict_and_accuracy() -> None:
    params = {"W1": np.array([[1.0, -1.0]]), "b1": np.zeros((1, 1))}
    X = np.array([[2.0, 0.0, 1.0, 0.0], [1.0, 3.0, 1.0, 0.0]])
    predictions = nn.predict(params, X)
    assert predictions.dtype == np.int64
    # Z = 0 gives AL = 0.5, which is not > 0.5: non-cat, as the course.
    assert predictions.tolist() == [[1, 0, 0, 0]]
    assert nn.accuracy(params, X, np.array([[1, 0, 1, 0]])) == 0.75


# --------------------------------------------------------------------------- costs


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(1e-12, 1 - 1e-12), min_size=1, max_size=12),
    st.randoms(use_true_random=False),
)
def test_bce_equals_the_course_formula_where_finite(probabilities: list[float], rnd: Any) -> None:
    AL = np.array([probabilities])
    Y = np.array([[rnd.randint(0, 1) for _ in probabilities]])
    cost = nn.binary_cross_entropy(AL, Y).data
    np.testing.assert_allclose(cost, numpy_cost(AL, Y), rtol=1e-13, atol=1e-15)


def test_bce_is_finite_when_the_sigmoid_saturates() -> None:
    AL = np.array([[0.0, 1.0, 1.0, 0.0, 0.3]])
    Y = np.array([[1, 1, 0, 0, 1]])
    value, gradient = tg.value_and_grad(nn.binary_cross_entropy)(AL, Y)
    assert np.isfinite(value) and np.isfinite(gradient).all()
    tiny, epsneg = np.finfo(np.float64).smallest_subnormal, np.finfo(np.float64).epsneg
    expected = -(np.log(tiny) + np.log(epsneg) + np.log(0.3)) / 5
    np.testing.assert_allclose(value, expected, rtol=1e-14)
    # At AL exactly 1 with Y = 1 (and 0 with Y = 0) the course's formula is 0 · log 0 = NaN.
    with np.errstate(divide="ignore", invalid="ignore"):
        assert np.isnan(numpy_cost(AL, Y))
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        nn.binary_cross_entropy(np.array([[1.5]]), np.array([[1]]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-30, 30), min_size=1, max_size=12), st.randoms(use_true_random=False))
def test_bce_with_logits_equals_the_course_formula(scores: list[float], rnd: Any) -> None:
    Z = np.array([scores])
    Y = np.array([[rnd.randint(0, 1) for _ in scores]])
    value, gradient = tg.value_and_grad(nn.binary_cross_entropy_with_logits)(Z, Y)
    AL = 1 / (1 + np.exp(-Z))
    # The course's formula loses digits to cancellation in 1 - AL (and in AL, far left): its
    # own error is about eps / min(AL, 1 - AL); the logits formula has no such loss.
    course_error = np.finfo(np.float64).eps * np.max(1 / np.minimum(AL, 1 - AL))
    np.testing.assert_allclose(value, numpy_cost(AL, Y), rtol=1e-13, atol=course_error)
    np.testing.assert_allclose(gradient, (AL - Y) / Z.shape[1], rtol=1e-12, atol=1e-15)


def test_bce_with_logits_never_overflows() -> None:
    Z = np.array([[-1000.0, 1000.0, -1000.0, 1000.0, 800.0]])
    Y = np.array([[1, 0, 0, 1, 1]])
    value, gradient = tg.value_and_grad(nn.binary_cross_entropy_with_logits)(Z, Y)
    np.testing.assert_allclose(value, 2000 / 5, rtol=1e-15)
    np.testing.assert_allclose(gradient, [[-0.2, 0.2, 0.0, 0.0, 0.0]], atol=1e-300)


def test_costs_keep_float32() -> None:
    Z = np.array([[0.3, -2.0]], dtype=np.float32)
    Y = np.array([[1, 0]])  # int64 labels must not upcast the cost
    assert nn.binary_cross_entropy_with_logits(Z, Y).dtype == np.float32
    assert nn.binary_cross_entropy(1 / (1 + np.exp(-Z)), Y).dtype == np.float32
    with pytest.raises(ValueError, match="reshape"):
        nn.binary_cross_entropy_with_logits(Z, Y[0])


def test_model_cost_gradients_pass_the_gradient_check() -> None:
    X, Y = small_problem(m=12)
    params = nn.init_params([5, 4, 3, 1], "he", seed=2)
    check = tg.check_grads(nn.model_cost, (params, X, Y.astype(np.float64)))
    assert check.max_error < 1e-7, check


def test_engine_gradients_equal_the_course_backprop() -> None:
    X, Y = small_problem()
    params = nn.init_params([5, 4, 3, 1], seed=7)
    cost, grads = tg.value_and_grad(nn.model_cost)(params, X, Y)
    expected_cost, expected = numpy_gradients(params, X, Y)
    np.testing.assert_allclose(cost, expected_cost, rtol=1e-14)
    for key in params:
        np.testing.assert_allclose(grads[key], expected[key], rtol=1e-12, atol=1e-16)


# --------------------------------------------------------------------------- train


def test_train_equals_the_course_loop_and_prints_its_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    X, Y = small_problem()
    params = nn.init_params([5, 4, 3, 1], seed=3)
    snapshot = {key: value.copy() for key, value in params.items()}
    trained, costs = nn.train(params, X, Y, 0.05, 250, print_cost=True)
    expected_params, expected_costs = numpy_train(params, X, Y, 0.05, 250)
    assert len(costs) == 3 and all(isinstance(c, float) for c in costs)
    np.testing.assert_allclose(costs, expected_costs, rtol=1e-12)
    for key in params:
        np.testing.assert_allclose(trained[key], expected_params[key], rtol=1e-11, atol=1e-15)
        assert np.array_equal(params[key], snapshot[key])  # not mutated
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "Cost after iteration 0", "Cost after iteration 100", "Cost after iteration 200",
        "Cost after iteration 249",
    ]
    assert lines[0] == f"Cost after iteration 0: {np.squeeze(np.float64(costs[0]))}"


@settings(max_examples=40, deadline=None)
@given(
    shape=st.sampled_from([(3, 5), (4, 1), (7,), ()]),
    dtype=st.sampled_from([np.float64, np.float32]),
    learning_rate=st.floats(1e-4, 2.0),
    seed=st.integers(0, 2**16),
)
def test_sgd_update_rounds_exactly_as_p_minus_rate_times_g(
    shape: tuple[int, ...], dtype: Any, learning_rate: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    params = {"W": rng.normal(size=shape).astype(dtype), "b": rng.normal(size=shape).astype(dtype)}
    grads = {key: rng.normal(size=shape).astype(dtype) for key in params}
    expected = {key: params[key] - dtype(learning_rate) * grads[key] for key in params}
    for donate in (False, True):
        given_grads = {key: value.copy() for key, value in grads.items()}
        updated = nn.sgd_update(params, given_grads, learning_rate, donate_grads=donate)
        for key in params:
            assert updated[key].dtype == dtype and updated[key].shape == shape
            assert np.array_equal(updated[key], expected[key])  # bit for bit, not close


def test_sgd_update_is_optim_sgd_and_modifies_neither_params_nor_grads() -> None:
    params = {"W": np.ones((2, 3)), "b": np.zeros((2, 1))}
    grads = {"W": np.full((2, 3), 2.0), "b": np.full((2, 1), 4.0)}
    kept = {key: value.copy() for key, value in grads.items()}
    updated = nn.sgd_update(params, grads, 0.5)
    assert np.array_equal(updated["W"], np.zeros((2, 3)))
    assert np.array_equal(updated["b"], np.full((2, 1), -2.0))
    assert all(np.array_equal(grads[key], kept[key]) for key in grads)
    # donated: the same numbers written into the gradient arrays, the parameters left alone
    donated = nn.sgd_update(params, grads, 0.5, donate_grads=True)
    assert all(donated[key] is grads[key] for key in grads)
    assert all(np.array_equal(donated[key], updated[key]) for key in grads)
    assert (params["W"] == 1.0).all() and (params["b"] == 0.0).all()
    # the one SGD of the library: optim.sgd's update, on a large tree (leaf by leaf) too
    big = {"W": np.ones((300, 300)), "b": np.zeros((300, 1))}
    big_grads = {key: np.full(value.shape, 0.25) for key, value in big.items()}
    expected, _ = optim.sgd(0.5).update(big_grads, (), big)
    assert all(np.array_equal(nn.sgd_update(big, big_grads, 0.5)[key], expected[key])
               for key in big)


def test_sgd_update_donates_only_gradients_that_can_take_the_result() -> None:
    params = {"W": np.arange(6.0).reshape(2, 3), "b": np.ones((2, 1))}
    expected = {"W": params["W"] - 0.5 * 2.0, "b": params["b"] - 0.5 * 2.0}

    def check(grads: dict[str, Any], reused: bool) -> None:
        kept = {key: value.copy() for key, value in params.items()}
        updated = nn.sgd_update(params, grads, 0.5, donate_grads=True)
        assert all(np.array_equal(updated[key], expected[key]) for key in params)
        assert all(np.array_equal(params[key], kept[key]) for key in params)
        assert all((updated[key] is grads[key]) == reused for key in params)

    check({"W": np.full((2, 3), 2.0), "b": np.full((2, 1), 2.0)}, reused=True)
    # one array the gradient of two keys (d(W1 + W2)/dW1 is d/dW2): a write would change both
    shared = np.full((2, 3), 2.0)
    both = {"W1": params["W"], "W2": params["W"] + 1}
    updated = nn.sgd_update(both, {"W1": shared, "W2": shared}, 0.5, donate_grads=True)
    assert np.array_equal(updated["W1"], params["W"] - 1)
    assert np.array_equal(updated["W2"], params["W"])
    # a read-only gradient, another dtype, a Tensor: new arrays, the same numbers
    read_only = np.full((2, 3), 2.0)
    read_only.flags.writeable = False
    check({"W": read_only, "b": np.full((2, 1), 2.0)}, reused=False)
    check({"W": np.full((2, 3), 2.0, dtype=np.float32), "b": np.full((2, 1), 2.0)}, reused=False)
    check({"W": tg.Tensor(np.full((2, 3), 2.0)), "b": np.full((2, 1), 2.0)}, reused=False)
    # a gradient that is a view of a parameter: written into, it would change the parameter
    view_params = {"W": np.full((2, 3), 2.0)}
    updated = nn.sgd_update(view_params, {"W": view_params["W"][:]}, 0.5, donate_grads=True)
    assert np.array_equal(updated["W"], np.ones((2, 3))) and (view_params["W"] == 2.0).all()


def test_sgd_update_keeps_float32_under_a_float64_rate_or_gradient() -> None:
    params = {"W": np.ones((2, 2), dtype=np.float32)}
    for grad_dtype in (np.float32, np.float64):
        grads = {"W": np.ones((2, 2), dtype=grad_dtype)}
        for donate in (False, True):
            updated = nn.sgd_update(params, grads, np.float64(0.1), donate_grads=donate)
            assert updated["W"].dtype == np.float32
            assert updated["W"][0, 0] == np.float32(1) - np.float32(0.1)


def test_sgd_update_rejects_mismatched_trees() -> None:
    params = {"W1": np.ones((3, 2)), "b1": np.zeros((3, 1))}
    with pytest.raises(ValueError, match=r"missing \['b1'\], extra \['db1'\]"):
        nn.sgd_update(params, {"W1": np.ones((3, 2)), "db1": np.zeros((3, 1))}, 0.1)
    # A (3,) bias gradient would broadcast into a (3, 3) "bias": refused, naming both shapes.
    with pytest.raises(ValueError, match=r"grads leaf 'b1' has shape \(3,\); expected .*\(3, 1\)"):
        nn.sgd_update(params, {"W1": np.ones((3, 2)), "b1": np.zeros(3)}, 0.1)
    with pytest.raises(TypeError, match=r"params leaf 'W1' is ndarray \(dtype int64\)"):
        nn.sgd_update({"W1": np.ones((3, 2), dtype=np.int64)}, {"W1": np.ones((3, 2))}, 0.1)


def test_sgd_update_names_a_learning_rate_that_is_not_a_number() -> None:
    params = {"W1": np.ones((3, 2))}
    with pytest.raises(TypeError, match=r"sgd_update: learning_rate must be a number, got '0\.01'"):
        nn.sgd_update(params, params, "0.01")  # type: ignore[arg-type]


def test_train_never_overwrites_an_iterate_a_callback_kept() -> None:
    # train donates its gradients' memory to the new parameters; what it handed out stays put.
    X, Y = small_problem()
    kept: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = []

    def callback(i: int, cost: float, params: dict[str, np.ndarray]) -> bool:
        kept.append((params, {key: value.copy() for key, value in params.items()}))
        return False

    start = nn.init_params([5, 4, 1], seed=3)
    start_copy = {key: value.copy() for key, value in start.items()}
    nn.train(start, X, Y, 0.1, 20, callback=callback)
    assert len(kept) == 20
    for params, snapshot in kept:
        assert all(np.array_equal(params[key], snapshot[key]) for key in params)
    assert all(np.array_equal(start[key], start_copy[key]) for key in start)
    assert not np.array_equal(kept[0][0]["W1"], kept[-1][0]["W1"])


def test_train_callback_sees_every_iteration_and_can_stop() -> None:
    X, Y = small_problem()
    seen: list[tuple[int, float]] = []

    def callback(i: int, cost: float, params: dict[str, np.ndarray]) -> bool:
        seen.append((i, cost))
        assert params["W1"].shape == (3, 5)
        return i == 4

    _, costs = nn.train(nn.init_params([5, 3, 1]), X, Y, 0.1, 100, callback=callback)
    assert [i for i, _ in seen] == [0, 1, 2, 3, 4]
    assert costs == [seen[0][1]]


def test_train_in_float32_stays_float32() -> None:
    X, Y = small_problem()
    params32 = nn.init_params([5, 4, 1], seed=3, dtype=np.float32)
    trained32, costs32 = nn.train(params32, X.astype(np.float32), Y, 0.1, 201)
    assert all(value.dtype == np.float32 for value in trained32.values())
    _, costs64 = nn.train(nn.init_params([5, 4, 1], seed=3), X, Y, 0.1, 201)
    np.testing.assert_allclose(costs32, costs64, rtol=1e-5)
    # A float64 X or a numpy float64 rate is converted, not upcasting the parameters.
    trained, _ = nn.train(params32, X, Y, np.float64(0.1), 2)
    assert all(value.dtype == np.float32 for value in trained.values())


def test_train_shows_a_tqdm_bar_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    X, Y = small_problem()
    nn.train(nn.init_params([5, 3, 1]), X, Y, 0.1, 101, print_cost=True, progress=True)
    captured = capsys.readouterr()
    assert "Cost after iteration 100" in captured.out
    assert "101/101" in captured.err or "it/s" in captured.err or "train" in captured.err


def test_train_rejects_bad_settings() -> None:
    X, Y = small_problem()
    with pytest.raises(ValueError, match="learning_rate > 0"):
        nn.train(nn.init_params([5, 3, 1]), X, Y, learning_rate=0.0)


def test_course_models_are_nn_train_from_the_course_initialization() -> None:
    data = synthetic_catvnoncat()
    X = flatten_images(data.train_x_orig[:30])
    Y = data.train_y[:, :30]
    params, costs = course.L_layer_model(X, Y, [12288, 4, 3, 1], num_iterations=3)
    expected, expected_costs = nn.train(nn.init_params([12288, 4, 3, 1]), X, Y, 0.0075, 3)
    assert costs == expected_costs
    assert all(np.array_equal(params[key], expected[key]) for key in expected)
    params, costs = course.two_layer_model(X, Y, (12288, 3, 1), num_iterations=3)
    expected, expected_costs = nn.train(nn.init_params([12288, 3, 1], "small"), X, Y, 0.0075, 3)
    assert costs == expected_costs
    assert all(np.array_equal(params[key], expected[key]) for key in expected)


# --------------------------------------------------------------------------- the course's figures


class Run(NamedTuple):
    params: dict[str, np.ndarray]
    costs: list[float]
    printed: list[str]
    formula_costs: list[float]  # the course's log(AL) formula on the same iterates


@pytest.fixture(scope="module")
def real(course_data_dir: Path) -> CatDataset:  # see conftest.py: skipped without the data
    return load_catvnoncat(course_data_dir)


def run_course_figure(real: CatDataset, dims: list[int], scheme: nn.Scheme,
                      num_iterations: int = 2500) -> Run:
    """One training run on the real data, printing as the course, with the course's cost formula
    evaluated (in plain numpy) on the parameters of every recorded iteration."""
    X = flatten_images(real.train_x_orig)
    params = nn.init_params(dims, scheme, seed=1)
    formula_costs = [numpy_cost(numpy_forward(params, X)[0], real.train_y)]

    def record_formula(i: int, cost: float, updated: dict[str, np.ndarray]) -> None:
        if (i + 1) % 100 == 0 and i + 1 < num_iterations:  # the parameters of iteration i + 1
            formula_costs.append(numpy_cost(numpy_forward(updated, X)[0], real.train_y))

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        trained, costs = nn.train(params, X, real.train_y, 0.0075, num_iterations,
                                  print_cost=True, callback=record_formula)
    return Run(trained, costs, out.getvalue().splitlines(), formula_costs)


@pytest.fixture(scope="module")
def deep_run(real: CatDataset) -> Run:
    return run_course_figure(real, DEEP_DIMS, "scaled")


@pytest.fixture(scope="module")
def deep_start(real: CatDataset) -> list[float]:
    """The deep run's costs at iterations 0, 100 and 200: its first 201 iterations, the same
    numbers as the first three of ``deep_run.costs``."""
    X = flatten_images(real.train_x_orig)
    return nn.train(nn.init_params(DEEP_DIMS, "scaled", seed=1), X, real.train_y, 0.0075, 201)[1]


@pytest.fixture(scope="module")
def two_layer_run(real: CatDataset) -> Run:
    return run_course_figure(real, TWO_LAYER_DIMS, "small")


def accuracies(real: CatDataset, params: dict[str, np.ndarray],
               dtype: Any = np.float64) -> tuple[float, float]:
    return (nn.accuracy(params, flatten_images(real.train_x_orig, dtype), real.train_y),
            nn.accuracy(params, flatten_images(real.test_x_orig, dtype), real.test_y))


@pytest.mark.slow
def test_deep_net_reproduces_the_course(real: CatDataset, deep_run: Run) -> None:
    assert len(deep_run.costs) == 25
    assert f"{deep_run.costs[0]:.6f}" == "0.771749"
    assert f"{deep_run.costs[24]:.6f}" == "0.092878"
    assert deep_run.printed[0].startswith("Cost after iteration 0: 0.771749")
    assert deep_run.printed[24].startswith("Cost after iteration 2400: 0.092878")
    assert deep_run.printed[25].startswith("Cost after iteration 2499: 0.0884399")
    train, test = accuracies(real, deep_run.params)
    assert train == pytest.approx(206 / 209, abs=1e-15)  # 0.9856
    assert test == pytest.approx(0.80, abs=1e-15)


@pytest.mark.slow
def test_two_layer_net_reproduces_the_course(real: CatDataset, two_layer_run: Run) -> None:
    assert f"{two_layer_run.costs[0]:.6f}" == "0.693050"
    assert f"{two_layer_run.costs[24]:.6f}" == "0.048555"
    train, test = accuracies(real, two_layer_run.params)
    assert train == 1.0
    assert test == pytest.approx(0.72, abs=1e-15)


@pytest.mark.slow
def test_stable_cost_equals_the_course_formula_along_both_runs(deep_run: Run,
                                                              two_layer_run: Run) -> None:
    for run in (deep_run, two_layer_run):
        assert len(run.formula_costs) == len(run.costs)
        deviation = np.max(np.abs(np.subtract(run.costs, run.formula_costs)))
        assert deviation < 1e-13, deviation  # the course loop, offline: <= 6e-15


def test_training_equals_the_course_numpy_loop_on_the_real_data(real: CatDataset,
                                                                deep_start: list[float]) -> None:
    X = flatten_images(real.train_x_orig)
    params = nn.init_params(DEEP_DIMS, seed=1)
    _, costs = numpy_train(params, X, real.train_y, 0.0075, 201)
    np.testing.assert_allclose(deep_start, costs, rtol=1e-12)


@pytest.mark.slow
def test_the_first_iterations_are_those_of_the_full_run(deep_start: list[float],
                                                         deep_run: Run) -> None:
    assert deep_start == deep_run.costs[:3]  # what the default run checks holds for the course's


@pytest.mark.slow
def test_small_initialization_stalls_near_0_644(real: CatDataset, deep_run: Run) -> None:
    # Measured costs at 1000, 1500, 2000, 2400: 0.645368, 0.644223, 0.644037, 0.643985 — the
    # entropy of the labels (72 cats in 209: 0.643974), i.e. the net learns only the cat fraction.
    X = flatten_images(real.train_x_orig)
    params = nn.init_params(DEEP_DIMS, "small", seed=1)
    stalled, costs = nn.train(params, X, real.train_y, 0.0075, 1501)
    assert abs(costs[-1] - 0.644) < 5e-4
    assert costs[-6] - costs[-1] < 2e-3  # flat over the last 500 iterations
    assert nn.predict(stalled, X).max() == 0  # "never a cat": 137 / 209 right
    assert deep_run.costs[15] < 0.2  # the course's initialization, at the same iteration


def test_deep_net_in_float32(real: CatDataset, deep_start: list[float]) -> None:
    # End to end in float32 the first few hundred iterations agree with float64; the full run
    # (measured) ends at cost 0.088557 (float64: 0.092878), train 0.9856, test 0.78 or 0.80
    # depending on the machine's BLAS (float64: 0.80) — not the same figures everywhere, so only
    # the early agreement is asserted.
    X = flatten_images(real.train_x_orig, np.float32)
    params = nn.init_params(DEEP_DIMS, seed=1, dtype=np.float32)
    trained, costs = nn.train(params, X, real.train_y, 0.0075, 201)
    assert all(value.dtype == np.float32 for value in trained.values())
    np.testing.assert_allclose(costs, deep_start, atol=1e-5)


def test_train_jitted_and_eager_give_the_same_numbers_and_leave_params_alone() -> None:
    X, Y = small_problem()
    params = nn.init_params([5, 4, 3, 1], seed=2)
    before = {k: v.copy() for k, v in params.items()}
    jitted, jitted_costs = nn.train(params, X, Y, 0.1, 300, record_every=10)
    eager, eager_costs = nn.train(params, X, Y, 0.1, 300, record_every=10, jit=False)
    assert jitted_costs == eager_costs  # bit for bit: the same ops in the same order
    assert all(jitted[k].tobytes() == eager[k].tobytes() for k in params)
    assert all(np.array_equal(params[k], before[k]) for k in params)  # donated: our own copies
    assert all(jitted[k] is not params[k] for k in params)
