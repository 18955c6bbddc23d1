"""``vmap``: a function mapped over an axis of its arguments, without a Python loop.

``vmap(f)(*args)`` traces ``f`` once on one example (a nested ``Trace``: reading an example's
values in Python raises), then runs the recorded equations in order on the whole batch, each
through its primitive's ``batch`` rule (ops.py, beside the primitive). An elementwise primitive
needs none: the batch axes are aligned and numpy broadcasts. A primitive without a rule runs
once per example, its results stacked: correct, only slower (the random draws). The batched run
is made of the engine's ops, so whatever runs around ``vmap`` (``grad``, ``jit``, another
``vmap``) records it as it records any computation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from tinygrad_nn import batching, ops
from tinygrad_nn.autodiff import owned
from tinygrad_nn.pytree import argument_names, tree_flatten, tree_paths, tree_unflatten
from tinygrad_nn.tensor import Primitive, State, Tensor, Trace, leaf, numeric, shape_of

Dim = int | None


def vmap(f: Callable[..., Any], in_axes: Any = 0, out_axes: Any = 0) -> Callable[..., Any]:
    """``f`` mapped over axis ``in_axes`` of its arguments, its results stacked along axis
    ``out_axes``, as ``jax.vmap``.

    ``in_axes``: an int (every argument, negative from the end), None (not mapped: passed as
    it is), or a tuple with one entry per positional argument, each an int, None or a pytree
    prefix of that argument (``({"W": None, "b": 0}, 1)``). Keyword arguments are mapped over
    axis 0. ``out_axes``: likewise, for ``f``'s result; an output that does not depend on a
    mapped argument is broadcast along it (None: returned once, as it is). The mapped axes must
    have one size. On numpy arguments the results are numpy arrays; inside a transform or a
    traced program, and for Tensors that require grad, recorded Tensors.
    """
    name = f"vmap({getattr(f, '__name__', 'f')})"

    @functools.wraps(f, updated=())
    def vmapped(*args: Any, **kwargs: Any) -> Any:
        axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
        if len(axes) != len(args):
            raise ValueError(f"{name}: in_axes has {len(axes)} entries, but the function got "
                             f"{len(args)} positional arguments")
        leaves, treedef = tree_flatten((args, kwargs))
        dims = [d for k, (axis, arg) in enumerate(zip(axes, args))
                for d in _prefix(axis, arg, "in_axes", name, f"argument {k}")]
        dims += _prefix(0, kwargs, "in_axes", name, "")
        names = argument_names(args) + [f"keyword {path}" for path in tree_paths(kwargs)]
        size = _batch_size(leaves, dims, names, name)
        return _outputs(*_run(f, leaves, dims, treedef, size, name), out_axes, size, name, leaves)

    return vmapped


# --- the axes of each leaf ------------------------------------------------------------------------
def _prefix(prefix: Any, tree: Any, what: str, name: str, path: str) -> list[Dim]:
    """One axis (or None) per leaf of ``tree``, from ``prefix``: an int or None for a whole
    subtree, else a container of the tree's type with its keys (or length)."""
    if prefix is None or (isinstance(prefix, (int, np.integer)) and not isinstance(prefix, bool)):
        return [None if prefix is None else int(prefix)] * len(tree_flatten(tree)[0])
    if isinstance(prefix, dict) and isinstance(tree, dict) and set(prefix) == set(tree):
        return [d for key, child in tree.items()
                for d in _prefix(prefix[key], child, what, name, f"{path}.{key}")]
    if isinstance(prefix, (list, tuple)) and isinstance(tree, (list, tuple)) and len(
            prefix) == len(tree) and isinstance(prefix, list) == isinstance(tree, list):
        return [d for i, (p, child) in enumerate(zip(prefix, tree))
                for d in _prefix(p, child, what, name, f"{path}[{i}]")]
    raise ValueError(f"{name}: {what} {prefix!r} does not fit {path or 'the output'} (a "
                     f"{type(tree).__name__}): give an int, None, or a container of the same "
                     "kind with the same keys or length")


def _batch_size(leaves: list[Any], dims: list[Dim], names: list[str], name: str) -> int:
    """The one size of the mapped axes, or a clear error; the mapped leaves made arrays (or
    Tensors) and their ``dims`` non-negative, in place."""
    sizes = {}
    for k, (x, dim, arg) in enumerate(zip(leaves, dims, names)):
        if dim is None:
            continue
        if not isinstance(x, (np.ndarray, Tensor, np.number, int, float, list)):
            raise TypeError(f"{name}: argument '{arg}' is mapped (in_axes {dim}), but it is a "
                            f"{type(x).__name__}, not an array")
        if type(x) is not Tensor:
            leaves[k] = x = numeric(x, f"{name}: argument '{arg}'")
        rank = len(shape_of(x))
        if not -rank <= dim < rank:
            raise ValueError(f"{name}: in_axes {dim} is out of range for argument '{arg}' of "
                             f"shape {shape_of(x)} (rank {rank})")
        dims[k] = dim = dim % rank
        sizes[arg] = shape_of(x)[dim]
    if not sizes:
        raise ValueError(f"{name}: no argument is mapped (in_axes are all None); map one")
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"'{arg}' has {n}" for arg, n in sizes.items())
        raise ValueError(f"{name}: the mapped axes differ in size: {listed}")
    return next(iter(sizes.values()))


