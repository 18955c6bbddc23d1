"""The ways to train the course's deep net that the benchmarks race, each written once.

- ``EngineTraining``: our engine as a user writes it — a forward loop, the cross-entropy op by
  op, ``tg.value_and_grad`` and the library's update ``nn.sgd_update`` (``optim.sgd``, as
  ``nn.train`` steps by default).
- ``EngineDictUpdateTraining``: the same with the update as a dict comprehension,
  ``{k: p[k] - lr * g[k]}``, to show what two fresh arrays per parameter cost.
- ``HandwrittenTraining``: the course's hand-written numpy (course 1, week 4), its formulas.
- ``FloorTraining``: only what no method avoids — W1·X forward, dZ1·Xᵀ backward, W1 update.
- ``TorchTraining``: the same net and cost in PyTorch eager with autograd (when installed).
- ``JitTraining``: the engine's step (``value_and_grad`` and ``nn.sgd_update``) under
  ``tg.jit``, the parameters donated so that they update in place.
- ``JaxTraining``: the same step in JAX under ``jax.jit``, parameters donated (when installed).

Each has ``step()``: one iteration (forward, cost, backward, update), and each starts from its
own copy of the parameters.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from common import StepFactory, import_jax, import_torch

import tinygrad_nn as tg
from tinygrad_nn import nn

Params = dict[str, np.ndarray]


def layer_count(params: dict[str, Any]) -> int:
    return len(params) // 2


# --------------------------------------------------------------------------- our engine


def engine_forward(params: dict[str, Any], X: np.ndarray) -> tg.Tensor:
    """[LINEAR -> RELU] x (L-1) -> LINEAR -> SIGMOID, as a user writes it with the engine."""
    L = layer_count(params)
    A: np.ndarray | tg.Tensor = X
    for layer in range(1, L):
        A = tg.relu(params[f"W{layer}"] @ A + params[f"b{layer}"])
    return tg.sigmoid(params[f"W{L}"] @ A + params[f"b{L}"])


def engine_cost(params: dict[str, Any], X: np.ndarray, Y: np.ndarray) -> tg.Tensor:
    """The course's cross-entropy, written op by op."""
    AL = engine_forward(params, X)
    return -(Y * tg.log(AL) + (1 - Y) * tg.log(1 - AL)).mean()


class EngineTraining:
    """The gradients from ``value_and_grad``; the new parameters from ``nn.sgd_update``, written
    into the donated gradient arrays; the old ones never written to."""

    def __init__(self, params: Params, X: np.ndarray, Y: np.ndarray, learning_rate: float):
        self.params = {k: v.copy() for k, v in params.items()}
        self.X, self.Y, self.learning_rate = X, Y, learning_rate
        self.cost_and_grads = tg.value_and_grad(engine_cost)

    def step(self) -> Any:
        cost, grads = self.cost_and_grads(self.params, self.X, self.Y)
        self.params = nn.sgd_update(self.params, grads, self.learning_rate, donate_grads=True)
        return cost


def engine_step(params: Params, X: np.ndarray, Y: np.ndarray, learning_rate: float) -> Any:
    """One training step as a pure function: cost, gradients and the update."""
    cost, grads = tg.value_and_grad(engine_cost)(params, X, Y)
    return nn.sgd_update(params, grads, learning_rate), cost


JITTED_STEP = tg.jit(engine_step, donate_argnums=0)  # one for all runs: traced once


class JitTraining(EngineTraining):
    """``engine_step`` under ``tg.jit``: traced once, then replayed; the parameters donated."""

    def __init__(self, params: Params, X: np.ndarray, Y: np.ndarray, learning_rate: float):
        super().__init__(params, X, Y, learning_rate)
        self.jitted = JITTED_STEP

    def step(self) -> Any:
        self.params, cost = self.jitted(self.params, self.X, self.Y, self.learning_rate)
        return cost


class EngineDictUpdateTraining(EngineTraining):
    """The same gradients; the update makes ``lr * g`` and then ``p - lr * g``, new arrays."""

    def step(self) -> Any:
        cost, grads = self.cost_and_grads(self.params, self.X, self.Y)
        lr, params = self.learning_rate, self.params
        self.params = {k: params[k] - lr * grads[k] for k in params}
        return cost


# --------------------------------------------------------------------------- the course's numpy


