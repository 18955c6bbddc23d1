"""Graph inspection: the recorded graph as a typed listing, a summary and a Graphviz picture.

``make_graph(f)(*args)`` runs ``f`` on named input leaves and reads back what the engine
recorded, as JAX's ``make_jaxpr`` does; ``make_graph(grad(f))`` shows the backward pass too,
since a transform run inside records its VJPs. ``tensor.graph()`` reads the graph behind a
tensor already computed. This module only reads graphs: the ops never call it.

FLOPs and memory are estimates from shapes:

- forward: an elementwise op costs one FLOP per output element, a reduction one per input
  element, ``x[..., m, k] @ y[..., k, n]`` costs ``2·m·n·k``; shape and copy ops cost nothing.
- backward (``vjp_flops``): each VJP the engine would run, counted the same way from the
  rules in ``ops.py`` (``div``: ``ḡ / y`` is 1 per element, ``-ḡ · out / y`` is 3), plus the
  sum that takes a broadcast cotangent back to its input's shape and the adds that
  accumulate a cotangent arriving from several consumers. Only inputs that require grad
  get a VJP, as in the engine.
- memory (``saved_bytes``): the intermediate results each VJP reads (``mul`` the other
  operand, ``exp`` its output, ``matmul`` the partner of each operand that needs a
  gradient, ``add`` nothing but shapes). Inputs and constants are not counted: they are
  alive anyway. This engine keeps every recorded node alive until backward, so its real
  peak can be higher than what the rules need.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import os
import re
import shutil
import string
import subprocess
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_nn import functional
from tinygrad_nn.autodiff import GraphReleasedError
from tinygrad_nn.pytree import argument_names, tree_flatten, tree_paths, tree_unflatten
from tinygrad_nn.tensor import Tensor

INPUT = "input"
CONSTANT = "const"

LayerOf = Callable[[str], "str | None"]

# One FLOP per output element.
_ELEMENTWISE = frozenset(
    {
        "add", "sub", "mul", "div", "pow", "neg", "exp", "log", "sqrt", "abs", "relu",
        "sigmoid", "tanh", "softplus", "maximum", "minimum", "where", "clip",
    }
)
# One FLOP per input element (mean: and one division per output element).
_REDUCTIONS = frozenset({"sum", "max", "mean"})
# FLOPs per output element of the VJP of each input, as the rules in ops.py compute it.
_VJP_PER_ELEMENT: dict[str, tuple[int, ...]] = {
    "add": (0, 0), "sub": (0, 1), "mul": (1, 1), "div": (1, 3), "pow": (3, 3), "neg": (1,),
    "exp": (1,), "log": (1,), "sqrt": (2,), "abs": (1,), "relu": (1,), "sigmoid": (3,),
    "tanh": (3,), "softplus": (2,), "maximum": (1, 1), "minimum": (1, 1), "where": (1, 1),
    "clip": (1,), "mean": (1,), "getitem": (1,),
}
# Ops whose VJP returns a cotangent of the output's shape: a broadcast input costs a sum.
_BROADCASTING = _ELEMENTWISE | {"broadcast_to"}
# What the VJP of each input reads besides the cotangent: "out" or an input's position.
_VJP_READS: dict[str, tuple[tuple[int | str, ...], ...]] = {
    "mul": ((1,), (0,)), "div": ((1,), ("out", 1)), "pow": ((0, 1), ("out", 0)),
    "matmul": ((1,), (0,)), "exp": (("out",),), "log": ((0,),), "sqrt": (("out",),),
    "abs": ((0,),), "relu": ((0,),), "sigmoid": (("out",),), "tanh": (("out",),),
    "softplus": ((0,),), "maximum": ((0, 1), (0, 1)), "minimum": ((0, 1), (0, 1)),
    "clip": ((0,),), "max": ((0, "out"),),
}
_RESERVED = frozenset({"in", "let", "lambda"})  # words of the listing itself


class GraphvizNotFoundError(RuntimeError):
    """``render`` needs Graphviz's ``dot`` program, and it is not on PATH."""


