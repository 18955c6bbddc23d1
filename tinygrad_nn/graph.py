"""The recorded program: trace a function into equations, print it, measure it, draw it.

``trace(f, args)`` runs ``f`` once on named input leaves and reads back what the engine
recorded, as JAX's ``make_jaxpr`` does: every op that depends on an input, with its primitive,
inputs and params; a transform run inside (``grad``) adds its recorded backward pass. ``jit``
and ``export_onnx`` read the same ``Graph``. Every cost comes from the primitives: a node's
FLOPs from its primitive's count, the backward FLOPs from the backward nodes actually
recorded, the bytes kept for backward from the results the recorded nodes hold.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import string
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_nn import functional
from tinygrad_nn.autodiff import GraphReleasedError
from tinygrad_nn.pytree import TreeDef, argument_names, tree_flatten, tree_paths, tree_unflatten
from tinygrad_nn.tensor import OPS, Primitive, Program, Tensor, numeric, switch, value

INPUT, CONSTANT = "input", "const"
LayerOf = Callable[[str], "str | None"]
_FILL = {"forward": "#dae8fc", "backward": "#f8cecc", "parameter": "#ffd966"}


class GraphvizNotFoundError(RuntimeError):
    """``render`` needs Graphviz's ``dot`` program, and it is not on PATH."""


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


@dataclass(frozen=True)
class GraphSummary:
    """Op counts, FLOPs (from the primitives) and the bytes the recorded nodes keep for the
    backward pass. ``backward_flops`` is None until a backward pass is recorded
    (``make_graph(grad(f))``); ``uncounted`` lists ops whose primitive has no FLOP count."""

    op_counts: dict[str, int]
    backward_op_counts: dict[str, int]
    forward_flops: int
    backward_flops: int | None
    saved_bytes: int
    differentiated: tuple[str, ...]
    uncounted: tuple[str, ...] = ()

    def __str__(self) -> str:
        ops = list(dict.fromkeys([*self.op_counts, *self.backward_op_counts]))
        width = max([len(op) for op in ops] + [5])
        counts = [(op, self.op_counts.get(op, 0), self.backward_op_counts.get(op, 0)) for op in ops]
        counts.append(("total", sum(c[1] for c in counts), sum(c[2] for c in counts)))
        backward = _si(self.backward_flops, "FLOP") if self.backward_flops is not None else (
            "not recorded (trace grad(f) to count it)")
        return "\n".join([f"{'op':<{width}}  forward  backward"] + [
            f"{op:<{width}}  {forward:>7}  {back:>8}" for op, forward, back in counts] + [
            f"FLOPs: forward {_si(self.forward_flops, 'FLOP')}, backward {backward}"] + [
            f"no FLOP count (not in the totals): {' '.join(self.uncounted)}"] * bool(self.uncounted)
            + [f"kept for backward: {_si(self.saved_bytes, 'B')}",
               f"inputs needing a gradient: {' '.join(self.differentiated) or '(none)'}"])


