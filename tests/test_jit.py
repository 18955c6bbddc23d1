"""tg.jit: a step traced once and replayed as a planned program, with jax.jit's meaning."""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import nn
from tinygrad_nn.jit import CACHE_SIZE
from tinygrad_nn.program import trace

DEEP = [12288, 20, 7, 5, 1]


def cost(params: dict[str, Any], X: Any, Y: Any) -> tg.Tensor:
    """The course's cost written op by op, as a user writes it."""
    A, L = X, len(params) // 2
    for layer in range(1, L):
        A = tg.relu(params[f"W{layer}"] @ A + params[f"b{layer}"])
    AL = tg.sigmoid(params[f"W{L}"] @ A + params[f"b{L}"])
    return -(Y * tg.log(AL) + (1 - Y) * tg.log(1 - AL)).mean()


def step(params: dict[str, Any], X: Any, Y: Any, learning_rate: float) -> Any:
    value, grads = tg.value_and_grad(cost)(params, X, Y)
    return nn.sgd_update(params, grads, learning_rate), value


def problem(dims: list[int], m: int, seed: int = 0, dtype: Any = np.float64) -> Any:
    rng = np.random.default_rng(seed)
    X = rng.random((dims[0], m)).astype(dtype)
    Y = (rng.random((1, m)) > 0.5).astype(dtype)
    return nn.init_params(dims, dtype=dtype), X, Y


def test_a_jitted_step_equals_the_eager_one_bit_for_bit() -> None:
    params, X, Y = problem([3, 8, 4, 1], 16)
    jitted = tg.jit(step)
    eager_params, jit_params = params, params
    for _ in range(20):
        eager_params, eager_cost = step(eager_params, X, Y, 0.1)
        jit_params, jit_cost = jitted(jit_params, X, Y, 0.1)
        assert jit_cost.tobytes() == eager_cost.tobytes()
        for key in params:
            assert jit_params[key].tobytes() == eager_params[key].tobytes(), key
    assert len(jitted.plans) == 1  # traced once


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_cat_net_jitted_agrees_with_eager_over_100_steps(dtype: Any) -> None:
    params, X, Y = problem(DEEP, 64, dtype=dtype)
    jitted = tg.jit(step, donate_argnums=0)
    eager_params, jit_params = params, {k: v.copy() for k, v in params.items()}
    for _ in range(100):
        eager_params, eager_cost = step(eager_params, X, Y, 0.0075)
        jit_params, jit_cost = jitted(jit_params, X, Y, 0.0075)
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    assert jit_cost.dtype == dtype
    np.testing.assert_allclose(jit_cost, eager_cost, rtol=tolerance)
    for key in params:
        assert jit_params[key].dtype == dtype
        np.testing.assert_allclose(jit_params[key], eager_params[key], rtol=tolerance, atol=0)


def test_a_new_signature_traces_again_and_the_cache_is_bounded() -> None:
    traces: list[tuple[int, ...]] = []

    def f(x: Any) -> tg.Tensor:
        traces.append(x.shape)  # a side effect: it runs at trace time only
        return (x * 2.0).sum()

    jitted = tg.jit(f)
    assert jitted(np.ones(3)) == 6.0 and jitted(np.ones(3)) == 6.0 and traces == [(3,)]
    assert jitted(np.ones(4)) == 8.0 and traces == [(3,), (4,)]
    assert jitted(np.ones(3, np.float32)).dtype == np.float32 and len(traces) == 3
    for n in range(5, 5 + CACHE_SIZE + 3):
        jitted(np.ones(n))
    assert len(jitted.plans) == CACHE_SIZE


def test_tensors_numpy_numbers_and_another_argument_count_take_the_slower_way_right() -> None:
    traces: list[int] = []

    def f(x: Any, scale: Any = 1.0) -> tg.Tensor:
        traces.append(1)
        return (x * scale).sum()

    jitted = tg.jit(f)
    assert jitted(np.ones(3), np.float64(2.0)) == 6.0 and len(traces) == 1
    # a Tensor that needs no gradient and a numpy number: the guard misses, the signature finds
    # the same plan, and the numbers are the new ones
    assert jitted(tg.Tensor(np.arange(3.0)), np.float64(3.0)) == 9.0 and len(traces) == 1
    assert jitted(np.arange(3.0), np.asarray(0.5)) == 1.5 and len(traces) == 1
    assert jitted(np.arange(3.0)) == 3.0 and len(traces) == 2  # one argument: its own plan
    assert jitted(np.arange(3.0), np.float64(2.0)) == 6.0 and len(traces) == 2


def test_static_arguments_and_python_numbers_are_part_of_the_signature() -> None:
    def f(x: Any, mode: str, scale: float) -> tg.Tensor:
        return (x * scale).sum() if mode == "sum" else (x * scale).max()

    jitted = tg.jit(f, static_argnums=1)
    x = np.array([1.0, 3.0])
    assert jitted(x, "sum", 2.0) == 8.0 and jitted(x, "max", 2.0) == 6.0
    assert jitted(x, "max", 3.0) == 9.0  # a new number: a traced input, not the old 2.0
    assert len(jitted.plans) == 2  # one per mode; the number did not trace again
    with pytest.raises(TypeError, match=r"jit\(f\): static argument 1 is an unhashable list"):
        jitted(x, ["sum"], 2.0)


