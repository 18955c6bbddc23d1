"""The ground floor: ``Tensor``, ``Primitive`` and the recording switches. Imports nothing above.

A Tensor wraps a numpy array. Calling a Primitive on Tensors records an equation on its result,
as a jaxpr does: ``primitive``, ``inputs`` (Tensors or constants) and ``params`` (plain data:
axes, shapes, bounds, …). It is recorded when an input needs a gradient, or when the input
belongs to a program being traced (``jit``, ``export_onnx``, ``make_graph``); otherwise the
result is a constant. Tensor's operators and methods are the functions that ops.py (and
autodiff.py: ``backward``) register in ``OPS`` by name, so this module imports nothing above it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Union

import numpy as np

ArrayLike = Union["Tensor", np.ndarray, float, int, bool, Sequence[Any]]
Rule = Callable[..., Any]
OPS: dict[str, Callable[..., Any]] = {}  # name -> op, filled by the modules above
UFUNCS: dict[np.ufunc, Primitive] = {}  # numpy's ufunc -> the first primitive computing it


class State:
    """What every op reads: recording on, anomaly checks, the open tape, the traced program."""

    record, anomaly = True, False
    tape: list[Tensor] | None = None  # the nodes recorded while a transform or a trace runs
    program: Trace | None = None  # the program being traced, if any


class Trace:
    """A program being traced (``jit(f)``, ``make_graph``, ``export_onnx``): its Tensors carry
    it, and reading their values in Python while it runs is an error naming ``name``."""

    def __init__(self, name: str):
        self.name = name


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


def value(x: Any) -> Any:
    """The numpy value behind a Tensor; anything else as it is."""
    return x.data if type(x) is Tensor else x


def numeric(x: Any, what: str) -> np.ndarray:
    """``x`` as a numeric (bool, int or float) array, or a TypeError naming ``what``."""
    try:
        array = np.asarray(value(x))
        got = f"{type(x).__name__} of dtype {array.dtype}"
    except ValueError:  # numpy's "inhomogeneous shape"
        array, got = np.empty(0, object), f"a ragged nested {type(x).__name__} (rows differ)"
    if array.dtype.kind in "biuf":
        return array
    raise TypeError(f"{what}: expected a Tensor or a number (or a numeric numpy array), got {got}")


def check_finite(array: Any, message: str) -> None:
    """FloatingPointError(``message``, its ``{kind}`` NaN or inf) where a float array has one."""
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        kind = "NaN" if np.isnan(array).any() else "inf"
        raise FloatingPointError(f"detect_anomaly: {message.format(kind=kind)}")


class TracedValueError(TypeError):
    """A traced program's value read in Python: the program would silently depend on it."""


class Primitive:
    """An op the engine records: ``impl(*arrays, **params)`` computes it with numpy.

    ``vjps[i](g, out, *inputs, **params)`` gives the cotangent of input i from the output's
    cotangent ``g``, written with the engine's operators so that it runs on arrays (backward)
    and on Tensors (``create_graph``, traced programs); None where there is no rule. For ops of
    any number of inputs, ``vjps`` is a function of the position giving the rule; ``vjps=None``
    means no gradient at all (comparisons). ``math`` is the rule as a formula;
    ``flops(out_shape, *in_shapes, **params)`` counts FLOPs (None: no count known); ``error``
    explains numpy's errors with ``{shapes}``, ``{error}`` and the params; ``out`` says that
    ``impl`` takes ``out=`` (for ``jit``'s buffers).
    """

    __slots__ = ("error", "flops", "impl", "math", "name", "out", "ruled", "vjps")

    def __init__(self, name: str, impl: Callable[..., Any],
                 vjps: Sequence[Rule | None] | Callable[[int], Rule] | None = (), math: str = "",
                 flops: Callable[..., int] | None = None,
                 error: str = "{error} (input shapes {shapes})", out: bool = False):
        self.name, self.impl, self.vjps, self.math = name, impl, vjps, math
        self.flops, self.error, self.out = flops, error, out
        # Inputs from ``ruled`` on may lack a rule: checked at the call, when one needs a gradient.
        self.ruled = (vjps + (None,)).index(None) if type(vjps) is tuple else 1 << 30
        if isinstance(impl, np.ufunc):  # so that `array + tensor` (numpy's call) records it
            UFUNCS.setdefault(impl, self)

    def __repr__(self) -> str:
        return f"Primitive({self.name!r})"

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
        arrays, needs, traces, program, plain = [], False, 0, None, False
        for x in inputs:
            if type(x) is Tensor:
                arrays.append(x.data)
                if x.requires_grad:
                    needs, traces = True, traces | x.traces
                if x.program is not None and x.program is State.program:
                    program = x.program
            else:  # an array, a number, a list: maybe not numbers, so the result is checked
                arrays.append(x)
                plain = True
        if needs and len(inputs) > self.ruled:
            rules = self.vjps + (None,) * len(inputs)  # type: ignore[operator]
            for position, x in enumerate(inputs):
                if type(x) is Tensor and x.requires_grad and rules[position] is None:
                    raise TypeError(f"{self.name}: input {position} requires grad, but the "
                                    "primitive has no VJP rule for it; give it one, or pass a "
                                    "constant (tg.stop_gradient)")
        try:
            data = self.impl(*arrays, **params) if params else self.impl(*arrays)
            if type(data) is not np.ndarray:  # a numpy scalar, or what a user's impl returned
                data, plain = np.asarray(data), True
            if plain and data.dtype.kind not in "biuf":
                raise TypeError(f"it gave {data.dtype} values, not numbers")
        except (ValueError, IndexError, TypeError) as error:
            for position, x in enumerate(inputs):
                numeric(x, f"{self.name}: input {position}")
            shapes = " and ".join(str(np.shape(a)) for a in arrays)
            text = f"{self.name}: {self.error.format(shapes=shapes, error=error, **params)}"
            raise (IndexError if isinstance(error, IndexError) else ValueError)(text) from None
        out = Tensor.__new__(Tensor)
        out.data, out.grad, out.name, out.program = data, None, None, program
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
        return out


