"""tinygrad_nn: a small, fast, functional reverse-mode autodiff engine on numpy.

``import tinygrad_nn as tg``: the ops and transforms are ``tg.*``; the network of the course is
``tg.nn``, the course's own functions ``tg.course``, its data ``tg.data``; random keys are
``tg.random`` and optimizers ``tg.optim``.
"""

from typing import Any

from tinygrad_nn import course, data, nn
from tinygrad_nn.autodiff import GraphReleasedError
from tinygrad_nn.composites import (
    argmin,
    argsort,
    array_split,
    cumsum,
    diag,
    diagonal,
    dot,
    einsum,
    expand_dims,
    flatten,
    flip,
    hstack,
    inner,
    log2,
    log10,
    log_sigmoid,
    logsumexp,
    moveaxis,
    outer,
    pad,
    reciprocal,
    repeat,
    roll,
    round,
    sort,
    split,
    square,
    squeeze,
    swapaxes,
    take,
    take_along_axis,
    tensordot,
    tile,
    trace,
    tril,
    triu,
    vstack,
)
from tinygrad_nn.functional import grad, hvp, value_and_grad, vjp
from tinygrad_nn.gradcheck import GradCheck, check_grads
from tinygrad_nn.graph import Graph, make_graph
from tinygrad_nn.jacobians import hessian, jacfwd, jacobian, jacrev, jvp, linearize
from tinygrad_nn.jit import jit
from tinygrad_nn.nn import log_softmax, softmax, std, var
from tinygrad_nn.ops import (
    abs,
    add,
    arccos,
    arcsin,
    arctan,
    arctan2,
    argmax,
    astype,
    broadcast_to,
    ceil,
    clip,
    concatenate,
    cos,
    cosh,
    div,
    equal,
    erf,
    exp,
    expm1,
    floor,
    greater,
    greater_equal,
    less,
    less_equal,
    log,
    log1p,
    logaddexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mod,
    mul,
    neg,
    not_equal,
    power,
    prod,
    relu,
    reshape,
    rint,
    sigmoid,
    sign,
    sin,
    sinh,
    softplus,
    sqrt,
    stack,
    sub,
    sum,
    tan,
    tanh,
    transpose,
    where,
)
from tinygrad_nn.pytree import tree_flatten, tree_map, tree_unflatten
from tinygrad_nn.tensor import (
    CheckError,
    Primitive,
    Tensor,
    TracedValueError,
    detect_anomaly,
    enable_grad,
    is_grad_enabled,
    no_grad,
    stop_gradient,
)
from tinygrad_nn.vmap import vmap

# isort: split
# Models beyond one sigmoid: tg.random, tg.optim and a composer's helpers
# (tinygrad_nn.flatten_util as jax.flatten_util).
from tinygrad_nn import optim, random
from tinygrad_nn.flatten_util import ravel_pytree, tree_vdot

__version__ = "0.1.0"

__all__ = [
    "CheckError", "GradCheck", "Graph", "GraphReleasedError", "Primitive", "Tensor",
    "TracedValueError", "abs", "add", "argmax", "astype", "broadcast_to", "check_grads", "clip",
    "concatenate", "course",
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
__all__ += ["optim", "random", "ravel_pytree", "tree_vdot"]
# numpy's ops (issue 19): primitives in ops.py, functions of them in composites.py
__all__ += [
    "arccos", "arcsin", "arctan", "arctan2", "argmin", "argsort", "array_split", "ceil", "cos",
    "cosh", "cumsum", "diag", "diagonal", "dot", "einsum", "erf", "expand_dims", "expm1", "flip",
    "floor",
    "hstack", "inner", "log1p", "log2", "log10", "logaddexp", "min", "mod", "moveaxis", "outer",
    "pad", "prod", "reciprocal", "repeat", "rint", "roll", "round", "sin", "sinh", "sort", "split",
    "square", "squeeze", "take", "take_along_axis", "tan", "tensordot", "tile", "trace", "tril",
    "triu", "vstack"
]
# Issue 19: the transforms beyond grad: forward mode, Jacobians, vmap.
__all__ += ["hessian", "hvp", "jacfwd", "jacobian", "jacrev", "jvp", "linearize", "vmap"]
