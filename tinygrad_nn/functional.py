"""Functional transforms, as in JAX: ``vjp``, and ``grad`` / ``value_and_grad`` built on it.

Inputs are pytrees of numpy arrays, numbers or Tensors. Each differentiated leaf becomes a
fresh leaf Tensor for one call, so nothing outside is mutated or left behind. Inside another
transform (``grad(grad(f))``) or a traced program (``jit``), the backward pass is recorded and
the results are Tensors; at the top level they are numpy arrays.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tinygrad_nn import ops, tensor
from tinygrad_nn.autodiff import backprop, make_seed, owned, recording_backward
from tinygrad_nn.pytree import argument_names, tree_flatten, tree_map, tree_unflatten
from tinygrad_nn.tensor import ArrayLike, State, Tensor, numeric, switch


class tracing:  # noqa: N801  (a context manager, named like contextlib's)
    """Run a function under a transform, recording onto a tape of its own. Gives ``(bit,
    tape)``: the bit marks what depends on this transform's inputs; the tape lists the nodes
    recorded inside, in order (they join the enclosing tape too). A class, not a generator:
    transforms enter it on every call."""

    tape: list[Tensor]

    def __enter__(self) -> tuple[int, list[Tensor]]:
        State.depth += 1
        self.outer, self.tape = (State.record, State.tape), []
        State.record, State.tape = True, self.tape
        return 1 << State.depth, self.tape

    def __exit__(self, *exc_info: object) -> None:
        State.depth -= 1
        State.record, State.tape = self.outer
        if State.tape is not None:
            State.tape.extend(self.tape)


def records_backward() -> bool:
    """Inside another transform or a program trace: backward passes are recorded."""
    return State.tape is not None


def check_argnums(argnums: Any, count: int | None, caller: str) -> tuple[int, ...]:
    """``argnums`` as non-negative positions among ``count`` arguments (None: not known yet),
    or an error saying what argnums takes."""
    if type(argnums) is int and 0 <= argnums < (count or 0):
        return (argnums,)  # the usual call, on the hot path
    positions = (argnums,) if isinstance(argnums, int) else tuple(argnums) if isinstance(
        argnums, (tuple, list, range)) else None
    if positions is None or not all(isinstance(p, int) for p in positions):
        raise TypeError(f"{caller}: argnums must be an int or a sequence of ints, got {argnums!r}")
    for p in positions if count is not None else ():
        if not -count <= p < count:  # type: ignore[operator]
            raise ValueError(f"{caller}: argnums {argnums} asks for argument {p}, but the function "
                             f"got {count} positional arguments")
    return positions if count is None else tuple(p % count for p in positions)


def _input(leaf: Any, bit: int) -> Tensor:
    """A fresh leaf for one input; a node joined to it when it is an outer transform's or a
    traced program's Tensor."""
    if type(leaf) is Tensor and (leaf.requires_grad or leaf.program is not None):
        # an int is differentiated as float64, as an eager input is
        node = ops.identity(leaf) if leaf.dtype.kind == "f" else ops.astype(leaf, np.float64)
        node.requires_grad, node.traces = True, node.traces | bit
        return node
    array = leaf if type(leaf) is np.ndarray else numeric(leaf, "an input leaf")
    if array.dtype.kind != "f":
        array = numeric(array, "an input leaf").astype(np.float64)
    return tensor.leaf(array, True, bit)


class _Traced:
    """One run of ``f`` on fresh input leaves, and its backward pass. ``argnums`` picks the
    differentiated arguments: one index (the gradient has that argument's structure) or a
    tuple of them (a tuple of structures)."""

    def __init__(self, f: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                 argnums: int | tuple[int, ...], has_aux: bool, caller: str):
        positions, single = check_argnums(argnums, len(args), caller), isinstance(argnums, int)
        primals = args[positions[0]] if single else tuple(args[p] for p in positions)
        leaves, self.treedef = tree_flatten(primals)
        with tracing() as (self.bit, self.tape):
            try:
                self.inputs = [_input(leaf, self.bit) for leaf in leaves]
            except TypeError:  # name the leaf by its path
                for leaf, name in zip(leaves, argument_names((primals,) if single else primals)):
                    numeric(leaf, f"{caller}: the input leaf '{name}'")
                raise
            full, traced = list(args), tree_unflatten(self.treedef, self.inputs)
            for position, tree in zip(positions, [traced] if single else traced):
                full[position] = tree
            result = f(*full, **kwargs)
        self.recorded, self.aux = records_backward(), None
        if has_aux:
            if not (isinstance(result, tuple) and len(result) == 2):
                raise TypeError(f"{caller}: with has_aux=True the function must return (output, "
                                f"aux); it returned {type(result).__name__}")
            result, aux = result  # aux's Tensors as numpy at the top level: none keeps a graph
            self.aux = aux if self.recorded else tree_map(
                lambda x: x._data if type(x) is Tensor else x, aux)
        # An output that is not a Tensor does not depend on the inputs: every gradient is 0.
        self.out = result if type(result) is Tensor else Tensor(numeric(
            result, f"{caller}: the function returned something that is not a number"))

    def pull_back(self, seed: Any, retain_graph: bool) -> Any:
        """The inputs' cotangents (in the primals' structure) for the output's ``seed``; recorded
        (Tensors) inside another transform or a program trace, as ``create_graph`` does."""
        out, results = self.out, {}
        recorded = self.recorded or type(seed) is Tensor  # a recorded cotangent: recorded too
        if out.requires_grad and out.traces & self.bit and not recorded:
            results = backprop(out, seed, order=reversed(self.tape), targets=self.inputs,
                               trace=self.bit, retain_graph=retain_graph)
        elif out.requires_grad and out.traces & self.bit:
            with switch("record", True), recording_backward():
                results = backprop(out, seed if type(seed) is Tensor else Tensor(seed),
                                   order=reversed(self.tape), targets=self.inputs, trace=self.bit,
                                   create_graph=True, retain_graph=True)
        grads, handed_out = [], set[int]()
        for x in self.inputs:
            if (g := results.get(x)) is None:  # the output does not depend on x: fresh zeros
                zeros = np.zeros(x.shape, x.dtype)
                grads.append(Tensor(zeros) if recorded else zeros)
            else:
                grads.append(g if recorded else owned(g, handed_out))
        return tree_unflatten(self.treedef, grads)

    def value(self) -> Any:
        return self.out if self.recorded else self.out._data


