"""The primitives' ``vmap`` rules that many share, and the helpers every rule uses.

A rule is ``rule(primitive, args, dims, **params) -> (out, out_dim)``: the op on a batch, where
``dims[i]`` is the batch axis of ``args[i]`` or None (not batched). ``ops.py`` gives each
primitive its rule beside it (``batch=batching.reduce``). As a VJP rule, a batch rule computes
with methods and operators, so it runs on numpy arrays (a plain ``vmap``) and on Tensors
(recorded, when a transform or a trace runs around ``vmap``); the op itself is ``primitive``.
This module sits under ``ops.py``: it imports only ``tensor``.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_nn.tensor import Primitive, Tensor, dtype_of, shape_of, value

Dims = Sequence[int | None]


def size(args: Sequence[Any], dims: Dims) -> int:
    """The batch size: the length of a batched argument's batch axis."""
    return next(shape_of(x)[d] for x, d in zip(args, dims) if d is not None)


def move_batch(x: Any, dim: int | None, to: int = 0, count: int = 0) -> Any:
    """x with its batch axis at ``to``: moved there, or, for an unbatched x (``dim`` None), a
    new axis of ``count`` (a broadcast: no copy)."""
    shape = shape_of(x)
    if dim is None:
        kept, wide = (*shape[:to], 1, *shape[to:]), (*shape[:to], count, *shape[to:])
        if type(x) is Tensor:
            return x.reshape(kept).broadcast_to(wide)
        return np.broadcast_to(np.reshape(x, kept), wide)
    axes = [a for a in range(len(shape)) if a != dim]
    return x if dim == to else x.transpose((*axes[:to], dim, *axes[to:]))


def lift_batch(x: Any, dim: int | None, rank: int) -> Any:
    """A batched x with its batch axis first, then size-1 axes up to ``rank`` example axes, so
    that numpy's broadcasting (from the right) keeps the batch axis apart; unbatched, x."""
    if dim is None:
        return x
    x = move_batch(x, dim)
    shape = shape_of(x)
    return x if len(shape) > rank else x.reshape(
        (shape[0], *(1,) * (rank + 1 - len(shape)), *shape[1:]))


def unchanged(primitive: Primitive, args: Sequence[Any], dims: Dims,
              **params: Any) -> tuple[Any, int | None]:
    """An op that works on any shape alike (identity, a check): the batch axis stays put."""
    return primitive(*args, **params), dims[0]


def _shifted(axis: int) -> int:
    return axis + 1 if axis >= 0 else axis  # past the batch axis (from the end: the same)


def reduce(primitive: Primitive, args: Sequence[Any], dims: Dims,
           **params: Any) -> tuple[Any, int]:
    """An op along ``axis`` (an int or a tuple: a reduction, a scan, a sort): the batch axis
    first, the op's axes one further on."""
    axis = params.pop("axis")
    shifted = tuple(map(_shifted, axis)) if type(axis) is tuple else _shifted(axis)
    return primitive(move_batch(args[0], dims[0]), axis=shifted, **params), 0


def arg_reduce(primitive: Primitive, args: Sequence[Any], dims: Dims,
               axis: int | None) -> tuple[Any, int]:
    """argmax, argmin: axis None means each example's flattened elements."""
    x = move_batch(args[0], dims[0])
    shape = shape_of(x)
    if axis is None:
        return reduce(primitive, [x.reshape((shape[0], math.prod(shape[1:])))], [0], axis=0)
    return reduce(primitive, [x], [0], axis=axis)


def reshape(primitive: Primitive, args: Sequence[Any], dims: Dims,
            shape: tuple[int, ...]) -> tuple[Any, int]:
    return primitive(move_batch(args[0], dims[0]), shape=(size(args, dims), *shape)), 0


def transpose(primitive: Primitive, args: Sequence[Any], dims: Dims,
              axes: tuple[int, ...]) -> tuple[Any, int]:
    return primitive(move_batch(args[0], dims[0]), axes=(0, *(a + 1 for a in axes))), 0


def broadcast_to(primitive: Primitive, args: Sequence[Any], dims: Dims,
                 shape: tuple[int, ...]) -> tuple[Any, int]:
    return primitive(lift_batch(args[0], dims[0], len(shape)), shape=(size(args, dims),
                                                                      *shape)), 0


def aligned(primitive: Primitive, args: Sequence[Any], dims: Dims,
            axis: int) -> tuple[Any, int]:
    """An op of inputs of one rank along ``axis`` (concatenate, stack, take_along_axis): every
    input with a batch axis first (an unbatched one broadcast), the axis one further on."""
    count = size(args, dims)
    return primitive(*[move_batch(x, d, 0, count) for x, d in zip(args, dims)],
                     axis=_shifted(axis)), 0


