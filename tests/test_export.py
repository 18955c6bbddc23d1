"""export_onnx: every exported model runs in ONNX Runtime and gives the engine's numbers.

The bars: ≤ 1e-12 relative (elementwise) in float64 and ≤ 1e-5 in float32, at a batch size
other than the one traced, on the course's nets, a softmax classifier and one program that uses
every built-in primitive. With the course's data (found as the examples find it) the exported
cat classifier labels the 50 test pictures exactly as the engine does. Needs onnx and
onnxruntime (the dev extra); the test that ``import tinygrad_nn`` works without them runs
regardless.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import export, nn, ops
from tinygrad_nn.data import CatDataset, flatten_images, load_catvnoncat
from tinygrad_nn.export import UnsupportedPrimitiveError, export_onnx, register_onnx
from tinygrad_nn.graph import trace
from tinygrad_nn.tensor import Tensor

try:
    import onnx
    import onnxruntime as ort
except ImportError:
    onnx = ort = None

needs_onnx = pytest.mark.skipif(ort is None, reason="onnx and onnxruntime are not installed: "
                                "pip install -e '.[onnx]' (the dev extra has them)")
DTYPES = [np.float64, np.float32]
RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}
PROJECT = Path(__file__).resolve().parent.parent


def run(model: Any, **inputs: np.ndarray) -> dict[str, np.ndarray]:
    """The model's outputs by name, computed by ONNX Runtime on the CPU."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, inputs)))


def assert_same(got: np.ndarray, expected: Any) -> None:
    """Same dtype and shape; floats within the bar (elementwise relative), the rest equal."""
    expected = np.asarray(expected.data if isinstance(expected, Tensor) else expected)
    assert (got.dtype, got.shape) == (expected.dtype, expected.shape)
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(got, expected, rtol=RTOL[expected.dtype], atol=0)
    else:
        np.testing.assert_array_equal(got, expected)


def dims(value_info: Any) -> list[Any]:
    """An input's or output's axes: sizes, symbols, or None where unnamed."""
    return [d.dim_value if d.HasField("dim_value") else d.dim_param or None
            for d in value_info.type.tensor_type.shape.dim]


def pictures(m: int, dtype: Any, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((12288, m)).astype(dtype)


# --- the course's nets and a softmax classifier -------------------------------------------------
@needs_onnx
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layer_dims, scheme", [([12288, 20, 7, 5, 1], "scaled"),
                                                ([12288, 7, 1], "small")])
def test_the_course_nets_run_in_onnx_runtime_as_in_the_engine(layer_dims: list[int],
                                                              scheme: nn.Scheme,
                                                              dtype: Any) -> None:
    params = nn.init_params(layer_dims, scheme, dtype=dtype)
    model = export_onnx(nn.forward, params, pictures(3, dtype, 0), argnames=["X"])
    X = pictures(7, dtype, 1)  # another batch size than traced
    assert_same(run(model, X=X)["output"], nn.forward(params, X))
    layers = len(layer_dims) - 1
    assert {t.name for t in model.graph.initializer} >= {f"{k}{n}" for n in range(1, layers + 1)
                                                          for k in "Wb"}
    [x], [output] = model.graph.input, model.graph.output
    assert (x.name, dims(x), dims(output)) == ("X", [12288, "batch"], [1, "batch"])


@needs_onnx
@pytest.mark.parametrize("dtype", DTYPES)
def test_a_softmax_classifier_runs_as_in_the_engine(dtype: Any) -> None:
    params = nn.init_params([12288, 20, 4], dtype=dtype, seed=3)

    def classify(params: dict[str, np.ndarray], X: Any) -> Tensor:
        return tg.softmax(nn.logits(params, X), axis=0)  # (K, m) probabilities

    model = export_onnx(classify, params, pictures(5, dtype, 2), argnames=["X"])
    # float64: large logits, where the softmax's shift matters. Not in float32: there the
    # 12288-term sums of either runtime differ by ~1e-6, which exp makes 2e-5 relative in the
    # small probabilities (rounding of float32, not the export)
    X = pictures(2, dtype, 3) * (40.0 if dtype == np.float64 else 1.0)
    probabilities = run(model, X=X)["output"]
    assert_same(probabilities, classify(params, X))
    assert dims(model.graph.output[0]) == [4, "batch"]
    np.testing.assert_allclose(probabilities.sum(axis=0), 1.0, rtol=10 * RTOL[np.dtype(dtype)])


