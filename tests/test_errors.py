"""Errors: each names the op (or the call) and says what was wrong, with the shapes involved."""

import re
from typing import Any

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Tensor


def raises(kind: type[Exception], *fragments: str) -> Any:
    """pytest.raises whose message must hold every fragment, in any order."""
    pattern = "".join(f"(?=[\\s\\S]*{re.escape(fragment)})" for fragment in fragments)
    return pytest.raises(kind, match=pattern)


# --- shapes ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("op", "fn"),
    [
        ("add", lambda x, y: x + y),
        ("sub", lambda x, y: x - y),
        ("mul", lambda x, y: x * y),
        ("div", lambda x, y: x / y),
        ("pow", lambda x, y: x**y),
        ("maximum", tg.maximum),
        ("minimum", tg.minimum),
        ("add", lambda x, y: y.data + x),  # reflected: a numpy array on the left
    ],
)
def test_shapes_that_do_not_broadcast(op: str, fn: Any) -> None:
    x = Tensor(np.ones((3, 4)), requires_grad=True)
    y = Tensor(np.ones((2, 4)))
    with raises(ValueError, f"{op}:", "(3, 4)", "(2, 4)", "broadcast"):
        fn(x, y)


def test_where_shapes_that_do_not_broadcast() -> None:
    with raises(ValueError, "where", "(3,)", "(2,)", "broadcast"):
        tg.where(np.ones(3, bool), Tensor(np.ones(2), requires_grad=True), 0.0)


@pytest.mark.parametrize(
    ("x_shape", "y_shape"), [((3, 4), (5, 2)), ((4,), (3,)), ((2, 3, 4), (2, 5, 6)), ((), (3,))]
)
def test_matmul_shapes_that_do_not_multiply(x_shape: tuple[int, ...], y_shape: Any) -> None:
    x = Tensor(np.ones(x_shape), requires_grad=True)
    with raises(ValueError, "matmul", str(x_shape), str(y_shape)):
        x @ np.ones(y_shape)


@pytest.mark.parametrize(
    ("op", "fragments", "call"),
    [
        ("reshape", ["(3, 4)", "(5, 1)"], lambda x: x.reshape(5, 1)),
        ("sum", ["axis 2", "(3, 4)"], lambda x: x.sum(axis=2)),
        ("max", ["axis 5", "(3, 4)"], lambda x: x.max(axis=5)),
        ("getitem", ["(3, 4)"], lambda x: x[7]),
        ("concatenate", ["(3, 4)", "(2, 3)"], lambda x: tg.concatenate([x, np.ones((2, 3))])),
        ("stack", ["(3, 4)", "(4, 3)"], lambda x: tg.stack([x, x.T])),
        ("transpose", ["(0, 0)", "(3, 4)"], lambda x: x.transpose(0, 0)),
        ("broadcast_to", ["(3, 4)", "(4, 3)"], lambda x: x.broadcast_to((4, 3))),
    ],
)
def test_other_shape_errors_name_the_op(op: str, fragments: list[str], call: Any) -> None:
    x = Tensor(np.ones((3, 4)), requires_grad=True)
    with pytest.raises((ValueError, IndexError), match=re.escape(op)) as info:
        call(x)
    for fragment in fragments:
        assert fragment in str(info.value)


# --- backward and its seed ------------------------------------------------------------------
def test_backward_of_a_non_scalar_needs_a_seed() -> None:
    y = Tensor(np.ones(3), requires_grad=True) * 2.0
    with raises(TypeError, "backward", "(3,)", "seed"):
        y.backward()


def test_a_seed_of_the_wrong_shape() -> None:
    y = Tensor(np.ones((2, 3)), requires_grad=True) * 2.0
    with raises(ValueError, "backward", "(3, 2)", "(2, 3)"):
        y.backward(np.ones((3, 2)))
    _, vjp_fn = tg.vjp(lambda x: x * 2.0, np.ones(3))
    with raises(ValueError, "vjp_fn", "(4,)", "(3,)"):
        vjp_fn(np.ones(4))


def test_backward_of_a_tensor_that_needs_no_grad() -> None:
    with raises(RuntimeError, "backward", "does not require grad"):
        (Tensor(np.ones(3)) * 2.0).sum().backward()


