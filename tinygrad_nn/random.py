"""Random numbers from explicit keys, as ``jax.random``: the same key gives the same numbers.

A key is a ``uint32`` array of shape (4,): the 128-bit key of numpy's counter-based ``Philox``
generator. ``key(seed)`` makes one; ``split(key, n)`` derives n independent keys, shape (n, 4)
(``k1, k2 = split(key)``). Use a key for one draw only and split it for the next: two draws
from one key are the same numbers. The numbers depend only on the key and the call (shape,
dtype): the same in every process and on every machine with the same numpy.

The draws (and ``split``) are primitives without gradient that take the key as an input array.
On numpy keys they return numpy arrays. Inside a traced program (``jit``) the key is a traced
input, so the draw is recorded and a replay with a new key draws new numbers. A key is not
differentiable: leave it out of ``grad``'s ``argnums`` (the default, 0, already does when the
key is not the first argument); a key that was turned into floats is refused.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from tinygrad_nn.tensor import Primitive, Tensor, dtype_of, integer, shape_of

__all__ = ["KEY_SHAPE", "bernoulli", "key", "normal", "permutation", "split", "uniform"]

KEY_SHAPE = (4,)  # uint32 words: Philox's 128-bit key
_SPLIT_COUNTER = (0, 0, 0, 1)  # split reads Philox's stream from 2^192 on; draws from 0


def key(seed: int) -> np.ndarray:
    """A key (uint32, shape (4,)) from a non-negative integer seed, hashed by numpy's
    ``SeedSequence``: nearby seeds give unrelated keys."""
    seed = integer(seed, "random.key: seed")
    return np.random.SeedSequence(seed).generate_state(KEY_SHAPE[0], np.uint32)


def _check_key(key: Any, caller: str) -> None:
    """A TypeError / ValueError unless ``key`` is one key: uint32 of shape (4,). Reads only the
    dtype and shape, never the values (which a traced program may not read)."""
    dtype, shape = dtype_of(key), shape_of(key)
    if dtype != np.uint32:
        hint = (" A key is not differentiable: grad and check_grads turn an integer argument "
                "they differentiate into floats; leave the key out of argnums"
                if dtype.kind == "f" else "")
        raise TypeError(f"random.{caller}: key has dtype {dtype}; expected uint32 of shape "
                        f"{KEY_SHAPE} from tg.random.key(seed) or split(key).{hint}")
    if shape != KEY_SHAPE:
        hint = "; pick one of the split keys (keys[i])" if shape[-1:] == KEY_SHAPE else ""
        raise ValueError(f"random.{caller}: key has shape {shape}; expected one key of shape "
                         f"{KEY_SHAPE}{hint}")


def _shape(shape: int | Sequence[int], caller: str) -> tuple[int, ...]:
    dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if not all(isinstance(n, (int, np.integer)) and n >= 0 for n in dims):
        raise ValueError(f"random.{caller}: shape must be non-negative integers, got {shape!r}")
    return tuple(int(n) for n in dims)


def _generator(key: np.ndarray, counter: Sequence[int] | None = None) -> np.random.Generator:
    """Philox keyed by the 128 bits of ``key`` (word order fixed: the same on every machine)."""
    words = key.astype(np.uint64)
    philox = np.random.Philox(key=words[0::2] | (words[1::2] << np.uint64(32)), counter=counter)
    return np.random.Generator(philox)


def _float_dtype(dtype: npt.DTypeLike, caller: str) -> np.dtype[Any]:
    result = np.dtype(dtype)
    if result not in (np.float32, np.float64):
        raise ValueError(f"random.{caller}: dtype must be float32 or float64, got {result}")
    return result


def _draw(primitive: Primitive, *inputs: Any, **params: Any) -> Any:
    """The primitive on Tensors (recorded in a traced program), or its numpy result."""
    if any(type(x) is Tensor for x in inputs):
        return primitive(*inputs, **params)
    return primitive.impl(*inputs, **params)


def _count(out: tuple[int, ...], *shapes: Any, **params: Any) -> int:
    return math.prod(out)


def _random(name: str, impl: Any, math_text: str) -> Primitive:
    return Primitive(name, impl, None, math_text, _count, "{error}")


def _split_impl(key: np.ndarray, num: int) -> np.ndarray:
    raw = _generator(key, _SPLIT_COUNTER).bit_generator.random_raw(2 * num)
    words = np.stack([raw & np.uint64(0xFFFFFFFF), raw >> np.uint64(32)], axis=-1)
    return words.astype(np.uint32).reshape(num, 4)  # low word first, on every machine


_split = _random("random_split", _split_impl, "no gradient: keys from a key")
_normal = _random("random_normal", lambda key, shape, dtype: _generator(key).standard_normal(
    shape, dtype), "no gradient: a draw")
_uniform = _random("random_uniform", lambda key, shape, dtype, low, high: _generator(
    key).random(shape, dtype) * (high - low) + low, "no gradient: a draw")
_bernoulli = _random("random_bernoulli", lambda key, p, shape: _generator(key).random(shape) < p,
                     "no gradient: a draw")
_permutation = _random("random_permutation", lambda key, n: _generator(key).permutation(n),
                       "no gradient: a draw")


def split(key: Any, num: int = 2) -> Any:
    """``num`` new keys, shape (num, 4), independent of each other and of draws from ``key``."""
    _check_key(key, "split")
    return _draw(_split, key, num=integer(num, "random.split: num", low=1))


def normal(key: Any, shape: int | Sequence[int] = (), dtype: npt.DTypeLike = np.float64) -> Any:
    """Standard normal numbers of ``shape`` in ``dtype`` (float64 or float32)."""
    _check_key(key, "normal")
    return _draw(_normal, key, shape=_shape(shape, "normal"), dtype=_float_dtype(dtype, "normal"))


def uniform(key: Any, shape: int | Sequence[int] = (), dtype: npt.DTypeLike = np.float64,
            minval: float = 0.0, maxval: float = 1.0) -> Any:
    """Numbers uniform in [minval, maxval) of ``shape`` in ``dtype`` (float64 or float32)."""
    _check_key(key, "uniform")
    if not minval < maxval:
        raise ValueError(f"random.uniform: need minval < maxval, got {minval} and {maxval}")
    return _draw(_uniform, key, shape=_shape(shape, "uniform"),
                 dtype=_float_dtype(dtype, "uniform"), low=float(minval), high=float(maxval))


def bernoulli(key: Any, p: Any = 0.5, shape: int | Sequence[int] | None = None) -> Any:
    """Booleans of ``shape`` (default: p's shape), each True with probability ``p`` (a number or
    an array broadcasting to ``shape``)."""
    _check_key(key, "bernoulli")
    if dtype_of(p).kind not in "biuf":
        raise TypeError(f"random.bernoulli: p must be a number or a numeric array, got "
                        f"{type(p).__name__} of dtype {dtype_of(p)}")
    out_shape = shape_of(p) if shape is None else _shape(shape, "bernoulli")
    try:
        fits = np.broadcast_shapes(shape_of(p), out_shape) == out_shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"random.bernoulli: p of shape {shape_of(p)} does not broadcast to "
                         f"shape {out_shape}")
    return _draw(_bernoulli, key, p, shape=out_shape)


def permutation(key: Any, n: int) -> Any:
    """A random order of ``range(n)`` (int64, shape (n,))."""
    _check_key(key, "permutation")
    return _draw(_permutation, key, n=integer(n, "random.permutation: n"))
