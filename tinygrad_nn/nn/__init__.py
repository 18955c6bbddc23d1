"""The deep network of deeplearning.ai's course 1 week 4, as pure functions of a parameter dict.

``params`` is a plain dict ``{"W1", "b1", …, "WL", "bL"}`` of numpy arrays: ``Wl`` is
(n_l, n_{l-1}) and ``bl`` is (n_l, 1); ``X`` is (n_x, m) with one example per column.
``layer_dims = [12288, 20, 7, 5, 1]`` has L = 4 layers of weights (the input is layer 0 and
holds none). Nothing here keeps state or mutates its inputs: ``train`` returns new parameters,
gradients come from ``value_and_grad``.

Labels: a last layer of one unit is a sigmoid over two classes, and ``Y`` is (1, m) with 1 = cat,
0 = non-cat. A last layer of K > 1 units is a softmax over K classes along axis 0 (the class
axis: examples are columns everywhere), and ``Y`` is either class indices of shape (m,)
(integers in [0, K)) or one-hot columns (K, m) (``one_hot(labels, K)``). Any other label array
is an error that says which form was expected.

One job a module, every name re-exported here:
``functions`` (softmax, log_softmax, var, std, the activations as jax.nn's, dropout),
``params`` (init, layer sizes, files), ``losses`` (labels, costs, the L2 term), ``model``
(linear, logits, forward, predict, accuracy), ``batches`` (mini-batches) and ``train`` (the
loop).
"""

from tinygrad_nn.data import DataError
from tinygrad_nn.nn.batches import mini_batches
from tinygrad_nn.nn.functions import (
    ACTIVATIONS,
    dropout,
    elu,
    gelu,
    hard_tanh,
    leaky_relu,
    log_softmax,
    mish,
    relu6,
    selu,
    silu,
    softmax,
    std,
    swish,
    var,
)
from tinygrad_nn.nn.losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    l2_penalty,
    one_hot,
    softmax_cross_entropy,
)
from tinygrad_nn.nn.model import (
    accuracy,
    check_shapes,
    forward,
    linear,
    logits,
    model_cost,
    predict,
)
from tinygrad_nn.nn.params import (
    INIT_SCHEMES,
    Params,
    Scheme,
    init_params,
    layer_dims,
    legacy_stream,
    load_params,
    save_params,
)
from tinygrad_nn.nn.train import (
    Callback,
    RecordedCosts,
    TrainingDivergedError,
    sgd_update,
    train,
)

__all__ = [
    "ACTIVATIONS",
    "INIT_SCHEMES",
    "Callback",
    "DataError",
    "Params",
    "RecordedCosts",
    "Scheme",
    "TrainingDivergedError",
    "accuracy",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "check_shapes",
    "dropout",
    "elu",
    "forward",
    "gelu",
    "hard_tanh",
    "init_params",
    "l2_penalty",
    "layer_dims",
    "leaky_relu",
    "legacy_stream",
    "linear",
    "load_params",
    "log_softmax",
    "logits",
    "mini_batches",
    "mish",
    "model_cost",
    "one_hot",
    "predict",
    "relu6",
    "save_params",
    "selu",
    "sgd_update",
    "silu",
    "softmax",
    "softmax_cross_entropy",
    "std",
    "swish",
    "train",
    "var",
]
