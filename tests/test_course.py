"""Tests for tinygrad_nn.course: the course's functions against the hand-derived formulas.

The backward functions take their numbers from the engine; here each is held against the
closed form a learner derives by hand, written out in numpy, and against the course's own test
cases and expected outputs.
"""

import numpy as np
import pytest

from tinygrad_nn import course, nn

rng = np.random.default_rng(42)


def hand_sigmoid(Z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-Z))


def course_backward_test_case() -> tuple[np.ndarray, np.ndarray, tuple]:  # type: ignore[type-arg]
    """The course's L_model_backward_test_case (np.random.seed(3) there; its own stream here)."""
    stream = np.random.RandomState(3)
    AL = stream.randn(1, 2)
    Y = np.array([[1, 0]])
    A1, W1, b1, Z1 = stream.randn(4, 2), stream.randn(3, 4), stream.randn(3, 1), stream.randn(3, 2)
    A2, W2, b2, Z2 = stream.randn(3, 2), stream.randn(1, 3), stream.randn(1, 1), stream.randn(1, 2)
    return AL, Y, (((A1, W1, b1), Z1), ((A2, W2, b2), Z2))


# --------------------------------------------------------------------------- activations


def test_activations_return_the_course_caches() -> None:
    Z = rng.normal(size=(3, 4))
    A, cache = course.sigmoid(Z)
    np.testing.assert_allclose(A, hand_sigmoid(Z), rtol=1e-15)
    assert cache is Z
    A, cache = course.relu(Z)
    assert np.array_equal(A, np.maximum(0, Z)) and cache is Z


def test_sigmoid_backward_is_ds_times_s_one_minus_s() -> None:
    Z, dA = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    s = hand_sigmoid(Z)
    np.testing.assert_allclose(course.sigmoid_backward(dA, Z), dA * s * (1 - s), rtol=1e-14)


def test_relu_backward_passes_dA_where_Z_is_positive() -> None:
    Z, dA = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    Z[0, 0] = 0.0  # the derivative at 0 is taken as 0, as the course's dZ[Z <= 0] = 0
    expected = np.array(dA, copy=True)
    expected[Z <= 0] = 0
    assert np.array_equal(course.relu_backward(dA, Z), expected)


# --------------------------------------------------------------------------- initialization


def test_initialize_parameters_deep_is_the_application_initialization() -> None:
    params = course.initialize_parameters_deep([12288, 20, 7, 5, 1])
    stream = np.random.RandomState(1)
    expected_W1 = stream.randn(20, 12288) / np.sqrt(12288)
    assert np.array_equal(params["W1"], expected_W1)
    assert [params[f"W{layer}"].shape for layer in range(1, 5)] == [
        (20, 12288), (7, 20), (5, 7), (1, 5)
    ]


def test_initialize_parameters_deep_reproduces_the_step_by_step_expected_output() -> None:
    params = course.initialize_parameters_deep([5, 4, 3], seed=3, scheme="small")
    np.testing.assert_allclose(
        params["W1"],
        [[0.01788628, 0.0043651, 0.00096497, -0.01863493, -0.00277388],
         [-0.00354759, -0.00082741, -0.00627001, -0.00043818, -0.00477218],
         [-0.01313865, 0.00884622, 0.00881318, 0.01709573, 0.00050034],
         [-0.00404677, -0.0054536, -0.01546477, 0.00982367, -0.01101068]],
        atol=5e-9,
    )
    assert np.array_equal(params["b2"], np.zeros((3, 1)))


def test_initialize_parameters_is_the_two_layer_initialization() -> None:
    params = course.initialize_parameters(3, 2, 1)
    stream = np.random.RandomState(1)
    assert np.array_equal(params["W1"], stream.randn(2, 3) * 0.01)
    assert np.array_equal(params["W2"], stream.randn(1, 2) * 0.01)


# --------------------------------------------------------------------------- forward


def test_forward_functions_keep_the_course_caches() -> None:
    A, W, b = rng.normal(size=(3, 2)), rng.normal(size=(1, 3)), rng.normal(size=(1, 1))
    Z, linear_cache = course.linear_forward(A, W, b)
    np.testing.assert_allclose(Z, np.dot(W, A) + b, rtol=1e-15)
    assert all(x is y for x, y in zip(linear_cache, (A, W, b)))
    A_next, (linear_cache, activation_cache) = course.linear_activation_forward(A, W, b, "sigmoid")
    np.testing.assert_allclose(A_next, hand_sigmoid(Z), rtol=1e-15)
    assert np.array_equal(activation_cache, Z) and linear_cache[1] is W
    with pytest.raises(ValueError, match="'sigmoid' or 'relu'"):
        course.linear_activation_forward(A, W, b, "tanh")


