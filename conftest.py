"""Run the code blocks of README.md and docs/*.md as tests, against a real nats-server.

Sybil finds the blocks; this file says how each kind runs (CONTRIBUTING.md, "Examples in
the documentation", is the guide for writers):

* ```` ```python ```` blocks run in one namespace per page, top to bottom, as a reader
  following the page would run them (``<!-- invisible-code-block: python -->`` blocks too:
  set-up or checks a reader does not need to see).
* ```` ```sh ```` blocks run with ``bash -e -o pipefail`` in a scratch directory of the
  page; ``syncmsg`` and ``python`` are this interpreter's. Processes a block leaves in the
  background (``cmd &``) are ended when the block ends.
* ```` ```console ```` blocks are transcripts: each ``$ command`` runs in one bash, its
  output (stdout and stderr together) must match the lines under it; ``...`` matches
  anything, as in doctest.
* ``<!-- skip: next "reason" -->`` before a block marks it as not runnable: it is
  reported as skipped, with the reason.

Every page gets its own JetStream-enabled nats-server on a free loopback port, started
before its first block and stopped after its last, so pages cannot disturb each other or
the rest of the suite. ``NATS_URL`` points at it while the page runs, so examples that
call ``syncmsg.connect()`` reach it; the address ``nats://localhost:4222``, which the
docs show because it is the default, is replaced by the page's server in the code that
runs (the page itself keeps it). ``nats_url`` in the namespace is the same URL.

Threading: everything here runs on pytest's main thread (of each xdist worker). Under
``-n``, :func:`pytest_xdist_make_scheduler` keeps each page's blocks on one worker, in
order.
"""

from __future__ import annotations

import doctest
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sybil import Document, Example, Region, Sybil
from sybil.evaluators.python import PythonEvaluator, pad
from sybil.integration.pytest import SybilItem
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser, SkipParser

import syncmsg
from syncmsg.testing import NatsServer

DOCS_URL = "nats://localhost:4222"
"""The address the docs show; replaced by the page's own server in the code that runs."""

BLOCK_TIMEOUT = 60.0
"""Seconds a shell or console block may take before it fails."""

PAGE = "__syncmsg_docs_page__"
"""The namespace key of the running page's :class:`Page`."""

BIN_DIR = str(Path(sys.executable).parent)


@dataclass
class Page:
    """What one page's blocks share besides their Python namespace."""

    server: NatsServer
    workdir: Path
    saved_nats_url: str | None

    def localize(self, source: str) -> str:
        return source.replace(DOCS_URL, self.server.url)

    def shell_env(self) -> dict[str, str]:
        path = os.pathsep.join([BIN_DIR, os.environ.get("PATH", "")])
        return {**os.environ, "NATS_URL": self.server.url, "PATH": path}


def start_page(namespace: dict[str, Any]) -> None:
    server = NatsServer(jetstream=True, name="syncmsg-docs")
    server.start(timeout=30.0)
    page = Page(
        server=server,
        workdir=Path(tempfile.mkdtemp(prefix="syncmsg-docs-")),
        saved_nats_url=os.environ.get("NATS_URL"),
    )
    namespace[PAGE] = page
    namespace["nats_url"] = server.url
    os.environ["NATS_URL"] = server.url


def end_page(namespace: dict[str, Any]) -> None:
    page: Page = namespace.pop(PAGE)
    try:
        for value in list(namespace.values()):
            if isinstance(value, syncmsg.Client):
                value.close(timeout=5.0)  # clients the page left open, before their server
    finally:
        page.server.close()
        shutil.rmtree(page.workdir, ignore_errors=True)
        if page.saved_nats_url is None:
            os.environ.pop("NATS_URL", None)
        else:
            os.environ["NATS_URL"] = page.saved_nats_url


def run_python(example: Example) -> None:
    __tracebackhide__ = True
    page: Page = example.namespace[PAGE]
    source = pad(page.localize(str(example.parsed)), example.line + example.parsed.line_offset)
    exec(compile(source, example.path, "exec", dont_inherit=True), example.namespace)
    example.namespace.pop("__builtins__", None)


class PythonBlocks(PythonCodeBlockParser):
    """Python blocks (and doctest ``>>>`` blocks, left to Sybil) run by :func:`run_python`."""

    def __call__(self, document: Document) -> Any:
        for region in super().__call__(document):
            if isinstance(region.evaluator, PythonEvaluator):
                region.evaluator = run_python
            yield region


