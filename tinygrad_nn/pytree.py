"""Pytrees: nested dicts, lists and tuples (named tuples too) whose leaves are arrays.

``None`` is an empty subtree, as in JAX. Dicts keep their insertion order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import numpy as np


class TreeDef(NamedTuple):
    """The shape of a pytree without its leaves: ``kind`` is leaf, none, dict, list or tuple."""

    kind: str
    keys: tuple[Any, ...] = ()
    children: tuple[TreeDef, ...] = ()
    node_type: type | None = None
    num_leaves: int = 0


_LEAF = TreeDef("leaf", num_leaves=1)
_NONE = TreeDef("none")


def tree_flatten(tree: Any) -> tuple[list[Any], TreeDef]:
    """Leaves in order (depth first) and the structure to rebuild the tree from them."""
    leaves: list[Any] = []
    return leaves, _flatten(tree, leaves)


def _flatten(tree: Any, leaves: list[Any]) -> TreeDef:
    start = len(leaves)
    if isinstance(tree, dict):
        keys = tuple(tree)
        children = _flatten_children(tree.values(), leaves)
        return TreeDef("dict", keys, children, type(tree), len(leaves) - start)
    if isinstance(tree, (list, tuple)):
        children = _flatten_children(tree, leaves)
        kind = "list" if isinstance(tree, list) else "tuple"
        return TreeDef(kind, (), children, type(tree), len(leaves) - start)
    if tree is None:
        return _NONE
    leaves.append(tree)
    return _LEAF


def _flatten_children(children: Iterable[Any], leaves: list[Any]) -> tuple[TreeDef, ...]:
    treedefs = []
    for child in children:
        if type(child) is np.ndarray:  # the usual leaf, without a call: transforms flatten per call
            leaves.append(child)
            treedefs.append(_LEAF)
        else:
            treedefs.append(_flatten(child, leaves))
    return tuple(treedefs)


def tree_unflatten(treedef: TreeDef, leaves: list[Any]) -> Any:
    """The inverse of ``tree_flatten``."""
    if len(leaves) != treedef.num_leaves:
        raise ValueError(
            f"tree_unflatten: got {len(leaves)} leaves, the structure holds {treedef.num_leaves}"
        )
    return _unflatten(treedef, iter(leaves))


def _unflatten(treedef: TreeDef, leaves: Any) -> Any:
    if treedef.kind == "leaf":
        return next(leaves)
    if treedef.kind == "none":
        return None
    children = [
        next(leaves) if child is _LEAF else _unflatten(child, leaves) for child in treedef.children
    ]
    node_type = treedef.node_type
    assert node_type is not None
    if treedef.kind == "dict":
        return node_type(zip(treedef.keys, children))
    if node_type is tuple or node_type is list:
        return node_type(children)
    if treedef.kind == "tuple" and hasattr(node_type, "_fields"):
        return node_type(*children)  # a named tuple
    return node_type(children)


def tree_paths(tree: Any) -> list[str]:
    """A readable path for each leaf, in ``tree_flatten`` order: ``W1``, ``[0]``, ``layer.W``."""
    paths: list[str] = []
    _paths(tree, "", paths)
    return paths


def _paths(tree: Any, prefix: str, paths: list[str]) -> None:
    if tree is None:
        return
    if isinstance(tree, dict):
        for key, child in tree.items():
            _paths(child, f"{prefix}.{key}" if prefix else str(key), paths)
    elif isinstance(tree, (list, tuple)):
        for i, child in enumerate(tree):
            _paths(child, f"{prefix}[{i}]", paths)
    else:
        paths.append(prefix)


def tree_map(function: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """Apply ``function`` to each leaf (and the matching leaves of ``rest``)."""
    leaves, treedef = tree_flatten(tree)
    others = [tree_flatten(other)[0] for other in rest]
    return tree_unflatten(treedef, [function(*group) for group in zip(leaves, *others)])


def argument_names(args: tuple[Any, ...]) -> list[str]:
    """Names for the leaves of a function's positional arguments, in ``tree_flatten`` order.

    A plain array argument is ``x0``, ``x1``, …; a leaf inside a container is named by its
    path there (``params['W1']`` is ``W1``), prefixed ``x0.`` only where names would clash.
    """
    per_argument = [
        [f"x{i}"] if _is_leaf(arg) else tree_paths(arg) for i, arg in enumerate(args)
    ]
    flat = [name for names in per_argument for name in names]
    if len(set(flat)) == len(flat):
        return flat
    return [
        name if _is_leaf(arg) else f"x{i}.{name}".replace(".[", "[")
        for i, (arg, names) in enumerate(zip(args, per_argument))
        for name in names
    ]


def _is_leaf(tree: Any) -> bool:
    return tree is not None and not isinstance(tree, (dict, list, tuple))
