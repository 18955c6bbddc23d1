"""tools/loc.py: code lines per module (no blank, comment or docstring lines) and import circles."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOC = ROOT / "tools" / "loc.py"


@pytest.fixture(scope="module")
def loc() -> ModuleType:
    spec = importlib.util.spec_from_file_location("loc", LOC)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, source in {"__init__.py": "", **files}.items():
        (root / "pkg" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "pkg" / name).write_text(textwrap.dedent(source))
    return root / "pkg"


def test_the_script_counts_every_module_of_the_package_and_the_core() -> None:
    done = subprocess.run([sys.executable, str(LOC)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[1]: int(line.split()[0]) for line in done.stdout.splitlines()
            if line.strip().endswith(".py") or line.strip().endswith("(core)")}
    modules = {path.relative_to(ROOT / "tinygrad_nn").as_posix()
               for path in (ROOT / "tinygrad_nn").rglob("*.py")}
    assert set(rows) == modules
    core = ["tensor", "ops", "autodiff", "functional", "pytree", "gradcheck"]
    assert f"{sum(rows[f'{name}.py'] for name in core):6d}  core: {', '.join(core)}" in (
        done.stdout)
    assert done.stdout.rstrip().endswith("no import circle")


def test_blank_comment_and_docstring_lines_are_not_code(loc: ModuleType) -> None:
    source = '''\
        """The module's docstring,
        on two lines."""

        # a comment
        import os  # a comment after code


        class A:
            """A class docstring."""

            def f(self) -> str:
                """A function
                docstring."""
                return """a string that is
        no docstring"""
        '''
    assert loc.code_lines(textwrap.dedent(source)) == 5  # import, class, def, return + its string


def test_an_import_circle_is_found_through_imports_inside_functions(
    loc: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = write_package(tmp_path, {
        "a.py": "def late():\n    from pkg import b\n",   # inside a function: counts
        "b.py": "from pkg.a import late\n",
        "c.py": "from . import d\n",                       # relative imports too
        "d.py": "from .c import x\n",
        "e.py": "import pkg.a\nfrom pkg import nothing_here\n",  # not in a circle
        "sub/__init__.py": "from ..e import y\n",
    })
    assert loc.main([str(package)]) == 1
    out = capsys.readouterr().out
    assert "import circle: pkg.a -> pkg.b -> pkg.a" in out
    assert "import circle: pkg.c -> pkg.d -> pkg.c" in out
    assert out.count("import circle") == 2
    assert "sub/__init__.py" in out
