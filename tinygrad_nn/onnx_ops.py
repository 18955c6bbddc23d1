"""Each primitive's ONNX form: one emit function (or maker) per primitive, and ``BUILTIN``, the
built-in primitives' mappings, which ``export`` registers with ``register_onnx``.

An emit function gets an ``Emitter`` for one equation and adds the ONNX nodes that compute it,
in the equation's dtype. Where ONNX has no operator of the same meaning (softplus, log1p, expm1,
logaddexp, arctan2, numpy's float mod), the emit builds one from ONNX operators that gives the
engine's numbers; ``None`` marks a primitive ONNX cannot express.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_nn import ops, random
from tinygrad_nn.program import CONSTANT, Node
from tinygrad_nn.tensor import Primitive, stop_gradient

__all__ = ["BUILTIN", "Emit", "Emitter", "UnsupportedPrimitiveError"]

_LAST = np.iinfo(np.int64).max  # Slice's "to the end"


class UnsupportedPrimitiveError(NotImplementedError):
    """An equation the export cannot write in ONNX: the message names it and its line."""


class Emitter:
    """What an emit function gets for one equation: the traced ``node`` (``params``, ``shape``,
    ``dtype``), its input nodes ``args``, its listing ``line``, and methods that add ONNX nodes
    and initializers. Each method returns the name of the ONNX value it made."""

    def __init__(self, builder: Any, node: Node):  # export's model builder
        self.node, self.params, self._builder = node, node.params, builder
        self.args = [builder.graph.nodes[i] for i in node.inputs]
        self.line = builder.graph.line(node)
        self._count = 0

    def input(self, k: int, dtype: Any = None) -> str:
        """Input ``k``'s value, cast to ``dtype`` when given and different (a constant is
        stored in that dtype: a Python number takes the dtype its op computes in)."""
        return self._builder.value(self.args[k], None if dtype is None else np.dtype(dtype))

    def inputs(self, dtype: Any = None) -> list[str]:
        """Every input's value, each cast to ``dtype`` when given."""
        return [self.input(k, dtype) for k in range(len(self.args))]

    def op(self, op_type: str, *inputs: str, output: int = 0, **attributes: Any) -> str:
        """Add the ONNX node ``op_type(*inputs)`` (``""`` skips an optional input) with
        ``attributes`` (a numpy array becomes a tensor, a numpy dtype its ONNX type); returns
        the name of its output number ``output`` (TopK's indices are its output 1)."""
        names = []
        for _ in range(output + 1):
            self._count += 1
            names.append(self._builder.fresh(f"{self.node.name}.{self._count}"))
        self._builder.add_node(op_type, inputs, names, self.line, attributes)
        return names[-1]

    def constant(self, value: Any, dtype: Any = None) -> str:
        """An initializer holding ``value`` (in ``dtype`` when given)."""
        return self._builder.initializer(np.asarray(value, dtype=dtype))


Emit = Callable[[Emitter], str]
"""``emit(g: Emitter) -> str``: add the ONNX nodes that compute ``g.node`` from ``g.input(k)``
and return the name of the value holding its result, in ``g.node.dtype``."""


# --- the emit functions: one small function (or maker) per primitive -----------------------------
def _same(op_type: str) -> Emit:
    """An elementwise op whose inputs are all cast to the output's dtype first."""
    return lambda g: g.op(op_type, *g.inputs(g.node.dtype))


def _compare(op_type: str) -> Emit:
    def emit(g: Emitter) -> str:  # ONNX compares two equal types: numpy's promotion of both
        dtype = np.result_type(*(a.dtype if a.op != CONSTANT else a.value for a in g.args))
        return g.op(op_type, *g.inputs(np.int64 if dtype.kind == "b" else dtype))

    return emit


def _sigmoid(g: Emitter) -> str:  # 1 / (1 + exp(-x)) as the engine: ORT's Sigmoid loses the tails
    x = g.input(0, g.node.dtype)
    return g.op("Reciprocal", g.op("Add", g.constant(1.0, g.node.dtype),
                                   g.op("Exp", g.op("Neg", x))))


def _log1p(g: Emitter, t: str) -> str:
    """log(1 + t) to a few ulps (ONNX has no Log1p): log(u)·t / (u - 1) with u = 1 + t
    (Goldberg's trick); t itself where u rounds to 1, u where it is +inf."""
    dtype = g.node.dtype
    one = g.constant(1.0, dtype)
    u = g.op("Add", one, t)
    u_minus_1 = g.op("Sub", u, one)
    goldberg = g.op("Where", g.op("IsInf", u, detect_negative=0), u,
                    g.op("Mul", g.op("Log", u), g.op("Div", t, u_minus_1)))
    return g.op("Where", g.op("Equal", u_minus_1, g.constant(0.0, dtype)), t, goldberg)