def run_bash(page: Page, script: str, *, options: list[str]) -> tuple[int, str]:
    """Run ``script`` in its own process group; return its status and combined output.

    Output goes to a file, not a pipe, so that a background process the script leaves
    behind cannot keep the read open; the whole group is ended afterwards.
    """
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as out:
        proc = subprocess.Popen(
            ["bash", *options, "-c", script],
            cwd=page.workdir,
            env=page.shell_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            status: int | None = proc.wait(timeout=BLOCK_TIMEOUT)
        except subprocess.TimeoutExpired:
            status = None
        finally:
            _end_group(proc)
        out.seek(0)
        output = out.read()
    if status is None:
        raise AssertionError(f"timed out after {BLOCK_TIMEOUT:.0f} s; output:\n{output}")
    return status, output


def _end_group(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the block's process group, then SIGKILL what is left after 2 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            proc.poll()  # reap bash itself, so that only its leftovers keep the group alive
            os.killpg(proc.pid, 0)
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10.0)


def run_sh(example: Example) -> None:
    __tracebackhide__ = True
    page: Page = example.namespace[PAGE]
    status, output = run_bash(
        page, page.localize(str(example.parsed)), options=["-e", "-o", "pipefail"]
    )
    if status != 0:
        raise AssertionError(f"shell block exited with status {status}; output:\n{output}")


MARKER = "@@syncmsg-docs-output@@"
OUTPUT_CHECKER = doctest.OutputChecker()


@dataclass(frozen=True)
class Transcript:
    commands: list[str]
    outputs: list[str]


def parse_transcript(text: str) -> Transcript:
    """``$ command`` lines (a trailing backslash continues one), each with its output."""
    commands: list[str] = []
    outputs: list[list[str]] = []
    continuing = False
    for line in text.splitlines():
        if continuing:
            commands[-1] += "\n" + line
            continuing = line.endswith("\\")
        elif line.startswith("$ "):
            commands.append(line[2:])
            outputs.append([])
            continuing = line.endswith("\\")
        elif commands:
            outputs[-1].append(line)
        elif line.strip():
            raise ValueError(f"console block must start with '$ ': {line!r}")
    return Transcript(commands, ["".join(f"{o}\n" for o in out) for out in outputs])


def run_console(example: Example) -> None:
    __tracebackhide__ = True
    page: Page = example.namespace[PAGE]
    transcript: Transcript = example.parsed
    # Keep each command's status for the next one ($?) across the marker that splits outputs.
    keep_status = f'__status=$?; printf "%s\\n" "{MARKER}"; (exit $__status)'
    script = "\n".join(f"{page.localize(cmd)}\n{keep_status}" for cmd in transcript.commands)
    _, output = run_bash(page, script, options=[])
    *got, rest = output.split(MARKER + "\n")
    if len(got) != len(transcript.commands) or rest:
        raise AssertionError(f"the transcript did not run to its end; output:\n{output}")
    flags = doctest.ELLIPSIS
    for command, want, have in zip(transcript.commands, transcript.outputs, got, strict=True):
        want, have = _lines(want), _lines(have)
        if not OUTPUT_CHECKER.check_output(want, have, flags):
            raise AssertionError(
                f"$ {command}\n"
                + OUTPUT_CHECKER.output_difference(doctest.Example(command, want), have, flags)
            )


def _lines(text: str) -> str:
    """Text without trailing whitespace on its lines, ending in one newline unless empty."""
    stripped = "\n".join(line.rstrip() for line in text.rstrip().splitlines())
    return stripped + "\n" if stripped else ""


class ConsoleBlocks(CodeBlockParser):
    """```` ```console ```` transcripts, checked by :func:`run_console`."""

    def __init__(self) -> None:
        super().__init__(language="console", evaluator=run_console)

    def __call__(self, document: Document) -> Any:
        for region in super().__call__(document):
            yield Region(region.start, region.end, parse_transcript(region.parsed), run_console)


docs = Sybil(
    parsers=[
        PythonBlocks(),
        *(CodeBlockParser(language=lang, evaluator=run_sh) for lang in ("sh", "bash", "shell")),
        ConsoleBlocks(),
        SkipParser(),
    ],
    patterns=["README.md", "docs/*.md"],
    setup=start_page,
    teardown=end_page,
)

pytest_collect_file = docs.pytest()


_sybil_traceback_filter = SybilItem._traceback_filter


def _traceback_filter(self: SybilItem, excinfo: pytest.ExceptionInfo[BaseException]) -> Any:
    """Sybil's filter, or the whole traceback when the failure did not come from a block.

    Sybil (10.1) assumes every failure was raised inside a block, and raises IndexError
    otherwise: for an unraisable exception that pytest turns into a failure at the end of
    a block (an object's ``__del__`` that raised), the worker then stops with an
    INTERNALERROR that hides the exception.
    """
    try:
        return _sybil_traceback_filter(self, excinfo)
    except IndexError:
        return excinfo.traceback


SybilItem._traceback_filter = _traceback_filter  # type: ignore[method-assign]


@pytest.hookimpl(optionalhook=True)  # pytest-xdist may not be loaded (-p no:xdist)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under ``-n``: each page's blocks go to one worker, in order; other tests as ``load``.

    (pytest-xdist's own ``--dist loadgroup`` would do it with ``xdist_group`` marks, but it
    renames node ids through an attribute that pytest 9.2 no longer reads.)
    """
    if config.getvalue("dist") not in ("load", "loadgroup"):
        return None  # the user asked for another distribution: theirs
    from xdist.scheduler import LoadScopeScheduling

    class PagesTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return path if path.endswith(".md") else nodeid

    return PagesTogether(config, log)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Report a skipped block at its own line in its page, not inside unittest."""
    report = yield
    example = getattr(item, "example", None)
    if report.skipped and isinstance(example, Example) and isinstance(report.longrepr, tuple):
        report.longrepr = (example.path, example.line, report.longrepr[2])
    return report
