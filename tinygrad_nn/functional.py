"""Functional transforms, as in JAX: ``vjp``, and ``grad`` / ``value_and_grad`` built on it.

Inputs are pytrees of numpy arrays, numbers or Tensors. Each input leaf becomes a fresh
leaf Tensor for the duration of one call, so nothing outside is mutated or left behind.
Called inside another transform (``grad(grad(f))``), the backward pass is recorded and
the results are Tensors the outer transform differentiates; at the top level they are
numpy arrays.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from tinygrad_nn import ops
from tinygrad_nn.autodiff import backprop, make_seed, owned
from tinygrad_nn.pytree import TreeDef, argument_names, tree_flatten, tree_unflatten
from tinygrad_nn.tensor import ArrayLike, Tensor, enable_grad


class _Trace:
    """How many transforms are running a function right now (above 0: record backward)."""

    depth = 0


@contextmanager
def tracing() -> Iterator[None]:
    """Run a function under a transform: recording on, and nested backward passes recorded."""
    _Trace.depth += 1
    try:
        with enable_grad():
            yield
    finally:
        _Trace.depth -= 1


def is_tracing() -> bool:
    return _Trace.depth > 0


def _input_tensor(leaf: Any, name: str, caller: str) -> Tensor:
    """A fresh leaf for one input (or, inside an outer transform, a node on its graph)."""
    if isinstance(leaf, Tensor):
        if leaf.requires_grad and _Trace.depth > 0:
            return ops.identity(leaf)
        data = leaf.data
    else:
        data = np.asarray(leaf)
        if data.dtype.kind not in "biuf":
            raise TypeError(
                f"{caller}: the input leaf '{name}' is a {type(leaf).__name__} "
                f"(dtype {data.dtype}); expected a numpy array, a number or a Tensor"
            )
    return Tensor(data, requires_grad=True)


class _Traced:
    """One run of ``f`` on fresh input leaves: what a backward pass needs."""

    def __init__(self, f: Callable[..., Any], primals: tuple[Any, ...], has_aux: bool, caller: str):
        leaves, self.treedef = tree_flatten(primals)
        names = argument_names(primals)
        self.leaves: list[Any] = leaves
        self.inputs = [_input_tensor(leaf, name, caller) for leaf, name in zip(leaves, names)]
        with tracing():
            result = f(*tree_unflatten(self.treedef, self.inputs))
        self.aux: Any = None
        if has_aux:
            if not (isinstance(result, tuple) and len(result) == 2):
                raise TypeError(
                    f"{caller}: with has_aux=True the function must return (output, aux); "
                    f"it returned {type(result).__name__}"
                )
            result, self.aux = result
        self.out = _as_output(result, caller)

    def pull_back(self, seed: Any, retain_graph: bool) -> list[Any]:
        """Cotangents of the inputs, in leaf order, for the output's cotangent ``seed``."""
        out = self.out
        nested = _Trace.depth > 0
        results: dict[int, tuple[Tensor, Any]] = {}
        if out.requires_grad:
            if nested:
                seed = seed if isinstance(seed, Tensor) else Tensor(seed)
                with enable_grad():
                    results = backprop(out, seed, self.inputs, create_graph=True, retain_graph=True)
            else:
                results = backprop(out, seed, self.inputs, retain_graph=retain_graph)
        handed_out: set[int] = set()
        grads = []
        for tensor in self.inputs:
            found = results.get(id(tensor))
            if found is None:
                zeros = np.zeros(tensor.shape, dtype=tensor.dtype)
                grads.append(Tensor(zeros) if nested else zeros)
            else:
                grads.append(found[1] if nested else owned(found[1], handed_out))
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
    traced = _Traced(f, primals, has_aux, "vjp")

    def vjp_fn(cotangent: ArrayLike) -> tuple[Any, ...]:
        seed = cotangent if isinstance(cotangent, Tensor) else make_seed(
            traced.out, cotangent, "vjp_fn"
        )
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
    positions = (argnums,) if isinstance(argnums, int) else tuple(argnums)

    @functools.wraps(f)
    def value_and_grad_f(*args: Any, **kwargs: Any) -> Any:
        for position in positions:
            if not -len(args) <= position < len(args):
                raise ValueError(
                    f"grad: argnums {argnums} asks for argument {position}, "
                    f"but the function got {len(args)} positional arguments"
                )

        def f_of_differentiated(*differentiated: Any) -> Any:
            full = list(args)
            for position, arg in zip(positions, differentiated):
                full[position] = arg
            return f(*full, **kwargs)

        traced = _Traced(
            f_of_differentiated, tuple(args[p] for p in positions), has_aux, "grad"
        )
        if traced.out.size != 1:
            raise TypeError(
                f"grad: the function must return a scalar; it returned shape {traced.out.shape}. "
                "Reduce it (e.g. .sum() or .mean()), or use vjp for a non-scalar output"
            )
        seed = np.ones(traced.out.shape, dtype=traced.out.dtype)
        grads = tree_unflatten(traced.treedef, traced.pull_back(seed, retain_graph=False))
        gradient = grads[0] if isinstance(argnums, int) else grads
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
