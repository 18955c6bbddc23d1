"""tinygrad_nn.nn beyond one sigmoid: many classes, L2 and dropout, mini-batches, optimizers in
train, and a training run that Ctrl-C stops cleanly.

Layout reminder: examples are columns, so logits are (K, m) and the class axis is 0.
"""

import os
import signal
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Tensor, nn, optim, random


def three_blobs(m: int = 90, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(2, m) points around three centres, and their class indices (m,)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(m) % 3
    centres = np.array([[0.0, 3.0, -3.0], [3.0, -2.0, -2.0]])
    return centres[:, labels] + rng.normal(size=(2, m)), labels


def binary_problem(m: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(5, m))
    return X, (X[0:1] - 0.5 * X[1:2] > 0).astype(np.float64)


# --------------------------------------------------------------------------- one_hot


def test_one_hot_puts_a_one_in_each_column() -> None:
    Y = nn.one_hot(np.array([2, 0, 1, 2]), 3)
    assert Y.dtype == np.float64 and Y.shape == (3, 4)
    assert Y.tolist() == [[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 1]]
    assert nn.one_hot(np.array([1]), 2, np.float32).dtype == np.float32
    traced = nn.one_hot(Tensor(np.array([2, 0, 1, 2])), 3)  # by the ops: a program recomputes it
    assert type(traced) is Tensor and np.array_equal(traced.numpy(), Y)
    graph = str(tg.make_graph(lambda labels: nn.one_hot(labels, 3))(np.array([2, 0, 1])))
    assert "equal" in graph and "astype" in graph


@pytest.mark.parametrize(
    "labels, num_classes, error, fragment",
    [(np.array([0, 3]), 3, ValueError, r"class index 3, outside \[0, 3\)"),
     (np.array([-1, 0]), 3, ValueError, r"class index -1, outside \[0, 3\)"),
     (np.array([0.0, 1.0]), 3, TypeError, "dtype float64; expected integers"),
     (np.array([[0, 1]]), 3, ValueError, r"labels have shape \(1, 2\); expected class indices"),
     (np.array([0, 1]), 0, ValueError, "num_classes must be a positive integer")],
)
def test_one_hot_rejects_what_is_not_class_indices(labels: np.ndarray, num_classes: int,
                                                   error: type, fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        nn.one_hot(labels, num_classes)


# --------------------------------------------------------------------------- softmax cross-entropy


def reference_cross_entropy(Z: np.ndarray, labels: np.ndarray) -> float:
    shifted = Z - Z.max(axis=0)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=0))
    return float(-log_probabilities[labels, np.arange(Z.shape[1])].mean())


def test_softmax_cross_entropy_is_the_formula_and_its_gradient_is_softmax_minus_y() -> None:
    rng = np.random.default_rng(1)
    Z, labels = rng.normal(size=(4, 9)) * 3, rng.integers(0, 4, size=9)
    value, gradient = tg.value_and_grad(nn.softmax_cross_entropy)(Z, labels)
    np.testing.assert_allclose(value, reference_cross_entropy(Z, labels), rtol=1e-14)
    Y = nn.one_hot(labels, 4)
    np.testing.assert_allclose(gradient, (tg.softmax(Z).numpy() - Y) / 9, rtol=1e-13, atol=1e-17)
    # one-hot columns give the same; probability columns are allowed (soft labels)
    assert nn.softmax_cross_entropy(Z, Y).item() == pytest.approx(float(value), rel=1e-15)
    soft = np.full((4, 9), 0.25)
    assert nn.softmax_cross_entropy(Z, soft).item() == pytest.approx(
        float(-(soft * tg.log_softmax(Z).numpy()).sum(axis=0).mean()), rel=1e-14)
    assert tg.check_grads(nn.softmax_cross_entropy, (Z, labels), argnums=0).max_error < 2e-7


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_cross_entropy_is_finite_and_exact_at_plus_minus_1000(dtype: type) -> None:
    Z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 0.0]], dtype)
    labels = np.array([1, 1, 0])
    with tg.detect_anomaly(), np.errstate(over="raise", invalid="raise"):
        value, gradient = tg.value_and_grad(nn.softmax_cross_entropy)(Z, labels)
    assert value.dtype == gradient.dtype == dtype
    np.testing.assert_allclose(value, (2000 + 0 + np.log(2)) / 3, rtol=1e-6)
    np.testing.assert_allclose(gradient, np.array([[1, 0, -0.5], [-1, 0, 0.5]]) / 3, atol=1e-7)