class Graph:
    """A program: ``nodes`` in order (inputs, constants, then equations, a backward pass after
    the forward one); ``inputs``/``outputs`` are node ids, ``value`` what ``f`` returned (numpy
    arrays for Tensors), ``out_tree`` its structure. ``print(graph)`` gives a jaxpr-like
    listing, ``summary()`` the costs, ``render()`` a Graphviz picture (inline in Jupyter)."""

    def __init__(self, nodes: list[Node], inputs: list[int], outputs: list[int],
                 output_names: list[str], value: Any = None, out_tree: TreeDef | None = None):
        self.nodes, self.inputs, self.outputs = nodes, inputs, outputs
        self.output_names, self.value, self.out_tree = output_names, value, out_tree

    ops = property(lambda self: [node for node in self.nodes if node.is_op])

    def __repr__(self) -> str:
        backward = sum(node.backward for node in self.nodes)
        return (f"Graph({len(self.ops)} ops{f', {backward} of them backward' if backward else ''}"
                f", {len(self.inputs)} inputs, {len(self.outputs)} outputs)")

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

    def summary(self) -> GraphSummary:
        forward = [node for node in self.ops if not node.backward]
        backward = [node for node in self.ops if node.backward]
        held = {i for node in forward if node.requires_grad for i in node.inputs}
        return GraphSummary(
            op_counts=dict(Counter(node.op for node in forward)),
            backward_op_counts=dict(Counter(node.op for node in backward)),
            forward_flops=sum(node.flops or 0 for node in forward),
            backward_flops=sum(node.flops or 0 for node in backward) if backward else None,
            saved_bytes=sum(self.nodes[i].nbytes for i in held if self.nodes[i].is_op
                            and self.nodes[i].op != "identity"),  # identity: the input's array
            differentiated=tuple(self.nodes[i].name for i in self.inputs
                                 if self.nodes[i].requires_grad),
            uncounted=tuple(sorted({node.op for node in self.ops if node.flops is None})),
        )

    def digraph(self, collapse: bool | LayerOf = False) -> Any:
        """A ``graphviz.Digraph``: ops as boxes (backward ones red), inputs as ellipses (those
        needing a gradient in gold), each value's name and type on its edges. ``collapse=True``
        draws each layer as one box, the layer read from parameter names by ``layer_of``
        (``W1``, ``b1``: layer 1; or pass a function of a name)."""
        try:
            import graphviz
        except ImportError:
            raise ImportError("drawing needs the graphviz package: pip install "
                              "'tinygrad_nn[graph]'") from None
        key = layer_of if collapse is True else (collapse or None)
        groups = self._groups(key) if key is not None else {}
        boxes = {group: f"layer{k}" for k, group in enumerate(dict.fromkeys(
            groups[node.id] for node in self.ops if node.id in groups))}
        drawn = {i: boxes[groups[i]] if i in groups else f"n{i}" for i in range(len(self.nodes))}
        dot = graphviz.Digraph("tinygrad_nn", graph_attr={"rankdir": "TB", "nodesep": "0.3"},
                               node_attr={"fontname": "Helvetica", "fontsize": "11"},
                               edge_attr={"fontname": "Helvetica", "fontsize": "9"})
        for node in (self.nodes[i] for i in self.inputs):
            gold = {"style": "filled", "fillcolor": _FILL["parameter"]}
            fill = gold if node.requires_grad else {}
            dot.node(f"n{node.id}", f"{node.name}\\n{node.type}", shape="ellipse", **fill)
        for (backward, layer), box in boxes.items():
            members = [node for node in self.ops if groups.get(node.id) == (backward, layer)]
            ops = ", ".join(op if n == 1 else f"{op} x{n}"
                            for op, n in Counter(node.op for node in members).items())
            flops = _si(sum(node.flops or 0 for node in members), "FLOP")
            dot.node(box, f"layer {layer}{' backward' * backward}\\n{ops}\\n{flops}", shape="box",
                     style="filled,bold", peripheries="2", fillcolor=_FILL[_phase(backward)])
        edges: set[tuple[str, str]] = set()
        for node in self.ops:
            if node.id not in groups:
                dot.node(drawn[node.id], node.label, shape="box", style="rounded,filled",
                         fillcolor=_FILL[_phase(node.backward)])
            for i in node.inputs:
                if self.nodes[i].op == CONSTANT and node.id not in groups:
                    dot.node(f"k{node.id}_{i}", self.nodes[i].name, shape="plaintext")
                    dot.edge(f"k{node.id}_{i}", drawn[node.id])
                elif self.nodes[i].op != CONSTANT and drawn[i] != drawn[node.id] and (
                        drawn[i], drawn[node.id]) not in edges:
                    edges.add((drawn[i], drawn[node.id]))
                    dot.edge(drawn[i], drawn[node.id], **_edge_label(self.nodes[i]))
        for k, (i, name) in enumerate(zip(self.outputs, self.output_names)):
            dot.node(f"out{k}", f"output {name}".strip(), shape="plaintext")
            if self.nodes[i].op == CONSTANT:
                dot.node(drawn[i], self.nodes[i].name, shape="plaintext")
            dot.edge(drawn[i], f"out{k}", **_edge_label(self.nodes[i]))
        return dot

    def to_dot(self, collapse: bool | LayerOf = False) -> str:
        """The Graphviz DOT text of ``digraph(collapse)``."""
        return str(self.digraph(collapse).source)

    def render(self, path: str | os.PathLike[str], collapse: bool | LayerOf = False) -> Path:
        """Draw to ``path`` (``.svg``, ``.png``, ``.pdf``… by its suffix; ``.dot`` writes the
        text). Without Graphviz's ``dot``, writes the ``.dot`` file beside ``path`` and raises
        ``GraphvizNotFoundError`` saying how to install it."""
        import graphviz

        path, dot, kind = Path(path), self.digraph(collapse), Path(path).suffix.lstrip(".").lower()
        if kind in ("", "dot", "gv"):
            path.write_text(dot.source)
            return path
        try:
            dot.render(outfile=path, format=kind, cleanup=True)
            return path
        except graphviz.ExecutableNotFound:
            path.with_suffix(".dot").write_text(dot.source)
        raise GraphvizNotFoundError(
            f"render: Graphviz's `dot` program is not on PATH, so {path} was not drawn; the graph "
            f"is in {path.with_suffix('.dot')}. Install Graphviz (Debian/Ubuntu: `apt-get install "
            "graphviz`; macOS: `brew install graphviz`; conda: `conda install graphviz`; others: "
            f"https://graphviz.org/download/), then `dot -T{kind} {path.with_suffix('.dot')} -o "
            f"{path}`")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        return self.digraph()._repr_mimebundle_(include, exclude)  # inline SVG in Jupyter

    def _groups(self, key: LayerOf) -> dict[int, tuple[bool, str]]:
        """``(backward, layer)`` of each op in a layer: a forward op joins the latest layer
        among its parameter inputs, or the layer of the op it follows when it is that op's only
        consumer (``relu`` after ``add b1``); a backward op joins the latest layer whose
        gradient it feeds."""
        names = [self.nodes[i].name for i in self.inputs] + self.output_names
        rank = {layer: k for k, layer in enumerate(dict.fromkeys(filter(None, map(key, names))))}
        anchors = {i: key(self.nodes[i].name) for i in self.inputs}
        consumers = Counter(i for node in self.ops if not node.backward for i in node.inputs)
        groups: dict[int, tuple[bool, str]] = {}
        for node in self.ops:
            if node.backward:
                continue
            layers: set[str] = {a for i in node.inputs if (a := anchors.get(i)) is not None}
            values = [i for i in node.inputs if self.nodes[i].op != CONSTANT]
            if layers:
                groups[node.id] = (False, max(layers, key=rank.__getitem__))
                if node.op == "identity":  # a transform's own copy of a parameter
                    anchors[node.id] = groups[node.id][1]
            elif len(values) == 1 and values[0] in groups and consumers[values[0]] == 1:
                groups[node.id] = groups[values[0]]
        feeds: dict[int, set[str]] = defaultdict(set)
        for i, name in zip(self.outputs, self.output_names):
            if (layer := key(name)) is not None:
                feeds[i].add(layer)
        for node in reversed(self.ops):
            if node.backward and feeds[node.id]:
                groups[node.id] = (True, max(feeds[node.id], key=rank.__getitem__))
                for i in node.inputs:
                    feeds[i] |= feeds[node.id] if self.nodes[i].backward else set()
        return groups


