"""``train``: the training loop for any cost — the optimizer's steps, mini-batches and keys,
``jit``, a progress bar, the recorded costs, callbacks, a clean Ctrl-C and a clear stop when the
cost diverges — and ``sgd_update``, one plain gradient step."""

from __future__ import annotations

import functools
import math
import signal
import sys
import threading
from collections.abc import Callable, Iterator
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
from tinygrad_nn.pytree import tree_map
from tinygrad_nn.tensor import ArrayLike, Tensor, integer, value

__all__ = ["Callback", "RecordedCosts", "TrainingDivergedError", "sgd_update", "train"]

Callback = Callable[[int, float, Any], bool | None]  # (iteration, its cost, the new params)


class RecordedCosts(list):
    """The costs ``train`` recorded, a list of floats (index it, plot it), and ``iterations``:
    ``self[k]`` is the cost at iteration ``self.iterations[k]`` (an epoch with mini-batches,
    ``unit`` says which). The last iteration is recorded only when it falls on ``record_every``:
    after 2500 iterations the last cost is that of 2400, though 2499 is printed."""

    def __init__(self, costs: Any = (), iterations: Any = (), unit: str = "iteration"):
        super().__init__(costs)
        self.iterations: list[int] = list(iterations)
        self.unit = unit

    def record(self, iteration: int, cost: float) -> None:
        self.append(cost)
        self.iterations.append(iteration)


class TrainingDivergedError(FloatingPointError):
    """``train`` stopped: the cost became NaN or inf. ``params`` are the parameters of the last
    step whose cost was finite (the initial ones if the first was not), ``costs`` the costs
    recorded before, ``iteration`` where it happened."""

    def __init__(self, message: str, params: Any, costs: RecordedCosts, iteration: int):
        super().__init__(message)
        self.params, self.costs, self.iteration = params, costs, iteration

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
    """One gradient-descent step: ``{k: params[k] - learning_rate * grads[k]}``.

    It is ``optim.sgd(learning_rate)``'s update, the one SGD of the library (``train``'s
    default): ``grads`` has the keys and shapes of ``params`` (as ``value_and_grad`` returns
    them), each result is computed as ``(-learning_rate · g) + p``, which rounds exactly as
    ``p - learning_rate · g``, and keeps the old parameter's dtype (float32 stays float32 under a
    float64 rate or gradient). ``params`` is never modified. With ``donate_grads=True`` the
    results are written into the gradient arrays (buffer donation, as in JAX): no new memory,
    and ``grads`` must not be used afterwards. Where the gradients cannot all take it (a Tensor,
    another dtype, a read-only array, two gradients or a gradient and a parameter sharing
    memory) the results are new arrays, as without donation.
    """
    rate = optim.number("sgd_update", "learning_rate", learning_rate)
    if donate_grads and type(rate) is float:
        donated = _into_grads(params, grads, rate)
        if donated is not None:
            return donated
    sgd = optim.sgd(rate) if type(rate) is Tensor else _sgd(rate)  # a traced rate: not cached
    return sgd.update(grads, (), params)[0]


