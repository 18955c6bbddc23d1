"""Tests for tinygrad_nn.data: the cat / non-cat files, the synthetic set, parameter files.

Real-data tests find the files as the examples do ($TINYGRAD_NN_DATA, else the project's data/)
and are skipped without them; everything else builds its own small files in tmp_path.
"""

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_nn.data as data_module
from tinygrad_nn.data import (
    DATA_ENV_VAR,
    DATA_FILES,
    CatDataset,
    DataError,
    flatten_images,
    load_catvnoncat,
    missing_data,
    resolve_data_dir,
    synthetic_catvnoncat,
    verify_checksums,
)
from tinygrad_nn.nn import load_params, save_params

TRAIN, TEST = "train_catvnoncat.h5", "test_catvnoncat.h5"
CLASSES = np.array([b"non-cat", b"cat"], dtype="S7")
HELP = "data/README.md"


def error_message(exc_type: type[Exception], call: Callable[[], object], *fragments: str) -> str:
    """Run ``call``, expect ``exc_type``, and check the message holds every fragment."""
    with pytest.raises(exc_type) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def real_dir(course_data_dir: Path) -> Path:
    return course_data_dir


@pytest.fixture(scope="module")
def real(real_dir: Path) -> CatDataset:
    return load_catvnoncat(real_dir)


def test_real_shapes_dtypes_and_classes(real: CatDataset) -> None:
    train_x_orig, train_y, test_x_orig, test_y, classes = real  # unpacks like load_data()
    assert train_x_orig.shape == (209, 64, 64, 3) and train_x_orig.dtype == np.uint8
    assert test_x_orig.shape == (50, 64, 64, 3) and test_x_orig.dtype == np.uint8
    assert train_y.shape == (1, 209) and train_y.dtype == np.int64
    assert test_y.shape == (1, 50) and test_y.dtype == np.int64
    np.testing.assert_array_equal(classes, CLASSES)
    assert classes[1] == b"cat"  # label 1 means cat


def test_real_label_counts(real: CatDataset) -> None:
    assert set(np.unique(real.train_y)) == {0, 1} and set(np.unique(real.test_y)) == {0, 1}
    assert int(real.train_y.sum()) == 72 and int((real.train_y == 0).sum()) == 137
    assert int(real.test_y.sum()) == 33 and int((real.test_y == 0).sum()) == 17


def test_real_checksums(real_dir: Path) -> None:
    verify_checksums(real_dir)
    sums_file = real_dir / "SHA256SUMS"
    if sums_file.is_file():  # the shared copy ships its own list: it must agree with DATA_FILES
        listed = {}
        for line in sums_file.read_text().splitlines():
            digest, file_name = line.split()
            listed[file_name] = digest
        assert listed == dict(DATA_FILES)


def test_real_flatten_is_the_course_expression_bitwise(real: CatDataset) -> None:
    for images in (real.train_x_orig, real.test_x_orig):
        course = images.reshape(images.shape[0], -1).T / 255.0
        flat = flatten_images(images)
        assert flat.shape == (12288, images.shape[0]) and flat.dtype == np.float64
        np.testing.assert_array_equal(flat.view(np.uint64), course.view(np.uint64))
        flat32 = flatten_images(images, np.float32)
        assert flat32.dtype == np.float32
        expected32 = images.reshape(images.shape[0], -1).T.astype(np.float32) / np.float32(255)
        np.testing.assert_array_equal(flat32.view(np.uint32), expected32.view(np.uint32))


