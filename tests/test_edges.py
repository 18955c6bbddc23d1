"""What a new user meets at the edges (issue 13): no silent wrong answer, no bare numpy error.

Each test here failed on the engine before issue 13: ``check_grads`` on non-contiguous arguments
and with ``argnums``, Tensors handed to numpy, ``has_aux`` outputs, non-numeric inputs to ops,
``detect_anomaly`` with a NaN already in the data, the submodules reached from the package, and
an interrupted ``save_params``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Tensor, nn
from tinygrad_nn.data import PROJECT_DATA_DIR


def raises(kind: type[BaseException], *fragments: str) -> Any:
    """pytest.raises whose message must hold every fragment, in any order."""
    pattern = "".join(f"(?=[\\s\\S]*{re.escape(fragment)})" for fragment in fragments)
    return pytest.raises(kind, match=pattern)


# --- check_grads ----------------------------------------------------------------------------
def linear_cost(W: Any, X: Any) -> Tensor:
    return (tg.tanh(W @ X) ** 2).sum()


@pytest.mark.parametrize("transposed", ["X", "W", "both"])
def test_check_grads_is_right_for_arguments_that_are_not_c_contiguous(transposed: str) -> None:
    # X.T as scikit-learn hands it over (examples in rows), a weight kept as W.T.
    rng = np.random.default_rng(0)
    W = rng.normal(size=(3, 4)).T if transposed in ("W", "both") else rng.normal(size=(4, 3))
    X = rng.normal(size=(5, 3)).T if transposed in ("X", "both") else rng.normal(size=(3, 5))
    assert not (W.flags.c_contiguous and X.flags.c_contiguous)
    before = (W.copy(), X.copy())
    result = tg.check_grads(linear_cost, (W, X), eps=1e-6)
    assert result.max_error < 1e-7, result
    assert np.array_equal(W, before[0]) and np.array_equal(X, before[1])  # never perturbed


def test_check_grads_perturbs_only_the_arguments_in_argnums() -> None:
    rng = np.random.default_rng(1)
    W, X = rng.normal(size=(1, 3)), rng.normal(size=(3, 6))
    Y = np.array([[1, 0, 1, 1, 0, 0]])  # labels: a perturbed label is no label

    def cost(W: Any, X: Any, Y: Any, key: str) -> Tensor:
        assert key == "seed-7"  # a random key passes through untouched
        is_cat = np.asarray(Y) == 1  # breaks if Y is perturbed
        return tg.where(is_cat, tg.softplus(-(W @ X)), tg.softplus(W @ X)).mean()

    result = tg.check_grads(cost, (W, X, Y, "seed-7"), argnums=0, eps=1e-6)
    assert set(result.errors) == {"x0"} and result.max_error < 1e-7, result
    both = tg.check_grads(cost, (W, X, Y, "seed-7"), argnums=(0, 1), eps=1e-6)
    assert set(both.errors) == {"x0", "x1"} and both.max_error < 1e-7, both


def test_check_grads_names_an_argument_by_its_position() -> None:
    rng = np.random.default_rng(2)
    X, W = rng.normal(size=(3, 5)), rng.normal(size=(4, 3))
    result = tg.check_grads(lambda X, W: linear_cost(W, X), (X, W), argnums=1, eps=1e-6)
    assert set(result.errors) == {"x1"} and result.worst_leaf == "x1"  # W is argument 1


def test_check_grads_names_a_non_numeric_argument() -> None:
    with raises(TypeError, "check_grads", "'x1'", "str"):
        tg.check_grads(lambda W, key: (W**2).sum(), (np.ones(3), "key"))


# --- Tensors given to numpy -----------------------------------------------------------------
def test_np_asarray_of_a_tensor_is_its_values() -> None:
    t = Tensor(np.arange(6.0).reshape(2, 3))
    array = np.asarray(t)
    assert type(array) is np.ndarray and array.dtype == np.float64 and array.shape == (2, 3)
    assert np.array_equal(array, np.arange(6.0).reshape(2, 3))
    assert np.asarray(Tensor(np.ones(2)), dtype=np.float32).dtype == np.float32
    assert np.array([Tensor(1.0), Tensor(2.0)]).dtype == np.float64  # not an object array


def test_numpy_functions_compute_on_the_values_of_constant_tensors() -> None:
    t = Tensor(np.array([1.0, 2.0, 3.0]))
    assert np.sum(t) == 6.0 and np.mean(t) == 2.0 and np.linalg.norm(t) == np.sqrt(14.0)
    joined = np.concatenate([t, t])
    assert type(joined) is np.ndarray and joined.shape == (6,)
    assert np.shape(t) == (3,) and np.ndim(t) == 1


@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("np.sum", np.sum),
        ("np.mean", np.mean),
        ("np.concatenate", lambda t: np.concatenate([t, t])),
        ("np.linalg.norm", np.linalg.norm),
        ("np.clip", lambda t: np.clip(t, 0.0, 1.0)),
    ],
)
def test_numpy_functions_refuse_a_tensor_that_requires_grad(name: str, call: Any) -> None:
    t = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    with raises(TypeError, name.rsplit(".", 1)[-1], "requires grad", "detach"):
        call(t)
    with raises(TypeError, "requires grad"):  # inside a transform too: never a dropped gradient
        tg.grad(lambda x: Tensor(call(x)).sum())(np.ones(3))


def test_numpy_ufuncs_on_a_tensor_are_the_recorded_ops() -> None:
    x = np.array([0.5, 1.0, 2.0])
    assert np.allclose(tg.grad(lambda t: np.exp(t).sum())(x), np.exp(x))
    assert np.allclose(tg.grad(lambda t: (np.ones(3) * t).sum())(x), np.ones(3))


def test_reading_a_traced_tensor_with_numpy_is_an_error() -> None:
    with raises(tg.TracedValueError, "np.asarray()", "traced"):
        tg.make_graph(lambda x: x * np.asarray(x).max())(np.ones(3))


# --- has_aux --------------------------------------------------------------------------------
def aux_function(x: Tensor) -> tuple[Tensor, dict[str, Any]]:
    hidden = tg.tanh(x)
    return (hidden**2).sum(), {"hidden": hidden, "count": 3, "note": "kept as it is"}


def check_aux(aux: dict[str, Any]) -> None:
    assert type(aux["hidden"]) is np.ndarray and np.allclose(aux["hidden"], np.tanh([1.0, 2.0]))
    assert aux["count"] == 3 and type(aux["count"]) is int
    assert aux["note"] == "kept as it is" and type(aux["note"]) is str


def test_has_aux_gives_the_aux_outputs_as_numpy_at_the_top_level() -> None:
    x = np.array([1.0, 2.0])
    (_, aux), _ = tg.value_and_grad(aux_function, has_aux=True)(x)
    check_aux(aux)
    check_aux(tg.grad(aux_function, has_aux=True)(x)[1])
    check_aux(tg.vjp(aux_function, x, has_aux=True)[2])


# --- what an op is given --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bad", "kind"),
    [(None, "NoneType"), ([[1.0, 2.0], [3.0]], "ragged nested list"), ("abc", "str"),
     ({"W": 1.0}, "dict")],
)
@pytest.mark.parametrize(
    ("op", "call"),
    [
        ("add", lambda t, bad: t + bad),
        ("mul", lambda t, bad: bad * t),
        ("matmul", lambda t, bad: t @ bad),
        ("logaddexp", lambda t, bad: tg.softplus(bad)),
        ("maximum", lambda t, bad: tg.maximum(t, bad)),
    ],
)
def test_a_non_numeric_input_to_an_op_names_the_op_and_the_input(
    op: str, call: Any, bad: Any, kind: str
) -> None:
    t = Tensor(np.ones(2), requires_grad=True)
    name = "softplus" if op == "logaddexp" else op
    with pytest.raises(TypeError) as info:
        call(t, bad)
    message = str(info.value)
    assert message.startswith(f"{name}: input "), message
    assert kind in message and "expected a Tensor or a number" in message
    assert "ufunc" not in message and "operand" not in message  # not numpy's own words


# --- detect_anomaly -------------------------------------------------------------------------
def test_detect_anomaly_says_the_input_already_held_the_nan() -> None:
    rng = np.random.default_rng(3)
    X, W = rng.normal(size=(3, 4)), Tensor(rng.normal(size=(2, 3)), requires_grad=True)
    X[1, 2] = np.nan
    with raises(FloatingPointError, "input 1", "'matmul'", "already holds NaN", "(3, 4)"), \
            tg.detect_anomaly():
        W @ X
    with pytest.raises(FloatingPointError) as info, tg.detect_anomaly():
        W @ X
    assert "produced" not in str(info.value)  # matmul is not blamed
    W.data[0, 0] = np.inf  # a parameter: the same
    with raises(FloatingPointError, "input 0", "already holds inf"), tg.detect_anomaly():
        W @ np.ones((3, 1))


# --- the package ----------------------------------------------------------------------------
def test_the_submodules_are_reachable_after_import_tinygrad_nn_as_tg() -> None:
    # A fresh interpreter: in this one, other tests' imports have already set the attributes.
    code = ("import tinygrad_nn as tg; print(tg.nn.train.__name__, "
            "tg.course.L_model_forward.__name__, tg.data.load_catvnoncat.__name__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["train", "L_model_forward", "load_catvnoncat"]


def test_the_projects_data_dir_is_beside_the_package_not_the_current_directory() -> None:
    assert Path(__file__).resolve().parents[1] / "data" == PROJECT_DATA_DIR


# --- an interrupted save --------------------------------------------------------------------
@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_an_interrupted_save_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    good = nn.init_params([4, 3, 1], seed=1)
    target = nn.save_params(tmp_path / "params.npz", good)
    real_savez = np.savez

    def savez_then_fail(file: Any, **arrays: Any) -> None:
        real_savez(file, **arrays)  # the whole archive written…
        file.seek(0)
        file.truncate(100)  # …then cut short, as a full disk or Ctrl-C leaves it
        raise failure

    monkeypatch.setattr(np, "savez", savez_then_fail)
    newer = nn.init_params([4, 3, 1], seed=2)
    with pytest.raises(type(failure)):
        nn.save_params(target, newer)
    monkeypatch.undo()
    kept = nn.load_params(target)
    assert kept.keys() == good.keys()
    assert all(np.array_equal(kept[key], good[key]) for key in good)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.npz"]  # no temporary left
    nn.save_params(target, newer)  # and a save that completes replaces it
    assert np.array_equal(nn.load_params(target)["W1"], newer["W1"])


def test_load_params_gives_the_files_own_dtype(tmp_path: Path) -> None:
    path = nn.save_params(tmp_path / "p32", nn.init_params([4, 3, 1], dtype=np.float32))
    assert {a.dtype for a in nn.load_params(path).values()} == {np.dtype(np.float32)}


# --- reading values, argnums, seeds ---------------------------------------------------------
@pytest.mark.parametrize(
    ("read", "what", "kind"),
    [(float, "float()", TypeError), (int, "int()", TypeError), (bool, "bool()", ValueError),
     (lambda t: t.item(), ".item()", ValueError)],
)
def test_reading_a_tensor_of_several_values_as_one_names_its_shape(
    read: Any, what: str, kind: type[Exception]
) -> None:
    with raises(kind, what, "of a Tensor of shape (3,)", "exactly one element"):
        read(Tensor(np.ones(3), requires_grad=True))
    with raises(TypeError, "float() of a Tensor of shape (1, 1)", ".item()"):
        float(Tensor(np.ones((1, 1))))
    assert float(Tensor(np.array(2.5))) == 2.5 and Tensor(np.ones((1, 1))).item() == 1.0


@pytest.mark.parametrize("argnums", ["0", 0.0, (0, "1"), [None]])
def test_argnums_that_are_not_ints_are_named(argnums: Any) -> None:
    with raises(TypeError, "grad: argnums must be an int or a sequence of ints"):
        tg.grad(lambda x, y: (x * y).sum(), argnums=argnums)(np.ones(2), np.ones(2))


@pytest.mark.parametrize(("seed", "kind"), [("a", "str"), ([[1.0], [1.0, 2.0]], "ragged")])
def test_a_seed_that_is_not_numbers_is_named(seed: Any, kind: str) -> None:
    y = Tensor(np.ones(2), requires_grad=True) * 2.0
    with raises(TypeError, "backward: the seed", kind):
        y.backward(seed)
    _, vjp_fn = tg.vjp(lambda x: x.sum(), np.ones(2))
    with raises(TypeError, "vjp_fn: the seed", kind):
        vjp_fn(seed)


@pytest.mark.parametrize("seed", [-1, 1.5, 2**32, True])
def test_a_seed_numpy_refuses_is_named_by_the_call(seed: Any) -> None:
    from tinygrad_nn import course

    with raises(ValueError, "init_params: seed must be an integer in [0, 2**32)", repr(seed)):
        nn.init_params([3, 1], seed=seed)
    with raises(ValueError, "random_mini_batches: seed must be an integer"):
        course.random_mini_batches(np.ones((2, 3)), np.ones((1, 3)), seed=seed)


@pytest.mark.parametrize(
    "call, kind, fragments",
    [
        (lambda t: t.reshape("a"), TypeError, ("reshape:", "sequence of ints", "'a'")),
        (lambda t: t.reshape(2.0, 3), TypeError, ("reshape:", "sequence of ints", "2.0")),
        (lambda t: t.reshape(np.array([2.0, 3.0])), TypeError, ("reshape:", "sequence of ints")),
        (lambda t: t.transpose("ab"), TypeError, ("transpose:", "sequence of ints")),
        (lambda t: tg.ops.broadcast_to(t, None), TypeError, ("broadcast_to:", "None")),
        (lambda t: tg.ops.sum(t, axis="a"), TypeError, ("sum: axis", "'a'")),
        (lambda t: tg.ops.mean(t, axis=1.5), TypeError, ("mean: axis", "1.5")),
        (lambda t: tg.ops.sum(t, axis=2), ValueError, ("sum: axis 2", "(2, 3)")),
        (lambda t: tg.ops.concatenate(None), TypeError, ("concatenate:", "non-empty", "None")),
        (lambda t: tg.ops.stack([]), TypeError, ("stack:", "non-empty", "[]")),
        (lambda t: t.astype("foo"), TypeError, ("astype:", "'foo'", "np.float32")),
        (lambda t: tg.ops.clip(t, "a", 1.0), ValueError, ("clip:", "'a'", "numbers or None")),
    ],
)
def test_a_bad_shape_axis_dtype_or_join_argument_names_the_op(
    call: Any, kind: type[BaseException], fragments: tuple[str, ...]
) -> None:
    with raises(kind, *fragments):
        call(Tensor(np.ones((2, 3)), requires_grad=True))


def test_the_shape_arguments_numpy_accepts_still_work() -> None:
    t = Tensor(np.arange(6.0))
    assert t.reshape(2, 3).shape == t.reshape((2, 3)).shape == t.reshape([2, -1]).shape == (2, 3)
    assert t.reshape(np.int64(6)).shape == t.reshape(np.array(6)).shape == (6,)
    assert t.reshape(np.array([3, 2])).shape == (3, 2)
    assert t.reshape(2, 3).transpose([1, 0]).shape == (3, 2)
    assert tg.ops.sum(t.reshape(2, 3), axis=[0, 1]).shape == ()
    assert tg.ops.sum(t.reshape(2, 3), axis=np.array([1])).shape == (2,)


def test_an_output_that_is_not_numbers_is_named_by_the_transform_that_traced_it() -> None:
    with raises(TypeError, "jit(with_text): the output 's'", "str"):
        tg.jit(with_text)(np.ones(2))
    with raises(TypeError, "make_graph(with_text): the output 's'", "str"):
        tg.make_graph(with_text)(np.ones(2))


def with_text(x: Any) -> dict[str, Any]:
    return {"y": x * 2, "s": "text"}


def test_sigmoid_of_a_bool_mask_is_of_its_ones_and_zeros() -> None:
    # numpy has no negative of a bool; sigmoid takes a mask as the numbers 1 and 0
    mask = np.array([True, False])
    assert np.array_equal(tg.sigmoid(mask).data, tg.sigmoid(np.array([1.0, 0.0])).data)