def _softplus(g: Emitter) -> str:
    """logaddexp(0, x) = relu(x) + log1p(exp(-|x|)), exact for every x (ORT's Softplus is not:
    inf at 800, 0 at -50)."""
    x = g.input(0, g.node.dtype)
    return g.op("Add", g.op("Relu", x), _log1p(g, g.op("Exp", g.op("Neg", g.op("Abs", x)))))


def _where(g: Emitter) -> str:
    boolean = g.node.dtype.kind == "b"  # ONNX Runtime has no Where on bools: choose uint8s
    dtype = np.uint8 if boolean else g.node.dtype
    chosen = g.op("Where", g.input(0, bool), g.input(1, dtype), g.input(2, dtype))
    return g.op("Cast", chosen, to=g.node.dtype) if boolean else chosen


def _clip(g: Emitter) -> str:
    x, low, high = g.input(0, g.node.dtype), g.params["low"], g.params["high"]
    if np.ndim(low) == 0 and np.ndim(high) == 0:  # Clip takes scalar bounds; "" is no bound
        bounds = ["" if v is None else g.constant(v, g.node.dtype) for v in (low, high)]
        return g.op("Clip", x, *bounds)
    x = x if low is None else g.op("Max", x, g.constant(low, g.node.dtype))
    return x if high is None else g.op("Min", x, g.constant(high, g.node.dtype))


def _reduced(g: Emitter, op_type: str, x: str, keepdims: bool) -> str:
    """``op_type`` over the node's ``axis`` (numpy's ``axis=()`` reduces nothing)."""
    axes = g.constant(np.array(g.params["axis"], dtype=np.int64))
    return g.op(op_type, x, axes, keepdims=int(keepdims),
                noop_with_empty_axes=int(not g.params["axis"]))


def _reduce(op_type: str) -> Emit:
    return lambda g: _reduced(g, op_type, g.input(0, g.node.dtype), g.params["keepdims"])


def _logsumexp(g: Emitter) -> str:
    """As ``ops._logsumexp_impl``: shift by the max (0 where it is not finite), log Σ exp."""
    dtype, axis = g.node.dtype, g.params["axis"]
    x = g.input(0, dtype)
    peak = _reduced(g, "ReduceMax", x, keepdims=True)
    shift = g.op("Where", g.op("Or", g.op("IsInf", peak), g.op("IsNaN", peak)),
                 g.constant(0.0, dtype), peak)
    total = g.op("Add", g.op("Log", _reduced(g, "ReduceSum", g.op("Exp", g.op("Sub", x, shift)),
                                             keepdims=True)), shift)
    if g.params["keepdims"] or not axis:
        return total
    return g.op("Squeeze", total, g.constant(np.array(axis, dtype=np.int64)))


def _arg(op_type: str) -> Emit:
    """ArgMax or ArgMin, which give the first of equal extrema, as numpy (axis None: of the
    flattened x)."""

    def emit(g: Emitter) -> str:
        x, axis = g.input(0), g.params["axis"]
        if axis is None:
            x, axis = g.op("Reshape", x, g.constant(np.array([-1], dtype=np.int64))), 0
        return g.op(op_type, x, axis=axis, keepdims=0)

    return emit


def _shape(g: Emitter) -> str:
    return g.constant(np.array(g.params["shape"], dtype=np.int64))


def _reshape(g: Emitter) -> str:  # numpy's 0 is a size 0, ONNX's (by default) "keep that axis"
    zero = {"allowzero": 1} if 0 in g.params["shape"] else {}
    return g.op("Reshape", g.input(0), _shape(g), **zero)


def _concatenate(g: Emitter) -> str:
    return g.op("Concat", *g.inputs(g.node.dtype), axis=g.params["axis"])


def _stack(g: Emitter) -> str:
    axis = g.constant(np.array([g.params["axis"]], dtype=np.int64))
    pieces = [g.op("Unsqueeze", x, axis) for x in g.inputs(g.node.dtype)]
    return g.op("Concat", *pieces, axis=g.params["axis"])


