"""The recorded graph as a program: trace a function into equations, or read the graph behind
a tensor.

``trace(f, args)`` runs ``f`` once on named input leaves and reads back what the engine recorded,
as JAX's ``make_jaxpr`` does: every op that depends on an input, as an equation (primitive,
inputs, params); a transform run inside (``grad``) adds its recorded backward pass. ``jit`` and
``export_onnx`` read this ``Program``; ``graph.Graph`` is the same with inspection on top.
"""

from __future__ import annotations

import itertools
import math
import string
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinygrad_nn import functional, ops
from tinygrad_nn.autodiff import GraphReleasedError
from tinygrad_nn.pytree import TreeDef, argument_names, tree_flatten, tree_paths, tree_unflatten
from tinygrad_nn.tensor import Primitive, Tensor, Trace, leaf, numeric, switch

INPUT, CONSTANT = "input", "const"


@dataclass(frozen=True)
class Node:
    """One value of the program: a named input, a constant (``value``), or an equation
    ``primitive(*inputs, **params)`` (``inputs`` are node ids). ``flops`` is None when the
    primitive has no FLOP count; ``backward`` marks a node a backward pass recorded; ``weak``
    a value traced from Python numbers only (it promotes as they do)."""

    id: int
    op: str
    name: str
    inputs: tuple[int, ...]
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    requires_grad: bool
    primitive: Primitive | None = None
    params: dict[str, Any] = field(default_factory=dict)
    flops: int | None = 0
    backward: bool = False
    value: Any = None
    weak: bool = False

    is_op = property(lambda self: self.primitive is not None)
    type = property(lambda self: _type_text(self.shape, self.dtype))  # ``f64[20,209]``
    nbytes = property(lambda self: math.prod(self.shape) * self.dtype.itemsize)

    @property
    def label(self) -> str:
        """The op with its params, jaxpr-style: ``sum[axis=(1,) keepdims=True]``."""
        params = " ".join(f"{key}={_text(v)}" for key, v in self.params.items())
        return f"{self.op}[{params}]" if params else self.op


class Program:
    """A program: ``nodes`` in order (inputs, constants, then equations in the order they
    ran); ``inputs``/``outputs`` are node ids, ``value`` what ``f`` returned (numpy arrays for
    Tensors), ``out_tree`` its structure. ``print(program)`` gives a jaxpr-like
    listing."""

    def __init__(self, nodes: list[Node], inputs: list[int], outputs: list[int],
                 output_names: list[str], value: Any = None, out_tree: TreeDef | None = None):
        self.nodes, self.inputs, self.outputs = nodes, inputs, outputs
        self.output_names, self.value, self.out_tree = output_names, value, out_tree
        self.ops = [node for node in nodes if node.is_op]  # the equations, in order: made once

    def __repr__(self) -> str:
        backward = sum(node.backward for node in self.nodes)
        of_them = f", {backward} of them backward" if backward else ""
        return (f"{type(self).__name__}({len(self.ops)} ops{of_them}, {len(self.inputs)} inputs, "
                f"{len(self.outputs)} outputs)")

    def line(self, node: Node) -> str:
        """The equation's line of the listing: ``c:f64[20,209] = add a b1``."""
        arguments = " ".join(self.nodes[i].name for i in node.inputs)
        return f"{node.name}:{node.type} = {node.label} {arguments}".rstrip()

    def needed(self, roots: Sequence[int] | None = None, stop: Container[int] = ()) -> set[int]:
        """The ids of the nodes ``roots`` (default: the outputs) depend on, themselves included;
        the walk does not go past the ids in ``stop``."""
        needed, stack = set(), list(self.outputs if roots is None else roots)
        while stack:
            i = stack.pop()
            if i not in needed:
                needed.add(i)
                stack.extend(self.nodes[i].inputs if i not in stop else ())
        return needed

    def __str__(self) -> str:
        header = " ".join(f"{self.nodes[i].name}:{self.nodes[i].type}" for i in self.inputs)
        lines, phase = [f"{{ lambda {header}. let"], False
        for node in self.ops:
            if node.backward != phase:  # a backward pass begins, or ends
                lines.append("    # backward pass" if node.backward else "    # after it")
                phase = node.backward
            lines.append(f"    {self.line(node)}")
        outputs = ", ".join(self.nodes[i].name for i in self.outputs)
        return "\n".join([*lines, f"  in ({outputs}) }}"])


