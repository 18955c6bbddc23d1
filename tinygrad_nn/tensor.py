"""The ground floor: ``Tensor``, ``Primitive`` and the recording switches. Imports nothing above.

A Tensor wraps a numpy array. Calling a Primitive on Tensors records an equation on its result,
as a jaxpr does: ``primitive``, ``inputs`` (Tensors or constants) and ``params`` (plain data:
axes, shapes, bounds, …). It is recorded when an input needs a gradient, or when an input
belongs to a program being traced (``jit``, ``export_onnx``, ``make_graph``); otherwise the
result is a constant.

The rule that keeps a traced program right: **a value computed from a function's inputs leaves
the program only through a primitive.** Every door out of it is here, in one place: reading a
traced Tensor's numbers in Python (``.data``, ``float()``, ``bool()``, ``np.asarray``, an index,
an op's params) raises ``TracedValueError``; ``Tensor(x)`` and ``detach()`` of a traced value
record ``stop_gradient``; and where numpy would silently drop a gradient (``np.asarray`` of a
Tensor that requires grad, a list of such Tensors) the call is refused.
"""

from __future__ import annotations

import weakref
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Union, cast

import numpy as np

ArrayLike = Union["Tensor", np.ndarray, float, int, bool, Sequence[Any]]
Rule = Callable[..., Any]
UFUNCS: dict[np.ufunc, Primitive] = {}  # numpy's ufunc -> the first primitive computing it
DEFAULT_ERROR = "{error} (input shapes {shapes})"
BROADCAST_ERROR = "shapes {shapes} do not broadcast"


class State:
    """What every op reads: recording on, anomaly checks, the open tape, the traced program,
    and how many transforms are running their function (each marks its inputs with its bit)."""

    record, anomaly, depth = True, False, 0
    tape: list[Tensor] | None = None  # the nodes recorded while a transform or a trace runs
    program: Trace | None = None  # the program being traced, if any


class Trace:
    """A program being traced (``jit(f)``, ``make_graph``, ``export_onnx``, ``vmap``): its Tensors
    carry it, and must not be used once it ends (``active`` False). A trace begun inside another
    is ``depth`` deeper: an op on Tensors of both belongs to the inner one. ``backward`` holds the
    ids of the nodes that backward passes recorded (the listing marks them)."""

    def __init__(self, name: str):
        self.name, self.backward, self.active = name, set[int](), True
        self.depth: int = 0 if State.program is None else State.program.depth + 1


@contextmanager
def switch(setting: str, value: Any) -> Iterator[None]:
    """Set one of ``State``'s settings inside the block; the old value comes back after."""
    previous = getattr(State, setting)
    setattr(State, setting, value)
    try:
        yield
    finally:
        setattr(State, setting, previous)


def no_grad() -> Any:
    """Record nothing inside the block: results are constants."""
    return switch("record", False)


def enable_grad() -> Any:
    """Record again inside a ``no_grad`` block (used to record a backward pass)."""
    return switch("record", True)


def detect_anomaly() -> Any:
    """Raise at the first op whose output holds NaN or inf, naming that op."""
    return switch("anomaly", True)


def is_grad_enabled() -> bool:
    return State.record


# ``detect_anomaly``: {id(node): (a weak reference to it, a checksum of each input array)}, so
# that backward can tell an array changed in place after the forward pass (which would silently
# change a gradient). An entry leaves with its node. (Not a WeakKeyDictionary: that compares
# keys with ``==``, which is elementwise on Tensors.)
FINGERPRINTS: dict[int, tuple[weakref.ref[Tensor], list[int]]] = {}


def fingerprints(arrays: Sequence[Any]) -> list[int]:
    return [zlib.crc32(np.ascontiguousarray(a).data) if isinstance(a, np.ndarray)
            else 0 for a in arrays]


def _remember(node: Tensor, arrays: Sequence[Any]) -> None:
    key = id(node)
    FINGERPRINTS[key] = (weakref.ref(node, lambda _: FINGERPRINTS.pop(key)), fingerprints(arrays))


class TracedValueError(TypeError):
    """A traced program's value read in Python: the program would silently depend on it."""


class CheckError(ValueError):
    """A check of the values that the program records (``ops.check_range``) failed: raised
    alike by an eager call and by a ``jit`` replay."""


