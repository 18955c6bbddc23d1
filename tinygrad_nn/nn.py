"""The deep network of deeplearning.ai's course 1 week 4, as pure functions of a parameter dict.

``params`` is a plain dict ``{"W1", "b1", …, "WL", "bL"}`` of numpy arrays: ``Wl`` is
(n_l, n_{l-1}) and ``bl`` is (n_l, 1); ``X`` is (n_x, m) with one example per column.
``layer_dims = [12288, 20, 7, 5, 1]`` has L = 4 layers of weights (the input is layer 0 and
holds none). Nothing here keeps state or mutates its inputs: ``train`` returns new parameters,
gradients come from ``value_and_grad``.

Labels: a last layer of one unit is a sigmoid over two classes, and ``Y`` is (1, m) with 1 = cat,
0 = non-cat. A last layer of K > 1 units is a softmax over K classes along axis 0 (the class
axis: examples are columns everywhere), and ``Y`` is either class indices of shape (m,)
(integers in [0, K)) or one-hot columns (K, m) (``one_hot(labels, K)``). Any other label array
is an error that says which form was expected.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from tinygrad_nn import ops, optim, random
from tinygrad_nn.data import DataError
from tinygrad_nn.functional import value_and_grad
from tinygrad_nn.jit import jit as tg_jit
from tinygrad_nn.tensor import ArrayLike, Tensor, no_grad, value


__all__ = [
    "ACTIVATIONS",
    "INIT_SCHEMES",
    "DataError",
    "accuracy",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "check_shapes",
    "dropout",
    "forward",
    "init_params",
    "l2_penalty",
    "layer_dims",
    "legacy_stream",
    "linear",
    "load_params",
    "log_softmax",
    "logits",
    "mini_batches",
    "model_cost",
    "one_hot",
    "predict",
    "save_params",
    "sgd_update",
    "softmax",
    "softmax_cross_entropy",
    "std",
    "train",
    "var",
]

Params = Mapping[str, np.ndarray]
Scheme = Literal["scaled", "he", "xavier", "small"]
INIT_SCHEMES: tuple[str, ...] = ("scaled", "he", "xavier", "small")

# --------------------------------------------------------------------------- building blocks
# Composites of the engine's ops: the class axis is 0 (examples are columns).


def log_softmax(x: ArrayLike, axis: int = 0) -> Tensor:
    """x - logsumexp(x): log-probabilities over ``axis`` (the class axis, 0)."""
    return ops.sub(x, ops.logsumexp(x, axis, keepdims=True))


def softmax(x: ArrayLike, axis: int = 0) -> Tensor:
    """exp(log_softmax(x)): probabilities over ``axis`` (the class axis, 0) that sum to 1."""
    return ops.exp(log_softmax(x, axis))


def var(x: ArrayLike, axis: ops.Axis = None, keepdims: bool = False) -> Tensor:
    """The mean squared deviation from the mean over ``axis`` (numpy's ddof=0)."""
    deviation = ops.sub(x, ops.mean(x, axis, keepdims=True))
    return ops.mean(ops.mul(deviation, deviation), axis, keepdims)


def std(x: ArrayLike, axis: ops.Axis = None, keepdims: bool = False) -> Tensor:
    """√var(x) over ``axis``."""
    return ops.sqrt(var(x, axis, keepdims))


ACTIVATIONS: dict[str, Callable[[Any], Tensor]] = {
    "relu": ops.relu,
    "sigmoid": ops.sigmoid,
    "tanh": ops.tanh,
    "linear": ops.identity,
    "softmax": softmax,  # over axis 0, the classes
}


# --------------------------------------------------------------------------- parameters


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


_PARAM_KEY = re.compile(r"([Wb])([1-9][0-9]*)")


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
    shapes (Wl: (n_l, n_{l-1}), bl: (n_l, 1)) and the dtype (one float dtype for all)."""
    n_layers = max([int(m.group(2)) for key in params if (m := _PARAM_KEY.fullmatch(key))],
                   default=0)
    expected = [f"{kind}{layer}" for layer in range(1, n_layers + 1) for kind in "Wb"]
    missing = [key for key in expected if key not in params]
    unexpected = sorted(set(params) - set(expected))
    if not n_layers or missing or unexpected:
        wanted = "W1, b1, …" + (f": W1..W{n_layers}, b1..b{n_layers}" if n_layers else
                                 " (e.g. from init_params)")
        details = "".join(f"; {label} {keys}" for label, keys in
                          (("missing", missing), ("unexpected", unexpected)) if keys)
        found = sorted(params, key=_key_order)
        raise ValueError(f"params has keys {found}; expected {wanted}{details}")
    for key in expected:
        leaf = value(params[key])
        if not isinstance(leaf, np.ndarray) or leaf.dtype.kind not in "biuf":
            kind = "is None" if leaf is None else f"is {type(leaf).__name__} {leaf!r:.40}"
            if isinstance(leaf, np.ndarray):
                kind = f"has dtype {leaf.dtype}"
            number = int(key[1:])
            wanted = f"(n_{number}, n_{number - 1})" if key[0] == "W" else f"(n_{number}, 1)"
            raise TypeError(f"params['{key}'] {kind}; expected a float numpy array of shape "
                            f"{wanted}")
    dims: list[int] = []
    dtype = np.asarray(value(params["W1"])).dtype
    for layer in range(1, n_layers + 1):
        weights, bias = np.shape(params[f"W{layer}"]), np.shape(params[f"b{layer}"])
        if len(weights) != 2:
            raise ValueError(f"params['W{layer}'] has shape {weights}; expected 2-D "
                             f"(n_{layer}, n_{layer - 1})")
        dims += [weights[1]] if layer == 1 else []
        for name, shape, right in ((f"W{layer}", weights, (weights[0], dims[-1])),
                                   (f"b{layer}", bias, (weights[0], 1))):
            if shape != right:
                raise ValueError(f"params['{name}'] (W{layer} has shape {weights}, b{layer} "
                                 f"{bias}) has shape {shape}; expected {right}")
            found_dtype = np.asarray(value(params[name])).dtype
            if found_dtype.kind != "f" or found_dtype != dtype:
                raise ValueError(f"params['{name}'] has dtype {found_dtype}; expected a float "
                                 f"dtype, {dtype} like 'W1' (one dtype for all parameters)")
        dims.append(weights[0])
    return dims


_dims_of = layer_dims  # load_params' argument of the same name hides it


def _key_order(key: str) -> tuple[int, str]:
    match = _PARAM_KEY.fullmatch(key)
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
    params = {key: raw[key] for key in sorted(raw, key=_key_order)}
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




def _float_tensor(x: ArrayLike) -> Tensor:
    """x as a Tensor of a float dtype (integers become float64; Tensors pass as they are)."""
    if type(x) is Tensor:
        return x if x.dtype.kind == "f" else ops.astype(x, np.float64)
    array = np.asarray(x)
    return Tensor(array if array.dtype.kind == "f" else array.astype(np.float64))


def check_shapes(params: Params, X: ArrayLike, Y: ArrayLike | None = None) -> list[int]:
    """Raise ValueError (saying how to fix it) unless X is (n_x, m) and Y holds labels for the
    last layer: (1, m) in [0, 1] for one unit, class indices (m,) or one-hot (K, m) for K units.

    Returns ``layer_dims(params)``.
    """
    dims = layer_dims(params)
    n_x = dims[0]
    x_shape = np.shape(X)
    if len(x_shape) != 2 or x_shape[0] != n_x:
        hint = ""
        if len(x_shape) == 4:
            hint = "; flatten pictures with tinygrad_nn.data.flatten_images(images)"
        elif len(x_shape) == 1 and x_shape[0] == n_x:
            hint = "; one example is a column: X.reshape(-1, 1)"
        elif len(x_shape) == 2 and x_shape[1] == n_x:
            hint = "; it holds examples in rows: pass X.T"
        raise ValueError(
            f"X has shape {x_shape}; expected (n_x, m) = ({n_x}, m), one example per column{hint}"
        )
    if Y is not None:
        _label_form(Y, dims[-1], x_shape[1], "")
    return dims


def _label_form(Y: ArrayLike, classes: int, m: int, caller: str) -> str:
    """``"binary"``, ``"indices"`` or ``"one_hot"``: the form of the labels Y of m examples for a
    last layer of ``classes`` units, or an error saying which forms fit. Values are checked only
    on arrays (a traced Tensor's values are not read)."""
    if classes == 1:
        _binary_labels(Y, m, caller)
        return "binary"
    return _class_labels(Y, classes, m, caller)


def _binary_labels(Y: ArrayLike, m: int, caller: str) -> None:
    prefix = f"{caller}: " if caller else ""
    y_shape = np.shape(value(Y))
    if y_shape != (1, m):
        hint = ""
        if y_shape == (m,):
            hint = "; labels are one row, a label per column of X: Y = Y.reshape(1, -1)"
        elif y_shape == (m, 1):
            hint = (". A column of labels broadcasts against the (1, m) predictions into an "
                    "(m, m) matrix and silently gives a wrong cost: Y = Y.reshape(1, -1)")
        elif len(y_shape) == 2 and y_shape[1] == m:
            hint = (f"; labels of {y_shape[0]} classes need a last layer of {y_shape[0]} units "
                    "(softmax)")
        raise ValueError(f"{prefix}Y has shape {y_shape}; expected (1, m) = (1, {m}) for a last "
                         f"layer of one unit (sigmoid){hint}")
    if type(Y) is not Tensor:
        labels = np.asarray(Y)
        outside = labels[(labels < 0) | (labels > 1)] if labels.dtype.kind in "biuf" else labels
        if outside.size:
            raise ValueError(f"{prefix}Y holds {outside.flat[0].item()!r}, not a binary label "
                             "in [0, 1] (1 = cat, 0 = non-cat); K classes need a last layer of K "
                             "units, with labels as class indices (m,) or one-hot (K, m)")


def _class_labels(Y: ArrayLike, classes: int, m: int, caller: str) -> str:
    prefix = f"{caller}: " if caller else ""
    labels = value(Y)
    y_shape, dtype = np.shape(labels), np.asarray(labels).dtype
    if y_shape == (m,):
        if dtype.kind not in "iu":
            raise TypeError(f"{prefix}Y holds class indices of dtype {dtype}; expected integers "
                            f"in [0, {classes}) (Y.astype(np.int64))")
        if type(Y) is not Tensor and m:
            low, high = int(np.min(labels)), int(np.max(labels))
            if low < 0 or high >= classes:
                raise ValueError(f"{prefix}Y holds the class index {low if low < 0 else high}, "
                                 f"outside [0, {classes}) for a last layer of {classes} units")
        return "indices"
    if y_shape == (classes, m) and dtype.kind in "biuf":
        return "one_hot"
    hint = ""
    if y_shape == (1, m):
        hint = f": class indices are Y.ravel(), one-hot labels nn.one_hot(Y.ravel(), {classes})"
    elif y_shape == (m, classes):
        hint = ": one-hot labels hold one example per column: pass Y.T"
    elif len(y_shape) == 2 and y_shape[1] == m:
        hint = f": {y_shape[0]} rows of labels for {classes} output units"
    raise ValueError(f"{prefix}Y has shape {y_shape}; expected class indices (m,) = ({m},) or "
                     f"one-hot labels (K, m) = ({classes}, {m}) for a last layer of K = "
                     f"{classes} units{hint}")


def one_hot(labels: ArrayLike, num_classes: int, dtype: npt.DTypeLike = np.float64) -> Any:
    """Class indices (m,), integers in [0, K), as one-hot columns (K, m) in ``dtype``: column i
    holds a 1 in row labels[i]. Labels in a Tensor give a Tensor computed by the ops (a traced
    program recomputes it); arrays give an array."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or (
            num_classes < 1):
        raise ValueError(f"one_hot: num_classes must be a positive integer, got {num_classes!r}")
    shape = np.shape(value(labels))
    if len(shape) != 1:
        raise ValueError(f"one_hot: labels have shape {shape}; expected class indices (m,)")
    _class_labels(labels, int(num_classes), shape[0], "one_hot")
    rows = np.arange(num_classes).reshape(-1, 1)
    if type(labels) is Tensor:
        return ops.astype(ops.equal(rows, ops.reshape(labels, 1, -1)), dtype)
    return (rows == np.asarray(labels).reshape(1, -1)).astype(dtype)


# --------------------------------------------------------------------------- the model


def linear(A: ArrayLike, W: ArrayLike, b: ArrayLike) -> Tensor:
    """Z = W A + b: (n_l, n_{l-1}) @ (n_{l-1}, m) + (n_l, 1) -> (n_l, m)."""
    return ops.add(ops.matmul(W, A), b)


def _activation(name: str) -> Callable[[Any], Tensor]:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}"
        ) from None


def logits(params: Params, X: ArrayLike, hidden_activation: str = "relu") -> Tensor:
    """Z_L (n_L, m): the last layer's linear output, before the output activation."""
    n_layers = len(params) // 2
    if len(np.shape(X)) != 2:
        check_shapes(params, X)  # a 1-D X would broadcast silently against the (n, 1) biases
    hidden = _activation(hidden_activation)
    A: Any = X
    for layer in range(1, n_layers):
        A = hidden(linear(A, params[f"W{layer}"], params[f"b{layer}"]))
    return linear(A, params[f"W{n_layers}"], params[f"b{n_layers}"])


def forward(
    params: Params,
    X: ArrayLike,
    hidden_activation: str = "relu",
    output_activation: str | None = None,
) -> Tensor:
    """A_L (n_L, m): ``hidden_activation`` (ReLU) on layers 1..L-1, ``output_activation`` last
    (None: sigmoid for one output unit, softmax over the class axis 0 for K > 1)."""
    Z = logits(params, X, hidden_activation)
    if output_activation is None:
        output_activation = "sigmoid" if Z.shape[0] == 1 else "softmax"
    return _activation(output_activation)(Z)


def _labels_like(Y: ArrayLike, like: Tensor, caller: str) -> Any:
    """Y in the predictions' dtype (int64 labels must not upcast a float32 cost), same shape."""
    y_shape = np.shape(Y)
    if y_shape != like.shape:
        hint = ""
        if like.ndim == 2 and like.shape[0] == 1 and y_shape == (like.size,):
            hint = "; labels are one row, a label per column: Y = Y.reshape(1, -1)"
        elif like.ndim == 2 and like.shape[0] == 1 and y_shape == (like.size, 1):
            hint = ("; a column of labels would broadcast into an (m, m) matrix and silently "
                    "give a wrong cost: Y = Y.reshape(1, -1)")
        raise ValueError(
            f"{caller}: Y has shape {y_shape}; expected the predictions' shape {like.shape}{hint}"
        )
    if isinstance(Y, Tensor):
        return Y
    return np.asarray(Y, dtype=like.dtype)


def _log_floored(x: Tensor, floor: float) -> Tensor:
    """log(x) for x in [0, 1], with log(floor) where x is exactly 0 (gradient 0 there)."""
    positive = x > 0  # a comparison op: a traced program recomputes it
    # The inner where keeps log's input at 1 where x == 0, so no 1/0 in the backward pass.
    safe = ops.log(ops.where(positive, x, 1))
    return ops.where(positive, safe, np.log(np.asarray(floor, dtype=x.dtype)))


def binary_cross_entropy(AL: ArrayLike, Y: ArrayLike) -> Tensor:
    """The course's cost −(1/m) Σ [Y log AL + (1 − Y) log(1 − AL)] of probabilities AL (1, m).

    Equal to the course's formula wherever that is finite. Where the sigmoid saturated (AL
    rounded to exactly 0 or 1) the course's ``log(AL)`` gives −inf and ``0 · log 0`` NaN; here a
    saturated AL counts as the nearest value the float can hold short of it (the smallest
    positive float for AL, 1 − eps/2 for 1 − AL), so the cost stays finite and its gradient is 0
    at those entries. To train, prefer ``binary_cross_entropy_with_logits``: it is exact there.
    """
    probabilities = _float_tensor(AL)
    if np.any((probabilities.data < 0) | (probabilities.data > 1)):
        raise ValueError(
            "binary_cross_entropy: AL must hold probabilities in [0, 1] (sigmoid outputs); "
            "for raw scores use binary_cross_entropy_with_logits"
        )
    labels = _labels_like(Y, probabilities, "binary_cross_entropy")
    info = np.finfo(probabilities.dtype)
    log_p = _log_floored(probabilities, float(info.smallest_subnormal))
    log_not_p = _log_floored(1 - probabilities, float(info.epsneg))
    return ops.neg(ops.mean(labels * log_p + (1 - labels) * log_not_p))


def binary_cross_entropy_with_logits(Z: ArrayLike, Y: ArrayLike) -> Tensor:
    """The same cost from logits Z (1, m), where AL = sigmoid(Z): mean(softplus(Z) − Y Z).

    −[Y log σ(Z) + (1 − Y) log(1 − σ(Z))] = softplus(Z) − Y Z exactly, and softplus never
    overflows, so the cost is finite for every finite Z and its gradient is (σ(Z) − Y) / m.
    """
    scores = _float_tensor(Z)
    labels = _labels_like(Y, scores, "binary_cross_entropy_with_logits")
    return ops.mean(ops.softplus(scores) - labels * scores)


def softmax_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> Tensor:
    """−(1/m) Σ_i log softmax(Z)[y_i, i]: the cross-entropy of logits Z (K, m), one column of K
    class scores per example, against class indices (m,) (integers in [0, K)) or one-hot (or
    probability) columns (K, m). Exact for any finite logits (``log_softmax`` shifts by the
    max); PyTorch's ``cross_entropy(Z.T, y)``, which holds examples in rows."""
    scores = _float_tensor(logits)
    if scores.ndim != 2:
        raise ValueError(f"softmax_cross_entropy: logits have shape {scores.shape}; expected "
                         "(K, m), a column of K class scores per example")
    classes, m = scores.shape
    form = _class_labels(labels, classes, m, "softmax_cross_entropy")
    targets = (one_hot(labels, classes, scores.dtype) if form == "indices" else
               _labels_like(labels, scores, "softmax_cross_entropy"))
    return ops.neg(ops.mean(ops.sum(ops.mul(targets, log_softmax(scores, 0)), 0)))


def model_cost(
    params: Params, X: ArrayLike, Y: ArrayLike, hidden_activation: str = "relu"
) -> Tensor:
    """The training cost from the logits (stable): binary cross-entropy for one output unit,
    softmax cross-entropy for K > 1 (Y as class indices (m,) or one-hot (K, m))."""
    Z = logits(params, X, hidden_activation)
    if Z.shape[0] == 1:
        return binary_cross_entropy_with_logits(Z, Y)
    return softmax_cross_entropy(Z, Y)


def predict(
    params: Params, X: ArrayLike, hidden_activation: str = "relu", threshold: float = 0.5
) -> np.ndarray:
    """Predicted labels, int64: for one output unit (1, m), 1 (cat) where sigmoid(Z_L) >
    threshold, as the course's ``predict``; for K > 1 units the class indices (m,), argmax of
    Z_L over the class axis 0 (``threshold`` is not used)."""
    check_shapes(params, X)
    with no_grad():
        Z = logits(params, X, hidden_activation).data
    if Z.shape[0] > 1:
        return np.argmax(Z, axis=0)
    return (ops.sigmoid.impl(Z) > threshold).astype(np.int64)


def accuracy(
    params: Params, X: ArrayLike, Y: ArrayLike, hidden_activation: str = "relu"
) -> float:
    """The fraction of the m examples in X whose predicted label equals Y: binary labels (1, m)
    of 0 and 1 for one output unit; class indices (m,) or one-hot columns (K, m) for K units."""
    dims = check_shapes(params, X, Y)
    labels = np.asarray(value(Y))
    if dims[-1] == 1 and not np.isin(labels, (0, 1)).all():
        raise ValueError("accuracy: Y holds labels that are neither 0 nor 1 (soft labels?); "
                         "expected binary labels (1, m) of 0 and 1")
    if dims[-1] > 1 and labels.ndim == 2:
        if not (np.isin(labels, (0, 1)).all() and (labels.sum(axis=0) == 1).all()):
            raise ValueError("accuracy: Y (K, m) is not one-hot (a single 1 in each column); "
                             "expected class indices (m,) or one-hot columns (K, m)")
        labels = np.argmax(labels, axis=0)
    return float(np.mean(predict(params, X, hidden_activation) == labels))


# --------------------------------------------------------------------------- regularization


def l2_penalty(params: Params, lambd: float, m: int) -> Tensor:
    """The course's L2 term λ/(2m) · Σ_l ‖W_l‖² (squared Frobenius norms of W1..WL; biases
    excluded), to add to the cost of m examples: its gradient adds (λ/m)·W_l to dW_l."""
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise ValueError(f"l2_penalty: m (the number of examples) must be a positive integer, "
                         f"got {m!r}")
    if not lambd >= 0:
        raise ValueError(f"l2_penalty: lambd must be >= 0, got {lambd}")
    weights = [params[key] for key in params if (match := _PARAM_KEY.fullmatch(key))
               and match.group(1) == "W"]
    if not weights:
        raise ValueError(f"l2_penalty: params has keys {sorted(params)}; expected weights W1, "
                         "W2, … (biases b1, b2, … are not penalized)")
    total: Any = ops.sum(ops.mul(weights[0], weights[0]))
    for W in weights[1:]:
        total = ops.add(total, ops.sum(ops.mul(W, W)))
    return ops.mul(total, lambd / (2 * int(m)))


def dropout(key: Any, A: ArrayLike, keep_prob: float) -> Any:
    """Inverted dropout of activations A: each entry kept with probability ``keep_prob`` (a
    mask drawn from ``key``, ``tg.random``) and scaled by 1 / keep_prob, so that the expected
    activation is unchanged: A · D / keep_prob. keep_prob = 1 returns A itself (no draw): use
    it for predictions. Draw a new key for each layer and each step (``tg.random.split``)."""
    if not 0 < keep_prob <= 1:
        raise ValueError(f"dropout: keep_prob must be in (0, 1], got {keep_prob}")
    if keep_prob == 1:
        return A
    mask = random.bernoulli(key, keep_prob, np.shape(value(A)))
    return ops.div(ops.mul(A, mask), keep_prob)


# --------------------------------------------------------------------------- mini-batches


def mini_batches(key: Any, X: ArrayLike, Y: ArrayLike,
                 batch_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(X_batch, Y_batch), …]``: the columns (examples) of X (n_x, m) and Y (…, m) in one
    random order drawn from ``key`` (``tg.random``), cut into batches of ``batch_size`` columns,
    the last one smaller when batch_size does not divide m. Labels keep their form: (1, m),
    (K, m) or class indices (m,)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or (
            batch_size < 1):
        raise ValueError(f"mini_batches: batch_size must be a positive integer, got "
                         f"{batch_size!r}")
    inputs, labels = np.asarray(value(X)), np.asarray(value(Y))
    if inputs.ndim != 2 or labels.ndim == 0 or labels.shape[-1] != inputs.shape[1]:
        raise ValueError(f"mini_batches: X has shape {inputs.shape} and Y {labels.shape}; "
                         "expected X (n_x, m) and Y (…, m) with the same m, one example per "
                         "column")
    m = inputs.shape[1]
    order = np.asarray(random.permutation(key, m))
    return [(inputs[:, chosen], labels[..., chosen])
            for chosen in (order[start:start + batch_size] for start in range(0, m, batch_size))]


# --------------------------------------------------------------------------- training

Callback = Callable[[int, float, dict[str, np.ndarray]], bool | None]

# Runs at least this long get a progress bar when stderr is a terminal and tqdm is installed.
_PROGRESS_MIN_ITERATIONS = 500


class _Progress:
    """A tqdm bar when wanted and installed; lines printed through it keep the bar intact."""

    def __init__(self, total: int, enabled: bool | None):
        if enabled is None:
            enabled = total >= _PROGRESS_MIN_ITERATIONS and sys.stderr.isatty()
        self._bar: Any = None
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                return
            self._bar = tqdm(total=total, unit="it", desc="train", leave=False)

    def update(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def write(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=sys.stdout)
        else:
            print(line)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def sgd_update(
    params: Params, grads: Params, learning_rate: float, *, donate_grads: bool = False
) -> dict[str, np.ndarray]:
    """One gradient-descent step: ``{k: params[k] - learning_rate * grads[k]}`` as new arrays.

    ``grads`` has the keys and shapes of ``params`` (as ``value_and_grad`` returns them).
    ``params`` is never modified. Each result is computed as ``(-learning_rate · g) + p``, which
    rounds exactly as ``p - learning_rate · g`` but allocates one array instead of two. With
    ``donate_grads=True`` the results are written into the gradient arrays themselves (buffer
    donation, as in JAX): no new memory at all, and ``grads`` must not be used afterwards.
    That is what ``train`` does with the gradients it owns; where a gradient cannot take the
    result (not a writable array of the parameter's dtype and shape) a new array is used.
    Each new parameter has the old one's dtype (float32 stays float32 under a float64 rate
    or gradient).
    """
    if params.keys() != grads.keys():
        missing, extra = sorted(params.keys() - grads.keys()), sorted(grads.keys() - params.keys())
        raise ValueError(
            f"sgd_update: grads must have the keys of params; missing {missing}, extra {extra}"
        )
    updated: dict[str, Any] = {}
    scale = None  # -learning_rate in the parameters' dtype
    for key in params:
        param: Any = params[key]
        grad: Any = grads[key]
        donate = donate_grads
        if type(param) is not np.ndarray or type(grad) is not np.ndarray:  # Tensors: recorded
            param, grad = _float_tensor(param), _float_tensor(grad)
            donate = False
        if grad.shape != param.shape:
            raise ValueError(
                f"sgd_update: grads['{key}'] has shape {grad.shape}; expected params['{key}']'s "
                f"shape {param.shape} (a gradient is never broadcast into a parameter)"
            )
        if scale is None or scale.dtype != param.dtype:
            if param.dtype.kind != "f":
                raise ValueError(
                    f"sgd_update: params['{key}'] has dtype {param.dtype}; expected a float dtype"
                )
            scale = param.dtype.type(-learning_rate)
        if grad.dtype != param.dtype:  # the new parameter keeps the old one's dtype
            grad, donate = grad.astype(param.dtype), type(grad) is np.ndarray  # a copy of our own
        if type(grad) is Tensor or type(param) is Tensor:  # inside jit or another transform
            updated[key] = ops.add(ops.mul(grad, scale), param)
            continue
        if donate and grad.flags.writeable and grad is not param:
            new = np.multiply(grad, scale, out=grad)
        else:
            new = grad * scale
        new += param
        updated[key] = new
    return updated


class _CtrlC:
    """Ctrl-C (SIGINT) during training: the step that runs finishes, then training stops. A
    second Ctrl-C interrupts at once (KeyboardInterrupt, which ``train`` also catches). Set up
    only in the main thread and over Python's own handler; elsewhere only the second way is."""

    def __init__(self) -> None:
        self.pressed = False
        self.previous: Any = None  # the handler to restore, once ours is set

    def __enter__(self) -> _CtrlC:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self.previous = signal.signal(signal.SIGINT, self._press)
        return self

    def _press(self, signum: int, frame: Any) -> None:
        self.pressed = True
        signal.signal(signal.SIGINT, self.previous)  # the next Ctrl-C raises at once

    def __exit__(self, *exc_info: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def train(
    params: Params,
    X: ArrayLike,
    Y: ArrayLike,
    learning_rate: float | None = None,
    num_iterations: int = 2500,
    *,
    optimizer: optim.Optimizer | None = None,
    batch_size: int | None = None,
    key: Any = None,
    hidden_activation: str = "relu",
    print_cost: bool = False,
    record_every: int = 100,
    progress: bool | None = None,
    callback: Callback | None = None,
    jit: bool = True,
) -> tuple[dict[str, np.ndarray], list[float]]:
    """Gradient descent on the logits cost (``model_cost``); returns (new params, costs).

    By default each iteration is one full-batch step ``nn.sgd_update`` at ``learning_rate``
    (0.0075, the course's). ``optimizer`` (an ``optim`` pair such as ``optim.adam(1e-3)``, which
    carries its own learning rate) takes the step instead. With ``batch_size`` and a ``key``
    (``tg.random.key(seed)``) each iteration is an epoch: one pass over the m examples in a new
    random order, in ``mini_batches`` of that size (a step each), the key split once per epoch.

    ``costs[k]`` is the cost at iteration ``k · record_every``, computed in the same forward pass
    as that iteration's gradient (before its update), as the course records it; an epoch's cost
    is the mean over its m examples. With ``print_cost`` each recorded cost (and the last one)
    is printed as the course does: ``Cost after iteration i: c`` (``epoch`` with mini-batches).
    ``progress`` shows a tqdm bar over the iterations (None: on long runs when stderr is a
    terminal). ``callback(i, cost, params)`` runs after each iteration; returning True stops.

    Ctrl-C stops cleanly: the step that runs finishes, training says at which iteration and
    cost it stopped, and the parameters and costs reached so far are returned (a second
    Ctrl-C, or a KeyboardInterrupt from ``callback``, stops at once with the last finished
    step's). Labels: see the module's doc; class indices become one-hot columns once. The
    parameters' dtype is the computation's: X and Y are converted to it once (float32 or
    float64 end to end). ``params`` is not modified.

    The step (cost, gradients, update) runs under ``tg.jit`` (``jit=False``: eager, op by op;
    the numbers are the same): traced on the first iteration, replayed after. Without a
    ``callback`` to keep iterates, the parameters of one step take the next step's results in
    place (donated), so a step allocates nothing the size of ``W1``.
    """
    dims = check_shapes(params, X, Y)
    if optimizer is not None and learning_rate is not None:
        raise ValueError("train: the optimizer carries its own learning rate (e.g. "
                         "optim.adam(learning_rate)); pass learning_rate only without one")
    rate = 0.0075 if learning_rate is None else learning_rate
    if rate <= 0 or num_iterations < 0 or record_every < 1:
        raise ValueError(
            f"train: need learning_rate > 0, num_iterations >= 0 and record_every >= 1; got "
            f"{rate}, {num_iterations} and {record_every}"
        )
    if (batch_size is None) != (key is None):
        raise ValueError("train: mini-batches need both batch_size and a key to shuffle them "
                         "(key=tg.random.key(seed)); pass neither for full-batch steps")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(
            batch_size, (int, np.integer)) or batch_size < 1):
        raise ValueError(f"train: batch_size must be a positive integer, got {batch_size!r}")
    _activation(hidden_activation)
    dtype = np.asarray(value(params["W1"])).dtype
    X = np.asarray(value(X), dtype=dtype)
    if _label_form(Y, dims[-1], X.shape[1], "train") == "indices":
        Y = one_hot(np.asarray(value(Y)), dims[-1], dtype)
    Y = np.asarray(value(Y), dtype=dtype)
    donate = jit and callback is None  # then nobody else sees an iterate: ours to overwrite
    params = {name: np.array(value(array), copy=donate) for name, array in params.items()}
    cost_and_grads = value_and_grad(model_cost)
    state = None if optimizer is None else optimizer.init(params)
    unit = "iteration" if batch_size is None else "epoch"

    def step(params: dict[str, np.ndarray], state: Any, X: np.ndarray,
             Y: np.ndarray) -> tuple[Any, dict[str, np.ndarray], Any]:
        cost_value, grads = cost_and_grads(params, X, Y, hidden_activation)
        if optimizer is None:
            # The gradients are ours alone, so they take the new parameters (no new memory);
            # the caller's params and earlier iterates are never overwritten.
            return cost_value, sgd_update(params, grads, rate, donate_grads=True), state
        params, state = optimizer.update(grads, state, params)
        return cost_value, params, state

    run_step = tg_jit(step, donate_argnums=(0, 1) if donate else ()) if jit else step

    costs: list[float] = []
    finished: tuple[int, int, int, float] | None = None  # iteration, batch, batches, cost
    bar, ctrl_c = _Progress(num_iterations, progress), _CtrlC()
    try:
        with ctrl_c:
            for i in range(num_iterations):
                if batch_size is None:
                    cost_value, params, state = run_step(params, state, X, Y)
                    cost = float(cost_value)
                else:
                    key, epoch_key = random.split(key)
                    batches, total = mini_batches(epoch_key, X, Y, batch_size), 0.0
                    for number, (X_batch, Y_batch) in enumerate(batches, start=1):
                        batch_cost, params, state = run_step(params, state, X_batch, Y_batch)
                        total += float(batch_cost) * X_batch.shape[1]
                        finished = (i, number, len(batches), float(batch_cost))
                        if ctrl_c.pressed and number < len(batches):
                            break
                    if ctrl_c.pressed and finished is not None and finished[1] < finished[2]:
                        break
                    cost_value = cost = total / X.shape[1]
                finished = (i, 0, 0, cost)
                if i % record_every == 0:
                    costs.append(cost)
                if print_cost and (i % record_every == 0 or i == num_iterations - 1):
                    bar.write(f"Cost after {unit} {i}: {np.squeeze(cost_value)}")
                bar.update()
                if callback is not None and callback(i, cost, params):
                    break
                if ctrl_c.pressed:
                    break
    except KeyboardInterrupt:
        ctrl_c.pressed = True
    finally:
        bar.close()
    if ctrl_c.pressed:
        print(f"Interrupted (Ctrl-C): training stopped {_where(finished, unit)}; returning the "
              "parameters reached and the costs recorded so far")
    return params, costs


def _where(finished: tuple[int, int, int, float] | None, unit: str) -> str:
    """Where an interrupted training stopped, for its message."""
    if finished is None:
        return "before its first step finished (the parameters are the initial ones)"
    i, number, batches, cost = finished
    if number:
        return f"in {unit} {i} after mini-batch {number} of {batches} (its cost {cost:.6g})"
    return f"after {unit} {i} (cost {cost:.6g})"
