"""Forward mode and whole Jacobians, as JAX's: ``jvp``, ``linearize``, ``jacfwd``, ``jacrev``
(``jacobian``) and ``hessian``, over pytrees, built on ``vjp`` and ``vmap``.

Forward mode is reverse mode transposed, with no forward rule per primitive: the VJP
u ↦ Jᵀu is linear in the cotangent u, so its own VJP sends a tangent t to (Jᵀ)ᵀt = J·t. A
Jacobian is ``vmap`` of the VJP over the rows of an identity (``jacrev``: one backward pass per
output element, batched), or of the JVP over its columns (``jacfwd``: one per input element).
On numpy arguments the results are numpy arrays; inside a transform or a traced program,
recorded Tensors.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from tinygrad_nn import ops
from tinygrad_nn.functional import check_argnums, vjp
from tinygrad_nn.pytree import TreeDef, tree_flatten, tree_unflatten
from tinygrad_nn.tensor import dtype_of, shape_of
from tinygrad_nn.vmap import vmap

Argnums = int | Sequence[int]


class _Layout(NamedTuple):
    """Where each leaf of a pytree of arrays lies in one flat vector."""

    tree: TreeDef
    shapes: list[tuple[int, ...]]
    dtypes: list[np.dtype[Any]]
    starts: list[int]  # one more than leaves: the last is the vector's length

    @staticmethod
    def of(leaves: list[Any], tree: TreeDef) -> _Layout:
        shapes = [shape_of(x) for x in leaves]
        starts = np.cumsum([0] + [int(np.prod(s)) for s in shapes]).tolist()
        return _Layout(tree, shapes, [dtype_of(x) for x in leaves], starts)

    def unravel(self, vector: Any) -> Any:
        """The pytree again from a flat vector (numpy, or a recorded Tensor)."""
        leaves = []
        for shape, dtype, start, stop in zip(self.shapes, self.dtypes, self.starts,
                                             self.starts[1:]):
            leaf = vector[start:stop].reshape(shape)
            leaves.append(leaf if dtype_of(leaf) == dtype else leaf.astype(dtype))
        return tree_unflatten(self.tree, leaves)


def _ravel(leaves: list[Any], caller: str) -> Any:
    """The leaves as one flat vector (a Tensor: recorded when a leaf is)."""
    if not leaves:
        raise ValueError(f"{caller}: the function returned no arrays")
    return ops.concatenate([ops.reshape(x, -1) for x in leaves])


def _float(dtype: np.dtype[Any]) -> np.dtype[Any]:
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def _flat(f: Callable[..., Any], has_aux: bool, layouts: list[_Layout],
          caller: str) -> Callable[..., Any]:
    """``f`` with its output as one flat vector (``(vector, aux)`` with has_aux); the output's
    layout is appended to ``layouts`` at each call."""

    def flat_f(*args: Any) -> Any:
        result = f(*args)
        if has_aux and not (isinstance(result, tuple) and len(result) == 2):
            raise TypeError(f"{caller}: with has_aux=True the function must return (output, "
                            f"aux); it returned {type(result).__name__}")
        out, aux = result if has_aux else (result, None)
        leaves, tree = tree_flatten(out)
        layouts.append(_Layout.of(leaves, tree))
        return (_ravel(leaves, caller), aux) if has_aux else _ravel(leaves, caller)

    return flat_f


def linearize(f: Callable[..., Any], *primals: Any, has_aux: bool = False) -> Any:
    """``(f(*primals), f_jvp)`` (and ``aux``), as ``jax.linearize``: ``f_jvp(*tangents)`` gives
    J·tangents at the primals (tangents of the primals' structures and shapes). ``f`` runs
    once; each ``f_jvp`` call runs its backward pass recorded, then the transpose of that."""
    layouts: list[_Layout] = []
    value, pull, *aux = vjp(_flat(f, has_aux, layouts, "linearize"), *primals, has_aux=has_aux)
    primal_leaves, primal_tree = tree_flatten(primals)

    def f_jvp(*tangents: Any) -> Any:
        leaves, tree = tree_flatten(tangents)
        shapes = [shape_of(x) for x in leaves]
        if tree != primal_tree or shapes != [shape_of(x) for x in primal_leaves]:
            raise ValueError(f"jvp: the tangents must have the primals' structure and shapes: "
                             f"got {tree} with shapes {shapes}, expected {primal_tree} with "
                             f"shapes {[shape_of(x) for x in primal_leaves]}")
        u = np.zeros(shape_of(value), _float(dtype_of(value)))  # any u: pull is linear in it
        _, push = vjp(lambda u: _ravel(tree_flatten(pull(u))[0], "jvp"), u)
        return layouts[0].unravel(push(_ravel(leaves, "jvp"))[0])

    out = layouts[0].unravel(value)
    return (out, f_jvp, aux[0]) if has_aux else (out, f_jvp)


def jvp(f: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any],
        has_aux: bool = False) -> Any:
    """``(f(*primals), J·tangents)`` (and ``aux``), as ``jax.jvp``: forward mode, built from
    reverse mode by the linear-transpose trick (the VJP of the VJP), not from forward rules.
    ``primals`` and ``tangents`` are tuples of pytrees of the same structures and shapes."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError(f"jvp: primals and tangents must be tuples (one entry per argument), "
                        f"got {type(primals).__name__} and {type(tangents).__name__}")
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    out, f_jvp, *aux = linearize(f, *primals, has_aux=has_aux)
    return (out, f_jvp(*tangents), *aux)


