"""The documentation's own rules (CONTRIBUTING.md, "Examples in the documentation").

The examples themselves run from the root ``conftest.py``; this checks what that cannot:
that no block escapes it by its language, that every skip says why and skips what it should,
and that no page points at files a reader does not have.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sybil import Document
from sybil.parsers.markdown.lexers import DirectiveInHTMLCommentLexer, RawFencedCodeBlockLexer

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN = {"python", "sh", "bash", "shell", "console"}
SHOWN = {
    "text",
    "json",
    "yaml",
    "ini",
    "toml",
    "conf",
    "env",
    "typescript",
    "javascript",
}  # conf: nats-server

FENCES = RawFencedCodeBlockLexer(
    info_pattern=re.compile(r"(?P<language>[^\n]*)$\n", re.MULTILINE),
    mapping={"language": "language", "source": "source"},
)
SKIPS = DirectiveInHTMLCommentLexer(directive="skip")
SKIP_ARGUMENTS = re.compile(r'(next|start)\s+"[^"]+"|end')
OUTSIDE = re.compile(r"shared/design|shared/seed|/work/|design doc|section \d+\.\d", re.I)


def _document(page: Path) -> Document:
    return Document(page.read_text(encoding="utf-8"), str(page))


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _line(document: Document, position: int) -> int:
    return document.text.count("\n", 0, position) + 1


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_block_names_a_known_language(page: Path) -> None:
    document = _document(page)
    unknown = [
        f"{_name(page)}:{_line(document, region.start)}: {region.lexemes['language']!r}"
        for region in FENCES(document)
        if region.lexemes["language"].strip() not in RUN | SHOWN
    ]
    assert not unknown, (
        f"blocks with no or an unknown language (one of {sorted(RUN | SHOWN)}): {unknown}"
    )


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_skip_gives_a_reason_and_precedes_a_runnable_block(page: Path) -> None:
    document = _document(page)
    fences = list(FENCES(document))
    for skip in SKIPS(document):
        where = f"{_name(page)}:{_line(document, skip.start)}"
        arguments = (skip.lexemes["arguments"] or "").strip()
        assert SKIP_ARGUMENTS.fullmatch(arguments), f'{where}: write skip: next "the reason"'
        if arguments == "end":
            continue
        following = [fence for fence in fences if fence.start >= skip.end]
        assert following, f"{where}: a skip with no block after it"
        block = following[0]
        between = re.sub(r"^\s*-->|<!--.*?-->", "", document.text[skip.end : block.start])
        assert not between.strip(), f"{where}: the skip must be right before the block it skips"
        assert block.lexemes["language"].strip() in RUN, (
            f"{where}: a skip before a {block.lexemes['language']!r} block (never run) would "
            "skip the next runnable block instead"
        )


@pytest.mark.parametrize("page", [*PAGES, ROOT / "CHANGELOG.md"], ids=_name)
def test_no_page_refers_to_files_outside_the_repository(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    found = [
        f"{_name(page)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group()!r}"
        for m in OUTSIDE.finditer(text)
    ]
    assert not found, found


def test_readme_links_point_at_files_that_exist() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text)
    assert targets
    missing = [target for target in targets if not (ROOT / target).exists()]
    assert not missing, missing


def test_every_page_is_in_the_site_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = [p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")]
    missing = [page for page in pages if f": {page}" not in nav]
    assert not missing, f"add these to nav in mkdocs.yml: {missing}"


def test_a_failure_raised_outside_a_block_is_reported(tmp_path: Path) -> None:
    """An unraisable exception fails its block with its message, not an INTERNALERROR."""
    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text(
        "```python\n"
        "class Finalizer:\n"
        "    def __del__(self):\n"
        "        raise RuntimeError('raised by a finalizer')\n"
        "\n"
        "Finalizer()\n"
        "```\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "-W",
            "error::pytest.PytestUnraisableExceptionWarning",
            "docs/page.md",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "INTERNALERROR" not in done.stdout + done.stderr
    assert "raised by a finalizer" in done.stdout
    assert "1 failed" in done.stdout
