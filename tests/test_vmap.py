"""vmap: every primitive on a batch against a Python loop of the same function, eagerly and
under ``tg.jit`` (traced on one draw, replayed on a second, to 1e-12); the compositions
(per-example gradients, jit, nested vmap, grad of vmap, pytree outputs); the errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from op_cases import CASES, OpCase

import tinygrad_nn as tg
from tinygrad_nn import ops
from tinygrad_nn.tensor import Primitive, TracedValueError

Make = Callable[[np.random.Generator], tuple[Any, ...]]


def normal(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.normal(size=shape)


def draws(*makers: Callable[[np.random.Generator], Any]) -> Make:
    return lambda rng: tuple(make(rng) for make in makers)


def as_array(x: Any) -> np.ndarray:
    return np.asarray(x.data if isinstance(x, tg.Tensor) else x)


def take(tree: Any, prefix: Any, i: int) -> Any:
    """Example i of ``tree`` mapped by the axes ``prefix`` (an int, None or a container)."""
    if prefix is None:
        return tree
    if isinstance(prefix, int):
        return tg.tree_map(lambda a: np.take(a, i, prefix), tree)
    if isinstance(prefix, dict):
        return {k: take(v, prefix[k], i) for k, v in tree.items()}
    return type(tree)(take(v, p, i) for v, p in zip(tree, prefix))


def axes_of(prefix: Any, tree: Any) -> list[Any]:
    """The axis of each leaf of ``tree`` under ``prefix``."""
    if prefix is None or isinstance(prefix, int):
        return [prefix] * len(tg.tree_flatten(tree)[0])
    pairs = [(prefix[k], tree[k]) for k in tree] if isinstance(tree, dict) else zip(prefix, tree)
    return [axis for p, t in pairs for axis in axes_of(p, t)]


def loop(f: Callable[..., Any], args: tuple[Any, ...], in_axes: Any, out_axes: Any = 0) -> Any:
    """The oracle: ``f`` on each example in a Python loop, the results stacked (an unmapped
    output: the first example's)."""
    in_axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
    size = next(np.shape(leaf)[axis] for leaf, axis in zip(tg.tree_flatten(args)[0], axes_of(
        in_axes, args)) if axis is not None)
    results = [f(*[take(a, axis, i) for a, axis in zip(args, in_axes)]) for i in range(size)]
    leaves = [tg.tree_flatten(r)[0] for r in results]
    treedef = tg.tree_flatten(results[0])[1]
    return tg.tree_unflatten(treedef, [
        as_array(leaves[0][k]) if axis is None else np.stack([as_array(r[k]) for r in leaves],
                                                             axis)
        for k, axis in enumerate(axes_of(out_axes, results[0]))])


def assert_close(got: Any, expected: Any) -> None:
    got_leaves, got_tree = tg.tree_flatten(got)
    expected_leaves, expected_tree = tg.tree_flatten(expected)
    assert got_tree == expected_tree
    for g, e in zip(got_leaves, expected_leaves):
        assert type(g) is np.ndarray, type(g)
        assert g.shape == e.shape and g.dtype == e.dtype, (g.shape, e.shape, g.dtype, e.dtype)
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-14)


def check(f: Callable[..., Any], make: Make, in_axes: Any = 0, out_axes: Any = 0) -> None:
    """vmap(f) equals the loop eagerly, and jit(vmap(f)), traced on one draw and replayed on a
    second, equals both on the second."""
    first, second = make(np.random.default_rng(0)), make(np.random.default_rng(1))
    batched = tg.vmap(f, in_axes, out_axes)
    assert_close(batched(*first), loop(f, first, in_axes, out_axes))
    jitted = tg.jit(batched)
    assert_close(jitted(*first), loop(f, first, in_axes, out_axes))
    expected = loop(f, second, in_axes, out_axes)
    assert_close(jitted(*second), expected)
    assert_close(batched(*second), expected)