@dataclass(frozen=True)
class Node:
    """One value of the graph: a named input, a constant, or the result of an op.

    ``op`` is ``"input"``, ``"const"`` or the op's name; ``inputs`` are the ids of its
    arguments. ``flops`` is its forward cost; ``vjp_flops`` the estimated cost of its VJPs
    and of accumulating its own cotangent; ``saved`` the ids of the intermediate results its
    VJPs read (``saved_bytes`` in all). ``backward`` marks a node recorded during a backward
    pass (``make_graph(grad(f))``).
    """

    id: int
    op: str
    name: str
    inputs: tuple[int, ...]
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    requires_grad: bool
    params: str = ""
    flops: int = 0
    vjp_flops: int = 0
    saved: tuple[int, ...] = ()
    saved_bytes: int = 0
    backward: bool = False

    @property
    def is_op(self) -> bool:
        return self.op not in (INPUT, CONSTANT)

    @property
    def type(self) -> str:
        """``f64[20,209]``."""
        return _type_text(self.shape, self.dtype)

    @property
    def label(self) -> str:
        """The op with its parameters: ``sum[axis=1,keepdims]``."""
        return f"{self.op}[{self.params}]" if self.params else self.op

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


@dataclass(frozen=True)
class GraphSummary:
    """Op counts, FLOPs and the memory kept for the backward pass (estimates; see module).

    ``backward_flops`` is what the recorded backward nodes cost when the graph has them
    (``make_graph(grad(f))``), else the estimate ``estimated_backward_flops`` from the VJPs
    of the forward ops. ``differentiated`` names the inputs that require grad.
    """

    op_counts: dict[str, int]
    backward_op_counts: dict[str, int]
    forward_flops: int
    backward_flops: int
    estimated_backward_flops: int
    saved_bytes: int
    differentiated: tuple[str, ...]

    def __str__(self) -> str:
        recorded = bool(self.backward_op_counts)
        ops = list(self.op_counts) + [o for o in self.backward_op_counts if o not in self.op_counts]
        width = max([len(op) for op in ops] + [5])
        lines = [f"{'op':<{width}}  forward" + ("  backward" if recorded else "")]
        rows = [(op, self.op_counts.get(op, 0), self.backward_op_counts.get(op, 0)) for op in ops]
        rows.append(
            ("total", sum(self.op_counts.values()), sum(self.backward_op_counts.values()))
        )
        for op, forward_count, backward_count in rows:
            lines.append(
                f"{op:<{width}}  {forward_count:>7}"
                + (f"  {backward_count:>8}" if recorded else "")
            )
        estimate = _si(self.estimated_backward_flops, "FLOP")
        if recorded:
            backward = f"{_si(self.backward_flops, 'FLOP')} recorded ({estimate} estimated)"
        else:
            backward = f"{estimate} estimated from the VJPs"
        lines.append(f"FLOPs: forward {_si(self.forward_flops, 'FLOP')}, backward {backward}")
        lines.append(f"kept for backward: {_si(self.saved_bytes, 'B')} (estimate)")
        lines.append(f"inputs needing a gradient: {' '.join(self.differentiated) or '(none)'}")
        return "\n".join(lines)