def test_real_resolve_finds_the_data_from_any_directory(
    real_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_data_dir(None) == real_dir


# --------------------------------------------------------------------------- hand-made files


def make_split(
    directory: Path,
    split: str,
    m: int = 4,
    *,
    images: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    classes: np.ndarray | None = None,
    omit: tuple[str, ...] = (),
) -> Path:
    """Write a small, valid (unless told otherwise) ``{split}_catvnoncat.h5``."""
    rng = np.random.default_rng(len(split) + m)
    datasets = {
        f"{split}_set_x": rng.integers(0, 256, (m, 64, 64, 3), dtype=np.uint8)
        if images is None
        else images,
        f"{split}_set_y": np.arange(m, dtype=np.int64) % 2 if labels is None else labels,
        "list_classes": CLASSES if classes is None else classes,
    }
    path = directory / f"{split}_catvnoncat.h5"
    with h5py.File(path, "w") as h5:
        for key, value in datasets.items():
            if key not in omit:
                h5.create_dataset(key, data=value)
    return path


@pytest.fixture
def fake_dir(tmp_path: Path) -> Path:
    make_split(tmp_path, "train", 6)
    make_split(tmp_path, "test", 4)
    return tmp_path


def test_load_small_valid_files(fake_dir: Path) -> None:
    data = load_catvnoncat(fake_dir)
    assert data.train_x_orig.shape == (6, 64, 64, 3) and data.test_x_orig.shape == (4, 64, 64, 3)
    np.testing.assert_array_equal(data.train_y, [[0, 1, 0, 1, 0, 1]])
    np.testing.assert_array_equal(data.classes, CLASSES)
    with h5py.File(fake_dir / TRAIN, "r") as h5:
        np.testing.assert_array_equal(data.train_x_orig, h5["train_set_x"][()])


def test_narrow_integer_labels_come_back_int64(tmp_path: Path) -> None:
    make_split(tmp_path, "train", labels=np.array([0, 1, 1, 0], dtype=np.uint8))
    make_split(tmp_path, "test")
    data = load_catvnoncat(tmp_path)
    assert data.train_y.dtype == np.int64 and data.train_y.shape == (1, 4)


def test_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    error_message(FileNotFoundError, lambda: load_catvnoncat(missing), str(missing), HELP)


@pytest.mark.parametrize("absent", [TRAIN, TEST])
def test_missing_file(fake_dir: Path, absent: str) -> None:
    (fake_dir / absent).unlink()
    error_message(
        FileNotFoundError, lambda: load_catvnoncat(fake_dir), str(fake_dir / absent), HELP
    )


def test_not_hdf5(fake_dir: Path) -> None:
    (fake_dir / TEST).write_text("<html>404 Not Found</html>\n")
    error_message(DataError, lambda: load_catvnoncat(fake_dir), str(fake_dir / TEST), "HDF5", HELP)


def test_truncated_file(fake_dir: Path) -> None:
    path = fake_dir / TRAIN
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    error_message(DataError, lambda: load_catvnoncat(fake_dir), str(path), "HDF5", HELP)


def test_missing_key_lists_the_keys_found(tmp_path: Path) -> None:
    make_split(tmp_path, "train")
    path = make_split(tmp_path, "test", omit=("test_set_y",))
    error_message(
        DataError,
        lambda: load_catvnoncat(tmp_path),
        str(path),
        "'test_set_y'",
        "found ['list_classes', 'test_set_x']",
        HELP,
    )


def test_key_that_is_a_group(tmp_path: Path) -> None:
    path = make_split(tmp_path, "train", omit=("train_set_x",))
    make_split(tmp_path, "test")
    with h5py.File(path, "a") as h5:
        h5.create_group("train_set_x")
    error_message(DataError, lambda: load_catvnoncat(tmp_path), str(path), "expected a dataset")


@pytest.mark.parametrize("shape", [(4, 64, 64), (4, 32, 32, 3), (4, 64, 64, 4), (0, 64, 64, 3)])
def test_wrong_image_shape(tmp_path: Path, shape: tuple[int, ...]) -> None:
    path = make_split(tmp_path, "train", images=np.zeros(shape, np.uint8))
    make_split(tmp_path, "test")
    error_message(
        DataError,
        lambda: load_catvnoncat(tmp_path),
        str(path),
        f"shape {shape}",
        "expected (m, 64, 64, 3)",
        HELP,
    )


def test_wrong_image_dtype(tmp_path: Path) -> None:
    make_split(tmp_path, "train")
    path = make_split(tmp_path, "test", images=np.zeros((4, 64, 64, 3), np.float32))
    error_message(
        DataError, lambda: load_catvnoncat(tmp_path), str(path), "float32", "expected uint8", HELP
    )


def test_label_value_two(tmp_path: Path) -> None:
    path = make_split(tmp_path, "train", labels=np.array([0, 1, 2, 1]))
    make_split(tmp_path, "test")
    error_message(
        DataError,
        lambda: load_catvnoncat(tmp_path),
        str(path),
        "label 2 at index 2",
        "expected only 0 (non-cat) and 1 (cat)",
        HELP,
    )


@pytest.mark.parametrize("labels", [np.array([0, 1, 1]), np.zeros((1, 4), np.int64)])
def test_label_shape_or_count_mismatch(tmp_path: Path, labels: np.ndarray) -> None:
    make_split(tmp_path, "train")
    path = make_split(tmp_path, "test", labels=labels)
    error_message(
        DataError,
        lambda: load_catvnoncat(tmp_path),
        str(path),
        f"shape {labels.shape}",
        "expected (4,) to match the 4 images",
        HELP,
    )


def test_float_labels_are_refused(tmp_path: Path) -> None:
    path = make_split(tmp_path, "train", labels=np.array([0.0, 1.0, 1.0, 0.0]))
    make_split(tmp_path, "test")
    error_message(DataError, lambda: load_catvnoncat(tmp_path), str(path), "expected integer")


def test_bad_or_disagreeing_classes(tmp_path: Path) -> None:
    path = make_split(tmp_path, "train", classes=np.array([1, 2]))
    make_split(tmp_path, "test")
    error_message(DataError, lambda: load_catvnoncat(tmp_path), str(path), "list_classes")
    make_split(tmp_path, "train", classes=np.array([b"dog", b"cat"]))
    error_message(DataError, lambda: load_catvnoncat(tmp_path), "list_classes differ", TRAIN, TEST)


def test_checksum_mismatch_and_missing_file(fake_dir: Path) -> None:
    error_message(
        DataError,
        lambda: verify_checksums(fake_dir),
        str(fake_dir / TRAIN),
        f"expected {DATA_FILES[TRAIN]}",
        HELP,
    )
    (fake_dir / TRAIN).unlink()
    error_message(FileNotFoundError, lambda: verify_checksums(fake_dir), str(fake_dir / TRAIN))


def test_data_files_constant_is_read_only() -> None:
    assert set(DATA_FILES) == {TRAIN, TEST}
    with pytest.raises(TypeError):
        DATA_FILES[TRAIN] = "0" * 64  # type: ignore[index]


# --------------------------------------------------------------------------- flatten_images


@settings(max_examples=50, deadline=None)
@given(
    hnp.arrays(
        np.uint8,
        st.tuples(st.integers(1, 5), st.integers(1, 6), st.integers(1, 6), st.integers(1, 4)),
    )
)
def test_flatten_matches_course_expression(images: np.ndarray) -> None:
    course = images.reshape(images.shape[0], -1).T / 255.0
    np.testing.assert_array_equal(flatten_images(images).view(np.uint64), course.view(np.uint64))
    flat32 = flatten_images(images, dtype=np.float32)
    expected32 = images.reshape(images.shape[0], -1).T.astype(np.float32) / np.float32(255)
    assert flat32.dtype == np.float32
    np.testing.assert_array_equal(flat32.view(np.uint32), expected32.view(np.uint32))


def test_flatten_feature_order() -> None:
    images = np.zeros((2, 64, 64, 3), np.uint8)
    images[1, 0, 1, 2] = 255  # second picture, row 0, column 1, blue
    flat = flatten_images(images)
    assert flat[1 * 3 + 2, 1] == 1.0 and flat.sum() == 1.0


@pytest.mark.parametrize("shape", [(12288, 4), (64, 64, 3), (1, 2, 64, 64, 3)])
def test_flatten_rejects_non_4d(shape: tuple[int, ...]) -> None:
    error_message(
        ValueError, lambda: flatten_images(np.zeros(shape, np.uint8)), str(shape), "(m, 64, 64, 3)"
    )


def test_flatten_rejects_bad_dtypes() -> None:
    error_message(ValueError, lambda: flatten_images(np.zeros((1, 2, 2, 3))), "expected uint8")
    error_message(
        ValueError, lambda: flatten_images(np.zeros((1, 2, 2, 3), np.uint8), np.int32), "float"
    )


# --------------------------------------------------------------------------- synthetic set


def test_synthetic_shapes_dtypes_classes() -> None:
    data = synthetic_catvnoncat()
    assert data.train_x_orig.shape == (209, 64, 64, 3) and data.train_x_orig.dtype == np.uint8
    assert data.test_x_orig.shape == (50, 64, 64, 3) and data.test_x_orig.dtype == np.uint8
    assert data.train_y.shape == (1, 209) and data.train_y.dtype == np.int64
    assert data.test_y.shape == (1, 50) and data.test_y.dtype == np.int64
    np.testing.assert_array_equal(data.classes, CLASSES)
    assert data.classes.dtype == CLASSES.dtype
    for labels in (data.train_y, data.test_y):
        assert set(np.unique(labels)) == {0, 1}  # both classes, nothing else


def test_synthetic_is_deterministic_and_seeded() -> None:
    np.random.seed(123)
    expected_draw = np.random.random()
    np.random.seed(123)
    first, again, other = synthetic_catvnoncat(3), synthetic_catvnoncat(3), synthetic_catvnoncat(4)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first.train_x_orig, other.train_x_orig)
    assert not np.array_equal(first.train_y, other.train_y)
    assert np.random.random() == expected_draw  # the global random state was not used


