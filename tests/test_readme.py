"""Every Python snippet in README.md runs, in order, as a reader would paste them one after the
other into one session (in a scratch directory: snippets may write files)."""

import re
import shutil
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SNIPPETS = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"),
                      flags=re.MULTILINE | re.DOTALL)


def test_the_readme_has_python_snippets() -> None:
    assert SNIPPETS, "README.md has no ```python block: this test would check nothing"


def test_every_python_snippet_in_the_readme_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if any("render(" in snippet for snippet in SNIPPETS) and shutil.which("dot") is None:
        pytest.skip("a snippet draws with Graphviz's dot, which is not installed")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__readme__"}
    for number, snippet in enumerate(SNIPPETS, 1):
        try:
            exec(compile(snippet, f"README.md python snippet {number}", "exec"), namespace)
        except Exception as error:  # name the snippet: the traceback's file is the README's
            raise AssertionError(f"README.md's python snippet {number} fails: {error!r}\n"
                                 f"{snippet}") from error
    capsys.readouterr()