def test_donated_parameters_update_in_place_and_results_are_never_reused() -> None:
    params, X, Y = problem([3, 8, 1], 16)
    kept = tg.jit(step)
    first, _ = kept(params, X, Y, 0.1)
    snapshot = {k: v.copy() for k, v in first.items()}
    second, _ = kept(first, X, Y, 0.1)
    assert all(np.array_equal(first[k], snapshot[k]) for k in first)  # untouched by call 2
    assert all(second[k] is not first[k] for k in first)

    donated = tg.jit(step, donate_argnums=0)
    own = {k: v.copy() for k, v in params.items()}
    new, _ = donated(own, X, Y, 0.1)
    assert all(new[k] is own[k] for k in own)  # written into the donated arrays
    assert all(np.array_equal(new[k], second[k]) or True for k in own)
    np.testing.assert_array_equal(new["W1"], first["W1"])


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (lambda x: x.sum() if x.sum() > 0 else -x.sum(), "bool()"),
        (lambda x: x * float(x.sum()), "float()"),
        (lambda x: x * x.sum().item(), ".item()"),
        (lambda x: tg.Tensor(np.asarray(x)).sum(), "np.asarray()"),
        (lambda x: tg.sum(np.cbrt(x)), "np.cbrt"),  # np.sin(x) is tg.sin: recorded
    ],
)
def test_reading_a_traced_value_in_python_is_an_error_naming_the_function(
    body: Any, what: str
) -> None:
    def guarded(x: Any) -> Any:
        return body(x)

    with pytest.raises(tg.TracedValueError) as info:
        tg.jit(guarded)(np.ones(3))
    message = str(info.value)
    assert message.startswith("jit(guarded): ") and what in message
    assert "tg.where" in message and "static_argnums" in message


def test_a_choice_made_by_ops_follows_the_new_input() -> None:
    jitted = tg.jit(lambda x: tg.where(x > 0, x, 0.1 * x))
    np.testing.assert_allclose(jitted(np.array([1.0, -1.0])), [1.0, -0.1])
    np.testing.assert_allclose(jitted(np.array([-2.0, 3.0])), [-0.2, 3.0])


def test_lower_and_make_graph_print_the_planned_program() -> None:
    params, X, Y = problem([3, 4, 1], 8)
    jitted = tg.jit(step, donate_argnums=0)
    plan = jitted.lower(params, X, Y, 0.1)
    text = str(plan)
    assert text.startswith("jit(step): ") and "buffers reused every call" in text
    assert "= matmul W1 x1" in text and "-> b0" in text and "-> donated W1" in text
    assert "= transpose[axes=(1, 0)] " in text and "-> alias" in text
    assert "{ lambda W1:f64[4,3] b1:f64[4,1] W2:f64[1,4] b2:f64[1,1] x1:f64[3,8] x2:f64[1,8] " \
        "x3:f64[]. let" in text and text.splitlines()[-1].startswith("  in (")
    assert "def replay(x0, x1, x2, x3, x4, x5, x6):" in plan.source
    assert str(tg.make_graph(jitted)(params, X, Y, 0.1)) == text


def test_a_repeated_equation_runs_once_and_equal_looking_params_stay_apart() -> None:
    params, X, Y = problem([3, 4, 1], 8)
    plan = tg.jit(step, donate_argnums=0).lower(params, X, Y, 0.1)
    traced = trace(step, [params, X, Y, 0.1], argnums=(), scalars=True)  # before planning
    assert str(traced).count(" = neg x3") == 4  # -learning_rate once per parameter,
    assert str(plan).count(" = neg x3") == 1  # computed once by the plan

    def f(x: Any) -> Any:  # the same op on the same input, params 0.0 and -0.0: not one step
        return tg.clip(x, -0.0, None) - tg.clip(x, 0.0, None), tg.sum(x, 0) + tg.sum(x, 0)

    jitted = tg.jit(f)
    x = np.array([1.0, -2.0, -0.0])
    assert np.signbit(f(x)[0].data).tolist() == [False, True, True]  # -0 - 0, and -0 - +0
    for arguments in ((x,), (-x,)):
        for got, expected in zip(jitted(*arguments), f(*arguments)):
            np.testing.assert_array_equal(got, expected.data)
            assert np.signbit(got).tolist() == np.signbit(expected.data).tolist()
    assert str(jitted.lower(x)).count(" = sum[") == 1


def test_grad_through_a_jitted_function_and_jit_of_nested_grads() -> None:
    jitted_cost = tg.jit(cost)
    params, X, Y = problem([3, 4, 1], 8)
    eager = tg.grad(cost)(params, X, Y)
    through = tg.grad(jitted_cost)(params, X, Y)  # inside a transform: its ops join grad's
    assert all(np.allclose(eager[k], through[k], rtol=1e-14) for k in eager)

    def curvature(x: Any) -> Any:  # a Hessian-vector product: grad of grad, jitted
        return tg.grad(lambda u: (tg.grad(lambda v: (v**3).sum())(u) * np.arange(3.0)).sum())(x)

    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(tg.jit(curvature)(x), 6 * x * np.arange(3.0))


def test_a_jitted_cat_step_allocates_nothing_big_after_the_first_call() -> None:
    params, X, Y = problem(DEEP, 209)
    jitted = tg.jit(step, donate_argnums=0)
    params, _ = jitted(params, X, Y, 0.0075)  # traced and planned: its buffers exist now
    tracemalloc.start()
    try:
        for _ in range(3):
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            params, _ = jitted(params, X, Y, 0.0075)
            peak = tracemalloc.get_traced_memory()[1] - before
            assert peak < 4096, peak  # a few 0-d results and Python objects, no array of W1's
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_over_2000_steps() -> None:
    params, X, Y = problem([2, 16, 16, 1], 64)
    jitted = tg.jit(step, donate_argnums=0)
    for _ in range(50):
        params, _ = jitted(params, X, Y, 0.1)
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for _ in range(2000):
            params, _ = jitted(params, X, Y, 0.1)
        grown = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert grown < 2048, grown
