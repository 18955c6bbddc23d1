"""``jit``: trace a function once into a program, plan it, and replay the plan on new arrays.

The first call for a signature (the pytree structure, shapes and dtypes of the arguments, the
types of its Python numbers, and the values of static arguments) traces ``f`` with
``program.trace``: ``grad``, ``value_and_grad`` and the optimizers inside it record their
backward pass and update as equations too. ``Plan`` then makes the program a straight-line
Python function in passes a reader can follow one at a time: ``share_repeats`` (an equation
repeated on the same inputs runs once), ``fold_constants`` (what needs only constants is
computed once), ``drop_dead`` (what no output needs), ``assign_buffers``
(each result a buffer by liveness, written with numpy's ``out=`` and reused from call to call)
and ``generate_source`` (kept as ``plan.source``). A replay runs only the arithmetic, with no
Tensor, no rule dispatch and no dictionary work.

What is traced, what is a constant and what raises, as in ``jax.jit``:

- every array argument (and pytree leaf), and every Python ``int`` or ``float`` argument, is a
  traced input: a new value replays the same plan. A Python number is weakly typed (it does not
  turn float32 into float64). ``bool``, ``None``, strings and ``static_argnums`` /
  ``static_argnames`` arguments are part of the signature: a new value traces again;
- arrays ``f`` closes over are constants, copied when the plan is made: changing them later
  changes nothing (pass them as arguments instead);
- reading a traced value in Python (``if x > 0:``, ``float(x)``, ``np.asarray(x)``, ``x.data``,
  ``range(n)``, a boolean mask ``x[x > 0]``) raises ``TracedValueError``; Python side effects
  (a ``print``) happen at trace time only;
- results handed back are new arrays each call (or the donated arguments' own arrays), never a
  buffer a later call reuses; a donated argument whose arrays another argument also holds is
  refused.
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from tinygrad_nn.program import CONSTANT, INPUT, Node, Program, is_input_leaf, trace
from tinygrad_nn.pytree import TreeDef, tree_flatten
from tinygrad_nn.tensor import CheckError, State, Tensor, TracedValueError

CACHE_SIZE = 32  # signatures kept per jitted function (least recently used dropped)
BUFFER_SIZE = 128  # elements of numpy's ufunc buffers during a replay (1 KiB of float64)


def jit(f: Callable[..., Any], static_argnums: int | Sequence[int] = (),
        donate_argnums: int | Sequence[int] = (), static_argnames: str | Sequence[str] = ()
        ) -> Jitted:
    """``f`` compiled on first call for each signature and replayed after, as ``jax.jit``.

    ``static_argnums`` / ``static_argnames``: arguments passed as they are (hashable; a new
    value traces again). ``donate_argnums``: arguments whose arrays the call may overwrite with
    its results, so that ``params = step(params, X, Y)`` updates in place (do not use a donated
    array afterwards).
    """
    return Jitted(f, static_argnums, donate_argnums, static_argnames)


class Jitted:
    """A jitted function: call it, or ``lower(*args)`` to see its planned program."""

    def __init__(self, f: Callable[..., Any], static_argnums: int | Sequence[int],
                 donate_argnums: int | Sequence[int], static_argnames: str | Sequence[str]):
        self.f, self.name = f, f"jit({getattr(f, '__name__', 'f')})"
        self.static, self.donate = _positions(static_argnums), _positions(donate_argnums)
        self.static_names = frozenset((static_argnames,) if isinstance(static_argnames, str)
                                      else static_argnames)
        self.plans: OrderedDict[Any, Plan] = OrderedDict()
        self.last: Plan | None = None  # the plan used last: its guard is tried first
        functools.update_wrapper(self, f, updated=())  # f's name and doc, not its attributes

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if State.program is not None or State.tape is not None:
            return self.f(*args, **kwargs)  # inside a trace or a transform: its ops join them
        if kwargs:
            args = self._with_keywords(args, kwargs)
        if self.last is not None:
            result = self.last.call(*args)  # its guard checks the signature: no flattening
            if result is not MISS:
                return result
        plan, leaves = self._plan(args)
        if plan is None:  # a Tensor that requires grad: an outer backward() must see the ops
            return self._run(args)
        self.last = plan
        return plan.run(leaves)

    def lower(self, *args: Any, **kwargs: Any) -> Plan:
        """The planned program for these arguments (``print`` it: one line per step;
        ``.source`` is the Python it runs)."""
        plan = self._plan(self._with_keywords(args, kwargs) if kwargs else args)[0]
        if plan is None:
            raise TypeError(f"{self.name}.lower: an argument is a Tensor that requires grad; "
                            "pass its array (t.detach()) to see the planned program")
        return plan

    def _with_keywords(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        """The arguments as one tuple: the positional ones, then the keyword arguments as a dict
        (traced) and the static ones as a tuple of pairs (part of the signature)."""
        dynamic = {k: kwargs[k] for k in sorted(kwargs) if k not in self.static_names}
        static = tuple((k, kwargs[k]) for k in sorted(kwargs) if k in self.static_names)
        return (*args, _Keywords(dynamic), _StaticKeywords(static))

    def _run(self, args: tuple[Any, ...]) -> Any:
        """``f`` on the arguments as ``_with_keywords`` packed them."""
        if args and type(args[-1]) is _StaticKeywords:
            return self.f(*args[:-2], **args[-2], **dict(args[-1]))
        return self.f(*args)

    def _plan(self, args: tuple[Any, ...]) -> tuple[Plan | None, list[Any]]:
        static = self._static_positions(args)
        signature, leaves = self._signature(args, static)
        if signature is None:
            return None, leaves
        plan = self.plans.get(signature)
        if plan is None:
            dynamic = [p for p in range(len(args)) if p not in static]

            def traced(*dynamic_args: Any) -> Any:
                full = list(args)
                for position, arg in zip(dynamic, dynamic_args):
                    full[position] = arg
                return self._run(tuple(full))

            graph = trace(traced, [args[p] for p in dynamic], argnums=(), name=self.name,
                          scalars=True)
            donated = {k for k, p in enumerate(self._leaf_positions(args, dynamic))
                       if p in self.donate}
            plan = Plan(graph, len(leaves), donated, self.name, args, static)
            self.plans[signature] = plan
            if len(self.plans) > CACHE_SIZE:
                self.plans.popitem(last=False)
        self.plans.move_to_end(signature)
        return plan, leaves

    def _static_positions(self, args: tuple[Any, ...]) -> frozenset[int]:
        keywords = args and type(args[-1]) is _StaticKeywords
        return self.static | {len(args) - 1} if keywords else self.static

    def _signature(self, args: tuple[Any, ...], static: frozenset[int]
                   ) -> tuple[Any, list[Any]]:
        """(a hashable key, or None for a Tensor that requires grad; the input leaves in trace
        order)."""
        key: list[Any] = [len(args)]
        leaves: list[Any] = []
        for position, arg in enumerate(args):
            if position in static:
                key.append(("static", _static_key(arg, f"{self.name}: static argument "
                                                       f"{position}")))
                continue
            flat, treedef = tree_flatten(arg)
            key.append(treedef)
            for leaf in flat:
                if type(leaf) is np.ndarray and leaf.dtype.kind in "biuf":  # the usual: fast
                    leaves.append(leaf)
                    key += (leaf.shape, leaf.dtype)
                elif type(leaf) in (int, float) and is_input_leaf(leaf, scalars=True):
                    leaves.append(leaf)  # a traced Python number: its type only
                    key.append(type(leaf))
                elif type(leaf) is Tensor and leaf.requires_grad:
                    return None, leaves
                elif is_input_leaf(leaf):
                    array = np.asarray(leaf._data if type(leaf) is Tensor else leaf)
                    leaves.append(array)
                    key += (array.shape, array.dtype)
                else:  # None, a bool, a string: part of the program
                    key.append(("const", _static_key(leaf, f"{self.name}: a leaf of argument "
                                                           f"{position}")))
        return tuple(key), leaves

    def _leaf_positions(self, args: tuple[Any, ...], dynamic: list[int]) -> list[int]:
        """The argument position of each input leaf, in trace order."""
        return [p for p in dynamic for leaf in tree_flatten(args[p])[0]
                if is_input_leaf(leaf, scalars=True)]


class _Keywords(dict[str, Any]):
    """Keyword arguments, as one traced argument (a dict: its keys are part of the signature)."""


class _StaticKeywords(tuple[tuple[str, Any], ...]):
    """Static keyword arguments, as one static argument: ``((name, value), …)``."""


def _positions(argnums: int | Sequence[int]) -> frozenset[int]:
    return frozenset((argnums,) if isinstance(argnums, int) else argnums)


def _static_key(item: Any, what: str) -> Any:
    """A key equal for equal static values of the same type: ``1``, ``1.0`` and ``True`` differ,
    and so do ``0.0`` and ``-0.0`` (floats, numpy's too, by their repr, which tells them
    apart)."""
    if isinstance(item, (float, np.floating)):
        return type(item), repr(item)
    if type(item) in (tuple, _StaticKeywords):
        return type(item), tuple(_static_key(part, what) for part in item)
    try:
        hash(item)
    except TypeError:
        raise TypeError(f"{what} is an unhashable {type(item).__name__}: a jitted function's "
                        "static arguments and non-array leaves must be hashable (they key the "
                        "cache); pass arrays as arrays, or a tuple instead of a list") from None
    return type(item), item


MISS = object()  # what a plan's guarded ``call`` returns for arguments of another signature


class Plan:
    """A traced program planned for replay: ``run(input_leaves)`` returns ``f``'s result;
    ``call(*args)`` first checks that ``args`` have the plan's signature (else ``MISS``).

    ``print(plan)`` lists each step: the equation, and the buffer its result is written into
    (``b3``: reused every call; ``new``: a fresh array each call, handed back to the caller;
    ``donated W1``: a donated argument's own array; ``alias``: no buffer, it may share its
    inputs' memory). ``plan.source`` is the Python it runs.
    """

    def __init__(self, graph: Program, n_inputs: int, donated: set[int], name: str,
                 args: tuple[Any, ...], static: frozenset[int]):
        self.graph, self.name, self.out_tree = graph, name, graph.out_tree or TreeDef(None)
        self.inputs = graph.inputs[:n_inputs]
        self.donated = [self.inputs[k] for k in sorted(donated)]
        self.namespace: dict[str, Any] = {"np": np, "MISS": MISS, "ndarray": np.ndarray,
                                          "_static_key": _static_key,
                                          "_check_donation": _check_donation}
        self.graph = self.share_repeats()
        self.constants = self.fold_constants()
        self.steps = self.drop_dead()
        self.buffers: dict[int, str] = {}  # node id -> the buffer (or expression) it is written to
        self.lines: list[str] = []
        self.assign_buffers()
        donation = [self.inputs.index(i) for i in self.donated]
        self.source = self.generate_source() + _guard(args, static, self.namespace, donation,
                                                      name)
        exec(compile(self.source, f"<{name}>", "exec"), self.namespace)  # our own plan's source
        self.replay: Callable[..., Any] = self.namespace["replay"]
        self.call: Callable[..., Any] = self.namespace["call"]

    def run(self, leaves: list[Any]) -> Any:
        """The replay on the input leaves (in trace order), donated ones checked first."""
        if self.donated:
            _check_donation(leaves, [self.inputs.index(i) for i in self.donated], self.name)
        return self.replay(*leaves)


    # --- pass 0: repeats ------------------------------------------------------------------------
    def share_repeats(self) -> Program:
        """The program with each repeated equation (the same primitive on the same inputs with
        the same params: a learning rate negated once per parameter) computed once; its later
        copies are left for ``drop_dead``. Primitives are pure functions of their inputs."""
        seen: dict[Any, int] = {}
        same: dict[int, int] = {}  # a repeat's id -> the first copy's
        nodes = list(self.graph.nodes)
        for node in self.graph.ops:
            inputs = tuple(same.get(i, i) for i in node.inputs)
            if inputs != node.inputs:
                nodes[node.id] = node = replace(node, inputs=inputs)
            try:
                params = tuple((k, _static_key(v, "")) for k, v in node.params.items())
                first = seen.setdefault((node.primitive, inputs, params), node.id)
            except TypeError:  # an unhashable param (an array): not compared
                continue
            if first != node.id:
                same[node.id] = first
        if not same:
            return self.graph
        outputs = [same.get(i, i) for i in self.graph.outputs]
        return Program(nodes, self.graph.inputs, outputs, self.graph.output_names,
                       self.graph.value, self.graph.out_tree)

    # --- pass 1: constants ----------------------------------------------------------------------
    def fold_constants(self) -> dict[int, Any]:
        """{node id: value} of every value that needs no input: constants (copied now: a closed
        over array is captured as it is at trace time), and equations of constants only,
        computed once here."""
        inputs = set(self.inputs)
        constants = {n.id: np.array(n.value) if isinstance(n.value, np.ndarray) else n.value
                     for n in self.graph.nodes
                     if n.op == CONSTANT or (n.op == INPUT and n.id not in inputs)}
        for node in self.graph.ops:
            if all(i in constants for i in node.inputs):
                value = np.asarray(_impl(node)(*[constants[i] for i in node.inputs],
                                               **node.params))
                constants[node.id] = value.item() if node.weak else value
        return constants

    # --- pass 2: dead code ----------------------------------------------------------------------
    def drop_dead(self) -> list[Node]:
        """The equations to run: those the outputs need, constants left out."""
        needed = self.graph.needed(stop=self.constants.keys())
        return [n for n in self.graph.ops if n.id in needed and n.id not in self.constants]

    # --- pass 3: buffers ------------------------------------------------------------------------
    def assign_buffers(self) -> None:
        """Give each step's result its memory: a reused buffer (``b0``, …; in place of an
        elementwise step's input when that input dies there), a new array (a result handed
        back), a donated argument's array, or none (a step that may return its inputs' memory,
        ``fresh`` False: a view such as ``reshape``, or a user's primitive). A buffer is free
        again once the last value that may share it has been used."""
        nodes, steps = self.graph.nodes, self.steps
        owners = self.owners = {i: frozenset({i}) for i in range(len(nodes))}
        for node in steps:  # whose memory each value may share
            if not node.primitive.fresh:  # type: ignore[union-attr]
                owners[node.id] = frozenset().union(*(owners[i] for i in node.inputs))
        last_use: dict[int, float] = {}
        for k, node in enumerate(steps):
            for i in node.inputs:
                last_use.update(dict.fromkeys(owners[i], k))
        returned = frozenset().union(*(owners[i] for i in self.graph.outputs))
        last_use.update(dict.fromkeys(returned, math.inf))  # handed back: never reused
        donors = {i: nodes[i].name for i in self.donated}
        free: dict[tuple[Any, ...], list[str]] = {}
        for k, node in enumerate(steps):
            dying = list(dict.fromkeys(owner for i in node.inputs for owner in owners[i]
                                       if last_use.get(owner) == k))
            if node.weak or (node.primitive.fresh and not node.primitive.out):  # type: ignore
                kind = "new"  # a Python number, or a step that cannot write into a buffer
            elif not node.primitive.fresh:  # type: ignore[union-attr]
                kind = "alias"
            elif node.id in returned:
                kind = self._give_back(node, dying, donors)
            else:
                kind = self._reuse(node, dying, free)
            for d in dying:  # their buffers are free for later steps
                if self.buffers.get(d, "").startswith("b"):
                    free.setdefault(_key(nodes[d]), []).append(self.buffers[d])
            self.lines.append(f"{self.graph.line(node)}  -> {kind}")

    def _give_back(self, node: Node, dying: list[int], donors: dict[int, str]) -> str:
        """Memory for a result handed back: a donated argument's array that dies here (an
        elementwise step may write into its own input), else a new array each call."""
        donor = next((d for d in dying if d in donors and _key(self.graph.nodes[d]) == _key(node)
                      and node.primitive.elementwise), None)  # type: ignore[union-attr]
        if donor is None:
            self.buffers[node.id] = "new"
            return "new"
        self.buffers[node.id] = f"x{self.inputs.index(donor)}"
        return f"donated {donors[donor]}"

    def _reuse(self, node: Node, dying: list[int], free: dict[Any, list[str]]) -> str:
        """A buffer reused every call: the buffer of an input that dies here (elementwise steps:
        numpy computes them in place), a free one of the same shape and dtype, or a new one."""
        key = _key(node)
        in_place = [d for d in dying if d in node.inputs and _key(self.graph.nodes[d]) == key
                    and self.buffers.get(d, "").startswith("b")]
        if node.primitive.elementwise and in_place:  # type: ignore[union-attr]
            buffer = self.buffers[in_place[0]]
            dying.remove(in_place[0])
        elif free.get(key):
            buffer = free[key].pop()
        else:
            buffer = f"b{len({b for b in self.buffers.values() if b.startswith('b')})}"
            self.namespace[buffer] = np.empty(node.shape, node.dtype)
        self.buffers[node.id] = buffer
        return buffer

    # --- pass 4: the replay's source ------------------------------------------------------------
    def generate_source(self) -> str:
        """``def replay(x0, x1, …)``: one line per step, then the result in ``f``'s structure."""
        names = {i: f"x{k}" for k, i in enumerate(self.inputs)}
        for i, constant in self.constants.items():
            names[i] = f"c{i}"
            self.namespace[f"c{i}"] = constant
        body = []
        for node in self.steps:
            names[node.id] = f"v{node.id}"
            call = self._call(node, names)
            buffer = self.buffers.get(node.id)
            if buffer == "new":
                buffer = f"np.empty({node.shape}, {_dtype_name(node, self.namespace)})"
            if node.weak and node.dtype.kind == "f":  # a Python number again, so that it
                body.append(f"v{node.id} = float({call})")  # promotes as one
            elif node.weak:  # an int checked for overflow (``on_numbers``), a complex
                body.append(f"v{node.id} = np.asarray({call}).item()")
            elif buffer is None:
                body.append(f"v{node.id} = {call}")
            else:
                body.append(f"v{node.id} = {call[:-1]}, out={buffer})")
        results = iter(self._result(i, names) for i in self.graph.outputs)
        header = f"def replay({', '.join(names[i] for i in self.inputs)}):"
        result = _build(self.out_tree, results, self.namespace)
        # numpy's ufuncs allocate iterator buffers of up to 8192 elements whenever an operand is
        # broadcast (a bias), even with out=: small ones keep a replay free of big allocations
        # (and are no slower); the caller's setting comes back after.
        self.namespace["setbufsize"] = np.setbufsize
        # a step's numpy error is raised as the eager call raises it (the op, its explanation)
        self.namespace["_failure"], self.namespace["_steps"] = _failure, [
            (node.primitive, [self.graph.nodes[i].shape for i in node.inputs], node.params)
            for node in self.steps]
        return "\n".join([header, f"    previous = setbufsize({BUFFER_SIZE})", "    try:",
                          *[f"        {line}" for line in body], f"        return {result}",
                          "    except (ValueError, IndexError, TypeError) as error:",
                          f"        raise _failure(error, _steps, {FIRST_STEP_LINE}) from None",
                          "    finally:", "        setbufsize(previous)", ""])

    def _result(self, i: int, names: dict[int, str]) -> str:
        """An output as the caller gets it: an array; a copy where it may share a constant's
        memory (the plan's own, kept for later calls)."""
        if self.owners.get(i, frozenset({i})) & self.constants.keys():
            return f"np.array({names[i]})"
        node = self.graph.nodes[i]  # a step without out= may give a numpy scalar
        scalar = node.weak or (node.primitive is not None and not node.primitive.out)
        return f"np.asarray({names[i]})" if scalar else names[i]

    def _call(self, node: Node, names: dict[int, str]) -> str:
        """``impl(arguments, params)`` as source; params as literals where they print as such."""
        checked = node.weak and node.dtype.kind != "f"
        function = node.primitive.on_numbers if checked else _impl(node)  # type: ignore
        impl = f"f_{node.op}_on_numbers" if checked else f"f_{node.op}"
        self.namespace.setdefault(impl, function)
        if self.namespace[impl] != function:  # another primitive of the same name
            impl = f"f{node.id}"
            self.namespace[impl] = function
        parts = [names[i] for i in node.inputs]
        for key, param in node.params.items():
            literal = repr(param)
            if not _is_literal(param):
                literal = f"k{node.id}_{key}"
                self.namespace[literal] = param
            parts.append(f"{key}={literal}")
        return f"{impl}({', '.join(parts)})"

    def __str__(self) -> str:
        inputs = " ".join(f"{self.graph.nodes[i].name}:{self.graph.nodes[i].type}"
                          for i in self.inputs)
        outputs = ", ".join(self.graph.nodes[i].name for i in self.graph.outputs)
        buffers = len({b for b in self.buffers.values() if b.startswith("b")})
        return "\n".join([f"{self.name}: {len(self.lines)} steps, {buffers} buffers reused every "
                          f"call", f"{{ lambda {inputs}. let"] + [f"    {line}" for line in
                                                                self.lines] +
                         [f"  in ({outputs}) }}"])


