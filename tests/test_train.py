"""nn.train for a cost of your own (with or without a key), the costs it records with their
iterations, and its clear stops: a cost that diverges, a learning rate that is not a number."""

import math
import re
from typing import Any

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import course, nn, optim, random
from tinygrad_nn.data import flatten_images, synthetic_catvnoncat
from tinygrad_nn.pytree import tree_flatten


def three_classes(m: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    X = np.random.default_rng(seed).normal(size=(2, m))
    return X, (X[0] > 0).astype(np.int64) + (X[1] > 0)


def nested_params(seed: int = 1) -> dict[str, Any]:
    """A tree of another shape than the network's W1, b1, …: the loop does not care."""
    rng = np.random.default_rng(seed)
    return {"hidden": {"W": rng.normal(size=(8, 2)) * 0.5, "b": np.zeros((8, 1))},
            "out": [rng.normal(size=(3, 8)) * 0.5, np.zeros((3, 1))]}


def softmax_cost(params: Any, X: Any, Y: Any) -> tg.Tensor:
    A = tg.tanh(nn.linear(X, params["hidden"]["W"], params["hidden"]["b"]))
    return nn.softmax_cross_entropy(nn.linear(A, *params["out"]), Y)


def dropout_cost(params: Any, key: Any, X: Any, Y: Any) -> tg.Tensor:
    A = nn.dropout(key, tg.tanh(nn.linear(X, params["hidden"]["W"], params["hidden"]["b"])), 0.7)
    return nn.softmax_cross_entropy(nn.linear(A, *params["out"]), Y)


def same_trees(a: Any, b: Any, exact: bool = True) -> bool:
    (a_leaves, a_def), (b_leaves, b_def) = tree_flatten(a), tree_flatten(b)
    return a_def == b_def and all(
        np.array_equal(x, y) if exact else np.allclose(x, y, rtol=1e-12, atol=1e-15)
        for x, y in zip(a_leaves, b_leaves))


# --------------------------------------------------------------------------- your own cost


def test_your_own_cost_trains_as_the_loop_a_user_writes() -> None:
    X, Y = three_classes()
    params, adam = nested_params(), optim.adam(0.05)
    trained, costs = nn.train(params, X, Y, num_iterations=30, cost=softmax_cost,
                              optimizer=adam, record_every=10, jit=False)
    expected, state, expected_costs = params, adam.init(params), []
    for i in range(30):
        value, grads = tg.value_and_grad(softmax_cost)(expected, X, Y)
        expected, state = adam.update(grads, state, expected)
        if i % 10 == 0:
            expected_costs.append(float(value))
    assert costs == expected_costs and costs.iterations == [0, 10, 20]
    assert same_trees(trained, expected)
    jitted, jitted_costs = nn.train(params, X, Y, num_iterations=30, cost=softmax_cost,
                                    optimizer=adam, record_every=10)
    np.testing.assert_allclose(jitted_costs, expected_costs, rtol=1e-12)
    assert same_trees(jitted, expected, exact=False)
    assert same_trees(params, nested_params())  # not modified
    assert costs[-1] < costs[0]


def test_a_key_means_the_cost_takes_one_split_for_each_step() -> None:
    X, Y = three_classes()
    params, key = nested_params(), random.key(4)
    trained, costs = nn.train(params, X, Y, 0.5, 12, cost=dropout_cost, key=key,
                              record_every=1, jit=False)
    expected, step_keys, expected_costs = params, key, []
    for _ in range(12):
        step_keys, step_key = random.split(step_keys)
        value, grads = tg.value_and_grad(dropout_cost)(expected, step_key, X, Y)
        expected = nn.sgd_update(expected, grads, 0.5)
        expected_costs.append(float(value))
    assert costs == expected_costs and same_trees(trained, expected)
    assert len(set(costs)) == len(costs)  # a new mask each step
    jitted, jitted_costs = nn.train(params, X, Y, 0.5, 12, cost=dropout_cost, key=key,
                                    record_every=1)
    assert jitted_costs == costs and same_trees(jitted, trained)


def test_with_mini_batches_the_key_shuffles_each_epoch_and_keys_each_step() -> None:
    X, Y = three_classes(m=50)
    params, adam, key = nested_params(), optim.adam(0.02), random.key(7)
    trained, costs = nn.train(params, X, Y, num_iterations=6, cost=dropout_cost,
                              optimizer=adam, batch_size=16, key=key, record_every=2, jit=False)
    expected, state, expected_costs = params, adam.init(params), []
    for epoch in range(6):
        key, epoch_key = random.split(key)
        batches = nn.mini_batches(epoch_key, X, Y, 16)  # the built-in cost's order, too
        total = 0.0
        for step_key, (X_batch, Y_batch) in zip(random.split(epoch_key, len(batches)), batches):
            value, grads = tg.value_and_grad(dropout_cost)(expected, step_key, X_batch, Y_batch)
            expected, state = adam.update(grads, state, expected)
            total += float(value) * X_batch.shape[1]
        if epoch % 2 == 0:
            expected_costs.append(total / 50)
    assert costs == expected_costs and costs.iterations == [0, 2, 4] and costs.unit == "epoch"
    assert same_trees(trained, expected)


def test_the_built_in_cost_is_one_use_of_the_loop() -> None:
    X, Y = three_classes()
    params = nn.init_params([2, 6, 3], "he", seed=2)
    built_in, built_in_costs = nn.train(params, X, Y, 0.3, 40, record_every=5)
    own, own_costs = nn.train(params, X, Y, 0.3, 40, record_every=5,
                              cost=lambda p, X, Y: nn.model_cost(p, X, Y))
    assert own_costs == built_in_costs and same_trees(own, built_in)
    # and with mini-batches: the same shuffles (the built-in cost takes no key)
    key = random.key(1)
    batched, batched_costs = nn.train(params, X, Y, 0.3, 5, batch_size=16, key=key)
    own_batched, own_batched_costs = nn.train(
        params, X, Y, 0.3, 5, batch_size=16, key=key,
        cost=lambda p, key, X, Y: nn.model_cost(p, X, Y))
    assert own_batched_costs == batched_costs and same_trees(own_batched, batched)


def test_train_checks_what_only_makes_sense_with_the_built_in_cost() -> None:
    X, Y = three_classes()
    with pytest.raises(TypeError, match="cost must be a function"):
        nn.train(nested_params(), X, Y, 0.1, 1, cost="softmax")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hidden_activation is for the network's own cost"):
        nn.train(nested_params(), X, Y, 0.1, 1, cost=softmax_cost, hidden_activation="tanh")
    with pytest.raises(ValueError, match="need both batch_size and a key"):
        nn.train(nested_params(), X, Y, 0.1, 1, cost=softmax_cost, batch_size=8)
    with pytest.raises(ValueError, match="need both batch_size and a key"):  # the network's
        nn.train(nn.init_params([2, 3]), X, Y, 0.1, 1, key=random.key(0))  # cost takes no key


# --------------------------------------------------------------------------- recorded costs


def test_costs_say_which_iteration_each_belongs_to() -> None:
    X, Y = three_classes()
    _, costs = nn.train(nn.init_params([2, 4, 3]), X, Y, 0.1, 250)
    assert isinstance(costs, list) and isinstance(costs, nn.RecordedCosts)
    assert len(costs) == 3 and costs.iterations == [0, 100, 200] and costs.unit == "iteration"
    assert costs[-1] == costs[2] and all(isinstance(c, float) for c in costs)
    assert np.squeeze(costs).shape == (3,)  # as the course plots them
    # the course's models keep returning the course's plain list
    data = synthetic_catvnoncat()
    X_cats, Y_cats = flatten_images(data.train_x_orig[:20]), data.train_y[:, :20]
    _, course_costs = course.L_layer_model(X_cats, Y_cats, [12288, 3, 1], num_iterations=2)
    assert type(course_costs) is list and len(course_costs) == 1


# --------------------------------------------------------------------------- clear stops


def binary_problem(m: int = 40) -> tuple[np.ndarray, np.ndarray]:
    X = np.random.default_rng(0).normal(size=(5, m))
    return X, (X[:1] > 0).astype(np.float64)


@pytest.mark.parametrize("jit", [True, False])
def test_a_diverging_learning_rate_stops_with_what_was_reached(jit: bool) -> None:
    X, Y = binary_problem()
    params = nn.init_params([5, 3, 1])
    with np.errstate(all="ignore"), pytest.raises(nn.TrainingDivergedError) as stopped:
        nn.train(params, X, Y, 1e3, 500, record_every=10, jit=jit)
    error = stopped.value
    assert isinstance(error, FloatingPointError)
    i = error.iteration
    assert 1 < i < 500
    message = str(error)
    assert re.search(rf"the cost is (nan|inf) at iteration {i}:", message)
    assert "tg.detect_anomaly()" in message and "error.params" in message
    # the parameters of iteration i - 1, the last whose cost was finite, and the costs before
    reached, costs = nn.train(params, X, Y, 1e3, i - 1, record_every=10, jit=jit)
    assert same_trees(error.params, reached)
    assert error.costs == costs and error.costs.iterations == list(range(0, i, 10))
    assert all(math.isfinite(c) for c in error.costs)
    # and from there, op by op under detect_anomaly, the op that makes it is found
    with np.errstate(all="ignore"), tg.detect_anomaly(), pytest.raises(
            FloatingPointError, match=r"detect_anomaly: op '.*' produced"):
        nn.train(error.params, X, Y, 1e3, 2, jit=False)


def test_nan_in_the_data_or_a_diverging_batch_says_where() -> None:
    X, Y = binary_problem()
    X[2, 7] = np.nan
    with np.errstate(invalid="ignore"), pytest.raises(
            nn.TrainingDivergedError, match=r"the cost is nan at iteration 0: training stopped\. "
            r"Before any update") as stopped:
        nn.train(nn.init_params([5, 3, 1]), X, Y, 0.1, 10)
    assert same_trees(stopped.value.params, nn.init_params([5, 3, 1]))
    assert stopped.value.costs == []
    X, Y = binary_problem(m=48)
    with np.errstate(all="ignore"), pytest.raises(
            nn.TrainingDivergedError, match=r"at epoch \d+, mini-batch \d of 3:") as stopped:
        nn.train(nn.init_params([5, 3, 1]), X, Y, 1e4, 500, batch_size=16, key=random.key(0))
    assert all(np.isfinite(leaf).all() for leaf in stopped.value.params.values())
    # Jitted without a callback, a step writes its parameters over the last ones (donated): the
    # parameters kept are those steps again from the start, equal to the ones kept otherwise.
    for other in ({"jit": False}, {"callback": lambda i, cost, params: None}):
        with np.errstate(all="ignore"), pytest.raises(nn.TrainingDivergedError) as again:
            nn.train(nn.init_params([5, 3, 1]), X, Y, 1e4, 500, batch_size=16,
                     key=random.key(0), **other)  # type: ignore[arg-type]
        assert str(again.value) == str(stopped.value) and again.value.costs == stopped.value.costs
        assert same_trees(again.value.params, stopped.value.params)


@pytest.mark.parametrize("rate", ["0.01", [0.01], True])
def test_a_learning_rate_that_is_not_a_number_is_named_by_train(rate: Any) -> None:
    X, Y = binary_problem()
    with pytest.raises(TypeError, match=rf"train: learning_rate must be a number, got "
                       rf"{re.escape(repr(rate))}"):
        nn.train(nn.init_params([5, 3, 1]), X, Y, rate, 1)