# --- one program with every built-in primitive ---------------------------------------------------
def every_primitive(p: dict[str, Any], X: Any) -> dict[str, Tensor]:
    """X (6, m) through all of ops.py's primitives; outputs of float, bool and integer dtype."""
    Z = p["W"] @ X + p["b"]  # (4, m)
    A = tg.relu(Z) - tg.sigmoid(Z) * tg.tanh(Z) / (1.0 + tg.exp(-tg.abs(Z)))
    B = tg.log(tg.softplus(Z) + 1.0) ** 1.5 + tg.sqrt(Z * Z + 1.0)
    C = tg.maximum(A, B) - tg.minimum(A, 0.5) + tg.sign(Z) * tg.clip(Z, -0.5, 0.7)
    D = tg.where(Z > 0, C, -C) + ops.identity(tg.astype(Z <= 0.25, X.dtype))
    mask = tg.not_equal(tg.where(Z < 0.1, Z >= 0.3, tg.equal(Z, 0.2)), Z > 0)
    E = tg.concatenate([D, tg.stack([D[0], D[-1]], axis=0)], axis=0)  # (6, m)
    cube = tg.reshape(X, (2, 3, -1)).transpose(1, 0, 2)  # (3, 2, m)
    F = cube.sum(axis=(0, 1)) + cube.mean(axis=1).max(axis=0) + E[[0, 2, 3]].mean(axis=0)
    picked = E[np.array([True, False, True, False, False, True])][..., ::-1]
    G = tg.logsumexp(E, axis=0) + F + picked.max(axis=0)  # (m,)
    W2 = ops.scatter_add(p["W"][:, ::2] * 2.0, index=(slice(None), slice(None, None, 2)),
                         shape=(4, 6))
    H = tg.broadcast_to(p["b"], (2, 4, 1)).sum(axis=0) + W2.sum(axis=1, keepdims=True)
    y = G + (H.T @ E[:4])[0, None, :, None][0, :, 0]
    # numpy's ops (issue 19), those ONNX Runtime runs in float64 too
    K = tg.log1p(tg.softplus(D)) + tg.expm1(A * 0.1) + tg.sin(B) * tg.cos(C) + tg.logaddexp(A, D)
    K = K + tg.floor(D) + tg.ceil(B) * 0.5 + tg.round(C * 3.0) + tg.mod(Z, 0.7) + Z % -1.3
    ordered = tg.take_along_axis(K, tg.argsort(K, axis=0), axis=0)  # (4, m)
    y = y + tg.einsum("ij,ij->j", ordered, tg.cumsum(K, axis=0)) + tg.min(K, axis=0)
    y = y + tg.prod(K[:2] * 0.5 + 1.0, axis=0) + tg.argmin(K, axis=0).astype(X.dtype)
    y = ops.check_range(y + tg.stop_gradient(y), low=-1e9, high=1e9, message="{value} too large")
    return {"y": y, "mask": mask, "label": tg.argmax(E, axis=0)}


def example_params(dtype: Any, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"W": rng.normal(size=(4, 6)).astype(dtype), "b": rng.normal(size=(4, 1)).astype(dtype)}


# ONNX Runtime has float32 kernels only for these (tests/test_ops_numpy.py runs them so)
ORT_FLOAT32_ONLY = {ops.tan, ops.arcsin, ops.arccos, ops.arctan, ops.sinh, ops.cosh, ops.arctan2,
                    ops.erf}


