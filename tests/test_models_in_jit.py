"""Keys, dropout, the optimizers and a softmax cost inside ``tg.jit``: what changes from call to
call (the key, the step count) is computed by primitives, so a replay is a new step, equal to
the eager one. Skipped where ``tg.jit`` is not there yet."""

from typing import Any

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import nn, optim, random

jit = getattr(tg, "jit", None)
pytestmark = pytest.mark.skipif(jit is None, reason="tg.jit is not in this tree yet")


def test_a_replay_with_a_new_key_draws_new_numbers() -> None:
    def draw(key: Any) -> Any:
        k1, k2 = random.split(key)
        return random.normal(k1, (3,)) + random.uniform(k2, (3,))

    jitted = jit(draw)  # type: ignore[misc]
    for seed in range(3):
        key = random.key(seed)
        k1, k2 = random.split(key)
        expected = random.normal(k1, (3,)) + random.uniform(k2, (3,))
        assert np.array_equal(np.asarray(jitted(key)), expected)
    assert len(jitted.plans) == 1


def regularized_cost(params: dict[str, Any], key: Any, X: Any, labels: Any) -> tg.Tensor:
    A = nn.dropout(key, tg.relu(nn.linear(X, params["W1"], params["b1"])), 0.8)
    Z = nn.linear(A, params["W2"], params["b2"])
    return nn.softmax_cross_entropy(Z, labels) + nn.l2_penalty(params, 0.1, X.shape[1])


@pytest.mark.parametrize("make", [lambda: optim.adam(0.01), lambda: optim.momentum(0.1),
                                  lambda: optim.rmsprop(0.01), lambda: optim.sgd(0.1)])
def test_a_jitted_step_with_dropout_and_an_optimizer_equals_the_eager_one(make: Any) -> None:
    optimizer = make()
    rng = np.random.default_rng(0)
    X, labels = rng.normal(size=(4, 32)), rng.integers(0, 3, size=32)
    params = nn.init_params([4, 8, 3], "he", seed=1)

    def step(params: Any, state: Any, key: Any, X: Any, labels: Any) -> Any:
        value, grads = tg.value_and_grad(regularized_cost)(params, key, X, labels)
        params, state = optimizer.update(grads, state, params)
        return params, state, value

    jitted = jit(step)  # type: ignore[misc]
    eager = (params, optimizer.init(params))
    traced = (params, optimizer.init(params))
    for key in random.split(random.key(3), 6):
        *eager, eager_cost = step(*eager, key, X, labels)
        *traced, traced_cost = jitted(*traced, key, X, labels)
        np.testing.assert_allclose(traced_cost, eager_cost, rtol=1e-13)
        for got, want in zip(tg.tree_flatten(traced)[0], tg.tree_flatten(eager)[0]):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert len(jitted.plans) == 1