class Graph:
    """A recorded computation: ``nodes`` in topological order (inputs, constants, then ops,
    the forward pass before any backward pass); ``inputs`` and ``outputs`` are node ids.

    ``print(graph)`` gives a jaxpr-like listing, ``summary()`` the costs, ``to_dot()`` and
    ``render()`` a Graphviz picture. ``value`` is what the function returned, with numpy
    arrays for Tensors; ``output_names`` are the outputs' pytree paths.
    """

    def __init__(
        self,
        nodes: list[Node],
        inputs: list[int],
        outputs: list[int],
        output_names: list[str],
        value: Any,
    ):
        self.nodes = nodes
        self.inputs = inputs
        self.outputs = outputs
        self.output_names = output_names
        self.value = value

    @property
    def ops(self) -> list[Node]:
        return [node for node in self.nodes if node.is_op]

    def __repr__(self) -> str:
        backward = sum(node.backward for node in self.nodes)
        grad = f", {backward} of them backward" if backward else ""
        return (
            f"Graph({len(self.ops)} ops{grad}, {len(self.inputs)} inputs, "
            f"{len(self.outputs)} outputs)"
        )

    def __str__(self) -> str:
        nodes = self.nodes
        header = " ".join(f"{nodes[i].name}:{nodes[i].type}" for i in self.inputs)
        lines = _wrap(f"{{ lambda {header}. let", indent=" " * 9)
        in_backward = False
        for node in self.ops:
            if node.backward and not in_backward:
                lines.append("    # backward pass")
                in_backward = True
            arguments = " ".join(nodes[i].name for i in node.inputs)
            lines.append(f"    {node.name}:{node.type} = {node.label} {arguments}")
        outputs = ", ".join(nodes[i].name for i in self.outputs)
        lines.append(f"  in ({outputs}) }}")
        return "\n".join(lines)

    def summary(self) -> GraphSummary:
        forward = [node for node in self.ops if not node.backward]
        backward = [node for node in self.ops if node.backward]
        saved = {i for node in forward for i in node.saved}
        estimate = sum(node.vjp_flops for node in self.nodes if not node.backward)
        return GraphSummary(
            op_counts=dict(Counter(node.op for node in forward)),
            backward_op_counts=dict(Counter(node.op for node in backward)),
            forward_flops=sum(node.flops for node in forward),
            backward_flops=sum(node.flops for node in backward) if backward else estimate,
            estimated_backward_flops=estimate,
            saved_bytes=sum(self.nodes[i].nbytes for i in saved),
            differentiated=tuple(
                self.nodes[i].name for i in self.inputs if self.nodes[i].requires_grad
            ),
        )

    def to_dot(self, collapse: bool | LayerOf = False) -> str:
        """Graphviz DOT text: ops as boxes (backward ones red), inputs as ellipses
        (those that need a gradient, the parameters, in gold), each tensor's name and
        type on its edges.

        ``collapse=True`` draws each layer as one box, the layer read from parameter
        names by ``layer_of`` (``W1``, ``b1`` are layer 1; pass your own function of a
        name to group differently). A forward op joins the layer of a parameter it takes
        (the latest, by first appearance among the inputs), and a one-input op joins the
        layer of the op it follows when it is that op's only consumer (``relu`` after
        ``add b1``). A backward op joins the latest layer whose gradient it feeds, so the
        loss's own VJPs land in the last layer's backward box.
        """
        layer_key = layer_of if collapse is True else (collapse or None)
        groups = self._groups(layer_key) if layer_key is not None else {}
        return _Dot(self, groups).text()

    def render(self, path: str | os.PathLike[str], collapse: bool | LayerOf = False) -> Path:
        """Draw the graph to ``path`` (``.svg``, ``.png``, ``.pdf``… by its suffix; ``.dot``
        writes the text) with Graphviz's ``dot``. Without Graphviz, writes the ``.dot`` file
        beside ``path`` and raises ``GraphvizNotFoundError`` saying how to install it."""
        path = Path(path)
        text = self.to_dot(collapse)
        file_format = path.suffix.lstrip(".").lower()
        if file_format in ("", "dot", "gv"):
            path.write_text(text)
            return path
        dot = shutil.which("dot")
        if dot is None:
            dot_path = path.with_suffix(".dot")
            dot_path.write_text(text)
            raise GraphvizNotFoundError(
                f"render: Graphviz's `dot` program is not on PATH, so {path} was not drawn; "
                f"the graph is in {dot_path}. Install Graphviz (Debian/Ubuntu: "
                "`apt-get install graphviz`; macOS: `brew install graphviz`; conda: "
                "`conda install graphviz`; others: https://graphviz.org/download/), then "
                f"render again or run `dot -T{file_format} {dot_path} -o {path}`"
            )
        completed = subprocess.run(
            [dot, f"-T{file_format}", "-o", str(path)],
            input=text,
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"render: `dot -T{file_format}` failed for {path}: {completed.stderr.strip()}"
            )
        return path

    def _groups(self, key: LayerOf) -> dict[int, tuple[bool, str]]:
        """``(backward, layer)`` of each op that belongs to a layer (see ``to_dot``)."""
        nodes = self.nodes
        rank: dict[str, int] = {}
        for name in [nodes[i].name for i in self.inputs] + self.output_names:
            layer = key(name)
            if layer is not None:
                rank.setdefault(layer, len(rank))

        def latest(layers: set[str]) -> str:
            return max(layers, key=rank.__getitem__)

        anchors = {i: key(nodes[i].name) for i in self.inputs}
        consumers = Counter(i for node in self.ops if not node.backward for i in node.inputs)
        groups: dict[int, tuple[bool, str]] = {}
        for node in self.ops:
            if node.backward:
                continue
            layers = {anchor for i in node.inputs if (anchor := anchors.get(i)) is not None}
            if layers:
                groups[node.id] = (False, latest(layers))
                if node.op == "identity":  # a transform's own copy of a parameter
                    anchors[node.id] = groups[node.id][1]
                continue
            tensors = [i for i in node.inputs if nodes[i].op != CONSTANT]
            if len(tensors) == 1 and tensors[0] in groups and consumers[tensors[0]] == 1:
                groups[node.id] = groups[tensors[0]]
        feeds: dict[int, set[str]] = defaultdict(set)
        for i, name in zip(self.outputs, self.output_names):
            layer = key(name)
            if layer is not None:
                feeds[i].add(layer)
        for node in reversed(self.ops):
            if node.backward and feeds[node.id]:
                groups[node.id] = (True, latest(feeds[node.id]))
                for i in node.inputs:
                    if nodes[i].backward:
                        feeds[i] |= feeds[node.id]
        return groups


