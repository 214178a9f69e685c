"""Progress of long work, on stderr: a bar with the count, the rate and the ETA.

::

    with out.progress("publishing", total=10_000) as bar:      # Output.progress()
        for n in range(10_000):
            client.publish(subject, data)
            bar.advance()

    with out.progress("uploading", total=size, unit="bytes") as bar:
        bar.advance(len(chunk))                                  # sizes and MiB/s

Three modes, chosen by :class:`~syncmsg.cli._output.Output`: ``"off"`` (the default when
stderr is not a terminal, with ``--json``, ``--quiet`` or ``--no-progress``): every call is
a no-op; ``"bar"`` (stderr is a terminal): a rich bar, redrawn ten times a second and
removed when the work ends, so that only the command's result stays on screen; ``"lines"``
(``--progress`` on a non-terminal, e.g. in CI logs): one plain line a second and a last one
at the end, ``publishing: 500/500 msgs in 0.04s (12,500 msgs/s)``.

Threading: :meth:`Progress.advance` and :meth:`Progress.update` may be called from any
thread (a subscription's workers, a benchmark's clients). ``advance()`` by one takes no
lock and looks at the clock every 64th call; the count goes to rich at most every 50 ms,
so a hot loop hardly notices it. Rich redraws on its
own ``Thread-N`` refresh thread; the "lines" mode prints on the thread that advances.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from types import TracebackType
from typing import Literal

from rich.console import Console
from rich.progress import (
    BarColumn,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

from syncmsg.cli._units import format_count, format_duration, format_rate, format_size

__all__ = ["Mode", "Progress"]

Mode = Literal["off", "bar", "lines"]

#: How often the count is handed to rich (the bar redraws ten times a second anyway).
_PUSH_EVERY = 0.05
#: How often the "lines" mode prints.
_LINE_EVERY = 1.0
#: advance() by one looks at the clock on every 64th call only.
_CHECK_EVERY_MASK = 63


def _amount(value: float, unit: str) -> str:
    return format_size(int(value)) if unit == "bytes" else format_count(int(value))


def _rate(per_second: float, unit: str) -> str:
    if unit == "bytes":
        return f"{format_size(round(per_second))}/s"
    return format_rate(per_second, unit)


class _CountColumn(ProgressColumn):
    """``1,000/10,000`` (or sizes, for bytes)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        done = _amount(task.completed, self.unit)
        of = "" if task.total is None else "/" + _amount(task.total, self.unit)
        return Text(f"{done}{of}", style="progress.download", no_wrap=True)


class _RateColumn(ProgressColumn):
    """``12,345 msgs/s``."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        text = "" if speed is None else _rate(speed, self.unit)
        return Text(text, style="progress.data.speed", no_wrap=True)


class _EtaColumn(ProgressColumn):
    """``ETA 3s`` while the total is known and a rate measured."""

    max_refresh = 0.5

    def render(self, task: Task) -> Text:
        left = task.time_remaining
        if task.finished or left is None:
            return Text("")
        return Text(f"ETA {format_duration(left)}", style="progress.remaining", no_wrap=True)


class Progress:
    """One bar of progress (see the module docstring). Use it as a context manager.

    ``total`` may be None when unknown (the bar then pulses); ``unit`` is ``"msgs"`` (or
    any plural noun) for counts, ``"bytes"`` for sizes.
    """

    def __init__(
        self,
        description: str,
        total: int | None = None,
        *,
        unit: str = "msgs",
        mode: Mode = "off",
        console: Console | None = None,
    ) -> None:
        self.description = description
        self.total = total
        self.unit = unit
        self.mode: Mode = mode
        self._console = console
        self._lock = threading.Lock()
        # advance() by one is the hot path: next() on an itertools.count is atomic under
        # the GIL and costs a fifth of a lock. Other amounts, update() and reads adjust
        # _extra under the lock; the count is the ticks so far plus _extra.
        self._ticks = itertools.count(1)
        self._extra = 0
        self._pushed_at = 0.0
        self._started = time.monotonic()
        self._bar: RichProgress | None = None
        self._task_id: TaskID | None = None

    @property
    def completed(self) -> int:
        """How much is done so far."""
        with self._lock:
            ticks = next(self._ticks)  # the ticks so far, and this read's own
            self._extra -= 1
            return ticks + self._extra

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Progress:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop(finished=exc_type is None)

    def start(self) -> None:
        self._started = time.monotonic()
        self._pushed_at = self._started
        if self.mode != "bar":
            return
        self._bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            _CountColumn(self.unit),
            _RateColumn(self.unit),
            _EtaColumn(),
            console=self._console,
            transient=True,
            # Output written to stdout meanwhile goes through rich (above the bar) only
            # when stdout is the same terminal; a redirected stdout is left alone.
            redirect_stdout=bool(self._console and _stdout_is_terminal()),
            redirect_stderr=False,
        )
        self._task_id = self._bar.add_task(self.description, total=self.total)
        self._bar.start()

    def stop(self, *, finished: bool = True) -> None:
        """End the bar (removing it from the screen); the "lines" mode prints a last line."""
        done = self.completed
        with self._lock:
            bar, self._bar = self._bar, None
        if bar is not None:
            bar.stop()
        if self.mode == "lines" and finished:
            elapsed = max(time.monotonic() - self._started, 1e-9)
            self._print_line(
                f"{self._of(done)} in {format_duration(elapsed)} "
                f"({_rate(done / elapsed, self.unit)})"
            )

    # ------------------------------------------------------------------ any thread
    def advance(self, amount: int = 1) -> None:
        """Count ``amount`` more done."""
        if amount == 1:
            if next(self._ticks) & _CHECK_EVERY_MASK or self.mode == "off":
                return
        else:
            with self._lock:
                self._extra += amount
            if self.mode == "off":
                return
        self._push_if_due()

    def update(self, completed: int) -> None:
        """Set how much is done."""
        with self._lock:
            ticks = next(self._ticks)  # the ticks so far, and this call's own
            self._extra = completed - ticks
        if self.mode != "off":
            self._push_if_due()

    def _push_if_due(self) -> None:
        now = time.monotonic()
        every = _PUSH_EVERY if self.mode == "bar" else _LINE_EVERY
        if now - self._pushed_at < every:
            return
        self._pushed_at = now
        done = self.completed
        if self.mode == "bar":
            bar, task_id = self._bar, self._task_id
            if bar is not None and task_id is not None:
                bar.update(task_id, completed=done)
            return
        elapsed = max(now - self._started, 1e-9)
        text = f"{self._of(done)} ({_rate(done / elapsed, self.unit)})"
        if self.total and done:
            left = (self.total - done) / (done / elapsed)
            text += f", ETA {format_duration(max(left, 0.0))}"
        self._print_line(text)

    def _of(self, done: int) -> str:
        total = "" if self.total is None else "/" + _amount(self.total, self.unit)
        suffix = "" if self.unit == "bytes" else f" {self.unit}"
        return f"{_amount(done, self.unit)}{total}{suffix}"

    def _print_line(self, text: str) -> None:
        line = f"{self.description}: {text}"
        if self._console is not None:
            self._console.print(line, markup=False, highlight=False, soft_wrap=True)


def _stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False