def is_input_leaf(leaf: Any, scalars: bool = False) -> bool:
    """Leaves that become a program's inputs: numeric arrays and Tensors, and with ``scalars``
    Python ints and floats (traced as weakly typed 0-d values, as ``jax.jit`` does). Other
    leaves (bools, strings, None, numbers without ``scalars``) are passed as they are."""
    if type(leaf) in (int, float):  # an int beyond int64 stays a constant of the program
        return scalars and (type(leaf) is float or -(2**63) <= leaf < 2**63)
    return isinstance(leaf, (np.ndarray, Tensor, np.number)) and np.asarray(
        leaf._data if type(leaf) is Tensor else leaf).dtype.kind in "biuf"


def trace(f: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any] | None = None,
          argnums: int | Sequence[int] | None = None, name: str | None = None,
          kind: type[Program] | None = None, scalars: bool = False) -> Program:
    """Run ``f(*args, **kwargs)`` once as a program and return it (as a ``kind``, default
    ``Program``).

    Each input leaf of ``args`` (``is_input_leaf``; with ``scalars`` Python numbers too) becomes
    an input named by its pytree path (``W1``; a positional array ``x0``); float leaves of the
    arguments in ``argnums`` (default: all) require grad. Reading an input's value in Python
    inside ``f`` is a ``TracedValueError``. ``kind`` is the class returned (``graph.Graph``
    adds inspection).
    """
    program = Trace(name or f"trace({getattr(f, '__name__', 'f')})")
    wanted = functional.check_argnums(tuple(range(len(args))) if argnums is None else argnums,
                                      len(args), "make_graph")
    names, inputs, traced_args = iter(argument_names(tuple(args))), [], []
    for position, arg in enumerate(args):
        leaves, treedef = tree_flatten(arg)
        for k, (item, leaf_name) in enumerate(zip(leaves, names)):
            if is_input_leaf(item, scalars):
                weak = type(item) in (int, float)
                array = np.asarray(item._data if type(item) is Tensor else item)
                grad = array.dtype.kind == "f" and position in wanted and not weak
                leaves[k] = leaf(array, grad, 0, leaf_name, program, weak)
                inputs.append(leaves[k])
        traced_args.append(tree_unflatten(treedef, leaves))
    try:
        with switch("program", program), functional.tracing() as (_, tape):
            result = f(*traced_args, **(kwargs or {}))
    finally:
        program.active = False
    leaves, out_tree = tree_flatten(result)
    paths = tree_paths(result)
    outputs = [item if type(item) is Tensor else Tensor(numeric(item, f"{program.name}: the "
               f"output '{path or 'at the top'}'")) for item, path in zip(leaves, paths)]
    value = tree_unflatten(out_tree, [tensor._data for tensor in outputs])
    return _build(kind, outputs, paths, value, inputs, program.backward, out_tree, tape)


def _walk(roots: Sequence[Any]) -> list[Any]:
    """Every tensor and constant leading to ``roots``, each after its inputs (no recursion)."""
    order, seen, stack = [], set(), [(root, False) for root in reversed(roots)]
    while stack:
        item, done = stack.pop()
        if done:
            order.append(item)
        elif id(item) not in seen:
            seen.add(id(item))
            stack.append((item, True))
            if _is_op(item) and item.inputs is None:
                raise GraphReleasedError(f"graph: the graph through op '{item.op}' was released "
                                         "by backward(); inspect it before backward(), or pass "
                                         "retain_graph=True to backward()")
            stack.extend((x, False) for x in reversed(item.inputs if _is_op(item) else ()))
    return order


def recorded(tensor: Tensor, kind: type[Program] | None = None) -> Program:
    """The program recorded behind ``tensor``: its inputs are the leaves that require grad or
    have a ``name``; other leaves are constants."""
    return _build(kind, [tensor], [""], tensor.concrete("graph()"), [], set())


