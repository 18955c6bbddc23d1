"""Inspecting the recorded program: ``make_graph(f)(*args)`` prints it, measures it, draws it.

A ``Graph`` is the ``program.Program`` that ``trace`` records (what ``jit`` and ``export_onnx``
read too), with inspection on top. Every cost comes from the primitives: a node's FLOPs from
its primitive's count, the backward FLOPs from the backward nodes actually recorded
(``make_graph(grad(f))``), the bytes kept for backward from the results the recorded nodes hold.
"""

from __future__ import annotations

import os
import re
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from tinygrad_nn.program import CONSTANT, INPUT, Node, Program, recorded, trace
from tinygrad_nn.tensor import Tensor

LayerOf = Callable[[str], "str | None"]
_FILL = {"forward": "#dae8fc", "backward": "#f8cecc", "parameter": "#ffd966"}


class GraphvizNotFoundError(RuntimeError):
    """``render`` needs Graphviz's ``dot`` program, and it is not on PATH."""


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


class Graph(Program):
    """A program with inspection: ``print(graph)`` gives a jaxpr-like listing, ``summary()`` the
    costs, ``render()`` a Graphviz picture (inline in Jupyter)."""

    def summary(self) -> GraphSummary:
        forward = [node for node in self.ops if not node.backward]
        backward = [node for node in self.ops if node.backward]
        held = {i for node in forward if node.requires_grad for i in node.inputs}
        return GraphSummary(
            op_counts=dict(Counter(node.op for node in forward)),
            backward_op_counts=dict(Counter(node.op for node in backward)),
            forward_flops=sum(node.flops or 0 for node in forward),
            backward_flops=sum(node.flops or 0 for node in backward) if backward else None,
            saved_bytes=sum(self.nodes[i].nbytes for i in held if self.nodes[i].is_op),
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
        if key is not None and not groups:
            warnings.warn("collapse: no input's name gives a layer (W1, b1, layers[0].W, …), so "
                          "every op is drawn; pass collapse=a function of a name giving its layer",
                          stacklevel=3)
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
def make_graph(f: Callable[..., Any],
               argnums: int | Sequence[int] | None = None) -> Callable[..., Any]:
    """``make_graph(f)(*args)``: the ``Graph`` of ``f`` at ``args`` (``program.trace``: input
    leaves named by their paths, float leaves of ``argnums`` (default: all) needing a gradient);
    of a ``jit``-ed function, its planned program (``lower``). ``make_graph(grad(f))`` holds the
    forward and the backward pass."""

    def make_graph_f(*args: Any, **kwargs: Any) -> Any:
        if hasattr(f, "lower"):
            return f.lower(*args, **kwargs)
        name = f"make_graph({getattr(f, '__name__', 'f')})"  # errors name the call
        return trace(f, args, kwargs, argnums, name, kind=Graph)  # a Graph: the kind asked for

    return make_graph_f


def graph_of(tensor: Tensor) -> Graph:
    """The graph recorded behind ``tensor`` (``tensor.graph()``): its inputs are the leaves
    that require grad or have a ``name``; other leaves are constants."""
    return cast(Graph, recorded(tensor, kind=Graph))


def _si(number: float, unit: str) -> str:
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(number) >= scale:
            return f"{number / scale:.2f} {prefix}{unit}"
    return f"{number:g} {unit}"


Tensor.graph = graph_of