def layer_of(name: str) -> str | None:
    """The layer a parameter belongs to, read from its name: ``W1`` and ``b1`` are ``1``,
    ``layers[0].W`` is ``layers[0]``; positional inputs (``x0``, ``x1``) and names without a
    number have none."""
    if re.fullmatch(r"x\d+", name):
        return None
    head, _, last = name.rpartition(".")
    numbered = re.fullmatch(r"[A-Za-z_]+(\d+)", last)
    if numbered:
        return numbered.group(1)
    return head or None


# --- making a graph ---------------------------------------------------------------------------
def make_graph(
    f: Callable[..., Any], argnums: int | Sequence[int] | None = None
) -> Callable[..., Graph]:
    """``make_graph(f)(*args)``: run ``f`` on ``args`` (pytrees) and return its ``Graph``.

    Each input leaf becomes a leaf Tensor named by its pytree path (``params['W1']`` is
    ``W1``, a positional array ``x0``). Float leaves of the arguments in ``argnums`` (all by
    default) require grad, so every op on them is recorded; other leaves are named inputs
    that need no gradient (ops on them alone are constants); Python numbers that need no
    gradient and non-numeric leaves are passed as they are. ``grad``/``value_and_grad``
    called by ``f`` record their backward pass, so ``make_graph(grad(f))`` holds the forward
    and the backward nodes.
    """

    @functools.wraps(f)
    def make_graph_f(*args: Any, **kwargs: Any) -> Graph:
        differentiated = _positions(argnums, len(args))
        names = iter(argument_names(args))
        inputs: list[Tensor] = []
        traced_args = []
        for position, arg in enumerate(args):
            leaves, treedef = tree_flatten(arg)
            traced = []
            for leaf in leaves:
                tensor = _input_leaf(leaf, next(names), position in differentiated)
                if tensor is not None:
                    inputs.append(tensor)
                traced.append(leaf if tensor is None else tensor)
            traced_args.append(tree_unflatten(treedef, traced))
        with _collecting_outputs() as forward_outputs, functional.tracing():
            result = f(*traced_args, **kwargs)
        leaves, treedef = tree_flatten(result)
        paths = tree_paths(result)
        outputs = [_output_tensor(leaf, path) for leaf, path in zip(leaves, paths)]
        value = tree_unflatten(treedef, [tensor.data for tensor in outputs])
        return _build(outputs, paths, value, inputs, forward_outputs)

    return make_graph_f


def graph_of(tensor: Tensor) -> Graph:
    """The graph recorded behind ``tensor`` (``tensor.graph()``). Its inputs are the leaves
    that require grad or have a ``name``; other leaves are constants."""
    return _build([tensor], [""], tensor.data, [], [])


def _positions(argnums: int | Sequence[int] | None, count: int) -> set[int]:
    if argnums is None:
        return set(range(count))
    requested = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for position in requested:
        if not -count <= position < count:
            raise ValueError(
                f"make_graph: argnums {argnums} asks for argument {position}, "
                f"but the function got {count} positional arguments"
            )
    return {position % count for position in requested}


def _input_leaf(leaf: Any, name: str, differentiate: bool) -> Tensor | None:
    """A named leaf Tensor for an input leaf; None to pass the leaf on as it is."""
    array = leaf.data if isinstance(leaf, Tensor) else np.asarray(leaf)
    if array.dtype.kind not in "biuf":
        return None
    if differentiate and array.dtype.kind == "f":
        return Tensor(array, requires_grad=True, name=name)
    if type(leaf) in (bool, int, float):
        return None  # a Python number is weakly typed: a Tensor would change promotion
    return Tensor(array, name=name)


def _output_tensor(leaf: Any, path: str) -> Tensor:
    if isinstance(leaf, Tensor):
        return leaf
    array = np.asarray(leaf)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"make_graph: the function returned a {type(leaf).__name__} at "
            f"'{path or 'the top'}'; expected Tensors, numpy arrays or numbers"
        )
    return Tensor(array)


@contextmanager
def _collecting_outputs() -> Iterator[list[Tensor]]:
    """Collect the output of each function a transform traces inside the block: the nodes
    that lead to one are the forward pass, the others were recorded by a backward pass."""
    previous = functional._Trace.outputs
    collected: list[Tensor] = []
    functional._Trace.outputs = collected
    try:
        yield collected
    finally:
        functional._Trace.outputs = previous


