"""Graph inspection: listings, hand-counted costs, DOT accepted by Graphviz, unchanged results."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn.graph import GraphvizNotFoundError, layer_of

DIMS = [12288, 20, 7, 5, 1]  # the course's 5-layer network (L = 4 weight layers)
M = 16  # examples: enough for the counts, small for speed

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="Graphviz's `dot` is not installed (.ci/run installs it with apt-get)",
)


def deep_cost(params: dict[str, Any], X: Any, Y: Any) -> tg.Tensor:
    """The course's cost: ReLU hidden layers, a sigmoid output, cross-entropy, as a user
    writes it."""
    A = X
    for layer in (1, 2, 3):
        A = tg.relu(params[f"W{layer}"] @ A + params[f"b{layer}"])
    AL = tg.sigmoid(params["W4"] @ A + params["b4"])
    m = Y.shape[1]
    return -1 / m * tg.sum(Y * tg.log(AL) + (1 - Y) * tg.log(1 - AL))


@pytest.fixture(scope="module")
def problem() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    params = {}
    for layer in range(1, 5):
        scale = np.sqrt(DIMS[layer - 1])
        params[f"W{layer}"] = rng.normal(size=(DIMS[layer], DIMS[layer - 1])) / scale
        params[f"b{layer}"] = rng.normal(size=(DIMS[layer], 1)) * 0.1
    X = rng.random((DIMS[0], M))
    Y = (rng.random((1, M)) > 0.5).astype(np.float64)
    return params, X, Y


def small(params: dict[str, Any], x: Any) -> tg.Tensor:
    z = params["W"] @ x + params["b"]
    a = tg.sigmoid(z) * 2.0
    return tg.sum(a - np.ones((3, 4)), axis=1, keepdims=True).mean()


SMALL_ARGS = ({"W": np.ones((3, 2)), "b": np.zeros((3, 1))}, np.ones((2, 4)))


# --- listings ------------------------------------------------------------------------------
def test_golden_listing_of_a_small_function() -> None:
    graph = tg.make_graph(small)(*SMALL_ARGS)
    assert str(graph) == (
        "{ lambda W:f64[3,2] b:f64[3,1] x1:f64[2,4]. let\n"
        "    a:f64[3,4] = matmul W x1\n"
        "    c:f64[3,4] = add a b\n"  # `b` is an input's name: generated names skip it
        "    d:f64[3,4] = sigmoid c\n"
        "    e:f64[3,4] = mul d 2.0\n"
        "    f:f64[3,4] = sub e f64[3,4]\n"
        "    g:f64[3,1] = sum[axis=(1,) keepdims=True] f\n"
        "    h:f64[] = mean[axis=(0, 1) keepdims=False] g\n"
        "  in (h) }"
    )


def test_golden_listing_of_a_gradient() -> None:
    def f(w: Any, x: Any) -> tg.Tensor:
        return tg.sum(tg.exp(w * x))

    graph = tg.make_graph(tg.grad(f), argnums=0)(np.ones(3), np.ones(3))
    assert str(graph) == (
        "{ lambda x0:f64[3] x1:f64[3]. let\n"
        "    a:f64[3] = mul x0 x1\n"
        "    b:f64[3] = exp a\n"
        "    c:f64[] = sum[axis=(0,) keepdims=False] b\n"
        "    # backward pass\n"
        "    d:f64[3] = mul [1., 1., 1.]:f64[3] b\n"  # ḡ · exp(a), ḡ spread from the sum
        "    e:f64[3] = mul d x1\n"  # ... · x: the gradient of w
        "  in (e) }"
    )


def test_nodes_are_in_topological_order_with_their_fields() -> None:
    graph = tg.make_graph(small)(*SMALL_ARGS)
    for node in graph.nodes:
        assert all(i < node.id for i in node.inputs)
    matmul = graph.ops[0]
    assert (matmul.op, matmul.shape, matmul.dtype) == ("matmul", (3, 4), np.float64)
    assert matmul.primitive is tg.matmul and matmul.params == {}
    assert [graph.nodes[i].name for i in matmul.inputs] == ["W", "x1"]
    assert matmul.flops == 2 * 3 * 2 * 4 and matmul.requires_grad
    assert [graph.nodes[i].name for i in graph.inputs] == ["W", "b", "x1"]


def test_op_parameters_and_dtypes_in_the_listing() -> None:
    x = tg.Tensor(np.arange(24.0, dtype=np.float32).reshape(2, 3, 4), requires_grad=True, name="x")
    y = (x.transpose((1, 0, 2))[:, 0].swapaxes(0, 1).clip(0, 5).max(axis=0) ** 2).sum()
    lines = str(y.graph()).splitlines()
    assert lines[0] == "{ lambda x:f32[2,3,4]. let"
    assert [line.split(" = ")[1] for line in lines[1:-1]] == [
        "transpose[axes=(1, 0, 2)] x",
        "getitem[index=(:, 0)] a",
        "transpose[axes=(1, 0)] b",  # swapaxes is a transpose
        "clip[low=0 high=5] c",
        "max[axis=(0,) keepdims=False] d",
        "pow e 2",
        "sum[axis=(0,) keepdims=False] f",
    ]
    nodes = y.graph().ops
    assert nodes[2].params == {"axes": (1, 0)} and nodes[3].params == {"low": 0, "high": 5}


def test_tensor_graph_names_leaves_and_refuses_a_released_graph() -> None:
    w = tg.Tensor(np.ones((2, 2)), requires_grad=True, name="w")
    loss = tg.sum(tg.relu(w @ np.ones((2, 3))))
    graph = loss.graph()
    assert str(graph).splitlines()[1] == (
        "    a:f64[2,3] = matmul w [[1., 1., 1.], [1., 1., 1.]]:f64[2,3]")
    loss.backward(retain_graph=True)
    assert str(loss.graph()) == str(graph)
    loss.backward()
    with pytest.raises(tg.GraphReleasedError, match="released by backward"):
        loss.graph()


def test_a_leaf_and_a_chain_deeper_than_the_recursion_limit() -> None:
    leaf = tg.Tensor(np.ones(2), requires_grad=True)
    assert str(leaf.graph()) == "{ lambda a:f64[2]. let\n  in (a) }"
    x = leaf
    for _ in range(5000):
        x = x * 1.0
    graph = x.graph()
    assert graph.summary().op_counts == {"mul": 5000}


# --- the 5-layer network: counts by hand -------------------------------------------------------
def forward_flops_by_hand(m: int) -> int:
    n = DIMS
    layers = sum(2 * n[k] * n[k - 1] * m + 2 * n[k] * m for k in range(1, 5))  # W@A, +b, g(Z)
    # log, mul Y, sub 1-Y, sub 1-AL, log, mul (1-Y), add, sum over m; then -1/m times the sum
    return layers + 8 * m + 1


def recorded_backward_flops_by_hand(m: int) -> int:
    n = DIMS
    # the loss: ḡ·Y and ḡ·(1 - Y), 2 log VJPs (ḡ / AL), neg of ḡ through 1 - AL, the add where
    # AL's two cotangents meet, sigmoid's ḡ · σ · (1 - σ) (a sub and two muls)
    loss = 2 * m + 2 * m + m + m + 3 * m
    layer4 = n[4] * m + 2 * (2 * n[4] * n[3] * m)  # db4 = Σ dZ4; dW4 and dA3 matmuls
    # ReLU' as sign(A) times ḡ, db, then dW and dA matmuls
    hidden = sum(2 * n[k] * m + n[k] * m + 2 * (2 * n[k] * n[k - 1] * m) for k in (2, 3))
    layer1 = 2 * n[1] * m + n[1] * m + 2 * n[1] * n[0] * m  # relu', db1, dW1 only: no dX
    return loss + layer4 + hidden + layer1


def kept_bytes_by_hand(m: int) -> int:
    # Every result a recorded node holds until backward: Z = W·A, Z + b and A of each hidden
    # layer; then W4·A3, Z4, AL, log AL, Y·log AL, 1 - Y, 1 - AL, its log, their product, the
    # sum of both terms, and the total (one number). Parameters and X are alive anyway.
    return 8 * (3 * (DIMS[1] + DIMS[2] + DIMS[3]) * m + 10 * m + 1)


def test_five_layer_forward_counts_match_a_hand_count(problem: Any) -> None:
    graph = tg.make_graph(deep_cost, argnums=0)(*problem)
    summary = graph.summary()
    # 1 - Y needs no gradient (Y is data), but it is part of the program: a new Y changes it
    assert summary.op_counts == {
        "matmul": 4, "add": 5, "relu": 3, "sigmoid": 1, "log": 2, "mul": 3, "sub": 2, "sum": 1,
    }
    assert len(graph.ops) == 21 and len(graph.inputs) == 10
    assert summary.forward_flops == forward_flops_by_hand(M)
    matmuls = [node.flops for node in graph.ops if node.op == "matmul"]
    assert matmuls == [2 * DIMS[k] * DIMS[k - 1] * M for k in range(1, 5)]
    assert summary.backward_op_counts == {} and summary.backward_flops is None
    assert summary.saved_bytes == kept_bytes_by_hand(M)
    assert summary.differentiated == ("W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4")
    assert not graph.nodes[graph.inputs[8]].requires_grad  # X: x1
    assert [node.label for node in graph.ops if not node.requires_grad] == ["sub"]  # 1 - Y


def test_five_layer_gradient_graph_matches_a_hand_count(problem: Any) -> None:
    graph = tg.make_graph(tg.grad(deep_cost), argnums=0)(*problem)
    summary = graph.summary()
    assert summary.op_counts == {  # grad's own copies of the parameters are not listed
        "matmul": 4, "add": 5, "relu": 3, "sigmoid": 1, "log": 2, "mul": 3, "sub": 2, "sum": 1,
    }
    assert summary.backward_op_counts == {
        "div": 2, "neg": 1, "add": 1, "mul": 7, "sub": 1, "sign": 3,
        "transpose": 7, "matmul": 7, "sum": 4,
    }
    assert summary.forward_flops == forward_flops_by_hand(M)
    assert summary.backward_flops == recorded_backward_flops_by_hand(M)
    assert summary.saved_bytes == kept_bytes_by_hand(M)
    # seven backward matmuls, none of shape X: no FLOP is spent on the gradient of X
    backward_matmuls = [node for node in graph.ops if node.backward and node.op == "matmul"]
    assert len(backward_matmuls) == 2 * 4 - 1
    assert all(node.shape != (DIMS[0], M) for node in graph.ops)
    assert graph.output_names == ["W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4"]
    assert [graph.nodes[i].shape for i in graph.outputs] == [
        problem[0][name].shape for name in graph.output_names
    ]


def test_differentiating_every_input_still_spends_nothing_on_x(problem: Any) -> None:
    """grad(f) differentiates params only, even when make_graph marks X and Y as needing one."""
    graph = tg.make_graph(tg.grad(deep_cost))(*problem)
    assert graph.summary().backward_flops == recorded_backward_flops_by_hand(M)
    assert all(node.shape != (DIMS[0], M) for node in graph.ops if node.backward)
    assert "transpose[axes=(1, 0)] x1" in str(graph)  # X enters dW1 = dZ1 Xᵀ, and only there


def test_summary_text(problem: Any) -> None:
    text = str(tg.make_graph(tg.grad(deep_cost), argnums=0)(*problem).summary())
    assert "matmul           4         7" in text
    assert "FLOPs: forward " in text and "no FLOP count" not in text
    assert text.endswith("inputs needing a gradient: W1 b1 W2 b2 W3 b3 W4 b4")
    forward_only = str(tg.make_graph(deep_cost, argnums=0)(*problem).summary())
    assert "backward not recorded (trace grad(f) to count it)" in forward_only


# --- tracing does not change what f computes ---------------------------------------------------
def test_tracing_never_changes_the_result(problem: Any) -> None:
    plain = deep_cost(*problem).data
    traced = tg.make_graph(deep_cost)(*problem).value
    assert traced.dtype == plain.dtype and traced.tobytes() == plain.tobytes()

    grads = tg.grad(deep_cost)(*problem)
    traced_grads = tg.make_graph(tg.grad(deep_cost))(*problem).value
    assert list(traced_grads) == list(grads)
    for name in grads:
        assert traced_grads[name].dtype == grads[name].dtype
        assert traced_grads[name].tobytes() == grads[name].tobytes(), name

    value, grads = tg.value_and_grad(deep_cost)(*problem)
    traced_value, traced_grads = tg.make_graph(tg.value_and_grad(deep_cost))(*problem).value
    assert traced_value.tobytes() == value.tobytes()
    assert all(traced_grads[name].tobytes() == grads[name].tobytes() for name in grads)


def test_float32_stays_float32_and_python_numbers_stay_weak() -> None:
    def f(x: Any, scale: float, count: int) -> tg.Tensor:
        return tg.sum(x * scale) * count

    x = np.ones(3, dtype=np.float32)
    graph = tg.make_graph(f, argnums=0)(x, 0.5, 2)
    assert graph.value.dtype == np.float32 and graph.value == np.float32(3.0)
    assert "mul x0 0.5" in str(graph)


# --- DOT and Graphviz ----------------------------------------------------------------------------
def dot_svg(text: str) -> str:
    completed = subprocess.run(
        ["dot", "-Tsvg"], input=text, capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    return completed.stdout


def test_dot_text_marks_parameters_and_shapes() -> None:
    text = tg.make_graph(small, argnums=0)(*SMALL_ARGS).to_dot()
    assert text.startswith("digraph ")
    assert 'n0 [label="W\\nf64[3,2]" fillcolor="#ffd966" shape=ellipse style=filled]' in text
    assert 'n2 [label="x1\\nf64[2,4]" shape=ellipse]' in text  # data: not highlighted
    assert '[label="a:f64[3,4]"]' in text  # a tensor and its shape on its edge
    assert 'label="sum[axis=(1,) keepdims=True]"' in text


@needs_dot
def test_dot_accepts_the_text_and_the_svg_has_every_op(problem: Any) -> None:
    for f in (deep_cost, tg.grad(deep_cost)):
        graph = tg.make_graph(f, argnums=0)(*problem)
        svg = dot_svg(graph.to_dot())
        for node in graph.ops:
            assert f">{node.label}<" in svg, node.label
        for collapse in (True, layer_of):
            dot_svg(graph.to_dot(collapse=collapse))


@needs_dot
def test_render_svg_and_png(tmp_path: Path) -> None:
    graph = tg.make_graph(tg.grad(small))(*SMALL_ARGS)
    svg = graph.render(tmp_path / "model.svg")
    assert svg.read_text().lstrip().startswith("<?xml")
    png = graph.render(tmp_path / "model.png", collapse=lambda name: "1" if name in "Wb" else None)
    assert png.read_bytes().startswith(b"\x89PNG")


def test_render_without_graphviz_writes_dot_and_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    graph = tg.make_graph(small)(*SMALL_ARGS)
    with pytest.raises(GraphvizNotFoundError, match="apt-get install graphviz"):
        graph.render(tmp_path / "model.svg")
    assert (tmp_path / "model.dot").read_text() == graph.to_dot()
    assert not (tmp_path / "model.svg").exists()
    assert graph.render(tmp_path / "plain.dot").read_text() == graph.to_dot()


def test_collapse_draws_one_box_per_layer(problem: Any) -> None:
    forward = tg.make_graph(deep_cost, argnums=0)(*problem).to_dot(collapse=True)
    for layer in (1, 2, 3):
        assert f'label="layer {layer}\\nmatmul, add, relu\\n' in forward
    assert 'label="layer 4\\nmatmul, add, sigmoid\\n' in forward
    assert "label=log " in forward  # the loss is no layer: drawn op by op
    backward = tg.make_graph(tg.grad(deep_cost), argnums=0)(*problem).to_dot(collapse=True)
    # dA1 = W2ᵀ dZ2 feeds only layer 1's gradients; dW1 = dZ1 Xᵀ, db1, and ReLU' = sign(A1)
    for layer in (1, 2):
        ops = "transpose x2, matmul x2, sign, mul, sum"
        assert f'label="layer {layer} backward\\n{ops}\\n' in backward
    assert 'label="layer 4 backward\\n' in backward  # with the loss's VJPs
    assert backward.count("shape=box") < 20  # 8 layer boxes and the loss's 8 forward ops


def test_layer_names() -> None:
    assert [layer_of(name) for name in ("W1", "b12", "x0", "x1", "W", "layers[0].W")] == [
        "1", "12", None, None, None, "layers[0]",
    ]


def test_collapse_says_when_no_input_names_a_layer() -> None:
    graph = tg.make_graph(lambda w, x: tg.relu(w @ x).sum())(np.ones((2, 3)), np.ones((3, 4)))
    with pytest.warns(UserWarning, match="no input's name gives a layer"):
        graph.to_dot(collapse=True)
    assert "layer x0" in graph.to_dot(collapse=lambda name: name if name == "x0" else None)