@pytest.mark.slow
def test_softmax_cross_entropy_equals_torch_to_1e_12_including_1000_logits() -> None:
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install "
                                "torch==2.13.0, the CPU wheel) to compare with it")
    rng = np.random.default_rng(2)
    Z = rng.normal(size=(10, 32)) * 5
    Z[0, :8], Z[3, 8:16], Z[:, 16] = 1000.0, -1000.0, np.linspace(-1000, 1000, 10)
    labels = rng.integers(0, 10, size=32)
    logits = torch.tensor(Z.T, requires_grad=True)  # PyTorch holds examples in rows
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor(labels))
    expected.backward()
    for targets in (labels, nn.one_hot(labels, 10)):
        value, gradient = tg.value_and_grad(nn.softmax_cross_entropy)(Z, targets)
        np.testing.assert_allclose(value, expected.item(), rtol=1e-12)
        np.testing.assert_allclose(gradient, logits.grad.numpy().T, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "labels, fragment",
    [(np.zeros((1, 5), np.int64), r"Y.ravel\(\)"),
     (np.zeros((5, 3)), r"one example per column: pass Y.T"),
     (np.zeros(5), "dtype float64; expected integers"),
     (np.array([0, 1, 2, 3, 4]), r"class index 3, outside \[0, 3\)")],
)
def test_softmax_cross_entropy_names_the_label_forms(labels: np.ndarray, fragment: str) -> None:
    with pytest.raises((ValueError, TypeError), match=fragment):
        nn.softmax_cross_entropy(np.zeros((3, 5)), labels)
    with pytest.raises(ValueError, match=r"logits have shape \(15,\); expected \(K, m\)"):
        nn.softmax_cross_entropy(np.zeros(15), np.zeros(15, np.int64))


# --------------------------------------------------------------------------- a K-unit network


def test_forward_predict_and_cost_of_a_k_unit_net_use_softmax_and_argmax() -> None:
    X, labels = three_blobs()
    params = nn.init_params([2, 5, 3], seed=2)
    Z = nn.logits(params, X).numpy()
    probabilities = nn.forward(params, X).numpy()
    np.testing.assert_allclose(probabilities.sum(axis=0), 1.0, rtol=1e-15)
    np.testing.assert_allclose(probabilities, tg.softmax(Z).numpy(), rtol=1e-15)
    predictions = nn.predict(params, X)
    assert predictions.shape == (90,) and predictions.dtype == np.int64
    assert np.array_equal(predictions, Z.argmax(axis=0))
    assert nn.model_cost(params, X, labels).item() == nn.softmax_cross_entropy(Z, labels).item()
    # one unit still means sigmoid
    binary = nn.init_params([2, 5, 1], seed=2)
    np.testing.assert_allclose(nn.forward(binary, X).numpy(),
                               tg.sigmoid(nn.logits(binary, X)).numpy(), rtol=1e-15)


def test_accuracy_of_a_k_unit_net_is_never_thresholded_sigmoids() -> None:
    # A 10-unit net whose logits are the inputs: its predictions are argmax(X) exactly. The old
    # predict thresholded ten sigmoids against labels (1, m) and reported 0.10.
    X = np.random.default_rng(3).normal(size=(10, 50))
    params = {"W1": np.eye(10), "b1": np.zeros((10, 1))}
    labels = X.argmax(axis=0)
    labels[:5] = (labels[:5] + 1) % 10  # five wrong out of fifty
    assert nn.accuracy(params, X, labels) == 0.9
    assert nn.accuracy(params, X, nn.one_hot(labels, 10)) == 0.9
    with pytest.raises(ValueError, match=r"expected class indices \(m,\) = \(50,\) or one-hot"):
        nn.accuracy(params, X, labels.reshape(1, -1))
    with pytest.raises(ValueError, match="not one-hot"):
        nn.accuracy(params, X, np.full((10, 50), 0.1))
    binary = {"W1": np.ones((1, 10)), "b1": np.zeros((1, 1))}
    with pytest.raises(ValueError, match=r"Y holds 7, not a binary label.*K classes need a last "
                       "layer of K units"):
        nn.accuracy(binary, X, np.full((1, 50), 7))
    with pytest.raises(ValueError, match=r"labels of 10 classes need a last layer of 10 units"):
        nn.accuracy(binary, X, nn.one_hot(labels, 10))
    with pytest.raises(ValueError, match="neither 0 nor 1"):
        nn.accuracy(binary, X, np.full((1, 50), 0.5))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_train_learns_three_classes_from_indices_or_one_hot_alike(dtype: type) -> None:
    X, labels = three_blobs()
    X = X.astype(dtype)
    params = nn.init_params([2, 8, 3], "he", seed=1, dtype=dtype)
    trained, costs = nn.train(params, X, labels, 0.5, 201)
    assert all(p.dtype == dtype for p in trained.values())
    assert costs[0] > 1.0 > 0.2 > costs[-1]
    assert nn.accuracy(trained, X, labels) > 0.95
    same, same_costs = nn.train(params, X, nn.one_hot(labels, 3), 0.5, 201)
    assert same_costs == costs and all(np.array_equal(same[k], trained[k]) for k in trained)