def _walk(roots: Sequence[Any]) -> list[Any]:
    """Every tensor and constant that leads to ``roots``, each after its arguments."""
    order: list[Any] = []
    seen: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False) for root in reversed(roots)]
    while stack:
        item, arguments_done = stack.pop()
        if arguments_done:
            order.append(item)
            continue
        if id(item) in seen:
            continue
        seen.add(id(item))
        stack.append((item, True))
        for argument in reversed(_arguments(item)):
            if id(argument) not in seen:
                stack.append((argument, False))
    return order


def _arguments(item: Any) -> tuple[Any, ...]:
    if not isinstance(item, Tensor) or item.op is None:
        return ()
    if item.args is None:
        raise GraphReleasedError(
            f"graph: the graph through op '{item.op}' was released by backward(); inspect "
            "it before backward(), or pass retain_graph=True to backward()"
        )
    return item.args


def _build(
    outputs: list[Tensor],
    output_names: list[str],
    value: Any,
    inputs: list[Tensor],
    forward_outputs: list[Tensor],
) -> Graph:
    order = _walk(forward_outputs + outputs)
    forward = {id(item) for item in _walk(forward_outputs)} if forward_outputs else None
    explicit = {id(tensor) for tensor in inputs}

    def is_input(item: Any) -> bool:
        return isinstance(item, Tensor) and item.op is None and (
            id(item) in explicit or item.requires_grad or item.name is not None
        )

    leaves = list(inputs) + [item for item in order if is_input(item) and id(item) not in explicit]
    constants = [item for item in order if not is_input(item) and not _is_op(item)]
    ops = [item for item in order if _is_op(item)]
    forward_ops = _sink([item for item in ops if forward is None or id(item) in forward])
    backward_ops = _sink([item for item in ops if forward is not None and id(item) not in forward])
    index = {id(item): i for i, item in enumerate(leaves + constants + forward_ops + backward_ops)}
    backward_ids = {id(item) for item in backward_ops}
    input_arrays = {id(leaf.data) for leaf in leaves}

    names = _names(leaves, len(ops))
    # How many VJPs send a cotangent to each value: the engine adds all but the first.
    senders = Counter(
        (id(argument), id(item) in backward_ids)
        for item in ops
        for argument in item.args
        if isinstance(argument, Tensor) and argument.requires_grad
    )

    def accumulation(item: Any) -> int:
        arrivals = senders[(id(item), id(item) in backward_ids)]
        return max(arrivals - 1, 0) * _array(item).size

    nodes: list[Node] = []
    for name, leaf in zip(names, leaves):
        nodes.append(_leaf_node(len(nodes), INPUT, name, leaf, accumulation(leaf)))
    for constant in constants:
        nodes.append(_leaf_node(len(nodes), CONSTANT, _constant_text(constant), constant, 0))
    for name, tensor in zip(names[len(leaves):], forward_ops + backward_ops):
        node = _op_node(len(nodes), name, tensor, index, input_arrays, accumulation(tensor))
        nodes.append(dataclasses.replace(node, backward=id(tensor) in backward_ids))
    return Graph(
        nodes,
        [index[id(leaf)] for leaf in leaves],
        [index[id(tensor)] for tensor in outputs],
        list(output_names),
        value,
    )


def _sink(ops: list[Tensor]) -> list[Tensor]:
    """``ops`` (in order) with each op that takes none of the others' results moved to just
    before its first consumer: ``identity W4`` next to the matmul that uses it, not on top."""
    listed = {id(op) for op in ops}
    consumed = {id(argument) for op in ops for argument in _arguments(op)}
    movable = {
        id(op)
        for op in ops
        if id(op) in consumed and not any(id(a) in listed for a in _arguments(op))
    }
    order: list[Tensor] = []
    for op in ops:
        if id(op) in movable:
            continue
        for argument in _arguments(op):
            if id(argument) in movable:
                movable.discard(id(argument))
                order.append(argument)
        order.append(op)
    return order


def _is_op(item: Any) -> bool:
    return isinstance(item, Tensor) and item.op is not None


def _array(item: Any) -> np.ndarray:
    return item.data if isinstance(item, Tensor) else np.asarray(item)


def _leaf_node(node_id: int, kind: str, name: str, item: Any, accumulation: int) -> Node:
    array = _array(item)
    return Node(
        id=node_id,
        op=kind,
        name=name,
        inputs=(),
        shape=array.shape,
        dtype=array.dtype,
        requires_grad=isinstance(item, Tensor) and item.requires_grad,
        vjp_flops=accumulation,
    )