def test_a_second_backward_through_a_released_graph() -> None:
    x = Tensor(np.ones(3), requires_grad=True)
    loss = tg.exp(x).sum()
    loss.backward()
    with raises(tg.GraphReleasedError, "backward", "'sum'", "released", "retain_graph"):
        loss.backward()
    assert issubclass(tg.GraphReleasedError, RuntimeError)
    # Through a shared part released by another loss's backward.
    hidden = tg.tanh(x)
    hidden.sum().backward()
    with raises(tg.GraphReleasedError, "'tanh'", "retain_graph"):
        (hidden * 2.0).sum().backward()


# --- what a transformed function returns or is given ----------------------------------------
def test_grad_of_a_non_scalar_names_the_shape() -> None:
    with raises(TypeError, "grad", "scalar", "(3,)"):
        tg.grad(lambda x: x * 2.0)(np.ones(3))


@pytest.mark.parametrize(
    ("returned", "type_name"), [("a string", "str"), ({"a": 1.0}, "dict"), (None, "NoneType")]
)
def test_grad_of_a_non_number_names_what_was_returned(returned: Any, type_name: str) -> None:
    with raises(TypeError, "grad", "Tensor or a number", type_name):
        tg.grad(lambda x: returned)(np.ones(3))


def test_has_aux_needs_a_pair() -> None:
    with raises(TypeError, "has_aux", "(output, aux)", "Tensor"):
        tg.grad(lambda x: x.sum(), has_aux=True)(np.ones(3))


def test_argnums_out_of_range() -> None:
    with raises(ValueError, "argnums", "argument 2", "2 positional"):
        tg.grad(lambda a, b: a * b, argnums=2)(1.0, 2.0)


@pytest.mark.parametrize(
    ("args", "path", "kind"),
    [
        (({"W": "abc"},), "'W'", "str"),
        (({"b": [np.ones(2), object()]},), "'b[1]'", "object"),
        (({"layer": {"W": np.ones(2)}, "X": np.array(["x"])},), "'X'", "ndarray"),
        ((np.ones(2), "text"), "'x1'", "str"),
    ],
)
def test_a_non_numeric_pytree_leaf_is_named_by_its_path(args: Any, path: str, kind: str) -> None:
    with raises(TypeError, "grad", "input leaf", path, kind):
        tg.grad(lambda *a: 1.0, argnums=tuple(range(len(args))))(*args)


def test_a_tensor_of_non_numeric_data() -> None:
    with raises(TypeError, "Tensor", "numeric", "<U"):
        Tensor(np.array(["a", "b"]))


def test_requires_grad_can_change_only_on_a_leaf() -> None:
    y = Tensor(np.ones(2), requires_grad=True) * 2.0
    with raises(ValueError, "requires_grad_", "leaf"):
        y.requires_grad_(False)


# --- anomaly detection ----------------------------------------------------------------------
def test_detect_anomaly_names_the_first_op_that_makes_nan_or_inf() -> None:
    x = Tensor(np.array([-1.0, 2.0]), requires_grad=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        with raises(FloatingPointError, "'log'", "NaN"), tg.detect_anomaly():
            tg.log(x).sum()  # the sum would be NaN too: the log comes first
        with raises(FloatingPointError, "'div'", "inf"), tg.detect_anomaly():
            (x / 0.0).exp()
        # Outside the block: no error, the NaN flows on.
        assert np.isnan(tg.log(x).sum().item())


def test_detect_anomaly_checks_the_backward_pass_and_restores_the_mode() -> None:
    x = Tensor(np.array([0.0, 4.0]), requires_grad=True)
    loss = tg.sqrt(x).sum()  # finite forward; d sqrt(0) = inf
    with np.errstate(divide="ignore"):
        with raises(FloatingPointError, "backward", "'sqrt'"), tg.detect_anomaly():
            loss.backward(retain_graph=True)
        loss.backward()  # the mode is off again after the exception
    assert np.isinf(x.grad[0])


# --- gradient checking ----------------------------------------------------------------------
def test_check_grads_finds_a_wrong_gradient_and_names_its_leaf() -> None:
    def wrong_square(x: Tensor) -> Tensor:
        # x², with the rule of x³: d = 3x² instead of 2x.
        return tg.Primitive("wrong_square", np.square, (lambda g, out, x: g * 3 * x**2,))(x)

    def f(params: dict[str, Any]) -> Tensor:
        return wrong_square(params["w"]).sum() + (params["v"] ** 2).sum()

    params = {"w": np.array([1.0, 2.0, 3.0]), "v": np.array([1.0, 2.0])}
    result = tg.check_grads(f, (params,), eps=1e-6)
    assert result.worst_leaf == "w" and result.max_error > 0.1
    assert result.errors["v"] < 1e-8 and set(result.errors) == {"w", "v"}