# --- elementwise ops: one generic rule --------------------------------------------------------
UNARY = {
    "exp": tg.exp, "log": lambda x: tg.log(tg.abs(x) + 1.0), "sqrt": lambda x: tg.sqrt(tg.abs(x)),
    "sign": tg.sign, "abs": tg.abs, "relu": tg.relu, "sigmoid": tg.sigmoid, "tanh": tg.tanh,
    "softplus": tg.softplus, "neg": tg.neg, "log_sigmoid": tg.log_sigmoid,
    "clip": lambda x: tg.clip(x, -0.5, 0.7), "clip_low": lambda x: tg.clip(x, -0.5, None),
    "astype": lambda x: tg.astype(x, np.float32), "stop_gradient": tg.stop_gradient,
    "identity": ops.identity, "power_scalar": lambda x: x ** 3,
}


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("axis", [0, 1])
def test_a_unary_op_on_a_batch(name: str, axis: int) -> None:
    check(UNARY[name], draws(normal(4, 3)), axis)


BINARY = {
    "add": tg.add, "sub": tg.sub, "mul": tg.mul, "div": lambda x, y: x / (tg.abs(y) + 0.5),
    "pow": lambda x, y: tg.abs(x) ** y, "maximum": tg.maximum, "minimum": tg.minimum,
    "less": tg.less, "less_equal": tg.less_equal, "greater": tg.greater, "equal": tg.equal,
    "greater_equal": tg.greater_equal, "not_equal": lambda x, y: tg.not_equal(x, x * 0 + y),
    "where": lambda x, y: tg.where(x > y, x, y * 2.0),
}
# (shape of x, shape of y, in_axes): batched against batched, unbatched and lower rank
BROADCASTS = [
    ((5, 3, 4), (5, 3, 4), 0), ((5, 3, 4), (4,), (0, None)), ((3, 5, 4), (3, 1), (1, None)),
    ((3, 4), (5, 3, 4), (None, 0)), ((5, 4), (5, 3, 4), 0), ((3, 4, 5), (4, 5), (2, 1)),
    ((5,), (5, 2, 3), 0),
]


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("case", range(len(BROADCASTS)))
def test_a_binary_op_broadcasts_with_the_batch_axes_aligned(name: str, case: int) -> None:
    x, y, in_axes = BROADCASTS[case]
    check(BINARY[name], draws(normal(*x), normal(*y)), in_axes)


def test_python_numbers_keep_their_weak_type_and_float32_stays() -> None:
    def f(x: Any) -> Any:
        return x * 2.0 + 1

    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert tg.vmap(f)(x).dtype == np.float32
    check(f, lambda rng: (rng.normal(size=(2, 3)).astype(np.float32),))


# --- reductions, scans and argmax --------------------------------------------------------------
REDUCTIONS = {"sum": tg.sum, "mean": tg.mean, "max": tg.max, "logsumexp": tg.logsumexp}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("in_axis", [0, 2])
def test_a_reduction_over_each_axis(name: str, axis: Any, keepdims: bool, in_axis: int) -> None:
    op = REDUCTIONS[name]
    check(lambda x: op(x, axis=axis, keepdims=keepdims), draws(normal(3, 4, 5, 2)), in_axis)


@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("in_axis", [0, 1])
def test_argmax_over_each_axis(axis: Any, in_axis: int) -> None:
    check(lambda x: tg.argmax(x, axis), draws(normal(4, 5, 3)), in_axis)