# --------------------------------------------------------------------------- L2 and dropout


def test_l2_penalty_is_the_course_term_over_the_weights_only() -> None:
    params = nn.init_params([4, 3, 2, 1], seed=5)
    params["b1"] = np.full((3, 1), 10.0)  # biases are not penalized
    expected = 0.7 / (2 * 20) * sum(np.sum(np.square(params[k])) for k in ("W1", "W2", "W3"))
    assert nn.l2_penalty(params, 0.7, 20).item() == pytest.approx(expected, rel=1e-15)
    gradient = tg.grad(nn.l2_penalty)(params, 0.7, 20)
    for key in params:
        expected_gradient = 0.7 / 20 * params[key] if key[0] == "W" else 0.0
        np.testing.assert_allclose(gradient[key], expected_gradient, rtol=1e-15)
    params32 = nn.init_params([4, 3, 1], dtype=np.float32)
    assert nn.l2_penalty(params32, 0.1, 5).dtype == np.float32
    with pytest.raises(ValueError, match="expected weights W1, W2"):
        nn.l2_penalty({"b1": np.zeros((3, 1))}, 0.1, 5)
    with pytest.raises(ValueError, match=r"m .* must be a positive integer"):
        nn.l2_penalty(params, 0.1, 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dropout_keeps_each_unit_with_probability_keep_prob_and_rescales(dtype: type) -> None:
    A = np.ones((200, 300), dtype)
    key = random.key(4)
    dropped = nn.dropout(key, A, 0.8).numpy()
    assert dropped.dtype == dtype
    kept = dropped != 0
    assert abs(kept.mean() - 0.8) < 0.01
    np.testing.assert_allclose(dropped[kept], 1 / 0.8, rtol=1e-7)  # inverted: mean stays 1
    assert np.array_equal(nn.dropout(key, A, 0.8).numpy(), dropped)  # same key, same mask
    assert not np.array_equal(nn.dropout(random.split(key)[0], A, 0.8).numpy(), dropped)
    assert nn.dropout(key, A, 1.0) is A
    gradient = tg.grad(lambda a: nn.dropout(key, a, 0.8).sum())(A)
    np.testing.assert_allclose(gradient, dropped, rtol=1e-7)  # the mask / keep_prob
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match=r"keep_prob must be in \(0, 1\]"):
            nn.dropout(key, A, bad)


def regularized_cost(params: dict[str, Any], key: np.ndarray, X: np.ndarray,
                     Y: np.ndarray) -> Tensor:
    """The course's regularized net: dropout on the hidden layers, L2 on the weights."""
    keys = random.split(key, 2)
    A: Any = X
    for layer, layer_key in zip((1, 2), keys):
        A = nn.dropout(layer_key, tg.relu(nn.linear(A, params[f"W{layer}"], params[f"b{layer}"])),
                       keep_prob=0.7)
    Z = nn.linear(A, params["W3"], params["b3"])
    m = X.shape[1]
    return nn.binary_cross_entropy_with_logits(Z, Y) + nn.l2_penalty(params, 0.5, m)


def test_a_cost_with_dropout_and_l2_passes_check_grads_with_its_key_fixed() -> None:
    X, Y = binary_problem(m=12)
    params = nn.init_params([5, 6, 4, 1], "he", seed=3)
    # Non-zero biases: a column that dropout emptied would otherwise sit at ReLU's kink, 0,
    # where a central difference sees half a slope.
    rng = np.random.default_rng(4)
    params.update({k: 0.1 + 0.1 * rng.random(v.shape) for k, v in params.items() if k[0] == "b"})
    key = random.key(11)
    check = tg.check_grads(regularized_cost, (params, key, X, Y), argnums=0)
    assert check.max_error < 1e-7, check
    # a new key is a new mask: another cost, and another gradient
    grads = tg.grad(regularized_cost)(params, key, X, Y)
    other = tg.grad(regularized_cost)(params, random.split(key)[1], X, Y)
    assert not np.array_equal(grads["W1"], other["W1"])