def test_the_program_uses_every_builtin_primitive_and_each_has_a_mapping() -> None:
    builtin = {p for p in vars(ops).values() if isinstance(p, tg.Primitive)} | {
        tg.stop_gradient}
    graph = trace(every_primitive, (example_params(np.float64), np.ones((6, 5))), argnums=())
    # identity is not listed in a program: its uses read its input
    assert {node.primitive for node in graph.ops} == builtin - {ops.identity} - ORT_FLOAT32_ONLY
    assert all(export.ONNX_OPS[p] is not None for p in builtin)


@needs_onnx
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_primitive_runs_in_onnx_runtime_as_in_the_engine(dtype: Any) -> None:
    params, rng = example_params(dtype), np.random.default_rng(1)
    model = export_onnx(every_primitive, params, rng.normal(size=(6, 5)).astype(dtype),
                        argnames=["X"])
    X = rng.normal(size=(6, 8)).astype(dtype)
    got, expected = run(model, X=X), every_primitive(params, X)
    assert list(got) == ["y", "mask", "label"]
    for name, value in expected.items():
        assert_same(got[name], value)


@needs_onnx
@pytest.mark.parametrize("dtype", DTYPES)
def test_softplus_sigmoid_and_logsumexp_agree_at_the_extremes(dtype: Any) -> None:
    """ONNX Runtime's own Softplus gives inf at 800 and 0 at -50, its Sigmoid 0 at -50: the
    export builds both from stable ops, and logsumexp shifts by the max as the engine does."""

    def tails(x: Any) -> dict[str, Tensor]:
        return {"softplus": tg.softplus(x), "sigmoid": tg.sigmoid(x),
                "log_sigmoid": tg.log_sigmoid(x), "logsumexp": tg.logsumexp(x, axis=0),
                "logsumexp_all": tg.logsumexp(x, axis=(0, 1), keepdims=True)}

    x = np.array([[-1000, -800, -100, -50, -30, -5, -1e-3, 0],
                  [0, 1e-3, 5, 30, 50, 100, 800, 1000], [-np.inf] * 8], dtype)
    got = run(export_onnx(tails, x[:, :5]), x0=x)
    with np.errstate(over="ignore"):
        expected = tails(x)
    for name, value in expected.items():
        assert_same(got[name], value)


# --- indexing -------------------------------------------------------------------------------------
INDEXES = [
    (slice(None), slice(None, None, -1)), (1, Ellipsis), (Ellipsis, -1), (None, 0, slice(1, None)),
    (slice(-3, None, 2),), ([2, 0, 2],), (slice(None), np.array([[0, 1], [3, 3]])), (0, [1, 2]),
    (slice(None), np.array([True, False, True, True])), (slice(10, -10, -1),),
    (slice(None, None, -2), None, -2), (-1, slice(None), Ellipsis, None), (Ellipsis,),
]


@needs_onnx
@pytest.mark.parametrize("index", INDEXES, ids=repr)
def test_indexing_exports_as_numpy_indexes(index: tuple[Any, ...]) -> None:
    x = np.arange(60.0).reshape(3, 4, 5)
    model = export_onnx(lambda t: t[index], x, dynamic_batch=False)
    assert_same(run(model, x0=x)["output"], x[index])


@needs_onnx
@pytest.mark.parametrize("index, what", [
    ((np.array([0, 1]), np.array([1, 2])), "more than one array index"),
    ((0, slice(None), [1, 2]), "more than one array index, or an array index apart"),
    (np.ones((3, 4), dtype=bool), "the index"),
])
def test_an_index_the_export_cannot_express_is_an_error_naming_its_line(index: Any,
                                                                        what: str) -> None:
    x = np.arange(60.0).reshape(3, 4, 5)
    with pytest.raises(UnsupportedPrimitiveError, match=f"getitem at `a:f64.* = getitem.* "
                       f"x0[^`]*`: {what}"):
        export_onnx(lambda t: t[index], x)


