"""Every primitive is a whole op (issue 18): a Primitive of ops.py, tensor.py's stop_gradient and
random.py's draws each have

- a public name: ``tg.<name>`` (``tg.random.<name>`` for a draw), or an entry in ``ELSEWHERE``
  saying how it is reached;
- the Tensor method, or operator, that numpy's ndarray has under that name;
- a gradient test: it is in the program of a gradient case (``test_ops_gradients.CASES``,
  ``op_cases.CASES``), whose second order runs the rules of what its first order records; or it
  is in ``NO_GRADIENT`` (and has no rule);
- an ONNX mapping (``export.ONNX_OPS``; ``None`` marks "no ONNX form") and, with one, a run in
  ONNX Runtime: it is in ``test_export``'s every_primitive program or in an op case that
  ``test_ops_numpy`` exports;
- a ``vmap`` rule (``batch=``, or ``elementwise=True``), or an entry in ``LOOPS`` (under
  ``vmap`` it then runs once per example); ``test_vmap`` runs every op case on a batch.

The failure names each primitive and what it lacks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import test_ops_gradients
from op_cases import CASES
from test_export import every_primitive, example_params
from test_ops_numpy import ONNX_CASES, of_floats, primitives_of

import tinygrad_nn as tg
from tinygrad_nn import composites, export, ops, random
from tinygrad_nn.program import trace
from tinygrad_nn.tensor import Primitive, Tensor

PRIMITIVES = sorted({p for module in (ops, random) for p in vars(module).values()
                     if isinstance(p, Primitive)} | {tg.stop_gradient}, key=lambda p: p.name)

# Reached otherwise than as tg.<its name>.
ELSEWHERE = {
    "getitem": "x[index]",
    "pow": "tg.power and x ** y (the listing keeps the short name)",
    "scatter_add": "recorded by x[index]'s gradient (its transpose), not called by users",
    "identity": "recorded by the transforms (a traced input joined to an outer trace)",
    "check_range": "ops.check_range: a check a traced program keeps, for library code",
}
# numpy's operators, by the primitive that computes them.
OPERATORS = {
    "add": "__add__", "sub": "__sub__", "mul": "__mul__", "div": "__truediv__", "pow": "__pow__",
    "matmul": "__matmul__", "neg": "__neg__", "abs": "__abs__", "mod": "__mod__",
    "less": "__lt__", "less_equal": "__le__", "greater": "__gt__", "greater_equal": "__ge__",
    "equal": "__eq__", "not_equal": "__ne__", "getitem": "__getitem__",
}
# Never an equation of a program (its uses read its input), so no trace shows it: every grad of
# a grad runs its rule (d x = dx), on the outer Tensors it joins to the inner transform.
UNLISTED = {"identity"}
NO_GRADIENT = {
    "sign", "floor", "ceil", "rint",  # piecewise constant: tg.grad gives 0 (test_ops_numpy)
    "less", "less_equal", "greater", "greater_equal", "equal", "not_equal",  # booleans
    "argmax", "argmin", "argsort",  # indices
    "stop_gradient",  # its whole point
    "random_split", "random_normal", "random_uniform", "random_bernoulli", "random_permutation",
}


# Without a batch rule: vmap runs them once per example (a key each), which is what they mean.
LOOPS = {"random_split", "random_normal", "random_uniform", "random_bernoulli",
         "random_permutation"}


def public(primitive: Primitive) -> bool:
    name = primitive.name
    if name.startswith("random_"):
        return callable(getattr(random, name.removeprefix("random_"), None))
    return name in ELSEWHERE or callable(getattr(tg, name, None))


def missing_methods(primitive: Primitive) -> list[str]:
    """The methods and operators numpy's ndarray has for it, that Tensor lacks."""
    names = [primitive.name] if hasattr(np.ndarray, primitive.name) else []
    names += [OPERATORS[primitive.name]] if primitive.name in OPERATORS else []
    return [name for name in names if not callable(getattr(Tensor, name, None))]


def gradient_programs() -> set[Primitive]:
    """The primitives recorded by the first-order gradient of every gradient case (that runs)."""
    found: set[Primitive] = set()
    gradient_cases = [(case.fn, case.draw_inputs(np.random.default_rng(0)))
                      for case in test_ops_gradients.CASES]
    gradient_cases += [of_floats(case, case.draw_inputs(np.random.default_rng(0)))
                       for case in CASES if case.grad]
    for fn, inputs in gradient_cases:
        def loss(*xs: Any, fn: Any = fn) -> Tensor:
            return (fn(*xs) ** 2).sum()

        positions = tuple(range(len(inputs)))
        try:
            program = trace(tg.grad(loss, argnums=positions), inputs, argnums=())
        except Exception:  # the case's own tests say why
            continue
        found |= {node.primitive for node in program.ops if node.primitive is not None}
    return found


