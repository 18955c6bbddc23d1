"""numpy's ops (issue 19), every case of ``op_cases.CASES``: the values numpy gives (float32 in,
float32 out), first and second order gradients against float64 central differences (also on
hypothesis-drawn shapes, broadcast where the op broadcasts), a ``jit`` replay on new values equal
to eager, and ONNX Runtime giving the engine's numbers. Then the special points: a product's
gradient at zeros, the permutation of a sort with ties, indices recomputed under ``jit``, …
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from op_cases import CASES, OpCase
from test_export import ORT_FLOAT32_ONLY, needs_onnx, run
from test_ops_gradients import assert_gradients

import tinygrad_nn as tg
from tinygrad_nn import Tensor, export
from tinygrad_nn.program import trace

GRAD_CASES = [c for c in CASES if c.grad]
DRAWN_CASES = [c for c in CASES if c.shapes is not None]
ids = [c.name for c in CASES]


def rng_of(case: OpCase) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(case.name.encode()))


def as_tensor(out: Any) -> Tensor:
    """An op's result as one Tensor (split's pieces flattened and joined)."""
    if isinstance(out, list):
        return tg.concatenate([tg.reshape(piece, -1) for piece in out])
    return out


def assert_close(got: Any, expected: Any, rtol: float) -> None:
    """Same dtype and shape; floats within ``rtol`` of the larger of each value and the
    largest one (a sum may cancel to near 0), the rest equal. Lists piece by piece."""
    if isinstance(expected, (list, tuple)):
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert_close(g, e, rtol)
        return
    got = got.numpy() if isinstance(got, Tensor) else np.asarray(got)
    expected = expected.numpy() if isinstance(expected, Tensor) else np.asarray(expected)
    assert (got.dtype, got.shape) == (expected.dtype, expected.shape)
    if expected.dtype.kind == "f":
        scale = float(np.max(np.abs(expected), initial=1.0))
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * scale)
    else:
        np.testing.assert_array_equal(got, expected)


def of_floats(case: OpCase, inputs: list[np.ndarray]) -> tuple[Any, list[np.ndarray]]:
    """The op as a function of its float inputs (the index arrays fixed), and those inputs."""
    positions = case.differentiable

    def fn(*floats: Any) -> Tensor:
        full, given_ = list(inputs), iter(floats)
        for k in positions:
            full[k] = next(given_)
        return as_tensor(case.fn(*full))

    return fn, [inputs[k] for k in positions]


# --- values ---------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=ids)
def test_values_are_numpys(case: OpCase) -> None:
    inputs = case.draw_inputs(rng_of(case))
    assert_close(case.fn(*map(Tensor, inputs)), case.reference(*inputs), 1e-12)


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_float32_in_float32_out(case: OpCase) -> None:
    inputs = [x.astype(np.float32) if x.dtype == np.float64 else x
              for x in case.draw_inputs(rng_of(case))]
    assert_close(case.fn(*map(Tensor, inputs)), case.reference(*inputs), 1e-5)


# --- gradients ------------------------------------------------------------------------------
@pytest.mark.parametrize("case", GRAD_CASES, ids=[c.name for c in GRAD_CASES])
def test_gradients_match_central_differences(case: OpCase) -> None:
    fn, floats = of_floats(case, case.draw_inputs(rng_of(case)))
    assert_gradients(fn, floats, seed=1)


@pytest.mark.parametrize("case", DRAWN_CASES, ids=[c.name for c in DRAWN_CASES])
@settings(max_examples=8, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_values_and_gradients_on_drawn_shapes(case: OpCase, data: st.DataObject,
                                              seed: int) -> None:
    assert case.shapes is not None
    inputs = case.draw_inputs(np.random.default_rng(seed), data.draw(case.shapes, label="shapes"))
    assert_close(case.fn(*map(Tensor, inputs)), case.reference(*inputs), 1e-12)
    if case.grad:
        fn, floats = of_floats(case, inputs)
        assert_gradients(fn, floats, seed)


# --- jit: traced on one draw, replayed on another ---------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=ids)
def test_a_jit_replay_on_new_values_equals_eager(case: OpCase) -> None:
    rng = rng_of(case)
    first, second = case.draw_inputs(rng), case.draw_inputs(rng)
    jitted = tg.jit(case.fn)
    jitted(*first)
    assert_close(jitted(*second), case.fn(*map(Tensor, second)), 1e-12)
    assert len(jitted.plans) == 1
    if not case.grad:
        return
    weights = rng.normal(size=as_tensor(case.fn(*map(Tensor, first))).shape)

    def loss(*inputs: Any) -> Tensor:
        return (as_tensor(case.fn(*inputs)) ** 2 * weights).sum()

    gradient = tg.grad(loss, argnums=case.differentiable)
    jitted_gradient = tg.jit(gradient)
    jitted_gradient(*first)
    assert_close(list(jitted_gradient(*second)), list(gradient(*second)), 1e-12)


# --- ONNX Runtime ---------------------------------------------------------------------------
def primitives_of(case: OpCase) -> set[tg.Primitive]:
    """The primitives of the case's program (none if it cannot be traced: its other tests say
    why)."""
    try:
        program = trace(case.fn, case.draw_inputs(rng_of(case)), argnums=())
    except Exception:
        return set()
    return {node.primitive for node in program.ops if node.primitive is not None}


ONNX_CASES = [c for c in CASES if (used := primitives_of(c)) and all(
    export.ONNX_OPS.get(p) for p in used)]


@needs_onnx
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", ONNX_CASES, ids=[c.name for c in ONNX_CASES])
def test_onnx_runtime_gives_the_engines_numbers(case: OpCase, dtype: Any) -> None:
    float32_only = sorted(p.name for p in primitives_of(case) & ORT_FLOAT32_ONLY)
    if dtype == np.float64 and float32_only:
        pytest.skip(f"ONNX Runtime has no float64 kernel for {float32_only} (valid ONNX)")
    rng = rng_of(case)
    first, second = ([x.astype(dtype) if x.dtype.kind == "f" else x
                      for x in case.draw_inputs(rng)] for _ in range(2))
    model = tg.export_onnx(case.fn, *first, dynamic_batch=False)
    got = list(run(model, **{f"x{k}": x for k, x in enumerate(second)}).values())
    expected = case.fn(*map(Tensor, second))
    assert_close(got if isinstance(expected, list) else got[0], expected,
                 1e-12 if dtype == np.float64 else 1e-5)


def test_every_case_with_an_onnx_mapping_runs_in_onnx_runtime() -> None:
    assert {c.name for c in CASES} - {c.name for c in ONNX_CASES} == set()


# --- the special points -----------------------------------------------------------------------
def test_a_products_gradient_is_exact_at_zeros_to_second_order() -> None:
    x = np.array([[0.0, 2.0, 3.0], [1.0, 0.0, 0.0], [2.0, 3.0, 4.0]])
    assert np.array_equal(tg.grad(lambda t: tg.prod(t, axis=1).sum())(x),
                          [[6, 0, 0], [0, 0, 0], [12, 8, 6]])
    # d²(x0·x1·x2)/dx0 dxj at x0 = 0: x2 for j = 1, x1 for j = 2 (not 0, as prod/x would say)
    row = tg.grad(lambda t: tg.grad(lambda s: tg.prod(s))(t)[0])(np.array([0.0, 2.0, 3.0]))
    assert np.array_equal(row, [0.0, 3.0, 2.0])
    assert tg.grad(lambda t: tg.prod(t))(np.zeros(3)).tolist() == [0.0, 0.0, 0.0]


def test_floor_ceil_and_round_have_zero_gradient_and_mod_its_own() -> None:
    x = np.array([-1.7, -0.2, 0.4, 2.5])
    for op in (tg.floor, tg.ceil, tg.round, tg.rint):
        assert np.array_equal(tg.grad(lambda t, op=op: (op(t) + t).sum())(x), np.ones(4))
    dx, dy = tg.grad(lambda a, b: tg.mod(a, b).sum(), argnums=(0, 1))(x, np.array([0.75]))
    assert np.array_equal(dx, np.ones(4)) and dy == [-np.floor(x / 0.75).sum()]
    assert np.array_equal(tg.round(np.array([0.5, 1.5, 2.5, -0.5])).data, [0, 2, 2, -0])


def test_a_sort_passes_the_gradient_back_through_its_permutation_ties_in_order() -> None:
    x = np.array([3.0, 1.0, 3.0, 2.0])
    grad = tg.grad(lambda t: (tg.sort(t) * np.array([1.0, 2.0, 3.0, 4.0])).sum())(x)
    assert np.array_equal(grad, [3.0, 1.0, 4.0, 2.0])  # the first 3 sorts before the second
    assert np.array_equal(tg.argsort(x).data, np.argsort(x, kind="stable"))


def test_repeated_gather_indices_accumulate_their_gradients() -> None:
    x, i = np.arange(6.0).reshape(2, 3), np.array([[0, 0, 1], [0, 1, 1], [0, 0, 0]])
    grad = tg.grad(lambda t: tg.take_along_axis(t, i, 0).sum())(x)
    assert np.array_equal(grad, [[3, 2, 1], [0, 1, 2]])
    assert np.array_equal(tg.grad(lambda t: tg.take(t, [2, 2, 0]).sum())(np.arange(3.0)),
                          [1.0, 0.0, 2.0])


def test_a_traced_index_is_an_input_recomputed_on_every_call() -> None:
    x = np.arange(12.0).reshape(3, 4)
    for op in (lambda t, i: tg.take(t, i, axis=1), lambda t, i: tg.take_along_axis(t, i, 1)):
        jitted = tg.jit(lambda t, i, op=op: op(t, tg.argsort(i, axis=-1)))
        for i in (np.array([[3.0, 1.0, 2.0, 0.0]] * 3), np.array([[0.0, 1.0, 3.0, 2.0]] * 3)):
            assert np.array_equal(jitted(x, i), op(x, np.argsort(i, axis=-1)).data)
        assert len(jitted.plans) == 1


def test_log1p_and_expm1_are_exact_where_1_plus_x_rounds_to_1() -> None:
    tiny = np.array([1e-20, -1e-18, 3e-17])
    assert np.array_equal(tg.log1p(tiny).data, tiny) and np.array_equal(tg.expm1(tiny).data, tiny)
    assert tg.logaddexp(1000.0, 1000.0).item() == 1000.0 + np.log(2.0)


@needs_onnx
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_composed_onnx_forms_agree_at_the_extremes(dtype: Any) -> None:
    """log1p, expm1, logaddexp and numpy's mod have no ONNX operator: their emits build them
    from others, and agree with numpy where a naive form would not (tiny, huge, infinite)."""

    def extremes(x: Any, y: Any) -> dict[str, Tensor]:
        return {"log1p": tg.log1p(tg.abs(x) - 0.999), "expm1": tg.expm1(x),
                "logaddexp": tg.logaddexp(x, y), "mod": tg.mod(x, y)}

    x = np.array([-1000, -800, -50, -1e-10, 0, 1e-10, 5.5, 50, 700, -np.inf, np.inf], dtype)
    y = np.array([-1000, 3, -7, 1e-10, -2, -1e-10, -2, 50, -3.5, -np.inf, 2], dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = extremes(x, y)
        got = run(tg.export_onnx(extremes, x, y), x0=x, x1=y)
    for name, value in expected.items():
        finite = np.isfinite(value.data)  # numpy's NaN for x = inf in mod: not compared
        assert_close(got[name][finite], value.data[finite], 1e-12 if dtype == np.float64
                     else 1e-5)
        assert np.array_equal(np.isinf(got[name]), np.isinf(value.data)), name


@needs_onnx
def test_integer_mod_exports_with_the_sign_of_the_divisor() -> None:
    x, y = np.array([-7, 7, -7, 7, 0, 6]), np.array([3, 3, -3, -3, 5, -3])
    assert_close(run(tg.export_onnx(tg.mod, x, y), x0=x, x1=y)["output"], np.mod(x, y), 0)


def test_numpys_ufuncs_on_a_tensor_record_the_op_of_the_same_meaning() -> None:
    jitted = tg.jit(lambda x, y: np.sin(x) + np.remainder(y, x) + np.logaddexp(x, y))
    x, y = np.array([0.5, 1.5]), np.array([-2.0, 3.0])
    jitted(x, y)
    x, y = np.array([2.5, -1.0]), np.array([4.0, 0.5])
    expected = np.sin(x) + np.remainder(y, x) + np.logaddexp(x, y)
    np.testing.assert_allclose(jitted(x, y), expected, rtol=1e-15)
    assert tg.grad(lambda t: np.cos(t).sum())(x).tolist() == (-np.sin(x)).tolist()
