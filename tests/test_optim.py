"""tg.optim: sgd, momentum, rmsprop and adam against their formulas, PyTorch, and as ops."""

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Tensor, nn, optim
from tinygrad_nn.pytree import tree_flatten, tree_map, tree_unflatten

STEPS = 100


def nested_params(dtype: type = np.float64, seed: int = 0) -> dict[str, Any]:
    """A pytree of every container kind: dict, list, tuple, and a 0-d leaf."""
    rng = np.random.default_rng(seed)
    return {"W": rng.normal(size=(3, 4)).astype(dtype),
            "layers": [rng.normal(size=(3, 1)).astype(dtype),
                       (rng.normal(size=5).astype(dtype), np.asarray(0.5, dtype))]}


def gradient_stream(params: Any, seed: int = 1) -> list[Any]:
    rng = np.random.default_rng(seed)
    return [tree_map(lambda p: rng.normal(size=np.shape(p)).astype(p.dtype), params)
            for _ in range(STEPS)]


# --- the reference formulas, as the course writes them (plain numpy, one leaf) ---------------
def reference_sgd(lr: float) -> Callable[..., Any]:
    def step(p: np.ndarray, g: np.ndarray, state: Any, t: int) -> tuple[np.ndarray, Any]:
        return p - lr * g, state
    return step


def reference_momentum(lr: float, beta: float) -> Callable[..., Any]:
    def step(p: np.ndarray, g: np.ndarray, v: Any, t: int) -> tuple[np.ndarray, Any]:
        v = np.zeros_like(p) if v is None else v
        v = beta * v + (1 - beta) * g
        return p - lr * v, v
    return step


def reference_rmsprop(lr: float, decay: float, eps: float) -> Callable[..., Any]:
    def step(p: np.ndarray, g: np.ndarray, s: Any, t: int) -> tuple[np.ndarray, Any]:
        s = np.zeros_like(p) if s is None else s
        s = decay * s + (1 - decay) * np.power(g, 2)
        return p - lr * g / (np.sqrt(s) + eps), s
    return step


def reference_adam(lr: float, b1: float, b2: float, eps: float) -> Callable[..., Any]:
    def step(p: np.ndarray, g: np.ndarray, state: Any, t: int) -> tuple[np.ndarray, Any]:
        v, s = (np.zeros_like(p), np.zeros_like(p)) if state is None else state
        v = b1 * v + (1 - b1) * g
        v_corrected = v / (1 - b1**t)
        s = b2 * s + (1 - b2) * np.power(g, 2)
        s_corrected = s / (1 - b2**t)
        return p - lr * v_corrected / (np.sqrt(s_corrected) + eps), (v, s)
    return step


CASES = {
    "sgd": (optim.sgd(0.1), reference_sgd(0.1)),
    "momentum": (optim.momentum(0.05, beta=0.8), reference_momentum(0.05, 0.8)),
    "rmsprop": (optim.rmsprop(0.01, decay=0.95, eps=1e-6), reference_rmsprop(0.01, 0.95, 1e-6)),
    "adam": (optim.adam(0.02, b1=0.85, b2=0.99, eps=1e-7), reference_adam(0.02, 0.85, 0.99, 1e-7)),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(CASES))
def test_100_steps_on_a_pytree_equal_the_reference_formulas_bit_for_bit(name: str,
                                                                       dtype: type) -> None:
    optimizer, reference = CASES[name]
    params = nested_params(dtype)
    state = optimizer.init(params)
    leaves, treedef = tree_flatten(params)
    expected, states = list(leaves), [None] * len(leaves)
    for t, grads in enumerate(gradient_stream(params), start=1):
        params, state = optimizer.update(grads, state, params)
        for k, g in enumerate(tree_flatten(grads)[0]):
            expected[k], states[k] = reference(expected[k], g, states[k], t)
    assert tree_flatten(params)[1] == treedef
    for got, want in zip(tree_flatten(params)[0], expected):
        assert got.dtype == dtype and got.shape == want.shape
        assert np.array_equal(got, want)  # bit for bit, float32 included
    if name == "adam":
        assert state.step.dtype == np.int64 and state.step.shape == () and state.step == STEPS