# --- trace one example, then run its equations on the batch -------------------------------------
@contextmanager
def _recording(program: Trace) -> Iterator[list[Tensor]]:
    """Trace ``program`` onto a tape of its own; the nodes of other programs or transforms
    recorded meanwhile (an outer ``grad``'s, on its Tensors) join the enclosing tape."""
    outer, tape = (State.program, State.tape), list[Tensor]()
    State.program, State.tape = program, tape
    try:
        yield tape
    finally:
        State.program, State.tape = outer
        program.active = False
        if State.tape is not None:
            State.tape.extend(x for x in tape if x.program is not program)


def _run(f: Callable[..., Any], leaves: list[Any], dims: list[Dim], treedef: Any, size: int,
         name: str) -> tuple[list[Any], list[Dim], Any]:
    """(the batched output leaves, their batch axes, the output's structure)."""
    program, env, traced = Trace(name), dict[int, tuple[Any, Dim]](), list(leaves)
    for k, (x, dim) in enumerate(zip(leaves, dims)):
        if dim is not None:
            array = x._data if type(x) is Tensor else x  # the first example, to trace f on
            example = np.take(array, 0, dim) if size else np.zeros(
                array.shape[:dim] + array.shape[dim + 1:], array.dtype)
            traced[k] = leaf(example, False, 0, None, program)
            env[id(traced[k])] = (batching.move_batch(x, dim), 0)
    outer = (2 << State.depth) - 1  # the bits of the transforms running around this call
    args, kwargs = tree_unflatten(treedef, traced)
    with _recording(program) as tape:
        result = f(*args, **kwargs)
    outputs, out_tree = tree_flatten(result)
    needed, stack = set(), [x for x in outputs if type(x) is Tensor and x.program is program]
    while stack:  # the equations the outputs need (a traced leaf is in env already)
        node = stack.pop()
        if id(node) not in needed and id(node) not in env:
            needed.add(id(node))
            stack.extend(x for x in node.inputs or () if type(x) is Tensor and
                         x.program is program)
    for node in tape:
        if id(node) in needed:
            values, batch_dims = [], []
            for x in node.inputs or ():
                value, dim = env.get(id(x), (x, None)) if type(x) is Tensor else (x, None)
                if type(value) is Tensor and value.requires_grad and value.program is None and (
                        value.traces and not value.traces & outer):
                    value = value._data  # a transform's inside f: its gradient is in the program
                values.append(value)
                batch_dims.append(dim)
            start = len(State.tape) if State.tape is not None else 0
            env[id(node)] = _apply(node.primitive, values, batch_dims, node.params or {}, size)
            if id(node) in program.backward and State.program is not None and State.tape:
                State.program.backward.update(map(id, State.tape[start:]))
    batched = [env.get(id(x), (x, None)) if type(x) is Tensor else (x, None) for x in outputs]
    return [b[0] for b in batched], [b[1] for b in batched], (out_tree, result)


def _apply(primitive: Primitive | None, args: list[Any], dims: list[Dim], params: dict[str, Any],
          size: int) -> tuple[Any, Dim]:
    """``primitive`` on a batch: (the result, its batch axis)."""
    assert primitive is not None
    if all(dim is None for dim in dims):
        return primitive(*args, **params), None
    if primitive.batch is not None:
        return primitive.batch(primitive, args, dims, **params)
    if primitive.elementwise:  # broadcast, with the batch axes aligned first
        rank = max(len(shape_of(x)) - (d is not None) for x, d in zip(args, dims))
        lifted = [batching.lift_batch(x, d, rank) for x, d in zip(args, dims)]
        return primitive(*lifted, **params), 0
    if not size:
        raise ValueError(f"vmap: op '{primitive.name}' has no batching rule, and an empty batch "
                         "has no example to run it on")
    examples = [primitive(*[x if d is None else ops.getitem(x, (slice(None),) * d + (i,))
                            for x, d in zip(args, dims)], **params) for i in range(size)]
    return ops.stack(examples), 0  # no rule: once per example


def _outputs(values: list[Any], dims: list[Dim], trees: Any, out_axes: Any, size: int,
             name: str, inputs: list[Any]) -> Any:
    """The outputs with their batch axes at ``out_axes``, as numpy arrays unless they are
    recorded."""
    out_tree, result = trees
    paths = tree_paths(result)
    wanted = _prefix(out_axes, result, "out_axes", name, "")
    handed_out, ids = set[int](), {id(x) for x in inputs}
    results: list[Any] = []
    for value, dim, axis, path in zip(values, dims, wanted, paths):
        where = f"the output '{path}'" if path else "the output"
        if type(value) is not Tensor:
            value = numeric(value, f"{name}: {where}")
        if axis is None:
            if dim is not None:
                raise ValueError(f"{name}: out_axes is None for {where}, but it varies along the "
                                 "mapped axis")
        else:
            rank = len(shape_of(value)) + (dim is None)
            if not -rank <= axis < rank:
                raise ValueError(f"{name}: out_axes {axis} is out of range for {where} of rank "
                                 f"{rank} (with the mapped axis)")
            value = batching.move_batch(value, dim, axis % rank, size)
        if type(value) is Tensor and (value.requires_grad or value.program is not None):
            results.append(value)
            continue
        array = value._data if type(value) is Tensor else np.asarray(value)
        results.append(array.copy() if id(array) in ids else owned(array, handed_out))
    return tree_unflatten(out_tree, results)


__all__ = ["vmap"]