def _into_grads(params: Params, grads: Params, rate: float) -> dict[str, np.ndarray] | None:
    """``optim.sgd``'s (−rate·g) + p, the same two roundings, written into each gradient; None
    unless every gradient can take it. On the cat net this saves a ``W1``-sized array a step."""
    if type(params) is not dict or type(grads) is not dict or params.keys() != grads.keys():
        return None  # the optimizer names what does not match
    grad_owners = set()
    for key, param in params.items():
        grad = grads[key]
        if (type(grad) is not np.ndarray or type(param) is not np.ndarray
                or grad.dtype != param.dtype or grad.shape != param.shape
                or grad.dtype.kind != "f" or not grad.flags.writeable):
            return None
        grad_owners.add(id(grad if grad.base is None else grad.base))
    if len(grad_owners) < len(params) or any(
            id(param if param.base is None else param.base) in grad_owners
            for param in params.values()):
        return None  # a write would change another gradient or a parameter
    updated, scale = {}, None
    for key, param in params.items():
        if scale is None or scale.dtype != param.dtype:
            scale = param.dtype.type(-rate)
        grad = grads[key]
        grad *= scale
        grad += param
        updated[key] = grad
    return updated


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
    params: Any,
    X: ArrayLike,
    Y: ArrayLike,
    learning_rate: float | None = None,
    num_iterations: int = 2500,
    *,
    cost: Callable[..., Any] | None = None,
    optimizer: optim.Optimizer | None = None,
    batch_size: int | None = None,
    key: Any = None,
    hidden_activation: str = "relu",
    print_cost: bool = False,
    record_every: int = 100,
    progress: bool | None = None,
    callback: Callback | None = None,
    jit: bool = True,
) -> tuple[Any, RecordedCosts]:
    """Minimize ``cost`` from ``params`` step by step; returns (new params, recorded costs).

    ``cost`` is yours, ``cost(params, X, Y)`` of any pytree of float arrays ``params`` and a
    scalar mean over the m examples (columns) of X and Y (…, m) — or ``cost(params, key, X,
    Y)`` when a ``key`` (``tg.random.key(seed)``) is given: each step then gets a new key split
    from it (for dropout). None is the network's own: ``model_cost`` of the logits with
    ``hidden_activation``, params ``{"W1", "b1", …}``, labels as the package's doc says (class
    indices become one-hot columns once), X and Y converted to the parameters' dtype (float32
    or float64 end to end); it takes no key.

    Each iteration is one full-batch step of ``optimizer`` (an ``optim`` pair such as
    ``optim.adam(1e-3)``, which carries its own learning rate), by default
    ``optim.sgd(learning_rate)`` (0.0075, the course's). With ``batch_size`` (and a ``key``) an
    iteration is an epoch: the m examples in a new random order, in ``mini_batches`` of that
    size, a step each; the key is split once per epoch, and a cost that takes a key gets one per
    step, split from that epoch's.

    ``costs`` (a ``RecordedCosts``, a list) holds the cost at iterations 0, record_every,
    2·record_every, … (``costs.iterations``), each computed in the same forward pass as that
    iteration's gradient (before its update), as the course records it; an epoch's cost is
    the mean over its m examples. With ``print_cost`` each recorded cost (and the last one) is
    printed as the course does: ``Cost after iteration i: c`` (``epoch`` with mini-batches).
    ``progress`` shows a tqdm bar (None: on long runs when stderr is a terminal).
    ``callback(i, cost, params)`` runs after each iteration; returning True stops.

    Ctrl-C stops cleanly: the step that runs finishes, training says at which iteration and
    cost it stopped, and the parameters and costs reached so far are returned (a second
    Ctrl-C, or a KeyboardInterrupt from ``callback``, stops at once with the last finished
    step's). A cost that becomes NaN or inf stops training with ``TrainingDivergedError`` (a
    ``FloatingPointError``) saying where; it holds the last parameters with a finite cost and
    the costs recorded. ``params`` is not modified.

    The step (cost, gradients, update) runs under ``tg.jit`` (``jit=False``: eager, op by op;
    the numbers are the same): traced on the first iteration, replayed after. Without a
    ``callback`` to keep iterates, the parameters and state of one step take the next step's
    results in place (donated), so a step allocates nothing the size of ``W1``; should the cost
    diverge, the parameters kept are found by taking the same steps again from the start.
    """
    if optimizer is not None and learning_rate is not None:
        raise ValueError("train: the optimizer carries its own learning rate (e.g. "
                         "optim.adam(learning_rate)); pass learning_rate only without one")
    rate = 0.0075 if learning_rate is None else optim.number("train", "learning_rate",
                                                             learning_rate)
    if rate <= 0 or num_iterations < 0 or record_every < 1:
        raise ValueError(
            f"train: need learning_rate > 0, num_iterations >= 0 and record_every >= 1; got "
            f"{rate}, {num_iterations} and {record_every}"
        )
    batched = batch_size is not None
    if (batched and key is None) or (cost is None and key is not None and not batched):
        raise ValueError("train: mini-batches need both batch_size and a key to shuffle them "
                         "(key=tg.random.key(seed)); pass neither for full-batch steps"
                         + ("" if cost is None else " (a key alone is for your cost)"))
    if batch_size is not None:
        integer(batch_size, "train: batch_size", low=1)
    if cost is None:
        X, Y, params = _network_inputs(params, X, Y, hidden_activation)

        def cost(params: Any, X: Any, Y: Any) -> Any:
            return model_cost(params, X, Y, hidden_activation)

        takes_key = False
    else:
        if not callable(cost):
            raise TypeError(f"train: cost must be a function cost(params, X, Y) (or cost(params, "
                            f"key, X, Y) with a key), got {cost!r}")
        if hidden_activation != "relu":
            raise ValueError("train: hidden_activation is for the network's own cost; your cost "
                             "chooses its own activations")
        X, Y = np.asarray(value(X)), np.asarray(value(Y))
        params = tree_map(lambda leaf: np.array(value(leaf)), params)  # our own copies
        takes_key = key is not None
    optimizer = optim.sgd(rate) if optimizer is None else optimizer
    cost_and_grads = value_and_grad(cost)

    def step(params: Any, state: Any, *batch: Any) -> tuple[Any, Any, Any]:
        cost_value, grads = cost_and_grads(params, *batch)
        params, state = optimizer.update(grads, state, params)
        return cost_value, params, state

    # Without a callback to keep iterates, the parameters and the state of one step take the
    # next step's results in place (donated): a step allocates nothing the size of W1.
    donate = jit and callback is None
    run_step = tg_jit(step, donate_argnums=(0, 1) if donate else ()) if jit else step

    def steps(params: Any) -> Iterator[_Step]:
        return _steps(run_step, params, optimizer.init(params), X, Y, key, batch_size, takes_key,
                      num_iterations)

    unit = "epoch" if batched else "iteration"
    costs = RecordedCosts(unit=unit)
    start = params
    previous: Any = params  # the parameters before the last step: its cost was theirs
    diverged: _Step | None = None
    finished: tuple[int, int, int, float] | None = None  # iteration, batch, batches, cost
    total, taken = 0.0, 0  # the epoch's summed cost; the steps taken
    bar, ctrl_c = _Progress(num_iterations, progress), _CtrlC()
    try:
        with ctrl_c:
            for done in steps(tree_map(np.copy, start) if donate else start):
                i, batch, batches, examples, cost_value, new = done
                cost_now = float(cost_value)
                if not math.isfinite(cost_now):
                    diverged = done
                    break
                previous, params, taken = params, new, taken + 1
                if batch:  # one mini-batch of an epoch
                    total += cost_now * examples
                    finished = (i, batch, batches, cost_now)
                    if batch < batches:
                        if ctrl_c.pressed:
                            break
                        continue
                    cost_value = cost_now = total / X.shape[1]
                    total = 0.0
                finished = (i, 0, 0, cost_now)
                if i % record_every == 0:
                    costs.record(i, cost_now)
                if print_cost and (i % record_every == 0 or i == num_iterations - 1):
                    bar.write(f"Cost after {unit} {i}: {np.squeeze(cost_value)}")
                bar.update()
                if callback is not None and callback(i, cost_now, params):
                    break
                if ctrl_c.pressed:
                    break
    except KeyboardInterrupt:
        ctrl_c.pressed = True
    finally:
        bar.close()
    if diverged is not None:
        if donate and taken:  # those arrays took later steps: the same steps again, from start
            previous = start if taken == 1 else _nth(steps(tree_map(np.copy, start)), taken - 2)
        raise _diverged(diverged, unit, previous if taken else start, costs)
    if ctrl_c.pressed:
        print(f"Interrupted (Ctrl-C): training stopped {_where(finished, unit)}; returning the "
              "parameters reached and the costs recorded so far")
    return params, costs


