"""numpy's ops in tinygrad_nn (issue 19), as one table of cases other tests import: ``CASES``.

A case is one call of a public op: ``fn(*inputs)`` on Tensors (a method case calls the Tensor
method) and ``reference(*inputs)`` on numpy arrays, on inputs drawn per (domain, shape): a
domain of ``test_ops_gradients.draw`` (float64 values where the op is smooth), or ``index:n``
(integers in [-n, n): an index array, an input of the program, never differentiated).
``shapes``, when given, draws other input shapes with hypothesis (broadcasting ones for
elementwise ops). ``grad`` False: the op has no gradient (an index, a permutation), or a zero
one (floor, round: test_ops_numpy checks that ``tg.grad`` gives 0).

    for case in CASES:
        inputs = case.draw_inputs(np.random.default_rng(0))
        out = case.fn(*map(tg.Tensor, inputs))  # a Tensor (a list of them: split)
        expected = case.reference(*inputs)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_ops_gradients import draw

import tinygrad_nn as tg
from tinygrad_nn import nn

Shape = tuple[int, ...]


@dataclass(frozen=True)
class OpCase:
    """``op`` (the public name it calls) on inputs of ``inputs``' (domain, shape)."""

    name: str
    op: str
    fn: Callable[..., Any]
    reference: Callable[..., Any]
    inputs: tuple[tuple[str, Shape], ...]
    shapes: st.SearchStrategy[tuple[Shape, ...]] | None = None
    grad: bool = True

    def draw_inputs(self, rng: np.random.Generator, shapes: tuple[Shape, ...] | None = None
                    ) -> list[np.ndarray]:
        """One draw of the inputs (in ``shapes`` when given, else the case's own)."""
        shapes = shapes or tuple(shape for _, shape in self.inputs)
        return [rng.integers(-int(domain[6:]), int(domain[6:]), size=shape)
                if domain.startswith("index:") else draw(domain, shape, rng)
                for (domain, _), shape in zip(self.inputs, shapes)]

    @property
    def differentiable(self) -> tuple[int, ...]:
        """The positions of the float inputs (the index arrays are not differentiated)."""
        return tuple(k for k, (domain, _) in enumerate(self.inputs)
                     if not domain.startswith("index:"))


# --- hypothesis: other shapes of the inputs -----------------------------------------------------
ANY_SHAPE = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4).map(lambda s: (s,))
AXIS_SHAPE = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4).map(lambda s: (s,))
BROADCAST = hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, min_side=1, max_side=3
                                              ).map(lambda b: b.input_shapes)
BATCHED_MATMUL = hnp.mutually_broadcastable_shapes(signature="(m,n),(n,p)->(m,p)", max_dims=2,
                                                   min_side=1, max_side=3
                                                   ).map(lambda b: b.input_shapes)
MATRIX = hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=4).map(lambda s: (s,))

M = (3, 4)  # the usual shape


def unary(name: str, domain: str, fn: Callable[..., Any] | None = None,
          reference: Callable[..., Any] | None = None, grad: bool = True) -> OpCase:
    op = name.split("_")[0]  # round_1: tg.round(x, 1)
    return OpCase(name, op, fn or getattr(tg, op), reference or getattr(np, op), ((domain, M),),
                  ANY_SHAPE, grad)


def binary(name: str, x: str, y: str, fn: Callable[..., Any] | None = None,
           reference: Callable[..., Any] | None = None) -> OpCase:
    op = name.split("_")[0]
    return OpCase(name, op, fn or getattr(tg, op), reference or getattr(np, op),
                  ((x, M), (y, (4,))), BROADCAST)


def case(name: str, op: str, fn: Callable[..., Any], reference: Callable[..., Any],
         *inputs: tuple[str, Shape], shapes: Any = None, grad: bool = True) -> OpCase:
    return OpCase(name, op, fn, reference, tuple(inputs), shapes, grad)


