"""Reverse mode: walk the recorded graph from an output back to the tensors that need it.

One walk serves both ``Tensor.backward`` (accumulate into every leaf's ``.grad``) and the
functional transforms (return the cotangents of chosen targets). The order is built
without recursion, cotangents are popped as soon as their node is done, and a VJP runs
only for an input that needs a gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_nn.tensor import ArrayLike, Tensor, _Mode, enable_grad


class GraphReleasedError(RuntimeError):
    """Backward through a graph whose saved values were already let go."""


def toposort(root: Tensor, stop_at: frozenset[int] = frozenset()) -> list[Tensor]:
    """Tensors that need a gradient and lead to ``root``: every node before its inputs.

    Iterative depth-first search, so a chain of any depth works. Nodes whose id is in
    ``stop_at`` are kept but not walked past.
    """
    post_order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            post_order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node.args is not None and id(node) not in stop_at:
            for arg in node.args:
                if type(arg) is Tensor and arg.requires_grad and id(arg) not in visited:
                    stack.append((arg, False))
    post_order.reverse()
    return post_order


def sum_to(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum a broadcast cotangent back to ``shape``: extra leading axes, then size-1 axes."""
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if stretched:
        g = g.sum(axis=stretched, keepdims=True)
    return g


def backprop(
    root: Tensor,
    seed: Any,
    targets: list[Tensor] | None = None,
    create_graph: bool = False,
    retain_graph: bool = False,
) -> dict[int, tuple[Tensor, Any]]:
    """``(tensor, cotangent)`` of each target (or of every leaf that needs one), by ``id``.

    ``seed`` is the cotangent of ``root``: an array, or a Tensor when ``create_graph``.
    """
    target_ids = frozenset(id(t) for t in targets) if targets is not None else frozenset()
    order = toposort(root, target_ids)
    if targets is None:
        wanted = None
    else:
        wanted = _leading_to(order, target_ids)
    results: dict[int, tuple[Tensor, Any]] = {}
    cotangents: dict[int, Any] = {id(root): seed}
    for node in order:
        g = cotangents.pop(id(node), None)
        if g is None:
            continue
        node_id = id(node)
        if node_id in target_ids or (targets is None and node.op is None):
            results[node_id] = (node, g)
            continue
        args = node.args
        if args is None:
            raise GraphReleasedError(
                f"backward: the graph through op '{node.op}' was already released by an "
                "earlier backward; pass retain_graph=True to the first backward() to "
                "differentiate the same graph twice"
            )
        vjps = node.vjps
        assert vjps is not None
        if create_graph:
            out: Any = node
            inputs: tuple[Any, ...] = args
        else:
            out = node.data
            inputs = tuple(a.data if type(a) is Tensor else a for a in args)
        for i, arg in enumerate(args):
            if type(arg) is not Tensor or not arg.requires_grad:
                continue
            arg_id = id(arg)
            if wanted is not None and arg_id not in wanted:
                continue
            rule = vjps[i]
            if rule is None:
                continue
            grad = rule(g, out, *inputs)
            if grad.shape != arg.data.shape:
                grad = sum_to(grad, arg.data.shape)
            if grad.dtype != arg.data.dtype:
                grad = grad.astype(arg.data.dtype)
            if _Mode.detect_anomaly:
                _check_cotangent(grad, node.op)
            previous = cotangents.get(arg_id)
            # Out of place: a cotangent may be the very array another input also holds.
            cotangents[arg_id] = grad if previous is None else previous + grad
        if not retain_graph:
            node.args = node.vjps = None
    return results


def _leading_to(order: list[Tensor], target_ids: frozenset[int]) -> set[int] | None:
    """Ids of the nodes with a path to a target; None when that is all of them."""
    if all(node.args is not None or id(node) in target_ids for node in order):
        return None  # every leaf on the walk is a target: every node leads to one
    leading: set[int] = set(target_ids)
    for node in reversed(order):  # inputs before the nodes that use them
        args = node.args
        if (
            args is not None
            and id(node) not in target_ids
            and any(type(a) is Tensor and id(a) in leading for a in args)
        ):
            leading.add(id(node))
    return leading


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
    return seed.astype(root.dtype, copy=False)


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
            results = backprop(root, Tensor(seed), None, create_graph=True, retain_graph=True)
    else:
        results = backprop(root, seed, None, retain_graph=retain_graph)
    handed_out: set[int] = set()
    for leaf, g in results.values():
        if not create_graph:
            g = owned(g, handed_out)
        leaf.grad = g if leaf.grad is None else leaf.grad + g


def owned(g: Any, handed_out: set[int]) -> np.ndarray:
    """An array the caller may keep and change: no view, no numpy scalar, no array given twice.

    ``handed_out`` holds the ids of the arrays already given to the caller.
    """
    array = np.asarray(g)
    if not (array.flags.owndata and array.flags.writeable) or id(array) in handed_out:
        array = array.copy()
    handed_out.add(id(array))
    return array
