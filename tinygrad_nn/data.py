"""The cat / non-cat data set, a synthetic stand-in for it, and parameter files.

Shapes follow the deeplearning.ai course (course 1, week 4): images are (m, 64, 64, 3) uint8,
labels are (1, m) int64 with 1 = cat and 0 = non-cat, and a network sees (12288, m) columns.
This module depends on numpy and h5py only.
"""

import hashlib
import os
import re
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, NamedTuple

import h5py
import numpy as np
import numpy.typing as npt

__all__ = [
    "DATA_ENV_VAR",
    "DATA_FILES",
    "IMAGE_SHAPE",
    "CatDataset",
    "DataError",
    "flatten_images",
    "load_catvnoncat",
    "load_params",
    "resolve_data_dir",
    "save_params",
    "synthetic_catvnoncat",
    "verify_checksums",
]

StrPath = str | os.PathLike[str]

TRAIN_FILE: Final = "train_catvnoncat.h5"
TEST_FILE: Final = "test_catvnoncat.h5"
DATA_FILES: Final[Mapping[str, str]] = MappingProxyType(
    {
        TRAIN_FILE: "fbe56ab67c3ae28d564e3a644189117976d6b31af0a3ce9bb17dbf22908af242",
        TEST_FILE: "6a9d39ce52fa85953c5834695b8534a30ed8cfd54971fb2f080b5a24d002b951",
    }
)
DATA_ENV_VAR: Final = "TINYGRAD_NN_DATA"
IMAGE_SHAPE: Final = (64, 64, 3)

_HELP: Final = (
    f"see data/README.md for where to get {TRAIN_FILE} and {TEST_FILE} "
    f"(deeplearning.ai course 1, week 4) and their SHA-256 sums"
)


class DataError(ValueError):
    """A data or parameter file exists but does not hold what this project expects."""


class CatDataset(NamedTuple):
    """The course's ``load_data()`` result: ``train_x, train_y, test_x, test_y, classes = ...``.

    train_x_orig: (209, 64, 64, 3) uint8; train_y: (1, 209) int64 in {0, 1};
    test_x_orig: (50, 64, 64, 3) uint8; test_y: (1, 50) int64; classes: (2,) bytes, index = label.
    """

    train_x_orig: np.ndarray
    train_y: np.ndarray
    test_x_orig: np.ndarray
    test_y: np.ndarray
    classes: np.ndarray


# --------------------------------------------------------------------------- the real data set


def load_catvnoncat(data_dir: StrPath) -> CatDataset:
    """Read ``train_catvnoncat.h5`` and ``test_catvnoncat.h5`` from ``data_dir``.

    Returns images (m, 64, 64, 3) uint8 and labels (1, m) int64 (1 = cat); ``classes`` comes from
    the test file, as in the course. Raises FileNotFoundError or DataError naming the bad file.
    """
    directory = Path(data_dir)
    if not directory.is_dir():
        raise FileNotFoundError(f"data directory {str(directory)!r} does not exist; {_HELP}")
    train_x, train_y, train_classes = _read_split(directory / TRAIN_FILE, "train")
    test_x, test_y, classes = _read_split(directory / TEST_FILE, "test")
    if not np.array_equal(train_classes, classes):
        raise DataError(
            f"list_classes differ between {str(directory / TRAIN_FILE)!r} ({train_classes!r}) "
            f"and {str(directory / TEST_FILE)!r} ({classes!r}); expected the same two names; "
            f"{_HELP}"
        )
    # The course keeps labels as a row vector so they line up with the (n, m) activations.
    return CatDataset(train_x, train_y.reshape(1, -1), test_x, test_y.reshape(1, -1), classes)