# One step of training: its iteration; its mini-batch's number from 1 (0: a full batch), of how
# many in the epoch, and how many examples it holds; the cost at the parameters before the step;
# the parameters it made.
_Step = tuple[int, int, int, int, Any, Any]


def _steps(run_step: Callable[..., Any], params: Any, state: Any, X: np.ndarray, Y: np.ndarray,
           key: Any, batch_size: int | None, takes_key: bool,
           num_iterations: int) -> Iterator[_Step]:
    """Every step of training in order: the data and keys each gets, from the parameters the
    previous one made. From the same start it gives the same steps again."""
    for i in range(num_iterations):
        keys: Any = None
        if batch_size is None:
            batches = [(X, Y)]
            if takes_key:
                key, step_key = random.split(key)
                keys = [step_key]
        else:  # a new order each epoch; a cost's keys are split from the epoch's key too
            key, epoch_key = random.split(key)
            batches = mini_batches(epoch_key, X, Y, batch_size)
            keys = random.split(epoch_key, len(batches)) if takes_key else None
        for number, (X_batch, Y_batch) in enumerate(batches, start=1):
            batch = (X_batch, Y_batch) if keys is None else (keys[number - 1], X_batch, Y_batch)
            cost_value, params, state = run_step(params, state, *batch)
            yield (i, 0 if batch_size is None else number, len(batches),
                   X_batch.shape[1] if batch_size else 0, cost_value, params)