ELEMENTWISE = [
    unary("log1p", "open_unit"), unary("expm1", "any"), unary("log2", "positive"),
    unary("log10", "positive"), unary("square", "any"), unary("reciprocal", "nonzero"),
    unary("sin", "any"), unary("cos", "any"), unary("tan", "open_unit"),
    unary("arcsin", "open_unit"), unary("arccos", "open_unit"), unary("arctan", "any"),
    unary("sinh", "any"), unary("cosh", "any"), unary("erf", "any", reference=lambda x: erf(x)),
    # no gradient (0 almost everywhere): test_ops_numpy checks that tg.grad gives 0
    unary("floor", "sixteenths", grad=False), unary("ceil", "sixteenths", grad=False),
    unary("rint", "sixteenths", grad=False), unary("round", "sixteenths", grad=False),
    unary("round_1", "sixteenths", lambda x: tg.round(x, 1), lambda x: np.round(x, 1),
          grad=False),
    unary("round_minus_1", "any", lambda x: tg.round(x * 40.0, -1),
          lambda x: np.round(x * 40.0, -1), grad=False),  # a step can be anywhere
    unary("round_method", "sixteenths", lambda x: x.round(1), lambda x: x.round(1), grad=False),
    binary("logaddexp", "any", "any"), binary("arctan2", "nonzero", "nonzero"),
    binary("mod", "odd_quarters", "ones_twos"),
    binary("mod_operator", "odd_quarters", "ones_twos", lambda x, y: x % y, lambda x, y: x % y),
    unary("mod_reflected_operator", "ones_twos", lambda y: 1.75 % y, lambda y: 1.75 % y),
]

REDUCTIONS = [
    case("min", "min", tg.min, np.min, ("distinct", M)),
    case("min_axis", "min", lambda x: tg.min(x, -1), lambda x: np.min(x, -1), ("distinct", M),
         shapes=AXIS_SHAPE),
    case("min_method", "min", lambda x: x.min(axis=(0, 2), keepdims=True),
         lambda x: x.min(axis=(0, 2), keepdims=True), ("distinct", (2, 3, 4))),
    case("argmin", "argmin", tg.argmin, lambda x: np.argmin(x, 0), ("distinct", M),
         grad=False),
    case("argmin_none", "argmin", lambda x: tg.argmin(x, None), np.argmin, ("distinct", M),
         grad=False),
    case("argmin_method", "argmin", lambda x: x.argmin(-1), lambda x: x.argmin(-1),
         ("distinct", M), shapes=AXIS_SHAPE, grad=False),
    case("prod", "prod", tg.prod, np.prod, ("nonzero", M)),
    case("prod_axis", "prod", lambda x: tg.prod(x, 1), lambda x: np.prod(x, 1), ("any", M)),
    case("prod_axes_keepdims", "prod", lambda x: x.prod(axis=(0, 2), keepdims=True),
         lambda x: x.prod(axis=(0, 2), keepdims=True), ("any", (2, 3, 4))),
    case("prod_drawn", "prod", lambda x: tg.prod(x, -1), lambda x: np.prod(x, -1), ("any", M),
         shapes=AXIS_SHAPE),
    case("cumsum", "cumsum", tg.cumsum, np.cumsum, ("any", M)),
    case("cumsum_axis0", "cumsum", lambda x: tg.cumsum(x, 0), lambda x: np.cumsum(x, 0),
         ("any", M)),
    case("cumsum_method", "cumsum", lambda x: x.cumsum(axis=-1), lambda x: x.cumsum(axis=-1),
         ("any", M), shapes=AXIS_SHAPE),
    case("sort", "sort", tg.sort, np.sort, ("distinct", M), shapes=AXIS_SHAPE),
    case("sort_axis0", "sort", lambda x: tg.sort(x, 0), lambda x: np.sort(x, 0),
         ("distinct", (3, 4, 2))),
    case("sort_none", "sort", lambda x: tg.sort(x, None), lambda x: np.sort(x, None),
         ("distinct", M)),
    case("sort_method", "sort", lambda x: x.sort(), lambda x: np.sort(x), ("distinct", M)),
    case("argsort", "argsort", tg.argsort, np.argsort, ("distinct", M), shapes=AXIS_SHAPE,
         grad=False),
    case("argsort_method", "argsort", lambda x: x.argsort(0), lambda x: x.argsort(0),
         ("distinct", M), grad=False),
]