def test_L_model_forward_has_one_cache_per_layer() -> None:
    X = rng.normal(size=(5, 4))
    params = nn.init_params([5, 4, 3, 1], seed=1)
    AL, caches = course.L_model_forward(X, params)
    assert AL.shape == (1, 4) and len(caches) == 3
    np.testing.assert_allclose(AL, nn.forward(params, X).data, rtol=1e-15)


def test_compute_cost_is_the_course_value_as_a_0d_float() -> None:
    cost = course.compute_cost(np.array([[0.8, 0.9, 0.4]]), np.array([[1, 1, 0]]))
    assert isinstance(cost, float) and cost.shape == ()
    assert cost == pytest.approx(0.2797765635793422, rel=1e-15)


def test_compute_cost_is_finite_when_the_sigmoid_saturates() -> None:
    cost = course.compute_cost(np.array([[1.0, 0.0, 0.5]]), np.array([[1, 0, 1]]))
    assert cost == pytest.approx(np.log(2) / 3, rel=1e-15)  # where the copied answer gives NaN


# --------------------------------------------------------------------------- backward


def test_linear_backward_is_the_hand_derived_formula() -> None:
    m = 4
    dZ, A_prev = rng.normal(size=(3, m)), rng.normal(size=(5, m))
    W, b = rng.normal(size=(3, 5)), rng.normal(size=(3, 1))
    dA_prev, dW, db = course.linear_backward(dZ, (A_prev, W, b))
    np.testing.assert_allclose(dA_prev, np.dot(W.T, dZ), rtol=1e-14)
    np.testing.assert_allclose(dW, np.dot(dZ, A_prev.T) / m, rtol=1e-14)
    np.testing.assert_allclose(db, np.sum(dZ, axis=1, keepdims=True) / m, rtol=1e-14)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_linear_activation_backward_is_the_hand_derived_formula(activation: str) -> None:
    m = 6
    A_prev, W, b = rng.normal(size=(4, m)), rng.normal(size=(3, 4)), rng.normal(size=(3, 1))
    dA = rng.normal(size=(3, m))
    _, cache = course.linear_activation_forward(A_prev, W, b, activation)
    Z = np.dot(W, A_prev) + b
    dZ = dA * hand_sigmoid(Z) * (1 - hand_sigmoid(Z)) if activation == "sigmoid" else dA * (Z > 0)
    dA_prev, dW, db = course.linear_activation_backward(dA, cache, activation)
    np.testing.assert_allclose(dA_prev, np.dot(W.T, dZ), rtol=1e-13)
    np.testing.assert_allclose(dW, np.dot(dZ, A_prev.T) / m, rtol=1e-13)
    np.testing.assert_allclose(db, np.sum(dZ, axis=1, keepdims=True) / m, rtol=1e-13)


def test_L_model_backward_reproduces_the_course_expected_output() -> None:
    AL, Y, caches = course_backward_test_case()
    grads = course.L_model_backward(AL, Y, caches)
    assert sorted(grads) == ["dA0", "dA1", "dW1", "dW2", "db1", "db2"]
    np.testing.assert_allclose(
        grads["dW1"],
        [[0.41010002, 0.07807203, 0.13798444, 0.10502167], [0.0, 0.0, 0.0, 0.0],
         [0.05283652, 0.01005865, 0.01777766, 0.0135308]],
        atol=5e-9,
    )
    np.testing.assert_allclose(grads["db1"], [[-0.22007063], [0.0], [-0.02835349]], atol=5e-9)
    np.testing.assert_allclose(
        grads["dA1"],
        [[0.12913162, -0.44014127], [-0.14175655, 0.48317296], [0.01663708, -0.05670698]],
        atol=5e-9,
    )


def hand_L_model_backward(AL: np.ndarray, Y: np.ndarray, caches: list, hidden: str) -> dict:  # type: ignore[type-arg]
    """The course's backprop written out; hidden = "sigmoid" is the widely copied mistake."""
    L, m = len(caches), AL.shape[1]
    dA = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    grads = {}
    for layer in range(L, 0, -1):
        (A_prev, W, _), Z = caches[layer - 1]
        if layer == L or hidden == "sigmoid":
            dZ = dA * hand_sigmoid(Z) * (1 - hand_sigmoid(Z))
        else:
            dZ = dA * (Z > 0)
        grads[f"dW{layer}"] = np.dot(dZ, A_prev.T) / m
        grads[f"db{layer}"] = np.sum(dZ, axis=1, keepdims=True) / m
        dA = np.dot(W.T, dZ)
        grads[f"dA{layer - 1}"] = dA
    return grads