# --- a user's own primitive -------------------------------------------------------------------
swish_p = tg.Primitive("swish", lambda x, beta: x / (1.0 + np.exp(-beta * x)),
                       (lambda g, out, x, beta: g,), "(a stand-in rule)")


def swish_emit(g: export.Emitter) -> str:  # x·σ(βx), as the user writes it
    x = g.input(0, g.node.dtype)
    return g.op("Mul", x, g.op("Sigmoid", g.op("Mul", x, g.constant(g.params["beta"],
                                                                      g.node.dtype))))


def swish_program(x: Any) -> Tensor:
    return swish_p(x * 2.0 + 1.0, beta=2.0)


@needs_onnx
def test_a_primitive_without_a_mapping_is_an_error_naming_it_and_its_line() -> None:
    with pytest.raises(UnsupportedPrimitiveError) as error:
        export_onnx(swish_program, np.ones((3, 4)))
    assert "primitive 'swish' has no ONNX mapping, at `c:f64[3,4] = swish[beta=2.0] b`" in str(
        error.value)
    assert "register_onnx" in str(error.value)


@needs_onnx
def test_a_user_primitive_exports_through_its_registered_mapping(monkeypatch: Any) -> None:
    monkeypatch.setattr(export, "ONNX_OPS", dict(export.ONNX_OPS))
    register_onnx(swish_p, swish_emit)
    x = np.linspace(-3.0, 3.0, 12).reshape(3, 4)
    model = export_onnx(swish_program, x)
    assert [n.op_type for n in model.graph.node] == ["Mul", "Add", "Mul", "Sigmoid", "Mul"]
    got = run(model, x0=np.linspace(-2.0, 4.0, 15).reshape(3, 5))["output"]
    np.testing.assert_allclose(got, swish_program(np.linspace(-2.0, 4.0, 15).reshape(3, 5)).data,
                               rtol=1e-12)
    # another primitive of the same name is not the registered one: no mapping for it
    other = tg.Primitive("swish", swish_p.impl, swish_p.vjps)
    with pytest.raises(UnsupportedPrimitiveError, match="'swish' has no ONNX mapping"):
        export_onnx(lambda t: other(t, beta=1.0), x)


def test_register_onnx_keeps_the_builtin_mappings(monkeypatch: Any) -> None:
    monkeypatch.setattr(export, "ONNX_OPS", dict(export.ONNX_OPS))
    builtin = export.ONNX_OPS[ops.add]
    mine = tg.Primitive("add", np.add)  # the same name: another primitive, another key
    register_onnx(mine, swish_emit)
    assert export.ONNX_OPS[ops.add] is builtin and export.ONNX_OPS[mine] is swish_emit
    with pytest.raises(TypeError, match=r"expected a tg\.Primitive, got str"):
        register_onnx("add", swish_emit)  # type: ignore[arg-type]


# --- which argument becomes what, and names -------------------------------------------------------
@needs_onnx
def test_pytree_arguments_are_named_initializers_and_arrays_are_inputs() -> None:
    params = nn.init_params([6, 3, 1])
    X = np.ones((6, 4))
    model = export_onnx(nn.forward, params, X)  # X: the array argument at position 1
    assert [x.name for x in model.graph.input] == ["x1"]
    assert [t.name for t in model.graph.initializer][:4] == ["W1", "b1", "W2", "b2"]
    layers = ({"W": params["W1"], "b": params["b1"]}, {"W": params["W2"], "b": params["b2"]})

    def stacked(layers: Any, X: Any, activation: str) -> Tensor:
        for layer in layers:
            X = nn.ACTIVATIONS[activation](layer["W"] @ X + layer["b"])
        return X

    model = export_onnx(stacked, layers, X, "tanh", argnames=["pixels"])  # "tanh" is fixed
    assert [x.name for x in model.graph.input] == ["pixels"]
    assert {"[0].W", "[0].b", "[1].W", "[1].b"} <= {t.name for t in model.graph.initializer}
    assert_same(run(model, pixels=X)["output"], stacked(layers, X, "tanh"))