def _op_node(
    node_id: int,
    name: str,
    tensor: Tensor,
    index: dict[int, int],
    input_arrays: set[int],
    accumulation: int,
) -> Node:
    """The node of an op's result: its inputs (``index`` maps a value's ``id`` to its
    node id), parameters, FLOPs and what its VJPs read (``input_arrays``: the ids of the
    inputs' arrays, which do not count)."""
    assert tensor.op is not None and tensor.args is not None
    op, args = tensor.op, tensor.args
    shapes = [np.shape(_array(arg)) for arg in args]
    needs = [isinstance(arg, Tensor) and arg.requires_grad for arg in args]
    read: dict[int, Tensor] = {}
    for position, need in enumerate(needs):
        for source in _reads(op, position) if need else ():
            value = tensor if source == "out" else args[int(source)]
            # Inputs, constants and copy-free views of inputs (identity) are alive anyway.
            if _is_op(value) and id(value.data) not in input_arrays:
                read[id(value)] = value
    return Node(
        id=node_id,
        op=op,
        name=name,
        inputs=tuple(index[id(arg)] for arg in args),
        shape=tensor.shape,
        dtype=tensor.dtype,
        requires_grad=tensor.requires_grad,
        params=_params(tensor, shapes[0] if shapes else ()),
        flops=_flops(op, tensor.shape, shapes),
        vjp_flops=accumulation + _vjp_flops(op, tensor.shape, shapes, needs),
        saved=tuple(sorted(index[key] for key in read)),
        saved_bytes=sum(value.data.nbytes for value in read.values()),
    )


def _reads(op: str, position: int) -> tuple[int | str, ...]:
    per_input = _VJP_READS.get(op, ())
    return per_input[min(position, len(per_input) - 1)] if per_input else ()


def _flops(op: str, shape: tuple[int, ...], shapes: list[tuple[int, ...]]) -> int:
    size = math.prod(shape)
    if op in _ELEMENTWISE:
        return size
    if op in _REDUCTIONS:
        return math.prod(shapes[0]) + (size if op == "mean" else 0)
    if op == "matmul":
        return 2 * size * shapes[0][-1]
    if op == "scatter_add":
        return math.prod(shapes[0])
    return 0  # shape and copy ops move numbers, they compute none


def _vjp_flops(
    op: str, shape: tuple[int, ...], shapes: list[tuple[int, ...]], needs: list[bool]
) -> int:
    size = math.prod(shape)
    total = 0
    for position, (input_shape, need) in enumerate(zip(shapes, needs)):
        if not need:
            continue
        if op == "matmul":
            total += 2 * size * shapes[0][-1]  # x̄ = ḡ yᵀ and ȳ = xᵀ ḡ cost what x y does
        elif op == "max":
            total += math.prod(input_shape)
        else:
            per_element = _VJP_PER_ELEMENT.get(op, (0,))
            total += per_element[min(position, len(per_element) - 1)] * size
        if op in _BROADCASTING and tuple(input_shape) != shape:
            total += size  # the sum back to the broadcast input's shape
    return total


# --- op parameters, read from what the VJP rules close over --------------------------------
_MISSING = object()


def _captured(tensor: Tensor, name: str) -> Any:
    """A value the VJP rules of ``tensor`` close over (an op's parameter), or ``_MISSING``."""
    for rule in tensor.vjps or ():
        code = getattr(rule, "__code__", None)
        cells = getattr(rule, "__closure__", None)
        if code is not None and cells and name in code.co_freevars:
            try:
                return cells[code.co_freevars.index(name)].cell_contents
            except ValueError:  # an empty cell
                return _MISSING
    return _MISSING


def _params(tensor: Tensor, input_shape: tuple[int, ...]) -> str:
    op = tensor.op
    if op in _REDUCTIONS:
        keepdims = tensor.ndim == len(input_shape) > 0
        axis = _captured(tensor, "axis")
        if axis is _MISSING:
            axis = _reduced_axes(input_shape, tensor.shape, keepdims)
        parts = [] if axis is None else [f"axis={_tuple_text(axis)}"]
        return ",".join(parts + (["keepdims"] if keepdims else []))
    if op == "transpose":
        inverse = _captured(tensor, "inverse")
        return "" if inverse is _MISSING else f"axes={_tuple_text(tuple(np.argsort(inverse)))}"
    if op == "swapaxes":
        first, second = _captured(tensor, "axis1"), _captured(tensor, "axis2")
        return "" if _MISSING in (first, second) else f"{first},{second}"
    if op in ("getitem", "scatter_add"):
        index = _captured(tensor, "index")
        return "" if index is _MISSING else _index_text(index)
    if op in ("concatenate", "stack"):
        index = _captured(tensor, "index")
        return "" if index is _MISSING else f"axis={len(index) - 1}"
    if op == "where":
        mask = _captured(tensor, "mask")
        return "" if mask is _MISSING else _type_text(np.shape(mask), np.asarray(mask).dtype)
    if op == "clip":
        bounds = [(name, _captured(tensor, name)) for name in ("low", "high")]
        return ",".join(f"{name}={b}" for name, b in bounds if b is not _MISSING and b is not None)
    return ""


