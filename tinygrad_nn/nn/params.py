"""The parameter dict: its initialization, its layer sizes (checked), its files.

``params`` is a plain dict ``{"W1", "b1", …, "WL", "bL"}``: ``Wl`` is (n_l, n_{l-1}) and ``bl``
is (n_l, 1); ``layer_dims = [n_0, n_1, …, n_L]``.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from tinygrad_nn.data import DataError
from tinygrad_nn.tensor import Tensor, dtype_of, shape_of, value

__all__ = ["INIT_SCHEMES", "Params", "Scheme", "init_params", "layer_dims", "legacy_stream",
           "load_params", "save_params"]

Params = Mapping[str, np.ndarray]
Scheme = Literal["scaled", "he", "xavier", "small"]
INIT_SCHEMES: tuple[str, ...] = ("scaled", "he", "xavier", "small")


def init_params(
    layer_dims: Sequence[int],
    scheme: Scheme = "scaled",
    seed: int = 1,
    dtype: npt.DTypeLike = np.float64,
) -> dict[str, np.ndarray]:
    """``{"W1": (n_1, n_0), "b1": (n_1, 1), …}`` with zero biases and random weights.

    Schemes, with n = n_{l-1} (fan-in):
    - ``"scaled"``: randn / sqrt(n), the course's application (with seed 1: its exact numbers);
    - ``"he"``: randn · sqrt(2 / n) (course 2's He initialization);
    - ``"xavier"``: randn · sqrt(1 / n) (course 2's convention, not Glorot's 2 / (n_in + n_out));
    - ``"small"``: randn · 0.01, the step-by-step notebook's (seed 3 there; seed 1 with two
      layers is the course's ``two_layer_model``). Do not train a deep net with it: each narrow
      layer scales the signal by about 0.01 · sqrt(n) (1/20 to 1/45 for 20, 7, 5 units), the
      early layers' gradients vanish, and [12288, 20, 7, 5, 1] learns only the cat fraction:
      its cost stalls at the labels' entropy, ≈ 0.644.

    The weights are drawn W1, W2, … from NumPy's legacy stream (``RandomState(seed)``, the
    same numbers as ``np.random.seed(seed)``; the global state is left alone), in float64, then
    cast to ``dtype``.
    """
    try:
        dims = [int(n) for n in layer_dims]
    except (TypeError, ValueError):
        dims = []
    if len(dims) < 2 or min(dims) < 1:
        raise ValueError(
            f"init_params: layer_dims {list(layer_dims)} needs at least 2 positive sizes "
            "(n_x, …, n_y)"
        )
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"init_params: unknown scheme {scheme!r}; expected one of {INIT_SCHEMES}")
    float_dtype = np.dtype(dtype)
    if float_dtype.kind != "f":
        raise ValueError(f"init_params: dtype must be a float dtype, got {float_dtype}")
    stream = legacy_stream(seed, "init_params")
    params: dict[str, np.ndarray] = {}
    for layer in range(1, len(dims)):
        n, n_prev = dims[layer], dims[layer - 1]
        draw = stream.randn(n, n_prev)
        # Each formula exactly as the course writes it, so the float64 numbers match bit for bit.
        if scheme == "scaled":
            weights = draw / np.sqrt(n_prev)
        elif scheme == "he":
            weights = draw * np.sqrt(2.0 / n_prev)
        elif scheme == "xavier":
            weights = draw * np.sqrt(1.0 / n_prev)
        else:
            weights = draw * 0.01
        params[f"W{layer}"] = weights.astype(float_dtype, copy=False)
        params[f"b{layer}"] = np.zeros((n, 1), dtype=float_dtype)
    return params


PARAM_KEY = re.compile(r"([Wb])([1-9][0-9]*)")


def legacy_stream(seed: int, caller: str) -> np.random.RandomState:
    """numpy's legacy stream for ``seed``: the numbers of the course's ``np.random.seed(seed)``,
    without touching numpy's global state; a clear error for a seed numpy refuses."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"{caller}: seed must be an integer in [0, 2**32), as numpy's legacy "
                         f"seed, got {seed!r}")
    return np.random.RandomState(seed)