def test_L_model_backward_is_the_hand_derived_backprop_with_relu_hidden_layers() -> None:
    X = rng.normal(size=(6, 10))
    Y = (rng.random((1, 10)) > 0.5).astype(np.int64)
    params = nn.init_params([6, 5, 4, 1], "he", seed=0)
    AL, caches = course.L_model_forward(X, params)
    grads = course.L_model_backward(AL, Y, caches)
    expected = hand_L_model_backward(AL, Y, caches, hidden="relu")
    assert sorted(grads) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(grads[key], value, rtol=1e-12, atol=1e-15, err_msg=key)
    # The copied answer (sigmoid derivative in the hidden layers) gives other gradients.
    wrong = hand_L_model_backward(AL, Y, caches, hidden="sigmoid")
    assert not np.allclose(grads["dW1"], wrong["dW1"])


def test_L_model_backward_is_finite_when_the_sigmoid_saturates() -> None:
    X = np.array([[1.0, -1.0, 2.0]])
    params = {"W1": np.array([[1000.0]]), "b1": np.zeros((1, 1))}  # AL is exactly 0 or 1
    Y = np.array([[0, 0, 1]])
    AL, caches = course.L_model_forward(X, params)
    assert set(AL[0]) <= {0.0, 1.0}
    grads = course.L_model_backward(AL, Y, caches)
    assert all(np.isfinite(value).all() for value in grads.values())
    # dZ = AL - Y = [1, 0, 0]: dW = dZ X^T / m.
    np.testing.assert_allclose(grads["dW1"], [[1.0 / 3]], rtol=1e-15)


def test_update_parameters_makes_new_arrays() -> None:
    params = nn.init_params([3, 2, 1], seed=0)
    grads = {f"d{key}": np.ones_like(value) for key, value in params.items()}
    snapshot = {key: value.copy() for key, value in params.items()}
    updated = course.update_parameters(params, grads, 0.5)
    for key, value in params.items():
        assert np.array_equal(value, snapshot[key])
        np.testing.assert_allclose(updated[key], value - 0.5)


# --------------------------------------------------------------------------- models


def test_models_return_parameters_and_costs_every_100(capsys: pytest.CaptureFixture[str]) -> None:
    X = rng.normal(size=(4, 12))
    Y = (X[:1] > 0).astype(np.int64)
    params, costs = course.L_layer_model(X, Y, [4, 3, 1], learning_rate=0.1, num_iterations=201,
                                         print_cost=True)
    assert sorted(params) == ["W1", "W2", "b1", "b2"] and len(costs) == 3
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "Cost after iteration 0", "Cost after iteration 100", "Cost after iteration 200",
    ]
    _, costs = course.two_layer_model(X, Y, (4, 3, 1), num_iterations=101)
    assert len(costs) == 2
    assert capsys.readouterr().out == ""  # print_cost=False prints nothing, not even the last


def test_predict_prints_the_course_accuracy(capsys: pytest.CaptureFixture[str]) -> None:
    params = {"W1": np.array([[1.0, -1.0]]), "b1": np.zeros((1, 1))}
    X = np.array([[2.0, 0.0, 1.0], [1.0, 3.0, 0.0]])
    p = course.predict(X, np.array([[1, 1, 1]]), params)
    assert p.dtype == np.float64 and p.tolist() == [[1.0, 0.0, 1.0]]
    assert capsys.readouterr().out.strip() == f"Accuracy: {np.sum(p == 1) / 3}"


# --------------------------------------------------------------------------- course 2


def test_random_mini_batches_reproduce_the_notebook_test_case() -> None:
    state = np.random.get_state()
    np.random.seed(1)  # the notebook's random_mini_batches_test_case
    X = np.random.randn(12288, 148)
    Y = np.random.randn(1, 148) < 0.5
    after_data = np.random.get_state()
    batches = course.random_mini_batches(X, Y, 64)
    assert [b[0].shape for b in batches] == [(12288, 64), (12288, 64), (12288, 20)]
    assert [b[1].shape for b in batches] == [(1, 64), (1, 64), (1, 20)]
    np.testing.assert_allclose(batches[0][0][0][0:3], [0.90085595, -0.7612069, 0.2344157],
                               atol=5e-9)
    # the course's order: np.random.seed(seed); permutation(m); the global state is left alone
    order = np.random.RandomState(0).permutation(148)
    assert np.array_equal(np.concatenate([b[0] for b in batches], axis=1), X[:, order])
    assert np.array_equal(np.concatenate([b[1] for b in batches], axis=1), Y[:, order])
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state()[1:3], after_data[1:3]))
    np.random.set_state(state)
    exact = course.random_mini_batches(X[:, :128], Y[:, :128], 64, seed=3)
    assert [b[0].shape[1] for b in exact] == [64, 64]  # no empty last batch
