"""tinygrad_nn: a small, fast, functional reverse-mode autodiff engine on numpy.

``import tinygrad_nn as tg``: the ops and transforms are ``tg.*``; the network of the course is
``tg.nn``, the course's own functions ``tg.course``, its data ``tg.data``; random keys are
``tg.random`` and optimizers ``tg.optim``.
"""

from typing import Any

from tinygrad_nn import course, data, nn
from tinygrad_nn.autodiff import GraphReleasedError
from tinygrad_nn.functional import grad, value_and_grad, vjp
from tinygrad_nn.gradcheck import GradCheck, check_grads
from tinygrad_nn.graph import Graph, make_graph
from tinygrad_nn.jit import jit
from tinygrad_nn.nn import log_softmax, softmax, std, var
from tinygrad_nn.ops import (
    abs,
    add,
    argmax,
    astype,
    broadcast_to,
    clip,
    concatenate,
    div,
    equal,
    exp,
    flatten,
    greater,
    greater_equal,
    less,
    less_equal,
    log,
    log_sigmoid,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    minimum,
    mul,
    neg,
    not_equal,
    power,
    relu,
    reshape,
    sigmoid,
    sign,
    softplus,
    sqrt,
    stack,
    stop_gradient,
    sub,
    sum,
    swapaxes,
    tanh,
    transpose,
    where,
)
from tinygrad_nn.pytree import tree_flatten, tree_map, tree_unflatten
from tinygrad_nn.tensor import (
    Primitive,
    Tensor,
    TracedValueError,
    detect_anomaly,
    enable_grad,
    is_grad_enabled,
    no_grad,
)

# isort: split
# Models beyond one sigmoid (issue 11): tg.random, tg.optim and a composer's helpers
# (tinygrad_nn.flatten_util as jax.flatten_util; hvp in optim).
from tinygrad_nn import optim, random
from tinygrad_nn.flatten_util import ravel_pytree, tree_vdot
from tinygrad_nn.optim import hvp

__version__ = "0.1.0"

__all__ = [
    "GradCheck", "Graph", "GraphReleasedError", "Primitive", "Tensor", "TracedValueError", "abs",
    "add", "argmax", "astype", "broadcast_to", "check_grads", "clip", "concatenate", "course",
    "data", "detect_anomaly", "div", "enable_grad", "equal", "exp", "flatten", "grad", "greater",
    "greater_equal", "is_grad_enabled", "jit", "less", "less_equal", "log", "log_sigmoid",
    "log_softmax", "logsumexp", "make_graph", "matmul", "max", "maximum", "mean", "minimum",
    "mul", "neg", "nn", "no_grad", "not_equal", "power", "relu", "reshape", "sigmoid", "sign",
    "softmax", "softplus", "sqrt", "stack", "std", "stop_gradient", "sub", "sum", "swapaxes",
    "tanh", "transpose", "tree_flatten", "tree_map", "tree_unflatten", "value_and_grad", "var",
    "vjp", "where",
]


# tg.export_onnx is tinygrad_nn.export's, imported on first use: onnx stays an optional install
def __getattr__(name: str) -> Any:
    if name == "export_onnx":
        from tinygrad_nn.export import export_onnx
        return export_onnx
    raise AttributeError(f"module 'tinygrad_nn' has no attribute {name!r}")


__all__ += ["export_onnx"]
__all__ += ["hvp", "optim", "random", "ravel_pytree", "tree_vdot"]