CONTRACTIONS = [
    case("einsum_matmul", "einsum", lambda a, b: tg.einsum("ij,jk->ik", a, b),
         lambda a, b: np.einsum("ij,jk->ik", a, b), ("any", (2, 3)), ("any", (3, 4))),
    case("einsum_implicit", "einsum", lambda a, b: tg.einsum("ij,kj", a, b),
         lambda a, b: np.einsum("ij,kj", a, b), ("any", (2, 3)), ("any", (4, 3))),
    case("einsum_batched_ellipsis", "einsum", lambda a, b: tg.einsum("...ij,...jk->...ik", a, b),
         lambda a, b: np.einsum("...ij,...jk->...ik", a, b), ("any", (2, 2, 3)),
         ("any", (3, 4)), shapes=BATCHED_MATMUL),
    case("einsum_implicit_ellipsis", "einsum", lambda a: tg.einsum("i...->...", a),
         lambda a: np.einsum("i...->...", a), ("any", (3, 2, 2))),
    case("einsum_diagonal", "einsum", lambda a: tg.einsum("ii->i", a),
         lambda a: np.einsum("ii->i", a), ("any", (3, 3))),
    case("einsum_trace", "einsum", lambda a: tg.einsum("ii", a), lambda a: np.einsum("ii", a),
         ("any", (3, 3))),
    case("einsum_sum_and_own_letter", "einsum", lambda a, b: tg.einsum("ij,i->", a, b),
         lambda a, b: np.einsum("ij,i->", a, b), ("any", (3, 4)), ("any", (3,))),
    case("einsum_three", "einsum", lambda a, b, c: tg.einsum("ij,jk,kl->il", a, b, c),
         lambda a, b, c: np.einsum("ij,jk,kl->il", a, b, c), ("any", (2, 3)), ("any", (3, 4)),
         ("any", (4, 2))),
    case("einsum_outer_transposed", "einsum", lambda a, b: tg.einsum("i,j->ji", a, b),
         lambda a, b: np.einsum("i,j->ji", a, b), ("any", (3,)), ("any", (2,))),
    case("einsum_broadcast_letter", "einsum", lambda a, b: tg.einsum("ij,ij->i", a, b),
         lambda a, b: np.einsum("ij,ij->i", a, b), ("any", (3, 1)), ("any", (3, 4))),
    case("tensordot", "tensordot", tg.tensordot, np.tensordot, ("any", (2, 3, 4)),
         ("any", (3, 4, 2))),
    case("tensordot_1", "tensordot", lambda a, b: tg.tensordot(a, b, 1),
         lambda a, b: np.tensordot(a, b, 1), ("any", (2, 3)), ("any", (3, 4))),
    case("tensordot_pairs", "tensordot", lambda a, b: tg.tensordot(a, b, ([0, 2], [2, 1])),
         lambda a, b: np.tensordot(a, b, ([0, 2], [2, 1])), ("any", (2, 3, 4)),
         ("any", (3, 4, 2))),
    case("tensordot_0", "tensordot", lambda a, b: tg.tensordot(a, b, 0),
         lambda a, b: np.tensordot(a, b, 0), ("any", (2,)), ("any", (3,))),
    case("dot_vectors", "dot", tg.dot, np.dot, ("any", (4,)), ("any", (4,))),
    case("dot_matrix_vector", "dot", tg.dot, np.dot, ("any", M), ("any", (4,))),
    case("dot_3d_2d", "dot", tg.dot, np.dot, ("any", (2, 3, 4)), ("any", (4, 2))),
    case("dot_3d_3d", "dot", tg.dot, np.dot, ("any", (2, 3, 4)), ("any", (2, 4, 3))),
    case("dot_scalar", "dot", tg.dot, np.dot, ("any", ()), ("any", M)),
    case("dot_method", "dot", lambda a, b: a.dot(b), lambda a, b: a.dot(b), ("any", M),
         ("any", (4, 2))),
    case("inner", "inner", tg.inner, np.inner, ("any", (4,)), ("any", (4,))),
    case("inner_2d_3d", "inner", tg.inner, np.inner, ("any", M), ("any", (2, 3, 4))),
    case("outer", "outer", tg.outer, np.outer, ("any", (3,)), ("any", (4,))),
    case("outer_flattens", "outer", tg.outer, np.outer, ("any", (2, 2)), ("any", (3,))),
]