@pytest.mark.parametrize("seed", [0, 1])
def test_synthetic_is_learnable(seed: int) -> None:
    # Kernel ridge regression on the flattened pixels, solved in closed form: an engine-free
    # check that a model fitted on the training split beats chance on the test split.
    data = synthetic_catvnoncat(seed)
    x, x_test = flatten_images(data.train_x_orig), flatten_images(data.test_x_orig)
    mean = x.mean(axis=1, keepdims=True)
    x, x_test = x - mean, x_test - mean
    targets = 2.0 * data.train_y[0] - 1.0
    alpha = np.linalg.solve(x.T @ x + 10.0 * np.eye(x.shape[1]), targets)
    predictions = ((x @ alpha) @ x_test > 0).astype(np.int64)
    accuracy = float((predictions == data.test_y[0]).mean())
    majority = max(data.test_y.mean(), 1 - data.test_y.mean())
    assert accuracy >= 0.85 > majority


# --------------------------------------------------------------------------- resolve_data_dir


@pytest.fixture
def in_empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    yield work


def touch_data(directory: Path, names: tuple[str, ...] = (TRAIN, TEST)) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_bytes(b"")
    return directory


def test_resolve_explicit_value_wins(in_empty_cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ENV_VAR, str(touch_data(in_empty_cwd / "env")))
    assert resolve_data_dir("somewhere/else") == Path("somewhere/else")


