"""Pytrees: nested dicts, lists and tuples (named tuples too) whose leaves are arrays.

``None`` is an empty subtree, as in JAX. Dicts keep their insertion order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np


class TreeDef(NamedTuple):
    """A pytree's structure without its leaves: ``node_type`` is None for a leaf; ``keys`` are a
    dict's keys; ``factory`` a defaultdict's default factory. Hashable, so that ``jit`` can key
    its cache on it."""

    node_type: type | None
    keys: tuple[Any, ...] = ()
    children: tuple[TreeDef, ...] = ()
    num_leaves: int = 1
    factory: Any = None


LEAF = TreeDef(None)


def tree_flatten(tree: Any) -> tuple[list[Any], TreeDef]:
    """Leaves in order (depth first) and the structure to rebuild the tree from them."""
    leaves: list[Any] = []
    return leaves, _flatten(tree, leaves)


def _flatten(tree: Any, leaves: list[Any]) -> TreeDef:
    if type(tree) is np.ndarray or (tree is not None and not isinstance(tree, (dict, list, tuple))):
        leaves.append(tree)
        return LEAF
    start, items = len(leaves), tree.values() if isinstance(tree, dict) else tree or ()
    # An array child is appended here, without a call: transforms flatten their inputs per call.
    children = tuple([LEAF if type(child) is np.ndarray and not leaves.append(child)  # type: ignore[func-returns-value]
                      else _flatten(child, leaves) for child in items])
    return TreeDef(type(tree), tuple(tree) if isinstance(tree, dict) else (), children,
                   len(leaves) - start, getattr(tree, "default_factory", None))


def tree_unflatten(treedef: TreeDef, leaves: list[Any]) -> Any:
    """The inverse of ``tree_flatten``."""
    if len(leaves) != treedef.num_leaves:
        raise ValueError(
            f"tree_unflatten: got {len(leaves)} leaves, the structure holds {treedef.num_leaves}")
    return _unflatten(treedef, iter(leaves))


def _unflatten(treedef: TreeDef, leaves: Any) -> Any:
    node_type: Any = treedef.node_type
    if node_type is None:
        return next(leaves)
    children = [next(leaves) if c is LEAF else _unflatten(c, leaves) for c in treedef.children]
    if node_type is type(None):
        return None
    if issubclass(node_type, defaultdict):
        return node_type(treedef.factory, zip(treedef.keys, children))
    if issubclass(node_type, dict):
        return node_type(zip(treedef.keys, children))
    return node_type(*children) if hasattr(node_type, "_fields") else node_type(children)


def tree_map(function: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """Apply ``function`` to each leaf (and the matching leaves of ``rest``)."""
    leaves, treedef = tree_flatten(tree)
    others = [tree_flatten(other)[0] for other in rest]
    return tree_unflatten(treedef, [function(*group) for group in zip(leaves, *others)])


def tree_paths(tree: Any, prefix: str = "") -> list[str]:
    """A readable path for each leaf, in ``tree_flatten`` order: ``W1``, ``[0]``, ``layer.W``."""
    if isinstance(tree, dict):
        return [p for key, child in tree.items()
                for p in tree_paths(child, f"{prefix}.{key}" if prefix else str(key))]
    if isinstance(tree, (list, tuple)):
        return [p for i, v in enumerate(tree) for p in tree_paths(v, f"{prefix}[{i}]")]
    return [] if tree is None else [prefix]


def argument_names(args: tuple[Any, ...]) -> list[str]:
    """Names for the leaves of a function's positional arguments, in ``tree_flatten`` order.

    A plain array argument is ``x0``, ``x1``, …; a leaf inside a container is named by its
    path there (``params['W1']`` is ``W1``), prefixed ``x0.`` only where names would clash.
    """
    leaf = [arg is not None and not isinstance(arg, (dict, list, tuple)) for arg in args]
    per_argument = [[f"x{i}"] if leaf[i] else tree_paths(arg) for i, arg in enumerate(args)]
    flat = [name for names in per_argument for name in names]
    if len(set(flat)) == len(flat):
        return flat
    return [name if leaf[i] else f"x{i}.{name}".replace(".[", "[")
            for i, names in enumerate(per_argument) for name in names]
