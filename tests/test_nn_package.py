"""tinygrad_nn.nn as a package of one job a module: every name it had as one module is still
there, DataError lives in data.py, and no import goes round in a circle."""

import ast
from pathlib import Path

import tinygrad_nn as tg
from tinygrad_nn import data, nn

PACKAGE = Path(tg.__file__).resolve().parent

# nn.__all__ when nn was one module (nn.py, before the split): users import these.
NAMES_OF_NN_PY = [
    "ACTIVATIONS", "INIT_SCHEMES", "DataError", "accuracy", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "check_shapes", "dropout", "forward", "init_params",
    "l2_penalty", "layer_dims", "legacy_stream", "linear", "load_params", "log_softmax", "logits",
    "mini_batches", "model_cost", "one_hot", "predict", "save_params", "sgd_update", "softmax",
    "softmax_cross_entropy", "std", "train", "var",
]


def test_every_name_of_nn_py_is_still_in_nn() -> None:
    assert set(NAMES_OF_NN_PY) <= set(nn.__all__)
    for name in nn.__all__:
        assert getattr(nn, name) is not None, name
    assert nn.Scheme is not None and nn.Params is not None  # the types, for annotations


def test_data_error_lives_in_data_and_nn_re_exports_it() -> None:
    assert nn.DataError is data.DataError
    assert issubclass(data.DataError, ValueError)


def module_imports(path: Path) -> set[str]:
    """The package's modules that the file imports anywhere, inside functions too: ``nn.model``
    for the package's nn/model.py, ``optim`` for optim.py, ``nn`` for the nn package itself."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tinygrad_nn"):
            module = node.module or ""
            names = ([f"{module}.{alias.name}" for alias in node.names] if module == "tinygrad_nn"
                     else [module])
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names if alias.name.startswith("tinygrad_nn.")]
        found |= {name.removeprefix("tinygrad_nn.") for name in names}
    return found


def modules() -> dict[str, Path]:
    found = {p.stem: p for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    found |= {f"nn.{p.stem}": p for p in (PACKAGE / "nn").glob("*.py") if p.stem != "__init__"}
    found["nn"] = PACKAGE / "nn" / "__init__.py"
    return found


def test_data_imports_nothing_from_nn() -> None:
    assert not {m for m in module_imports(PACKAGE / "data.py") if m.split(".")[0] == "nn"}


def test_no_import_circle_through_the_nn_package() -> None:
    every = modules()
    edges = {name: {m for m in module_imports(path) if m in every} for name, path in every.items()}
    for name in edges["nn"]:  # the package imports each of its modules, which never import it
        assert name == "data" or name.startswith("nn."), name
    for start in every:  # depth-first: no path leads back to where it started
        stack, seen = [(start, [start])], set()
        while stack:
            current, path = stack.pop()
            for nxt in edges[current]:
                assert nxt != start, f"import circle: {' -> '.join([*path, nxt])}"
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