def linear_forward(A: np.ndarray, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    Z = np.dot(W, A) + b
    return Z, (A, W, b)


def sigmoid(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return 1 / (1 + np.exp(-Z)), Z


def relu(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.maximum(0, Z), Z


def linear_activation_forward(
    A_prev: np.ndarray, W: np.ndarray, b: np.ndarray, activation: str
) -> tuple[np.ndarray, tuple]:
    Z, linear_cache = linear_forward(A_prev, W, b)
    A, activation_cache = sigmoid(Z) if activation == "sigmoid" else relu(Z)
    return A, (linear_cache, activation_cache)


def L_model_forward(X: np.ndarray, params: Params) -> tuple[np.ndarray, list[tuple]]:
    caches = []
    A = X
    L = layer_count(params)
    for layer in range(1, L):
        A, cache = linear_activation_forward(A, params[f"W{layer}"], params[f"b{layer}"], "relu")
        caches.append(cache)
    AL, cache = linear_activation_forward(A, params[f"W{L}"], params[f"b{L}"], "sigmoid")
    caches.append(cache)
    return AL, caches


def compute_cost(AL: np.ndarray, Y: np.ndarray) -> np.ndarray:
    m = Y.shape[1]
    cost = (-1 / m) * np.sum(np.multiply(Y, np.log(AL)) + np.multiply(1 - Y, np.log(1 - AL)))
    return np.squeeze(cost)


def linear_backward(dZ: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    A_prev, W, _ = cache
    m = A_prev.shape[1]
    dW = 1 / m * np.dot(dZ, A_prev.T)
    db = 1 / m * np.sum(dZ, axis=1, keepdims=True)
    dA_prev = np.dot(W.T, dZ)  # also for the first layer, where nobody needs it
    return dA_prev, dW, db


def relu_backward(dA: np.ndarray, Z: np.ndarray) -> np.ndarray:
    dZ = np.array(dA, copy=True)
    dZ[Z <= 0] = 0
    return dZ


def sigmoid_backward(dA: np.ndarray, Z: np.ndarray) -> np.ndarray:
    s = 1 / (1 + np.exp(-Z))
    return dA * s * (1 - s)


def linear_activation_backward(
    dA: np.ndarray, cache: tuple, activation: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    linear_cache, Z = cache
    dZ = sigmoid_backward(dA, Z) if activation == "sigmoid" else relu_backward(dA, Z)
    return linear_backward(dZ, linear_cache)


def L_model_backward(AL: np.ndarray, Y: np.ndarray, caches: list[tuple]) -> Params:
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    dA, grads[f"dW{L}"], grads[f"db{L}"] = linear_activation_backward(dAL, caches[L - 1], "sigmoid")
    for layer in range(L - 1, 0, -1):
        dA, grads[f"dW{layer}"], grads[f"db{layer}"] = linear_activation_backward(
            dA, caches[layer - 1], "relu"
        )
    return grads


def update_parameters(params: Params, grads: Params, learning_rate: float) -> None:
    for layer in range(1, layer_count(params) + 1):
        params[f"W{layer}"] -= learning_rate * grads[f"dW{layer}"]
        params[f"b{layer}"] -= learning_rate * grads[f"db{layer}"]


class HandwrittenTraining:
    def __init__(self, params: Params, X: np.ndarray, Y: np.ndarray, learning_rate: float):
        self.params = {k: v.copy() for k, v in params.items()}
        self.X, self.Y, self.learning_rate = X, Y, learning_rate

    def step(self) -> np.ndarray:
        AL, caches = L_model_forward(self.X, self.params)
        cost = compute_cost(AL, self.Y)
        grads = L_model_backward(AL, self.Y, caches)
        update_parameters(self.params, grads, self.learning_rate)
        return cost


def predict(params: Params, X: np.ndarray) -> np.ndarray:
    """1 where the net says cat (probability > 0.5), else 0; shape (1, m)."""
    AL, _ = L_model_forward(X, params)
    return (AL > 0.5).astype(X.dtype)


# --------------------------------------------------------------------------- lean numpy


class LeanTraining:
    """The course's net by hand with only the work the engine does: no dA0 = W1ᵀ·dZ1, the
    output's dZ_L = (AL − Y) / m in one step, ReLU' as sign(A), and an in-place update. What
    an engine with no overhead at all would cost, between the floor and the hand-written code.
    """

    def __init__(self, params: Params, X: np.ndarray, Y: np.ndarray, learning_rate: float):
        self.params = {k: v.copy() for k, v in params.items()}
        self.X, self.Y, self.learning_rate = X, Y, learning_rate

    def step(self) -> np.ndarray:
        params, L, m = self.params, layer_count(self.params), self.X.shape[1]
        activations = [self.X]
        for layer in range(1, L):
            Z = params[f"W{layer}"] @ activations[-1] + params[f"b{layer}"]
            activations.append(np.maximum(Z, 0.0))
        Z = params[f"W{L}"] @ activations[-1] + params[f"b{L}"]
        AL = 1.0 / (1.0 + np.exp(-Z))
        cost = -(self.Y * np.log(AL) + (1.0 - self.Y) * np.log(1.0 - AL)).mean()
        dZ = (AL - self.Y) / m
        for layer in range(L, 0, -1):
            A_prev = activations[layer - 1]
            dW, db = dZ @ A_prev.T, dZ.sum(axis=1, keepdims=True)
            if layer > 1:
                dZ = (params[f"W{layer}"].T @ dZ) * np.sign(A_prev)
            params[f"W{layer}"] -= self.learning_rate * dW
            params[f"b{layer}"] -= self.learning_rate * db
        return cost


# --------------------------------------------------------------------------- the floor


class FloorTraining:
    """The work of any method: W1·X (forward), dZ1·Xᵀ (dW1) and the in-place update of W1."""

    def __init__(self, params: Params, X: np.ndarray, learning_rate: float):
        self.W1 = params["W1"].copy()
        self.X, self.learning_rate = X, learning_rate
        rng = np.random.RandomState(2)
        self.dZ1 = (rng.randn(self.W1.shape[0], X.shape[1]) * 1e-3).astype(X.dtype)

    def step(self) -> np.ndarray:
        Z1 = self.W1 @ self.X
        dW1 = self.dZ1 @ self.X.T
        self.W1 -= self.learning_rate * dW1
        return Z1


# --------------------------------------------------------------------------- PyTorch


class TorchTraining:
    """The same net and cost in PyTorch eager: autograd backward, an in-place update."""

    def __init__(
        self, torch: Any, params: Params, X: np.ndarray, Y: np.ndarray, learning_rate: float
    ):
        self.torch = torch
        self.params = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
        self.X, self.Y = torch.from_numpy(X), torch.from_numpy(Y)
        self.learning_rate = learning_rate

    def step(self) -> Any:
        torch, params, Y = self.torch, self.params, self.Y
        L = layer_count(params)
        A = self.X
        for layer in range(1, L):
            A = torch.relu(params[f"W{layer}"] @ A + params[f"b{layer}"])
        AL = torch.sigmoid(params[f"W{L}"] @ A + params[f"b{L}"])
        cost = -(Y * torch.log(AL) + (1 - Y) * torch.log(1 - AL)).mean()
        cost.backward()
        with torch.no_grad():
            for p in params.values():
                p -= self.learning_rate * p.grad
                p.grad = None
        return cost.detach()


# --------------------------------------------------------------------------- JAX


class JaxTraining:
    """The same net, cost and update in JAX, the whole step under ``jax.jit`` with the
    parameters donated (XLA on the CPU)."""

    compiled: ClassVar[dict[float, Any]] = {}  # one jitted step per learning rate

    def __init__(self, jax: Any, params: Params, X: np.ndarray, Y: np.ndarray,
                 learning_rate: float):
        jnp = jax.numpy
        if learning_rate not in self.compiled:
            def cost(params: Any, X: Any, Y: Any) -> Any:
                A, L = X, layer_count(params)
                for layer in range(1, L):
                    A = jnp.maximum(params[f"W{layer}"] @ A + params[f"b{layer}"], 0.0)
                AL = jax.nn.sigmoid(params[f"W{L}"] @ A + params[f"b{L}"])
                return -(Y * jnp.log(AL) + (1 - Y) * jnp.log(1 - AL)).mean()

            def step(params: Any, X: Any, Y: Any) -> Any:
                value, grads = jax.value_and_grad(cost)(params, X, Y)
                return {k: params[k] - learning_rate * grads[k] for k in params}, value

            self.compiled[learning_rate] = jax.jit(step, donate_argnums=0)
        self.jitted = self.compiled[learning_rate]
        self.params = {k: jnp.asarray(v) for k, v in params.items()}
        self.X, self.Y = jnp.asarray(X), jnp.asarray(Y)

    def step(self) -> Any:
        self.params, cost = self.jitted(self.params, self.X, self.Y)
        cost.block_until_ready()  # JAX runs asynchronously: time the work, not its dispatch
        return cost


# --------------------------------------------------------------------------- the race


def training_factories(
    params: Params,
    X: np.ndarray,
    Y: np.ndarray,
    learning_rate: float,
    with_floor: bool,
    with_torch: bool,
    with_jax: bool = True,
) -> dict[str, StepFactory]:
    """Fresh training runs from ``params``, by contender name (torch and JAX when installed)."""
    factories: dict[str, StepFactory] = {
        "engine": lambda: EngineTraining(params, X, Y, learning_rate).step,
        "engine, jit": lambda: JitTraining(params, X, Y, learning_rate).step,
        "engine, dict update": lambda: EngineDictUpdateTraining(params, X, Y, learning_rate).step,
        "handwritten": lambda: HandwrittenTraining(params, X, Y, learning_rate).step,
    }
    if with_floor:
        factories["lean numpy"] = lambda: LeanTraining(params, X, Y, learning_rate).step
        factories["floor"] = lambda: FloorTraining(params, X, learning_rate).step
    torch = import_torch() if with_torch else None
    if torch is not None:
        factories["torch"] = lambda: TorchTraining(torch, params, X, Y, learning_rate).step
    elif with_torch:
        print("torch: not installed, its contender is skipped")
    jax = import_jax() if with_jax else None
    if jax is not None:
        factories["jax.jit"] = lambda: JaxTraining(jax, params, X, Y, learning_rate).step
    elif with_jax:
        print("jax: not installed (pip install -e '.[bench]'), its contender is skipped")
    return factories
