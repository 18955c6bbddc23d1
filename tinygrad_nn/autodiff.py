"""Reverse mode: walk the recorded equations from an output back to what needs a gradient.

One walk serves ``Tensor.backward`` (accumulate into each leaf's ``.grad``) and the functional
transforms (the cotangents of chosen targets). The order is built without recursion, each
cotangent is popped once its node is done, and a rule runs only for an input that needs it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import numpy as np

from tinygrad_nn import ops
from tinygrad_nn.tensor import (
    FINGERPRINTS,
    ArrayLike,
    State,
    Tensor,
    check_finite,
    fingerprints,
    numeric,
    switch,
)


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
    g = ops.sum(g, axes, True) if type(g) is Tensor else np.add.reduce(g, axes, keepdims=True)
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
        if node.primitive is None or (keep and node in keep):
            continue  # a leaf or a target: its cotangent is an answer
        if (g := cotangents.pop(node, None)) is None:
            continue  # no path from root carries a cotangent here
        inputs = node.inputs if node.inputs is not None else _released(node)
        if check:
            _check_unchanged(node)
        out, arguments = (node, inputs) if create_graph else (node._data, node.arrays or ())
        params, rules = node.params, node.primitive.vjps
        for position, x in enumerate(inputs):
            if type(x) is Tensor and x.requires_grad and (not trace or x.traces & trace):
                rule = rules[position] if type(rules) is tuple else rules(position)  # type: ignore
                grad = rule(g, out, *arguments, **params) if params else rule(g, out, *arguments)
                data = x._data
                if grad.shape != data.shape or (grad.dtype is not data.dtype
                                                and grad.dtype != data.dtype):
                    grad = _fit(grad, data)
                if check:
                    _check_cotangent(grad, node, x)
                previous = cotangents.get(x)
                # Out of place: a cotangent may be the very array another input also holds.
                cotangents[x] = grad if previous is None else previous + grad
        if not retain_graph:
            node.inputs = node.arrays = None
    return cotangents


def _fit(grad: Any, like: np.ndarray) -> Any:
    """A rule's cotangent summed back over broadcast axes and cast to its input's dtype."""
    if grad.shape != like.shape:
        grad = sum_to(grad, like.shape)
    return grad if grad.dtype == like.dtype else grad.astype(like.dtype)


def _check_cotangent(grad: Any, node: Tensor, x: Tensor) -> None:
    array = grad._data if type(grad) is Tensor else grad
    check_finite(array, f"the backward rule of op '{node.op}' produced {{kind}} (cotangent "
                 f"shape {x.shape})")


def _check_unchanged(node: Tensor) -> None:
    """``detect_anomaly``: an input array changed in place since the forward pass."""
    before = FINGERPRINTS.get(id(node), (None, []))[1]
    for position, (was, now) in enumerate(zip(before, fingerprints(node.arrays or ()))):
        if was != now:
            raise RuntimeError(f"backward: input {position} of op '{node.op}' (shape "
                               f"{np.shape(node.arrays[position])}) was changed in place after "  # type: ignore
                               "the forward pass, so its gradient would be wrong; change a copy, "
                               "or run the forward pass again")


def _released(node: Tensor) -> tuple[Any, ...]:
    raise GraphReleasedError(f"backward: the graph through op '{node.op}' was already released "
                             "by an earlier backward; pass retain_graph=True to the first "
                             "backward() to differentiate the same graph twice")


def make_seed(root: Tensor, grad: ArrayLike | None, caller: str) -> np.ndarray:
    """The cotangent that starts a backward pass: 1 for a one-element output."""
    if grad is None and root.size != 1:
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
    """Accumulate d(root)/d(leaf) into ``leaf.grad`` for every leaf that requires grad. In a
    traced program (``jit``) the backward pass is recorded, as with ``create_graph``."""
    if not root.requires_grad:
        raise RuntimeError("backward: this tensor does not require grad (no input it was computed "
                           "from has requires_grad=True, or it was computed under no_grad())")
    seed, handed_out = make_seed(root, grad, "backward"), set[int]()
    create_graph = create_graph or State.program is not None
    with switch("record", create_graph or State.record), recording_backward():
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


@contextmanager
def recording_backward() -> Iterator[None]:
    """Mark the nodes recorded inside as a backward pass of the program being traced (its
    listing shows them apart)."""
    tape, program = State.tape, State.program
    start = len(tape) if tape is not None else 0
    try:
        yield
    finally:
        if program is not None and tape is not None:
            program.backward.update(map(id, tape[start:]))


Tensor.backward = backward