@pytest.mark.parametrize("name", list(CASES))
def test_large_and_mixed_dtype_trees_leaf_by_leaf_give_the_same_numbers(name: str) -> None:
    # A small tree is updated as one flat array; a large one (over 2**16 elements) and one of
    # mixed dtypes leaf by leaf: the same formulas, the same rounding.
    optimizer, reference = CASES[name]
    rng = np.random.default_rng(5)
    for params in ({"W": rng.normal(size=(300, 300)), "b": rng.normal(size=(300, 1))},
                   {"W": rng.normal(size=(3, 4)), "b": rng.normal(size=(3, 1)).astype(np.float32)}):
        state, expected = optimizer.init(params), dict(params)
        states: dict[str, Any] = dict.fromkeys(params)
        for t, grads in enumerate(gradient_stream(params)[:3], start=1):
            params, state = optimizer.update(grads, state, params)
            for key in params:
                expected[key], states[key] = reference(expected[key], grads[key], states[key], t)
        for key in params:
            assert params[key].dtype == expected[key].dtype
            assert np.array_equal(params[key], expected[key])


@pytest.mark.parametrize("name", list(CASES))
def test_an_update_never_modifies_its_inputs(name: str) -> None:
    optimizer = CASES[name][0]
    params = nested_params()
    state = optimizer.init(params)
    params, state = optimizer.update(gradient_stream(params)[0], state, params)  # a live state
    grads = gradient_stream(params, seed=2)[0]
    snapshots = [tree_map(np.copy, tree) for tree in (params, grads, state)]
    new_params, new_state = optimizer.update(grads, state, params)
    for tree, snapshot in zip((params, grads, state), snapshots):
        assert all(np.array_equal(a, b) for a, b in zip(tree_flatten(tree)[0],
                                                        tree_flatten(snapshot)[0]))
    old = {id(x) for tree in (params, grads, state) for x in tree_flatten(tree)[0]}
    assert not old & {id(x) for x in tree_flatten((new_params, new_state))[0]}


@pytest.mark.parametrize("name", list(CASES))
def test_float32_parameters_stay_float32_under_float64_gradients(name: str) -> None:
    optimizer = CASES[name][0]
    params = nested_params(np.float32)
    grads64 = tree_map(lambda p: np.ones(p.shape), params)  # float64
    new_params, state = optimizer.update(grads64, optimizer.init(params), params)
    assert all(p.dtype == np.float32 for p in tree_flatten((new_params, state))[0]
               if p.dtype.kind == "f")


def test_sgd_is_nn_sgd_update_and_the_updates_are_these_for_sgd() -> None:
    params = nn.init_params([4, 3, 1], seed=2)
    grads = tree_map(lambda p: np.full(p.shape, 0.3), params)
    new, state = optim.sgd(0.07).update(grads, (), params)
    expected = nn.sgd_update(params, grads, 0.07)
    assert state == () and all(np.array_equal(new[k], expected[k]) for k in params)


# --- on Tensors: the same formulas as ops -----------------------------------------------------
def as_tensors(tree: Any) -> Any:
    return tree_map(Tensor, tree)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(CASES))
def test_on_tensors_the_update_is_recorded_ops_with_the_same_numbers(name: str,
                                                                     dtype: type) -> None:
    optimizer = CASES[name][0]
    plain = nested_params(dtype)
    plain_state = optimizer.init(plain)
    traced, traced_state = as_tensors(plain), as_tensors(optimizer.init(plain))  # as jit has them
    for grads in gradient_stream(plain)[:5]:
        plain, plain_state = optimizer.update(grads, plain_state, plain)
        traced, traced_state = optimizer.update(as_tensors(grads), traced_state, traced)
    for got, want in zip(tree_flatten((traced, traced_state))[0],
                         tree_flatten((plain, plain_state))[0]):
        assert type(got) is Tensor and got.dtype == want.dtype
        np.testing.assert_allclose(got.numpy(), want, rtol=2e-7 if dtype == np.float32 else 1e-15)


@pytest.mark.parametrize("name", list(CASES))
def test_differentiating_through_a_step(name: str) -> None:
    # The loss after one step, as a function of the starting parameters: grad of an update
    # (meta-learning style) is right only if the update is recorded as ops.
    optimizer = CASES[name][0]
    X = np.random.default_rng(3).normal(size=(4, 6))
    Y = (X[:1] > 0).astype(np.float64)

    def loss(params: Any) -> Tensor:
        return nn.binary_cross_entropy_with_logits(nn.logits(params, X), Y)

    def loss_after_a_step(params: Any) -> Tensor:
        new, _ = optimizer.update(tg.grad(loss)(params), optimizer.init(params), params)
        return loss(new)

    check = tg.check_grads(loss_after_a_step, (nn.init_params([4, 3, 1], seed=4),), eps=1e-6)
    assert check.max_error < 1e-6, check


