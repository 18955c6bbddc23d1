"""Building blocks of networks, as jax.nn keeps them: composites of the engine's ops.

The class axis is 0 (examples are columns), as everywhere in ``nn``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from tinygrad_nn import ops, random
from tinygrad_nn.tensor import ArrayLike, Tensor, shape_of

__all__ = ["ACTIVATIONS", "activation", "dropout", "log_softmax", "softmax", "std", "var"]


def log_softmax(x: ArrayLike, axis: int = 0) -> Tensor:
    """x - logsumexp(x): log-probabilities over ``axis`` (the class axis, 0)."""
    return ops.sub(x, ops.logsumexp(x, axis, keepdims=True))


def softmax(x: ArrayLike, axis: int = 0) -> Tensor:
    """exp(log_softmax(x)): probabilities over ``axis`` (the class axis, 0) that sum to 1."""
    return ops.exp(log_softmax(x, axis))


def var(x: ArrayLike, axis: ops.Axis = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """The mean squared deviation from the mean over ``axis``, divided by n − ``ddof`` (numpy's
    default 0; 1 for the unbiased estimate)."""
    deviation = ops.sub(x, ops.mean(x, axis, keepdims=True))
    squares = ops.mul(deviation, deviation)
    if not ddof:
        return ops.mean(squares, axis, keepdims)
    total = ops.sum(squares, axis, keepdims)
    return ops.div(total, math.prod(shape_of(x)) / max(math.prod(shape_of(total)), 1) - ddof)


def std(x: ArrayLike, axis: ops.Axis = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """√var(x) over ``axis``; its gradient is 0 where the variance is 0 (a constant feature, a
    batch of one), as PyTorch's, not the NaN of √'s 1/(2√0)."""
    variance = var(x, axis, keepdims, ddof)
    positive = ops.greater(variance, 0)
    return ops.where(positive, ops.sqrt(ops.where(positive, variance, 1.0)), 0.0)


ACTIVATIONS: dict[str, Callable[[Any], Tensor]] = {
    "relu": ops.relu,
    "sigmoid": ops.sigmoid,
    "tanh": ops.tanh,
    "linear": ops.identity,
    "softmax": softmax,  # over axis 0, the classes
}



def activation(name: str) -> Callable[[Any], Tensor]:
    """The activation function called ``name`` (a key of ``ACTIVATIONS``)."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}"
        ) from None



def dropout(key: Any, A: ArrayLike, keep_prob: float) -> Any:
    """Inverted dropout of activations A: each entry kept with probability ``keep_prob`` (a
    mask drawn from ``key``, ``tg.random``) and scaled by 1 / keep_prob, so that the expected
    activation is unchanged: A · D / keep_prob. keep_prob = 1 returns A itself (no draw): use
    it for predictions. Draw a new key for each layer and each step (``tg.random.split``)."""
    if not 0 < keep_prob <= 1:
        raise ValueError(f"dropout: keep_prob must be in (0, 1], got {keep_prob}")
    if keep_prob == 1:
        return A
    mask = random.bernoulli(key, keep_prob, shape_of(A))
    return ops.div(ops.mul(A, mask), keep_prob)