# --- shapes -----------------------------------------------------------------------------------
SHAPES = {
    "reshape": lambda x: x.reshape(3, 4), "reshape -1": lambda x: x.reshape(2, -1),
    "flatten": tg.flatten, "transpose": lambda x: x.T, "transpose axes": lambda x: x.transpose(
        1, 0), "swapaxes": lambda x: tg.swapaxes(x, 0, 1), "mT": lambda x: x.mT,
    "broadcast_to": lambda x: tg.broadcast_to(x, (2, 4, 3)),
    "broadcast_to column": lambda x: tg.broadcast_to(x[:, :1], (2, 4, 3)),
    "reshape then reduce": lambda x: x.reshape(12).sum(),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
@pytest.mark.parametrize("in_axis", [0, 1, 2])
def test_a_shape_op(name: str, in_axis: int) -> None:
    check(SHAPES[name], draws(normal(4, 3, 5) if in_axis == 2 else normal(5, 4, 3) if (
        in_axis == 0) else normal(4, 5, 3)), in_axis)


# --- matmul: 1-D, 2-D and stacked operands, either or both batched -----------------------------
MATMUL_SHAPES = [(3,), (2, 3), (4, 2, 3)]  # x's example shapes; y's are (3,), (3, 5), (4, 3, 5)


@pytest.mark.parametrize("x_shape", MATMUL_SHAPES)
@pytest.mark.parametrize("y_shape", [(3,), (3, 5), (4, 3, 5)])
@pytest.mark.parametrize("in_axes", [(0, None), (None, 0), (0, 0), (1, 1), (-1, None),
                                     (None, -1)])
def test_matmul_of_every_pair_of_ranks(x_shape: tuple[int, ...], y_shape: tuple[int, ...],
                                       in_axes: tuple[Any, Any]) -> None:
    def with_batch(shape: tuple[int, ...], axis: Any) -> tuple[int, ...]:
        if axis is None:
            return shape
        place = axis % (len(shape) + 1)
        return (*shape[:place], 6, *shape[place:])

    if (len(x_shape) == 1 and in_axes[0] == 1) or (len(y_shape) == 1 and in_axes[1] == 1):
        in_axes = tuple(0 if a == 1 else a for a in in_axes)  # a 1-D example has axes 0 and -1
    check(tg.matmul, draws(normal(*with_batch(x_shape, in_axes[0])),
                           normal(*with_batch(y_shape, in_axes[1]))), in_axes)


# --- indexing ---------------------------------------------------------------------------------
BASIC = {
    "int": lambda x: x[1], "slices": lambda x: x[:, 1:3], "negative step": lambda x: x[::-1],
    "None and Ellipsis": lambda x: x[None, ..., 0], "int and slice": lambda x: x[2, 1:],
    "Ellipsis last": lambda x: x[1, ...],
}
ARRAYS = {
    "list": lambda x: x[[0, 2, 2]], "second axis": lambda x: x[:, [1, 0, 1]],
    "two arrays": lambda x: x[[0, 1], [2, 3]], "int then array": lambda x: x[1, [0, 3]],
    "apart": lambda x: x[[0, 1], :, [1, 0]] if x.ndim == 3 else x[[0, 1], :][:, [1, 0]],
    "mask": lambda x: x[np.array([True, False, True, True])],
    "2-D array": lambda x: x[np.array([[0, 1], [3, 2]])],
    "None before": lambda x: x[None, [1, 2]], "after Ellipsis": lambda x: x[..., [0, 2]],
    "traced argmax": lambda x: x[tg.argmax(x, axis=0), np.arange(x.shape[1])],
}


@pytest.mark.parametrize("name", sorted(BASIC) + sorted(ARRAYS))
@pytest.mark.parametrize("in_axis", [0, 1])
def test_getitem_with_basic_and_array_indices(name: str, in_axis: int) -> None:
    f = BASIC.get(name) or ARRAYS[name]
    check(f, draws(normal(6, 4, 5) if in_axis == 0 else normal(4, 6, 5)), in_axis)


@pytest.mark.parametrize("x_axis", [0, None])
@pytest.mark.parametrize("form", ["alone", "beside a slice", "after a slice", "apart", "two"])
def test_getitem_with_a_batched_index_array(x_axis: Any, form: str) -> None:
    def f(x: Any, i: Any, j: Any) -> Any:  # x may be numpy: x[i] of a Tensor i is numpy's
        index = {"alone": i, "beside a slice": (i, slice(1, None)), "after a slice": (
            slice(None), i), "apart": (i, slice(None), j), "two": (i, j)}[form]
        return ops.getitem(x, index)

    def make(rng: np.random.Generator) -> tuple[Any, ...]:
        x = rng.normal(size=(6, 4, 5, 3) if x_axis == 0 else (4, 5, 3))
        return x, rng.integers(0, 4, size=(6, 2)), rng.integers(0, 3, size=(6, 1))

    check(f, make, (x_axis, 0, 0))
    check(f, make, (x_axis, 0, None))


def test_the_gradient_of_an_index_scatters_per_example() -> None:
    def f(x: Any, i: Any, w: Any) -> Any:  # its backward pass is a scatter_add
        return tg.grad(lambda x: (tg.tanh(x[i, 1:]) * w).sum())(x)

    def make(rng: np.random.Generator, x_shape: tuple[int, ...] = (6, 4, 3)) -> tuple[Any, ...]:
        return rng.normal(size=x_shape), rng.integers(0, 4, size=(6, 5)), rng.normal(size=(5, 2))

    check(f, make, (0, 0, None))
    check(f, lambda rng: make(rng, (4, 3)), (None, 0, None))
    check(lambda x, i: tg.grad(lambda x: x[i].sum())(x), lambda rng: make(rng, (4, 3))[:2],
          (None, 0))


def test_scatter_add_of_a_batched_and_an_unbatched_cotangent() -> None:
    def f(g: Any, i: Any) -> Any:
        return ops.scatter_add(g, i, index=(ops.SLOT, slice(None)), shape=(4, 3))

    def make(rng: np.random.Generator) -> tuple[Any, ...]:
        return rng.normal(size=(6, 5, 3)), rng.integers(0, 4, size=(6, 5))

    check(f, make, 0)
    check(f, lambda rng: (rng.normal(size=(5, 3)), rng.integers(0, 4, size=(6, 5))), (None, 0))
    check(lambda g: ops.scatter_add(g, index=(slice(1, 3),), shape=(4, 3)),
          lambda rng: (rng.normal(size=(2, 6, 3)),), 1)


# --- joining ------------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("in_axes", [0, (0, None), (None, 1)])
def test_concatenate_and_stack(axis: int, in_axes: Any) -> None:
    def make(rng: np.random.Generator) -> tuple[Any, ...]:
        x = rng.normal(size=(5, 2, 3) if in_axes in (0, (0, None)) else (2, 3))
        y = rng.normal(size=(5, 2, 3) if in_axes == 0 else (2, 3) if in_axes == (0, None) else (
            2, 5, 3))
        return x, y

    check(lambda x, y: tg.concatenate([x, y, x], axis), make, in_axes)
    check(lambda x, y: tg.stack([x, y], axis), make, in_axes)


def test_check_range_checks_every_example() -> None:
    def f(x: Any) -> Any:
        return ops.check_range(x, low=-10.0, high=10.0, message="out: {value}")

    check(f, draws(normal(5, 3)))
    x = np.zeros((4, 3))
    x[2, 1] = 11.0  # not the first example: only the batched run sees it
    with pytest.raises(tg.CheckError, match=r"out: 11\.0"):
        tg.vmap(f)(x)
    with pytest.raises(tg.CheckError, match=r"out: 11\.0"):
        tg.jit(tg.vmap(f))(x)


# --- every public op of numpy's (op_cases): its examples stacked, mapped over each axis --------
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_every_op_case_on_a_batch(case: OpCase) -> None:
    def fn(*xs: Any) -> Any:  # the case calls the op on Tensors (its method, for some)
        return case.fn(*[x if isinstance(x, tg.Tensor) else tg.Tensor(x) for x in xs])

    for axis in range(len(case.inputs[0][1]) + 1):
        def make(rng: np.random.Generator, axis: int = axis) -> tuple[Any, ...]:
            examples = [case.draw_inputs(rng) for _ in range(3)]
            return (np.stack([e[0] for e in examples], axis),
                    *[np.stack([e[k] for e in examples]) for k in range(1, len(case.inputs))])

        check(fn, make, (axis, *[0] * (len(case.inputs) - 1)))


# --- random draws: no rule, a loop over the batch ---------------------------------------------
@pytest.mark.parametrize("draw", ["normal", "uniform", "bernoulli", "split", "permutation"])
def test_random_draws_loop_over_the_keys(draw: str) -> None:
    def f(key: Any) -> Any:
        return {"normal": lambda: tg.random.normal(key, (3,)),
                "uniform": lambda: tg.random.uniform(key, (2, 2), minval=-1.0),
                "bernoulli": lambda: tg.random.bernoulli(key, 0.3, (4,)),
                "split": lambda: tg.random.split(key, 3),
                "permutation": lambda: tg.random.permutation(key, 5)}[draw]()

    def keys(rng: np.random.Generator) -> tuple[Any, ...]:
        return (tg.random.split(tg.random.key(int(rng.integers(1000))), 4),)

    check(f, keys)
    check(lambda k, x: tg.random.normal(k, (3,)) * x, lambda rng: (*keys(rng), rng.normal(
        size=(4, 3))), 0)


def test_a_users_primitive_without_a_rule_loops() -> None:
    cumsum = Primitive("cumsum", lambda x: np.cumsum(x, axis=-1), (lambda g, out, x: g,), "-")
    check(lambda x: cumsum(x) * 2.0, draws(normal(5, 4)), 1)


# --- compositions -------------------------------------------------------------------------------
def course_params(rng: np.random.Generator, dims: tuple[int, ...] = (2, 16, 16, 1)
                  ) -> dict[str, np.ndarray]:
    params = {}
    for layer in range(1, len(dims)):
        params[f"W{layer}"] = rng.normal(size=(dims[layer], dims[layer - 1])) / np.sqrt(
            dims[layer - 1])
        params[f"b{layer}"] = 0.1 * rng.normal(size=(dims[layer], 1))
    return params


def example_loss(params: dict[str, Any], x: Any, y: Any) -> Any:
    """The course's cost on one example: x of shape (n_x,), y of shape (1,) (a column of X, Y)."""
    A = x[:, None]
    L = len(params) // 2
    for layer in range(1, L):
        A = tg.relu(params[f"W{layer}"] @ A + params[f"b{layer}"])
    AL = tg.sigmoid(params[f"W{L}"] @ A + params[f"b{L}"])
    return -(y * tg.log(AL) + (1 - y) * tg.log(1 - AL)).mean()


def problem(rng: np.random.Generator, m: int = 9) -> tuple[Any, ...]:
    X = rng.normal(size=(2, m))
    return course_params(rng), X, (X[:1] * X[1:] > 0).astype(float)


def test_per_example_gradients_with_examples_as_columns() -> None:
    per_example = tg.vmap(tg.grad(example_loss), in_axes=(None, 1, 1))
    for seed in (0, 1):
        params, X, Y = problem(np.random.default_rng(seed))
        grads = per_example(params, X, Y)
        for i in range(X.shape[1]):
            one = tg.grad(example_loss)(params, X[:, i], Y[:, i])
            for k in params:
                assert grads[k].shape == (X.shape[1], *params[k].shape)
                np.testing.assert_allclose(grads[k][i], one[k], rtol=1e-12, atol=1e-15)
        # their mean is the gradient of the mean cost
        mean = tg.grad(lambda p, X, Y: tg.vmap(example_loss, (None, 1, 1))(p, X, Y).mean())(
            params, X, Y)
        for k in params:
            np.testing.assert_allclose(grads[k].mean(0), mean[k], rtol=1e-12, atol=1e-15)
    check(tg.grad(example_loss), problem, (None, 1, 1))


def test_jit_of_vmap_is_one_batched_program_without_a_loop() -> None:
    per_example = tg.vmap(tg.grad(example_loss), in_axes=(None, 1, 1))
    graphs = [tg.make_graph(per_example)(*problem(np.random.default_rng(0), m)) for m in (5, 40)]
    assert len(graphs[0].ops) == len(graphs[1].ops) < 60  # the batch size does not add ops
    assert graphs[1].nodes[graphs[1].outputs[0]].shape == (40, 16, 2)
    assert "# backward pass" in str(graphs[0])
    lowered = tg.jit(per_example).lower(*problem(np.random.default_rng(0), 40))
    assert len(lowered.lines) < 60


def test_vmap_of_vmap_maps_two_axes() -> None:
    def f(x: Any, y: Any) -> Any:
        return tg.tanh(x @ y).sum()

    def make(rng: np.random.Generator) -> tuple[Any, ...]:
        return rng.normal(size=(4, 3, 2)), rng.normal(size=(5, 2, 3))

    def both(x: Any, y: Any) -> Any:  # (4, 5): every x against every y
        return tg.vmap(tg.vmap(f, in_axes=(None, 0)), in_axes=(0, None))(x, y)

    for seed in (0, 1):
        x, y = make(np.random.default_rng(seed))
        expected = np.array([[np.tanh(a @ b).sum() for b in y] for a in x])
        np.testing.assert_allclose(both(x, y), expected, rtol=1e-12)
        np.testing.assert_allclose(tg.jit(both)(x, y), expected, rtol=1e-12)
    check(lambda x: tg.vmap(lambda r: tg.vmap(tg.exp)(r) * r.sum())(x), draws(normal(3, 4, 5)))


def test_a_nested_vmap_closing_over_the_outer_example() -> None:
    def outer(x: Any, Y: Any) -> Any:  # every x against every row of Y: x's example is closed over
        return tg.vmap(lambda y: tg.tanh(x * y).sum())(Y)

    check(outer, draws(normal(4, 3), normal(5, 3)), (0, None))
    X, Y = np.random.default_rng(2).normal(size=(2, 4, 3))
    np.testing.assert_allclose(tg.vmap(outer, (0, None))(X, Y),
                               np.tanh(X[:, None] * Y[None]).sum(-1), rtol=1e-12)


def test_grad_of_vmap_of_grad_is_second_order() -> None:
    def inner(w: Any, x: Any) -> Any:
        return (tg.tanh(w @ x) ** 2).sum()

    def total(w: Any, X: Any) -> Any:  # Σ over the examples of |∇_w inner|²
        per_example = tg.vmap(tg.grad(inner), in_axes=(None, 1))(w, X)
        return (per_example ** 2).sum()

    def looped(w: Any, X: Any) -> Any:
        return sum((tg.grad(inner)(w, X[:, i]) ** 2).sum() for i in range(X.shape[1]))

    rng = np.random.default_rng(3)
    w, X = rng.normal(size=(3, 2)), rng.normal(size=(2, 5))
    np.testing.assert_allclose(tg.grad(total)(w, X), tg.grad(looped)(w, X), rtol=1e-12)
    jitted = tg.jit(tg.grad(total))
    jitted(w, X)
    w2, X2 = rng.normal(size=(3, 2)), rng.normal(size=(2, 5))
    np.testing.assert_allclose(jitted(w2, X2), tg.grad(looped)(w2, X2), rtol=1e-12)


def test_grad_of_vmap_and_of_a_closure() -> None:
    def total(params: Any, X: Any, Y: Any) -> Any:
        return tg.vmap(example_loss, in_axes=(None, 1, 1))(params, X, Y).mean()

    def closed(params: Any, X: Any, Y: Any) -> Any:  # the params are not an argument of vmap
        return tg.vmap(lambda x, y: example_loss(params, x, y), in_axes=1)(X, Y).mean()

    def batch_cost(params: Any, X: Any, Y: Any) -> Any:
        return example_loss_batch(params, X, Y)

    params, X, Y = problem(np.random.default_rng(0))
    expected = tg.grad(batch_cost)(params, X, Y)
    for f in (total, closed):
        got = tg.grad(f)(params, X, Y)
        for k in params:
            np.testing.assert_allclose(got[k], expected[k], rtol=1e-12, atol=1e-15)
        jitted = tg.jit(tg.grad(f))
        jitted(params, X, Y)
        second = problem(np.random.default_rng(1))
        assert_close(jitted(*second), tg.grad(batch_cost)(*second))
    # and with respect to the mapped argument
    gX = tg.grad(total, argnums=1)(params, X, Y)
    np.testing.assert_allclose(gX, tg.grad(batch_cost, argnums=1)(params, X, Y), rtol=1e-12)
    # a Tensor that requires grad, eagerly
    W = tg.Tensor(params["W1"], requires_grad=True)
    tg.vmap(lambda x: tg.tanh(W @ x).sum(), in_axes=1)(X).sum().backward()
    np.testing.assert_allclose(W.grad, tg.grad(lambda W: tg.tanh(W @ X).sum())(params["W1"]),
                               rtol=1e-12)


def example_loss_batch(params: dict[str, Any], X: Any, Y: Any) -> Any:
    A = X
    L = len(params) // 2
    for layer in range(1, L):
        A = tg.relu(params[f"W{layer}"] @ A + params[f"b{layer}"])
    AL = tg.sigmoid(params[f"W{L}"] @ A + params[f"b{L}"])
    return -(Y * tg.log(AL) + (1 - Y) * tg.log(1 - AL)).mean()


def test_pytree_outputs_as_with_has_aux_and_out_axes() -> None:
    def f(params: Any, x: Any, y: Any) -> Any:
        (loss, aux), g = tg.value_and_grad(lambda p: (example_loss(p, x, y), {"x2": x * x}),
                                           has_aux=True)(params)
        return {"loss": loss, "grads": g, "aux": aux, "constant": params["b1"]}

    check(f, problem, (None, 1, 1))
    check(f, problem, (None, 1, 1), {"loss": 0, "grads": -1, "aux": {"x2": 1}, "constant": None})
    check(f, problem, (None, 1, 1), {"loss": 0, "grads": {"W1": 2, "b1": 0, "W2": 1, "b2": 0,
                                                          "W3": 0, "b3": 1},
                                     "aux": 0, "constant": 1})


def test_in_axes_as_int_none_and_pytree_prefix() -> None:
    def f(p: Any, pair: Any) -> Any:
        return p["W"] @ pair[0] + p["b"] * pair[1].sum()

    def make(rng: np.random.Generator) -> tuple[Any, ...]:
        return ({"W": rng.normal(size=(3, 2)), "b": rng.normal(size=(7, 3))},
                (rng.normal(size=(2, 7)), rng.normal(size=(7, 4))))

    check(f, make, ({"W": None, "b": 0}, (1, 0)))
    check(lambda x, y: x * y, draws(normal(7, 2), normal(2, 7)), (0, -1))
    check(lambda x, s: x * s, lambda rng: (rng.normal(size=(7, 2)), 3.0), (0, None))
    check(lambda x, key: x + key.sum(), lambda rng: (rng.normal(size=(7, 2)), np.arange(3)),
          (0, None))
    # keyword arguments are mapped over axis 0, as in JAX
    x, z = np.ones((4, 3)), np.arange(12.0).reshape(4, 3)
    np.testing.assert_allclose(tg.vmap(lambda x, *, z: x * z.sum())(x, z=z),
                               x * z.sum(1, keepdims=True))
    with pytest.raises(ValueError, match="in_axes"):
        tg.vmap(f, in_axes=({"W": None}, 0))(*make(np.random.default_rng(0)))


def test_a_result_is_a_new_array_each_call() -> None:
    x = np.arange(6.0).reshape(2, 3)
    same = tg.vmap(lambda r: r)(x)
    assert type(same) is np.ndarray and not np.shares_memory(same, x)
    np.testing.assert_array_equal(same, x)
    moved = tg.vmap(lambda r: r, out_axes=1)(x)
    np.testing.assert_array_equal(moved, x.T)
    assert not np.shares_memory(moved, x)


def test_reading_an_example_raises_naming_vmap() -> None:
    def f(x: Any) -> Any:
        return x * 2.0 if float(x.sum()) > 0 else x

    with pytest.raises(TracedValueError, match=r"vmap\(f\)"):
        tg.vmap(f)(np.ones((3, 2)))
    # an unmapped argument is passed as it is: its values may be read
    read = tg.vmap(lambda x, y: x * float(y.sum()), in_axes=(0, None))
    np.testing.assert_array_equal(read(np.ones((3, 2)), np.ones(2)), 2 * np.ones((3, 2)))


def test_errors_name_the_argument() -> None:
    f = tg.vmap(lambda x, y: x + y)
    with pytest.raises(ValueError, match=r"differ in size: 'x0' has 3, 'x1' has 4"):
        f(np.ones((3, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"in_axes 2 is out of range for argument 'W'"):
        tg.vmap(lambda p: p["W"], in_axes=2)({"W": np.ones((3, 2))})
    with pytest.raises(ValueError, match=r"in_axes 0 is out of range for argument 'x1'"):
        f(np.ones(3), 2.0)
    with pytest.raises(ValueError, match="in_axes has 1 entries, but the function got 2"):
        tg.vmap(lambda x, y: x, in_axes=(0,))(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="no argument is mapped"):
        tg.vmap(lambda x: x, in_axes=None)(np.ones(3))
    with pytest.raises(ValueError, match="out_axes is None for the output, but it varies"):
        tg.vmap(lambda x: x, out_axes=None)(np.ones(3))
    with pytest.raises(ValueError, match="out_axes 3 is out of range for the output"):
        tg.vmap(lambda x: x, out_axes=3)(np.ones((3, 2)))
    with pytest.raises(TypeError, match=r"'x0' is mapped .* but it is a str"):
        tg.vmap(lambda x: x)("abc")
