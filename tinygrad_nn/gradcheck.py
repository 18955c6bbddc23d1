"""Gradient checking by central differences, as in the course's exercise.

For each input leaf, ``‖g − ĝ‖ / (‖g‖ + ‖ĝ‖)`` between the engine's gradient ``g`` and
``ĝᵢ = (f(θ + ε eᵢ) − f(θ − ε eᵢ)) / 2ε``, in float64. The course calls < 2e-7 right.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from tinygrad_nn.functional import value_and_grad
from tinygrad_nn.pytree import argument_names, tree_flatten, tree_unflatten
from tinygrad_nn.tensor import Tensor, no_grad


class GradCheck(NamedTuple):
    """The largest relative error, the leaf where it is, and the error of every leaf."""

    max_error: float
    worst_leaf: str
    errors: dict[str, float]


def check_grads(
    f: Callable[..., Any],
    args: Any,
    eps: float = 1e-7,
    max_elements: int | None = 1000,
    seed: int = 0,
) -> GradCheck:
    """Compare ``grad(f)`` with central differences at ``args`` (a tuple of pytrees).

    Leaves larger than ``max_elements`` are checked on that many elements drawn at random.
    """
    args = args if isinstance(args, tuple) else (args,)
    leaves, treedef = tree_flatten(args)
    names = argument_names(args)
    # Our own float64 copies: perturbed in place below, never the caller's arrays.
    points = [np.array(leaf.data if isinstance(leaf, Tensor) else leaf, dtype=np.float64)
              for leaf in leaves]
    positions = tuple(range(len(args)))
    _, analytic_tree = value_and_grad(f, argnums=positions)(*tree_unflatten(treedef, points))
    analytic, _ = tree_flatten(analytic_tree)

    def evaluate() -> float:
        # Tensors, as grad gives f (its methods must work); they share the perturbed arrays.
        with no_grad():
            out = f(*tree_unflatten(treedef, [Tensor(point) for point in points]))
        return float(np.asarray(out.data if isinstance(out, Tensor) else out).reshape(()))

    rng = np.random.default_rng(seed)
    errors: dict[str, float] = {}
    for name, point, gradient in zip(names, points, analytic):
        flat = point.reshape(-1)  # a view: writes perturb `point`
        checked = np.arange(flat.size)
        if max_elements is not None and flat.size > max_elements:
            checked = np.sort(rng.choice(flat.size, size=max_elements, replace=False))
        numeric = np.empty(checked.size)
        for k, i in enumerate(checked):
            original = flat[i]
            flat[i] = original + eps
            plus = evaluate()
            flat[i] = original - eps
            minus = evaluate()
            flat[i] = original
            numeric[k] = (plus - minus) / (2 * eps)
        exact = np.asarray(gradient, dtype=np.float64).reshape(-1)[checked]
        scale = np.linalg.norm(exact) + np.linalg.norm(numeric)
        errors[name] = float(np.linalg.norm(exact - numeric) / scale) if scale > 0 else 0.0
    worst = max(errors, key=errors.__getitem__) if errors else ""
    return GradCheck(errors.get(worst, 0.0), worst, errors)