def _reduced_axes(
    input_shape: tuple[int, ...], shape: tuple[int, ...], keepdims: bool
) -> Any:
    """The axes a reduction took, from shapes; None for all axes or when it is ambiguous."""
    if keepdims:
        axes = tuple(i for i, (n, m) in enumerate(zip(input_shape, shape)) if n != m)
    else:
        dropped = len(input_shape) - len(shape)
        fits = [
            axes
            for axes in itertools.combinations(range(len(input_shape)), dropped)
            if tuple(n for i, n in enumerate(input_shape) if i not in axes) == shape
        ]
        axes = fits[0] if len(fits) == 1 else ()
    if not axes or len(axes) == len(input_shape):
        return None
    return axes[0] if len(axes) == 1 else axes


# --- text ---------------------------------------------------------------------------------------
def _dtype_text(dtype: np.dtype[Any]) -> str:
    if dtype.kind == "b":
        return "bool"
    if dtype.kind in "fiuc":
        return f"{dtype.kind}{dtype.itemsize * 8}"
    return str(dtype)


def _type_text(shape: tuple[int, ...], dtype: np.dtype[Any]) -> str:
    return f"{_dtype_text(dtype)}[{','.join(str(n) for n in shape)}]"


def _tuple_text(axes: Any) -> str:
    if isinstance(axes, (tuple, list)) and len(axes) == 1:
        return str(int(axes[0]))
    if isinstance(axes, (tuple, list)):
        return "(" + ",".join(str(int(a)) for a in axes) + ")"
    return str(axes)


def _index_text(index: Any) -> str:
    parts = index if isinstance(index, tuple) else (index,)
    return ",".join(_index_part_text(part) for part in parts)


def _index_part_text(part: Any) -> str:
    if part is None:
        return "None"
    if part is Ellipsis:
        return "..."
    if isinstance(part, slice):
        text = ":".join("" if p is None else str(p) for p in (part.start, part.stop))
        return text if part.step is None else f"{text}:{part.step}"
    array = np.asarray(part)
    return str(array.item()) if array.ndim == 0 else _type_text(array.shape, array.dtype)


def _constant_text(item: Any) -> str:
    """A Python number as written (it is weakly typed); a 0-d array as ``1.0:f64[]``; any
    other array by its type, ``f64[12288,209]``."""
    if type(item) in (bool, int, float):
        return _number_text(item)
    array = item.data if isinstance(item, Tensor) else np.asarray(item)
    if array.ndim == 0:
        return f"{_number_text(array.item())}:{_type_text((), array.dtype)}"
    return _type_text(array.shape, array.dtype)


def _number_text(number: Any) -> str:
    text = repr(number)
    return text if len(text) <= 10 or not isinstance(number, float) else f"{number:.6g}"


def _names(leaves: list[Tensor], op_count: int) -> list[str]:
    """Listing names: each input's own name (else a generated one), then one per op."""
    taken = {leaf.name for leaf in leaves if leaf.name is not None} | _RESERVED
    generated = (
        name
        for length in itertools.count(1)
        for letters in itertools.product(string.ascii_lowercase, repeat=length)
        if (name := "".join(letters)) not in taken
    )
    names: list[str] = []
    used: set[str] = set()
    for leaf in leaves:
        name = leaf.name if leaf.name is not None and leaf.name not in used else next(generated)
        used.add(name)
        names.append(name)
    return names + [next(generated) for _ in range(op_count)]


def _wrap(text: str, indent: str, width: int = 100) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = indent + word
        else:
            line = f"{line} {word}" if line else word
    return lines + [line]


def _si(number: float, unit: str) -> str:
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(number) >= scale:
            return f"{number / scale:.2f} {prefix}{unit}"
    return f"{number:g} {unit}"


