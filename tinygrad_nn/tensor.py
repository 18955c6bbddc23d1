"""The Tensor: a numpy array plus the record of the op that made it.

A Tensor is its own graph node. A leaf has ``op is None``; a recorded result keeps
``op`` (the op's name), ``args`` (its inputs: Tensors or plain constants), ``saved``
(the inputs' numpy values) and ``vjps`` (one vector-Jacobian rule per input,
``rule(g, out, *inputs) -> cotangent of that input``, None where the input needs none).
Nothing is recorded unless an input requires grad and recording is on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Union

import numpy as np
from typing_extensions import Self  # typing.Self is 3.11+

ArrayLike = Union["Tensor", np.ndarray, float, int, bool, Sequence[Any]]
Rule = Callable[..., Any]


class _Mode:
    """Process-wide switches read on every op: recording and anomaly detection."""

    record = True
    detect_anomaly = False
    # While a functional transform runs its function, the nodes it records, in order.
    tape: list[Tensor] | None = None


@contextmanager
def no_grad() -> Iterator[None]:
    """Record nothing inside the block: results are constants."""
    previous, _Mode.record = _Mode.record, False
    try:
        yield
    finally:
        _Mode.record = previous


@contextmanager
def enable_grad() -> Iterator[None]:
    """Record again inside a ``no_grad`` block (used to record a backward pass)."""
    previous, _Mode.record = _Mode.record, True
    try:
        yield
    finally:
        _Mode.record = previous


@contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise at the first op whose output holds NaN or inf, naming that op."""
    previous, _Mode.detect_anomaly = _Mode.detect_anomaly, True
    try:
        yield
    finally:
        _Mode.detect_anomaly = previous


def is_grad_enabled() -> bool:
    return _Mode.record


def _value(data: Any) -> Any:
    return data.data if isinstance(data, Tensor) else data