@needs_onnx
def test_closed_over_arrays_are_initializers_named_const_or_by_their_tensor_name() -> None:
    params = nn.init_params([6, 3, 1])
    W = Tensor(params["W1"], name="W_named")
    model = export_onnx(lambda X: tg.sigmoid(params["W2"] @ tg.relu(W @ X)), np.ones((6, 2)))
    names = {t.name for t in model.graph.initializer}
    assert [x.name for x in model.graph.input] == ["x0"]
    assert "W_named" in names and "const0" in names and len(names) == 3  # W2 and 1.0 of σ


@needs_onnx
def test_argnames_must_name_each_array_argument_once() -> None:
    params, X = nn.init_params([6, 3, 1]), np.ones((6, 2))
    with pytest.raises(ValueError, match="names 2 inputs, but f has 1 array arguments"):
        export_onnx(nn.forward, params, X, argnames=["X", "Y"])
    with pytest.raises(ValueError, match=r"take one of the program's: \['W1'\]"):
        export_onnx(nn.forward, params, X, argnames=["W1"])


@needs_onnx
def test_outputs_are_named_by_their_paths_and_inputs_or_repeats_pass_through_identity() -> None:
    params, x = {"W": np.eye(2) * 3.0}, np.arange(8.0).reshape(2, 4)

    def twice(p: dict[str, Any], x: Any) -> tuple[Any, ...]:
        y = p["W"] @ x
        return x, y, y

    got = run(export_onnx(twice, params, np.ones((2, 3))), x1=x)
    assert list(got) == ["output[0]", "output[1]", "output[2]"]
    assert_same(got["output[0]"], x)
    assert_same(got["output[2]"], 3 * x)
    model = export_onnx(lambda p, x: {"W": p["W"] @ x, "y": x}, params, np.ones((2, 3)))
    assert [o.name for o in model.graph.output] == ["output.W", "y"]  # W is the parameter's


# --- the batch axis -------------------------------------------------------------------------------
@needs_onnx
def test_a_program_that_depends_on_the_batch_size_exports_only_with_a_static_batch() -> None:
    def cube(X: Any) -> Tensor:
        return tg.reshape(X, (2, 3, X.shape[-1])).sum(axis=0)  # -1 would do

    X = np.arange(30.0).reshape(6, 5)
    with pytest.raises(ValueError, match=r"`a:f64\[2,3,5\] = reshape\[shape=\(2, 3, 5\)\] x0` "
                       r"depends on the batch size \(5; traced with 6"):
        export_onnx(cube, X)
    model = export_onnx(cube, X, dynamic_batch=False)
    assert dims(model.graph.input[0]) == [6, 5] and dims(model.graph.output[0]) == [3, 5]
    assert_same(run(model, x0=X)["output"], cube(X))
    with pytest.raises(ValueError, match=r"f fails with a batch of 6 instead of 5 .*cannot "
                       "reshape"):
        export_onnx(lambda X: tg.reshape(X, (2, 3, 5)), X)
    with pytest.raises(ValueError, match=r"`b:f64\[\] = div a 5` depends on the batch size"):
        export_onnx(lambda X: X.sum() / X.shape[1], X)  # a count: tg.mean would do
    with pytest.raises(ValueError, match=r"last axes have sizes \[4, 5\]"):
        export_onnx(lambda a, b: a.sum() + b.sum(), np.ones((2, 4)), np.ones((2, 5)))