def test_resolve_env_then_the_projects_data_never_the_current_directory(
    in_empty_cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = touch_data(in_empty_cwd / "project" / "data")
    monkeypatch.setattr(data_module, "PROJECT_DATA_DIR", project)
    touch_data(in_empty_cwd / "data")  # ./data is not looked at: it depends on where one runs
    env = touch_data(in_empty_cwd / "env")
    monkeypatch.setenv(DATA_ENV_VAR, str(env))
    assert resolve_data_dir(None) == env
    assert resolve_data_dir("") == env  # an empty --data counts as not given
    (env / TRAIN).unlink()  # incomplete: skipped
    assert resolve_data_dir(None) == project
    monkeypatch.delenv(DATA_ENV_VAR)
    assert resolve_data_dir(None) == project


def test_resolve_none_names_what_is_missing_where(
    in_empty_cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data_module, "PROJECT_DATA_DIR", in_empty_cwd / "project")
    assert resolve_data_dir(None) is None
    assert missing_data() == (f"${DATA_ENV_VAR} is not set; the project's data/ "
                              f"({in_empty_cwd / 'project'}) lacks {TRAIN} and {TEST}")
    monkeypatch.setenv(DATA_ENV_VAR, str(touch_data(in_empty_cwd / "env", (TEST,))))
    assert resolve_data_dir(None) is None
    assert f"${DATA_ENV_VAR} ({in_empty_cwd / 'env'}) lacks {TRAIN};" in missing_data()
    monkeypatch.setenv(DATA_ENV_VAR, "")
    assert resolve_data_dir(None) is None


# --------------------------------------------------------------------------- parameter files


def make_params(layer_dims: list[int], dtype: Any = np.float64) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    params = {}
    for layer in range(1, len(layer_dims)):
        shape = (layer_dims[layer], layer_dims[layer - 1])
        params[f"W{layer}"] = rng.standard_normal(shape).astype(dtype)
        params[f"b{layer}"] = rng.standard_normal((layer_dims[layer], 1)).astype(dtype)
    return params


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_params_round_trip(tmp_path: Path, dtype: Any) -> None:
    dims = [12, 5, 3, 1]
    params = make_params(dims, dtype)
    path = save_params(tmp_path / "out" / "model.npz", params)
    assert path == tmp_path / "out" / "model.npz" and path.is_file()
    for kwargs in ({}, {"layer_dims": dims}, {"layer_dims": dims, "dtype": dtype}):
        loaded = load_params(path, **kwargs)
        assert list(loaded) == ["W1", "b1", "W2", "b2", "W3", "b3"]
        for key, value in params.items():
            assert loaded[key].dtype == np.dtype(dtype)
            np.testing.assert_array_equal(loaded[key], value)


def test_save_appends_npz_suffix(tmp_path: Path) -> None:
    path = save_params(tmp_path / "model", make_params([3, 1]))
    assert path == tmp_path / "model.npz" and path.is_file()


def save_raw(path: Path, **arrays: Any) -> Path:
    """Write an .npz directly, bypassing save_params' checks."""
    with path.open("wb") as f:
        np.savez(f, **arrays)
    return path


def test_load_missing_key(tmp_path: Path) -> None:
    params = make_params([4, 3, 1])
    del params["b2"]
    path = save_raw(tmp_path / "p.npz", **params)
    error_message(DataError, lambda: load_params(path), str(path), "W1..W2, b1..b2", "['b2']")


def test_load_unexpected_and_empty(tmp_path: Path) -> None:
    path = save_raw(tmp_path / "extra.npz", **make_params([4, 3, 1]), W3=np.zeros((1, 1)))
    error_message(DataError, lambda: load_params(path), str(path), "missing ['b3']")
    path = save_raw(tmp_path / "odd.npz", **make_params([4, 1]), weights=np.zeros(3))
    error_message(DataError, lambda: load_params(path), str(path), "unexpected ['weights']")
    path = save_raw(tmp_path / "empty.npz")
    error_message(DataError, lambda: load_params(path), str(path), "expected W1, b1")


@pytest.mark.parametrize(
    ("key", "shape", "expected"),
    [
        ("b1", (3,), "expected (3, 1)"),
        ("W2", (1, 4), "expected (1, 3)"),
        ("W1", (12,), "expected 2-D (n_1, n_0)"),
        ("W1", (), "expected 2-D (n_1, n_0)"),
        ("W2", (1, 3, 1), "expected 2-D (n_2, n_1)"),
    ],
)
def test_load_wrong_shape(tmp_path: Path, key: str, shape: tuple[int, ...], expected: str) -> None:
    params = make_params([4, 3, 1])
    params[key] = np.zeros(shape)
    path = save_raw(tmp_path / "p.npz", **params)
    error_message(DataError, lambda: load_params(path), str(path), f"'{key}'", str(shape), expected)


def test_load_layer_dims_mismatch(tmp_path: Path) -> None:
    path = save_params(tmp_path / "p.npz", make_params([4, 3, 1]))
    error_message(
        DataError,
        lambda: load_params(path, layer_dims=[4, 5, 1]),
        str(path),
        "'W1'",
        "(3, 4)",
        "expected (5, 4)",
        "layer_dims [4, 5, 1]",
    )
    error_message(
        DataError, lambda: load_params(path, layer_dims=[4, 3, 2, 1]), str(path), "2 layer(s)"
    )


def test_load_dtype_checks(tmp_path: Path) -> None:
    path = save_params(tmp_path / "p64.npz", make_params([4, 1]))
    error_message(
        DataError, lambda: load_params(path, dtype=np.float32), "'W1'", "float64", "float32"
    )
    path = save_params(tmp_path / "int.npz", make_params([4, 1], np.int64))
    error_message(DataError, lambda: load_params(path), str(path), "int64", "float dtype")
    mixed = make_params([4, 1])
    mixed["b1"] = mixed["b1"].astype(np.float32)
    path = save_params(tmp_path / "mixed.npz", mixed)
    error_message(DataError, lambda: load_params(path), str(path), "'b1'", "one dtype")


UNPICKLED: list[str] = []


class Tripwire:
    """Records it if anything ever unpickles it."""

    def __setstate__(self, state: object) -> None:
        UNPICKLED.append("unpickled")


def test_save_refuses_object_arrays(tmp_path: Path) -> None:
    params: dict[str, Any] = {"W1": np.array([[Tripwire()]], dtype=object), "b1": np.zeros((1, 1))}
    error_message(DataError, lambda: save_params(tmp_path / "p.npz", params), "'W1'", "pickle")
    assert not (tmp_path / "p.npz").exists()


def test_load_never_unpickles(tmp_path: Path) -> None:
    UNPICKLED.clear()
    tripwire = np.array([[Tripwire()]], dtype=object)
    path = save_raw(tmp_path / "evil.npz", W1=tripwire, b1=np.zeros((1, 1)))
    error_message(DataError, lambda: load_params(path), str(path), "'W1'", "pickle")
    pickled = tmp_path / "pickled.npz"  # a whole-file pickle, as np.save(allow_pickle=True) writes
    with pickled.open("wb") as f:
        np.save(f, tripwire, allow_pickle=True)
    error_message(DataError, lambda: load_params(pickled), str(pickled))
    assert UNPICKLED == []


def test_load_bad_files(tmp_path: Path) -> None:
    error_message(FileNotFoundError, lambda: load_params(tmp_path / "no.npz"), "no.npz")
    text = tmp_path / "text.npz"
    text.write_text("not numpy\n")
    error_message(DataError, lambda: load_params(text), str(text), "cannot read")
    single = tmp_path / "single.npz"
    with single.open("wb") as f:
        np.save(f, np.zeros((3, 2)))
    error_message(DataError, lambda: load_params(single), str(single), "single array")
    good = save_params(tmp_path / "good.npz", make_params([4, 3, 1]))
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:-40])
    error_message(DataError, lambda: load_params(cut), str(cut), "cannot read")