def _check_donation(leaves: list[Any], donated: list[int], name: str) -> None:
    """Refuse a donated array that another input leaf also holds (or a view of it): the call
    would overwrite that argument's numbers too."""
    def base(array: Any) -> int:
        return id(array.base if isinstance(array, np.ndarray) and array.base is not None
                  else array)

    owners = [base(leaf) for leaf in leaves]
    for k in donated:
        if owners.count(owners[k]) > 1:
            raise ValueError(f"{name}: a donated array is also another argument (or part of "
                             "one): the call would overwrite it. Pass a copy (e.g. "
                             "{k: v.copy() for k, v in params.items()}), or do not donate")


def _guard(args: tuple[Any, ...], static: frozenset[int], namespace: dict[str, Any],
           donated: list[int], name: str) -> str:
    """``call(*args)``: check the arguments' number, structure (dict keys in order), shapes,
    dtypes, number types and static values against the ones traced, then replay on their
    leaves; ``MISS`` if anything differs."""
    guard = _Guard(namespace)
    for position, arg in enumerate(args):
        if position in static:
            guard.checks.append(f"_static_key(a{position}, '') == "
                                f"{guard.constant(_static_key(arg, ''))}")
        else:
            guard.visit(arg, f"a{position}")
    inputs = ", ".join(guard.leaves)
    # the full check only when two arrays share an owner (rare): a set of ids costs little
    owners = ", ".join(f"id({x} if {x}.base is None else {x}.base)" for x in guard.arrays)
    check = [f"    if len({{{owners}}}) != {len(guard.arrays)}:",
             f"        _check_donation([{inputs}], {donated!r}, {name!r})"] if donated else []
    unpack = "".join(f"a{position}, " for position in range(len(args)))
    return "\n".join([
        "def call(*a):", "    try:", f"        ({unpack}) = a",
        *[f"        {line}" for line in guard.extracts],
        f"        if not ({' and '.join(guard.checks) or 'True'}):", "            return MISS",
        "    except (KeyError, IndexError, TypeError, AttributeError, ValueError):",
        "        return MISS",
        *check, f"    return replay({inputs})", ""])