SHAPES = [
    case("squeeze", "squeeze", tg.squeeze, np.squeeze, ("any", (1, 3, 1, 4))),
    case("squeeze_axis", "squeeze", lambda x: tg.squeeze(x, 2), lambda x: np.squeeze(x, 2),
         ("any", (1, 3, 1, 4))),
    case("squeeze_method", "squeeze", lambda x: x.squeeze((0, -2)),
         lambda x: x.squeeze((0, -2)), ("any", (1, 3, 1, 4))),
    case("expand_dims", "expand_dims", lambda x: tg.expand_dims(x, 0),
         lambda x: np.expand_dims(x, 0), ("any", M), shapes=ANY_SHAPE),
    case("expand_dims_axes", "expand_dims", lambda x: tg.expand_dims(x, (0, -1)),
         lambda x: np.expand_dims(x, (0, -1)), ("any", M)),
    case("vstack_rows", "vstack", lambda x, y: tg.vstack([x, y]), lambda x, y: np.vstack([x, y]),
         ("any", (4,)), ("any", (4,))),
    case("vstack", "vstack", lambda x, y: tg.vstack((x, y)), lambda x, y: np.vstack((x, y)),
         ("any", (2, 4)), ("any", (1, 4))),
    case("hstack_1d", "hstack", lambda x, y: tg.hstack([x, y]), lambda x, y: np.hstack([x, y]),
         ("any", (3,)), ("any", (2,))),
    case("hstack", "hstack", lambda x, y: tg.hstack([x, y]), lambda x, y: np.hstack([x, y]),
         ("any", (2, 3)), ("any", (2, 1))),
    case("split", "split", lambda x: tg.split(x, 3), lambda x: np.split(x, 3), ("any", (6, 2))),
    case("split_indices", "split", lambda x: tg.split(x, [1, 3], axis=1),
         lambda x: np.split(x, [1, 3], axis=1), ("any", (2, 5))),
    case("array_split", "array_split", lambda x: tg.array_split(x, 3),
         lambda x: np.array_split(x, 3), ("any", (7, 2))),
    case("array_split_axis", "array_split", lambda x: tg.array_split(x, 4, axis=-1),
         lambda x: np.array_split(x, 4, axis=-1), ("any", (2, 6))),
    case("tile", "tile", lambda x: tg.tile(x, 2), lambda x: np.tile(x, 2), ("any", (3,))),
    case("tile_reps", "tile", lambda x: tg.tile(x, (2, 1, 2)), lambda x: np.tile(x, (2, 1, 2)),
         ("any", (2, 3)), shapes=ANY_SHAPE),
    case("repeat", "repeat", lambda x: tg.repeat(x, 2), lambda x: np.repeat(x, 2), ("any", M)),
    case("repeat_counts", "repeat", lambda x: tg.repeat(x, [1, 0, 2], axis=1),
         lambda x: np.repeat(x, [1, 0, 2], axis=1), ("any", (2, 3))),
    case("repeat_method", "repeat", lambda x: x.repeat(3, axis=0),
         lambda x: x.repeat(3, axis=0), ("any", M)),
    case("pad", "pad", lambda x: tg.pad(x, ((1, 2), (0, 1))),
         lambda x: np.pad(x, ((1, 2), (0, 1))), ("any", M)),
    case("pad_values", "pad", lambda x: tg.pad(x, 1, constant_values=((1.5, 2.5), (3.5, 4.5))),
         lambda x: np.pad(x, 1, constant_values=((1.5, 2.5), (3.5, 4.5))), ("any", M)),
    case("pad_1d", "pad", lambda x: tg.pad(x, (2, 0), constant_values=-1.0),
         lambda x: np.pad(x, (2, 0), constant_values=-1.0), ("any", (3,))),
    case("roll", "roll", lambda x: tg.roll(x, 2), lambda x: np.roll(x, 2), ("any", M)),
    case("roll_axis", "roll", lambda x: tg.roll(x, -1, axis=1),
         lambda x: np.roll(x, -1, axis=1), ("any", M)),
    case("roll_axes", "roll", lambda x: tg.roll(x, (1, 5), axis=(0, 1)),
         lambda x: np.roll(x, (1, 5), axis=(0, 1)), ("any", M)),
    case("moveaxis", "moveaxis", lambda x: tg.moveaxis(x, 0, -1),
         lambda x: np.moveaxis(x, 0, -1), ("any", (2, 3, 4))),
    case("moveaxis_many", "moveaxis", lambda x: tg.moveaxis(x, [0, 1], [2, 0]),
         lambda x: np.moveaxis(x, [0, 1], [2, 0]), ("any", (2, 3, 4))),
    case("flip", "flip", tg.flip, np.flip, ("any", (2, 3, 4)), shapes=ANY_SHAPE),
    case("flip_axis", "flip", lambda x: tg.flip(x, 1), lambda x: np.flip(x, 1), ("any", M)),
    case("flip_axes", "flip", lambda x: tg.flip(x, (0, 2)), lambda x: np.flip(x, (0, 2)),
         ("any", (2, 3, 4))),
    case("take", "take", lambda x, i: tg.take(x, i, axis=1), lambda x, i: np.take(x, i, axis=1),
         ("any", M), ("index:4", (5,))),
    case("take_flat", "take", tg.take, np.take, ("any", M), ("index:12", (2, 3))),
    case("take_method", "take", lambda x, i: x.take(i, 0), lambda x, i: x.take(i, 0), ("any", M),
         ("index:3", (2,))),
    case("take_along_axis", "take_along_axis", lambda x, i: tg.take_along_axis(x, i, 0),
         lambda x, i: np.take_along_axis(x, i, 0), ("any", M), ("index:3", (5, 4))),
    case("take_along_axis_last", "take_along_axis", lambda x, i: tg.take_along_axis(x, i, -1),
         lambda x, i: np.take_along_axis(x, i, -1), ("any", (2, 3, 4)), ("index:4", (2, 3, 2))),
    case("take_along_axis_broadcast", "take_along_axis",
         lambda x, i: tg.take_along_axis(x, i, 0), lambda x, i: np.take_along_axis(x, i, 0),
         ("any", (3, 1)), ("index:3", (2, 4))),
    case("take_along_axis_none", "take_along_axis",
         lambda x, i: tg.take_along_axis(x, i, None),
         lambda x, i: np.take_along_axis(x, i, None), ("any", M), ("index:12", (6,))),
]