def _getitem(g: Emitter) -> str:
    """Ints and slices as one Slice (an int is a length-1 slice, squeezed after), an integer
    array (an input: a constant or a traced one) or a constant 1-D boolean one as Gather, None
    as Unsqueeze."""
    parts = _index_parts(g, g.params["index"], len(g.args[0].shape))
    x = g.input(0)
    sliced = [(axis, _bounds(p)) for axis, p in enumerate(q for q in parts if q is not None)
              if isinstance(p, (int, slice)) and p != slice(None)]
    if sliced:  # starts, ends, axes, steps
        columns = zip(*[(start, end, axis, step) for axis, (start, end, step) in sliced])
        x = g.op("Slice", x, *(g.constant(np.array(c, dtype=np.int64)) for c in columns))
    axis, kept, squeezed, added = 0, 0, [], []  # axis: before the squeeze; kept: after it
    for p in parts:
        if p is None:
            added.append(kept)
            kept += 1
        elif isinstance(p, Node):  # Gather puts the index's axes where the axis was
            index = g.constant(np.flatnonzero(p.value).astype(np.int64)) if p.dtype == bool \
                else g.op("Cast", g.input(g.args.index(p)), to=np.dtype(np.int64))
            x = g.op("Gather", x, index, axis=axis)
            ndim = 1 if p.dtype == bool else len(p.shape)
            axis, kept = axis + ndim, kept + ndim
        else:
            squeezed += [axis] if isinstance(p, int) else []
            axis, kept = axis + 1, kept + isinstance(p, slice)
    if squeezed:
        x = g.op("Squeeze", x, g.constant(np.array(squeezed, dtype=np.int64)))
    if added:
        x = g.op("Unsqueeze", x, g.constant(np.array(added, dtype=np.int64)))
    return x


def _bounds(part: int | slice) -> tuple[int, int, int]:
    """(start, end, step) for Slice: an int i is i:i+1; a missing bound is the far end."""
    if isinstance(part, int):
        return part, part + 1 if part != -1 else _LAST, 1
    step = 1 if part.step is None else int(part.step)
    start = part.start if part.start is not None else 0 if step > 0 else _LAST
    stop = part.stop if part.stop is not None else _LAST if step > 0 else -_LAST - 1
    return int(start), int(stop), step


def _index_parts(g: Emitter, index: tuple[Any, ...], ndim: int) -> list[Any]:
    """One entry per axis of x (an int, a slice or an index array's node) and None per new
    axis, or an UnsupportedPrimitiveError where Slice and one Gather cannot do what numpy
    does."""
    arrays, parts = iter(g.args[1:]), []
    for p in index:
        p = next(arrays) if p is ops.SLOT else int(p) if isinstance(p, np.integer) else p
        if isinstance(p, Node) and p.dtype == bool and (p.op != CONSTANT or len(p.shape) != 1):
            _unsupported(g, "the index: a boolean array that is not a constant 1-D one")
        if isinstance(p, Node) and p.dtype != bool and p.dtype.kind not in "iu":
            _unsupported(g, f"the index of dtype {p.dtype}")
        if isinstance(p, bool) or not (p is None or p is Ellipsis or isinstance(p, (
                int, slice, Node))):
            _unsupported(g, f"the index {p!r} (exported: ints, slices, None, ..., one integer "
                         "or 1-D boolean array)")
        parts.append(p)
    if any(p is Ellipsis for p in parts):
        k = next(k for k, p in enumerate(parts) if p is Ellipsis)
        parts[k:k + 1] = [slice(None)] * (ndim + 1 - sum(p is not None for p in parts))
    parts += [slice(None)] * (ndim - sum(p is not None for p in parts))
    advanced = [k for k, p in enumerate(parts) if isinstance(p, (int, Node))]
    arrays_at = [k for k in advanced if isinstance(parts[k], Node)]
    if len(arrays_at) > 1 or (arrays_at and advanced != list(range(advanced[0],
                                                                   advanced[-1] + 1))):
        _unsupported(g, "more than one array index, or an array index apart from the integer "
                     "ones (numpy then moves the indexed axes first)")
    return parts