def value(x: Any, what: str = "reading its values") -> Any:
    """The numpy value behind a Tensor (a TracedValueError for a traced one); anything else as
    it is."""
    return x.concrete(what) if type(x) is Tensor else x


def shape_of(x: Any) -> tuple[int, ...]:
    """x's shape, read without its values (a traced Tensor has one too)."""
    if type(x) is Tensor:
        return x._data.shape
    return numeric(x, "an op's input").shape if type(x) in (list, tuple) else np.shape(x)


def dtype_of(x: Any) -> np.dtype[Any]:
    """x's dtype, read without its values."""
    return x._data.dtype if type(x) is Tensor else np.asarray(x).dtype


def _gradient_kept(x: Any) -> bool:
    """A Tensor whose values would lose something as plain numbers: it needs a gradient, or it
    belongs to a traced program."""
    return type(x) is Tensor and (x.requires_grad or x.program is not None)


def numeric(x: Any, what: str) -> np.ndarray:
    """``x`` as a numeric (bool, int or float) array, or a TypeError naming ``what``."""
    if type(x) in (list, tuple) and any(map(_gradient_kept, x)):
        raise TypeError(f"{what}: a list holding Tensors that require grad or are traced; numpy "
                        "would read their numbers and drop the gradient. Join them with "
                        "tg.stack([...]) (tg.stop_gradient(tg.stack([...])) for a constant)")
    try:
        array = np.asarray(value(x, what))
        got = f"{type(x).__name__} of dtype {array.dtype}"
    except ValueError:  # numpy's "inhomogeneous shape"
        array, got = np.empty(0, object), f"a ragged nested {type(x).__name__} (rows differ)"
    if array.dtype.kind in "biuf":
        return array
    raise TypeError(f"{what}: expected a Tensor or a number (or a numeric numpy array), got {got}")


def integer(x: Any, what: str, low: int = 0, high: int | None = None) -> int:
    """``x`` as an int in [``low``, ``high``), or a ValueError saying what ``what`` must be (a
    bool is no integer here; a traced number, which cannot be read: TracedValueError)."""
    if type(x) is Tensor:
        x.concrete(what)
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < low or (
            high is not None and x >= high):
        kind = f"an integer in [{low}, {high})" if high is not None else {
            0: "a non-negative integer", 1: "a positive integer"}.get(low, f"an integer ≥ {low}")
        raise ValueError(f"{what} must be {kind}, got {x!r}")
    return int(x)


def check_finite(array: Any, message: str) -> None:
    """FloatingPointError(``message``, its ``{kind}`` NaN or inf) where a float array has one."""
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        kind = "NaN" if np.isnan(array).any() else "inf"
        raise FloatingPointError(f"detect_anomaly: {message.format(kind=kind)}")


