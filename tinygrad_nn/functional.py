"""Functional transforms, as in JAX: ``vjp``, and ``grad`` / ``value_and_grad`` built on it.

Inputs are pytrees of numpy arrays, numbers or Tensors. Each input leaf becomes a fresh
leaf Tensor for the duration of one call, so nothing outside is mutated or left behind.
Called inside another transform (``grad(grad(f))``), the backward pass is recorded and
the results are Tensors the outer transform differentiates; at the top level they are
numpy arrays.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from typing_extensions import Self  # typing.Self is 3.11+

from tinygrad_nn import ops
from tinygrad_nn.autodiff import backprop, make_seed, owned
from tinygrad_nn.pytree import TreeDef, argument_names, tree_flatten, tree_unflatten
from tinygrad_nn.tensor import ArrayLike, Tensor, _Mode, enable_grad, input_leaf


class _Trace:
    """How many transforms are running a function right now (above 0: record backward)."""

    depth = 0
    # While graph inspection runs a function: the output of each function a transform traces
    # inside it, which tells the forward pass from the backward pass (graph.make_graph).
    outputs: list[Tensor] | None = None


class tracing:  # noqa: N801  (used like contextlib's context managers)
    """Run a function under a transform: recording on, onto a tape of its own.

    ``bit`` marks what depends on this transform's inputs; ``tape`` lists the nodes
    recorded inside, in order (they also join the enclosing transform's tape).
    """

    def __enter__(self) -> Self:
        self.recording, self.outer_tape = _Mode.record, _Mode.tape
        _Trace.depth += 1
        self.bit = 1 << _Trace.depth
        self.tape: list[Tensor] = []
        _Mode.record, _Mode.tape = True, self.tape
        return self

    def __exit__(self, *exc_info: object) -> None:
        _Trace.depth -= 1
        _Mode.record, _Mode.tape = self.recording, self.outer_tape
        if self.outer_tape is not None:
            self.outer_tape.extend(self.tape)


def is_tracing() -> bool:
    return _Trace.depth > 0


class _NotNumericError(TypeError):
    """An input leaf that is not a number (reported with its name by ``_not_numeric``)."""


def _input_tensor(leaf: Any, bit: int) -> Tensor:
    """A fresh leaf for one input (or, inside an outer transform, a node on its graph)."""
    if type(leaf) is not np.ndarray:
        if isinstance(leaf, Tensor):
            if leaf.requires_grad and _Trace.depth > 1:
                node = ops.identity(leaf)
                node.traces |= bit
                return node
            leaf = leaf.data
        else:
            leaf = np.asarray(leaf)
    kind = leaf.dtype.kind
    if kind != "f":
        if kind not in "biu":
            raise _NotNumericError
        leaf = leaf.astype(np.float64)  # as Tensor(ints, requires_grad=True) does
    return input_leaf(leaf, bit)


def _not_numeric(primals: tuple[Any, ...], leaves: list[Any], caller: str) -> TypeError:
    for name, leaf in zip(argument_names(primals), leaves):
        if np.asarray(leaf.data if isinstance(leaf, Tensor) else leaf).dtype.kind not in "biuf":
            return TypeError(
                f"{caller}: the input leaf '{name}' is of type {type(leaf).__name__} "
                f"(dtype {np.asarray(leaf).dtype}); expected a numpy array, a number or a Tensor"
            )
    return TypeError(f"{caller}: an input leaf is not numeric")


class _Traced:
    """One run of ``f`` on fresh input leaves: what a backward pass needs.

    ``argnums`` picks the differentiated arguments: one index (the gradient then has that
    argument's structure) or a tuple of them (a tuple of structures).
    """

    def __init__(
        self,
        f: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        argnums: int | tuple[int, ...],
        has_aux: bool,
        caller: str,
    ):
        single = isinstance(argnums, int)
        positions = (argnums,) if isinstance(argnums, int) else argnums
        try:
            differentiated = [args[position] for position in positions]
        except IndexError:
            position = next(p for p in positions if not -len(args) <= p < len(args))
            raise ValueError(
                f"{caller}: argnums {argnums} asks for argument {position}, "
                f"but the function got {len(args)} positional arguments"
            ) from None
        # One argument is a pytree of its own (its gradient has its structure); several, a tuple.
        primals = differentiated[0] if single else tuple(differentiated)
        leaves, self.treedef = tree_flatten(primals)
        with tracing() as trace:
            try:
                self.inputs = [_input_tensor(leaf, trace.bit) for leaf in leaves]
            except _NotNumericError:
                raise _not_numeric(tuple(differentiated), leaves, caller) from None
            traced = tree_unflatten(self.treedef, self.inputs)
            full = list(args)
            for position, tree in zip(positions, [traced] if single else traced):
                full[position] = tree
            result = f(*full, **kwargs)
        self.trace = trace
        self.aux: Any = None
        if has_aux:
            if not (isinstance(result, tuple) and len(result) == 2):
                raise TypeError(
                    f"{caller}: with has_aux=True the function must return (output, aux); "
                    f"it returned {type(result).__name__}"
                )
            result, self.aux = result
        self.out = _as_output(result, caller)
        if _Trace.outputs is not None:
            _Trace.outputs.append(self.out)

    def pull_back(self, seed: Any, retain_graph: bool) -> list[Any]:
        """Cotangents of the inputs, in leaf order, for the output's cotangent ``seed``."""
        out = self.out
        nested = _Trace.depth > 0
        results: dict[Tensor, Any] = {}
        if out.requires_grad and out.traces & self.trace.bit:
            tape, bit = reversed(self.trace.tape), self.trace.bit
            if nested:  # record the backward pass: the enclosing transform differentiates it
                seed = seed if isinstance(seed, Tensor) else Tensor(seed)
                with enable_grad():
                    results = backprop(
                        out, seed, order=tape, targets=self.inputs, trace=bit,
                        create_graph=True, retain_graph=True,
                    )
            else:
                results = backprop(
                    out, seed, order=tape, targets=self.inputs, trace=bit,
                    retain_graph=retain_graph,
                )
        handed_out: set[int] = set()
        grads = []
        for tensor in self.inputs:
            found = results.get(tensor)
            if found is None:
                zeros = np.zeros(tensor.shape, dtype=tensor.dtype)
                grads.append(Tensor(zeros) if nested else zeros)
            else:
                grads.append(found if nested else owned(found, handed_out))
        return grads

    def output_value(self) -> Any:
        return self.out if _Trace.depth > 0 else self.out.data


def _as_output(result: Any, caller: str) -> Tensor:
    if isinstance(result, Tensor):
        return result
    array = np.asarray(result) if isinstance(result, (int, float, np.ndarray, np.number)) else None
    if array is None or array.dtype.kind not in "biuf":
        raise TypeError(
            f"{caller}: the function must return a Tensor or a number; "
            f"it returned {type(result).__name__}"
        )
    return Tensor(array)  # does not depend on the inputs: every gradient is zero


def vjp(
    f: Callable[..., Any], *primals: Any, has_aux: bool = False
) -> tuple[Any, Callable[[ArrayLike], tuple[Any, ...]]] | tuple[Any, Callable[..., Any], Any]:
    """``(f(*primals), vjp_fn)``: ``vjp_fn(cotangent)`` gives one gradient pytree per primal.

    ``vjp_fn`` may be called more than once (the graph is kept while it lives).
    """
    traced = _Traced(f, primals, {}, tuple(range(len(primals))), has_aux, "vjp")

    def vjp_fn(cotangent: ArrayLike) -> tuple[Any, ...]:
        seed: Any = make_seed(traced.out, cotangent, "vjp_fn")
        if isinstance(cotangent, Tensor) and is_tracing():
            seed = cotangent  # recorded, so an outer transform differentiates through it
        grads = traced.pull_back(seed, retain_graph=True)
        return tuple(tree_unflatten(traced.treedef, grads))

    if has_aux:
        return traced.output_value(), vjp_fn, traced.aux
    return traced.output_value(), vjp_fn


def value_and_grad(
    f: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """A function returning ``(f(*args), gradient)`` (``((f, aux), gradient)`` with has_aux).

    The gradient has the structure of ``args[argnums]`` (a tuple of them when argnums is a
    sequence), with numpy arrays of the inputs' dtypes. ``f`` must return a scalar.
    """
    argnums = argnums if isinstance(argnums, int) else tuple(argnums)

    @functools.wraps(f)
    def value_and_grad_f(*args: Any, **kwargs: Any) -> Any:
        traced = _Traced(f, args, kwargs, argnums, has_aux, "grad")
        if traced.out.size != 1:
            raise TypeError(
                f"grad: the function must return a scalar; it returned shape {traced.out.shape}. "
                "Reduce it (e.g. .sum() or .mean()), or use vjp for a non-scalar output"
            )
        seed = np.ones(traced.out.shape, dtype=traced.out.dtype)
        gradient = tree_unflatten(traced.treedef, traced.pull_back(seed, retain_graph=False))
        value = traced.output_value()
        return ((value, traced.aux) if has_aux else value), gradient

    return value_and_grad_f


def grad(
    f: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """A function returning the gradient of scalar ``f`` (``(gradient, aux)`` with has_aux)."""
    value_and_grad_f = value_and_grad(f, argnums, has_aux)

    @functools.wraps(f)
    def grad_f(*args: Any, **kwargs: Any) -> Any:
        value, gradient = value_and_grad_f(*args, **kwargs)
        return (gradient, value[1]) if has_aux else gradient

    return grad_f


__all__ = ["TreeDef", "grad", "is_tracing", "tracing", "value_and_grad", "vjp"]
