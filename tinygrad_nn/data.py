"""The cat / non-cat data set, where to find it, and a synthetic stand-in for it.

Shapes follow the deeplearning.ai course (course 1, week 4): images are (m, 64, 64, 3) uint8,
labels are (1, m) int64 with 1 = cat and 0 = non-cat, and a network sees (12288, m) columns.
The files are found in ``--data``, else ``$TINYGRAD_NN_DATA``, else the project's own ``data/``
(never the current directory). Parameter files are ``nn.save_params`` / ``nn.load_params``; a
file that exists but does not hold what is expected, data or parameters, is a ``DataError``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Final, NamedTuple

import h5py
import numpy as np
import numpy.typing as npt

__all__ = ["DATA_ENV_VAR", "DATA_FILES", "IMAGE_SHAPE", "PROJECT_DATA_DIR", "CatDataset",
           "DataError", "flatten_images", "load_catvnoncat", "missing_data", "resolve_data_dir",
           "synthetic_catvnoncat", "verify_checksums"]

TRAIN_FILE: Final = "train_catvnoncat.h5"
TEST_FILE: Final = "test_catvnoncat.h5"
DATA_FILES: Final[Mapping[str, str]] = MappingProxyType({
    TRAIN_FILE: "fbe56ab67c3ae28d564e3a644189117976d6b31af0a3ce9bb17dbf22908af242",
    TEST_FILE: "6a9d39ce52fa85953c5834695b8534a30ed8cfd54971fb2f080b5a24d002b951",
})
DATA_ENV_VAR: Final = "TINYGRAD_NN_DATA"
PROJECT_DATA_DIR: Final = Path(__file__).resolve().parents[1] / "data"  # the repository's data/
IMAGE_SHAPE: Final = (64, 64, 3)
_SITE_PACKAGES_HINT: Final = (
    "tinygrad_nn is installed without its project (pip install ., not -e), so its data/ lies "
    f"inside site-packages and is no project's: set ${DATA_ENV_VAR} or pass --data DIR")
_HELP: Final = (f"see data/README.md for where to get {TRAIN_FILE} and {TEST_FILE} "
                "(deeplearning.ai course 1, week 4) and their SHA-256 sums")


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


def load_catvnoncat(data_dir: str | os.PathLike[str]) -> CatDataset:
    """Read both files from ``data_dir``: images (m, 64, 64, 3) uint8, labels (1, m) int64
    (1 = cat); ``classes`` from the test file, as the course. FileNotFoundError or DataError
    name the bad file and what was wrong."""
    directory = Path(data_dir)
    if not directory.is_dir():
        raise FileNotFoundError(f"data directory {str(directory)!r} does not exist; {_HELP}")
    train_x, train_y, train_classes = _read_split(directory / TRAIN_FILE, "train")
    test_x, test_y, classes = _read_split(directory / TEST_FILE, "test")
    if not np.array_equal(train_classes, classes):
        raise DataError(f"list_classes differ between {str(directory / TRAIN_FILE)!r} "
                        f"({train_classes!r}) and {str(directory / TEST_FILE)!r} ({classes!r}); "
                        f"expected the same two names; {_HELP}")
    # The course keeps labels as a row vector so they line up with the (n, m) activations.
    return CatDataset(train_x, train_y.reshape(1, -1), test_x, test_y.reshape(1, -1), classes)


def _read_split(path: Path, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated (images (m, 64, 64, 3) uint8, labels (m,) int64, classes (2,) bytes)."""
    name, keys = str(path), (f"{split}_set_x", f"{split}_set_y", "list_classes")
    if not path.is_file():
        raise FileNotFoundError(f"data file {name!r} not found; {_HELP}")
    try:
        with h5py.File(path, "r") as h5:
            if missing := [key for key in keys if key not in h5]:
                raise DataError(f"{name!r} has no key(s) {missing}; expected {', '.join(keys)}, "
                                f"found {sorted(h5.keys())}; {_HELP}")
            for key in keys:
                if not isinstance(h5[key], h5py.Dataset):
                    raise DataError(f"{name!r} key {key!r} is a {type(h5[key]).__name__}; "
                                    "expected a dataset")
            images, labels, classes = (np.asarray(h5[key][()]) for key in keys)
    except OSError as error:  # h5py's "not HDF5" and truncation (a missing file was ruled out)
        raise DataError(f"cannot read {name!r} as HDF5 ({error}); {_HELP}") from error
    m, bad = len(images), np.flatnonzero((labels != 0) & (labels != 1))
    problems = [
        (images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE or m == 0, keys[0],
         f"has shape {images.shape}; expected (m, 64, 64, 3) with m >= 1"),
        (images.dtype != np.uint8, keys[0], f"has dtype {images.dtype}; expected uint8"),
        (labels.shape != (m,), keys[1], f"has shape {labels.shape}; expected ({m},) to match "
         f"the {m} images in {keys[0]!r}"),
        (labels.dtype.kind not in "biu", keys[1], f"has dtype {labels.dtype}; expected "
         "integer labels"),
        (bad.size > 0, keys[1], f"has label {' '.join(map(str, labels.ravel()[bad[:1]]))} at "
         f"index {' '.join(map(str, bad[:1]))} ({bad.size} bad in all); expected only 0 "
         "(non-cat) and 1 (cat)"),
        (classes.shape != (2,) or classes.dtype.kind != "S", "list_classes", f"has shape "
         f"{classes.shape} and dtype {classes.dtype}; expected 2 byte strings such as "
         "[b'non-cat', b'cat']"),
    ]
    for failed, key, text in problems:
        if failed:
            raise DataError(f"{name!r} key {key!r} {text}; {_HELP}")
    return images, labels.astype(np.int64), classes