def _nth(steps: Iterator[_Step], n: int) -> Any:
    """The parameters made by step n (from 0), before the next step can take their arrays."""
    for k, done in enumerate(steps):
        if k == n:
            return done[-1]
    raise AssertionError("training gave fewer steps the second time")


def _network_inputs(params: Params, X: ArrayLike, Y: ArrayLike,
                    hidden_activation: str) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """X, Y and copies of the parameters for the network's own cost, checked, in the
    parameters' dtype (class indices made one-hot columns)."""
    dims = check_shapes(params, X, Y)
    activation(hidden_activation)
    dtype = np.asarray(value(params["W1"])).dtype
    X = np.asarray(value(X), dtype=dtype)
    if label_form(Y, dims[-1], X.shape[1], "train") == "indices":
        Y = one_hot(np.asarray(value(Y)), dims[-1], dtype)
    Y = np.asarray(value(Y), dtype=dtype)
    return X, Y, {name: np.array(value(array)) for name, array in params.items()}


def _diverged(step: _Step, unit: str, finite: Any, costs: RecordedCosts) -> TrainingDivergedError:
    """The error for a step whose cost is NaN or inf: where, why it may be, how to find the op."""
    i, batch, batches, _, cost, _ = step
    where = f"{unit} {i}" + (f", mini-batch {batch} of {batches}" if batch else "")
    first = i == 0 and batch <= 1
    kept = ("error.params holds the initial parameters" if first else
            "error.params holds the parameters of the last step whose cost was finite")
    return TrainingDivergedError(
        f"train: the cost is {float(cost)} at {where}: training stopped. "
        + ("Before any update: the data, the initial parameters or the cost itself make it. "
           if first else "A learning rate too large makes the parameters grow until they "
           "overflow; NaN or inf in the data does it at once. ")
        + f"{kept} and error.costs the costs recorded before. To find the op that makes the "
        "first NaN or inf, run on from there op by op: with tg.detect_anomaly(): "
        "nn.train(error.params, X, Y, ..., num_iterations=2, jit=False)", finite, costs, i)


def _where(finished: tuple[int, int, int, float] | None, unit: str) -> str:
    """Where an interrupted training stopped, for its message."""
    if finished is None:
        return "before its first step finished (the parameters are the initial ones)"
    i, number, batches, cost = finished
    if number:
        return f"in {unit} {i} after mini-batch {number} of {batches} (its cost {cost:.6g})"
    return f"after {unit} {i} (cost {cost:.6g})"