# --- DOT ----------------------------------------------------------------------------------------
_FORWARD_FILL = "#dae8fc"
_BACKWARD_FILL = "#f8cecc"
_PARAMETER_FILL = "#ffd966"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class _Dot:
    """The DOT text of a graph, each op in ``groups`` drawn inside its layer's one box."""

    def __init__(self, graph: Graph, groups: dict[int, tuple[bool, str]]):
        self.graph = graph
        self.groups = groups
        # Forward layers first, in order, then their backward boxes in the order they run.
        order = list(dict.fromkeys(groups[node.id] for node in graph.ops if node.id in groups))
        rank = {layer: k for k, (backward, layer) in enumerate(order) if not backward}
        order.sort(key=lambda group: (group[0], rank.get(group[1], 0) * (-1 if group[0] else 1)))
        self.group_ids = {group: f"layer{k}" for k, group in enumerate(order)}
        self.lines = [
            "digraph tinygrad_nn {",
            '  graph [rankdir=TB, fontname="Helvetica", nodesep=0.3, ranksep=0.35];',
            '  node [fontname="Helvetica", fontsize=11];',
            '  edge [fontname="Helvetica", fontsize=9, color="#666666", fontcolor="#444444"];',
        ]

    def drawn(self, node_id: int) -> str:
        group = self.groups.get(node_id)
        return self.group_ids[group] if group is not None else f"n{node_id}"

    def text(self) -> str:
        graph, nodes = self.graph, self.graph.nodes
        for i in graph.inputs:
            node = nodes[i]
            style = f', style=filled, fillcolor="{_PARAMETER_FILL}"' if node.requires_grad else ""
            label = _quote(f"{node.name}\n{node.type}")
            self.lines.append(f"  n{i} [label={label}, shape=ellipse{style}];")
        for group, dot_id in self.group_ids.items():
            self.add_group(group, dot_id)
        for node in graph.ops:
            if node.id not in self.groups:
                fill = _BACKWARD_FILL if node.backward else _FORWARD_FILL
                self.lines.append(
                    f'  n{node.id} [label={_quote(node.label)}, shape=box, '
                    f'style="rounded,filled", fillcolor="{fill}"];'
                )
        self.add_edges()
        self.lines.append("}")
        return "\n".join(self.lines) + "\n"

    def add_group(self, group: tuple[bool, str], dot_id: str) -> None:
        backward, layer = group
        members = [node for node in self.graph.ops if self.groups.get(node.id) == group]
        counts = Counter(node.op for node in members)
        ops = ", ".join(op if n == 1 else f"{op} x{n}" for op, n in counts.items())
        flops = _si(sum(node.flops for node in members), "FLOP")
        title = f"layer {layer}" + (" backward" if backward else "")
        fill = _BACKWARD_FILL if backward else _FORWARD_FILL
        label = _quote("\n".join([title, ops, flops]))
        self.lines.append(
            f"  {dot_id} [label={label}, shape=box, "
            f'style="filled,bold", peripheries=2, fillcolor="{fill}"];'
        )

    def add_edges(self) -> None:
        nodes = self.graph.nodes
        drawn_edges: set[tuple[str, str, int]] = set()
        for node in self.graph.ops:
            for position, i in enumerate(node.inputs):
                source = nodes[i]
                if source.op == CONSTANT:
                    if node.id not in self.groups:
                        constant = f"k{node.id}_{position}"
                        self.lines.append(
                            f"  {constant} [label={_quote(source.name)}, shape=plaintext, "
                            'fontsize=9, fontcolor="#777777"];'
                        )
                        self.lines.append(f'  {constant} -> n{node.id} [color="#aaaaaa"];')
                    continue
                edge = (self.drawn(i), self.drawn(node.id), i)
                if edge[0] == edge[1] or edge in drawn_edges:
                    continue
                drawn_edges.add(edge)
                self.lines.append(f"  {edge[0]} -> {edge[1]}{self.edge_label(source)};")
        for k, (i, name) in enumerate(zip(self.graph.outputs, self.graph.output_names)):
            source = nodes[i]
            label = f"output {name}" if name else "output"
            self.lines.append(f"  out{k} [label={_quote(label)}, shape=plaintext];")
            if source.op == CONSTANT:
                self.lines.append(f"  n{i} [label={_quote(source.name)}, shape=plaintext];")
            self.lines.append(f"  {self.drawn(i)} -> out{k}{self.edge_label(source)};")

    @staticmethod
    def edge_label(source: Node) -> str:
        if source.op == INPUT:
            return ""  # the input's own node shows its name and type
        return f" [label={_quote(f'{source.name}:{source.type}')}]"
