"""Export a traced program to ONNX: ``export_onnx(f, *example_args)``, with one emit per primitive.

``export_onnx`` traces ``f`` (``program.trace``) and writes each equation of the program as ONNX
operators: ``ONNX_OPS`` maps a primitive to its emit function, which adds the nodes for one
equation through an ``Emitter``. Every mapping, the built-in ones too (``onnx_ops.BUILTIN``), is
made with ``register_onnx(primitive, emit)`` (``emit=None``: a primitive that has no ONNX form).
``onnx`` is imported only when a model is built, so this module (and ``register_onnx``) work
without it; install it with ``pip install 'tinygrad_nn[onnx]'``.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tinygrad_nn.onnx_ops import BUILTIN, Emit, Emitter, UnsupportedPrimitiveError
from tinygrad_nn.program import CONSTANT, Node, Program, is_input_leaf, trace
from tinygrad_nn.pytree import tree_flatten
from tinygrad_nn.tensor import Primitive

if TYPE_CHECKING:
    import onnx

__all__ = ["BATCH", "ONNX_OPS", "OPSET", "Emit", "Emitter", "UnsupportedPrimitiveError",
           "export_onnx", "register_onnx"]

OPSET = 18  # the default ONNX domain's version: reductions take their axes as an input
BATCH = "batch"  # the symbolic size of every graph input's last axis, with dynamic_batch

ONNX_OPS: dict[Primitive, Emit | None] = {}  # None: the primitive has no ONNX form


def register_onnx(primitive: Primitive, emit: Emit | None) -> None:
    """Give ``primitive`` its ONNX mapping ``emit`` (see ``Emit`` and ``Emitter``), e.g. next to
    its definition::

        register_onnx(swish_p, lambda g: g.op("Mul", g.input(0), g.op("Sigmoid", g.op(
            "Mul", g.input(0), g.constant(g.params["beta"], g.node.dtype)))))

    ``emit=None`` marks a primitive that ONNX cannot express (its export is an error that says
    so). Mappings are keyed by the primitive itself: another primitive of the same name is
    another one. Registering a primitive again replaces its mapping."""
    if not isinstance(primitive, Primitive):
        raise TypeError(f"register_onnx: expected a tg.Primitive, got {type(primitive).__name__}")
    ONNX_OPS[primitive] = emit


for _primitive, _emit in BUILTIN:
    register_onnx(_primitive, _emit)


# --- the export -----------------------------------------------------------------------------------
def export_onnx(f: Callable[..., Any], *example_args: Any,
                path: str | os.PathLike[str] | None = None, dynamic_batch: bool = True,
                argnames: Sequence[str] | None = None) -> onnx.ModelProto:
    """The ONNX model (opset 18, IR version 8) of ``f`` traced at ``example_args``.

    Which argument becomes what:

    - a dict, list or tuple (a pytree, e.g. ``params``): its arrays become **initializers**
      named by their paths (``W1``, ``b1``, …; ``layers[0].W``) — the model's weights;
    - an array (numpy or Tensor): a **graph input**, named ``argnames[k]`` for the k-th such
      argument, else ``x`` and its position (``x1`` for ``X`` in ``f(params, X)``);
    - anything else (numbers, strings): fixed in the model, as ``f`` used it;
    - arrays ``f`` closes over: initializers, named ``const0``, ``const1``, … (a closed-over
      Tensor with a ``name`` keeps it); pass them as an argument to name them by path.

    ``export_onnx(nn.forward, params, X, argnames=["X"])`` gives W1..b4 and an input ``X``
    (n_x, batch). With ``dynamic_batch`` the last axis of every graph input (the examples:
    ``X`` is (n_x, m)) is the symbol ``batch``, so the model takes any number of columns; ``f``
    is traced a second time with one more column to check that its program does not depend
    on the batch size (a ``reshape`` to ``X.shape[1]`` does: write -1), an error otherwise.
    Outputs are named ``output`` (one array) or by their paths in what ``f`` returns. float32
    and float64 both export as they are. ``f`` may contain ``grad``: its backward pass is more
    equations, exported the same way. The model passes ``onnx.checker.check_model(model,
    full_check=True)``; it is written to ``path`` when given.
    """
    onnx = _import_onnx()
    name = getattr(f, "__name__", "f")
    graph = trace(f, example_args, argnums=(), name=f"export_onnx({name})")
    graph, inputs, params = _split_inputs(graph, example_args, argnames)
    if dynamic_batch:
        _check_batch(f, example_args, graph, inputs)
    model = _Builder(graph, inputs, params, onnx).model(name, dynamic_batch)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        onnx.save_model(model, os.fspath(path))
    return model


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError("export_onnx needs the onnx package: pip install "
                          "'tinygrad_nn[onnx]' (onnx, and onnxruntime to run the model)") from None
    return onnx


def _split_inputs(graph: Program, args: Sequence[Any], argnames: Sequence[str] | None
                  ) -> tuple[Program, dict[int, str], set[int]]:
    """The graph with its inputs renamed by ``argnames``, the graph inputs {node id: name}
    (the array arguments) and the initializers (the other traced inputs: pytree leaves,
    closed-over Tensors that need a gradient or have a name)."""
    in_pytree = [isinstance(arg, (dict, list, tuple)) for arg in args
                 for leaf in tree_flatten(arg)[0] if is_input_leaf(leaf)]
    plain = [i for i, pytree in zip(graph.inputs, in_pytree) if not pytree]
    names = [graph.nodes[i].name for i in plain] if argnames is None else list(argnames)
    if len(names) != len(plain):
        raise ValueError(f"export_onnx: argnames {names} names {len(names)} inputs, but f has "
                         f"{len(plain)} array arguments (the arrays in pytrees are parameters)")
    others = {node.name for node in graph.nodes if node.op != CONSTANT and node.id not in plain}
    if len(set(names)) != len(names) or others & set(names):
        raise ValueError(f"export_onnx: argnames {names} repeat a name, or take one of the "
                         f"program's: {sorted(others & set(names))}")
    nodes = list(graph.nodes)
    for i, name in zip(plain, names):
        nodes[i] = dataclasses.replace(nodes[i], name=name)
    renamed = Program(nodes, graph.inputs, graph.outputs, graph.output_names, graph.value,
                    graph.out_tree)
    return renamed, dict(zip(plain, names)), set(graph.inputs) - set(plain)


def _check_batch(f: Callable[..., Any], args: Sequence[Any], graph: Program,
                 inputs: dict[int, str]) -> None:
    """With a dynamic batch, the program must not depend on its size: ``f`` is traced again
    with one more column in every array argument, and must give the same equations, params
    and constants (a shape, a slice or a count made from the batch size would not)."""
    sizes = {graph.nodes[i].shape[-1] for i in inputs if graph.nodes[i].shape}
    if len(sizes) > 1:
        raise ValueError(f"export_onnx: the inputs' last axes have sizes {sorted(sizes)}; with "
                         "dynamic_batch=True each input's last axis is the batch (one size)")
    if not sizes:
        return
    m = sizes.pop()
    advice = ("the model could not take another batch size: compute shapes with -1 and ops, "
              "not from the batch size, or pass dynamic_batch=False")
    try:
        other = trace(f, [_widened(arg) for arg in args], argnums=(),
                      name=f"export_onnx, a batch of {m + 1}")
    except Exception as error:
        raise ValueError(f"export_onnx: f fails with a batch of {m + 1} instead of {m} "
                         f"({error}); {advice}") from error
    for mine, theirs in itertools.zip_longest(graph.nodes, other.nodes):
        same = mine is not None and theirs is not None and (mine.op, mine.inputs) == (
            theirs.op, theirs.inputs) and _equal(mine.params, theirs.params) and (
            mine.op != CONSTANT or _equal(mine.value, theirs.value))
        if not same:
            node = mine if mine is None or mine.is_op else next(
                n for n in graph.ops if mine.id in n.inputs)  # a constant: its first use
            where = f"`{graph.line(node)}`" if node is not None else "the program"
            raise ValueError(f"export_onnx: {where} depends on the batch size ({m}; traced with "
                             f"{m + 1}, the program differs there); {advice}")


def _widened(arg: Any) -> Any:
    """An array argument with its first column repeated at the end; any other as it is."""
    if isinstance(arg, (dict, list, tuple)) or not is_input_leaf(arg) or not np.ndim(arg):
        return arg
    x = np.asarray(arg._data if hasattr(arg, "_data") else arg)
    return np.concatenate([x, x[..., :1]], axis=-1)


def _equal(a: Any, b: Any) -> bool:
    """Params or constants of two traces are the same (arrays by value, NaN equal to NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(map(_equal, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (np.ndarray, np.generic, float)):
        return a is b or bool(np.array_equal(a, b, equal_nan=np.asarray(a).dtype.kind == "f"))
    return bool(a == b)


class _Builder:
    """The ONNX graph under construction: nodes, initializers and each value's name. The names
    a user sees come first: inputs, parameters, outputs; an op's result keeps its listing name
    (``a``, ``b``, …) where that is free, and takes its output's name where it is one."""

    def __init__(self, graph: Program, inputs: dict[int, str], params: set[int], onnx: Any):
        self.graph, self.params, self.onnx = graph, params, onnx
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.names: dict[tuple[int, Any], str] = {  # (node id, dtype cast to or None) -> value
            (i, None): name for i, name in inputs.items()}
        self.taken = set(inputs.values()) | {graph.nodes[i].name for i in params}
        self.output_names = [self.fresh(f"output.{name}" if name in self.taken else name)
                             for name in _output_names(graph)]
        self.results: dict[int, str] = {}  # an op that is an output -> that output's name
        for i, name in zip(graph.outputs, self.output_names):
            self.results.setdefault(i, name)
        self.shared: dict[tuple[str, tuple[int, ...], bytes], str] = {}  # small constants
        self.constants = 0

    def fresh(self, base: str) -> str:
        """``base``, or ``base_1``, ``base_2``… where it is taken."""
        name, k = base, 0
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def add_node(self, op_type: str, inputs: Sequence[str], output: str | list[str], line: str,
                 attributes: dict[str, Any]) -> None:
        """The ONNX node ``op_type(*inputs)``: its output (or outputs), named by its first."""
        outputs = [output] if isinstance(output, str) else output
        helper = self.onnx.helper
        for key, v in attributes.items():
            if isinstance(v, np.ndarray):
                attributes[key] = self.onnx.numpy_helper.from_array(v)
            elif isinstance(v, np.dtype):
                attributes[key] = helper.np_dtype_to_tensor_dtype(v)
        self.nodes.append(helper.make_node(op_type, list(inputs), outputs, name=outputs[0],
                                           doc_string=line, **attributes))

    def initializer(self, array: np.ndarray, name: str | None = None) -> str:
        """An initializer: a parameter's by its ``name``, else ``const0``, ``const1``, … (small
        constants of equal dtype, shape and values shared)."""
        key = (array.dtype.str, array.shape, array.tobytes()) if array.size <= 16 else None
        if name is None and key in self.shared:
            return self.shared[key]
        if name is None:
            name, self.constants = self.fresh(f"const{self.constants}"), self.constants + 1
            self.shared.update({key: name} if key else {})
        tensor = self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name)
        self.initializers.append(tensor)
        return name

    def value(self, node: Node, dtype: np.dtype[Any] | None) -> str:
        """The ONNX value of ``node`` in ``dtype``: a constant is stored in it, anything else
        is cast by a Cast node; a constant or parameter is made an initializer on first use."""
        key = (node.id, None if dtype is None or dtype == node.dtype else dtype)
        if key in self.names:
            return self.names[key]
        if node.op == CONSTANT:
            name = self.initializer(np.asarray(node.value, dtype=key[1]))
        elif key[1] is not None:
            source = self.value(node, None)
            name = self.fresh(f"{source}.{dtype}")
            self.add_node("Cast", [source], name, "", {"to": dtype})
        elif node.id in self.params:
            name = self.initializer(np.asarray(node.value), node.name)
        else:
            raise AssertionError(f"export_onnx: {node.name} is used before it is computed")
        self.names[key] = name
        return name

    def emit(self, node: Node) -> None:
        """The equation's ONNX nodes; the last one's output is the result's name."""
        if node.primitive not in ONNX_OPS:
            raise UnsupportedPrimitiveError(
                f"export_onnx: primitive '{node.op}' has no ONNX mapping, at `"
                f"{self.graph.line(node)}` in the program (print(tg.make_graph(f)(*args)) "
                "lists it); give it one with tinygrad_nn.export.register_onnx(primitive, emit)")
        emit = ONNX_OPS[node.primitive]
        if emit is None:
            raise UnsupportedPrimitiveError(f"export_onnx: primitive '{node.op}' has no ONNX "
                                            f"form, at `{self.graph.line(node)}`")
        count = len(self.nodes)
        result = emit(Emitter(self, node))
        if len(self.nodes) > count and self.nodes[-1].output[0] == result:
            self.taken.discard(result)
            result = self.results.get(node.id) or self.fresh(node.name)
            self.nodes[-1].output[0] = self.nodes[-1].name = result
        self.names[(node.id, None)] = result

    def model(self, name: str, dynamic_batch: bool) -> onnx.ModelProto:
        onnx, graph = self.onnx, self.graph
        helper = onnx.helper
        for node in (graph.nodes[i] for i in sorted(graph.needed())):
            if node.is_op:
                self.emit(node)
        for i, output in zip(graph.outputs, self.output_names):  # an input, a constant, twice
            if self.value(graph.nodes[i], None) != output:
                self.add_node("Identity", [self.value(graph.nodes[i], None)], output, "", {})
        inputs = [_value_info(helper, self.names[(i, None)], graph.nodes[i],
                              BATCH if dynamic_batch else None)
                  for i in graph.inputs if i not in self.params]
        outputs = [_value_info(helper, output, graph.nodes[i], None, known=not dynamic_batch)
                   for i, output in zip(graph.outputs, self.output_names)]
        opset = [helper.make_opsetid("", OPSET)]
        model = helper.make_model(
            helper.make_graph(self.nodes, name, inputs, outputs, self.initializers,
                              doc_string=str(graph)),
            opset_imports=opset, producer_name="tinygrad_nn",
            ir_version=helper.find_min_ir_version_for(opset))
        if dynamic_batch:
            _infer_output_shapes(model, onnx)
        onnx.checker.check_model(model, full_check=True)
        return model


def _output_names(graph: Program) -> list[str]:
    """``output`` for a lone array; else each one's path in f's result (``output[0]``,
    ``probs``)."""
    if len(graph.outputs) == 1:
        return ["output"]
    return [f"output{path}" if path.startswith("[") else path for path in graph.output_names]


def _value_info(helper: Any, name: str, node: Node, batch: str | None, known: bool = True
                ) -> Any:
    """The type of a graph input or output: the traced shape (the last axis ``batch`` when
    given), or the rank only (unnamed axes) when the sizes are not ``known``."""
    shape: list[Any] = list(node.shape) if known else [None] * len(node.shape)
    if batch is not None and shape:
        shape[-1] = batch
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(node.dtype), shape)


def _infer_output_shapes(model: Any, onnx: Any) -> None:
    """Each output's axes as ONNX infers them from the inputs' (``batch`` where they depend on
    the batch); an axis inference cannot tell stays unnamed (not ``unk__5``)."""
    inferred = {v.name: v for v in onnx.shape_inference.infer_shapes(model).graph.output}
    for output in model.graph.output:
        output.CopyFrom(inferred[output.name])
        for dim in output.type.tensor_type.shape.dim:
            if dim.dim_param.startswith("unk__"):
                dim.Clear()
