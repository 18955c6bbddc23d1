"""A dropped graph is freed by reference counting alone: eager steps make no reference cycle, and
memory is flat after a warm-up with the cycle collector disabled.

Each variant makes ``step()``: one training step (or one derivative). With gc disabled, a cycle
stays tracked: the count of gc-tracked objects must not grow, and ``gc.collect()`` must find
nothing; tracemalloc's memory after a collect (which empties CPython's free lists) must stay
within a small allowance, which an unbounded cache or a leaked array would exceed."""

from __future__ import annotations

import collections
import gc
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import nn

Step = Callable[[], Any]
ALLOWANCE = 32 * 1024  # bytes of traced memory, after a collect, over the measured steps


def tiny() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    X = np.random.default_rng(0).normal(size=(2, 64))
    return nn.init_params([2, 16, 16, 1]), X, (X[:1] * X[1:] > 0).astype(np.float64)


def cat() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)  # the course's shapes; the numbers do not matter here
    return nn.init_params([12288, 20, 7, 5, 1]), rng.random((12288, 209)), (
        rng.random((1, 209)) > 0.65).astype(np.float64)


def descent(problem: Callable[[], Any], gradient: Callable[..., Any]) -> Step:
    params, X, Y = problem()
    state = {"params": params}

    def step() -> None:
        state["params"] = nn.sgd_update(state["params"], gradient(state["params"], X, Y), 0.01)

    return step


def with_value_and_grad(problem: Callable[[], Any]) -> Step:
    cost_and_grads = tg.value_and_grad(nn.model_cost)
    return descent(problem, lambda *args: cost_and_grads(*args)[1])


def with_grad(problem: Callable[[], Any]) -> Step:
    return descent(problem, tg.grad(nn.model_cost))


def with_vjp(problem: Callable[[], Any]) -> Step:
    def gradient(*args: Any) -> Any:  # every argument a primal: X and Y become Tensors too
        return tg.vjp(nn.model_cost, *args)[1](np.ones(()))[0]

    return descent(problem, gradient)


def with_backward(problem: Callable[[], Any], create_graph: bool = False) -> Step:
    def gradient(params: Any, X: Any, Y: Any) -> Any:
        leaves = {k: tg.Tensor(v, requires_grad=True) for k, v in params.items()}
        nn.model_cost(leaves, X, Y).backward(create_graph=create_graph)
        grads = {k: np.array(t.grad.data if create_graph else t.grad) for k, t in leaves.items()}
        for leaf in leaves.values():  # with create_graph, .grad's graph leads back to the leaf
            leaf.zero_grad()  # (a cycle, as in PyTorch): letting go of it breaks the cycle
        return grads

    return descent(problem, gradient)


def with_grad_of_grad(problem: Callable[[], Any]) -> Step:
    def squared_norm(params: Any, X: Any, Y: Any) -> Any:
        return sum((g * g).sum() for g in tg.grad(nn.model_cost)(params, X, Y).values())

    return descent(problem, tg.grad(squared_norm))


VARIANTS = {
    "value_and_grad": with_value_and_grad, "grad": with_grad, "vjp": with_vjp,
    "backward": with_backward, "create_graph": lambda p: with_backward(p, create_graph=True),
    "grad of grad": with_grad_of_grad,
}


@contextmanager
def gc_disabled() -> Iterator[None]:
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def cycles_after(step: Step, steps: int) -> str:
    """What the collector finds after ``steps`` steps (gc disabled), by type; "" if nothing."""
    with gc_disabled():
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(steps):
                step()
            gc.collect()
            found = collections.Counter(type(item).__qualname__ for item in gc.garbage)
            return ", ".join(f"{n} {kind}" for kind, n in found.most_common(6))
        finally:
            gc.set_debug(0)
            gc.garbage.clear()


def growth(step: Step, warm_up: int, steps: int) -> tuple[int, int, int]:
    """(gc-tracked objects gained, objects in cycles, bytes gained after a collect) over
    ``steps`` steps after ``warm_up`` ones, with gc disabled."""
    with gc_disabled():
        tracemalloc.start()
        try:
            for _ in range(warm_up):
                step()
            gc.collect()
            memory, tracked = tracemalloc.get_traced_memory()[0], len(gc.get_objects())
            for _ in range(steps):
                step()
            gained = len(gc.get_objects()) - tracked
            in_cycles = gc.collect()
            return gained, in_cycles, tracemalloc.get_traced_memory()[0] - memory
        finally:
            tracemalloc.stop()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_an_eager_step_makes_no_reference_cycle(variant: str) -> None:
    step = VARIANTS[variant](tiny)
    step()
    assert cycles_after(step, 5) == "", f"{variant}: left to the cycle collector"


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_memory_is_flat_with_gc_disabled(variant: str) -> None:
    gained, in_cycles, grown = growth(VARIANTS[variant](tiny), warm_up=10, steps=100)
    assert (gained, in_cycles) == (0, 0) and grown < ALLOWANCE, (gained, in_cycles, grown)


@pytest.mark.slow
@pytest.mark.parametrize("problem", [tiny, cat], ids=["tiny net", "cat net"])
@pytest.mark.parametrize("variant", ["value_and_grad", "grad", "backward", "create_graph"])
def test_1000_eager_steps_are_flat_with_gc_disabled(variant: str, problem: Any) -> None:
    gained, in_cycles, grown = growth(VARIANTS[variant](problem), warm_up=50, steps=1000)
    assert (gained, in_cycles) == (0, 0) and grown < ALLOWANCE, (gained, in_cycles, grown)


def test_a_recorded_grad_that_is_kept_holds_its_graph_as_pytorch_does() -> None:
    """The one cycle left, and why it is left: after backward(create_graph=True) a leaf's .grad
    is a Tensor whose graph leads back to the leaf (that is what makes a second derivative
    through .grad possible). zero_grad() (or tg.grad of tg.grad) avoids it."""
    def step() -> None:
        w = tg.Tensor(np.ones(3), requires_grad=True)
        (w * w * w).sum().backward(create_graph=True)

    assert "Tensor" in cycles_after(step, 1)