class _Guard:
    """The checks and the leaf extractions of a guard, made by walking the traced arguments."""

    def __init__(self, namespace: dict[str, Any]):
        self.namespace, self.checks, self.extracts = namespace, list[str](), list[str]()
        self.leaves, self.arrays = list[str](), list[str]()  # the extracted leaves' names; arrays

    def constant(self, item: Any) -> str:
        name = f"_c{len(self.namespace)}"
        self.namespace[name] = item
        return name

    def visit(self, tree: Any, expression: str) -> None:
        name = f"x{len(self.leaves)}"
        if type(tree) in (int, float) and is_input_leaf(tree, scalars=True):
            self.leaves.append(name)
            self.extracts.append(f"{name} = {expression}")  # a traced Python number: its type
            self.checks.append(f"type({name}) is float" if type(tree) is float else
                               f"type({name}) is int and {-(2**63)} <= {name} < {2**63}")
        elif is_input_leaf(tree, scalars=True):  # an array (a Tensor's, or a numpy number)
            array = np.asarray(tree._data if isinstance(tree, Tensor) else tree)
            self.namespace[f"d{name}"] = array.dtype
            self.leaves.append(name)
            self.arrays.append(name)  # an array as it is (a Tensor, a numpy number: MISS here,
            self.extracts.append(f"{name} = {expression}")  # then the signature's slower way)
            self.checks.append(f"type({name}) is ndarray and {name}.shape == {array.shape!r} "
                               f"and {name}.dtype is d{name}")
        elif isinstance(tree, (dict, list, tuple)):
            self.checks.append(f"type({expression}) is {self.constant(type(tree))}")
            self.checks.append(f"tuple({expression}) == {self.constant(tuple(tree))}"
                               if isinstance(tree, dict) else f"len({expression}) == {len(tree)}")
            if isinstance(tree, defaultdict):
                self.checks.append(f"{expression}.default_factory is "
                                   f"{self.constant(tree.default_factory)}")
            for key, child in tree.items() if isinstance(tree, dict) else enumerate(tree):
                literal = repr(key) if type(key) in (int, str) else self.constant(key)
                self.visit(child, f"{expression}[{literal}]")
        else:  # None, a bool, a string: the same, of the same type
            self.checks.append(f"_static_key({expression}, '') == "
                               f"{self.constant(_static_key(tree, ''))}")


FIRST_STEP_LINE = 4  # the replay's source: its header, the buffer size, `try:`, then a line a step


def _failure(error: Exception, steps: list[Any], first_line: int) -> Exception:
    """The error an eager call raises for numpy's ``error`` at the replay's step whose line it
    came from: the op's name and explanation (another error as it is)."""
    trace, line = error.__traceback__, None
    while trace is not None:  # the innermost frame of the generated replay
        if trace.tb_frame.f_code.co_filename.startswith("<jit"):
            line = trace.tb_lineno
        trace = trace.tb_next
    if line is None or not 0 <= line - first_line < len(steps) or isinstance(
            error, (CheckError, TracedValueError)):
        return error
    primitive, shapes, params = steps[line - first_line]
    return primitive.failure(error, shapes, params)


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
        if issubclass(node_type, defaultdict):
            namespace[f"_f{id(treedef)}"] = treedef.factory
            return f"_t{id(node_type)}(_f{id(treedef)}, {{{pairs}}})"
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
