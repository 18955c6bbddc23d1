"""A pytree as one flat vector and back, and the inner product of two trees (as
``jax.flatten_util.ravel_pytree`` and optax's ``tree_vdot``): for gradient checks on one vector,
second-order methods, and whatever else wants a parameter tree in one piece.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_nn import ops
from tinygrad_nn.pytree import tree_flatten, tree_paths, tree_unflatten
from tinygrad_nn.tensor import Tensor

__all__ = ["ravel_pytree", "tree_vdot"]


def ravel_pytree(tree: Any) -> tuple[Any, Callable[[Any], Any]]:
    """(every leaf in one flat vector (n,), in their common dtype; ``unravel``, which cuts such a
    vector back into the tree, each leaf in its own shape and dtype).

    Both are made of the engine's ops (``concatenate`` of reshaped leaves; slices, reshapes and
    casts back), so gradients flow through them: a tree with Tensor leaves gives a Tensor
    vector, and ``unravel`` of a Tensor gives Tensor leaves. A tree of arrays gives an array.
    """
    leaves, treedef = tree_flatten(tree)
    leaves = [leaf if type(leaf) is Tensor else np.asarray(leaf) for leaf in leaves]
    shapes, dtypes = [leaf.shape for leaf in leaves], [leaf.dtype for leaf in leaves]
    bounds = np.cumsum([0] + [int(np.prod(shape)) for shape in shapes]).tolist()

    def unravel(vector: Any) -> Any:
        if np.shape(vector) != (bounds[-1],):
            raise ValueError(f"unravel: the vector has shape {np.shape(vector)}; expected "
                             f"({bounds[-1]},), as ravel_pytree made it")
        # astype copies an array: the leaves never share the vector's memory
        return tree_unflatten(treedef, [vector[start:stop].reshape(shape).astype(dtype)
                                        for shape, dtype, start, stop in
                                        zip(shapes, dtypes, bounds, bounds[1:])])

    if not leaves:
        return np.zeros(0), unravel
    if any(type(leaf) is Tensor for leaf in leaves):
        return ops.concatenate([ops.reshape(leaf, -1) for leaf in leaves]), unravel
    return np.concatenate([leaf.reshape(-1) for leaf in leaves]), unravel


def tree_vdot(a: Any, b: Any) -> float:
    """Σ over the leaves of a and b (same structure) of their elementwise products."""
    (a_leaves, a_def), (b_leaves, b_def) = tree_flatten(a), tree_flatten(b)
    if a_def != b_def:
        raise ValueError(f"tree_vdot: the trees differ in structure: leaves {tree_paths(a)} "
                         f"and {tree_paths(b)}")
    return float(sum(np.vdot(x, y) for x, y in zip(a_leaves, b_leaves)))
