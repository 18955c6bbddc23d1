"""``jit``: trace a function once into a program, plan it, and replay the plan on new arrays.

The first call for a signature (the pytree structure, shapes and dtypes of the arguments, and the
values of static arguments and Python numbers) traces ``f`` with ``program.trace`` — ``grad``,
``value_and_grad`` and ``nn.sgd_update`` inside it record their backward pass and update as
equations too. The plan drops dead equations, computes those that need only constants once,
gives each result a buffer by liveness (written with numpy's ``out=`` and reused from call to
call) and is compiled to one straight-line Python function: a replay runs only the arithmetic,
with no Tensor, no rule dispatch and no dictionary work. Results handed back to the caller are
new arrays each call (or the donated arguments' own arrays), never a buffer a later call reuses.

As in ``jax.jit``: Python side effects in ``f`` (prints, appends) happen at trace time only, and
``f`` must not read its arguments' values in Python (``if x > 0:``, ``float(x)``): that raises
``TracedValueError``; use ``tg.where`` or make the argument static.
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tinygrad_nn.program import CONSTANT, INPUT, Node, Program, is_input_leaf, trace
from tinygrad_nn.pytree import TreeDef, tree_flatten
from tinygrad_nn.tensor import State, Tensor, value

# Results that are views of their first input: no buffer of their own, and that input's buffer
# lives as long as they do. (A reshape or an index that must copy is only more conservative.)
VIEWS = frozenset({"identity", "reshape", "transpose", "broadcast_to", "getitem"})
# Elementwise ops: numpy computes them correctly in place, so the result may take the buffer of
# an input that dies at this step.
IN_PLACE = frozenset({
    "add", "sub", "mul", "div", "pow", "neg", "exp", "log", "sqrt", "abs", "sign", "relu",
    "sigmoid", "tanh", "softplus", "maximum", "minimum", "clip",
})
CACHE_SIZE = 32  # signatures kept per jitted function (least recently used dropped)
BUFFER_SIZE = 128  # elements of numpy's ufunc buffers during a replay (1 KiB of float64)


def jit(f: Callable[..., Any], static_argnums: int | Sequence[int] = (),
        donate_argnums: int | Sequence[int] = ()) -> Jitted:
    """``f`` compiled on first call for each signature and replayed after, as ``jax.jit``.

    ``static_argnums``: arguments passed as they are (hashable; a new value traces again).
    ``donate_argnums``: arguments whose arrays the call may overwrite with its results, so that
    ``params = step(params, X, Y)`` updates in place (do not use a donated array afterwards).
    """
    return Jitted(f, static_argnums, donate_argnums)


class Jitted:
    """A jitted function: call it, or ``lower(*args)`` to see its planned program."""

    def __init__(self, f: Callable[..., Any], static_argnums: int | Sequence[int],
                 donate_argnums: int | Sequence[int]):
        self.f, self.name = f, f"jit({getattr(f, '__name__', 'f')})"
        self.static = _positions(static_argnums)
        self.donate = _positions(donate_argnums)
        self.plans: OrderedDict[Any, Plan] = OrderedDict()
        self.last: Plan | None = None  # the plan used last: its guard is tried first
        functools.update_wrapper(self, f)

    def __call__(self, *args: Any) -> Any:
        if State.program is not None or State.tape is not None:
            return self.f(*args)  # inside a trace or a transform: its ops join the outer ones
        if self.last is not None:
            result = self.last.call(*args)  # its guard checks the signature: no flattening
            if result is not MISS:
                return result
        plan, leaves = self._plan(args)
        if plan is None:  # a Tensor that requires grad: an outer backward() must see the ops
            return self.f(*args)
        self.last = plan
        return plan.replay(*leaves)

    def lower(self, *args: Any) -> Plan:
        """The planned program for these arguments (``print`` it: one line per step)."""
        plan = self._plan(args)[0]
        if plan is None:
            raise TypeError(f"{self.name}.lower: an argument is a Tensor that requires grad; "
                            "pass its array (t.detach()) to see the planned program")
        return plan

    def _plan(self, args: tuple[Any, ...]) -> tuple[Plan | None, list[Any]]:
        signature, leaves, dynamic = self._signature(args)
        if signature is None:
            return None, leaves
        plan = self.plans.get(signature)
        if plan is None:
            def traced(*dynamic_args: Any) -> Any:
                full = list(args)
                for position, arg in zip(dynamic, dynamic_args):
                    full[position] = arg
                return self.f(*full)

            graph = trace(traced, [args[p] for p in dynamic], argnums=(), name=self.name)
            donated = {k for k, p in enumerate(self._leaf_positions(args, dynamic))
                       if p in self.donate}
            plan = Plan(graph, len(leaves), donated, self.name, args, self.static)
            self.plans[signature] = plan
            if len(self.plans) > CACHE_SIZE:
                self.plans.popitem(last=False)
        self.plans.move_to_end(signature)
        return plan, leaves

    def _signature(self, args: tuple[Any, ...]) -> tuple[Any, list[Any], list[int]]:
        """(a hashable key, or None for a Tensor that requires grad; the input arrays in trace
        order; the dynamic argument positions)."""
        dynamic = [p for p in range(len(args)) if p not in self.static]
        key: list[Any] = [len(args)]
        leaves: list[Any] = []
        for position, arg in enumerate(args):
            if position in self.static:
                key.append(("static", _hashable(arg, f"{self.name}: static argument {position}")))
                continue
            flat, treedef = tree_flatten(arg)
            key.append(treedef)
            for leaf in flat:
                if type(leaf) is np.ndarray and leaf.dtype.kind in "biuf":  # the usual: fast
                    leaves.append(leaf)
                    key += (leaf.shape, leaf.dtype)
                elif type(leaf) is Tensor and leaf.requires_grad:
                    return None, leaves, dynamic
                elif is_input_leaf(leaf):
                    array = np.asarray(value(leaf))
                    leaves.append(array)
                    key += (array.shape, array.dtype)
                else:  # a Python number or other constant: part of the program
                    key.append(("const", type(leaf), _hashable(leaf, f"{self.name}: a leaf of "
                                f"argument {position}")))
        return tuple(key), leaves, dynamic

    def _leaf_positions(self, args: tuple[Any, ...], dynamic: list[int]) -> list[int]:
        """The argument position of each input array, in trace order."""
        return [p for p in dynamic for leaf in tree_flatten(args[p])[0] if is_input_leaf(leaf)]


def _positions(argnums: int | Sequence[int]) -> frozenset[int]:
    return frozenset((argnums,) if isinstance(argnums, int) else argnums)


def _hashable(item: Any, what: str) -> Any:
    try:
        hash(item)
    except TypeError:
        raise TypeError(f"{what} is an unhashable {type(item).__name__}: a jitted function's "
                        "static arguments and non-array leaves must be hashable (they key the "
                        "cache); pass arrays as arrays, or a tuple instead of a list") from None
    return item


MISS = object()  # what a plan's guarded ``call`` returns for arguments of another signature


class Plan:
    """A traced program planned for replay: ``replay(*input_arrays)`` returns ``f``'s result;
    ``call(*args)`` first checks that ``args`` have the plan's signature (else ``MISS``).

    ``print(plan)`` lists each step: the equation, and the buffer its result is written into
    (``b3``: reused every call; ``new``: a fresh array each call, handed back to the caller;
    ``x0``: a donated argument's own array; ``view``: no buffer, a view of its input's).
    """

    def __init__(self, graph: Program, n_inputs: int, donated: set[int], name: str,
                 args: tuple[Any, ...], static: frozenset[int]):
        self.graph, self.name, self.out_tree = graph, name, graph.out_tree or TreeDef(None)
        self.n_inputs = n_inputs
        nodes, inputs = graph.nodes, graph.inputs[:n_inputs]
        constants = {n.id: n.value for n in nodes if n.op == CONSTANT or (
            n.op == INPUT and n.id not in inputs)}
        for node in nodes:  # what needs only constants is computed once, now
            if node.is_op and all(i in constants for i in node.inputs):
                constants[node.id] = np.asarray(_impl(node)(*[constants[i] for i in node.inputs],
                                                             **node.params))
        live = set(graph.outputs)
        for node in reversed(nodes):
            if node.id in live and node.is_op and node.id not in constants:
                live.update(node.inputs)
        steps = [n for n in nodes if n.is_op and n.id in live and n.id not in constants]
        self.lines: list[str] = []
        self.buffers: dict[int, str] = {}
        namespace: dict[str, Any] = {"np": np, "MISS": MISS, "ndarray": np.ndarray}
        code = self._compile(steps, inputs, donated, constants, namespace)
        code += _guard(args, static, namespace)
        exec(compile(code, f"<{name}>", "exec"), namespace)  # our own plan's source
        self.replay: Callable[..., Any] = namespace["replay"]
        self.call: Callable[..., Any] = namespace["call"]
        self.source = code

    def _compile(self, steps: list[Node], inputs: list[int], donated: set[int],
                 constants: dict[int, Any], namespace: dict[str, Any]) -> str:
        """The replay function's source: buffers by liveness, one line per step."""
        nodes, outputs = self.graph.nodes, set(self.graph.outputs)
        root = {i: i for i in range(len(nodes))}
        for node in steps:
            if node.op in VIEWS:
                root[node.id] = root[node.inputs[0]]
        last_use: dict[int, float] = {}
        for k, node in enumerate(steps):
            for i in node.inputs:
                last_use[root[i]] = k
        returned = {root[i] for i in outputs}
        for i in returned:
            last_use[i] = math.inf  # handed back: never reused
        names = {i: f"x{k}" for k, i in enumerate(inputs)}
        for i, constant in constants.items():
            names[i] = f"c{i}"
            namespace[f"c{i}"] = constant
        free: dict[tuple[Any, ...], list[str]] = {}
        donors = {inputs[k]: names[inputs[k]] for k in donated}
        body = []
        for k, node in enumerate(steps):
            names[node.id] = f"v{node.id}"
            call = self._call(node, names, namespace)
            kind, buffer, key = "view", "", _key(node)
            dying = [root[i] for i in dict.fromkeys(node.inputs)
                     if last_use.get(root[i]) == k and root[i] not in constants]
            if node.op == "identity":  # the same array under another name
                names[node.id] = names[node.inputs[0]]
            elif node.op == "transpose" and node.params["axes"] == (1, 0):
                body.append(f"    v{node.id} = {names[node.inputs[0]]}.T")
            elif node.op in VIEWS:
                body.append(f"    v{node.id} = {call}")
            elif node.primitive is None or not node.primitive.out:
                kind = "new"
                body.append(f"    v{node.id} = {call}")
            elif node.id in returned:
                donor = next((d for d in dying if d in donors and _key(nodes[d]) == key), None)
                kind, buffer = ("donated " + donors[donor], donors[donor]) if donor is not None \
                    else ("new", f"np.empty({node.shape}, {_dtype_name(node, namespace)})")
                body.append(f"    v{node.id} = {call[:-1]}, out={buffer})")
            else:
                reusable = [d for d in dying if d in self.buffers and key == _key(nodes[d])]
                if node.op in IN_PLACE and reusable:
                    buffer = self.buffers[reusable[0]]
                    dying.remove(reusable[0])
                elif free.get(key):
                    buffer = free[key].pop()
                else:
                    buffer = f"b{len(set(self.buffers.values()))}"
                    namespace[buffer] = np.empty(node.shape, node.dtype)
                self.buffers[node.id], kind = buffer, buffer
                body.append(f"    v{node.id} = {call[:-1]}, out={buffer})")
            for d in dying:  # their buffers are free for later steps
                if d in self.buffers:
                    free.setdefault(_key(nodes[d]), []).append(self.buffers[d])
            arguments = " ".join(names[i] for i in node.inputs)
            self.lines.append(f"{f'v{node.id}'}:{node.type} = {node.label} {arguments}  -> {kind}")
        results = iter(f"{names[i]}.copy()" if i in constants else names[i]
                       for i in self.graph.outputs)
        header = f"def replay({', '.join(names[i] for i in inputs)}):"
        result = _build(self.out_tree, results, namespace)
        # numpy's ufuncs allocate iterator buffers of up to 8192 elements whenever an operand is
        # broadcast (a bias), even with out=: small ones keep a replay free of big allocations
        # (and are no slower); the caller's setting comes back after.
        namespace["setbufsize"] = np.setbufsize
        return "\n".join([header, f"    previous = setbufsize({BUFFER_SIZE})", "    try:",
                          *[f"    {line}" for line in body], f"        return {result}",
                          "    finally:", "        setbufsize(previous)", ""])

    @staticmethod
    def _call(node: Node, names: dict[int, str], namespace: dict[str, Any]) -> str:
        """``impl(arguments, params)`` as source; params as literals where they print as such."""
        impl = f"f_{node.op}"
        namespace.setdefault(impl, _impl(node))
        if namespace[impl] is not _impl(node):  # another primitive of the same name
            impl = f"f{node.id}"
            namespace[impl] = _impl(node)
        parts = [names[i] for i in node.inputs]
        for key, param in node.params.items():
            literal = repr(param)
            if not _is_literal(param):
                literal = f"k{node.id}_{key}"
                namespace[literal] = param
            parts.append(f"{key}={literal}")
        return f"{impl}({', '.join(parts)})"

    def __str__(self) -> str:
        header = " ".join(f"x{k}:{self.graph.nodes[i].type}"
                          for k, i in enumerate(self.graph.inputs[: self.n_inputs]))
        buffers = len(set(self.buffers.values()))
        return "\n".join([f"{self.name}: {len(self.lines)} steps, {buffers} buffers reused every "
                          f"call", f"{{ lambda {header}. let"] + [f"    {line}" for line in
                                                                self.lines] + ["  }"])


