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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinygrad_nn import functional
from tinygrad_nn.autodiff import GraphReleasedError
from tinygrad_nn.pytree import TreeDef, argument_names, tree_flatten, tree_paths, tree_unflatten
from tinygrad_nn.tensor import Primitive, Tensor, Trace, numeric, switch, value

INPUT, CONSTANT = "input", "const"


@dataclass(frozen=True)
class Node:
    """One value of the program: a named input, a constant (``value``), or an equation
    ``primitive(*inputs, **params)`` (``inputs`` are node ids). ``flops`` is None when the
    primitive has no FLOP count; ``backward`` marks a node a backward pass recorded."""

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

    is_op = property(lambda self: self.primitive is not None)
    type = property(lambda self: _type_text(self.shape, self.dtype))  # ``f64[20,209]``
    nbytes = property(lambda self: math.prod(self.shape) * self.dtype.itemsize)

    @property
    def label(self) -> str:
        """The op with its params, jaxpr-style: ``sum[axis=(1,) keepdims=True]``."""
        params = " ".join(f"{key}={_text(v)}" for key, v in self.params.items())
        return f"{self.op}[{params}]" if params else self.op


class Program:
    """A program: ``nodes`` in order (inputs, constants, then equations, a backward pass after
    the forward one); ``inputs``/``outputs`` are node ids, ``value`` what ``f`` returned (numpy
    arrays for Tensors), ``out_tree`` its structure. ``print(program)`` gives a jaxpr-like
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

    def __str__(self) -> str:
        header = " ".join(f"{self.nodes[i].name}:{self.nodes[i].type}" for i in self.inputs)
        lines, in_backward = [f"{{ lambda {header}. let"], False
        for node in self.ops:
            if node.backward and not in_backward:
                lines.append("    # backward pass")
                in_backward = True
            arguments = " ".join(self.nodes[i].name for i in node.inputs)
            lines.append(f"    {node.name}:{node.type} = {node.label} {arguments}")
        outputs = ", ".join(self.nodes[i].name for i in self.outputs)
        return "\n".join([*lines, f"  in ({outputs}) }}"])


def is_input_leaf(leaf: Any) -> bool:
    """Leaves that become a program's inputs: numeric arrays and Tensors. Python numbers (weakly
    typed: an array would change promotion) and non-numeric leaves are passed as they are."""
    return isinstance(leaf, (np.ndarray, Tensor, np.number)) and np.asarray(
        value(leaf)).dtype.kind in "biuf"


def trace(f: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any] | None = None,
          argnums: int | Sequence[int] | None = None, name: str | None = None,
          kind: type[Program] | None = None) -> Program:
    """Run ``f(*args)`` once as a program and return it (as a ``kind``, default ``Program``).

    Each input leaf (``is_input_leaf``) becomes an input named by its pytree path (``W1``; a
    positional array ``x0``); float leaves of the arguments in ``argnums`` (default: all)
    require grad. Reading an input's value in Python inside ``f`` is a ``TracedValueError``.
    ``kind`` is the class returned (``graph.Graph`` adds inspection).
    """
    program = Trace(name or f"trace({getattr(f, '__name__', 'f')})")
    wanted = functional.check_argnums(tuple(range(len(args))) if argnums is None else argnums,
                                      len(args), "make_graph")
    names, inputs, traced_args = iter(argument_names(tuple(args))), [], []
    forward: list[Tensor] = []
    for position, arg in enumerate(args):
        leaves, treedef = tree_flatten(arg)
        for k, (leaf, leaf_name) in enumerate(zip(leaves, names)):
            if is_input_leaf(leaf):
                array = np.asarray(value(leaf))
                leaves[k] = Tensor(array, array.dtype.kind == "f" and position in wanted, leaf_name)
                leaves[k].program = program
                inputs.append(leaves[k])
        traced_args.append(tree_unflatten(treedef, leaves))
    functional.output_hooks.append(forward.append)
    try:
        with switch("program", program), functional.tracing() as (_, tape):
            result = f(*traced_args, **(kwargs or {}))
    finally:
        functional.output_hooks.remove(forward.append)
    leaves, out_tree = tree_flatten(result)
    paths = tree_paths(result)
    outputs = [leaf if type(leaf) is Tensor else Tensor(numeric(leaf, f"{program.name}: the "
               f"output '{path or 'at the top'}'")) for leaf, path in zip(leaves, paths)]
    value_ = tree_unflatten(out_tree, [tensor.data for tensor in outputs])
    return _build(kind, outputs, paths, value_, inputs, forward, out_tree, tape)


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
    return _build(kind, [tensor], [""], tensor.data, [], [])


def _build(kind: type[Program] | None, outputs: list[Tensor], output_names: list[str], result: Any,
           inputs: list[Tensor], forward_outputs: list[Tensor], out_tree: TreeDef | None = None,
           tape: list[Tensor] | None = None) -> Program:
    order, listed = _walk(forward_outputs + outputs), {id(x) for x in inputs}
    forward = {id(x) for x in _walk(forward_outputs)} if forward_outputs else None
    live = {id(x) for x in order}  # the order the ops ran in, when known; dead ones dropped
    ops = [x for x in (order if tape is None else tape) if _is_op(x) and id(x) in live]
    backward = {id(x) for x in ops if forward is not None and id(x) not in forward}
    ops = [x for x in ops if id(x) not in backward] + [x for x in ops if id(x) in backward]
    leaves = inputs + [x for x in order if type(x) is Tensor and not _is_op(x) and (
        x.requires_grad or x.name is not None) and id(x) not in listed]
    listed |= {id(leaf) for leaf in leaves}
    constants = [x for x in order if not _is_op(x) and id(x) not in listed]
    index = {id(x): i for i, x in enumerate(leaves + constants + ops)}
    names = _names(leaves, len(ops))
    nodes = [Node(i, INPUT, name, (), x.shape, x.dtype, x.requires_grad, value=x.data)
             for i, (name, x) in enumerate(zip(names, leaves))]
    for x in map(value, constants):
        nodes.append(Node(len(nodes), CONSTANT, _constant_text(x), (), np.shape(x),
                          np.asarray(x).dtype, False, value=x))
    for name, x in zip(names[len(leaves):], ops):
        primitive, arguments, params = x.primitive, x.inputs or (), x.params or {}
        assert primitive is not None
        shapes = [np.shape(value(arg)) for arg in arguments]
        flops = None if primitive.flops is None else primitive.flops(x.shape, *shapes, **params)
        nodes.append(Node(len(nodes), primitive.name, name, tuple(index[id(a)] for a in arguments),
                          x.shape, x.dtype, x.requires_grad, primitive, params, flops,
                          id(x) in backward))
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
    return "..." if item is Ellipsis else repr(item)


def _constant_text(item: Any) -> str:
    """A Python number as written (it is weakly typed); a 0-d array as ``1.0:f64[]``; any other
    array by its type, ``f64[12288,209]``."""
    if type(item) in (bool, int, float):
        text = repr(item)
        return text if len(text) <= 10 or not isinstance(item, float) else f"{item:.6g}"
    array = np.asarray(item)
    return f"{_constant_text(array.item())}:{_type_text((), array.dtype)}" if array.ndim == 0 \
        else _type_text(array.shape, array.dtype)


def _names(leaves: list[Tensor], op_count: int) -> list[str]:
    """Listing names: each input's own name (else a generated one), then one per op."""
    taken = {leaf.name for leaf in leaves} | {"in", "let", "lambda"}
    generated = (name for length in itertools.count(1) for letters in itertools.product(
        string.ascii_lowercase, repeat=length) if (name := "".join(letters)) not in taken)
    names: list[str] = []
    for leaf in leaves:
        fresh = leaf.name is not None and leaf.name not in names
        names.append(leaf.name if fresh else next(generated))  # type: ignore[arg-type]
    return names + [next(generated) for _ in range(op_count)]