def test_a_non_editable_install_says_its_data_dir_means_nothing(
    in_empty_cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = in_empty_cwd / "venv" / "lib" / "python3.11" / "site-packages" / "data"
    monkeypatch.setattr(data_module, "PROJECT_DATA_DIR", installed)
    assert missing_data().endswith(
        "tinygrad_nn is installed without its project (pip install ., not -e), so its data/ lies "
        f"inside site-packages and is no project's: set ${DATA_ENV_VAR} or pass --data DIR")


def test_a_fresh_clone_finds_its_own_data_dir_with_the_variable_unset(tmp_path: Path) -> None:
    # A project-like layout, as a clone with the two files copied into its data/: the package
    # itself (not monkeypatched) finds them from any directory, with $TINYGRAD_NN_DATA unset.
    clone = tmp_path.resolve() / "clone"  # as the package sees its own path
    shutil.copytree(Path(data_module.__file__).parent, clone / "tinygrad_nn",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (clone / "data").mkdir()
    make_split(clone / "data", "train", 3)
    make_split(clone / "data", "test", 2)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if key != DATA_ENV_VAR}
    env["PYTHONPATH"] = str(clone)
    code = ("import tinygrad_nn.data as d; print(d.__file__); print(d.resolve_data_dir(None)); "
            "print(len(d.load_catvnoncat(d.resolve_data_dir(None)).train_y[0]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=elsewhere, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == [str(clone / "tinygrad_nn" / "data.py"),
                                           str(clone / "data"), "3"]