def vjp(f: Callable[..., Any], *primals: Any, has_aux: bool = False) -> Any:
    """``(f(*primals), vjp_fn)`` (and ``aux`` with has_aux): ``vjp_fn(cotangent)`` gives one
    gradient pytree per primal. ``vjp_fn`` may be called more than once."""
    traced = _Traced(f, primals, {}, tuple(range(len(primals))), has_aux, "vjp")

    def vjp_fn(cotangent: ArrayLike) -> tuple[Any, ...]:
        # A cotangent that is recorded (traced, or needing a gradient) stays a Tensor, its
        # values unread, and the backward pass is recorded on it: a traced program recomputes
        # it, an outer transform (or vmap) differentiates (or batches) through it.
        if type(cotangent) is Tensor and (traced.recorded or cotangent.requires_grad
                                          or cotangent.program is not None):
            if cotangent.shape != traced.out.shape:
                raise ValueError(f"vjp_fn: the cotangent has shape {cotangent.shape}, expected "
                                 f"the output's shape {traced.out.shape}")
            return tuple(traced.pull_back(cotangent, retain_graph=True))
        return tuple(traced.pull_back(make_seed(traced.out, cotangent, "vjp_fn"), True))

    return (traced.value(), vjp_fn, traced.aux) if has_aux else (traced.value(), vjp_fn)


def value_and_grad(f: Callable[..., Any], argnums: int | Sequence[int] = 0,
                   has_aux: bool = False) -> Callable[..., Any]:
    """A function returning ``(f(*args), gradient)`` (``((f, aux), gradient)`` with has_aux).

    The gradient has the structure of ``args[argnums]`` (a tuple of them when argnums is a
    sequence), with numpy arrays of the inputs' dtypes. ``f`` must return a scalar.
    """
    argnums = argnums if isinstance(argnums, int) else check_argnums(argnums, None, "grad")

    @functools.wraps(f, updated=())
    def value_and_grad_f(*args: Any, **kwargs: Any) -> Any:
        traced = _Traced(f, args, kwargs, argnums, has_aux, "grad")
        if traced.out.size != 1:
            raise TypeError(f"grad: the function must return a scalar; it returned shape "
                            f"{traced.out.shape}. Reduce it (e.g. .sum() or .mean()), or use vjp "
                            "for a non-scalar output")
        gradient = traced.pull_back(np.ones(traced.out.shape, traced.out.dtype), False)
        return ((traced.value(), traced.aux) if has_aux else traced.value()), gradient

    return value_and_grad_f


def grad(f: Callable[..., Any], argnums: int | Sequence[int] = 0,
         has_aux: bool = False) -> Callable[..., Any]:
    """A function returning the gradient of scalar ``f`` (``(gradient, aux)`` with has_aux)."""
    value_and_grad_f = value_and_grad(f, argnums, has_aux)

    @functools.wraps(f, updated=())
    def grad_f(*args: Any, **kwargs: Any) -> Any:
        value, gradient = value_and_grad_f(*args, **kwargs)
        return (gradient, value[1]) if has_aux else gradient

    return grad_f


def hvp(f: Callable[..., Any], argnums: int | Sequence[int] = 0) -> Callable[..., Any]:
    """``hvp(f, argnums)(*args, v)``: the Hessian of scalar ``f`` at ``args[argnums]`` times
    ``v`` (a pytree of that argument's structure; a tuple of them for a sequence of argnums),
    as the gradient of ⟨∇f, v⟩ (reverse over reverse)."""

    def hvp_f(*args_and_v: Any) -> Any:
        *args, v = args_and_v
        point = tuple(args[p] for p in check_argnums(argnums, len(args), "hvp"))
        directions, v_tree = tree_flatten(v)
        if v_tree != tree_flatten(point[0] if isinstance(argnums, int) else point)[1]:
            raise ValueError(f"hvp: v must have the structure of argument {argnums}")

        def along(*xs: Any) -> Any:  # ⟨∇f(xs), v⟩, recorded
            pairs = zip(tree_flatten(grad(f, argnums)(*xs))[0], directions)
            return sum(ops.sum(ops.mul(g, u)) for g, u in pairs)

        return grad(along, argnums)(*args)

    return hvp_f