# --------------------------------------------------------------------------- mini-batches


def test_mini_batches_shuffle_columns_and_keep_x_and_y_together() -> None:
    X = np.arange(2 * 10.0).reshape(2, 10)
    Y = X[:1] * 100  # each label is its column's x0 · 100
    batches = nn.mini_batches(random.key(0), X, Y, 4)
    assert [b[0].shape for b in batches] == [(2, 4), (2, 4), (2, 2)]  # the last one smaller
    assert [b[1].shape for b in batches] == [(1, 4), (1, 4), (1, 2)]
    columns = np.concatenate([b[0] for b in batches], axis=1)
    assert sorted(columns[0].tolist()) == X[0].tolist()  # every example once
    assert not np.array_equal(columns, X)  # in a new order
    assert all(np.array_equal(b[1], b[0][:1] * 100) for b in batches)
    again = nn.mini_batches(random.key(0), X, Y, 4)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(batches, again))
    indices = nn.mini_batches(random.key(0), X, np.arange(10), 4)  # class indices (m,)
    assert [b[1].shape for b in indices] == [(4,), (4,), (2,)]
    assert len(nn.mini_batches(random.key(0), X, Y, 64)) == 1
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        nn.mini_batches(random.key(0), X, Y, 0)
    with pytest.raises(ValueError, match=r"X has shape \(2, 10\) and Y \(1, 9\)"):
        nn.mini_batches(random.key(0), X, Y[:, :9], 4)


def test_train_with_an_optimizer_sgd_is_the_default_bit_for_bit() -> None:
    X, Y = binary_problem()
    params = nn.init_params([5, 4, 1], seed=3)
    default, costs = nn.train(params, X, Y, 0.1, 150)
    explicit, explicit_costs = nn.train(params, X, Y, num_iterations=150,
                                        optimizer=optim.sgd(0.1))
    assert explicit_costs == costs
    assert all(np.array_equal(explicit[k], default[k]) for k in params)
    with pytest.raises(ValueError, match="the optimizer carries its own learning rate"):
        nn.train(params, X, Y, 0.1, 1, optimizer=optim.sgd(0.1))
    with pytest.raises(ValueError, match="need both batch_size and a key"):
        nn.train(params, X, Y, 0.1, 1, batch_size=8)
    with pytest.raises(ValueError, match="need both batch_size and a key"):
        nn.train(params, X, Y, 0.1, 1, key=random.key(0))


def test_train_in_mini_batches_is_the_loop_a_user_writes(
        capsys: pytest.CaptureFixture[str]) -> None:
    X, Y = binary_problem(m=50)
    params = nn.init_params([5, 4, 1], seed=3)
    adam = optim.adam(0.01)
    trained, costs = nn.train(params, X, Y, num_iterations=12, optimizer=adam, batch_size=16,
                              key=random.key(9), record_every=5, print_cost=True, jit=False)
    # the same by hand: split the key each epoch, a step per mini-batch, epoch cost = mean
    expected, state, key, expected_costs = params, adam.init(params), random.key(9), []
    for epoch in range(12):
        key, epoch_key = random.split(key)
        total = 0.0
        for X_batch, Y_batch in nn.mini_batches(epoch_key, X, Y, 16):
            cost, grads = tg.value_and_grad(nn.model_cost)(expected, X_batch, Y_batch)
            expected, state = adam.update(grads, state, expected)
            total += float(cost) * X_batch.shape[1]
        if epoch % 5 == 0:
            expected_costs.append(total / 50)
    assert costs == expected_costs
    assert all(np.array_equal(trained[k], expected[k]) for k in params)
    lines = capsys.readouterr().out.splitlines()
    # jitted (the default), Adam's bias correction is numpy's power of the traced step count,
    # the eager update Python's: the two can round apart in the last place
    jitted, jitted_costs = nn.train(params, X, Y, num_iterations=12, optimizer=adam,
                                    batch_size=16, key=random.key(9), record_every=5)
    np.testing.assert_allclose(jitted_costs, expected_costs, rtol=1e-13)
    assert all(np.allclose(jitted[k], expected[k], rtol=1e-12, atol=0) for k in params)
    assert [line.split(":")[0] for line in lines] == [
        "Cost after epoch 0", "Cost after epoch 5", "Cost after epoch 10", "Cost after epoch 11"]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("bad", [None, "abc", np.array(["x"])])