class Primitive:
    """An op the engine records: ``impl(*arrays, **params)`` computes it with numpy.

    ``vjps[i](g, out, *inputs, **params)`` gives the cotangent of input i from the output's
    cotangent ``g``, written with the engine's operators so that it runs on arrays (backward)
    and on Tensors (``create_graph``, traced programs); None where there is no rule. For ops of
    any number of inputs, ``vjps`` is a function of the position giving the rule; ``vjps=None``
    means no gradient at all (comparisons). ``math`` is the rule as a formula;
    ``flops(out_shape, *in_shapes, **params)`` counts FLOPs (None: no count known); ``error``
    explains numpy's errors with ``{shapes}``, ``{error}`` and the params.

    Facts ``jit`` plans with: ``out``, impl takes ``out=`` (writes into a given buffer);
    ``fresh``, impl returns a new array, never an input or a view of one (a primitive not
    known to be fresh is taken to alias its inputs: a user's impl may return ``x`` itself);
    ``elementwise``, each output element depends on the same element of the (broadcast)
    inputs, so the result may be written into an input that dies there.

    ``batch(primitive, args, dims, **params) -> (out, out_dim)`` is its ``vmap`` rule: the op on
    a batch, ``dims[i]`` the batch axis of ``args[i]`` or None (an elementwise op needs none;
    without one, ``vmap`` runs the op once per example).
    """

    __slots__ = ("batch", "elementwise", "error", "flops", "fresh", "impl", "math", "name", "out",
                 "ruled", "vjps")

    def __init__(self, name: str, impl: Callable[..., Any],
                 vjps: Sequence[Rule | None] | Callable[[int], Rule] | None = (), math: str = "",
                 flops: Callable[..., int] | None = None, error: str = DEFAULT_ERROR, *,
                 out: bool = False, fresh: bool = False, elementwise: bool = False,
                 batch: Rule | None = None):
        self.name, self.impl, self.vjps, self.math, self.batch = name, impl, vjps, math, batch
        self.flops, self.error, self.out = flops, error, out
        self.fresh, self.elementwise = fresh or out, elementwise
        # Inputs from ``ruled`` on may lack a rule: checked at the call, when one needs a gradient.
        self.ruled = (vjps + (None,)).index(None) if type(vjps) is tuple else 1 << 30
        if isinstance(impl, np.ufunc):  # so that `array + tensor` (numpy's call) records it
            UFUNCS.setdefault(impl, self)

    def __repr__(self) -> str:
        return f"Primitive({self.name!r})"

    def on_numbers(self, *numbers: Any, **params: Any) -> Any:
        """The op on Python numbers (a weakly typed result): an int result that leaves int64,
        where numpy computes it, is an error, not a number wrapped around (numpy wraps silently:
        the same op on floats tells)."""
        result = self.impl(*numbers, **params)
        if np.asarray(result).dtype.kind in "iu" and not abs(self.impl(*[
                float(n) if type(n) is int else n for n in numbers], **params)) < 2**63:
            raise OverflowError(f"{self.name}: Python ints {numbers} overflow int64, the type a "
                                "Python int gets in the engine; use floats, or make the "
                                "argument static (static_argnums)")
        return result

    def failure(self, error: Exception, shapes: Sequence[tuple[int, ...]],
                params: dict[str, Any]) -> Exception:
        """The error an eager call (and a jit replay) raises for numpy's ``error``: the op's name
        and its explanation (a template about broadcasting only where numpy says so)."""
        template = self.error if "broadcast" in str(error) or self.error != BROADCAST_ERROR \
            else DEFAULT_ERROR
        text = template.format(shapes=" and ".join(map(str, shapes)), error=error, **params)
        return (IndexError if isinstance(error, IndexError) else ValueError)(f"{self.name}: {text}")

    def check_anomaly(self, arrays: list[Any], data: np.ndarray) -> None:
        """``detect_anomaly``: a NaN or inf in an input from outside, or one this op made."""
        for position, array in enumerate(arrays):
            check_finite(np.asarray(array), f"input {position} of op '{self.name}' (shape "
                         f"{np.shape(array)}) already holds {{kind}}: it comes from outside the "
                         "recorded ops (data or a parameter)")
        check_finite(data, f"op '{self.name}' produced {{kind}} (output shape {data.shape})")

    def __call__(self, *inputs: Any, **params: Any) -> Tensor:
        """Run the op on ``inputs`` (Tensors, arrays, numbers): a recorded node when an input
        needs a gradient or belongs to the program being traced, else a constant."""
        arrays, needs, traces, program = [], False, 0, None
        plain = weak = strong = False  # an input not a Tensor; a weakly typed Tensor; a typed one
        for x in inputs:
            if type(x) is Tensor:
                arrays.append(x._data)
                if x.requires_grad:
                    needs, traces = True, traces | x.traces
                if x.program is not None and (program is None or x.program is not program):
                    program = x.in_trace(self.name, program)
                if x.weak:
                    weak = True
                else:
                    strong = True
            else:  # an array, a number, a list: maybe not numbers, so the result is checked
                arrays.append(x)
                plain = True
        if params:
            _check_params(self.name, params)
        if weak or (plain and not strong):  # Python numbers, maybe: is the result weakly typed?
            weak = _weak(inputs, arrays, params)
        if needs and len(inputs) > self.ruled:
            rules = self.vjps + (None,) * len(inputs)  # type: ignore[operator]
            for position, x in enumerate(inputs):
                if type(x) is Tensor and x.requires_grad and rules[position] is None:
                    raise TypeError(f"{self.name}: input {position} requires grad, but the "
                                    "primitive has no VJP rule for it; give it one, or pass a "
                                    "constant (tg.stop_gradient)")
        try:
            if weak:
                data = self.on_numbers(*arrays, **params)
            else:
                data = self.impl(*arrays, **params) if params else self.impl(*arrays)
            if type(data) is not np.ndarray:  # a numpy scalar, or what a user's impl returned
                data, plain = np.asarray(data), True
            if plain and data.dtype.kind not in "biuf":
                raise TypeError(f"it gave {data.dtype} values, not numbers")
        except (ValueError, IndexError, TypeError) as error:
            if isinstance(error, (TracedValueError, CheckError)):
                raise
            for position, x in enumerate(inputs):
                if type(x) is not Tensor:  # a Tensor holds numbers (and a traced one may not
                    numeric(x, f"{self.name}: input {position}")  # be read)
            raise self.failure(error, [np.shape(a) for a in arrays], params) from None
        out = object.__new__(Tensor)
        out._data, out.grad, out.name, out.program, out.weak = data, None, None, program, weak
        out.requires_grad = grad = needs and self.vjps is not None and State.record
        if grad or program is not None:
            out.primitive, out.inputs, out.params, out.arrays = self, inputs, params, arrays
            out.traces = traces if grad else 0
            if State.tape is not None:
                State.tape.append(out)
        else:
            out.primitive = out.inputs = out.params = out.arrays = None
            out.traces = 0
        if State.anomaly:
            self.check_anomaly(arrays, data)
            if out.primitive is not None:
                _remember(out, arrays)
        return out