def _guard(args: tuple[Any, ...], static: frozenset[int], namespace: dict[str, Any]) -> str:
    """``call(*args)``: check the arguments' structure, shapes, dtypes and constants against the
    ones traced, then replay on their arrays; ``MISS`` if anything differs."""
    checks: list[str] = []
    extracts: list[str] = []

    def visit(tree: Any, expression: str) -> None:
        if is_input_leaf(tree) and not isinstance(tree, Tensor):
            array = np.asarray(tree)
            name = f"x{len(extracts)}"
            namespace[f"d{name}"] = array.dtype
            extracts.append(f"{name} = {expression}")
            checks.append(f"type({name}) is ndarray and {name}.shape == {array.shape!r} and "
                          f"{name}.dtype is d{name}")
        elif isinstance(tree, (dict, list, tuple)):
            checks.append(f"type({expression}) is _t{id(type(tree))} and len({expression}) == "
                          f"{len(tree)}")
            namespace[f"_t{id(type(tree))}"] = type(tree)
            items = tree.items() if isinstance(tree, dict) else enumerate(tree)
            for key, child in items:
                literal = repr(key) if type(key) in (int, str) else f"_k{id(key)}"
                namespace.setdefault(literal, key)
                visit(child, f"{expression}[{literal}]")
        else:  # None, a Python number, a static value: equal, and of the same type
            namespace[f"_c{len(namespace)}"] = tree
            checks.append(f"type({expression}) is type(_c{len(namespace) - 1}) and "
                          f"{expression} == _c{len(namespace) - 1}")

    for position, arg in enumerate(args):
        if position in static:
            namespace[f"_c{len(namespace)}"] = arg
            checks.append(f"a{position} == _c{len(namespace) - 1}")
        else:
            visit(arg, f"a{position}")
    params = ", ".join(f"a{p}" for p in range(len(args)))
    inputs = ", ".join(f"x{k}" for k in range(len(extracts)))
    return "\n".join([
        f"def call({params}):", "    try:", *[f"        {line}" for line in extracts],
        f"        if not ({' and '.join(checks) or 'True'}):", "            return MISS",
        "    except (KeyError, IndexError, TypeError, AttributeError):", "        return MISS",
        f"    return replay({inputs})", ""])


