"""The recorded graph is a program: primitives with params, user-defined ops, comparisons that a
traced program recomputes, and the layering of the package's modules."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import ops
from tinygrad_nn.tensor import Tensor

PACKAGE = Path(tg.__file__).parent


# --- a user's own op: swish(x) = x·σ(βx), one primitive with its own rule -----------------------
def _swish(x: np.ndarray, beta: float) -> np.ndarray:
    return x / (1.0 + np.exp(-beta * x))


def _swish_dx(g: Any, out: Any, x: Any, beta: float) -> Any:
    s = tg.sigmoid(x * beta) if isinstance(x, Tensor) else 1.0 / (1.0 + np.exp(-beta * x))
    return g * (s + beta * out * (1.0 - s))  # d swish = (σ(βx) + β·swish(x)·(1 - σ(βx)))·dx


swish_p = tg.Primitive("swish", _swish, (_swish_dx,), "d swish = (σ + β·swish·(1 - σ))·dx",
                       flops=lambda out, x, beta: 5 * int(np.prod(out)))


def swish(x: Any, beta: float = 1.0) -> Tensor:
    return swish_p(x, beta=beta)


def test_a_user_primitive_has_right_first_and_second_order_gradients() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4))
    assert tg.check_grads(lambda t: swish(t, beta=1.5).sum(), (x,)).max_error < 1e-7
    # second order: the rule records its own ops under create_graph, so grad of grad works
    hessian_check = tg.check_grads(lambda t: (tg.grad(lambda u: swish(u, 1.5).sum())(t) ** 2)
                                   .sum(), (x,))
    assert hessian_check.max_error < 1e-6
    expected = x * (1 / (1 + np.exp(-1.5 * x)))
    assert np.allclose(swish(x, 1.5).data, expected)


def test_a_user_primitive_is_listed_by_name_with_params_and_counted() -> None:
    graph = tg.make_graph(lambda t: swish(t, beta=2.0).sum())(np.ones((2, 3)))
    assert "a:f64[2,3] = swish[beta=2.0] x0" in str(graph)
    node = graph.ops[0]
    assert node.primitive is swish_p and node.params == {"beta": 2.0} and node.flops == 30
    assert graph.summary().forward_flops == 30 + 6  # swish, then the sum over its 6 elements


def test_a_primitive_without_a_flop_count_says_so_never_zero() -> None:
    double = tg.Primitive("double", lambda x: 2 * x, (lambda g, out, x: 2 * g,))
    summary = tg.make_graph(lambda t: double(t).sum())(np.ones(3)).summary()
    assert summary.uncounted == ("double",) and summary.forward_flops == 3
    assert "no FLOP count (not in the totals): double" in str(summary)


def test_a_missing_rule_is_an_error_at_the_call_naming_op_and_input() -> None:
    half_done = tg.Primitive("half_done", np.add, (lambda g, out, x, y: g, None))
    x = Tensor(np.ones(2), requires_grad=True)
    assert half_done(x, np.ones(2)).requires_grad  # input 1 is a constant: fine
    with pytest.raises(TypeError, match="half_done: input 1 requires grad, but the primitive has "
                       "no VJP rule for it"):
        half_done(np.ones(2), x)


# --- the program records comparisons and params ----------------------------------------------
def test_an_impl_that_returns_no_numbers_is_an_error_naming_the_op() -> None:
    forgot_return = tg.Primitive("forgot_return", lambda x: None, (lambda g, out, x: g,))
    with pytest.raises(ValueError, match=r"forgot_return: it gave object values, not numbers"):
        forgot_return(tg.Tensor(np.ones(3), requires_grad=True))


def test_a_comparison_is_recorded_so_a_new_input_recomputes_its_mask() -> None:
    def f(x: Any) -> Tensor:
        return tg.where(x > 0, x, 0.1 * x).sum()

    graph = tg.make_graph(f)(np.array([1.0, -2.0, 3.0]))
    labels = [node.label for node in graph.ops]
    assert labels[0] == "greater" and graph.nodes[graph.ops[0].inputs[0]].name == "x0"
    where = next(node for node in graph.ops if node.op == "where")
    assert graph.nodes[where.inputs[0]].op == "greater"  # an equation, not a constant mask
    # outside a trace a comparison needs no recording: it is a constant
    assert (Tensor(np.ones(2), requires_grad=True) > 0).op is None


def test_params_are_plain_data_on_the_node() -> None:
    x = Tensor(np.ones((2, 3, 4)), requires_grad=True)
    y = x.sum(axis=-1, keepdims=True).transpose(2, 0, 1)[0, :, 1:].reshape(-1).clip(0.0, None)
    nodes = y.graph().ops
    assert [(node.op, node.params) for node in nodes] == [
        ("sum", {"axis": (2,), "keepdims": True}),
        ("transpose", {"axes": (2, 0, 1)}),
        ("getitem", {"index": (0, slice(None), slice(1, None))}),
        ("reshape", {"shape": (-1,)}),
        ("clip", {"low": 0.0, "high": None}),
    ]


def test_every_builtin_primitive_has_math_and_a_flop_count() -> None:
    primitives = {v.name: v for v in vars(ops).values() if isinstance(v, tg.Primitive)}
    assert {"add", "matmul", "sum", "where", "greater", "reshape", "logsumexp"} <= set(primitives)
    for primitive in primitives.values():
        assert primitive.math, primitive.name
        assert primitive.flops is not None, primitive.name


def test_every_declared_tensor_method_is_assigned() -> None:
    declared = [name for name, v in vars(Tensor).items() if v is None] + ["backward", "graph"]
    assert not [name for name in declared if getattr(Tensor, name, None) is None]
    assert len([name for name, v in vars(Tensor).items() if callable(v)]) > 40
    x = Tensor(np.array([[1.0, -2.0]]))
    assert np.array_equal((x + 1).data, [[2.0, -1.0]])
    assert np.array_equal((1 - x).data, [[0.0, 3.0]])
    assert np.array_equal(x.T.data, [[1.0], [-2.0]]) and x.abs().sum().item() == 3.0


# --- layering: each module imports only those below it, and tensor.py nothing -----------------
LAYERS = [
    "tensor", "batching", "ops", "autodiff", "pytree", "functional", "vmap", "jacobians",
    "gradcheck", "program", "graph", "jit",
]


def package_imports(module: str) -> set[str]:
    """The package's modules that ``module`` imports anywhere (inside functions too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse((PACKAGE / f"{module}.py").read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tinygrad_nn"):
            parts = (node.module or "").split(".")
            found |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("tinygrad_nn.")}
    return found - {module}


def test_no_module_imports_the_package_in_a_circle() -> None:
    modules = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    edges = {m: package_imports(m) & set(modules) for m in modules}
    assert edges["tensor"] == set()  # the ground floor
    for module in modules:  # depth-first: no path leads back to where it started
        stack, seen = [(module, [module])], set()
        while stack:
            current, path = stack.pop()
            for nxt in edges[current]:
                assert nxt != module, f"import circle: {' -> '.join([*path, nxt])}"
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    for position, module in enumerate(LAYERS):  # the engine imports only what is below it
        assert edges[module] <= set(LAYERS[:position]), (module, edges[module])


def test_the_package_reaches_its_submodules() -> None:
    assert tg.nn.train is not None and tg.course.L_model_forward and tg.data.load_catvnoncat