# --- a program with grad: its backward pass is exported too ----------------------------------
@needs_onnx
@pytest.mark.parametrize("dtype", DTYPES)
def test_a_gradient_exports_with_its_backward_pass(dtype: Any) -> None:
    """The gradient of the cost at fixed parameters, for any X and Y of the traced batch (its
    backward pass divides by the batch size and broadcasts to it: dynamic_batch=True says so)."""

    def picky_cost(params: dict[str, np.ndarray], X: Any, Y: Any) -> Tensor:
        Z = nn.logits(params, X)[:, ::2]  # getitem: its backward is a scatter_add
        return nn.binary_cross_entropy_with_logits(Z, Y[:, ::2])

    params = nn.init_params([6, 4, 1], dtype=dtype)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(6, 10)).astype(dtype), (rng.random((1, 10)) > 0.5).astype(dtype)
    gradient = tg.grad(picky_cost)
    with pytest.raises(ValueError, match="depends on the batch size"):
        export_onnx(gradient, params, X, Y)
    model = export_onnx(gradient, params, X, Y, dynamic_batch=False, argnames=["X", "Y"])
    assert "ScatterElements" in {n.op_type for n in model.graph.node}
    X, Y = X[::-1].copy(), 1 - Y
    got, expected = run(model, X=X, Y=Y), gradient(params, X, Y)
    for key in params:
        assert_same(got[f"output.{key}"], expected[key])


# --- the model file ---------------------------------------------------------------------------
@needs_onnx
def test_the_model_is_written_checked_and_states_its_opset(tmp_path: Path) -> None:
    params = nn.init_params([6, 3, 1])
    path = tmp_path / "out" / "net.onnx"
    model = export_onnx(nn.forward, params, np.ones((6, 2)), path=path, argnames=["X"])
    onnx.checker.check_model(str(path), full_check=True)
    loaded = onnx.load(str(path))
    assert loaded == model
    assert [(o.domain, o.version) for o in loaded.opset_import] == [("", export.OPSET)]
    assert loaded.ir_version == 8 and f"opset {export.OPSET}" in (export_onnx.__doc__ or "")
    assert "c:f64[3,2] = relu b" in loaded.graph.doc_string  # the program it came from


def test_import_tinygrad_nn_works_without_onnx_and_export_says_how_to_get_it() -> None:
    script = """
import sys
import numpy as np
import tinygrad_nn as tg
assert "onnx" not in sys.modules and "tinygrad_nn.export" not in sys.modules
sys.modules["onnx"] = sys.modules["onnxruntime"] = None  # as if not installed
from tinygrad_nn.export import register_onnx  # a user's primitive can register without onnx
try:
    tg.export_onnx(lambda x: x * 2.0, np.ones((2, 3)))
except ImportError as error:
    print(error)
"""
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                               timeout=120, cwd=PROJECT)
    assert completed.returncode == 0, completed.stderr
    assert "export_onnx needs the onnx package: pip install 'tinygrad_nn[onnx]'" in (
        completed.stdout)


# --- the course's cat classifier (needs the course's data: see tests/conftest.py) -------------
@pytest.fixture(scope="module")
def real(course_data_dir: Path) -> CatDataset:
    return load_catvnoncat(course_data_dir)


@needs_onnx
@pytest.mark.parametrize("dtype, iterations", [
    pytest.param(np.float64, 2500, marks=pytest.mark.slow),  # the course's full run
    (np.float32, 300),
])
def test_the_exported_cat_net_labels_the_50_test_pictures_as_the_engine(
        real: CatDataset, dtype: Any, iterations: int) -> None:
    """float64: the course's full run (~15 s), 80 % in both runtimes; float32: a short one."""
    X = flatten_images(real.train_x_orig, dtype)
    params, _ = nn.train(nn.init_params([12288, 20, 7, 5, 1], dtype=dtype), X, real.train_y,
                         0.0075, iterations)
    X_test = flatten_images(real.test_x_orig, dtype)
    model = export_onnx(nn.forward, params, X[:, :3], argnames=["X"])  # traced on 3 pictures
    probabilities = run(model, X=X_test)["output"]
    assert_same(probabilities, nn.forward(params, X_test))
    labels = (probabilities > 0.5).astype(np.int64)
    np.testing.assert_array_equal(labels, nn.predict(params, X_test))
    if iterations == 2500:
        assert np.mean(labels == real.test_y) == pytest.approx(0.80, abs=1e-15)
