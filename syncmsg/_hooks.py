"""The hooks thread: where the user's status and error callbacks run.

Threading: :class:`Hooks` starts one daemon thread, ``syncmsg-hooks-N``, the first time it
has something to run. The loop thread never runs user code: it posts the call here and
goes on. Callbacks run one at a time, in the order they were posted; one that raises is
logged and the next one runs.

Errors seen on a worker or caller thread are handed to the error callback on that thread
(the user's code is already running there); errors seen on the loop thread are posted.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from syncmsg._types import ErrorCallback, StatusCallback

__all__ = ["Hooks"]

log = logging.getLogger("syncmsg")

_hook_ids = itertools.count(1)
_STOP = None  # posted by stop(): the thread ends once it has run what came before


class Hooks:
    """The user's callbacks, and the thread that runs those the loop thread triggers."""

    def __init__(
        self,
        error_callback: ErrorCallback | None = None,
        *,
        disconnected: StatusCallback | None = None,
        reconnected: StatusCallback | None = None,
        closed: StatusCallback | None = None,
    ) -> None:
        self.error_callback = error_callback
        self._status: dict[str, StatusCallback | None] = {
            "disconnected": disconnected,
            "reconnected": reconnected,
            "closed": closed,
        }
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[Callable[[], Any] | None] | None = None
        self._thread: threading.Thread | None = None

    def post(self, fn: Callable[[], Any]) -> None:
        """Run ``fn()`` on the hooks thread, after everything posted before it (any thread)."""
        with self._lock:
            if self._queue is None:
                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(
                    target=_run,
                    args=(self._queue,),
                    name=f"syncmsg-hooks-{next(_hook_ids)}",
                    daemon=True,
                )
                self._thread.start()
            self._queue.put(fn)

    def status(self, what: str) -> None:
        """Post the user's ``<what>_callback`` (disconnected, reconnected, closed), if any."""
        hook = self._status.get(what)
        if hook is not None:
            self.post(hook)

    def report_error(
        self,
        error: BaseException,
        msg: Any = None,
        callback: ErrorCallback | None = None,
        *,
        on_loop: bool = False,
    ) -> None:
        """Give ``error`` to ``callback`` (or the client's error callback).

        ``on_loop``: the caller is the loop thread, so the call is posted to the hooks
        thread; otherwise it runs here, on the calling (worker or caller) thread.
        """
        hook = callback or self.error_callback
        if hook is None:
            return
        if on_loop:
            self.post(lambda: hook(error, msg))
            return
        try:
            hook(error, msg)
        except Exception:
            log.exception("syncmsg: error_callback raised")

    def stop(self) -> None:
        """Let the thread end once it has run everything posted so far (any thread)."""
        with self._lock:
            if self._queue is not None:
                self._queue.put(_STOP)
            self._queue = None
            self._thread = None

    def after_fork(self) -> Hooks:
        """The same callbacks, with no thread: the parent's did not survive the fork."""
        return Hooks(
            self.error_callback,
            disconnected=self._status["disconnected"],
            reconnected=self._status["reconnected"],
            closed=self._status["closed"],
        )


def _run(calls: queue.SimpleQueue[Callable[[], Any] | None]) -> None:
    """The hooks thread's body."""
    while True:
        fn = calls.get()
        if fn is _STOP:
            return
        try:
            fn()
        except Exception:
            log.exception("syncmsg: a status hook raised")