class Tensor:
    """An n-d array that records the ops applied to it, for reverse-mode autodiff."""

    __slots__ = (
        "__weakref__",
        "args",
        "data",
        "grad",
        "name",
        "op",
        "requires_grad",
        "saved",
        "traces",
        "vjps",
    )
    # numpy must hand binary ops with a Tensor on the right back to the Tensor's reflected op.
    __array_ufunc__ = None

    data: np.ndarray
    grad: np.ndarray | Tensor | None  # a Tensor after backward(create_graph=True)
    requires_grad: bool
    op: str | None
    args: tuple[Any, ...] | None
    saved: tuple[Any, ...] | None
    vjps: tuple[Rule | None, ...] | None
    name: str | None
    # One bit per functional transform whose inputs this tensor depends on (see functional).
    traces: int

    def __init__(self, data: ArrayLike, requires_grad: bool = False, name: str | None = None):
        array = data if type(data) is np.ndarray else np.asarray(_value(data))
        kind = array.dtype.kind
        if kind != "f":
            if kind not in "biu":
                raise TypeError(
                    f"Tensor: expected numeric data, got dtype {array.dtype} "
                    f"(from {type(data).__name__})"
                )
            if requires_grad:
                array = array.astype(np.float64)
        self.data = array
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.op = self.args = self.saved = self.vjps = None
        self.traces = 0
        self.name = name

    # --- what it is ------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return self.op is None

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float:
        return self.data.item()

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        op = f", op={self.op}" if self.op else ""
        body = np.array2string(self.data, precision=4, threshold=6, edgeitems=2)
        return f"Tensor({body}, shape={self.shape}, dtype={self.dtype}{grad}{op})"

    def __bool__(self) -> bool:
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.data)

    # `==` is elementwise, so identity is the hash, as for numpy arrays held in dicts.
    __hash__ = object.__hash__

    # --- graph -----------------------------------------------------------------------
    def backward(
        self,
        grad: ArrayLike | None = None,
        retain_graph: bool = False,
        create_graph: bool = False,
    ) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad."""
        from tinygrad_nn.autodiff import backward

        backward(self, grad, retain_graph=retain_graph, create_graph=create_graph)

    def detach(self) -> Tensor:
        """The same data as a constant: gradients stop here."""
        return Tensor(self.data)

    def requires_grad_(self, requires_grad: bool = True) -> Self:
        if self.op is not None:
            raise ValueError("requires_grad_: only a leaf tensor can change requires_grad")
        if requires_grad and self.data.dtype.kind != "f":
            self.data = self.data.astype(np.float64)
        self.requires_grad = requires_grad
        return self

    def zero_grad(self) -> None:
        self.grad = None

    def graph(self) -> Any:
        """The recorded graph that produced this tensor, for printing or drawing."""
        from tinygrad_nn.graph import graph_of

        return graph_of(self)

    # --- arithmetic ------------------------------------------------------------------
    def __add__(self, other: ArrayLike) -> Tensor:
        return _ops.add(self, other)

    def __radd__(self, other: ArrayLike) -> Tensor:
        return _ops.add(other, self)

    def __sub__(self, other: ArrayLike) -> Tensor:
        return _ops.sub(self, other)

    def __rsub__(self, other: ArrayLike) -> Tensor:
        return _ops.sub(other, self)

    def __mul__(self, other: ArrayLike) -> Tensor:
        return _ops.mul(self, other)

    def __rmul__(self, other: ArrayLike) -> Tensor:
        return _ops.mul(other, self)

    def __truediv__(self, other: ArrayLike) -> Tensor:
        return _ops.div(self, other)

    def __rtruediv__(self, other: ArrayLike) -> Tensor:
        return _ops.div(other, self)

    def __pow__(self, other: ArrayLike) -> Tensor:
        return _ops.power(self, other)

    def __rpow__(self, other: ArrayLike) -> Tensor:
        return _ops.power(other, self)

    def __matmul__(self, other: ArrayLike) -> Tensor:
        return _ops.matmul(self, other)

    def __rmatmul__(self, other: ArrayLike) -> Tensor:
        return _ops.matmul(other, self)

    def __neg__(self) -> Tensor:
        return _ops.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return _ops.abs(self)

    def __getitem__(self, index: Any) -> Tensor:
        return _ops.getitem(self, index)

    # Comparisons give constant tensors: they have no gradient.
    def __lt__(self, other: ArrayLike) -> Tensor:
        return Tensor(self.data < _ops.value(other))

    def __le__(self, other: ArrayLike) -> Tensor:
        return Tensor(self.data <= _ops.value(other))

    def __gt__(self, other: ArrayLike) -> Tensor:
        return Tensor(self.data > _ops.value(other))

    def __ge__(self, other: ArrayLike) -> Tensor:
        return Tensor(self.data >= _ops.value(other))

    def __eq__(self, other: object) -> Tensor:  # type: ignore[override]
        return Tensor(self.data == _ops.value(other))

    def __ne__(self, other: object) -> Tensor:  # type: ignore[override]
        return Tensor(self.data != _ops.value(other))

    # --- methods ---------------------------------------------------------------------
    @property
    def T(self) -> Tensor:
        return _ops.transpose(self)

    def exp(self) -> Tensor:
        return _ops.exp(self)

    def log(self) -> Tensor:
        return _ops.log(self)

    def sqrt(self) -> Tensor:
        return _ops.sqrt(self)

    def abs(self) -> Tensor:
        return _ops.abs(self)

    def relu(self) -> Tensor:
        return _ops.relu(self)

    def sigmoid(self) -> Tensor:
        return _ops.sigmoid(self)

    def tanh(self) -> Tensor:
        return _ops.tanh(self)

    def softplus(self) -> Tensor:
        return _ops.softplus(self)

    def log_sigmoid(self) -> Tensor:
        return _ops.log_sigmoid(self)

    def clip(self, low: float | None, high: float | None) -> Tensor:
        return _ops.clip(self, low, high)

    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return _ops.sum(self, axis, keepdims)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return _ops.mean(self, axis, keepdims)

    def max(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return _ops.max(self, axis, keepdims)

    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        return _ops.reshape(self, shape[0] if len(shape) == 1 else shape)  # type: ignore[arg-type]

    def transpose(self, *axes: int | Sequence[int]) -> Tensor:
        return _ops.transpose(self, (axes[0] if len(axes) == 1 else axes) or None)  # type: ignore[arg-type]

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        return _ops.swapaxes(self, axis1, axis2)

    def flatten(self) -> Tensor:
        return _ops.reshape(self, (-1,))

    def broadcast_to(self, shape: Sequence[int]) -> Tensor:
        return _ops.broadcast_to(self, tuple(shape))

    def astype(self, dtype: Any) -> Tensor:
        return _ops.astype(self, dtype)


def record(data: Any, op: str, args: tuple[Any, ...], vjps: tuple[Rule | None, ...]) -> Tensor:
    """Wrap an op's result; record the op when an input requires grad and recording is on.

    ``args`` are the op's inputs (Tensors or constants); ``vjps[i]`` is the rule for
    ``args[i]`` (None where that input has no gradient).
    """
    saved = tuple(arg.data if isinstance(arg, Tensor) else arg for arg in args)
    needs = [isinstance(arg, Tensor) and arg.requires_grad for arg in args]
    needed = tuple(rule if need else None for rule, need in zip(vjps, needs))
    traces = 0
    for arg, need in zip(args, needs):
        if need:
            traces |= arg.traces
    return result(data, op, args, saved, needed, any(needs), traces)


def result(
    data: Any,
    op: str,
    args: tuple[Any, ...],
    saved: tuple[Any, ...],
    vjps: tuple[Rule | None, ...],
    requires_grad: bool,
    traces: int,
) -> Tensor:
    """``record`` for ops that already know their inputs' values (``saved``), which inputs
    need a gradient (``vjps[i]`` is None for the others) and the union of their ``traces``:
    the hot path."""
    out = Tensor.__new__(Tensor)
    # numpy gives 0-d results back as numpy scalars; a Tensor always holds an ndarray.
    out.data = data if type(data) is np.ndarray else np.asarray(data)
    out.grad = None
    out.name = None
    if requires_grad and _Mode.record:
        out.requires_grad = True
        out.op, out.args, out.saved, out.vjps, out.traces = op, args, saved, vjps, traces
        if _Mode.tape is not None:
            _Mode.tape.append(out)
    else:
        out.requires_grad = False
        out.op = out.args = out.saved = out.vjps = None
        out.traces = 0
    if _Mode.detect_anomaly:
        _check_finite(out.data, op, args)
    return out


def input_leaf(data: np.ndarray, traces: int) -> Tensor:
    """A leaf that requires grad around a float array: a transform's input, made per call
    (``Tensor(data, requires_grad=True)`` without the checks its caller already made)."""
    out = Tensor.__new__(Tensor)
    out.data, out.grad, out.name, out.requires_grad, out.traces = data, None, None, True, traces
    out.op = out.args = out.saved = out.vjps = None
    return out


def _check_finite(data: np.ndarray, op: str, args: tuple[Any, ...]) -> None:
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        shapes = ", ".join(str(np.shape(_ops.value(arg))) for arg in args)
        kind = "NaN" if np.isnan(data).any() else "inf"
        raise FloatingPointError(
            f"detect_anomaly: op '{op}' produced {kind} (output shape {data.shape}, "
            f"input shapes {shapes})"
        )


from tinygrad_nn import ops as _ops  # noqa: E402  (ops builds on Tensor; Tensor's methods call ops)