MATRICES = [
    case("tril", "tril", tg.tril, np.tril, ("any", (4, 4)), shapes=MATRIX),
    case("tril_k", "tril", lambda x: tg.tril(x, 1), lambda x: np.tril(x, 1), ("any", (3, 5))),
    case("tril_1d", "tril", tg.tril, np.tril, ("any", (3,))),
    case("triu", "triu", tg.triu, np.triu, ("any", (4, 4)), shapes=MATRIX),
    case("triu_k_batched", "triu", lambda x: tg.triu(x, -1), lambda x: np.triu(x, -1),
         ("any", (2, 3, 3))),
    case("diag", "diag", tg.diag, np.diag, ("any", (3,))),
    case("diag_k", "diag", lambda v: tg.diag(v, 1), lambda v: np.diag(v, 1), ("any", (3,))),
    case("diag_minus_k", "diag", lambda v: tg.diag(v, -2), lambda v: np.diag(v, -2),
         ("any", (2,))),
    case("diag_of_matrix", "diag", lambda v: tg.diag(v, 1), lambda v: np.diag(v, 1),
         ("any", M)),
    case("diagonal", "diagonal", tg.diagonal, np.diagonal, ("any", M), shapes=MATRIX),
    case("diagonal_offsets", "diagonal", lambda x: tg.diagonal(x, -1) + tg.diagonal(x, 1)[:2],
         lambda x: np.diagonal(x, -1) + np.diagonal(x, 1)[:2], ("any", M)),
    case("diagonal_axes", "diagonal", lambda x: tg.diagonal(x, 0, 2, 0),
         lambda x: np.diagonal(x, 0, 2, 0), ("any", (3, 2, 4))),
    case("diagonal_method", "diagonal", lambda x: x.diagonal(1, 1, 2),
         lambda x: x.diagonal(1, 1, 2), ("any", (2, 3, 4))),
    case("trace", "trace", tg.trace, np.trace, ("any", (3, 3))),
    case("trace_offset", "trace", lambda x: tg.trace(x, 1), lambda x: np.trace(x, 1),
         ("any", M)),
    case("trace_method", "trace", lambda x: x.trace(0, 1, 2), lambda x: x.trace(0, 1, 2),
         ("any", (2, 3, 3))),
]