def _chosen(f: Callable[..., Any], args: tuple[Any, ...], argnums: Argnums,
            caller: str) -> tuple[tuple[Any, ...], Callable[..., Any]]:
    """(the arguments ``argnums`` picks, ``f`` as a function of those alone)."""
    positions = check_argnums(argnums, len(args), caller)

    def of_chosen(*chosen: Any) -> Any:
        full = list(args)
        for position, x in zip(positions, chosen):
            full[position] = x
        return f(*full)

    return tuple(args[p] for p in positions), of_chosen


def _assemble(out_tree: TreeDef, out_shapes: list[tuple[int, ...]], chosen: tuple[Any, ...],
              argnums: Argnums, block: Callable[[int, int, tuple[int, ...]], Any]) -> Any:
    """The Jacobian: for output leaf i (shape S) and input leaf j (shape T), ``block(i, j,
    S + T)``, in the output's structure of the input's (a tuple of them for many argnums)."""
    in_leaves, in_tree = tree_flatten(chosen[0] if isinstance(argnums, int) else chosen)
    return tree_unflatten(out_tree, [tree_unflatten(in_tree, [
        block(i, j, (*shape, *shape_of(x))) for j, x in enumerate(in_leaves)])
        for i, shape in enumerate(out_shapes)])


def jacrev(f: Callable[..., Any], argnums: Argnums = 0, has_aux: bool = False
           ) -> Callable[..., Any]:
    """``jacrev(f)(*args)``: the Jacobian of ``f`` at ``args`` with respect to
    ``args[argnums]``, by reverse mode (``vmap`` of the VJP over the output's elements), as
    ``jax.jacrev``: for each output leaf of shape S and input leaf of shape T an array of shape
    S + T, in the output's structure of the input's structure (a tuple of them for a sequence
    of argnums). With has_aux, ``(jacobian, aux)``."""

    @functools.wraps(f, updated=())
    def jacrev_f(*args: Any) -> Any:
        chosen, of_chosen = _chosen(f, args, argnums, "jacrev")
        layouts: list[_Layout] = []
        value, pull, *aux = vjp(_flat(of_chosen, has_aux, layouts, "jacrev"), *chosen,
                                has_aux=has_aux)
        rows = tree_flatten(vmap(pull)(np.eye(shape_of(value)[0], dtype=_float(
            dtype_of(value)))))[0]  # input leaf j: (output elements, *T_j)
        out = layouts[0]
        jacobian = _assemble(out.tree, out.shapes, chosen, argnums, lambda i, j, shape: rows[j][
            out.starts[i]:out.starts[i + 1]].reshape(shape))
        return (jacobian, aux[0]) if has_aux else jacobian

    return jacrev_f


jacobian = jacrev


def jacfwd(f: Callable[..., Any], argnums: Argnums = 0, has_aux: bool = False
           ) -> Callable[..., Any]:
    """``jacfwd(f)(*args)``: the same Jacobian as ``jacrev``, by forward mode (``vmap`` of the
    JVP over the input's elements): the cheaper one when inputs are fewer than outputs."""

    @functools.wraps(f, updated=())
    def jacfwd_f(*args: Any) -> Any:
        chosen, of_chosen = _chosen(f, args, argnums, "jacfwd")
        leaves, tree = tree_flatten(chosen)
        inputs = _Layout.of(leaves, tree)
        count = inputs.starts[-1]
        eye = np.eye(count, dtype=np.result_type(*map(_float, inputs.dtypes)))
        basis = [eye[:, start:stop].reshape(count, *shape) for shape, start, stop in zip(
            inputs.shapes, inputs.starts, inputs.starts[1:])]  # the tangents, one per row

        def push(*tangents: Any) -> Any:
            _, tangent, *aux = jvp(of_chosen, chosen, tree_unflatten(tree, list(tangents)),
                                   has_aux=has_aux)
            return (tangent, aux[0]) if has_aux else tangent

        pushed = vmap(push, out_axes=(-1, None) if has_aux else -1)(*basis)
        columns, out_tree = tree_flatten(pushed[0] if has_aux else pushed)
        shapes = [shape_of(c)[:-1] for c in columns]  # output leaf i: (*S_i, count)
        jacobian = _assemble(out_tree, shapes, chosen, argnums, lambda i, j, shape: columns[i][
            ..., inputs.starts[j]:inputs.starts[j + 1]].reshape(shape))
        return (jacobian, pushed[1]) if has_aux else jacobian

    return jacfwd_f


def hessian(f: Callable[..., Any], argnums: Argnums = 0, has_aux: bool = False
            ) -> Callable[..., Any]:
    """The Hessian of scalar ``f``: ``jacfwd(jacrev(f))``, as ``jax.hessian``; for input leaves
    of shapes T and U, a block of shape T + U."""
    return jacfwd(jacrev(f, argnums, has_aux), argnums, has_aux)


__all__ = ["hessian", "jacfwd", "jacobian", "jacrev", "jvp", "linearize"]
