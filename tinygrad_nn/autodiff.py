"""Reverse mode: walk the recorded graph from an output back to the tensors that need it.

One walk serves both ``Tensor.backward`` (accumulate into every leaf's ``.grad``) and the
functional transforms (return the cotangents of chosen targets). The order is built
without recursion, cotangents are popped as soon as their node is done, and a VJP runs
only for an input that needs a gradient.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from functools import lru_cache
from typing import Any

import numpy as np

from tinygrad_nn.tensor import ArrayLike, Tensor, _Mode, enable_grad


class GraphReleasedError(RuntimeError):
    """Backward through a graph whose saved values were already let go."""


def toposort(root: Tensor, stop_at: frozenset[Tensor] = frozenset()) -> list[Tensor]:
    """Tensors that need a gradient and lead to ``root``: every node before its inputs.

    Iterative depth-first search, so a chain of any depth works. Nodes in ``stop_at`` are
    kept but not walked past.
    """
    post_order: list[Tensor] = []
    visited: set[Tensor] = {root}
    # Each entry: a node and an iterator over the inputs still to visit.
    stack = [(root, iter(root.args if root.args is not None and root not in stop_at else ()))]
    while stack:
        node, inputs = stack[-1]
        for arg in inputs:
            if type(arg) is Tensor and arg.requires_grad and arg not in visited:
                visited.add(arg)
                walk = arg.args is not None and arg not in stop_at
                stack.append((arg, iter(arg.args if walk else ())))  # type: ignore[arg-type]
                break
        else:
            stack.pop()
            post_order.append(node)
    post_order.reverse()
    return post_order


def sum_to(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum a broadcast cotangent back to ``shape``: extra leading axes, then size-1 axes."""
    axes = _broadcast_axes(g.shape, shape)
    if type(g) is Tensor:  # recorded, for create_graph
        g = g.sum(axes, keepdims=True)
    else:  # np.add.reduce skips ndarray.sum's Python layer
        g = np.add.reduce(g, axis=axes, keepdims=True)
    return g.reshape(shape) if g.ndim != len(shape) else g


@lru_cache(maxsize=1024)
def _broadcast_axes(broadcast_shape: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """The axes along which ``shape`` was stretched to ``broadcast_shape``."""
    extra = len(broadcast_shape) - len(shape)
    stretched = [extra + i for i, n in enumerate(shape) if n == 1]
    return tuple(range(extra)) + tuple(i for i in stretched if broadcast_shape[i] != 1)


def backprop(
    root: Tensor,
    seed: Any,
    *,
    order: Iterable[Tensor] | None = None,
    targets: Collection[Tensor] = (),
    trace: int = 0,
    create_graph: bool = False,
    retain_graph: bool = False,
) -> dict[Tensor, Any]:
    """Run the VJPs from ``root`` back; return the cotangents of the leaves reached.

    ``seed`` is the cotangent of ``root`` (an array, or a Tensor when ``create_graph``).
    ``order`` lists the nodes, each before its inputs (by default ``toposort(root)``; a
    transform passes its tape reversed). ``targets`` are kept as leaves: their cotangents
    are returned and nothing past them is walked. With ``trace`` set, only inputs that
    depend on that transform's inputs (``arg.traces & trace``) get a cotangent.
    """
    keep = frozenset(targets)
    check_finite = _Mode.detect_anomaly
    cotangents: dict[Tensor, Any] = {root: seed}
    for node in toposort(root, keep) if order is None else order:
        if node.op is None or (keep and node in keep):
            continue  # a leaf or a target: its cotangent is an answer
        g = cotangents.pop(node, None)
        if g is None:
            continue  # no path from root carries a cotangent here
        args, saved, vjps = node.args, node.saved, node.vjps
        if args is None or saved is None or vjps is None:
            raise GraphReleasedError(
                f"backward: the graph through op '{node.op}' was already released by an "
                "earlier backward; pass retain_graph=True to the first backward() to "
                "differentiate the same graph twice"
            )
        # First order runs the rules on arrays; create_graph runs them on Tensors (recorded).
        out = node if create_graph else node.data
        inputs = args if create_graph else saved
        for arg, rule in zip(args, vjps):
            if rule is None or (trace and not arg.traces & trace):
                continue
            grad = rule(g, out, *inputs)
            data = arg.data
            if grad.shape != data.shape:
                grad = sum_to(grad, data.shape)
            if grad.dtype is not data.dtype and grad.dtype != data.dtype:
                grad = grad.astype(data.dtype)
            if check_finite:
                _check_cotangent(grad, node.op)
            previous = cotangents.get(arg)
            # Out of place: a cotangent may be the very array another input also holds.
            cotangents[arg] = grad if previous is None else previous + grad
        if not retain_graph:
            node.args = node.saved = node.vjps = None
    return cotangents


def _check_cotangent(grad: Any, op: str | None) -> None:
    data = grad.data if type(grad) is Tensor else np.asarray(grad)
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise FloatingPointError(
            f"detect_anomaly: the backward rule of op '{op}' produced NaN or inf "
            f"(cotangent shape {data.shape})"
        )


def make_seed(root: Tensor, grad: ArrayLike | None, caller: str) -> np.ndarray:
    """The cotangent that starts a backward pass: 1 for a one-element output."""
    if grad is None:
        if root.data.size != 1:
            raise TypeError(
                f"{caller}: the output has shape {root.shape}; an implicit gradient exists only "
                "for a one-element output. Reduce it to a scalar (e.g. .sum()) or pass a seed "
                f"of shape {root.shape}"
            )
        return np.ones(root.shape, dtype=root.dtype)
    seed = np.asarray(grad.data if isinstance(grad, Tensor) else grad)
    if seed.shape != root.shape:
        raise ValueError(
            f"{caller}: the seed has shape {seed.shape}, expected the output's shape {root.shape}"
        )
    # A copy: `_pass` rules hand the seed itself on, and the caller's array must never come
    # back as a .grad or a vjp result (nor be the same array in two of them).
    return seed.astype(root.dtype)


def backward(
    root: Tensor,
    grad: ArrayLike | None = None,
    retain_graph: bool = False,
    create_graph: bool = False,
) -> None:
    """Accumulate d(root)/d(leaf) into ``leaf.grad`` for every leaf that requires grad."""
    if not root.requires_grad:
        raise RuntimeError(
            "backward: this tensor does not require grad (no input it was computed from "
            "has requires_grad=True, or it was computed under no_grad())"
        )
    seed = make_seed(root, grad, "backward")
    if create_graph:
        with enable_grad():
            results = backprop(root, Tensor(seed), create_graph=True, retain_graph=True)
    else:
        results = backprop(root, seed, retain_graph=retain_graph)
    handed_out: set[int] = set()
    # Every node on the walk was popped once done: what is left are the leaves' cotangents.
    for leaf, g in results.items():
        if not create_graph:
            g = owned(g, handed_out)
        leaf.grad = g if leaf.grad is None else leaf.grad + g


def owned(g: Any, handed_out: set[int]) -> np.ndarray:
    """An array the caller may keep and change: no view, no numpy scalar, no array given twice.

    ``handed_out`` holds the ids of the arrays already given to the caller.
    """
    array = g if type(g) is np.ndarray else np.asarray(g)
    # A view (of a broadcast, a reshape, ...) shares memory: hand out a copy instead.
    if array.base is not None or id(array) in handed_out:
        array = array.copy()
    handed_out.add(id(array))
    return array