def verify_checksums(data_dir: str | os.PathLike[str]) -> None:
    """Check both data files in ``data_dir`` against ``DATA_FILES``; DataError on a mismatch."""
    for file_name, expected in DATA_FILES.items():
        path = Path(data_dir) / file_name
        if not path.is_file():
            raise FileNotFoundError(f"data file {str(path)!r} not found; {_HELP}")
        digest = hashlib.sha256()
        with path.open("rb") as file:
            for chunk in iter(lambda: file.read(1 << 20), b""):
                digest.update(chunk)
        found = digest.hexdigest()
        if found != expected:
            raise DataError(f"{str(path)!r} has SHA-256 {found}; expected {expected}; the file "
                            f"is damaged or not the course's; {_HELP}")


def _candidates() -> list[tuple[str, Path]]:
    env = os.environ.get(DATA_ENV_VAR)
    return ([(f"${DATA_ENV_VAR}", Path(env).expanduser())] if env else []) + [
        ("the project's data/", PROJECT_DATA_DIR)]


def resolve_data_dir(cli_value: str | None) -> Path | None:
    """The data directory: ``--data`` if given (unchecked, so that ``load_catvnoncat`` says what
    is wrong with it), else ``$TINYGRAD_NN_DATA``, else the project's ``data/``, each only when
    it holds both files; None means "use the stand-in" (``missing_data`` says why)."""
    if cli_value:
        return Path(cli_value).expanduser()
    return next((path for _, path in _candidates() if not _missing(path)), None)


def missing_data() -> str:
    """Where the files were looked for and which one each place lacks, an unset
    ``$TINYGRAD_NN_DATA`` included; in a non-editable install, that its ``data/`` means nothing."""
    places = [f"{label} ({path}) lacks {' and '.join(_missing(path))}"
              for label, path in _candidates()]
    if not os.environ.get(DATA_ENV_VAR):
        places.insert(0, f"${DATA_ENV_VAR} is not set")
    if _installed_in_site_packages():
        places.append(_SITE_PACKAGES_HINT)
    return "; ".join(places)


def _installed_in_site_packages() -> bool:
    """True for ``pip install .`` (not ``-e``): the package, and so ``PROJECT_DATA_DIR``, lies
    in site-packages, far from any project's data/."""
    return not {"site-packages", "dist-packages"}.isdisjoint(PROJECT_DATA_DIR.parts)


def _missing(directory: Path) -> list[str]:
    return [name for name in DATA_FILES if not (directory / name).is_file()]


def flatten_images(images: np.ndarray, dtype: npt.DTypeLike = np.float64) -> np.ndarray:
    """(m, h, w, c) uint8 -> (h*w*c, m) in ``dtype``, scaled to [0, 1] as the course does.

    For float64 the result is bitwise equal to ``images.reshape(images.shape[0], -1).T / 255.``;
    other float dtypes are cast first and divided in that dtype (no float64 round trip).
    """
    images, out_dtype = np.asarray(images), np.dtype(dtype)
    if images.ndim != 4:
        raise DataError(f"flatten_images got an array of shape {images.shape}; expected 4-D "
                        "(m, h, w, c) pictures such as (m, 64, 64, 3)")
    if images.dtype != np.uint8:
        raise DataError(f"flatten_images got dtype {images.dtype}; expected uint8 pixels (0..255)")
    if out_dtype.kind != "f":
        raise DataError(f"flatten_images dtype must be a float dtype, got {out_dtype}")
    # Row-major reshape then transpose keeps the course's feature order (pixel-major, RGB last).
    return images.reshape(images.shape[0], -1).T.astype(out_dtype) / out_dtype.type(255)


def synthetic_catvnoncat(seed: int = 0) -> CatDataset:
    """A generated stand-in with the real shapes, dtypes and class balance (72 of 209 train and
    33 of 50 test pictures are "cats"), deterministic for ``seed``.

    Each picture is a grey, noisy, tilted background with one disc on it: warm (orange) discs are
    "cats", cool (blue-green) ones "non-cats". The colour is the learnable signal; position,
    size, background and noise vary freely. Uses its own ``np.random.default_rng(seed)``.
    """
    rng = np.random.default_rng(seed)
    train_x, train_y = _synthetic_split(rng, 209, 72)
    test_x, test_y = _synthetic_split(rng, 50, 33)
    classes = np.array([b"non-cat", b"cat"], dtype="S7")
    return CatDataset(train_x, train_y.reshape(1, -1), test_x, test_y.reshape(1, -1), classes)


def _synthetic_split(rng: np.random.Generator, m: int, n_cats: int) -> tuple[np.ndarray, ...]:
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
    r_idx, c_idx = np.arange(height)[None, :, None], np.arange(width)[None, None, :]
    inside = (r_idx - centre[:, 0]) ** 2 + (c_idx - centre[:, 1]) ** 2 <= radius**2
    warm = rng.uniform((170.0, 90.0, 20.0), (250.0, 160.0, 90.0), size=(m, 3))
    cool = rng.uniform((20.0, 80.0, 130.0), (110.0, 190.0, 240.0), size=(m, 3))
    disc = np.where(labels[:, None] == 1, warm, cool)
    pictures = np.where(inside[..., None], disc[:, None, None, :], pictures)
    pictures += rng.normal(0.0, 20.0, size=pictures.shape)
    return np.clip(np.rint(pictures), 0, 255).astype(np.uint8), labels