def _scatter_add(g: Emitter) -> str:
    """zeros(shape) plus g at x[index]'s places. With constant index arrays the flat places are
    known at export time, so this is one ScatterElements with reduction="add" (repeated places
    accumulate)."""
    shape, dtype = g.params["shape"], g.node.dtype
    if any(a.op != CONSTANT for a in g.args[1:]):
        _unsupported(g, "a scatter (the gradient of an index) at traced places")
    arrays = iter(a.value for a in g.args[1:])
    index = tuple(next(arrays) if p is ops.SLOT else p for p in g.params["index"])
    places = np.arange(math.prod(shape)).reshape(shape)[index]
    values = g.input(0, dtype)
    if tuple(g.args[0].shape) != places.shape:  # np.add.at broadcasts g to x[index]'s shape
        values = g.op("Expand", values, g.constant(np.array(places.shape, dtype=np.int64)))
    flat = g.constant(np.array([-1], dtype=np.int64))
    zeros = g.op("ConstantOfShape", g.constant(np.array([math.prod(shape)], dtype=np.int64)),
                 value=np.zeros(1, dtype))
    total = g.op("ScatterElements", zeros, g.constant(places.reshape(-1).astype(np.int64)),
                 g.op("Reshape", values, flat), axis=0, reduction="add")
    return g.op("Reshape", total, g.constant(np.array(shape, dtype=np.int64)))




def _unsupported(g: Emitter, what: str) -> None:
    raise UnsupportedPrimitiveError(f"export_onnx: {g.node.op} at `{g.line}`: {what}")



# --- numpy's ops that ONNX has under another form ------------------------------------------------
def _expm1(g: Emitter) -> str:
    """eˣ - 1 to a few ulps (ONNX has no Expm1), Kahan's way: (u - 1)·(x / log u) with u = eˣ;
    x where u rounds to 1, -1 where u - 1 does, u where it is inf."""
    dtype = g.node.dtype
    x, one = g.input(0, dtype), g.constant(1.0, dtype)
    u = g.op("Exp", x)
    u_minus_1 = g.op("Sub", u, one)
    kahan = g.op("Where", g.op("IsInf", u), u, g.op("Mul", u_minus_1, g.op("Div", x, g.op(
        "Log", u))))
    kahan = g.op("Where", g.op("Equal", u_minus_1, g.constant(-1.0, dtype)), u_minus_1, kahan)
    return g.op("Where", g.op("Equal", u, one), x, kahan)


def _logaddexp(g: Emitter) -> str:
    """As numpy: max(x, y) + log1p(exp(-|x - y|)), and x + log 2 where x = y (infinities too)."""
    dtype = g.node.dtype
    x, y = g.inputs(dtype)
    tail = _log1p(g, g.op("Exp", g.op("Neg", g.op("Abs", g.op("Sub", x, y)))))
    return g.op("Where", g.op("Equal", x, y), g.op("Add", x, g.constant(math.log(2.0), dtype)),
                g.op("Add", g.op("Max", x, y), tail))


def _arctan2(g: Emitter) -> str:
    """atan(y / x), ± π where x < 0 (the sign of y's), 0 at the origin: numpy's, except at
    signed zeros (atan2(±0, -0) is ±π) and where both are infinite."""
    dtype = g.node.dtype
    y, x = g.inputs(dtype)
    zero = g.constant(0.0, dtype)
    angle = g.op("Atan", g.op("Div", y, x))
    half_turn = g.op("Where", g.op("Less", y, zero), g.constant(-math.pi, dtype),
                     g.constant(math.pi, dtype))
    angle = g.op("Where", g.op("Less", x, zero), g.op("Add", angle, half_turn), angle)
    return g.op("Where", g.op("And", g.op("Equal", x, zero), g.op("Equal", y, zero)), zero, angle)


def _mod(g: Emitter) -> str:
    """numpy's remainder, of y's sign: for floats ONNX's Mod with fmod=1 (of x's sign, the only
    one it has for them), plus y where the signs differ; Python's Mod for integers."""
    dtype = g.node.dtype
    x, y = g.inputs(dtype)
    if dtype.kind != "f":
        return g.op("Mod", x, y)
    zero, r = g.constant(0.0, dtype), g.op("Mod", x, y, fmod=1)
    differ = g.op("Xor", g.op("Less", r, zero), g.op("Less", y, zero))
    fix = g.op("And", g.op("Not", g.op("Equal", r, zero)), differ)
    return g.op("Where", fix, g.op("Add", r, y), r)


def _argsort(g: Emitter) -> str:
    """TopK of the whole axis, smallest first; ties in index order, as numpy's stable sort."""
    x, axis = g.input(0), g.params["axis"]
    k = g.op("Shape", x, start=axis, end=axis + 1)
    return g.op("TopK", x, k, axis=axis, largest=0, sorted=1, output=1)