def _phase(backward: bool) -> str:
    return "backward" if backward else "forward"


def _edge_label(source: Node) -> dict[str, str]:
    return {} if source.op == INPUT else {"label": f"{source.name}:{source.type}"}


def layer_of(name: str) -> str | None:
    """The layer a parameter belongs to, read from its name: ``W1`` and ``b1`` are ``1``,
    ``layers[0].W`` is ``layers[0]``; positional inputs (``x0``) and bare names have none."""
    if re.fullmatch(r"x\d+", name):
        return None
    head, _, last = name.rpartition(".")
    numbered = re.fullmatch(r"[A-Za-z_]+(\d+)", last)
    return numbered.group(1) if numbered else head or None


# --- tracing a program ------------------------------------------------------------------------
def is_input_leaf(leaf: Any) -> bool:
    """Leaves that become a program's inputs: numeric arrays and Tensors. Python numbers (weakly
    typed: an array would change promotion) and non-numeric leaves are passed as they are."""
    return isinstance(leaf, (np.ndarray, Tensor, np.number)) and np.asarray(
        leaf.data if isinstance(leaf, Tensor) else leaf).dtype.kind in "biuf"


def trace(f: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any] | None = None,
          argnums: int | Sequence[int] | None = None, name: str | None = None) -> Graph:
    """Run ``f(*args)`` once as a program and return its ``Graph``.

    Each input leaf (``is_input_leaf``) becomes an input named by its pytree path (``W1``; a
    positional array ``x0``); float leaves of the arguments in ``argnums`` (default: all)
    require grad. Reading an input's value in Python inside ``f`` is a ``TracedValueError``.
    """
    program = Program(name or f"trace({getattr(f, '__name__', 'f')})")
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
    outputs = [leaf if type(leaf) is Tensor else Tensor(numeric(leaf, f"make_graph: the output "
               f"'{path or 'at the top'}'")) for leaf, path in zip(leaves, paths)]
    value_ = tree_unflatten(out_tree, [tensor.data for tensor in outputs])
    return _build(outputs, paths, value_, inputs, forward, out_tree, tape)