def _method(op: str, reflected: bool = False, binary: bool = False) -> Callable[..., Tensor]:
    """A Tensor method calling the op registered as ``op`` (``reflected``: operands swapped)."""
    if reflected:
        return lambda self, other: OPS[op](other, self)
    if binary:  # the operators: no argument packing on the hot path
        return lambda self, other: OPS[op](self, other)
    return lambda self, *args, **params: OPS[op](self, *args, **params)


def _read(convert: Callable[[np.ndarray], Any], what: str) -> Callable[[Tensor], Any]:
    """A Tensor method giving ``convert(its values)``: ``what`` reads them in Python."""

    def read(self: Tensor) -> Any:
        try:
            return convert(self.concrete(what))
        except (TypeError, ValueError) as error:  # numpy's words: say what the Tensor is
            if self.ndim == 0 or isinstance(error, TracedValueError):
                raise
            fix = "use .item()" if self.size == 1 else "it needs exactly one element"
            raise type(error)(f"{what} of a Tensor of shape {self.shape}: {fix} ({error})"
                              ) from None

    return read


class Tensor:
    """An n-d array that records the ops applied to it, for reverse-mode autodiff."""

    __slots__ = ("__weakref__", "arrays", "data", "grad", "inputs", "name", "params",
                 "primitive", "program", "requires_grad", "traces")
    grad: np.ndarray | Tensor | None  # a Tensor after backward(create_graph=True)
    primitive: Primitive | None  # None for a leaf or a constant
    inputs: tuple[Any, ...] | None  # None for a leaf, and once backward released the node
    arrays: list[Any] | None  # the inputs' numpy values, which the rules read
    params: dict[str, Any] | None
    program: Trace | None  # the program trace this belongs to
    # and ``traces``: one bit per functional transform whose inputs this depends on

    def __init__(self, data: ArrayLike, requires_grad: bool = False, name: str | None = None):
        array = numeric(data, "Tensor: data")
        # a leaf that requires grad is a float (ints become float64, as torch.tensor(…).float())
        self.data = array.astype(np.float64) if requires_grad and array.dtype.kind != "f" else array
        self.grad, self.requires_grad, self.name, self.traces = None, bool(requires_grad), name, 0
        self.primitive = self.inputs = self.params = self.arrays = self.program = None

    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    is_leaf = property(lambda self: self.primitive is None)
    op = property(lambda self: None if self.primitive is None else self.primitive.name)
    __hash__ = object.__hash__  # `==` is elementwise: identity is the hash, as for arrays in dicts

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        body = np.array2string(self.data, precision=4, threshold=6, edgeitems=2)
        op = f", op={self.op}" if self.primitive else ""
        return f"Tensor({body}, shape={self.shape}, dtype={self.dtype}{grad}{op})"

    # --- its values in Python: never while its program is traced ------------------------------
    def concrete(self, what: str) -> np.ndarray:
        """``data`` for ``what`` (``float()``, …); a TracedValueError inside a program trace."""
        if self.program is not None and self.program is State.program:
            raise TracedValueError(
                f"{self.program.name}: {what} reads the value of a traced Tensor (shape "
                f"{self.shape}) in Python, so the program would silently keep this call's value. "
                "Compute with the ops instead (tg.where(condition, x, y) for a choice), or make "
                "the argument static (static_argnums)")
        return self.data

    numpy = _read(np.asarray, ".numpy()")
    item = _read(np.ndarray.item, ".item()")
    __bool__ = _read(bool, "bool() (an `if`, `and`, `or` or `while` on it)")
    __float__, __int__ = _read(float, "float()"), _read(int, "int()")

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        data = self.concrete("np.asarray()")
        return data.astype(dtype) if dtype is not None else data.copy() if copy else data

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        # `array + tensor` lands here: the op of the same meaning runs, so it is recorded
        if method == "__call__" and not kwargs and ufunc in UFUNCS:
            return UFUNCS[ufunc](*inputs)
        return _plain_numpy(f"np.{ufunc.__name__}", getattr(ufunc, method), inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        return _plain_numpy(f"np.{func.__name__}", func, args, kwargs)

    def detach(self) -> Tensor:
        """The same data as a constant: gradients stop here."""
        return Tensor(self.data)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if self.primitive is not None:
            raise ValueError("requires_grad_: only a leaf tensor can change requires_grad")
        self.__init__(self.data, requires_grad, self.name)  # type: ignore[misc]
        return self

    def zero_grad(self) -> None:
        self.grad = None

    def __pos__(self) -> Tensor:
        return self

    # --- operators and methods: the ops registered under these names ---------------------------
    __add__, __sub__, __mul__, __truediv__, __pow__, __matmul__ = (
        _method(op, binary=True) for op in ("add", "sub", "mul", "div", "power", "matmul"))
    __radd__, __rsub__, __rmul__, __rtruediv__, __rpow__, __rmatmul__ = (
        _method(op, reflected=True) for op in ("add", "sub", "mul", "div", "power", "matmul"))
    __neg__, __abs__, __getitem__ = _method("neg"), _method("abs"), _method("getitem")
    __lt__, __le__, __gt__, __ge__, __eq__, __ne__ = (  # type: ignore[assignment]
        _method(op) for op in ("less", "less_equal", "greater", "greater_equal", "equal",
                               "not_equal"))
    T = property(_method("transpose"))
    mT = property(lambda self: OPS["swapaxes"](self, -1, -2))  # noqa: N815 (numpy's name)
    (backward, graph, exp, log, sqrt, abs, relu, sigmoid, tanh, softplus, log_sigmoid, clip, sum,
     mean, max, argmax, reshape, flatten, astype, transpose, swapaxes, broadcast_to) = (
        _method(op) for op in ("backward", "graph", "exp", "log", "sqrt", "abs", "relu", "sigmoid",
                               "tanh", "softplus", "log_sigmoid", "clip", "sum", "mean", "max",
                               "argmax", "reshape", "flatten", "astype", "transpose", "swapaxes",
                               "broadcast_to"))


def _plain_numpy(name: str, function: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    """A numpy function on Tensors' values; an error where it would drop a gradient."""

    def plain(item: Any) -> Any:
        if type(item) is Tensor:
            if name in ("np.shape", "np.ndim", "np.size", "np.result_type"):
                return item.data  # what it is, not its values
            if item.requires_grad:
                raise TypeError(f"{name} got a Tensor that requires grad: numpy would compute on "
                                "its values and drop the gradient. Use the tinygrad_nn op (tg.sum, "
                                "tg.exp, …), or pass t.detach() to leave the graph on purpose")
            return item.concrete(name)
        return type(item)(plain(part) for part in item) if type(item) in (list, tuple) else item

    return function(*plain(tuple(args)), **{key: plain(v) for key, v in kwargs.items()})


def input_leaf(data: np.ndarray, traces: int) -> Tensor:
    """A leaf that requires grad around a float array (a transform's input), made without the
    checks its caller already made."""
    out = Tensor.__new__(Tensor)
    out.data, out.grad, out.name, out.requires_grad, out.traces = data, None, None, True, traces
    out.primitive = out.inputs = out.params = out.arrays = out.program = None
    return out
