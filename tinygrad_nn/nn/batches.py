"""Mini-batches: the examples (columns) in one random order, cut into batches."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_nn import random
from tinygrad_nn.tensor import ArrayLike, integer, value

__all__ = ["mini_batches"]


def mini_batches(key: Any, X: ArrayLike, Y: ArrayLike,
                 batch_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(X_batch, Y_batch), …]``: the columns (examples) of X (n_x, m) and Y (…, m) in one
    random order drawn from ``key`` (``tg.random``), cut into batches of ``batch_size`` columns,
    the last one smaller when batch_size does not divide m. Labels keep their form: (1, m),
    (K, m) or class indices (m,)."""
    integer(batch_size, "mini_batches: batch_size", low=1)
    inputs, labels = np.asarray(value(X)), np.asarray(value(Y))
    if inputs.ndim != 2 or labels.ndim == 0 or labels.shape[-1] != inputs.shape[1]:
        raise ValueError(f"mini_batches: X has shape {inputs.shape} and Y {labels.shape}; "
                         "expected X (n_x, m) and Y (…, m) with the same m, one example per "
                         "column")
    m = inputs.shape[1]
    order = np.asarray(random.permutation(key, m))
    return [(inputs[:, chosen], labels[..., chosen])
            for chosen in (order[start:start + batch_size] for start in range(0, m, batch_size))]