def einsum(primitive: Primitive, args: Sequence[Any], dims: Dims,
           subscripts: str) -> tuple[Any, int]:
    """A letter of its own for the batch axis, on each batched operand and on the output."""
    letter = next(c for c in string.ascii_letters if c not in subscripts)
    inputs, output = subscripts.split("->")
    terms = [term if d is None else letter + term for term, d in zip(inputs.split(","), dims)]
    return primitive(*[x if d is None else move_batch(x, d) for x, d in zip(args, dims)],
                     subscripts=f"{','.join(terms)}->{letter}{output}"), 0


def matmul(primitive: Primitive, args: Sequence[Any], dims: Dims) -> tuple[Any, int]:
    """x @ y, minding numpy's 1-D operands (a row on the left, a column on the right)."""
    (x, y), (dx, dy) = args, dims
    rx, ry = len(shape_of(x)) - (dx is not None), len(shape_of(y)) - (dy is not None)
    if dx is None and ry == 1:  # x @ each column: one product, the columns side by side
        return primitive(x, move_batch(y, dy, 1)), max(rx - 1, 0)
    if dy is None and rx == 1:  # each row @ y: one product, the rows stacked
        return primitive(move_batch(x, dx), y), max(ry - 2, 0)
    if ry == 1 and dy is not None:  # a batch of columns (numpy would take the batch axis for k)
        y = move_batch(y, dy)
        y = y.reshape((*shape_of(y), 1))
    rank = max(rx, ry, 2)
    out = primitive(lift_batch(x, dx, rank), lift_batch(y, dy, rank))
    shape = shape_of(out)  # drop the row and column axes added for 1-D operands
    drop = {len(shape) - 2} if rx == 1 and dx is not None else set()
    drop |= {len(shape) - 1} if ry == 1 and dy is not None else set()
    return (out.reshape(tuple(n for i, n in enumerate(shape) if i not in drop))
            if drop else out), 0


def index(parts: tuple[Any, ...], arrays: Sequence[Any], dims: Dims, rank: int, count: int,
          batched: bool, slot: Any) -> tuple[tuple[Any, ...], list[Any], int, int]:
    """getitem's and scatter_add's ``index`` (``slot`` where an index array stands; for an
    example of ``rank`` axes) for a batch: (the new index, its arrays, the axis of x where its
    batch axis goes, the result's batch axis). A batched x (``batched``) is indexed along its
    batch axis by 0..count-1 beside the first advanced index, so that numpy keeps the advanced
    indices together, or moves them first, as in the example; an index array's batch axis goes
    first."""
    given, spec = iter(zip(arrays, dims)), list[tuple[Any, Any, Any]]()
    for part in parts:  # a constant boolean array: the integer arrays of its True places
        array, dim = next(given) if part is slot else (None, None)
        if array is not None and dtype_of(array).kind == "b":
            spec += [(slot, places, None) for places in np.nonzero(value(array))]
        else:
            spec.append((part, array, dim))
    for k, (part, _, _) in enumerate(spec):
        if part is Ellipsis:  # as the slices it stands for
            spec[k:k + 1] = [(slice(None), None, None)] * (
                rank + 1 - sum(p is not None for p, _, _ in spec))
            break
    arrays_in = any(p is slot for p, _, _ in spec)  # then integers are advanced indices too
    advanced = [k for k, (p, _, _) in enumerate(spec)
                if arrays_in and (p is slot or isinstance(p, (int, np.integer)))] or [0]
    first, last = advanced[0], advanced[-1]
    apart = any(k not in advanced for k in range(first, last))  # numpy puts them first
    width = max([len(shape_of(a)) - (d is not None) for p, a, d in spec if p is slot], default=0)
    spec = [(p, lift_batch(a, d, width) if p is slot else a, d) for p, a, d in spec]
    if batched:
        spec.insert(first, (slot, np.arange(count).reshape(count, *(1,) * width), 0)
                    if arrays_in else (slice(None), None, None))
    x_axis = sum(isinstance(p, slice) for p, _, _ in spec[:first])
    return (tuple(p for p, _, _ in spec), [a for p, a, _ in spec if p is slot], x_axis,
            0 if apart else first)


def getitem(primitive: Primitive, args: Sequence[Any], dims: Dims, parts: tuple[Any, ...],
            slot: Any) -> tuple[Any, int]:
    """x[index], x or any index array batched."""
    x, dim = args[0], dims[0]
    parts, arrays, x_axis, out_axis = index(parts, args[1:], dims[1:], len(shape_of(x)) - (
        dim is not None), size(args, dims), dim is not None, slot)
    return primitive(x if dim is None else move_batch(x, dim, x_axis), *arrays,
                     index=parts), out_axis


def scatter_add(primitive: Primitive, args: Sequence[Any], dims: Dims, parts: tuple[Any, ...],
                shape: tuple[int, ...], slot: Any) -> tuple[Any, int]:
    """getitem's transpose: g added at the places of each example's x of ``shape``."""
    count = size(args, dims)
    parts, arrays, x_axis, out_axis = index(parts, args[1:], dims[1:], len(shape), count, True,
                                            slot)
    return primitive(move_batch(args[0], dims[0], out_axis, count), *arrays, index=parts,
                     shape=(*shape[:x_axis], count, *shape[x_axis:])), x_axis