def _weak(inputs: tuple[Any, ...], arrays: list[Any], params: dict[str, Any]) -> bool:
    """Whether an op's result is weakly typed (as in JAX: made from Python numbers and weakly
    typed Tensors only, with no ``dtype`` param); the weak Tensors' arrays become their Python
    numbers in ``arrays``, so that numpy promotes as for the numbers (float32 stays)."""
    weak = "dtype" not in params
    for position, x in enumerate(inputs):
        if type(x) is Tensor and x.weak:
            arrays[position] = x._data.item()
        elif type(x) not in (int, float):
            weak = False
    return weak


def _check_params(name: str, params: dict[str, Any]) -> None:
    """Params are plain numbers and shapes: a Tensor's gradient would be lost there."""
    for key, param in params.items():
        if type(param) is Tensor:
            param.concrete(f"{name}'s param {key}")  # traced: raises
            raise TypeError(f"{name}: param {key} is a Tensor; params are plain numbers and "
                            "shapes (their gradient would be lost): pass numbers")


_SET_BY_OPS: Callable[..., Tensor] = cast("Callable[..., Tensor]", None)  # declares them


def _read(convert: Callable[[np.ndarray], Any], what: str,
          number: bool = False) -> Callable[[Tensor], Any]:
    """A Tensor method giving ``convert(its values)``: ``what`` reads them in Python (a
    ``number``: a value that would carry a gradient)."""

    def read(self: Tensor) -> Any:
        try:
            return convert(self.concrete(what, number))
        except (TypeError, ValueError) as error:  # numpy's words: say what the Tensor is
            if self.ndim == 0 or isinstance(error, TracedValueError):
                raise
            fix = "use .item()" if self.size == 1 else "it needs exactly one element"
            raise type(error)(f"{what} of a Tensor of shape {self.shape}: {fix} ({error})"
                              ) from None

    return read


