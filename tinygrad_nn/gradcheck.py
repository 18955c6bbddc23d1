"""Gradient checking by central differences, as in the course's exercise.

For each input leaf, ``‖g − ĝ‖ / (‖g‖ + ‖ĝ‖)`` between the engine's gradient ``g`` and
``ĝᵢ = (f(θ + ε eᵢ) − f(θ − ε eᵢ)) / 2ε``, in float64. The course calls < 2e-7 right.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from tinygrad_nn.functional import check_argnums, value_and_grad
from tinygrad_nn.pytree import argument_names, tree_flatten, tree_unflatten
from tinygrad_nn.tensor import Tensor, no_grad, numeric, value


class GradCheck(NamedTuple):
    """The largest relative error, the leaf where it is, and the error of every leaf."""

    max_error: float
    worst_leaf: str
    errors: dict[str, float]


def check_grads(f: Callable[..., Any], args: Any, argnums: int | Sequence[int] | None = None,
                eps: float = 1e-7, max_elements: int | None = 1000, seed: int = 0) -> GradCheck:
    """Compare ``grad(f)`` with central differences at ``args`` (a tuple of pytrees).

    Only the arguments in ``argnums`` (default: all) are perturbed and checked: leave out data,
    labels, masks and random keys. Leaves larger than ``max_elements`` are checked on that many
    elements drawn at random.
    """
    args = args if isinstance(args, tuple) else (args,)
    positions = check_argnums(tuple(range(len(args))) if argnums is None else argnums, len(args),
                              "check_grads")
    chosen = tuple(args[p] for p in positions)
    leaves, treedef = tree_flatten(chosen)
    every_name, starts = argument_names(args), np.cumsum([0] + [len(tree_flatten(a)[0])
                                                                for a in args])
    names = [n for p in positions for n in every_name[starts[p]:starts[p + 1]]]  # x1 is args[1]
    # Our own C-ordered float64 copies, perturbed in place below (never the caller's arrays).
    points = [np.array(numeric(leaf, f"check_grads: the argument leaf '{name}'"), np.float64,
                       order="C") for leaf, name in zip(leaves, names)]

    def call(function: Callable[..., Any], values: list[Any]) -> Any:
        every = list(args)
        for position, tree in zip(positions, tree_unflatten(treedef, values)):
            every[position] = tree
        return function(*every)

    analytic = tree_flatten(call(value_and_grad(f, argnums=positions), points)[1])[0]

    def evaluate() -> float:  # Tensors, as grad gives f; they share the perturbed arrays
        with no_grad():
            return float(np.asarray(value(call(f, [Tensor(p) for p in points]))).reshape(()))

    rng, errors = np.random.default_rng(seed), {}
    for name, point, gradient in zip(names, points, analytic):
        flat = point.reshape(-1)  # a view of the C-ordered copy: writes perturb `point`
        checked = np.arange(flat.size)
        if max_elements is not None and flat.size > max_elements:
            checked = np.sort(rng.choice(flat.size, size=max_elements, replace=False))
        estimate = np.empty(checked.size)
        for k, i in enumerate(checked):
            original = flat[i]
            flat[i] = original + eps
            plus = evaluate()
            flat[i] = original - eps
            estimate[k] = (plus - evaluate()) / (2 * eps)
            flat[i] = original
        exact = np.asarray(gradient, dtype=np.float64).reshape(-1)[checked]
        scale = np.linalg.norm(exact) + np.linalg.norm(estimate)
        errors[name] = float(np.linalg.norm(exact - estimate) / scale) if scale > 0 else 0.0
    worst = max(errors, key=errors.__getitem__, default="")
    return GradCheck(errors.get(worst, 0.0), worst, errors)
