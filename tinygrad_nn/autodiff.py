"""Reverse mode: walk the recorded equations from an output back to what needs a gradient.

One walk serves ``Tensor.backward`` (accumulate into each leaf's ``.grad``) and the functional
transforms (the cotangents of chosen targets). The order is built without recursion, each
cotangent is popped once its node is done, and a rule runs only for an input that needs it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from functools import lru_cache
from typing import Any

import numpy as np

from tinygrad_nn.tensor import OPS, ArrayLike, State, Tensor, check_finite, numeric, switch, value


class GraphReleasedError(RuntimeError):
    """Backward through a graph whose inputs were already let go."""


def toposort(root: Tensor) -> list[Tensor]:
    """Tensors that need a gradient and lead to ``root``, each before its inputs: an iterative
    depth-first search, so a chain of any depth works."""
    order, visited, stack = [], {root}, [(root, iter(root.inputs or ()))]
    while stack:
        for x in stack[-1][1]:
            if type(x) is Tensor and x.requires_grad and x not in visited:
                visited.add(x)
                stack.append((x, iter(x.inputs or ())))
                break
        else:
            order.append(stack.pop()[0])
    return order[::-1]


def sum_to(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum a broadcast cotangent back to ``shape``: extra leading axes, then size-1 axes."""
    axes = _broadcast_axes(g.shape, shape)
    # recorded for create_graph; np.add.reduce skips ndarray.sum's Python layer
    g = OPS["sum"](g, axes, True) if type(g) is Tensor else np.add.reduce(g, axes, keepdims=True)
    return g.reshape(shape) if g.ndim != len(shape) else g


@lru_cache(maxsize=1024)
def _broadcast_axes(broadcast_shape: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    extra = len(broadcast_shape) - len(shape)
    return tuple(range(extra)) + tuple(extra + i for i, n in enumerate(shape)
                                       if n == 1 and broadcast_shape[extra + i] != 1)


def backprop(root: Tensor, seed: Any, *, order: Iterable[Tensor] | None = None,
             targets: Collection[Tensor] = (), trace: int = 0, create_graph: bool = False,
             retain_graph: bool = False) -> dict[Tensor, Any]:
    """Run the rules from ``root`` back; return the cotangents of the leaves (and targets).

    ``seed`` is root's cotangent (a Tensor when ``create_graph``: the rules then run on Tensors
    and record the backward pass). ``order`` lists nodes before their inputs (by default
    ``toposort(root)``; a transform passes its tape reversed); ``targets`` are not walked past;
    with ``trace`` set, only inputs that depend on that transform (``x.traces & trace``) get one.
    """
    keep, check, cotangents = frozenset(targets), State.anomaly, {root: seed}
    for node in toposort(root) if order is None else order:
        primitive, inputs, params = node.primitive, node.inputs, node.params
        if primitive is None or (keep and node in keep):
            continue  # a leaf or a target: its cotangent is an answer
        if (g := cotangents.pop(node, None)) is None:
            continue  # no path from root carries a cotangent here
        if inputs is None:
            raise GraphReleasedError(f"backward: the graph through op '{primitive.name}' was "
                                     "already released by an earlier backward; pass "
                                     "retain_graph=True to the first backward() to "
                                     "differentiate the same graph twice")
        rules = primitive.vjps
        out, arguments = (node, inputs) if create_graph else (node.data, node.arrays or ())
        for position, x in enumerate(inputs):
            if type(x) is not Tensor or not x.requires_grad or (trace and not x.traces & trace):
                continue
            rule = rules[position] if type(rules) is tuple else rules(position)  # type: ignore
            grad = rule(g, out, *arguments, **params) if params else rule(g, out, *arguments)
            data = x.data
            if grad.shape != data.shape:
                grad = sum_to(grad, data.shape)
            if grad.dtype is not data.dtype and grad.dtype != data.dtype:  # `is`: the fast path
                grad = grad.astype(data.dtype)
            if check:
                check_finite(value(grad), f"the backward rule of op '{primitive.name}' "
                             f"produced {{kind}} (cotangent shape {data.shape})")
            previous = cotangents.get(x)
            # Out of place: a cotangent may be the very array another input also holds.
            cotangents[x] = grad if previous is None else previous + grad
        if not retain_graph:
            node.inputs = node.arrays = None
    return cotangents


def make_seed(root: Tensor, grad: ArrayLike | None, caller: str) -> np.ndarray:
    """The cotangent that starts a backward pass: 1 for a one-element output."""
    if grad is None and root.data.size != 1:
        raise TypeError(f"{caller}: the output has shape {root.shape}; an implicit gradient exists "
                        "only for a one-element output. Reduce it to a scalar (e.g. .sum()) or "
                        f"pass a seed of shape {root.shape}")
    seed = np.ones(root.shape) if grad is None else numeric(grad, f"{caller}: the seed")
    if seed.shape != root.shape:
        raise ValueError(f"{caller}: the seed has shape {seed.shape}, expected the output's "
                         f"shape {root.shape}")
    # A copy: `_pass` rules hand the seed itself on, and the caller's array must never come
    # back as a .grad or a vjp result (nor be the same array in two of them).
    return seed.astype(root.dtype)


def backward(root: Tensor, grad: ArrayLike | None = None, retain_graph: bool = False,
             create_graph: bool = False) -> None:
    """Accumulate d(root)/d(leaf) into ``leaf.grad`` for every leaf that requires grad."""
    if not root.requires_grad:
        raise RuntimeError("backward: this tensor does not require grad (no input it was computed "
                           "from has requires_grad=True, or it was computed under no_grad())")
    seed, handed_out = make_seed(root, grad, "backward"), set[int]()
    with switch("record", create_graph or State.record):  # create_graph: record the backward
        results = backprop(root, Tensor(seed) if create_graph else seed,
                           create_graph=create_graph, retain_graph=retain_graph or create_graph)
    # Every node on the walk was popped once done: what is left are the leaves' cotangents.
    for leaf, g in results.items():
        g = g if create_graph else owned(g, handed_out)
        leaf.grad = g if leaf.grad is None else leaf.grad + g


def owned(g: Any, handed_out: set[int]) -> np.ndarray:
    """An array the caller may keep and change: no view, no numpy scalar, no array given twice
    (``handed_out`` holds the ids of those already given out)."""
    array = g if type(g) is np.ndarray else np.asarray(g)
    if array.base is not None or id(array) in handed_out:  # a view shares memory: copy it
        array = array.copy()
    handed_out.add(id(array))
    return array


OPS["backward"] = backward
