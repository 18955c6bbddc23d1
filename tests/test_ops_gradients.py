"""Every op's gradient, first and second order, against float64 central differences.

Each case is an op applied to inputs drawn from a domain that keeps clear of its kinks
(0 for abs / relu, ties for max / maximum, the bounds for clip). The scalar that is
differentiated is ``sum(W * h(out + c))`` with ``h(z) = z³ + z`` and a random ``W``: the
whole Jacobian counts, and the op's cotangent depends on its inputs, so second order
differentiates the op's rule too.
Three oracles: ``tg.check_grads`` (per element), an independent central difference along a
random direction, and for second order the central difference of the gradient itself.
"""

import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_nn as tg
from tinygrad_nn import Tensor, ops

Shape = tuple[int, ...]
# Central differences balance truncation (ε²) against roundoff (1e-16·|f|/ε) near ε = 1e-5.
EPS = 1e-5
FIRST_ORDER_TOL = 1e-6
SECOND_ORDER_TOL = 1e-5
FAST = settings(max_examples=10, deadline=None)
seeds = st.integers(0, 2**32 - 1)


# --- inputs ---------------------------------------------------------------------------------
def draw(domain: str, shape: Shape, rng: np.random.Generator) -> np.ndarray:
    """Float64 values of ``shape`` from a domain where the ops using it are smooth."""
    if domain == "any":
        values = rng.normal(size=shape)
    elif domain == "positive":  # log, sqrt, the base of a power
        values = rng.uniform(0.5, 2.0, size=shape)
    elif domain == "nonzero":  # abs, relu, a divisor: at least 0.2 from the kink
        values = rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.2, 2.0, size=shape)
    elif domain == "odd_tenths":  # clip at ±0.4: at least 0.1 from either bound
        values = 0.1 * (2 * rng.integers(-10, 10, size=shape) + 1)
    elif domain == "odd_quarters":  # against "halves": never a tie in maximum / minimum
        values = 0.25 * (2 * rng.integers(-6, 6, size=shape) + 1)
    elif domain == "halves":
        values = 0.5 * rng.integers(-6, 6, size=shape)
    elif domain == "distinct":  # max: no two elements within 0.3 of each other
        size = int(np.prod(shape))
        values = ((rng.permutation(size) - size / 2) * 0.3).reshape(shape)
    elif domain == "open_unit":  # arcsin, arccos, tan, log1p: inside (-1, 1), 0.1 from its ends
        values = rng.uniform(-0.9, 0.9, size=shape)
    elif domain == "ones_twos":  # a divisor of odd quarters (mod): x / y is never near an integer
        values = rng.choice([-2.0, -1.0, 1.0, 2.0], size=shape)
    elif domain == "off_kinks":  # the activations: each side of 0, ±1 and 6, 0.2 from them
        values = rng.choice([-2.5, -0.5, 0.5, 3.5, 7.0], size=shape) + rng.uniform(
            -0.3, 0.3, size=shape)
    elif domain == "sixteenths":  # floor, ceil, round (to 0 or 1 decimals): 1/16 from any step
        values = (2 * rng.integers(-24, 24, size=shape) + 1) / 16
    else:
        raise ValueError(domain)
    return np.asarray(values, dtype=np.float64)


class Case(NamedTuple):
    """An op on some inputs: ``fn(*tensors)``, and a (domain, shape) per input."""

    name: str
    fn: Callable[..., Tensor]
    inputs: tuple[tuple[str, Shape], ...]

    def draw_inputs(self, rng: np.random.Generator) -> list[np.ndarray]:
        return [draw(domain, shape, rng) for domain, shape in self.inputs]


# --- oracles --------------------------------------------------------------------------------
def relative_error(exact: list[Any], numeric: list[Any]) -> float:
    a = np.concatenate([np.ravel(x) for x in exact])
    b = np.concatenate([np.ravel(x) for x in numeric])
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / scale) if scale > 1e-12 else 0.0


