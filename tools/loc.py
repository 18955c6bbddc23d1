"""Code lines per module of the tinygrad_nn package, the engine core's total, and import circles.

    python tools/loc.py [PACKAGE_DIR]      # default: the tinygrad_nn/ beside this tools/

A code line holds something other than a comment, a docstring or layout: blank lines, comment
lines and docstring lines do not count. An import counts wherever it is written (inside a
function too), as the package's modules import one another. The exit status is 1 when the
modules import one another in a circle, else 0.
"""

from __future__ import annotations

import argparse
import ast
import io
import sys
import tokenize
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path

DEFAULT_PACKAGE = Path(__file__).resolve().parents[1] / "tinygrad_nn"
CORE = ("tensor", "ops", "autodiff", "functional", "pytree", "gradcheck")
NOT_CODE = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENCODING, tokenize.ENDMARKER}
Span = tuple[tuple[int, int], tuple[int, int]]  # (start, end) as (line, column)


# --------------------------------------------------------------------------- code lines


def docstring_spans(tree: ast.Module) -> list[Span]:
    """Where each module, class and function docstring is written."""
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                end = (first.end_lineno or first.lineno, first.end_col_offset or 0)
                spans.append(((first.lineno, first.col_offset), end))
    return spans


def code_lines(source: str) -> int:
    """How many lines of ``source`` hold code: not blank, not only comments or docstrings."""
    docstrings = docstring_spans(ast.parse(source))
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in NOT_CODE or any(start <= token.start and token.end <= end
                                         for start, end in docstrings):
            continue
        lines.update(range(token.start[0], token.end[0] + 1))  # a string may span lines
    return len(lines)


# --------------------------------------------------------------------------- imports


def module_name(path: Path, package_dir: Path) -> str:
    """The module's dotted name: ``tinygrad_nn.ops``; ``tinygrad_nn.nn`` for nn/__init__.py."""
    parts = (package_dir.name, *path.relative_to(package_dir).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.Module, here: str, is_package: bool, known: set[str]) -> set[str]:
    """The ``known`` modules that module ``here`` imports, anywhere in it: ``from m import x``
    imports the module m.x if there is one, else m (for its name x)."""
    package = here if is_package else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = absolute(node, package)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.update({submodule} if submodule in known else {base} & known)
    return found - {here}


def absolute(node: ast.ImportFrom, package: str) -> str:
    """The absolute name of the module ``from … import`` reads from."""
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    anchor = parts[: len(parts) - (node.level - 1)]  # one package up per extra dot
    return ".".join([*anchor, node.module] if node.module else anchor)


def import_graph(package_dir: Path, files: Iterable[Path]) -> dict[str, set[str]]:
    """{module: the package's modules it imports}, by dotted names."""
    paths = {module_name(path, package_dir): path for path in files}
    return {module: imported_modules(ast.parse(path.read_text(encoding="utf-8")), module,
                                     path.name == "__init__.py", set(paths))
            for module, path in paths.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest circle through each set of modules that import one another in a circle."""
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for start in sorted(graph):
        path = shortest_path_back(graph, start)
        if path is not None and frozenset(path) not in seen:
            seen.add(frozenset(path))
            found.append(path)
    return found


def shortest_path_back(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """``[start, …, start]`` along imports (breadth first), or None."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        for target in sorted(graph.get(current, ())):
            if target == start:
                path = [current]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if target not in came_from:
                came_from[target] = current
                queue.append(target)
    return None


# --------------------------------------------------------------------------- report


def report(package_dir: Path) -> tuple[list[str], bool]:
    """The printed lines, and whether an import circle was found."""
    files = sorted(package_dir.rglob("*.py"))
    counts = {path: code_lines(path.read_text(encoding="utf-8")) for path in files}
    core = {f"{package_dir.name}.{name}" for name in CORE}
    lines = []
    for path, count in counts.items():
        mark = "  (core)" if module_name(path, package_dir) in core else ""
        lines.append(f"{count:6d}  {path.relative_to(package_dir).as_posix()}{mark}")
    core_total = sum(count for path, count in counts.items()
                     if module_name(path, package_dir) in core)
    lines.append(f"{core_total:6d}  core: {', '.join(CORE)}")
    lines.append(f"{sum(counts.values()):6d}  all modules")
    found = circles(import_graph(package_dir, files))
    lines += [f"import circle: {' -> '.join(circle)}" for circle in found] or ["no import circle"]
    return lines, bool(found)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package", nargs="?", type=Path, default=DEFAULT_PACKAGE,
                        help="the package's directory (default: %(default)s)")
    args = parser.parse_args(argv)
    if not (args.package / "__init__.py").is_file():
        parser.error(f"{args.package} is not a package directory (no __init__.py)")
    lines, circled = report(args.package)
    print("\n".join(lines))
    return 1 if circled else 0


if __name__ == "__main__":
    sys.exit(main())
