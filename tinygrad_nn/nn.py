"""The deep network of deeplearning.ai's course 1 week 4, as pure functions of a parameter dict.

``params`` is a plain dict ``{"W1", "b1", …, "WL", "bL"}`` of numpy arrays: ``Wl`` is
(n_l, n_{l-1}) and ``bl`` is (n_l, 1); ``X`` is (n_x, m) with one example per column and ``Y``
is (1, m) with 1 = cat, 0 = non-cat. ``layer_dims = [12288, 20, 7, 5, 1]`` has L = 4 layers of
weights (the input is layer 0 and holds none). Nothing here keeps state or mutates its inputs:
``train`` returns new parameters, gradients come from ``value_and_grad``.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from tinygrad_nn import ops
from tinygrad_nn.functional import value_and_grad
from tinygrad_nn.tensor import ArrayLike, Tensor, no_grad, value


class DataError(ValueError):
    """A data or parameter file exists but does not hold what this project expects."""


__all__ = [
    "ACTIVATIONS",
    "INIT_SCHEMES",
    "DataError",
    "accuracy",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "check_shapes",
    "forward",
    "init_params",
    "layer_dims",
    "linear",
    "load_params",
    "logits",
    "model_cost",
    "predict",
    "save_params",
    "sgd_update",
    "train",
]

Params = Mapping[str, np.ndarray]
Scheme = Literal["scaled", "he", "xavier", "small"]
INIT_SCHEMES: tuple[str, ...] = ("scaled", "he", "xavier", "small")

ACTIVATIONS: dict[str, Callable[[Any], Tensor]] = {
    "relu": ops.relu,
    "sigmoid": ops.sigmoid,
    "tanh": ops.tanh,
    "linear": ops.identity,
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
    dims = [int(n) for n in layer_dims]
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
    stream = np.random.RandomState(seed)
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


def layer_dims(params: Params) -> list[int]:
    """``[n_0, n_1, …, n_L]`` read from the weights, after checking the keys (W1..WL, b1..bL),
    the shapes (Wl: (n_l, n_{l-1}), bl: (n_l, 1)) and the dtype (one float dtype for all)."""
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
    """Raise ValueError (saying how to fix it) unless X is (n_x, m) and Y is (1, m).

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
        m = x_shape[1]
        y_shape = np.shape(Y)
        if y_shape != (1, m):
            hint = ""
            if y_shape in ((m,), (m, 1)):
                hint = (
                    f". A label vector of shape {y_shape} broadcasts against the (1, m) "
                    "predictions into an (m, m) matrix and silently gives a wrong cost; "
                    "fix it with Y = Y.reshape(1, -1)"
                )
            raise ValueError(f"Y has shape {y_shape}; expected (1, m) = (1, {m}){hint}")
    return dims


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
    output_activation: str = "sigmoid",
) -> Tensor:
    """A_L (n_L, m): ``hidden_activation`` (ReLU) on layers 1..L-1, ``output_activation`` last."""
    return _activation(output_activation)(logits(params, X, hidden_activation))


def _labels_like(Y: ArrayLike, like: Tensor, caller: str) -> Any:
    """Y in the predictions' dtype (int64 labels must not upcast a float32 cost), same shape."""
    y_shape = np.shape(Y)
    if y_shape != like.shape:
        hint = ""
        if like.ndim == 2 and like.shape[0] == 1 and y_shape in ((like.size,), (like.size, 1)):
            hint = (
                f"; a label vector of shape {y_shape} would broadcast into an (m, m) matrix "
                "and silently give a wrong cost: Y = Y.reshape(1, -1)"
            )
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


def model_cost(
    params: Params, X: ArrayLike, Y: ArrayLike, hidden_activation: str = "relu"
) -> Tensor:
    """The training cost of a sigmoid-output network, from its logits (stable)."""
    return binary_cross_entropy_with_logits(logits(params, X, hidden_activation), Y)


def predict(
    params: Params, X: ArrayLike, hidden_activation: str = "relu", threshold: float = 0.5
) -> np.ndarray:
    """Labels (1, m) int64: 1 (cat) where sigmoid(Z_L) > threshold, as the course's ``predict``."""
    check_shapes(params, X)
    with no_grad():
        probabilities = forward(params, X, hidden_activation).data
    return (probabilities > threshold).astype(np.int64)


def accuracy(
    params: Params, X: ArrayLike, Y: ArrayLike, hidden_activation: str = "relu"
) -> float:
    """The fraction of the m examples in X whose predicted label equals Y (1, m)."""
    check_shapes(params, X, Y)
    return float(np.mean(predict(params, X, hidden_activation) == np.asarray(value(Y))))


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


def train(
    params: Params,
    X: ArrayLike,
    Y: ArrayLike,
    learning_rate: float = 0.0075,
    num_iterations: int = 2500,
    *,
    hidden_activation: str = "relu",
    print_cost: bool = False,
    record_every: int = 100,
    progress: bool | None = None,
    callback: Callback | None = None,
) -> tuple[dict[str, np.ndarray], list[float]]:
    """Batch gradient descent on the logits cost; returns (new params, costs).

    ``costs[k]`` is the cost at iteration ``k · record_every``, computed in the same forward pass
    as that iteration's gradient (before its update), as the course records it. With
    ``print_cost`` each recorded cost (and the last one) is printed as the course does:
    ``Cost after iteration i: c``. ``progress`` shows a tqdm bar (None: on long runs when stderr
    is a terminal). ``callback(i, cost, params)`` runs after each update; returning True stops.
    The parameters' dtype is the computation's: X and Y are converted to it once (float32 or
    float64 end to end). ``params`` is not modified.
    """
    check_shapes(params, X, Y)
    if learning_rate <= 0 or num_iterations < 0 or record_every < 1:
        raise ValueError(
            f"train: need learning_rate > 0, num_iterations >= 0 and record_every >= 1; got "
            f"{learning_rate}, {num_iterations} and {record_every}"
        )
    _activation(hidden_activation)
    dtype = np.asarray(value(params["W1"])).dtype
    if dtype.kind != "f":
        raise ValueError(f"train: params must be float arrays, got dtype {dtype}")
    X = np.asarray(value(X), dtype=dtype)
    Y = np.asarray(value(Y), dtype=dtype)
    params = {key: np.asarray(value(array)) for key, array in params.items()}
    cost_and_grads = value_and_grad(model_cost)
    costs: list[float] = []
    bar = _Progress(num_iterations, progress)
    try:
        for i in range(num_iterations):
            cost_value, grads = cost_and_grads(params, X, Y, hidden_activation)
            cost = float(cost_value)
            # The gradients are ours alone, so they take the new parameters (no new memory);
            # the caller's params and earlier iterates are never overwritten.
            params = sgd_update(params, grads, learning_rate, donate_grads=True)
            if i % record_every == 0:
                costs.append(cost)
            if print_cost and (i % record_every == 0 or i == num_iterations - 1):
                bar.write(f"Cost after iteration {i}: {np.squeeze(cost_value)}")
            bar.update()
            if callback is not None and callback(i, cost, params):
                break
    finally:
        bar.close()
    return params, costs
