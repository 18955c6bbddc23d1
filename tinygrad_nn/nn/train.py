"""``train``: the training loop, with its progress bar, its clean Ctrl-C and its update step."""

from __future__ import annotations

import functools
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_nn import optim, random
from tinygrad_nn.functional import value_and_grad
from tinygrad_nn.jit import jit as tg_jit
from tinygrad_nn.nn.batches import mini_batches
from tinygrad_nn.nn.functions import activation
from tinygrad_nn.nn.losses import label_form, one_hot
from tinygrad_nn.nn.model import check_shapes, model_cost
from tinygrad_nn.nn.params import Params
from tinygrad_nn.tensor import ArrayLike, value

__all__ = ["Callback", "sgd_update", "train"]

Callback = Callable[[int, float, dict[str, np.ndarray]], bool | None]

# Runs at least this long get a progress bar when stderr is a terminal and tqdm is installed.
_PROGRESS_MIN_ITERATIONS = 500


class _Progress:
    """A tqdm bar when wanted and installed; lines printed through it keep the bar intact."""

    def __init__(self, total: int, enabled: bool | None):
        if enabled is None:
            enabled = total >= _PROGRESS_MIN_ITERATIONS and sys.stderr.isatty()
        self._bar: Any = None
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                return
            self._bar = tqdm(total=total, unit="it", desc="train", leave=False)

    def update(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def write(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=sys.stdout)
        else:
            print(line)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def sgd_update(
    params: Params, grads: Params, learning_rate: float, *, donate_grads: bool = False
) -> dict[str, np.ndarray]:
    """One gradient-descent step: ``{k: params[k] - learning_rate * grads[k]}`` as new arrays.

    It is ``optim.sgd(learning_rate)``'s update, the one SGD of the library (``train``'s
    default): ``grads`` has the keys and shapes of ``params`` (as ``value_and_grad`` returns
    them), each result is computed as ``(-learning_rate · g) + p``, which rounds exactly as
    ``p - learning_rate · g``, and keeps the old parameter's dtype (float32 stays float32 under a
    float64 rate or gradient). Neither ``params`` nor ``grads`` is modified. ``donate_grads`` is
    accepted for older callers and changes nothing: the results are always new arrays (on a
    large array numpy adds p into the product's own memory: one new array, not two). Memory is
    reused by ``tg.jit`` instead: a jitted step plans its buffers, and ``donate_argnums`` lets
    the new parameters take the old ones' arrays.
    """
    rate = optim.number("sgd_update", "learning_rate", learning_rate)
    return _sgd(rate).update(grads, (), params)[0]


_sgd = functools.lru_cache(maxsize=16)(optim.sgd)  # made once per learning rate, not per step


class _CtrlC:
    """Ctrl-C (SIGINT) during training: the step that runs finishes, then training stops. A
    second Ctrl-C interrupts at once (KeyboardInterrupt, which ``train`` also catches). Set up
    only in the main thread and over Python's own handler; elsewhere only the second way is."""

    def __init__(self) -> None:
        self.pressed = False
        self.previous: Any = None  # the handler to restore, once ours is set

    def __enter__(self) -> _CtrlC:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self.previous = signal.signal(signal.SIGINT, self._press)
        return self

    def _press(self, signum: int, frame: Any) -> None:
        self.pressed = True
        signal.signal(signal.SIGINT, self.previous)  # the next Ctrl-C raises at once

    def __exit__(self, *exc_info: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def train(
    params: Params,
    X: ArrayLike,
    Y: ArrayLike,
    learning_rate: float | None = None,
    num_iterations: int = 2500,
    *,
    optimizer: optim.Optimizer | None = None,
    batch_size: int | None = None,
    key: Any = None,
    hidden_activation: str = "relu",
    print_cost: bool = False,
    record_every: int = 100,
    progress: bool | None = None,
    callback: Callback | None = None,
    jit: bool = True,
) -> tuple[dict[str, np.ndarray], list[float]]:
    """Gradient descent on the logits cost (``model_cost``); returns (new params, costs).

    By default each iteration is one full-batch step ``nn.sgd_update`` at ``learning_rate``
    (0.0075, the course's). ``optimizer`` (an ``optim`` pair such as ``optim.adam(1e-3)``, which
    carries its own learning rate) takes the step instead. With ``batch_size`` and a ``key``
    (``tg.random.key(seed)``) each iteration is an epoch: one pass over the m examples in a new
    random order, in ``mini_batches`` of that size (a step each), the key split once per epoch.

    ``costs[k]`` is the cost at iteration ``k · record_every``, computed in the same forward pass
    as that iteration's gradient (before its update), as the course records it; an epoch's cost
    is the mean over its m examples. With ``print_cost`` each recorded cost (and the last one)
    is printed as the course does: ``Cost after iteration i: c`` (``epoch`` with mini-batches).
    ``progress`` shows a tqdm bar over the iterations (None: on long runs when stderr is a
    terminal). ``callback(i, cost, params)`` runs after each iteration; returning True stops.

    Ctrl-C stops cleanly: the step that runs finishes, training says at which iteration and
    cost it stopped, and the parameters and costs reached so far are returned (a second
    Ctrl-C, or a KeyboardInterrupt from ``callback``, stops at once with the last finished
    step's). Labels: see the module's doc; class indices become one-hot columns once. The
    parameters' dtype is the computation's: X and Y are converted to it once (float32 or
    float64 end to end). ``params`` is not modified.

    The step (cost, gradients, update) runs under ``tg.jit`` (``jit=False``: eager, op by op;
    the numbers are the same): traced on the first iteration, replayed after. Without a
    ``callback`` to keep iterates, the parameters of one step take the next step's results in
    place (donated), so a step allocates nothing the size of ``W1``.
    """
    dims = check_shapes(params, X, Y)
    if optimizer is not None and learning_rate is not None:
        raise ValueError("train: the optimizer carries its own learning rate (e.g. "
                         "optim.adam(learning_rate)); pass learning_rate only without one")
    rate = 0.0075 if learning_rate is None else learning_rate
    if rate <= 0 or num_iterations < 0 or record_every < 1:
        raise ValueError(
            f"train: need learning_rate > 0, num_iterations >= 0 and record_every >= 1; got "
            f"{rate}, {num_iterations} and {record_every}"
        )
    if (batch_size is None) != (key is None):
        raise ValueError("train: mini-batches need both batch_size and a key to shuffle them "
                         "(key=tg.random.key(seed)); pass neither for full-batch steps")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(
            batch_size, (int, np.integer)) or batch_size < 1):
        raise ValueError(f"train: batch_size must be a positive integer, got {batch_size!r}")
    activation(hidden_activation)
    dtype = np.asarray(value(params["W1"])).dtype
    X = np.asarray(value(X), dtype=dtype)
    if label_form(Y, dims[-1], X.shape[1], "train") == "indices":
        Y = one_hot(np.asarray(value(Y)), dims[-1], dtype)
    Y = np.asarray(value(Y), dtype=dtype)
    donate = jit and callback is None  # then nobody else sees an iterate: ours to overwrite
    params = {name: np.array(value(array), copy=donate) for name, array in params.items()}
    cost_and_grads = value_and_grad(model_cost)
    optimizer = optim.sgd(rate) if optimizer is None else optimizer
    state = optimizer.init(params)
    unit = "iteration" if batch_size is None else "epoch"

    def step(params: dict[str, np.ndarray], state: Any, X: np.ndarray,
             Y: np.ndarray) -> tuple[Any, dict[str, np.ndarray], Any]:
        cost_value, grads = cost_and_grads(params, X, Y, hidden_activation)
        params, state = optimizer.update(grads, state, params)
        return cost_value, params, state

    run_step = tg_jit(step, donate_argnums=(0, 1) if donate else ()) if jit else step

    costs: list[float] = []
    finished: tuple[int, int, int, float] | None = None  # iteration, batch, batches, cost
    bar, ctrl_c = _Progress(num_iterations, progress), _CtrlC()
    try:
        with ctrl_c:
            for i in range(num_iterations):
                if batch_size is None:
                    cost_value, params, state = run_step(params, state, X, Y)
                    cost = float(cost_value)
                else:
                    key, epoch_key = random.split(key)
                    batches, total = mini_batches(epoch_key, X, Y, batch_size), 0.0
                    for number, (X_batch, Y_batch) in enumerate(batches, start=1):
                        batch_cost, params, state = run_step(params, state, X_batch, Y_batch)
                        total += float(batch_cost) * X_batch.shape[1]
                        finished = (i, number, len(batches), float(batch_cost))
                        if ctrl_c.pressed and number < len(batches):
                            break
                    if ctrl_c.pressed and finished is not None and finished[1] < finished[2]:
                        break
                    cost_value = cost = total / X.shape[1]
                finished = (i, 0, 0, cost)
                if i % record_every == 0:
                    costs.append(cost)
                if print_cost and (i % record_every == 0 or i == num_iterations - 1):
                    bar.write(f"Cost after {unit} {i}: {np.squeeze(cost_value)}")
                bar.update()
                if callback is not None and callback(i, cost, params):
                    break
                if ctrl_c.pressed:
                    break
    except KeyboardInterrupt:
        ctrl_c.pressed = True
    finally:
        bar.close()
    if ctrl_c.pressed:
        print(f"Interrupted (Ctrl-C): training stopped {_where(finished, unit)}; returning the "
              "parameters reached and the costs recorded so far")
    return params, costs


def _where(finished: tuple[int, int, int, float] | None, unit: str) -> str:
    """Where an interrupted training stopped, for its message."""
    if finished is None:
        return "before its first step finished (the parameters are the initial ones)"
    i, number, batches, cost = finished
    if number:
        return f"in {unit} {i} after mini-batch {number} of {batches} (its cost {cost:.6g})"
    return f"after {unit} {i} (cost {cost:.6g})"