def erf(x: np.ndarray) -> np.ndarray:
    """math.erf of each element, in x's dtype."""
    return np.asarray(np.frompyfunc(math.erf, 1, 1)(x), x.dtype)


def activation(name: str, reference: Callable[..., Any], fn: Callable[..., Any] | None = None
               ) -> OpCase:
    """``tg.nn.<name>`` against its formula in numpy, off its kinks."""
    op = name.split("[")[0]
    return case(name, op, fn or getattr(nn, op.removeprefix("nn.")), reference,
                ("off_kinks", M), shapes=ANY_SHAPE)


def tanh_gelu(x: np.ndarray) -> np.ndarray:
    return x * 0.5 * (1.0 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


NN_ACTIVATIONS = [  # tg.nn's, as jax.nn's (test_nn_activations: the kinks, ±1000, jax itself)
    activation("nn.gelu", tanh_gelu),
    activation("nn.gelu[exact]", lambda x: x * 0.5 * (1.0 + erf(x / math.sqrt(2.0))),
               lambda x: nn.gelu(x, approximate=False)),
    activation("nn.elu", elu),
    activation("nn.elu[alpha]", lambda x: elu(x, 0.5), lambda x: nn.elu(x, alpha=0.5)),
    activation("nn.selu", lambda x: 1.0507009873554805 * elu(x, 1.6732632423543772)),
    activation("nn.leaky_relu", lambda x: np.where(x >= 0, x, 0.01 * x)),
    activation("nn.leaky_relu[slope]", lambda x: np.where(x >= 0, x, 0.2 * x),
               lambda x: nn.leaky_relu(x, negative_slope=0.2)),
    activation("nn.relu6", lambda x: np.minimum(np.maximum(x, 0.0), 6.0)),
    activation("nn.silu", lambda x: x / (1.0 + np.exp(-x))),
    activation("nn.swish", lambda x: x / (1.0 + np.exp(-x))),
    activation("nn.mish", lambda x: x * np.tanh(np.logaddexp(0.0, x))),
    activation("nn.hard_tanh", lambda x: np.clip(x, -1.0, 1.0)),
]

CASES: list[OpCase] = (ELEMENTWISE + REDUCTIONS + CONTRACTIONS + SHAPES + MATRICES
                       + NN_ACTIVATIONS)
BY_NAME = {c.name: c for c in CASES}
assert len(BY_NAME) == len(CASES), "case names must be unique"