def _build(treedef: TreeDef, leaves: Any, namespace: dict[str, Any]) -> str:
    """Source that builds a pytree of ``treedef``'s structure from the leaves' expressions."""
    node_type = treedef.node_type
    if node_type is None:
        return str(next(leaves))
    children = [_build(child, leaves, namespace) for child in treedef.children]
    if node_type is type(None):
        return "None"
    namespace[f"_t{id(node_type)}"] = node_type
    if issubclass(node_type, dict):
        keys = [f"_k{id(key)}" for key in treedef.keys]
        namespace.update(zip(keys, treedef.keys))
        pairs = ", ".join(f"{key}: {child}" for key, child in zip(keys, children))
        return f"{{{pairs}}}" if node_type is dict else f"_t{id(node_type)}({{{pairs}}})"
    items = ", ".join(children) + ("," if len(children) == 1 else "")
    if node_type in (tuple, list):
        return f"({items})" if node_type is tuple else f"[{items}]"
    if hasattr(node_type, "_fields"):  # a named tuple
        return f"_t{id(node_type)}({items})"
    return f"_t{id(node_type)}([{items}])"


def _impl(node: Node) -> Callable[..., Any]:
    assert node.primitive is not None
    return node.primitive.impl


def _key(node: Node) -> tuple[Any, ...]:
    return (node.shape, node.dtype)


def _dtype_name(node: Node, namespace: dict[str, Any]) -> str:
    name = f"dt_{node.dtype.str.strip('<>|=')}"
    namespace[name] = node.dtype
    return name


def _is_literal(param: Any) -> bool:
    """Numbers, None, bools, strings and tuples of them print as Python that evaluates back."""
    if isinstance(param, tuple):
        return all(_is_literal(part) for part in param)
    if isinstance(param, float):
        return math.isfinite(param)
    return param is None or type(param) in (bool, int, str)


__all__ = ["Jitted", "Plan", "jit"]