def _take_along_axis(g: Emitter) -> str:
    """GatherElements, which wants x and the indices of one shape but at ``axis``: each is
    first expanded to the other's shape there (numpy broadcasts them)."""
    axis = g.params["axis"]
    at_axis = g.constant(np.arange(len(g.node.shape)) == axis)
    one = g.constant(np.array(1, dtype=np.int64))
    x, i = g.input(0), g.op("Cast", g.input(1), to=np.dtype(np.int64))
    wide_i = g.op("Expand", i, g.op("Where", at_axis, one, g.op("Shape", x)))
    wide_x = g.op("Expand", x, g.op("Where", at_axis, one, g.op("Shape", i)))
    return g.op("GatherElements", wide_x, wide_i, axis=axis)


def _einsum(g: Emitter) -> str:
    return g.op("Einsum", *g.inputs(g.node.dtype), equation=g.params["subscripts"])


def _pass_through(g: Emitter) -> str:
    return g.op("Identity", g.input(0))



BUILTIN: list[tuple[Primitive, Emit | None]] = [
    (ops.add, _same("Add")), (ops.sub, _same("Sub")), (ops.mul, _same("Mul")),
    (ops.div, _same("Div")), (ops.power, _same("Pow")), (ops.neg, _same("Neg")),
    (ops.matmul, _same("MatMul")), (ops.exp, _same("Exp")), (ops.log, _same("Log")),
    (ops.sqrt, _same("Sqrt")), (ops.abs, _same("Abs")), (ops.sign, _same("Sign")),
    (ops.relu, _same("Relu")), (ops.tanh, _same("Tanh")), (ops.sigmoid, _sigmoid),
    (ops.softplus, _softplus), (ops.maximum, _same("Max")), (ops.minimum, _same("Min")),
    (ops.where, _where), (ops._clip, _clip), (ops.less, _compare("Less")),
    (ops.less_equal, _compare("LessOrEqual")), (ops.greater, _compare("Greater")),
    (ops.greater_equal, _compare("GreaterOrEqual")), (ops.equal, _compare("Equal")),
    (ops.not_equal, lambda g: g.op("Not", _compare("Equal")(g))),
    (ops._sum, _reduce("ReduceSum")), (ops._mean, _reduce("ReduceMean")),
    (ops._max, _reduce("ReduceMax")), (ops._logsumexp, _logsumexp), (ops._argmax, _arg("ArgMax")),
    (ops._reshape, _reshape),
    (ops._transpose, lambda g: g.op("Transpose", g.input(0), perm=list(g.params["axes"]))),
    (ops._broadcast_to, lambda g: g.op("Expand", g.input(0), _shape(g))),
    (ops._astype, lambda g: g.op("Cast", g.input(0), to=g.node.dtype)),
    (ops.identity, _pass_through), (stop_gradient, _pass_through),
    (ops.check_range, _pass_through),  # ONNX has no assertion: the model does not check
    (ops._getitem, _getitem), (ops.scatter_add, _scatter_add),
    (ops._concatenate, _concatenate), (ops._stack, _stack),
    # Philox draws: ONNX's random operators give other numbers
    (random._split, None), (random._normal, None), (random._uniform, None),
    (random._bernoulli, None), (random._permutation, None),
    # numpy's ops (issue 19). ONNX Runtime has float32 kernels only for Tan, Asin, Acos, Atan,
    # Sinh, Cosh and Erf (and so for arctan2): a float64 model with them is valid ONNX it cannot run
    (ops.log1p, lambda g: _log1p(g, g.input(0, g.node.dtype))), (ops.expm1, _expm1),
    (ops.sin, _same("Sin")), (ops.cos, _same("Cos")), (ops.tan, _same("Tan")),
    (ops.arcsin, _same("Asin")), (ops.arccos, _same("Acos")), (ops.arctan, _same("Atan")),
    (ops.sinh, _same("Sinh")), (ops.cosh, _same("Cosh")), (ops.floor, _same("Floor")),
    (ops.ceil, _same("Ceil")), (ops.rint, _same("Round")), (ops.logaddexp, _logaddexp),
    (ops.arctan2, _arctan2), (ops.mod, _mod), (ops._min, _reduce("ReduceMin")),
    (ops._argmin, _arg("ArgMin")), (ops._prod, _reduce("ReduceProd")),
    (ops._cumsum, lambda g: g.op("CumSum", g.input(0, g.node.dtype), g.constant(
        np.array(g.params["axis"], dtype=np.int64)))),
    (ops._argsort, _argsort), (ops._take_along_axis, _take_along_axis), (ops._einsum, _einsum),
    (ops.erf, _same("Erf")),  # ONNX Runtime: float32 only, as Tan
]
