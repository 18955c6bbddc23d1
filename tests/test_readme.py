"""Every Python snippet in README.md runs, in order, as a reader would paste them one after the
other into one session (in a scratch directory: snippets may write files).

A ```text block that follows a ```python block with nothing but blank lines between them is
that snippet's output: what the snippet prints must be exactly that text."""

import contextlib
import difflib
import importlib.util
import io
import re
import shutil
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text(encoding="utf-8")
FENCED = re.compile(r"^```(\w*)\n(.*?)^```[ \t]*$", flags=re.MULTILINE | re.DOTALL)
BLOCKS = [(m.group(1), m.group(2), m.start(), m.end()) for m in FENCED.finditer(TEXT)]
SNIPPETS = [code for kind, code, _, _ in BLOCKS if kind == "python"]


def expected_outputs() -> dict[int, str]:
    """{index of a python snippet: the output shown right after it}."""
    python = [block for block in BLOCKS if block[0] == "python"]
    shown = {}
    for number, block in enumerate(python):
        following = BLOCKS[BLOCKS.index(block) + 1:][:1]
        if following and following[0][0] == "text" and not TEXT[block[3]:following[0][2]].strip():
            shown[number] = following[0][1]
    return shown


def test_the_readme_has_python_snippets_and_shows_outputs() -> None:
    assert SNIPPETS, "README.md has no ```python block: this test would check nothing"
    assert expected_outputs(), "README.md shows no output after a snippet: none is compared"


def test_every_python_snippet_in_the_readme_runs_and_prints_what_it_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if any("render(" in snippet for snippet in SNIPPETS) and shutil.which("dot") is None:
        pytest.skip("a snippet draws with Graphviz's dot, which is not installed")
    for package in ("onnx", "onnxruntime"):
        if any(package in snippet for snippet in SNIPPETS) and not importlib.util.find_spec(
                package):
            pytest.skip(f"a snippet needs {package}: pip install -e '.[onnx]'")
    monkeypatch.chdir(tmp_path)
    shown = expected_outputs()
    namespace: dict[str, object] = {"__name__": "__readme__"}
    for number, snippet in enumerate(SNIPPETS):
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                exec(compile(snippet, f"README.md python snippet {number + 1}", "exec"), namespace)
        except Exception as error:  # name the snippet: the traceback's file is the README's
            raise AssertionError(f"README.md's python snippet {number + 1} fails: {error!r}\n"
                                 f"{snippet}") from error
        if number in shown:
            expected, actual = shown[number].rstrip("\n"), printed.getvalue().rstrip("\n")
            diff = "\n".join(difflib.unified_diff(expected.splitlines(), actual.splitlines(),
                                                  "README.md", "printed", lineterm=""))
            assert actual == expected, (f"README.md's python snippet {number + 1} prints "
                                        f"something else than the output shown after it:\n{diff}")