# --- PyTorch, step for step ----------------------------------------------------------------------
def torch_steps(make: Callable[[Any], Any], params: Any) -> list[np.ndarray]:
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install "
                                "torch==2.13.0, the CPU wheel) to compare with it")
    leaves = [torch.tensor(p.copy(), requires_grad=True) for p in tree_flatten(params)[0]]
    optimizer = make(leaves)
    history = []
    for grads in gradient_stream(params):
        for leaf, g in zip(leaves, tree_flatten(grads)[0]):
            leaf.grad = torch.tensor(g)
        optimizer.step()
        history.append([leaf.detach().numpy().copy() for leaf in leaves])
    return history


@pytest.mark.slow
@pytest.mark.parametrize("name", ["adam", "rmsprop"])
def test_equal_to_torch_step_for_step(name: str) -> None:
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install "
                                "torch==2.13.0, the CPU wheel) to compare with it")
    params = nested_params()
    if name == "adam":
        ours = optim.adam(0.01, b1=0.9, b2=0.999, eps=1e-8)
        theirs = torch_steps(lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, 0.999),
                                                        eps=1e-8), params)
    else:
        ours = optim.rmsprop(0.01, decay=0.99, eps=1e-8)
        theirs = torch_steps(lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.99, eps=1e-8),
                             params)
    state = ours.init(params)
    for grads, expected in zip(gradient_stream(params), theirs):
        params, state = ours.update(grads, state, params)
        for got, want in zip(tree_flatten(params)[0], expected):
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


# --- errors ---------------------------------------------------------------------------------
def test_mismatched_gradients_and_states_are_clear_errors() -> None:
    params = {"W1": np.ones((3, 2)), "b1": np.zeros((3, 1))}
    adam = optim.adam()
    state = adam.init(params)
    with pytest.raises(ValueError, match=r"optim.adam: grads must have the structure of params; "
                       r"missing \['b1'\], extra \['db1'\]"):
        adam.update({"W1": np.ones((3, 2)), "db1": np.zeros((3, 1))}, state, params)
    with pytest.raises(ValueError, match=r"grads leaf 'b1' has shape \(3,\); expected an array of "
                       r"params' shape \(3, 1\)"):
        adam.update({"W1": np.ones((3, 2)), "b1": np.zeros(3)}, state, params)
    with pytest.raises(TypeError, match=r"params leaf 'W1' is ndarray \(dtype int64\); expected "
                       "a float array"):
        optim.sgd(0.1).update(params, (), {"W1": np.ones((3, 2), np.int64),
                                           "b1": np.zeros((3, 1))})
    with pytest.raises(TypeError, match="state is MomentumState; expected the AdamState"):
        adam.update(params, optim.momentum(0.1).init(params), params)
    with pytest.raises(ValueError, match=r"state.mu must have the structure of params"):
        adam.update(params, adam.init({"W1": np.ones((3, 2))}), params)
    with pytest.raises(ValueError, match=r"optim\.adam: b2 must be in"):
        optim.adam(b2=1.0)
    with pytest.raises(ValueError, match=r"optim\.momentum: learning_rate must be > 0"):
        optim.momentum(0.0)


def test_optim_is_reachable_from_the_package() -> None:
    assert tg.optim is optim
    leaves, treedef = tree_flatten(optim.adam().init({"W": np.ones(2)}))
    assert tree_unflatten(treedef, leaves).step == 0


@pytest.mark.parametrize("make, name", [
    (lambda rate: optim.sgd(rate), "sgd"), (lambda rate: optim.momentum(rate), "momentum"),
    (lambda rate: optim.rmsprop(rate), "rmsprop"), (lambda rate: optim.adam(rate), "adam")])
@pytest.mark.parametrize("rate", ["0.01", None, [0.01], True, np.array([0.01])])
def test_a_learning_rate_that_is_not_a_number_is_named(make: Any, name: str, rate: Any) -> None:
    with pytest.raises(TypeError, match=rf"optim\.{name}: learning_rate must be a number, got "
                       rf"{re.escape(repr(rate))}"):
        make(rate)


def test_every_hyperparameter_is_checked_as_a_number() -> None:
    with pytest.raises(TypeError, match=r"optim\.adam: b1 must be a number, got '0\.9'"):
        optim.adam(1e-3, b1="0.9")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"optim\.rmsprop: eps must be a number, got None"):
        optim.rmsprop(1e-3, eps=None)  # type: ignore[arg-type]
    # numpy's numbers and 0-d arrays are numbers
    for rate in (np.float32(0.1), np.int64(1), np.array(0.1)):
        params = {"W": np.ones((2, 2))}
        new, _ = optim.sgd(rate).update({"W": np.ones((2, 2))}, (), params)  # type: ignore[arg-type]
        assert np.array_equal(new["W"], params["W"] - float(rate))