def _read_split(path: Path, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated (images (m, 64, 64, 3) uint8, labels (m,) int64, classes (2,) bytes)."""
    name = str(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {name!r} not found; {_HELP}")
    x_key, y_key = f"{split}_set_x", f"{split}_set_y"
    try:
        with h5py.File(path, "r") as h5:
            found = sorted(h5.keys())
            missing = [k for k in (x_key, y_key, "list_classes") if k not in h5]
            if missing:
                raise DataError(
                    f"{name!r} has no key(s) {missing}; expected {x_key}, {y_key} and "
                    f"list_classes, found {found}; {_HELP}"
                )
            images = _read_dataset(h5, x_key, name)
            labels = _read_dataset(h5, y_key, name)
            classes = _read_dataset(h5, "list_classes", name)
    except OSError as err:
        # h5py reports "not HDF5" and truncation as OSError; FileNotFoundError was ruled out above.
        raise DataError(f"cannot read {name!r} as HDF5 ({err}); {_HELP}") from err

    if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE or images.shape[0] == 0:
        raise DataError(
            f"{name!r} key {x_key!r} has shape {images.shape}; "
            f"expected (m, 64, 64, 3) with m >= 1; {_HELP}"
        )
    if images.dtype != np.uint8:
        raise DataError(f"{name!r} key {x_key!r} has dtype {images.dtype}; expected uint8; {_HELP}")
    m = images.shape[0]
    if labels.shape != (m,):
        raise DataError(
            f"{name!r} key {y_key!r} has shape {labels.shape}; expected ({m},) to match the {m} "
            f"images in {x_key!r}; {_HELP}"
        )
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_):
        raise DataError(
            f"{name!r} key {y_key!r} has dtype {labels.dtype}; expected integer labels; {_HELP}"
        )
    bad = np.flatnonzero((labels != 0) & (labels != 1))
    if bad.size:
        raise DataError(
            f"{name!r} key {y_key!r} has label {labels[bad[0]].item()!r} at index {bad[0]} "
            f"({bad.size} bad in all); expected only 0 (non-cat) and 1 (cat); {_HELP}"
        )
    if classes.shape != (2,) or classes.dtype.kind != "S":
        raise DataError(
            f"{name!r} key 'list_classes' has shape {classes.shape} and dtype {classes.dtype}; "
            f"expected 2 byte strings such as [b'non-cat', b'cat']; {_HELP}"
        )
    return images, labels.astype(np.int64), classes


def _read_dataset(h5: h5py.File, key: str, name: str) -> np.ndarray:
    obj = h5[key]
    if not isinstance(obj, h5py.Dataset):
        raise DataError(f"{name!r} key {key!r} is a {type(obj).__name__}; expected a dataset")
    return np.asarray(obj[()])


def verify_checksums(data_dir: StrPath) -> None:
    """Check both data files in ``data_dir`` against ``DATA_FILES``; DataError on a mismatch."""
    directory = Path(data_dir)
    for file_name, expected in DATA_FILES.items():
        path = directory / file_name
        if not path.is_file():
            raise FileNotFoundError(f"data file {str(path)!r} not found; {_HELP}")
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        found = digest.hexdigest()
        if found != expected:
            raise DataError(
                f"{str(path)!r} has SHA-256 {found}; expected {expected}; "
                f"the file is damaged or not the course's; {_HELP}"
            )


def resolve_data_dir(cli_value: str | None) -> Path | None:
    """The data directory: ``--data`` if given, else ``./data``, else ``$TINYGRAD_NN_DATA``.

    ``./data`` and the variable count only when they hold both files; None means "use the
    synthetic set" (the caller says so). An explicit value is returned unchecked so that
    ``load_catvnoncat`` can say precisely what is wrong with it.
    """
    if cli_value:
        return Path(cli_value).expanduser()
    local = Path.cwd() / "data"
    if _has_data_files(local):
        return local
    env_value = os.environ.get(DATA_ENV_VAR)
    if env_value:
        env_dir = Path(env_value).expanduser()
        if _has_data_files(env_dir):
            return env_dir
    return None


def _has_data_files(directory: Path) -> bool:
    return all((directory / file_name).is_file() for file_name in DATA_FILES)


# --------------------------------------------------------------------------- preprocessing


def flatten_images(images: np.ndarray, dtype: npt.DTypeLike = np.float64) -> np.ndarray:
    """(m, h, w, c) uint8 -> (h*w*c, m) in ``dtype``, scaled to [0, 1] as the course does.

    For float64 the result is bitwise equal to ``images.reshape(images.shape[0], -1).T / 255.``;
    other float dtypes are cast first and divided in that dtype (no float64 round trip).
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise DataError(
            f"flatten_images got an array of shape {images.shape}; "
            f"expected 4-D (m, h, w, c) pictures such as (m, 64, 64, 3)"
        )
    if images.dtype != np.uint8:
        raise DataError(f"flatten_images got dtype {images.dtype}; expected uint8 pixels (0..255)")
    out_dtype = np.dtype(dtype)
    if not np.issubdtype(out_dtype, np.floating):
        raise DataError(f"flatten_images dtype must be a float dtype, got {out_dtype}")
    # Row-major reshape then transpose keeps the course's feature order (pixel-major, RGB last).
    columns = images.reshape(images.shape[0], -1).T
    return columns.astype(out_dtype) / out_dtype.type(255)


# --------------------------------------------------------------------------- synthetic stand-in

# Class balance of the real files (72 of 209 train and 33 of 50 test pictures are cats), so that
# "always say cat" scores the same on the stand-in as on the real set.
_SYNTHETIC_SPLITS: Final = ((209, 72), (50, 33))


def synthetic_catvnoncat(seed: int = 0) -> CatDataset:
    """A generated stand-in with the real shapes and dtypes, deterministic for ``seed``.

    Each picture is a grey, noisy, tilted background with one disc on it: warm (orange) discs are
    "cats", cool (blue-green) discs are "non-cats". The colour is the learnable signal; position,
    size, background and noise vary freely. Uses its own ``np.random.default_rng(seed)``.
    """
    rng = np.random.default_rng(seed)
    (m_train, cats_train), (m_test, cats_test) = _SYNTHETIC_SPLITS
    train_x, train_y = _synthetic_split(rng, m_train, cats_train)
    test_x, test_y = _synthetic_split(rng, m_test, cats_test)
    classes = np.array([b"non-cat", b"cat"], dtype="S7")
    return CatDataset(train_x, train_y.reshape(1, -1), test_x, test_y.reshape(1, -1), classes)


def _synthetic_split(
    rng: np.random.Generator, m: int, n_cats: int
) -> tuple[np.ndarray, np.ndarray]:
    """(m, 64, 64, 3) uint8 pictures and (m,) int64 labels with exactly ``n_cats`` ones."""
    height, width, _ = IMAGE_SHAPE
    labels = rng.permutation(np.arange(m) < n_cats).astype(np.int64)

    rows = np.linspace(-0.5, 0.5, height)[None, :, None, None]
    cols = np.linspace(-0.5, 0.5, width)[None, None, :, None]
    # A near-grey background (small tint) so the disc's hue, not the scene's, carries the label.
    grey = rng.uniform(50.0, 200.0, size=(m, 1, 1, 1))
    tint = rng.normal(0.0, 12.0, size=(m, 1, 1, 3))
    slope = rng.normal(0.0, 40.0, size=(m, 2, 1, 1, 1))
    pictures = grey + tint + slope[:, 0] * rows + slope[:, 1] * cols

    centre = rng.uniform(16.0, 48.0, size=(m, 2, 1, 1))
    radius = rng.uniform(8.0, 18.0, size=(m, 1, 1))
    r_idx = np.arange(height)[None, :, None]
    c_idx = np.arange(width)[None, None, :]
    inside = (r_idx - centre[:, 0]) ** 2 + (c_idx - centre[:, 1]) ** 2 <= radius**2

    warm = rng.uniform((170.0, 90.0, 20.0), (250.0, 160.0, 90.0), size=(m, 3))
    cool = rng.uniform((20.0, 80.0, 130.0), (110.0, 190.0, 240.0), size=(m, 3))
    disc = np.where(labels[:, None] == 1, warm, cool)
    pictures = np.where(inside[..., None], disc[:, None, None, :], pictures)

    pictures += rng.normal(0.0, 20.0, size=pictures.shape)
    return np.clip(np.rint(pictures), 0, 255).astype(np.uint8), labels


# --------------------------------------------------------------------------- parameter files

_PARAM_KEY: Final = re.compile(r"([Wb])([1-9][0-9]*)")


def save_params(path: StrPath, params: Mapping[str, np.ndarray]) -> Path:
    """Write ``params`` (e.g. W1, b1, ...) to an uncompressed ``.npz`` and return its path.

    ``.npz`` is appended when missing, as ``np.savez`` would; object arrays are refused so that
    the file never needs pickle to be read back.
    """
    target = Path(path)
    if target.suffix != ".npz":
        target = target.with_name(target.name + ".npz")
    arrays: dict[str, Any] = {}  # Any: np.savez's stub types **kwds like its own keywords
    for key, value in params.items():
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise DataError(
                f"cannot save {key!r} to {str(target)!r}: dtype {array.dtype} needs pickle; "
                f"expected a numeric array"
            )
        arrays[key] = array
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as f:
        np.savez(f, **arrays)
    return target


def load_params(
    path: StrPath,
    layer_dims: Sequence[int] | None = None,
    dtype: npt.DTypeLike | None = None,
) -> dict[str, np.ndarray]:
    """Read a ``.npz`` written by ``save_params``, without pickle, and check it.

    Keys must be exactly W1..WL and b1..bL; Wl is (n_l, n_{l-1}) and bl is (n_l, 1), chaining
    from layer to layer; ``layer_dims`` (n_0, ..., n_L) and ``dtype`` are checked when given.
    Returns the arrays as a dict ordered W1, b1, W2, b2, ...
    """
    file = Path(path)
    name = str(file)
    if not file.is_file():
        raise FileNotFoundError(f"parameter file {name!r} not found")
    try:
        # Our own handle, so that it is closed even when np.load fails half-way through.
        with file.open("rb") as handle:
            loaded = np.load(handle, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise DataError(f"{name!r} holds a single array; expected an .npz of W1, b1, ...")
            with loaded as npz:
                raw = {key: _read_npz_array(npz, key, name) for key in npz.files}
    except DataError:
        raise
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DataError(f"cannot read {name!r} as .npz ({err})") from err
    except ValueError as err:
        # np.load raises a bare ValueError for a file that would need pickle or is not numpy at all.
        raise DataError(f"cannot read {name!r} as .npz without pickle ({err})") from err

    n_layers = _check_param_keys(raw, name)
    params = {
        f"{kind}{layer}": raw[f"{kind}{layer}"] for layer in range(1, n_layers + 1) for kind in "Wb"
    }
    _check_param_dtypes(params, name, dtype)
    _check_param_shapes(params, n_layers, name, layer_dims)
    return params


def _read_npz_array(npz: np.lib.npyio.NpzFile, key: str, name: str) -> np.ndarray:
    try:
        return np.asarray(npz[key])
    except ValueError as err:
        # Raised for object arrays when allow_pickle=False: refuse rather than unpickle.
        raise DataError(f"{name!r} key {key!r} cannot be read without pickle ({err})") from err


def _check_param_keys(raw: Mapping[str, np.ndarray], name: str) -> int:
    """Number of layers L, after checking the keys are exactly W1..WL and b1..bL."""
    unexpected = sorted(k for k in raw if not _PARAM_KEY.fullmatch(k))
    layers = [int(m.group(2)) for k in raw if (m := _PARAM_KEY.fullmatch(k))]
    n_layers = max(layers, default=0)
    expected = {f"{kind}{layer}" for layer in range(1, n_layers + 1) for kind in "Wb"}
    missing = sorted(expected - raw.keys(), key=_key_order)
    if n_layers == 0 or unexpected or missing:
        found = sorted(raw, key=_key_order)
        wanted = f"W1..W{n_layers}, b1..b{n_layers}" if n_layers else "W1, b1, ..."
        details = "".join(
            f"; {label} {keys}"
            for label, keys in (("missing", missing), ("unexpected", unexpected))
            if keys
        )
        raise DataError(f"{name!r} has keys {found}; expected {wanted}{details}")
    return n_layers


def _key_order(key: str) -> tuple[int, str]:
    match = _PARAM_KEY.fullmatch(key)
    return (int(match.group(2)), match.group(1)) if match else (1 << 30, key)


def _check_param_dtypes(
    params: Mapping[str, np.ndarray], name: str, dtype: npt.DTypeLike | None
) -> None:
    wanted = None if dtype is None else np.dtype(dtype)
    first_key = next(iter(params))
    for key, array in params.items():
        if not np.issubdtype(array.dtype, np.floating):
            raise DataError(f"{name!r} key {key!r} has dtype {array.dtype}; expected a float dtype")
        if wanted is not None and array.dtype != wanted:
            raise DataError(f"{name!r} key {key!r} has dtype {array.dtype}; expected {wanted}")
        # A mixed file would silently upcast float32 layers to float64 in the forward pass.
        if array.dtype != params[first_key].dtype:
            raise DataError(
                f"{name!r} key {key!r} has dtype {array.dtype}; expected {params[first_key].dtype}"
                f" like {first_key!r} (one dtype for all parameters)"
            )


def _check_param_shapes(
    params: Mapping[str, np.ndarray],
    n_layers: int,
    name: str,
    layer_dims: Sequence[int] | None,
) -> None:
    source = "" if layer_dims is None else f" from layer_dims {list(layer_dims)}"
    if layer_dims is not None and len(layer_dims) != n_layers + 1:
        raise DataError(
            f"{name!r} holds {n_layers} layer(s) (W1..W{n_layers}); expected "
            f"{len(layer_dims) - 1}{source}"
        )
    # Without layer_dims the file defines them: W1 fixes n_0, each Wl fixes n_l for bl and W(l+1).
    dims = [] if layer_dims is None else [int(d) for d in layer_dims]
    for layer in range(1, n_layers + 1):
        w, b = params[f"W{layer}"], params[f"b{layer}"]
        if w.ndim != 2:
            raise DataError(
                f"{name!r} key 'W{layer}' has shape {w.shape}; "
                f"expected 2-D (n_{layer}, n_{layer - 1})"
            )
        if layer_dims is None:
            if layer == 1:
                dims.append(int(w.shape[1]))
            dims.append(int(w.shape[0]))
        expected = (dims[layer], dims[layer - 1])
        if w.shape != expected:
            raise DataError(
                f"{name!r} key 'W{layer}' has shape {w.shape}; expected {expected}{source}"
            )
        if b.shape != (dims[layer], 1):
            raise DataError(
                f"{name!r} key 'b{layer}' has shape {b.shape}; expected {(dims[layer], 1)}{source}"
            )