def test_train_names_a_parameter_that_is_not_an_array(bad: Any) -> None:
    X, Y = binary_problem()
    params: dict[str, Any] = nn.init_params([5, 3, 1])
    params["b2"] = bad
    with pytest.raises(TypeError, match=r"params\['b2'\] (is|has).*; expected a float numpy array "
                       r"of shape \(n_2, 1\)"):
        nn.train(params, X, Y, 0.1, 1)


def test_train_explains_each_wrong_label_shape() -> None:
    X, Y = binary_problem()
    params = nn.init_params([5, 3, 1])
    with pytest.raises(ValueError, match=r"Y has shape \(40,\).*one row.*reshape\(1, -1\)") as row:
        nn.train(params, X, Y[0], 0.1, 1)
    assert "(m, m)" not in str(row.value)  # (m,) broadcasts against (1, m) as (1, m)
    with pytest.raises(ValueError, match=r"Y has shape \(40, 1\).*into an \(m, m\) matrix"):
        nn.train(params, X, Y.T, 0.1, 1)


# --------------------------------------------------------------------------- Ctrl-C


def test_a_keyboard_interrupt_returns_what_was_reached(capsys: pytest.CaptureFixture[str]) -> None:
    X, Y = binary_problem()
    seen: dict[int, dict[str, np.ndarray]] = {}

    def callback(i: int, cost: float, params: dict[str, np.ndarray]) -> None:
        seen[i] = params
        if i == 250:
            raise KeyboardInterrupt

    params, costs = nn.train(nn.init_params([5, 3, 1]), X, Y, 0.1, 10_000, callback=callback)
    assert params is seen[250] and len(costs) == 3  # iterations 0, 100, 200
    out = capsys.readouterr().out
    assert "Interrupted (Ctrl-C): training stopped after iteration 250 (cost " in out
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # left as found


def test_ctrl_c_finishes_the_step_that_runs(capsys: pytest.CaptureFixture[str]) -> None:
    X, Y = binary_problem()
    seen: list[int] = []
    went_on: list[bool] = []

    def callback(i: int, cost: float, params: dict[str, np.ndarray]) -> None:
        seen.append(i)
        if i == 7:
            os.kill(os.getpid(), signal.SIGINT)  # as a terminal's Ctrl-C
            went_on.append(True)  # not interrupted here: train's handler took the signal

    _, costs = nn.train(nn.init_params([5, 3, 1]), X, Y, 0.1, 10_000, callback=callback)
    assert seen == list(range(8)) and went_on == [True] and len(costs) == 1
    assert "training stopped after iteration 7 (cost " in capsys.readouterr().out
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_in_a_mini_batch_epoch_stops_after_that_batch(
        capsys: pytest.CaptureFixture[str]) -> None:
    X, Y = binary_problem(m=50)
    sgd = optim.sgd(0.1)
    steps: list[Any] = []

    def update(grads: Any, state: Any, params: Any) -> Any:
        steps.append(params)
        if len(steps) == 6:  # the second mini-batch of the second epoch
            os.kill(os.getpid(), signal.SIGINT)  # the step goes on to its end
        return sgd.update(grads, state, params)

    # eager: under jit an update's Python side effects (the count here) run at trace time only
    _, costs = nn.train(nn.init_params([5, 3, 1]), X, Y, num_iterations=100,
                        optimizer=optim.Optimizer(sgd.init, update), batch_size=16,
                        key=random.key(0), jit=False)
    assert len(steps) == 6 and len(costs) == 1  # epoch 1 is not finished: no cost for it
    assert "stopped in epoch 1 after mini-batch 2 of 4" in capsys.readouterr().out


INTERRUPTED_RUN = textwrap.dedent("""
    import numpy as np
    from tinygrad_nn import nn

    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 40))
    Y = (X[:1] > 0).astype(float)

    def callback(i, cost, params):
        if i == 3:
            print("training", flush=True)

    params, costs = nn.train(nn.init_params([5, 3, 1]), X, Y, 0.1, 10**9, callback=callback)
    print(f"returned {len(costs)} costs and W1 of shape {params['W1'].shape}", flush=True)
""")


def test_sigint_to_a_training_process_stops_it_cleanly() -> None:
    child = subprocess.Popen([sys.executable, "-c", INTERRUPTED_RUN], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "training\n"
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 0, err
    assert "Interrupted (Ctrl-C): training stopped after iteration" in out
    assert "returned" in out and "W1 of shape (3, 5)" in out