def layer_dims(params: Params) -> list[int]:
    """``[n_0, n_1, …, n_L]`` read from the weights, after checking the keys (W1..WL, b1..bL),
    that each is an array (a TypeError naming the key otherwise: None, a string, a list), the
    shapes (Wl: (n_l, n_{l-1}), bl: (n_l, 1)) and the dtype (one float dtype for all).

    ``forward``, ``logits`` and the costs run it on every call: a dict that passes takes one
    quick pass; anything else gets the full check, which says what is wrong."""
    dims = _regular_dims(params)
    return dims if dims is not None else _checked_dims(params)


@functools.lru_cache(maxsize=64)
def _layer_keys(n_layers: int) -> tuple[tuple[str, str], ...]:
    return tuple((f"W{layer}", f"b{layer}") for layer in range(1, n_layers + 1))


def _regular_dims(params: Params) -> list[int] | None:
    """The layer sizes where params is W1, b1, …, WL, bL, arrays or Tensors of one float dtype
    whose shapes fit; None otherwise. Reads shapes and dtypes only, never values."""
    n_layers, odd = divmod(len(params), 2)
    if odd or not n_layers:
        return None
    dims: list[int] = []
    dtype: Any = None
    for w_key, b_key in _layer_keys(n_layers):
        W: Any = params.get(w_key)
        b: Any = params.get(b_key)
        if type(W) not in _ARRAYS or type(b) not in _ARRAYS:
            return None
        w_shape, w_dtype, b_dtype = W.shape, W.dtype, b.dtype
        if not dims and len(w_shape) == 2:
            dims.append(w_shape[1])
            dtype = w_dtype
        # `is` first: arrays of one dtype usually share its object, and `!=` costs more
        if (len(w_shape) != 2 or w_shape[1] != dims[-1] or b.shape != (w_shape[0], 1)
                or (w_dtype is not dtype and w_dtype != dtype)
                or (b_dtype is not dtype and b_dtype != dtype)):
            return None
        dims.append(w_shape[0])
    return dims if dtype.kind == "f" else None


_ARRAYS = (np.ndarray, Tensor)


def _checked_dims(params: Params) -> list[int]:
    """``layer_dims``, checking each key, type, shape and dtype: an error says which is wrong."""
    n_layers = max([int(m.group(2)) for key in params if (m := PARAM_KEY.fullmatch(key))],
                   default=0)
    expected = [f"{kind}{layer}" for layer in range(1, n_layers + 1) for kind in "Wb"]
    missing = [key for key in expected if key not in params]
    unexpected = sorted(set(params) - set(expected))
    if not n_layers or missing or unexpected:
        wanted = "W1, b1, …" + (f": W1..W{n_layers}, b1..b{n_layers}" if n_layers else
                                 " (e.g. from init_params)")
        details = "".join(f"; {label} {keys}" for label, keys in
                          (("missing", missing), ("unexpected", unexpected)) if keys)
        found = sorted(params, key=key_order)
        raise ValueError(f"params has keys {found}; expected {wanted}{details}")
    for key in expected:
        leaf = params[key]._data if type(params[key]) is Tensor else params[key]  # not read
        if not isinstance(leaf, np.ndarray) or leaf.dtype.kind not in "biuf":
            kind = "is None" if leaf is None else f"is {type(leaf).__name__} {leaf!r:.40}"
            if isinstance(leaf, np.ndarray):
                kind = f"has dtype {leaf.dtype}"
            number = int(key[1:])
            wanted = f"(n_{number}, n_{number - 1})" if key[0] == "W" else f"(n_{number}, 1)"
            raise TypeError(f"params['{key}'] {kind}; expected a float numpy array of shape "
                            f"{wanted}")
    dims: list[int] = []
    dtype = dtype_of(params["W1"])
    for layer in range(1, n_layers + 1):
        weights, bias = shape_of(params[f"W{layer}"]), shape_of(params[f"b{layer}"])
        if len(weights) != 2:
            raise ValueError(f"params['W{layer}'] has shape {weights}; expected 2-D "
                             f"(n_{layer}, n_{layer - 1})")
        dims += [weights[1]] if layer == 1 else []
        for name, shape, right in ((f"W{layer}", weights, (weights[0], dims[-1])),
                                   (f"b{layer}", bias, (weights[0], 1))):
            if shape != right:
                raise ValueError(f"params['{name}'] (W{layer} has shape {weights}, b{layer} "
                                 f"{bias}) has shape {shape}; expected {right}")
            found_dtype = dtype_of(params[name])
            if found_dtype.kind != "f" or found_dtype != dtype:
                raise ValueError(f"params['{name}'] has dtype {found_dtype}; expected a float "
                                 f"dtype, {dtype} like 'W1' (one dtype for all parameters)")
        dims.append(weights[0])
    return dims


