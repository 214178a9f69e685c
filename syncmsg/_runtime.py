"""The event-loop thread, and the one bridge from caller threads into it.

Threading: :class:`LoopThread` starts a daemon thread named ``syncmsg-loop-N`` that runs an
asyncio loop for its whole life. Every nats-py object lives on that thread. Other threads
reach it only through :meth:`LoopThread.call` (run a coroutine and wait for its result with
a timeout) or :meth:`LoopThread.call_soon` (schedule a plain function, never wait); only
:class:`~syncmsg._connection.Connection` holds a loop thread and uses them.

A blocking call made from the loop thread itself would wait for the loop it is blocking, so
:meth:`LoopThread.call` refuses it with :class:`~syncmsg.LoopThreadError`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from syncmsg._errors import ConnectionClosedError, LoopThreadError, TimeoutError, map_error

__all__ = ["LoopThread"]

T = TypeVar("T")
log = logging.getLogger("syncmsg")

_counter = itertools.count(1)

# The loop enforces each call's timeout itself; the caller waits this much longer so that a
# late but successful result is not reported as a timeout, yet a wedged loop still is.
_CALLER_GRACE = 0.25
# How many times the stopping loop is run to let cancelled tasks finish: each stop() queues
# at most one loop.stop, a client stops its loop from at most a few places, and a cancelled
# task starts at most one more (nats-py's reconnect, its flusher).
_LEFTOVER_RUNS = 4
# How long one of those runs waits for the cancelled tasks (seconds): nats-py's tasks end
# within a loop turn or two of their cancellation; only a task that ignored it takes longer.
_LEFTOVER_WAIT = 1.0


class LoopThread:
    """One long-lived asyncio loop on a daemon thread."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or f"syncmsg-loop-{next(_counter)}"
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._started = threading.Event()
        self._ident: int | None = None
        self._closed_reason: BaseException | None = None
        self._waiting: set[concurrent.futures.Future[Any]] = set()
        self._waiting_lock = threading.Lock()

    # -- lifecycle (caller threads) -----------------------------------------------------
    def start(self) -> None:
        self._thread.start()
        self._started.wait(5.0)

    def _run(self) -> None:
        self._ident = threading.get_ident()
        asyncio.set_event_loop(self.loop)
        self._started.set()
        try:
            self.loop.run_forever()
        finally:
            try:
                self._cancel_leftovers()
            finally:
                self.loop.close()

    def _cancel_leftovers(self) -> None:
        # Cancel every task, and run the stopping loop until they have finished: a task
        # left pending on the closed loop is finalized at garbage collection, and its
        # coroutine then fails with "Event loop is closed". In rounds of at most
        # _LEFTOVER_WAIT, a bounded number of them: a task may start another while it is
        # cancelled (nats-py's reconnect starts its flusher); one may swallow its
        # cancellation (asyncio.wait_for on Python 3.11 loses it when the awaited result
        # arrives at the same moment) and is cancelled again after a whole round; and a
        # second stop() (two threads closing at once, or the reconnect limit while close()
        # runs) may have queued loop.stop, which cuts a round short: then the tasks already
        # cancelled go on with their cleanup undisturbed.
        cancelled: set[asyncio.Task[Any]] = set()
        cancel_again = False
        for _ in range(_LEFTOVER_RUNS):
            tasks = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
            if not tasks:
                return
            for task in tasks:
                if cancel_again or task not in cancelled:
                    task.cancel()
                    cancelled.add(task)
            try:
                self.loop.run_until_complete(asyncio.wait(tasks, timeout=_LEFTOVER_WAIT))
                cancel_again = True
            except RuntimeError:  # "Event loop stopped before Future completed."
                cancel_again = False

    def stop(self, timeout: float, reason: BaseException | None = None) -> bool:
        """Stop the loop and join its thread; True when it ended within ``timeout``.

        Every caller still waiting in :meth:`call` is woken with ``reason``.
        """
        self._closed_reason = reason or ConnectionClosedError("client closed")
        with self._waiting_lock:
            waiting = list(self._waiting)
        for future in waiting:
            if not future.done():
                future.set_exception(self._closed_reason)
        if self.in_loop_thread():
            self.loop.stop()
            return False
        if self._thread.is_alive() and not self.loop.is_closed():
            # The loop may close between the check and the call.
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(max(timeout, 0.0))
        return not self._thread.is_alive()

    @property
    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def in_loop_thread(self) -> bool:
        return threading.get_ident() == self._ident

    # -- the bridge ---------------------------------------------------------------------
    def call_soon(self, fn: Callable[..., object], *args: object) -> None:
        """Schedule ``fn(*args)`` on the loop; returns at once. Thread-safe."""
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            raise ConnectionClosedError("client closed") from None

    def submit(
        self, coro: Coroutine[Any, Any, T], timeout: float | None
    ) -> concurrent.futures.Future[T]:
        """Start ``coro`` on the loop under ``timeout``; return a future for the caller."""
        if self._closed_reason is not None:
            coro.close()
            raise ConnectionClosedError(str(self._closed_reason))
        bounded = coro if timeout is None else asyncio.wait_for(coro, timeout)
        try:
            future = asyncio.run_coroutine_threadsafe(bounded, self.loop)
        except RuntimeError:
            coro.close()
            raise ConnectionClosedError("client closed") from None
        with self._waiting_lock:
            self._waiting.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: concurrent.futures.Future[Any]) -> None:
        with self._waiting_lock:
            self._waiting.discard(future)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None, *, what: str = "") -> T:
        """Run ``coro`` on the loop and wait for its result, at most about ``timeout`` s.

        Refuses to run from the loop thread (:class:`~syncmsg.LoopThreadError`). On timeout or
        Ctrl-C the coroutine is cancelled. Errors come back mapped to syncmsg's tree.
        """
        if self.in_loop_thread():
            coro.close()
            raise LoopThreadError(
                f"{what or 'this call'} blocks, and cannot be called from the event loop thread "
                f"{self.name!r}; call it from another thread"
            )
        future = self.submit(coro, timeout)
        return self.wait(future, timeout, what=what)

    def wait(
        self, future: concurrent.futures.Future[T], timeout: float | None, *, what: str = ""
    ) -> T:
        """Wait for a future from :meth:`submit`, cancelling it when the wait ends early."""
        limit = None if timeout is None else timeout + _CALLER_GRACE
        try:
            return future.result(limit)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"{what or 'call'} timed out after {timeout:g}s") from None
        except concurrent.futures.CancelledError:
            raise ConnectionClosedError(str(self._closed_reason or "client closed")) from None
        except KeyboardInterrupt:
            future.cancel()
            raise
        except BaseException as exc:
            mapped = map_error(exc, subject=what)
            if mapped is exc:
                raise
            raise mapped from None