def assert_directional_derivative(
    f: Callable[..., Tensor], inputs: list[np.ndarray], rng: np.random.Generator
) -> None:
    """⟨∇f, v⟩ = (f(x + εv) − f(x − εv)) / 2ε along one random direction v."""
    directions = [rng.normal(size=x.shape) for x in inputs]
    gradients = tg.grad(f, argnums=tuple(range(len(inputs))))(*inputs)
    analytic = sum(float(np.vdot(g, d)) for g, d in zip(gradients, directions))

    def along(t: float) -> float:
        with tg.no_grad():
            return f(*[Tensor(x + t * d) for x, d in zip(inputs, directions)]).item()

    def quotient(step: float) -> float:
        return (along(step) - along(-step)) / (2 * step)

    # Richardson's extrapolation cancels the ε² truncation term of the central difference,
    # which a large third derivative along v (a cubic head on a broadcast matmul) can make
    # bigger than the tolerance: the oracle's error is then O(ε⁴) plus roundoff.
    numeric = (4 * quotient(EPS / 2) - quotient(EPS)) / 3
    # Relative, plus a floor a hundred times the difference quotient's roundoff.
    allowed = FIRST_ORDER_TOL * (abs(analytic) + abs(numeric)) + 1e-9 * (1 + abs(along(0.0)))
    assert abs(analytic - numeric) <= allowed, (analytic, numeric)


# Off every grid of `draw`, so no output sits where h'' = 0.
HEAD_SHIFT = 0.1234


def scalar_head(fn: Callable[..., Tensor], weights: np.ndarray) -> Callable[..., Tensor]:
    """x ↦ sum(W · h(fn(x) + c)) with h(z) = z³ + z.

    Every output element counts. h' ≥ 1: no slope vanishes while the difference quotient's
    truncation error does not. h'' ≠ 0: no op's curvature is cancelled (a square would:
    sqrt(x)² is linear). h'''' = 0: for linear ops, second-order differences are exact.
    """

    def scalar(*xs: Any) -> Tensor:
        z = fn(*xs) + HEAD_SHIFT
        return ((z * z * z + z) * weights).sum()

    return scalar