_dims_of = layer_dims  # load_params' argument of the same name hides it


def key_order(key: str) -> tuple[int, str]:
    """W1, b1, W2, b2, …: the order of the layers, then the other keys."""
    match = PARAM_KEY.fullmatch(key)
    return (int(match.group(2)), match.group(1)) if match else (1 << 30, key)


def save_params(path: str | os.PathLike[str], params: Params) -> Path:
    """Write ``params`` (W1, b1, …) to an uncompressed ``.npz`` (suffix added when missing) and
    return its path. The file is written beside the target and renamed over it at the end, so
    an interrupted save (Ctrl-C, a full disk) leaves the old file whole. Object arrays are
    refused: the file never needs pickle to be read back."""
    target = Path(path)
    target = target if target.suffix == ".npz" else target.with_name(target.name + ".npz")
    arrays: dict[str, Any] = {}  # Any: np.savez's stub types **kwds like its own keywords
    for key, array in params.items():
        arrays[key] = np.asarray(value(array))
        if arrays[key].dtype.hasobject:
            raise DataError(f"cannot save {key!r} to {str(target)!r}: dtype {arrays[key].dtype} "
                            "needs pickle; expected a numeric array")
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
    return target


def load_params(path: str | os.PathLike[str], layer_dims: Sequence[int] | None = None,
                dtype: npt.DTypeLike | None = None) -> dict[str, np.ndarray]:
    """Read a ``.npz`` written by ``save_params``, without pickle, ordered W1, b1, W2, …

    The file is checked as ``nn.layer_dims`` checks parameters; ``layer_dims`` (n_0, …, n_L) and
    ``dtype`` are checked when given (the file's own dtype is used otherwise).
    """
    name = str(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"parameter file {name!r} not found")
    key = ""
    try:
        with Path(path).open("rb") as handle:
            npz = np.load(handle, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise DataError(f"{name!r} holds a single array; expected an .npz of W1, b1, ...")
            with npz:
                raw = {(key := name_): npz[name_] for name_ in npz.files}
    except DataError:
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as error:
        # np.load's bare ValueError: a file that would need pickle, or is not numpy at all
        where = f" key {key!r}" if key else ""
        raise DataError(f"cannot read {name!r}{where} as .npz without pickle ({error})") from error
    params = {key: raw[key] for key in sorted(raw, key=key_order)}
    try:
        dims = _dims_of(params)
    except ValueError as error:
        raise DataError(f"{name!r}: {error}") from None
    wanted = None if layer_dims is None else [int(n) for n in layer_dims]
    if wanted is not None and wanted != dims:
        layer = next((k for k in range(1, len(dims)) if dims[k - 1: k + 1] != wanted[k - 1: k + 1]),
                     len(dims))
        detail = (f"key 'W{layer}' has shape {params[f'W{layer}'].shape}; expected "
                  f"{tuple(wanted[layer - 1: layer + 1][::-1])}" if len(wanted) == len(dims) else
                  f"it holds {len(dims) - 1} layer(s); expected {len(wanted) - 1}")
        raise DataError(f"{name!r}: {detail} from layer_dims {wanted} (the file's: {dims})")
    if dtype is not None and params["W1"].dtype != np.dtype(dtype):
        raise DataError(f"{name!r} key 'W1' has dtype {params['W1'].dtype}; expected "
                        f"{np.dtype(dtype)}")
    return params


