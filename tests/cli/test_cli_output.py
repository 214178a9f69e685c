"""Output (results, tables, stderr lines) and Progress (bars, lines, off) without a server."""

from __future__ import annotations

import io
import logging
import threading
from typing import Any

import pytest
from rich.console import Console

from syncmsg.cli import _progress
from syncmsg.cli._output import Column, Output, StderrLogHandler
from syncmsg.cli._progress import Progress
from syncmsg.testing import wait_until


def _tty(monkeypatch: pytest.MonkeyPatch, stream: str) -> None:
    monkeypatch.setattr(f"sys.{stream}.isatty", lambda: True)


@pytest.mark.parametrize(
    ("options", "tty", "mode"),
    [
        ({}, False, "off"),
        ({}, True, "bar"),
        ({"json": True}, True, "off"),
        ({"quiet": True}, True, "off"),
        ({"progress": False}, True, "off"),
        ({"progress": True}, False, "lines"),
        ({"progress": True, "json": True}, False, "lines"),  # asked for: on stderr
        ({"progress": True, "json": True}, True, "bar"),
    ],
)
def test_progress_mode(
    options: dict[str, Any], tty: bool, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if tty:
        _tty(monkeypatch, "stderr")
    out = Output(**options)
    assert out.progress_mode == mode
    assert out.progress("x", 1, enabled=False).mode == "off"


def test_bar_shows_count_rate_and_eta_then_goes_away(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100, color_system=None)
    monkeypatch.setattr(_progress, "_PUSH_EVERY", 0.0)
    bar = Progress("publishing to x", 1_000_000, mode="bar", console=console)
    with bar:
        for _ in range(5):
            bar.advance(1000)
        wait_until(lambda: "msgs/s" in screen.getvalue() and "ETA" in screen.getvalue(), timeout=10)
        assert "publishing to x" in screen.getvalue()
        assert "5,000/1,000,000" in screen.getvalue()
    assert bar.completed == 5000


def test_bytes_are_shown_as_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100, color_system=None)
    monkeypatch.setattr(_progress, "_PUSH_EVERY", 0.0)
    with Progress("uploading", 10 << 20, unit="bytes", mode="bar", console=console) as bar:
        for _ in range(3):
            bar.advance(1 << 20)
        wait_until(
            lambda: "3 MiB/10 MiB" in screen.getvalue() and "/s" in screen.getvalue(), timeout=10
        )


def test_lines_mode_prints_at_most_once_a_second_and_at_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    screen = io.StringIO()
    console = Console(file=screen, width=200)
    with Progress("receiving", 3, mode="lines", console=console) as lines:
        lines.advance(1)
        monkeypatch.setattr(_progress, "_LINE_EVERY", 0.0)
        lines.update(2)
    text = screen.getvalue().splitlines()
    assert text[0].startswith("receiving: 2/3 msgs (") and ", ETA " in text[0]
    assert text[-1].startswith("receiving: 2/3 msgs in ") and text[-1].endswith(" msgs/s)")
    assert len(text) == 2
    failed = Progress("x", 3, mode="lines", console=console)
    with pytest.raises(RuntimeError), failed:
        raise RuntimeError  # no last line when the work failed
    assert len(screen.getvalue().splitlines()) == 2


def test_counts_from_many_threads_add_up() -> None:
    counter = Progress("x", None, mode="lines", console=Console(file=io.StringIO()))
    counter.start()

    def work() -> None:
        for _ in range(20_000):
            counter.advance()
        counter.advance(5)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.completed == 4 * 20_005
    counter.update(7)
    assert counter.completed == 7
    counter.stop()
    off = Progress("x", 10)
    off.advance()
    off.advance(2)
    assert off.completed == 3


def test_results_tables_and_stderr(capsys: Any) -> None:
    out = Output()
    out.emit({"a": 1}, "text for people")
    out.emit({"a": 1}, None)
    rows = [{"name": "A", "bytes": 1 << 30}, {"name": "BB", "bytes": 0}]
    columns = [Column("name", "NAME"), Column("bytes", "SIZE", lambda v: f"{v >> 20} MiB", "right")]
    out.table(rows, columns)
    out.fields("title", [("key", "value"), ("longer key", "[bold]not markup[/bold]")])
    out.status("listening")
    out.warning("careful")
    out.error("broken")
    out.table([], columns, empty="no rows")
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        "text for people",
        "NAME       SIZE",
        "───────────────",
        "A      1024 MiB",
        "BB        0 MiB",
        "title",
        "  key         value",
        "  longer key  [bold]not markup[/bold]",
    ]
    assert captured.err.splitlines() == [
        "syncmsg: listening",
        "syncmsg: warning: careful",
        "syncmsg: error: broken",
        "syncmsg: no rows",
    ]
    quiet = Output(json=True, quiet=True)
    quiet.emit({"a": 1}, "not shown")
    quiet.table(rows, columns)
    quiet.status("not shown")
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        '{"a": 1}',
        '{"name": "A", "bytes": 1073741824}',
        '{"name": "BB", "bytes": 0}',
    ]
    assert captured.err == ""


def test_library_warnings_go_through_the_output(capsys: Any) -> None:
    out = Output()
    handler = StderrLogHandler(lambda: out)
    logger = logging.getLogger("syncmsg.test-cli-output")
    logger.addHandler(handler)
    try:
        logger.warning("syncmsg: slow consumer on %r", "x")
        logger.info("not shown")
    finally:
        logger.removeHandler(handler)
    assert capsys.readouterr().err == "syncmsg: slow consumer on 'x'\n"
