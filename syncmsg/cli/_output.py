"""Where a command's output goes: results on stdout, the rest on stderr.

::

    out = output()                                        # this invocation's Output
    out.emit({"subject": s, "published": n}, f"published {n} messages to {s}")
    out.table(rows, [Column("name", "NAME"), Column("bytes", "SIZE", format_size, "right")])
    out.fields("stream ORDERS", [("subjects", "orders.>"), ("max age", "7d")])
    out.status("listening on orders.>")                  # stderr: syncmsg: listening on ...
    with out.progress("publishing", total=n) as bar: ... # see _progress.py

* **Results** go to stdout: the text for people, or with ``--json`` one JSON object per line
  (``emit``'s object, each row of a ``table``). JSON carries raw values (bytes, nanoseconds,
  ISO times) for scripts; text carries human units. Text lines are written as they are
  (no markup, no wrapping), so payloads print byte for byte; tables and field lists are
  rendered by rich, in colour on a terminal (``NO_COLOR`` turns colour off).
* **Status, warnings, progress and errors** go to stderr, so that stdout stays parseable.
  ``--quiet`` silences status lines and progress; errors are always one line,
  ``syncmsg: error: <reason>``.

Threading: every method may be called from any thread (``reply`` prints from the
subscription's worker threads); lines are written whole, under one lock.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, TextIO

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from syncmsg.cli._progress import Mode, Progress

__all__ = ["Column", "Output", "StderrLogHandler"]

#: Width of tables when stdout is not a terminal (a pipe, a file): rows are never wrapped,
#: so that grep and awk see one line per row. (Tables are only as wide as their contents.)
_PIPE_WIDTH = 10_000


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of :meth:`Output.table`: the row key, its header and how to print it."""

    key: str
    header: str
    format: Callable[[Any], str] = str
    justify: Literal["left", "right", "center"] = "left"


class Output:
    """One command invocation's output settings and streams (see the module docstring).

    ``progress`` is the ``--progress/--no-progress`` choice: None means "when stderr is a
    terminal and the output is not JSON".
    """

    def __init__(
        self, *, json: bool = False, quiet: bool = False, progress: bool | None = None
    ) -> None:
        self.json = json
        self.quiet = quiet
        self.progress_choice = progress
        self._lock = threading.Lock()
        self._stdout_console: Console | None = None
        self._stderr_console: Console | None = None

    # ------------------------------------------------------------------ consoles
    @property
    def stdout(self) -> Console:
        """A rich console on (whatever is at the time) ``sys.stdout``."""
        if self._stdout_console is None:
            width = None if _is_terminal(sys.stdout) else _PIPE_WIDTH
            self._stdout_console = Console(highlight=False, emoji=False, width=width)
        return self._stdout_console

    @property
    def stderr(self) -> Console:
        """A rich console on ``sys.stderr``: status, errors and progress bars."""
        if self._stderr_console is None:
            self._stderr_console = Console(stderr=True, highlight=False, emoji=False)
        return self._stderr_console

    # ------------------------------------------------------------------ results
    def emit(self, obj: Mapping[str, Any], text: str | None) -> None:
        """One result: ``obj`` as a JSON line with ``--json``, else ``text`` (if any)."""
        if self.json:
            self._write(json.dumps(obj, default=str))
        elif text is not None:
            self._write(text)

    def _write(self, line: str) -> None:
        with self._lock:
            stream = sys.stdout
            stream.write(line + "\n")
            stream.flush()

    def table(
        self,
        rows: Sequence[Mapping[str, Any]],
        columns: Sequence[Column],
        *,
        empty: str = "nothing to show",
    ) -> None:
        """Rows as a table for people, or each row as a JSON line with ``--json``.

        With no rows, text mode says ``empty`` on stderr (stdout stays empty).
        """
        if self.json:
            for row in rows:
                self.emit(row, None)
            return
        if not rows:
            self.status(empty)
            return
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
        for column in columns:
            table.add_column(column.header, justify=column.justify)
        for row in rows:
            table.add_row(*(Text(column.format(row.get(column.key))) for column in columns))
        self._render(table)

    def fields(self, title: str, rows: Iterable[tuple[str, str]]) -> None:
        """A titled list of ``name  value`` lines (text mode only; emit JSON yourself)."""
        pairs = list(rows)
        width = max((len(name) for name, _ in pairs), default=0)
        lines = [Text(title, style="bold")]
        lines += [
            Text.assemble(("  " + name.ljust(width), "bold"), "  ", value) for name, value in pairs
        ]
        self._render(Text("\n").join(lines))

    def _render(self, renderable: RenderableType) -> None:
        """Print through rich; off a terminal, without the padding at the ends of lines."""
        with self._lock:
            console = self.stdout
            if console.is_terminal:
                console.print(renderable)
                return
            with console.capture() as captured:
                console.print(renderable)
            text = "\n".join(line.rstrip() for line in captured.get().splitlines())
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

    # ------------------------------------------------------------------ stderr
    def status(self, text: str) -> None:
        """A status line for people on stderr (``syncmsg: <text>``), unless ``--quiet``."""
        if not self.quiet:
            self._err(Text(f"syncmsg: {text}"))

    def warning(self, text: str) -> None:
        """``syncmsg: warning: <text>`` on stderr, even with ``--quiet``."""
        self._err(Text.assemble("syncmsg: ", ("warning:", "yellow"), f" {text}"))

    def error(self, text: str) -> None:
        """``syncmsg: error: <text>`` on stderr: the one line of an expected failure."""
        self._err(Text.assemble("syncmsg: ", ("error:", "bold red"), f" {text}"))

    def _err(self, text: Text) -> None:
        with self._lock:
            self.stderr.print(text, soft_wrap=True)

    # ------------------------------------------------------------------ progress
    @property
    def progress_mode(self) -> Mode:
        """``"bar"`` on a terminal, ``"lines"`` when forced elsewhere, else ``"off"``."""
        wanted = self.progress_choice
        if wanted is False or (wanted is None and (self.quiet or self.json)):
            return "off"
        if _is_terminal(sys.stderr):
            return "bar"
        return "lines" if wanted else "off"

    def progress(
        self,
        description: str,
        total: int | None = None,
        *,
        unit: str = "msgs",
        enabled: bool = True,
    ) -> Progress:
        """A :class:`~syncmsg.cli._progress.Progress` for long work (a no-op when off).

        ``enabled=False`` gives a no-op one whatever the options (e.g. for a single message).
        """
        mode = self.progress_mode if enabled else "off"
        return Progress(description, total, unit=unit, mode=mode, console=self.stderr)


class StderrLogHandler(logging.Handler):
    """The library's warnings (a slow consumer, a reconnect) as lines through ``out``.

    Going through the stderr console keeps them above a progress bar instead of through it.
    """

    def __init__(self, out: Callable[[], Output]) -> None:
        super().__init__(logging.WARNING)
        self.out = out  # called at each record: the Output exists only once options are read

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # pragma: no cover - a broken log call must not end the command
            self.handleError(record)
            return
        text = text.removeprefix("syncmsg: ")
        self.out()._err(Text(f"syncmsg: {text}"))
