"""Watchers: what an ordered consumer delivers, turned into items (key-value entries, object
infos), handed to a callback or read with :meth:`Watcher.updates` and iteration.

A watcher is an ordered consumer (:mod:`syncmsg.jetstream._ordered`) on a store's subjects,
so it sees every change once, in order, across reconnects and server restarts (the chain
of consumers goes on right after the last message delivered). The end of the initial
values (the messages the stream held when the watch began) is told apart:

* with a callback, :attr:`Watcher.caught_up` turns True (and :meth:`Watcher.wait_caught_up`
  returns) once the callback has returned for the last of them;
* read with :meth:`Watcher.updates` or by iteration, ``None`` comes once, right after the
  last of them (at once when there were none), as nats-py's watchers do.

Threading: a callback runs on the ordered consumer's one worker thread,
``syncmsg-js-<sid>-0``, one item at a time in stream order, never on the event loop; an
exception it raises is logged and passed to ``error_callback`` (on the hooks thread), and
the watch goes on. Without a callback, :meth:`Watcher.updates` and iteration run on the
caller's thread (any thread but the loop's). :meth:`Watcher.stop` may be called from any
thread, the callback's included.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from syncmsg._deadline import Deadline, check_timeout
from syncmsg._errors import ConnectionClosedError, TimeoutError
from syncmsg._types import ErrorCallback
from syncmsg.jetstream._message import JsMsg
from syncmsg.jetstream._ordered import OrderedSubscription, OrderedSyncSubscription

if TYPE_CHECKING:
    from syncmsg._msg import Msg
    from syncmsg.jetstream._context import JetStream

__all__ = ["Convert", "Watcher", "start_watcher"]

T = TypeVar("T")
#: Turns a delivered message into an item, or None to skip it (a delete, when deletes are
#: ignored). Runs on the thread that reads the message.
Convert = Callable[[JsMsg], "T | None"]
#: How long one wait of an iteration lasts before it looks again (so Ctrl-C gets through).
_ITER_SLICE = 1.0
#: How long one wait for the initial values lasts before ``caught_up`` is looked at again.
_BACKLOG_SLICE = 0.25


class Watcher(Generic[T]):
    """A running watch; made by ``kv.watch()``, ``kv.watchall()`` and ``obs.watch()``.

    With a callback, items go to it on a worker thread; without one, read them with
    :meth:`updates` or by iterating (``None`` once marks the end of the initial values).
    Use it as a context manager, or call :meth:`stop`.
    """

    def __init__(
        self,
        sub: OrderedSubscription | OrderedSyncSubscription,
        convert: Convert[T],
        what: str,
    ) -> None:
        self._sub = sub
        self._convert = convert
        self._what = what
        self._marked = False  # the None after the initial values has been handed out
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        state = "stopped" if self.stopped else "caught up" if self.caught_up else "catching up"
        return f"<{type(self).__name__} {self._what} {state}>"

    # ------------------------------------------------------------------ any thread
    @property
    def caught_up(self) -> bool:
        """True once the initial values have all been handed out (to the callback, which
        has returned, or to :meth:`updates`)."""
        return self._sub.caught_up

    def wait_caught_up(self, timeout: float | None = None) -> bool:
        """Wait until :attr:`caught_up`; False when ``timeout`` (seconds) ran out first."""
        return self._sub.wait_caught_up(timeout)

    @property
    def initial_pending(self) -> int:
        """How many initial values there were when the watch began."""
        return self._sub.initial_pending or 0

    @property
    def resets(self) -> int:
        """How often the watch had to make a new consumer (reconnects, restarts, gaps)."""
        return self._sub.resets

    @property
    def stopped(self) -> bool:
        return not self._sub.is_active

    def stop(self) -> None:
        """End the watch (its consumer is deleted); iteration then ends. Idempotent."""
        self._sub.unsubscribe()

    def __enter__(self) -> Watcher[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ caller's thread
    def updates(self, timeout: float = 5.0) -> T | None:
        """The next item, or ``None`` once right after the initial values; waits at most
        ``timeout`` seconds.

        Raises :class:`~syncmsg.TimeoutError` when nothing came in time,
        :class:`~syncmsg.ConnectionClosedError` once the watcher is stopped (or its client
        closed), and :class:`TypeError` for a watcher made with a callback (its items go
        there).
        """
        sub = self._sub
        if not isinstance(sub, OrderedSyncSubscription):
            raise TypeError(f"this watcher hands {self._what} to its callback")
        deadline = Deadline(check_timeout(timeout, 5.0))
        while True:
            if not sub.is_active:
                raise ConnectionClosedError(f"the watcher of {self._what} is stopped")
            with self._lock:
                if not self._marked and sub.caught_up:
                    self._marked = True
                    return None
            left = deadline.left()
            if left <= 0:
                raise TimeoutError(f"no {self._what} update within {timeout:g}s")
            if not self._marked:
                # The initial values may also end without a message (the last of them
                # vanished before delivery: the server's idle heartbeat says so).
                left = min(left, _BACKLOG_SLICE)
            try:
                msg = sub.next_msg(timeout=left)
            except TimeoutError:
                if not self._marked and deadline.left() > 0:
                    continue
                raise TimeoutError(f"no {self._what} update within {timeout:g}s") from None
            item = self._convert(msg)
            if item is not None:
                return item

    def __iter__(self) -> Iterator[T | None]:
        """Yield items as they come (``None`` once after the initial values) until the
        watcher is stopped or its client closed."""
        while True:
            try:
                item = self.updates(timeout=_ITER_SLICE)
            except TimeoutError:
                continue
            except ConnectionClosedError:
                return
            yield item


def start_watcher(
    js: JetStream,
    kind: type[Watcher[T]],
    *,
    stream: str,
    subjects: tuple[str, ...],
    convert: Convert[T],
    callback: Callable[[T], Any] | None,
    deliver_policy: str,
    headers_only: bool = False,
    prefetch: int | None = None,
    error_callback: ErrorCallback | None = None,
    timeout: float | None = None,
    what: str,
) -> Watcher[T]:
    """Start a watch of ``subjects`` in ``stream``: an ordered consumer from
    ``deliver_policy`` (``"last_per_subject"``, ``"all"`` or ``"new"``), whose messages
    ``convert`` turns into items (the caller's thread)."""
    subject: str | list[str] = subjects[0] if len(subjects) == 1 else list(subjects)
    if callback is None:
        sync = js.subscribe_sync(
            subject,
            ordered_consumer=True,
            stream=stream,
            deliver_policy=deliver_policy,
            headers_only=headers_only,
            prefetch=prefetch,
            error_callback=error_callback,
            timeout=timeout,
        )
        return kind(sync, convert, what)
    if not callable(callback):
        raise TypeError("callback must be callable")
    deliver = callback

    def handle(msg: Msg) -> None:  # the consumer's worker thread
        assert isinstance(msg, JsMsg)
        item = convert(msg)
        if item is not None:
            deliver(item)

    sub = js.subscribe(
        subject,
        handle,
        ordered_consumer=True,
        stream=stream,
        deliver_policy=deliver_policy,
        headers_only=headers_only,
        prefetch=prefetch,
        error_callback=error_callback,
        timeout=timeout,
    )
    return kind(sub, convert, what)
