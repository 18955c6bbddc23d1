"""Every Python block on the documentation pages (``docs/**/*.md``) runs, page by page, as a
reader would paste them one after the other into one session (in a scratch directory: blocks
may write files). Each page stands alone: its blocks share one namespace, never another
page's.

A ```text block that follows a ```python block with nothing but blank lines between them is
that block's output: what the block prints must be exactly that text. A block that needs
something optional (Graphviz's ``dot``, onnx, onnxruntime, threadpoolctl, the course's data)
is left out where that is absent, and the page's test then ends as skipped, naming the blocks
left out and what they need, after every other block has run and been checked (so a page
defines nothing in such a block that a later block uses, unless that block needs it too).

``mkdocs build --strict`` (in ``.ci/run``) checks the links; the glossary's anchors are also
checked here, so that a page's link to a term that is not there fails without the docs extra.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.util
import io
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tinygrad_nn.data import missing_data, resolve_data_dir

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
FENCED = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", flags=re.MULTILINE | re.DOTALL)


def blocks(page: Path) -> list[tuple[str, str | None]]:
    """The page's python blocks in order, each with the output shown right after it (or None)."""
    text = page.read_text(encoding="utf-8")
    fenced = list(FENCED.finditer(text))
    found = []
    for k, match in enumerate(fenced):
        if match.group(1) != "python":
            continue
        shown = None
        if k + 1 < len(fenced) and fenced[k + 1].group(1) == "text" and not text[
                match.end():fenced[k + 1].start()].strip():
            shown = fenced[k + 1].group(2)
        found.append((match.group(2), shown))
    return found


def _module(name: str) -> Callable[[], str | None]:
    def missing() -> str | None:
        return None if importlib.util.find_spec(name) else f"the {name} package"
    return missing


def _dot() -> str | None:
    if shutil.which("dot") is None:
        return "Graphviz's `dot` program"
    return _module("graphviz")()


def _data() -> str | None:
    return None if resolve_data_dir(None) is not None else f"the course's data ({missing_data()})"


# What a block needs, read from its code: (a marker in the code, what says it is missing).
NEEDS: list[tuple[str, Callable[[], str | None]]] = [
    (".render(", _dot),
    ("export_onnx(", _module("onnx")),
    ("import onnxruntime", _module("onnxruntime")),
    ("threadpoolctl", _module("threadpoolctl")),
    ("resolve_data_dir(None)", _data),
]


def absent(code: str) -> str | None:
    """What the block needs and this machine lacks, if anything."""
    for marker, missing in NEEDS:
        if marker in code and (what := missing()) is not None:
            return what
    return None


PAGES_WITH_CODE = [page for page in PAGES if blocks(page)]


def test_the_pages_have_python_blocks_and_show_outputs() -> None:
    assert PAGES_WITH_CODE, "docs/ has no page with a ```python block: this test checks nothing"
    assert any(shown is not None for page in PAGES_WITH_CODE for _, shown in blocks(page)), (
        "no page shows an output after a block: none is compared")


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda page: str(page.relative_to(DOCS)))
def test_every_python_block_on_the_page_runs_and_prints_what_it_shows(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = page.relative_to(DOCS)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    left_out: list[str] = []
    for number, (code, shown) in enumerate(blocks(page), start=1):
        if (what := absent(code)) is not None:
            left_out.append(f"python block {number} needs {what}")
            continue
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                exec(compile(code, f"docs/{name} python block {number}", "exec"), namespace)
        except Exception as error:  # name the block: the traceback's file is the page's
            raise AssertionError(f"docs/{name}'s python block {number} fails: {error!r}\n"
                                 f"{code}") from error
        if shown is not None:
            expected, actual = shown.rstrip("\n"), printed.getvalue().rstrip("\n")
            diff = "\n".join(difflib.unified_diff(expected.splitlines(), actual.splitlines(),
                                                  f"docs/{name}", "printed", lineterm=""))
            assert actual == expected, (f"docs/{name}'s python block {number} prints something "
                                        f"else than the output shown after it:\n{diff}")
    if left_out:
        pytest.skip(f"docs/{name}: the other blocks ran; left out: {'; '.join(left_out)}")


def test_every_link_to_the_glossary_names_a_term_it_defines() -> None:
    glossary = (DOCS / "glossary.md").read_text(encoding="utf-8")
    defined = set(re.findall(r"^### .*\{#([\w-]+)\}[ \t]*$", glossary, flags=re.MULTILINE))
    assert defined, "glossary.md defines no term as `### Term {#anchor}`"
    wrong = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        anchors = re.findall(r"\]\((?:\.\./)?glossary\.md#([\w-]+)\)", text)
        if page.name == "glossary.md":
            anchors += re.findall(r"\]\(#([\w-]+)\)", text)
        wrong += [f"docs/{page.relative_to(DOCS)}: #{anchor}" for anchor in anchors
                  if anchor not in defined]
    assert not wrong, f"links to glossary terms that glossary.md does not define: {wrong}"