def _build(kind: type[Program] | None, outputs: list[Tensor], output_names: list[str], result: Any,
           inputs: list[Tensor], backward: set[int], out_tree: TreeDef | None = None,
           tape: list[Tensor] | None = None) -> Program:
    """The Program of ``outputs``: inputs, constants, then the equations in the order they ran
    (every one on the ``tape``, when given, as ``make_jaxpr`` lists them; else those leading to
    the outputs); ``backward`` holds the ids of those a backward pass recorded. A transform's
    ``identity`` of an input is not listed: its uses read the input."""
    ran = [x for x in tape if _is_op(x)] if tape is not None else []
    order, listed = _walk(outputs + ran), {id(x) for x in inputs}
    ops_run = ran if tape is not None else [x for x in order if _is_op(x)]
    same = {id(x): x.inputs[0] for x in ops_run if x.primitive is ops.identity}  # type: ignore
    ops_run = [x for x in ops_run if id(x) not in same]
    leaves = inputs + [x for x in order if type(x) is Tensor and not _is_op(x) and (
        x.requires_grad or x.name is not None) and id(x) not in listed]
    listed |= {id(x) for x in leaves}
    constants = [x for x in order if not _is_op(x) and id(x) not in listed]
    index = {id(x): i for i, x in enumerate(leaves + constants + ops_run)}
    for x in order:  # an identity reads as its input (itself maybe an identity: in order, before)
        if id(x) in same:
            index[id(x)] = index[id(same[id(x)])]
    names = _names(leaves, len(ops_run))
    nodes = [Node(i, INPUT, name, (), x.shape, x.dtype, x.requires_grad, value=x._data,
                  weak=x.weak) for i, (name, x) in enumerate(zip(names, leaves))]
    for x in constants:
        array = x._data if type(x) is Tensor else x
        nodes.append(Node(len(nodes), CONSTANT, _constant_text(array), (), np.shape(array),
                          np.asarray(array).dtype, False, value=array,
                          weak=type(x) in (int, float)))
    for name, x in zip(names[len(leaves):], ops_run):
        primitive, arguments, params = x.primitive, x.inputs or (), x.params or {}
        assert primitive is not None
        shapes = [x.shape if type(x) is Tensor else np.shape(x) for x in arguments]
        flops = None if primitive.flops is None else primitive.flops(x.shape, *shapes, **params)
        nodes.append(Node(len(nodes), primitive.name, name, tuple(index[id(a)] for a in arguments),
                          x.shape, x.dtype, x.requires_grad, primitive, params, flops,
                          id(x) in backward, weak=x.weak))
    return (kind or Program)(nodes, [index[id(x)] for x in leaves],
                             [index[id(x)] for x in outputs], list(output_names), result, out_tree)


def _is_op(item: Any) -> bool:
    return isinstance(item, Tensor) and item.primitive is not None


def _type_text(shape: tuple[int, ...], dtype: np.dtype[Any]) -> str:
    kind = "bool" if dtype.kind == "b" else f"{dtype.kind}{dtype.itemsize * 8}"
    return f"{kind}[{','.join(str(n) for n in shape)}]"


def _text(item: Any) -> str:
    """A param as the listing shows it: ``(1,)``, ``True``, ``f32``, ``:,0``, ``i64[3]``."""
    if isinstance(item, slice):
        return ":".join("" if p is None else str(p) for p in (item.start, item.stop, item.step)
                        ).removesuffix(":")
    if isinstance(item, tuple):
        return "(" + ", ".join(map(_text, item)) + ("," if len(item) == 1 else "") + ")"
    if isinstance(item, np.dtype):
        return _type_text((), item)[:-2]
    if isinstance(item, np.ndarray):
        return _type_text(item.shape, item.dtype)
    if isinstance(item, str) and len(item) > 24:
        return repr(item[:20] + "…")
    return "..." if item is Ellipsis else repr(item)


def _constant_text(item: Any) -> str:
    """A Python number as written (it is weakly typed); a small array with its numbers,
    ``1.0:f64[]`` or ``[0, 2]:i64[2]``; a larger one by its type, ``f64[12288,209]``."""
    if type(item) in (bool, int, float):
        text = repr(item)
        return text if len(text) <= 10 or not isinstance(item, float) else f"{item:.6g}"
    array = np.asarray(item)
    if array.ndim == 0:
        return f"{_constant_text(array.item())}:{_type_text((), array.dtype)}"
    if array.size <= 6:
        numbers = np.array2string(array, separator=", ", precision=6).replace("\n", "")
        return f"{numbers}:{_type_text(array.shape, array.dtype)}"
    return _type_text(array.shape, array.dtype)


def _names(leaves: list[Tensor], op_count: int) -> list[str]:
    """Listing names: each input's own name (else a generated one), then one per op."""
    taken = {x.name for x in leaves} | {"in", "let", "lambda"}
    generated = (name for length in itertools.count(1) for letters in itertools.product(
        string.ascii_lowercase, repeat=length) if (name := "".join(letters)) not in taken)
    names: list[str] = []
    for x in leaves:
        fresh = x.name is not None and x.name not in names
        names.append(x.name if fresh else next(generated))  # type: ignore[arg-type]
    return names + [next(generated) for _ in range(op_count)]


