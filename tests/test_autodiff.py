"""Reverse mode itself: fan-out, accumulation, graph release and memory, deep graphs, which
VJPs run, no_grad / detach, and the course's closed-form backprop as an oracle."""

import gc
import sys
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Tensor, ops
from tinygrad_nn.autodiff import sum_to, toposort


@contextmanager
def refcounting_only() -> Iterator[None]:
    """No cycle collector inside the block: what dies here dies by reference counting."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def counting_op(x: Any, calls: list[str], name: str) -> Tensor:
    """2x as a custom op whose rule notes each call in ``calls`` (x a Tensor or an array)."""

    def rule(g: Any, out: Any, x: Any) -> Any:
        calls.append(name)
        return g * 2

    return tg.Primitive(name, lambda x: x * 2, (rule,))(x)


# --- fan-out and accumulation ---------------------------------------------------------------
def test_fan_out_accumulates() -> None:
    x = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    ((x + x) * x).sum().backward()
    assert np.array_equal(x.grad, 4 * x.data)  # d(2x²) = 4x

    x.zero_grad()
    (x + x).sum().backward()
    assert np.array_equal(x.grad, [2.0, 2.0, 2.0])

    # A diamond: x feeds two branches that meet again.
    x.zero_grad()
    a, b = x * 3.0, tg.exp(x)
    (a * b).sum().backward()
    assert np.allclose(x.grad, 3 * np.exp(x.data) * (1 + x.data))

    assert np.allclose(tg.grad(lambda t: (t + t) * t)(1.5), 6.0)


def test_grad_accumulates_across_backward_calls_and_zero_grad_resets() -> None:
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * x).sum().backward()
    (x * 3.0).sum().backward()
    assert np.array_equal(x.grad, 2 * x.data + 3.0)
    x.zero_grad()
    assert x.grad is None
    (x * 3.0).sum().backward()
    assert np.array_equal(x.grad, [3.0, 3.0])


def test_leaf_grads_are_writable_and_never_aliased() -> None:
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    seed = np.array([1.0, 2.0, 3.0])
    (a + b).backward(seed)  # `add` passes the seed on unchanged to both inputs
    assert a.grad is not b.grad and a.grad is not seed and b.grad is not seed
    assert a.grad.flags.writeable and b.grad.flags.writeable
    a.grad[0] = 100.0
    assert b.grad[0] == 1.0 and seed[0] == 1.0

    c = Tensor(np.ones((2, 3)), requires_grad=True)
    c.sum().backward()  # the sum's rule gives a read-only broadcast view
    assert c.grad.flags.writeable and c.grad.flags.owndata

    s = Tensor(np.array(2.0), requires_grad=True)
    (s * 3.0).backward()
    assert type(s.grad) is np.ndarray and s.grad.shape == ()


# --- retain_graph and release ---------------------------------------------------------------
def test_retain_graph_allows_a_second_backward_that_accumulates() -> None:
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    loss = (tg.exp(x) * x).sum()
    loss.backward(retain_graph=True)
    first = x.grad.copy()
    loss.backward()
    assert np.allclose(x.grad, 2 * first)


def test_backward_releases_the_graph_but_keeps_the_op_name() -> None:
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    hidden = tg.tanh(x * 2.0)
    loss = hidden.sum()
    loss.backward(retain_graph=True)
    assert hidden.inputs is not None
    loss.backward()
    for node in (hidden, loss):
        assert node.inputs is None
        assert node.op in ("tanh", "sum") and node.requires_grad
    with pytest.raises(tg.GraphReleasedError, match="retain_graph"):
        loss.backward()


def test_intermediates_die_by_refcounting_after_backward() -> None:
    with refcounting_only():
        x = Tensor(np.ones((3, 2)), requires_grad=True)
        hidden = tg.sigmoid(x @ np.ones((2, 4)) + 1.0)
        picked = tg.where(hidden.data > 0, hidden, 0.0).clip(0.0, 1.0)[[0, 0, 2]]
        loss = tg.concatenate([picked, hidden]).max(axis=1).sum()
        intermediates = [weakref.ref(t) for t in (hidden, picked)]
        del hidden, picked
        loss.backward()
        # Released: the root no longer holds them.
        assert all(ref() is None for ref in intermediates)
        root = weakref.ref(loss)
        del loss
        assert root() is None and x.grad is not None


def test_a_graph_never_differentiated_dies_by_refcounting() -> None:
    with refcounting_only():
        x = Tensor(np.ones(3), requires_grad=True)
        hidden = tg.softplus(x * 2.0)
        loss = (hidden[[1, 1]] * tg.stack([hidden[0], hidden[2]])).sum()
        refs = [weakref.ref(hidden), weakref.ref(loss)]
        del hidden, loss
        assert all(ref() is None for ref in refs)


def test_retained_graph_lives_with_its_root_only() -> None:
    with refcounting_only():
        x = Tensor(np.ones(3), requires_grad=True)
        hidden = tg.exp(x)
        loss = (hidden * hidden).sum()
        ref = weakref.ref(hidden)
        del hidden
        loss.backward(retain_graph=True)
        assert ref() is not None
        del loss
        assert ref() is None


def test_functional_transforms_leave_no_graph_alive() -> None:
    kept: list[weakref.ref[Tensor]] = []

    def f(x: Tensor) -> Tensor:
        hidden = tg.tanh(x) * x
        kept.append(weakref.ref(hidden))
        return hidden.sum()

    with refcounting_only():
        tg.grad(f)(np.ones(3))
        tg.grad(tg.grad(lambda x: f(x) * 1.0))(0.5)
        _, vjp_fn = tg.vjp(f, np.ones(3))
        assert kept[-1]() is not None  # vjp_fn may be called again: the graph lives with it
        del vjp_fn
        assert all(ref() is None for ref in kept)


# --- deep graphs ----------------------------------------------------------------------------
DEPTH = 100_000


def deep_chain(x: Tensor, depth: int = DEPTH) -> Tensor:
    """Alternating ops, so every step is a node: y ← (y · 1.00001) + 0.5."""
    y = x
    for _ in range(depth // 2):
        y = y * 1.00001 + 0.5
    return y


def test_backward_through_a_chain_deeper_than_the_recursion_limit() -> None:
    assert sys.getrecursionlimit() * 10 < DEPTH
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = deep_chain(x)
    y.sum().backward()
    assert np.allclose(x.grad, 1.00001 ** (DEPTH // 2))
    assert tg.grad(lambda t: deep_chain(t).sum())(np.ones(2)) == pytest.approx(
        [1.00001 ** (DEPTH // 2)] * 2
    )


def test_deleting_a_deep_graph_without_backward() -> None:
    x = Tensor(np.array(1.0), requires_grad=True)
    y = deep_chain(x)
    ref = weakref.ref(y)
    start = time.perf_counter()
    del y
    assert ref() is None
    assert time.perf_counter() - start < 5.0


def test_second_order_through_a_deep_chain() -> None:
    def f(t: Any) -> Tensor:
        return deep_chain(t, 20_000) ** 2

    # f = (a t + c)² with a = 1.00001^n: f'' = 2 a².
    expected = 2 * 1.00001 ** (2 * 10_000)
    assert tg.grad(tg.grad(f))(0.1) == pytest.approx(expected, rel=1e-9)


# --- which VJPs run -------------------------------------------------------------------------
@pytest.fixture
def matmul_rule_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[tuple[int, ...]]]:
    """The shape of every cotangent the two matmul rules return, by rule."""
    calls: dict[str, list[tuple[int, ...]]] = {"dx": [], "dy": []}

    def spy(name: str, rule: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any) -> Any:
            grad = rule(*args)
            calls[name].append(grad.shape)
            return grad

        return counted

    dx, dy = ops.matmul.vjps  # type: ignore[misc]
    monkeypatch.setattr(ops.matmul, "vjps", (spy("dx", dx), spy("dy", dy)))
    return calls


def two_layer_cost(params: dict[str, Any], X: Any, Y: np.ndarray) -> Tensor:
    A1 = tg.relu(params["W1"] @ X + params["b1"])
    AL = tg.sigmoid(params["W2"] @ A1 + params["b2"])
    return -(Y * tg.log(AL) + (1 - Y) * tg.log(1 - AL)).mean()


def two_layer_problem(seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    params = {
        "W1": rng.normal(size=(4, 5)) * 0.5,
        "b1": rng.normal(size=(4, 1)) * 0.1,
        "W2": rng.normal(size=(1, 4)) * 0.5,
        "b2": np.zeros((1, 1)),
    }
    X = rng.normal(size=(5, 7))
    Y = (rng.random((1, 7)) > 0.5).astype(np.float64)
    return params, X, Y


def test_no_gradient_matmul_runs_for_the_input_X(
    matmul_rule_calls: dict[str, list[tuple[int, ...]]],
) -> None:
    params, X, Y = two_layer_problem()
    grads = tg.grad(two_layer_cost)(params, X, Y)
    assert set(grads) == set(params)
    # One VJP matmul per weight matrix, one for the hidden activation A1, none for X.
    assert sorted(matmul_rule_calls["dx"]) == sorted([(4, 5), (1, 4)])
    assert matmul_rule_calls["dy"] == [(4, 7)]

    matmul_rule_calls["dx"].clear()
    matmul_rule_calls["dy"].clear()
    W = Tensor(params["W1"], requires_grad=True)
    (W @ Tensor(X)).sum().backward()  # X a Tensor that does not require grad
    assert matmul_rule_calls == {"dx": [(4, 5)], "dy": []}


def test_a_vjp_on_a_path_to_no_target_never_runs() -> None:
    calls: list[str] = []
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)  # requires grad, but is not differentiated

    def f(x: Tensor) -> Tensor:
        return (counting_op(x, calls, "to_x") * counting_op(w, calls, "to_w")).sum()

    g = tg.grad(f)(np.array([3.0, 4.0]))
    assert np.array_equal(g, 2 * 2 * w.data)
    assert calls == ["to_x"]
    assert w.grad is None

    # Differentiating one argument of two: the other's path is never pulled back.
    calls.clear()

    def g(x: Tensor, v: Tensor) -> Tensor:
        return (counting_op(x, calls, "to_x") * counting_op(v, calls, "to_v")).sum()

    grad_v = tg.grad(g, argnums=1)(np.array([3.0, 4.0]), np.array([1.0, 1.0]))
    assert np.array_equal(grad_v, [12.0, 16.0]) and calls == ["to_v"]
    # Nested: the inner grad pulls back only to its own input, the outer only to its own.
    calls.clear()
    tg.grad(lambda x: tg.grad(lambda v: g(x, v))(np.ones(2)).sum())(np.ones(2))
    assert sorted(calls) == ["to_v", "to_x"]
    # A constant input: nothing recorded, so no rule to run.
    assert counting_op(Tensor(np.ones(2)), calls, "constant").op is None


def test_an_input_the_output_does_not_depend_on_gets_zeros() -> None:
    x = Tensor(np.ones(3), requires_grad=True)
    unused = Tensor(np.ones(2), requires_grad=True)
    (x * 2.0).sum().backward()
    assert unused.grad is None  # backward: only the leaves it reached
    grads = tg.grad(lambda a, b: (a * 2.0).sum(), argnums=(0, 1))(
        np.ones(3), np.ones((2, 2), np.float32)
    )
    assert np.array_equal(grads[1], np.zeros((2, 2))) and grads[1].dtype == np.float32


# --- recording switched off / cut ---------------------------------------------------------
def test_no_grad_records_nothing_and_enable_grad_records_again() -> None:
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        y = tg.exp(x) * x
        with tg.enable_grad():
            z = x * 2.0
    assert tg.is_grad_enabled()
    assert not y.requires_grad and y.op is None and y.inputs is None
    assert z.requires_grad and z.op == "mul"
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_no_grad_restores_the_mode_after_an_exception() -> None:
    with pytest.raises(ValueError), tg.no_grad():
        raise ValueError
    assert tg.is_grad_enabled()


@pytest.mark.parametrize("cut", [Tensor.detach, tg.stop_gradient], ids=["detach", "stop_gradient"])
def test_detach_and_stop_gradient_cut_the_graph(cut: Callable[[Tensor], Tensor]) -> None:
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    constant = cut(x * 3.0)
    assert not constant.requires_grad and constant.op is None
    (x * constant).sum().backward()
    assert np.array_equal(x.grad, 3 * x.data)  # not 6x: no gradient through the cut
    assert np.array_equal(tg.grad(lambda t: cut(t * t).sum())(np.ones(2)), [0.0, 0.0])
    assert np.array_equal(tg.grad(lambda t: (t * cut(t)).sum())(np.full(2, 5.0)), [5.0, 5.0])


def test_backward_with_create_graph_records_the_gradient() -> None:
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x**3).sum().backward(create_graph=True)
    first = x.grad
    assert isinstance(first, Tensor) and first.requires_grad
    assert np.allclose(first.data, 3 * x.data**2)
    x.zero_grad()
    first.sum().backward()
    assert np.allclose(x.grad, 6 * x.data)


# --- the walk itself ------------------------------------------------------------------------
def test_toposort_puts_every_node_before_its_inputs_and_skips_constants() -> None:
    x = Tensor(np.ones(2), requires_grad=True)
    a = x * 2.0
    b = tg.exp(a) + a * Tensor(np.ones(2))
    root = (b * a).sum()
    order = toposort(root)
    position = {id(node): i for i, node in enumerate(order)}
    assert order[0] is root and order[-1] is x and len(order) == len(position)
    for node in order:
        for arg in node.inputs or ():
            if isinstance(arg, Tensor) and arg.requires_grad:
                assert position[id(node)] < position[id(arg)]
    assert all(node.requires_grad for node in order)


@pytest.mark.parametrize(
    ("grad_shape", "shape"),
    [((3, 4), (4,)), ((3, 4), (1, 4)), ((3, 4), ()), ((2, 3, 4), (3, 1)), ((3, 4), (3, 4))],
)
def test_sum_to_reduces_a_broadcast_cotangent(
    grad_shape: tuple[int, ...], shape: tuple[int, ...]
) -> None:
    g = np.arange(float(np.prod(grad_shape))).reshape(grad_shape)
    expected = tg.grad(lambda t: (np.broadcast_to(1.0, grad_shape) * t * g).sum())(np.ones(shape))
    reduced = sum_to(g, shape)
    assert reduced.shape == shape and np.array_equal(reduced, expected)
    assert reduced.sum() == g.sum()


# --- the course's closed-form backprop (deeplearning.ai course 1 week 4) --------------------
def test_linear_backward_matches_the_course() -> None:
    rng = np.random.default_rng(1)
    m = 6
    W, A_prev, b = rng.normal(size=(3, 4)), rng.normal(size=(4, m)), rng.normal(size=(3, 1))
    dZ = rng.normal(size=(3, m))
    course_dW = dZ @ A_prev.T / m
    course_db = np.sum(dZ, axis=1, keepdims=True) / m
    course_dA_prev = W.T @ dZ

    # The course's dZ is per example; the cost sum(Z · dZ) / m has dcost/dZ = dZ / m.
    def cost(W: Tensor, A_prev: Tensor, b: Tensor) -> Tensor:
        return ((W @ A_prev + b) * dZ).sum() / m

    dW, dA_prev, db = tg.grad(cost, argnums=(0, 1, 2))(W, A_prev, b)
    assert np.allclose(dW, course_dW) and np.allclose(db, course_db)
    assert np.allclose(dA_prev, course_dA_prev / m)

    # Seeding backward with dZ itself gives the course's dA_prev exactly.
    leaves = [Tensor(v, requires_grad=True) for v in (W, A_prev, b)]
    (leaves[0] @ leaves[1] + leaves[2]).backward(dZ)
    assert np.allclose(leaves[1].grad, course_dA_prev)
    assert np.allclose(leaves[0].grad, m * course_dW)
    assert np.allclose(leaves[2].grad, m * course_db)


def test_activation_backwards_match_the_course() -> None:
    rng = np.random.default_rng(2)
    Z, dA = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    relu_dZ = np.where(Z > 0, dA, 0.0)
    s = 1 / (1 + np.exp(-Z))
    sigmoid_dZ = dA * s * (1 - s)
    for activation, course_dZ in ((tg.relu, relu_dZ), (tg.sigmoid, sigmoid_dZ)):
        z = Tensor(Z, requires_grad=True)
        activation(z).backward(dA)
        assert np.allclose(z.grad, course_dZ)


def test_cross_entropy_dAL_matches_the_course() -> None:
    rng = np.random.default_rng(3)
    m = 8
    AL = rng.uniform(0.05, 0.95, size=(1, m))
    Y = (rng.random((1, m)) > 0.5).astype(np.float64)
    course_dAL = -(Y / AL - (1 - Y) / (1 - AL))

    def total(AL: Tensor) -> Tensor:
        return -(Y * tg.log(AL) + (1 - Y) * tg.log(1 - AL)).sum()

    def mean(AL: Tensor) -> Tensor:
        return -(Y * tg.log(AL) + (1 - Y) * tg.log(1 - AL)).mean()

    assert np.allclose(tg.grad(total)(AL), course_dAL)
    assert np.allclose(tg.grad(mean)(AL), course_dAL / m)


def test_two_layer_network_gradients_match_the_course() -> None:
    params, X, Y = two_layer_problem(seed=4)
    m = X.shape[1]
    Z1 = params["W1"] @ X + params["b1"]
    A1 = np.maximum(Z1, 0)
    AL = 1 / (1 + np.exp(-(params["W2"] @ A1 + params["b2"])))
    dZ2 = AL - Y  # the course's dAL · σ'(Z2), simplified
    dA1 = params["W2"].T @ dZ2
    dZ1 = np.where(Z1 > 0, dA1, 0.0)
    course = {
        "W2": dZ2 @ A1.T / m,
        "b2": dZ2.sum(axis=1, keepdims=True) / m,
        "W1": dZ1 @ X.T / m,
        "b1": dZ1.sum(axis=1, keepdims=True) / m,
    }
    grads = tg.grad(two_layer_cost)(params, X, Y)
    for name, expected in course.items():
        assert np.allclose(grads[name], expected), name