def assert_gradients(fn: Callable[..., Tensor], inputs: list[np.ndarray], seed: int) -> None:
    """First and second order gradients of ``fn`` at ``inputs`` equal central differences."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=fn(*[Tensor(x) for x in inputs]).shape)
    scalar = scalar_head(fn, weights)
    positions = tuple(range(len(inputs)))

    first = tg.check_grads(scalar, tuple(inputs), eps=EPS)
    assert first.max_error < FIRST_ORDER_TOL, first
    assert_directional_derivative(scalar, inputs, rng)

    # Second order, as grad of grad: d/dx ⟨∇f(x), u⟩ = H u.
    gradient = tg.grad(scalar, argnums=positions)
    directions = [rng.normal(size=x.shape) for x in inputs]

    def gradient_along(*xs: Any) -> Tensor:
        return sum((g * u).sum() for g, u in zip(gradient(*xs), directions))

    second = tg.check_grads(gradient_along, tuple(inputs), eps=EPS)
    assert second.max_error < SECOND_ORDER_TOL, second

    # Second order, as backward(create_graph=True) twice, against differences of the gradient.
    leaves = [Tensor(x, requires_grad=True) for x in inputs]
    scalar(*leaves).backward(create_graph=True)
    first_grads = [leaf.grad for leaf in leaves]
    for leaf in leaves:
        leaf.zero_grad()
    along = sum((g * u).sum() for g, u in zip(first_grads, directions))
    assert isinstance(along, Tensor) and along.requires_grad
    along.backward()
    hvp = [np.zeros_like(x) if leaf.grad is None else leaf.grad for x, leaf in zip(inputs, leaves)]
    plus = gradient(*[x + EPS * u for x, u in zip(inputs, directions)])
    minus = gradient(*[x - EPS * u for x, u in zip(inputs, directions)])
    numeric = [(p - m) / (2 * EPS) for p, m in zip(plus, minus)]
    assert relative_error(hvp, numeric) < SECOND_ORDER_TOL


# --- the cases ------------------------------------------------------------------------------
UNARY: dict[str, tuple[Callable[[Tensor], Tensor], str]] = {
    "neg": (lambda x: -x, "any"),
    "exp": (tg.exp, "any"),
    "log": (tg.log, "positive"),
    "sqrt": (tg.sqrt, "positive"),
    "abs": (tg.abs, "nonzero"),
    "relu": (tg.relu, "nonzero"),
    "sigmoid": (tg.sigmoid, "any"),
    "tanh": (tg.tanh, "any"),
    "log_sigmoid": (tg.log_sigmoid, "any"),
    "softplus": (tg.softplus, "any"),
    # x² and x³ are flat at 0, where a difference quotient is all truncation error.
    "pow_2": (lambda x: x**2, "nonzero"),
    "pow_3": (lambda x: x**3, "nonzero"),
    "pow_half": (lambda x: x**0.5, "positive"),
    "pow_minus_1.5": (lambda x: x**-1.5, "positive"),
    "rpow_2": (lambda x: 2.0**x, "any"),
    "scalar_add": (lambda x: x + 1.5, "any"),
    "scalar_rsub": (lambda x: 1.5 - x, "any"),
    "scalar_mul": (lambda x: 2.5 * x, "any"),
    "scalar_div": (lambda x: x / 4.0, "any"),
    "scalar_rdiv": (lambda x: 3.0 / x, "nonzero"),
    "clip": (lambda x: tg.clip(x, -0.4, 0.4), "odd_tenths"),
    "clip_low": (lambda x: x.clip(-0.4, None), "odd_tenths"),
    "clip_high": (lambda x: x.clip(None, 0.4), "odd_tenths"),
    "exp_then_T": (lambda x: x.exp().T, "any"),
}

BINARY: dict[str, tuple[Callable[[Tensor, Tensor], Tensor], str, str]] = {
    "add": (lambda x, y: x + y, "any", "any"),
    "sub": (lambda x, y: x - y, "any", "any"),
    "mul": (lambda x, y: x * y, "any", "any"),
    "div": (lambda x, y: x / y, "any", "nonzero"),
    "pow": (lambda x, y: x**y, "positive", "any"),
    "maximum": (tg.maximum, "odd_quarters", "halves"),
    "minimum": (tg.minimum, "odd_quarters", "halves"),
}

BROADCAST_SHAPES: list[Shape] = [(), (4,), (3, 4), (1, 4)]
WHERE_MASK = np.array([[True], [False], [True]])  # (3, 1): broadcasts with every shape above

MATMUL_SHAPES: list[tuple[Shape, Shape]] = [
    ((3, 4), (4, 2)),
    ((4,), (4, 2)),
    ((3, 4), (4,)),
    ((4,), (4,)),
    ((2, 3, 4), (4, 5)),
    ((3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((1, 3, 4), (2, 4, 2)),
    ((4,), (2, 4, 3)),
    ((2, 3, 4), (4,)),
]

CONSTANT = np.array([[0.5, -1.0, 2.0]], dtype=np.float32)  # float32: it must not upcast
CONSTANT_MASK = np.array([[True, False, True, True], [False, False, True, False], [True] * 4])

SHAPE_CASES: list[Case] = [
    Case("reshape", lambda x: x.reshape(2, 6), (("any", (3, 4)),)),
    Case("reshape_infer", lambda x: tg.reshape(x, (4, -1)), (("any", (2, 6)),)),
    Case("reshape_to_0d", lambda x: x.reshape(()), (("any", (1, 1)),)),
    Case("transpose_T", lambda x: x.T, (("any", (3, 4)),)),
    Case("transpose_reversed", lambda x: x.transpose(), (("any", (2, 3, 4)),)),
    Case("transpose_axes", lambda x: x.transpose(1, 2, 0), (("any", (2, 3, 4)),)),
    Case("transpose_fn", lambda x: tg.transpose(x, (2, 0, 1)), (("any", (2, 3, 4)),)),
    Case("swapaxes", lambda x: x.swapaxes(0, 2), (("any", (2, 3, 4)),)),
    Case("flatten", lambda x: x.flatten(), (("any", (2, 3, 2)),)),
    Case("flatten_fn", tg.flatten, (("any", (3, 2)),)),
    Case("broadcast_to", lambda x: x.broadcast_to((3, 4)), (("any", (1, 4)),)),
    Case("broadcast_to_rank", lambda x: tg.broadcast_to(x, (2, 3, 4)), (("any", (4,)),)),
    Case("getitem_slice", lambda x: x[1:3], (("any", (5,)),)),
    Case("getitem_negative_step", lambda x: x[::-2], (("any", (5,)),)),
    Case("getitem_column", lambda x: x[:, 1], (("any", (3, 4)),)),
    Case("getitem_int", lambda x: x[-1], (("any", (3, 4)),)),
    Case("getitem_newaxis_ellipsis", lambda x: x[None, ..., 1:], (("any", (3, 4)),)),
    Case("getitem_repeated", lambda x: x[[0, 0, 2, 0]], (("any", (3,)),)),
    Case("getitem_int_array_2d", lambda x: x[np.array([[0, 1], [2, 2]])], (("any", (3, 4)),)),
    Case("getitem_pairs_repeated", lambda x: x[[0, 0, 1], [2, 2, 2]], (("any", (3, 4)),)),
    Case("getitem_slice_and_array", lambda x: x[1:, [0, 0, 3]], (("any", (3, 4)),)),
    Case("getitem_ellipsis_array", lambda x: x[..., [1, 1, 0]], (("any", (2, 3)),)),
    Case("getitem_bool_mask", lambda x: x[CONSTANT_MASK], (("any", (3, 4)),)),
    Case(
        "concatenate_axis0",
        lambda x, y: tg.concatenate([x, y]),
        (("any", (2, 3)), ("any", (1, 3))),
    ),
    Case(
        "concatenate_axis1",
        lambda x, y: tg.concatenate([x, y], axis=1),
        (("any", (2, 3)), ("any", (2, 2))),
    ),
    Case(
        "concatenate_three_last_axis",
        lambda x, y, z: tg.concatenate([x, y, z], axis=-1),
        (("any", (2, 1)), ("any", (2, 2)), ("any", (2, 3))),
    ),
    Case(
        "concatenate_with_constant",
        lambda x, y: tg.concatenate([x, CONSTANT, y]),
        (("any", (2, 3)), ("any", (1, 3))),
    ),
    Case("check_range", lambda x: ops.check_range(x * 2.0, low=-1e9, high=1e9,
                                                  message="{value} is out of range"),
         (("any", (3, 4)),)),
    Case("stack_axis0", lambda x, y: tg.stack([x, y]), (("any", (3,)), ("any", (3,)))),
    Case("stack_axis1", lambda x, y: tg.stack([x, y], axis=1), (("any", (2, 3)), ("any", (2, 3)))),
    Case(
        "stack_three_last_axis",
        lambda x, y, z: tg.stack([x, y, z], axis=-1),
        (("any", (2,)), ("any", (2,)), ("any", (2,))),
    ),
]


def reduction_case(op: str, axis: Any, keepdims: bool, shape: Shape) -> Case:
    reduce = getattr(tg, op)
    # max, min: no ties; var / std: no two equal elements, so no deviation is near 0 (the
    # derivative of std = √var is unbounded there); prod: factors in [0.5, 2], so a product of
    # 24 of them keeps the central differences' roundoff small
    domain = "distinct" if op in ("max", "min", "var", "std") else (
        "positive" if op == "prod" else "any")
    return Case(
        f"{op}_axis{axis}_keepdims{keepdims}",
        lambda x: reduce(x, axis, keepdims),
        ((domain, shape),),
    )


REDUCTION_CASES: list[Case] = [
    reduction_case(op, axis, keepdims, shape)
    for op in ("sum", "mean", "max", "min", "prod")
    for axis, shape in (
        (None, (3, 4)),
        (0, (3, 4)),
        (-1, (2, 3, 4)),
        ((0, 2), (2, 3, 4)),
        (None, ()),
    )
    for keepdims in (False, True)
]
# logsumexp and var are reductions too; std needs two elements or more (√0 has no derivative).
CLASS_REDUCTION_CASES: list[Case] = [
    reduction_case(op, axis, keepdims, shape)
    for op in ("logsumexp", "var", "std")
    for axis, shape in ((None, (3, 4)), (0, (3, 4)), (-1, (2, 3, 4)), ((0, 2), (2, 3, 4)))
    + (((None, ()),) if op != "std" else ())
    for keepdims in (False, True)
]
# Many classes: the class axis is 0 (examples are columns); broadcast inputs feed them.
CLASS_CASES: list[Case] = [
    Case("logsumexp_default_axis0", tg.logsumexp, (("any", (3, 4)),)),
    Case("log_softmax_axis0", tg.log_softmax, (("any", (3, 4)),)),
    Case("log_softmax_axis1", lambda x: tg.log_softmax(x, 1), (("any", (3, 4)),)),
    Case("log_softmax_axis_last_3d", lambda x: tg.log_softmax(x, -1), (("any", (2, 3, 4)),)),
    Case("softmax_axis0", tg.softmax, (("any", (3, 4)),)),
    Case("softmax_axis1", lambda x: tg.softmax(x, axis=1), (("any", (3, 4)),)),
    Case("softmax_of_one_class", tg.softmax, (("any", (1, 4)),)),
    Case("log_softmax_of_broadcast_bias", lambda x, b: tg.log_softmax(x + b),
         (("any", (3, 4)), ("any", (3, 1)))),
    Case("softmax_of_broadcast_row", lambda x, y: tg.softmax(x * y),
         (("any", (3, 4)), ("any", (4,)))),
    Case("logsumexp_keepdims_broadcast_back", lambda x: x - tg.logsumexp(x, 0, keepdims=True),
         (("any", (3, 4)),)),
    Case("logsumexp_of_broadcast_sum", lambda x, y: tg.logsumexp(x + y, axis=1),
         (("any", (3, 1)), ("any", (2, 1, 4)))),
    Case("var_of_broadcast_sum", lambda x, y: tg.var(x + y, axis=1),
         (("distinct", (3, 4)), ("any", (1, 4)))),
    Case("std_keepdims_normalizes", lambda x: (x - tg.mean(x, 0, keepdims=True))
         / tg.std(x, 0, keepdims=True), (("distinct", (3, 4)),)),
]
METHOD_REDUCTION_CASES: list[Case] = [
    Case("sum_method", lambda x: x.sum(axis=1, keepdims=True), (("any", (3, 4)),)),
    Case("mean_method", lambda x: x.mean(axis=0), (("any", (3, 4)),)),
    Case("max_method", lambda x: x.max(axis=-1), (("distinct", (3, 4)),)),
]

CASES: list[Case] = (
    [Case(name, fn, ((domain, (3, 4)),)) for name, (fn, domain) in UNARY.items()]
    + [Case(f"{name}_0d", fn, ((domain, ()),)) for name, (fn, domain) in UNARY.items()]
    + [
        Case(f"{name}_{x_shape}_{y_shape}", fn, ((dx, x_shape), (dy, y_shape)))
        for name, (fn, dx, dy) in BINARY.items()
        for x_shape in BROADCAST_SHAPES
        for y_shape in BROADCAST_SHAPES
    ]
    + [
        Case(
            f"where_{x_shape}_{y_shape}",
            lambda x, y: tg.where(WHERE_MASK, x, y),
            (("any", x_shape), ("any", y_shape)),
        )
        for x_shape in BROADCAST_SHAPES
        for y_shape in BROADCAST_SHAPES
    ]
    + [
        Case(f"matmul_{x_shape}_{y_shape}", tg.matmul, (("any", x_shape), ("any", y_shape)))
        for x_shape, y_shape in MATMUL_SHAPES
    ]
    + [Case("matmul_operator", lambda x, y: x @ y, (("any", (2, 3)), ("any", (3, 2))))]
    + SHAPE_CASES
    + REDUCTION_CASES
    + METHOD_REDUCTION_CASES
    + CLASS_REDUCTION_CASES
    + CLASS_CASES
)


# --- every case, first and second order -----------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_gradients_match_central_differences(case: Case) -> None:
    rng = np.random.default_rng(zlib.crc32(case.name.encode()))
    assert_gradients(case.fn, case.draw_inputs(rng), seed=1)


@pytest.mark.parametrize("name", list(UNARY))
@FAST
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4), seed=seeds)
def test_unary_ops_on_drawn_shapes(name: str, shape: Shape, seed: int) -> None:
    fn, domain = UNARY[name]
    rng = np.random.default_rng(seed)
    assert_gradients(fn, [draw(domain, shape, rng)], seed)


@pytest.mark.parametrize("name", list(BINARY))
@FAST
@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, min_side=1, max_side=3),
    seed=seeds,
)
def test_binary_ops_on_drawn_broadcastable_shapes(
    name: str, shapes: hnp.BroadcastableShapes, seed: int
) -> None:
    fn, x_domain, y_domain = BINARY[name]
    rng = np.random.default_rng(seed)
    x_shape, y_shape = shapes.input_shapes
    inputs = [draw(x_domain, x_shape, rng), draw(y_domain, y_shape, rng)]
    assert fn(*inputs).shape == shapes.result_shape
    assert_gradients(fn, inputs, seed)


@settings(max_examples=25, deadline=None)
@given(
    shapes=hnp.mutually_broadcastable_shapes(
        signature=np.matmul.signature, max_dims=2, min_side=1, max_side=3
    ),
    seed=seeds,
)
def test_matmul_on_drawn_shapes(shapes: hnp.BroadcastableShapes, seed: int) -> None:
    rng = np.random.default_rng(seed)
    inputs = [draw("any", shape, rng) for shape in shapes.input_shapes]
    assert (Tensor(inputs[0]) @ inputs[1]).shape == shapes.result_shape
    assert_gradients(tg.matmul, inputs, seed)


@pytest.mark.parametrize("x_shape, y_shape", [
    ((3,), (3, 2)), ((2, 3), (3,)), ((3,), (3,)), ((2, 2, 3), (3,)), ((3,), (2, 3, 4)),
    ((1, 2, 3), (4, 3, 2)),
])
def test_matmul_with_1d_and_batched_operands(x_shape: Shape, y_shape: Shape) -> None:
    # numpy promotes a 1-D operand to a row (x) or a column (y); the rules undo it
    rng = np.random.default_rng(0)
    assert_gradients(tg.matmul, [rng.normal(size=x_shape), rng.normal(size=y_shape)], 0)


@pytest.mark.parametrize("op", ["sum", "mean", "max", "min", "prod", "logsumexp", "var", "std"])
@settings(max_examples=15, deadline=None)
@given(
    shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
    keepdims=st.booleans(),
    seed=seeds,
    data=st.data(),
)
def test_reductions_on_drawn_shapes_and_axes(
    op: str, shape: Shape, keepdims: bool, seed: int, data: st.DataObject
) -> None:
    ndim = len(shape)
    axis = data.draw(
        st.none()
        | st.integers(-ndim, ndim - 1)
        | st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple),
        label="axis",
    )
    case = reduction_case(op, axis, keepdims, shape)
    reduced = np.sum(np.zeros(shape), axis=axis, keepdims=True)
    assume(op != "std" or np.prod(shape) // reduced.size >= 2)  # √0 has no derivative
    rng = np.random.default_rng(seed)
    out = case.fn(*[Tensor(x) for x in case.draw_inputs(rng)])
    assert out.shape == np.sum(np.zeros(shape), axis=axis, keepdims=keepdims).shape
    assert_gradients(case.fn, case.draw_inputs(rng), seed)


# --- exact values at the special points -----------------------------------------------------
def test_repeated_indices_accumulate() -> None:
    x = np.arange(4.0)
    assert np.array_equal(tg.grad(lambda t: t[[0, 0, 0, 2]].sum())(x), [3.0, 0.0, 1.0, 0.0])
    pairs = tg.grad(lambda t: t[[1, 1, 0], [2, 2, 2]].sum())(np.zeros((2, 3)))
    assert np.array_equal(pairs, [[0, 0, 1], [0, 0, 2]])
    # Second order through the recorded scatter: d/dx Σ (x[i]²)' = 2 · count(i).
    hessian_diagonal = tg.grad(lambda t: tg.grad(lambda s: (s[[0, 0, 0, 2]] ** 2).sum())(t).sum())
    assert np.array_equal(hessian_diagonal(x), [6.0, 0.0, 2.0, 0.0])


def test_max_ties_share_the_gradient() -> None:
    assert np.array_equal(tg.grad(lambda t: t.max())(np.array([1.0, 3.0, 3.0])), [0, 0.5, 0.5])
    rows = tg.grad(lambda t: t.max(axis=1).sum())(np.array([[2.0, 2.0, 2.0], [0.0, 5.0, 1.0]]))
    assert np.allclose(rows, [[1 / 3] * 3, [0, 1, 0]])
    both = tg.grad(lambda a, b: tg.maximum(a, b).sum(), argnums=(0, 1))(1.0, 1.0)
    assert both == (0.5, 0.5)


def test_relu_derivative_at_zero_is_zero() -> None:
    x = np.array([0.0, -0.0, 1.0, -1.0])
    assert np.array_equal(tg.grad(lambda t: tg.relu(t).sum())(x), [0, 0, 1, 0])
    assert tg.grad(lambda t: tg.relu(t))(0.0) == 0.0
    assert tg.grad(tg.grad(lambda t: tg.relu(t) * t))(0.0) == 0.0
    t = Tensor(np.zeros(3), requires_grad=True)
    t.relu().sum().backward()
    assert np.array_equal(t.grad, np.zeros(3))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_saturating_functions_are_stable_at_plus_minus_1000(dtype: type) -> None:
    x = np.array([-1000.0, 1000.0], dtype=dtype)
    limits = {
        "sigmoid": ([0.0, 1.0], [0.0, 0.0]),
        "tanh": ([-1.0, 1.0], [0.0, 0.0]),
        "log_sigmoid": ([-1000.0, 0.0], [1.0, 0.0]),
        "softplus": ([0.0, 1000.0], [0.0, 1.0]),
    }
    # detect_anomaly raises at any NaN / inf, forward or backward; errstate at any overflow
    # or invalid operation numpy would otherwise only warn about (underflow to 0 is right).
    with tg.detect_anomaly(), np.errstate(over="raise", invalid="raise", divide="raise"):
        for name, (values, slopes) in limits.items():
            fn = getattr(tg, name)
            out = fn(Tensor(x))
            assert out.dtype == dtype
            assert np.array_equal(out.numpy(), np.array(values, dtype=dtype)), name
            slope = tg.grad(lambda t, fn=fn: fn(t).sum())(x)
            assert np.array_equal(slope, np.array(slopes, dtype=dtype)), name
            curvature = tg.grad(lambda t, fn=fn: tg.grad(lambda s: fn(s).sum())(t).sum())(x)
            assert np.isfinite(curvature).all() and np.allclose(curvature, 0.0), name


# --- dtypes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_float32_in_float32_out(case: Case) -> None:
    rng = np.random.default_rng(0)
    inputs64 = case.draw_inputs(rng)
    inputs32 = [x.astype(np.float32) for x in inputs64]
    out = case.fn(*[Tensor(x, requires_grad=True) for x in inputs32])
    assert out.dtype == np.float32
    weights = rng.normal(size=out.shape).astype(np.float32)
    scalar = scalar_head(case.fn, weights)
    positions = tuple(range(len(inputs64)))

    grads32 = tg.grad(scalar, argnums=positions)(*inputs32)
    grads64 = tg.grad(scalar, argnums=positions)(*inputs64)
    for g32, g64 in zip(grads32, grads64):
        assert g32.dtype == np.float32
        np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-3)

    leaves = [Tensor(x, requires_grad=True) for x in inputs32]
    scalar(*leaves).backward(create_graph=True)
    first = [leaf.grad for leaf in leaves]
    assert all(g is not None and g.dtype == np.float32 for g in first)
    for leaf in leaves:
        leaf.zero_grad()
    sum((g * g).sum() for g in first).backward()
    assert all(leaf.grad is None or leaf.grad.dtype == np.float32 for leaf in leaves)