class Tensor:
    """An n-d array that records the ops applied to it, for reverse-mode autodiff.

    ``Tensor(data, requires_grad=False, name=None)``: a leaf holding ``data``'s numbers (an int
    leaf that requires grad becomes float64). ``Tensor(t)`` of a Tensor is ``t``'s values as a
    constant: gradients stop there (``tg.stop_gradient``); in a traced program it is recomputed
    on every call.
    """

    __slots__ = ("__weakref__", "_data", "arrays", "grad", "inputs", "name", "params",
                 "primitive", "program", "requires_grad", "traces", "weak")
    _data: np.ndarray  # the numbers: read through ``value``/``.data``, which guard traced ones
    grad: np.ndarray | Tensor | None  # a Tensor after backward(create_graph=True)
    primitive: Primitive | None  # None for a leaf or a constant
    inputs: tuple[Any, ...] | None  # None for a leaf, and once backward released the node
    arrays: list[Any] | None  # the inputs' numpy values, which the rules read
    params: dict[str, Any] | None
    program: Trace | None  # the program trace this belongs to
    weak: bool  # traced from a Python number (weakly typed: it does not promote float32)
    name: str | None
    requires_grad: bool
    traces: int  # one bit per functional transform whose inputs this depends on

    def __new__(cls, data: ArrayLike, requires_grad: bool = False,
                name: str | None = None) -> Tensor:
        if type(data) is Tensor and data.program is not None:
            if requires_grad:
                raise TracedValueError(f"{data.program.name}: Tensor(x, requires_grad=True) of a "
                                       "traced value; differentiate with tg.grad inside jit")
            out = stop_gradient(data)
            out.name = name
            return out
        array = numeric(data, "Tensor: data")
        # a leaf that requires grad is a float (ints become float64, as torch.tensor(…).float())
        return leaf(array.astype(np.float64) if requires_grad and array.dtype.kind != "f"
                    else array, bool(requires_grad), 0, name)

    shape = property(lambda self: self._data.shape)
    dtype = property(lambda self: self._data.dtype)
    ndim = property(lambda self: self._data.ndim)
    size = property(lambda self: self._data.size)
    is_leaf = property(lambda self: self.primitive is None)
    op = property(lambda self: None if self.primitive is None else self.primitive.name)
    __hash__ = object.__hash__  # `==` is elementwise: identity is the hash, as for arrays in dicts

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[Tensor]:
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d Tensor")
        return (self[i] for i in range(len(self._data)))

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        op = f", op={self.op}" if self.primitive else ""
        if self.program is not None:  # its numbers are the trace's, not a later call's
            return f"Tensor(traced, shape={self.shape}, dtype={self.dtype}{grad}{op})"
        body = np.array2string(self._data, precision=4, threshold=6, edgeitems=2)
        return f"Tensor({body}, shape={self.shape}, dtype={self.dtype}{grad}{op})"

    # --- its values in Python: never while (or after) its program is traced ---------------------
    def in_trace(self, what: str, other: Trace | None = None) -> Trace:
        """This Tensor's program, which must still be traced; or ``other``, when it is deeper."""
        program = self.program
        assert program is not None
        if not program.active:
            raise TracedValueError(
                f"{what}: a Tensor of the traced program {program.name} is used outside it (kept "
                "in a global, a list or a closure while tracing?): its numbers are those of the "
                "tracing call only. Return it from the function instead")
        return other if other is not None and other.depth > program.depth else program

    def concrete(self, what: str, number: bool = False) -> np.ndarray:
        """``data`` for ``what`` (``float()``, …); a TracedValueError for a traced Tensor, or, when
        a ``number`` is read (``float()``, ``.item()``), for one that depends on the inputs of a
        transform running now (``tg.grad(f)`` inside ``f``: the number would have no gradient)."""
        if number and self.traces & ((2 << State.depth) - 2):
            raise TracedValueError(
                f"{what} reads the value of a Tensor (shape {self.shape}) that a running "
                "transform (tg.grad, vjp, …) differentiates: the number would drop its gradient "
                "silently. Compute with the ops, or take tg.stop_gradient(x) on purpose")
        if self.program is not None:
            program = self.in_trace(what)
            raise TracedValueError(
                f"{program.name}: {what} reads the value of a traced Tensor (shape {self.shape}) "
                "in Python, so the program would silently keep this call's value. Compute with "
                "the ops instead (tg.where(condition, x, y) for a choice), or make the argument "
                "static (static_argnums)")
        return self._data

    @property
    def data(self) -> np.ndarray:
        """The numbers, as a numpy array (the Tensor's own: not a copy)."""
        return self.concrete(".data")

    @data.setter
    def data(self, array: ArrayLike) -> None:
        self.concrete(".data =")
        self._data = numeric(array, "Tensor.data")

    def numpy(self) -> np.ndarray:
        """The numbers as a numpy array (the Tensor's own, as ``.data``)."""
        return self.concrete(".numpy()")

    item = _read(np.ndarray.item, ".item()", number=True)
    __bool__ = _read(bool, "bool() (an `if`, `and`, `or` or `while` on it)")
    __float__, __int__ = _read(float, "float()", number=True), _read(int, "int()")
    __index__ = _read(lambda a: a.__index__(), "an index (range(), a shape, a slice, a list index)")

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        data = self.concrete("np.asarray()")
        if self.requires_grad:
            raise TypeError("np.asarray() of a Tensor that requires grad: numpy would compute on "
                            "its numbers and drop the gradient. Use the tinygrad_nn ops, or "
                            ".data (or tg.stop_gradient) to leave the graph on purpose")
        return data.astype(dtype) if dtype is not None else data.copy() if copy else data

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        # `array + tensor` lands here: the op of the same meaning runs, so it is recorded
        if method == "__call__" and not kwargs and ufunc in UFUNCS:
            return UFUNCS[ufunc](*inputs)
        return _plain_numpy(f"np.{ufunc.__name__}", getattr(ufunc, method), inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        return _plain_numpy(f"np.{func.__name__}", func, args, kwargs)

    def detach(self) -> Tensor:
        """The same values as a constant: gradients stop here (``tg.stop_gradient``)."""
        return stop_gradient(self)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if self.primitive is not None or self.program is not None:
            raise ValueError("requires_grad_: only a leaf tensor can change requires_grad")
        if requires_grad and self._data.dtype.kind != "f":
            self._data = self._data.astype(np.float64)
        self.requires_grad = bool(requires_grad)
        return self

    def zero_grad(self) -> None:
        self.grad = None

    def __pos__(self) -> Tensor:
        return self

    # Operators and methods: the ops under numpy's names, assigned where they are defined
    # (ops.py: ``Tensor.__add__ = ...``, composites.py; autodiff.py ``backward``, graph.py
    # ``graph``).
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = _SET_BY_OPS
    __rtruediv__ = __pow__ = __rpow__ = __matmul__ = __rmatmul__ = __neg__ = _SET_BY_OPS
    __abs__ = __getitem__ = __lt__ = __le__ = __gt__ = __ge__ = __mod__ = __rmod__ = _SET_BY_OPS
    __eq__ = __ne__ = _SET_BY_OPS  # type: ignore[assignment]  # elementwise, as numpy's
    exp = log = sqrt = abs = relu = sigmoid = tanh = softplus = _SET_BY_OPS
    backward: Callable[..., None]
    graph: Callable[..., Any]
    log_sigmoid = clip = sum = mean = max = argmax = reshape = flatten = astype = _SET_BY_OPS
    transpose = swapaxes = broadcast_to = _SET_BY_OPS
    min = argmin = prod = cumsum = argsort = round = _SET_BY_OPS
    sort = squeeze = repeat = take = dot = diagonal = trace = _SET_BY_OPS  # composites.py's
    T: Tensor
    mT: Tensor  # noqa: N815 (numpy's name)


def _plain_numpy(name: str, function: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    """A numpy function on Tensors' values; an error where it would drop a gradient."""
    return function(*_plain(name, tuple(args)), **{k: _plain(name, v) for k, v in kwargs.items()})


def _plain(name: str, item: Any) -> Any:
    """``item`` with its Tensors as their numbers (a module function, not a closure calling
    itself: that would be a reference cycle per call)."""
    if type(item) is Tensor:
        if name in ("np.shape", "np.ndim", "np.size", "np.result_type"):
            return item._data  # what it is, not its values
        if item.requires_grad:
            raise TypeError(f"{name} got a Tensor that requires grad: numpy would compute on its "
                            "values and drop the gradient. Use the tinygrad_nn op (tg.sum, "
                            "tg.exp, …), or pass t.detach() to leave the graph on purpose")
        return item.concrete(name)
    if type(item) in (list, tuple):
        return type(item)(_plain(name, part) for part in item)
    return item


def leaf(data: np.ndarray, requires_grad: bool, traces: int, name: str | None = None,
         program: Trace | None = None, weak: bool = False) -> Tensor:
    """A leaf around an array its caller already checked (a transform's or a trace's input)."""
    out = object.__new__(Tensor)
    out._data, out.grad, out.name, out.requires_grad, out.traces = data, None, name, \
        requires_grad, traces
    out.primitive = out.inputs = out.params = out.arrays = None
    out.program, out.weak = program, weak
    return out


# The one primitive the ground floor needs: ``Tensor(t)`` and ``detach()`` of a traced value
# are this equation, so a replay recomputes them. It returns its input: no copy.
stop_gradient = Primitive("stop_gradient", lambda x: x, None,
                          "no gradient: the values, as a constant", lambda out, x: 0,
                          batch=lambda primitive, args, dims: (primitive(*args), dims[0]))
