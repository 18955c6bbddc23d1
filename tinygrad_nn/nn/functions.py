"""Building blocks of networks, as jax.nn keeps them: composites of the engine's ops.

The class axis is 0 (examples are columns), as everywhere in ``nn``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from tinygrad_nn import composites, ops, random
from tinygrad_nn.tensor import ArrayLike, Tensor, shape_of

__all__ = ["ACTIVATIONS", "activation", "dropout", "elu", "gelu", "hard_tanh", "leaky_relu",
           "log_softmax", "mish", "relu6", "selu", "silu", "softmax", "std", "swish", "var"]


def log_softmax(x: ArrayLike, axis: ops.Axis = 0, where: ArrayLike | None = None) -> Tensor:
    """x - logsumexp(x): log-probabilities over ``axis`` (the class axis, 0). ``where`` (booleans
    broadcast to x's shape): only its True entries count; the others are -inf, as jax.nn's."""
    if where is None:
        return ops.sub(x, composites.logsumexp(x, axis, keepdims=True))
    shifted = ops.sub(x, composites.logsumexp(x, axis, keepdims=True, where=where))
    return ops.where(where, shifted, -math.inf)  # a row with no True entry: -inf throughout


def softmax(x: ArrayLike, axis: ops.Axis = 0, where: ArrayLike | None = None) -> Tensor:
    """exp(log_softmax(x)): probabilities over ``axis`` (the class axis, 0) that sum to 1; 0
    where ``where`` is False (a row with no True entry is all 0, as jax.nn's)."""
    return ops.exp(log_softmax(x, axis, where))


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


# --- activations, as jax.nn's: its names, parameters, defaults and gradients at the kinks ------
def gelu(x: ArrayLike, approximate: bool = True) -> Tensor:
    """x·Φ(x), Φ the standard normal CDF: ½(1 + erf(x/√2)) exact (``approximate=False``), else
    ½(1 + tanh(√(2/π)·(x + 0.044715·x³))) (the default, as jax.nn's)."""
    if approximate:
        cubic = ops.add(x, ops.mul(0.044715, ops.mul(x, ops.mul(x, x))))
        cdf = ops.mul(0.5, ops.add(1.0, ops.tanh(ops.mul(math.sqrt(2 / math.pi), cubic))))
    else:
        cdf = ops.mul(0.5, ops.add(1.0, ops.erf(ops.div(x, math.sqrt(2.0)))))
    return ops.mul(x, cdf)


def elu(x: ArrayLike, alpha: ArrayLike = 1.0) -> Tensor:
    """x for x > 0, else alpha·(eˣ − 1); its gradient at 0 is alpha's side, as jax.nn's."""
    positive = ops.greater(x, 0)
    # expm1 only of x ≤ 0: a large x would overflow it even where the where discards it
    return ops.where(positive, x, ops.mul(alpha, ops.expm1(ops.where(positive, 0.0, x))))


SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def selu(x: ArrayLike) -> Tensor:
    """scale·elu(x, alpha) with the self-normalizing constants (Klambauer et al., 2017)."""
    return ops.mul(SELU_SCALE, elu(x, SELU_ALPHA))


def leaky_relu(x: ArrayLike, negative_slope: ArrayLike = 0.01) -> Tensor:
    """x for x ≥ 0, else negative_slope·x (the gradient at 0 is 1, as jax.nn's)."""
    return ops.where(ops.greater_equal(x, 0), x, ops.mul(negative_slope, x))


def relu6(x: ArrayLike) -> Tensor:
    """min(max(x, 0), 6); the gradient is 0 at both kinks, as jax.nn's."""
    return ops.where(ops.less(x, 6), ops.relu(x), 6.0)


def hard_tanh(x: ArrayLike) -> Tensor:
    """x limited to [-1, 1]; the gradient is 1 at ±1, as jax.nn's."""
    return ops.clip(x, -1.0, 1.0)


def silu(x: ArrayLike) -> Tensor:
    """x·σ(x) (also called swish)."""
    return ops.mul(x, ops.sigmoid(x))


swish = silu


def mish(x: ArrayLike) -> Tensor:
    """x·tanh(softplus(x)): softplus never overflows, so mish is finite at ±1000."""
    return ops.mul(x, ops.tanh(ops.softplus(x)))


ACTIVATIONS: dict[str, Callable[[Any], Tensor]] = {
    "relu": ops.relu,
    "sigmoid": ops.sigmoid,
    "tanh": ops.tanh,
    "linear": ops.identity,
    "softmax": softmax,  # over axis 0, the classes
    "gelu": gelu, "elu": elu, "selu": selu, "leaky_relu": leaky_relu, "relu6": relu6,
    "silu": silu, "swish": swish, "mish": mish, "hard_tanh": hard_tanh,
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