def make_graph(f: Callable[..., Any],
               argnums: int | Sequence[int] | None = None) -> Callable[..., Any]:
    """``make_graph(f)(*args)``: the ``Graph`` of ``f`` at ``args`` (see ``trace``); of a
    ``jit``-ed function, its planned program (``lower``). ``make_graph(grad(f))`` holds the
    forward and the backward pass."""

    def make_graph_f(*args: Any, **kwargs: Any) -> Any:
        if hasattr(f, "lower"):
            return f.lower(*args, **kwargs)
        return trace(f, args, kwargs, argnums)

    return make_graph_f


def graph_of(tensor: Tensor) -> Graph:
    """The graph recorded behind ``tensor`` (``tensor.graph()``): its inputs are the leaves
    that require grad or have a ``name``; other leaves are constants."""
    return _build([tensor], [""], tensor.data, [], [])


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


def _build(outputs: list[Tensor], output_names: list[str], result: Any, inputs: list[Tensor],
           forward_outputs: list[Tensor], out_tree: TreeDef | None = None,
           tape: list[Tensor] | None = None) -> Graph:
    order, listed = _walk(forward_outputs + outputs), {id(x) for x in inputs}
    forward = {id(x) for x in _walk(forward_outputs)} if forward_outputs else None
    live = {id(x) for x in order}  # the order the ops ran in, when known; dead ones dropped
    ops = [x for x in (order if tape is None else tape) if _is_op(x) and id(x) in live]
    backward = {id(x) for x in ops if forward is not None and id(x) not in forward}
    ops = [x for x in ops if id(x) not in backward] + [x for x in ops if id(x) in backward]
    leaves = inputs + [x for x in order if type(x) is Tensor and not _is_op(x) and (
        x.requires_grad or x.name is not None) and id(x) not in listed]
    constants = [x for x in order if not _is_op(x) and id(x) not in {id(leaf) for leaf in leaves}]
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
    return Graph(nodes, [index[id(x)] for x in leaves], [index[id(x)] for x in outputs],
                 list(output_names), result, out_tree)


def _is_op(item: Any) -> bool:
    return isinstance(item, Tensor) and item.primitive is not None


# --- text -----------------------------------------------------------------------------------------
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


def _si(number: float, unit: str) -> str:
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(number) >= scale:
            return f"{number / scale:.2f} {prefix}{unit}"
    return f"{number:g} {unit}"


OPS["graph"] = graph_of