def onnx_runs() -> set[Primitive]:
    """The primitives of the programs run in ONNX Runtime by test_export and test_ops_numpy."""
    program = trace(every_primitive, (example_params(np.float64), np.ones((6, 5))), argnums=())
    found = {node.primitive for node in program.ops if node.primitive is not None}
    return found.union(*(primitives_of(case) for case in ONNX_CASES))


@pytest.fixture(scope="module")
def covered() -> dict[str, set[Primitive]]:
    return {"gradient": gradient_programs(), "onnx": onnx_runs()}


def gaps(primitive: Primitive, covered: dict[str, set[Primitive]]) -> list[str]:
    """What ``primitive`` lacks, in words."""
    missing = []
    if not public(primitive):
        missing.append(f"a public tg.{primitive.name} (or an entry in ELSEWHERE)")
    if methods := missing_methods(primitive):
        missing.append(f"the Tensor methods numpy's ndarray has ({', '.join(methods)})")
    if primitive.name in UNLISTED:
        return missing + ([] if primitive in export.ONNX_OPS else ["an ONNX mapping"])
    if primitive.name in NO_GRADIENT:
        if primitive.vjps is not None:
            missing.append("no rule (it is in NO_GRADIENT, but has one: test it instead)")
    elif primitive not in covered["gradient"]:
        missing.append("a gradient test (a case in test_ops_gradients.CASES or op_cases.CASES "
                       "whose gradient records it), or an entry in NO_GRADIENT")
    if primitive not in export.ONNX_OPS:
        missing.append("an ONNX mapping (export.register_onnx(primitive, emit), or emit=None "
                       "for no ONNX form)")
    elif export.ONNX_OPS[primitive] is not None and primitive not in covered["onnx"]:
        missing.append("a run in ONNX Runtime (an op case in op_cases.CASES that uses it)")
    if primitive.batch is None and not primitive.elementwise and primitive.name not in LOOPS:
        missing.append("a vmap rule (batch=batching.…, or elementwise=True), or an entry in "
                       "LOOPS")
    return missing


def test_every_primitive_is_a_whole_op(covered: dict[str, set[Primitive]]) -> None:
    lacking = {p.name: gaps(p, covered) for p in PRIMITIVES}
    report = [f"{name} lacks {'; '.join(what)}" for name, what in lacking.items() if what]
    assert not report, "\n".join(report)
    assert len(PRIMITIVES) >= 70


def test_the_composites_have_the_tensor_methods_numpy_has() -> None:
    names = [name for name in composites.__all__ if hasattr(np.ndarray, name)]
    assert {"sort", "round", "squeeze", "take", "dot", "trace", "argmin"} <= set(names)
    assert [name for name in names if not callable(getattr(Tensor, name, None))] == []


def public_op(name: str) -> Any:
    """``tg.<name>``, or ``tg.nn.<name>`` for ``nn.<name>``; None if there is none."""
    module, _, op = name.rpartition(".")
    return getattr(getattr(tg, module) if module else tg, op, None)


def test_every_op_case_calls_a_public_op() -> None:
    assert [c.name for c in CASES if not callable(public_op(c.op))] == []


def test_the_check_names_what_was_taken_away(covered: dict[str, set[Primitive]],
                                             monkeypatch: Any) -> None:
    """Remove a primitive's mapping, method, public name and gradient test: each is named."""
    monkeypatch.delitem(export.ONNX_OPS, ops._prod)
    monkeypatch.delattr(Tensor, "prod")
    monkeypatch.delattr(tg, "prod")
    without = {"gradient": covered["gradient"] - {ops._prod}, "onnx": covered["onnx"]}
    assert [what.split(" ")[:3] for what in gaps(ops._prod, without)] == [
        ["a", "public", "tg.prod"], ["the", "Tensor", "methods"], ["a", "gradient", "test"],
        ["an", "ONNX", "mapping"]]
    monkeypatch.setitem(export.ONNX_OPS, ops.mod, None)  # None: "no ONNX form" is an answer
    assert gaps(ops.mod, covered) == []
    ruled_sign = Primitive("sign", np.sign, (lambda g, out, x: g,))  # listed as having no rule
    assert any(what.startswith("no rule") for what in gaps(ruled_sign, covered))
    monkeypatch.setattr(ops._prod, "batch", None)
    assert [what.split(" ")[:3] for what in gaps(ops._prod, without)][-1] == ["a", "vmap", "rule"]
