"""The blocking, thread-safe client.

Threading model (see docs/threading.md):

* **Caller threads** (any number) run every public method. ``publish`` validates and encodes
  on the caller's thread and appends to the outbound queue: no round trip to the loop.
  ``request`` registers a waiter, queues the request the same way and waits on a
  ``threading.Event``. Other blocking calls hand one coroutine to the loop and wait for it
  with a timeout (:class:`~syncmsg._runtime.LoopThread`).
* **The loop thread** ``syncmsg-loop-N`` owns nats-py (:mod:`syncmsg._connection`). It never
  runs user code.
* **Worker threads** ``syncmsg-sub-<sid>-<i>`` run subscription callbacks.
* **The hooks thread** ``syncmsg-hooks-N`` runs status hooks (``disconnected_callback`` …)
  and reports of errors seen on the loop, so user code never runs on the loop.

A client created before ``os.fork()`` notices in the child that the pid changed and starts
afresh there, with a new loop thread and a new connection; it never touches the parent's
socket. Subscriptions stay with the process that made them.
"""

from __future__ import annotations

import atexit
import enum
import itertools
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from syncmsg._codec import Data, Headers, encode_headers, encode_payload, pub_command
from syncmsg._config import Config
from syncmsg._connection import SERVICE_ERROR, SERVICE_ERROR_CODE, Connection
from syncmsg._dispatch import MessageQueue
from syncmsg._errors import (
    ConfigurationError,
    ConnectionClosedError,
    LoopThreadError,
    PayloadTooLargeError,
    SlowConsumerError,
    SyncMsgError,
    TimeoutError,
)
from syncmsg._msg import Msg
from syncmsg._retry import RetryPolicy
from syncmsg._runtime import LoopThread
from syncmsg._subjects import check_publish_subject, check_queue, check_subscribe_subject
from syncmsg._subscription import ErrorCallback, Subscription, SyncSubscription, _Base

if TYPE_CHECKING:
    from syncmsg.jetstream import JetStream

__all__ = ["Client", "ClientState", "connect"]

log = logging.getLogger("syncmsg")

StatusCallback = Callable[[], Any]
_hook_ids = itertools.count(1)
_sids = itertools.count(1)
# How many messages may wait between the loop and a subscription's workers; the rest wait
# in nats-py's own bounded queue, which reports a slow consumer when it overflows.
_HANDOFF_MSGS = 1024


class ClientState(str, enum.Enum):
    """Where a client is in its life: NEW → CONNECTING → CONNECTED ⇄ RECONNECTING →
    DRAINING → CLOSED."""

    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DRAINING = "draining"
    CLOSED = "closed"


_CLOSED = ClientState.CLOSED  # a module global is cheaper than an enum lookup on the hot path


class Client:
    """A NATS connection for threaded code. Create it with :func:`syncmsg.connect`.

    Every method may be called from any thread. Blocking methods take ``timeout`` in
    seconds (default: ``config.timeout``) and raise :class:`~syncmsg.TimeoutError` when it
    runs out. Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        error_callback: ErrorCallback | None = None,
        disconnected_callback: StatusCallback | None = None,
        reconnected_callback: StatusCallback | None = None,
        closed_callback: StatusCallback | None = None,
    ) -> None:
        self._config = config or Config.build()
        self._error_callback = error_callback
        self._status_hooks: dict[str, StatusCallback | None] = {
            "disconnected": disconnected_callback,
            "reconnected": reconnected_callback,
            "closed": closed_callback,
        }
        self._state = ClientState.NEW
        self._state_lock = threading.RLock()
        self._pid = os.getpid()
        self._runtime: LoopThread | None = None
        self._conn: Connection | None = None
        self._subs: dict[int, _Base] = {}
        self._hooks: queue.SimpleQueue[Callable[[], Any] | None] | None = None
        self._hooks_thread: threading.Thread | None = None
        self._reconnects = 0
        self._errors = 0
        self._js: JetStream | None = None
        self._calls = 0
        self._fork_generation = _fork_generation
        _live_clients.add(self)

    def __repr__(self) -> str:
        servers = ",".join(self._config.redacted_servers)
        return f"<syncmsg.Client {self._state.value} {servers}>"

    # ================================================================ lifecycle
    @property
    def config(self) -> Config:
        return self._config

    @property
    def state(self) -> ClientState:
        return self._state

    @property
    def is_connected(self) -> bool:
        conn = self._conn
        return (
            self._state is ClientState.CONNECTED
            and self._pid == os.getpid()
            and conn is not None
            and conn.nc.is_connected
        )

    @property
    def is_closed(self) -> bool:
        return self._state is ClientState.CLOSED

    def connect(self, timeout: float | None = None) -> Client:
        """Connect (retrying per ``config.connect_retry``); returns the client itself."""
        with self._state_lock:
            if self._state is ClientState.CLOSED:
                raise ConnectionClosedError("client is closed")
            if self._state is not ClientState.NEW:
                return self
            self._state = ClientState.CONNECTING
        try:
            self._start(timeout)
        except BaseException:
            self._state = ClientState.NEW
            self._stop_runtime(1.0)
            raise
        return self

    def _start(self, timeout: float | None) -> None:
        runtime = LoopThread()
        runtime.start()
        conn = Connection(self, runtime, self._config)
        self._runtime, self._conn = runtime, conn
        attempt_timeout = self._config.connect_timeout
        deadline = None if timeout is None else time.monotonic() + timeout

        def attempt(left: float | None) -> None:
            limit = attempt_timeout if left is None else min(attempt_timeout, left)
            runtime.call(conn.connect(limit), limit + 0.5, what="connect")

        self._config.connect_retry.call(attempt, deadline=deadline)
        self._state = ClientState.CONNECTED
        url = conn.nc.connected_url
        log.info(
            "syncmsg: connected to %s:%s", url.hostname if url else "?", url.port if url else ""
        )

    def __enter__(self) -> Client:
        return self.connect()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self, timeout: float | None = None) -> None:
        """Flush, drain subscriptions, close the connection and end the threads.

        Idempotent. Everything happens under one deadline (default ``config.close_timeout``);
        callers still waiting are woken with :class:`~syncmsg.ConnectionClosedError`. Work not
        finished by the deadline is abandoned with a warning, never waited for forever.
        """
        self._shutdown(self._timeout(timeout, self._config.close_timeout), strict=False)

    def drain(self, timeout: float | None = None) -> None:
        """Like :meth:`close`, but raises :class:`~syncmsg.TimeoutError` if in-hand messages
        were not all handled before the deadline (default ``config.drain_timeout``)."""
        self._shutdown(self._timeout(timeout, self._config.drain_timeout), strict=True)

    def _shutdown(self, timeout: float, *, strict: bool) -> None:
        deadline = time.monotonic() + timeout
        with self._state_lock:
            if self._state in (ClientState.CLOSED, ClientState.DRAINING):
                return
            forked = self._pid != os.getpid()
            was_new = self._state is ClientState.NEW
            self._state = ClientState.DRAINING
        if forked or was_new:
            self._finish_close()
            return
        runtime, conn = self._runtime, self._conn
        assert runtime is not None and conn is not None
        in_loop = runtime.in_loop_thread()
        unfinished: list[str] = []
        for sub in list(self._subs.values()):
            left = max(deadline - time.monotonic(), 0.0)
            try:
                if in_loop:
                    sub._closed_by_client()
                else:
                    sub.drain(left)
            except SyncMsgError as exc:
                unfinished.append(f"{sub.subject}: {exc}")
        reason = ConnectionClosedError("client closed")
        conn.refuse_new_work(reason)
        if not in_loop:
            left = max(deadline - time.monotonic(), 0.0)
            try:
                runtime.call(conn.close(left), left, what="close")
            except SyncMsgError as exc:
                log.warning("syncmsg: close did not finish cleanly: %s", exc)
        conn.fail_waiters(reason)
        self._stop_runtime(max(deadline - time.monotonic(), 0.0))
        self._finish_close()
        if unfinished:
            message = "; ".join(unfinished)
            if strict:
                raise TimeoutError(f"drain did not finish: {message}")
            log.warning("syncmsg: close abandoned unfinished work: %s", message)

    def _stop_runtime(self, timeout: float) -> None:
        runtime = self._runtime
        if runtime is not None and not runtime.stop(timeout) and not runtime.in_loop_thread():
            log.warning("syncmsg: loop thread %s did not stop in time; abandoned", runtime.name)

    def _finish_close(self) -> None:
        for sub in list(self._subs.values()):
            sub._closed_by_client()
        self._subs.clear()
        self._state = ClientState.CLOSED
        self._run_hook("closed")
        hooks = self._hooks
        if hooks is not None:
            hooks.put(None)
        _live_clients.discard(self)

    # ================================================================ guards
    def _timeout(self, value: float | None, default: float | None = None) -> float:
        if value is None:
            return default if default is not None else self._config.timeout
        if value <= 0:
            raise ValueError(f"timeout must be positive, got {value!r}")
        return float(value)

    def _live(self) -> Connection:
        """The connection to use now; reconnects in a forked child, refuses after close.

        While the client drains, publishing still works: callbacks finishing their last
        messages must be able to reply and ack.
        """
        if self._pid != os.getpid() or self._fork_generation != _fork_generation:
            self._restart_after_fork()
        conn = self._conn
        state = self._state
        if conn is None or state is ClientState.NEW:
            if state is ClientState.CLOSED:
                raise ConnectionClosedError("client is closed")
            raise ConnectionClosedError("client is not connected: call connect() first")
        if state is ClientState.CLOSED:
            raise ConnectionClosedError("client is closed")
        return conn

    def _loop(self) -> LoopThread:
        runtime = self._runtime
        assert runtime is not None
        return runtime

    # ================================================================ publish / request
    def publish(
        self,
        subject: str,
        data: Data = b"",
        *,
        headers: Headers | None = None,
        reply: str | None = None,
    ) -> None:
        """Queue a message for ``subject``; returns without waiting for the network.

        ``data`` may be bytes, str (UTF-8), a dict or list (JSON) or a pydantic model.
        Messages published by one thread are sent in order. Call :meth:`flush` to wait until
        the server has them. Raises on bad input before anything is queued, and
        :class:`~syncmsg.BufferFullError` when disconnected with a full reconnect buffer.
        """
        # The hot path. os.getpid() is a system call, so the pid is checked on every 64th
        # call and whenever a fork hook has run; a child without fork hooks (uWSGI) is
        # caught within a few calls, and what it queued meanwhile moves to its new
        # connection (see _restart_after_fork).
        self._calls += 1
        conn = self._conn
        if (
            conn is None
            or not self._calls & 63
            or self._fork_generation != _fork_generation
            or self._state is _CLOSED
        ):
            conn = self._live()
        check_publish_subject(subject)
        if reply:
            check_publish_subject(reply, "reply subject")
        payload = data if type(data) is bytes else encode_payload(data)
        if len(payload) > conn.max_payload:
            raise PayloadTooLargeError(
                f"{len(payload)} bytes is more than the server's max_payload "
                f"({conn.max_payload}) on {subject!r}"
            )
        block = None if headers is None else encode_headers(headers)
        conn.enqueue(pub_command(subject, reply or "", payload, block))

    def flush(self, timeout: float | None = None) -> None:
        """Wait until the server has received everything published so far."""
        timeout = self._timeout(timeout)
        conn = self._live()
        self._loop().call(conn.flush(timeout), timeout, what="flush")

    def request(
        self,
        subject: str,
        data: Data = b"",
        *,
        headers: Headers | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> Msg:
        """Send a request and wait for its reply.

        Raises :class:`~syncmsg.TimeoutError`, :class:`~syncmsg.NoRespondersError`, or
        :class:`~syncmsg.RemoteError` when the responder's handler failed. With ``retry``
        (or ``config.request_retry``), timeouts and missing responders are retried with
        backoff; ``timeout`` then bounds each attempt.
        """
        timeout = self._timeout(timeout)
        conn = self._live()
        if self._loop().in_loop_thread():
            raise LoopThreadError("request() cannot be called from the event loop thread")
        check_publish_subject(subject)
        payload = encode_payload(data)
        header_block = encode_headers(headers)
        if len(payload) > conn.max_payload:
            raise PayloadTooLargeError(f"{len(payload)} bytes is more than max_payload")
        policy = retry or self._config.request_retry

        def once(left: float | None) -> Msg:
            wait = timeout if left is None else min(timeout, left)
            reply, waiter = conn.new_reply()
            conn.enqueue(pub_command(subject, reply, payload, header_block))
            return conn.await_reply(reply, waiter, wait, subject)

        if policy is None:
            return once(None)
        return policy.call(once)

    # ================================================================ subscriptions
    def subscribe(
        self,
        subject: str,
        callback: Callable[[Msg], Any],
        *,
        queue: str | None = None,
        workers: int | None = None,
        pending_msgs_limit: int | None = None,
        pending_bytes_limit: int | None = None,
        error_callback: ErrorCallback | None = None,
        timeout: float | None = None,
    ) -> Subscription:
        """Call ``callback(msg)`` on worker threads for each message on ``subject``.

        ``workers`` threads (default ``config.workers``, 1 keeps order) run the callback. An
        exception is logged with the subject and passed to ``error_callback`` (or the
        client's); it never stops the subscription. The subscription is registered at the
        server when this returns.
        """
        if not callable(callback):
            raise TypeError("callback must be callable")
        workers = workers or self._config.workers
        if workers < 1:
            raise ValueError("workers must be at least 1")

        def make(q: MessageQueue, sid: int) -> Subscription:
            return Subscription(
                self, subject, queue or "", q, callback, workers, error_callback, sid
            )

        sub = self._subscribe(
            subject, queue, pending_msgs_limit, pending_bytes_limit, timeout, make
        )
        assert isinstance(sub, Subscription)
        return sub

    def subscribe_sync(
        self,
        subject: str,
        *,
        queue: str | None = None,
        pending_msgs_limit: int | None = None,
        pending_bytes_limit: int | None = None,
        timeout: float | None = None,
    ) -> SyncSubscription:
        """Subscribe, and read messages with ``next_msg(timeout=...)`` or by iterating."""

        def make(q: MessageQueue, sid: int) -> SyncSubscription:
            sub = SyncSubscription(self, subject, queue or "", q)
            sub.sid = sid
            return sub

        sub = self._subscribe(
            subject, queue, pending_msgs_limit, pending_bytes_limit, timeout, make
        )
        assert isinstance(sub, SyncSubscription)
        return sub

    def _subscribe(
        self,
        subject: str,
        queue: str | None,
        pending_msgs_limit: int | None,
        pending_bytes_limit: int | None,
        timeout: float | None,
        make: Callable[[MessageQueue, int], _Base],
    ) -> _Base:
        timeout = self._timeout(timeout)
        conn = self._live()
        if self._state is ClientState.DRAINING:
            raise ConnectionClosedError("client is closing; no new subscriptions")
        check_subscribe_subject(subject)
        queue_group = check_queue(queue)
        msgs = pending_msgs_limit or self._config.pending_msgs_limit
        limit_bytes = pending_bytes_limit or self._config.pending_bytes_limit
        runtime = self._loop()
        handoff = MessageQueue(runtime.loop, min(msgs, _HANDOFF_MSGS), limit_bytes)
        sid = next(_sids)
        sub = make(handoff, sid)
        self._subs[sid] = sub
        try:
            sub._nats_sub = runtime.call(
                conn.subscribe(subject, queue_group, sub._deliver, msgs, limit_bytes, timeout),
                timeout,
                what=f"subscribe {subject}",
            )
        except BaseException:
            sub._closed_by_client()
            self._subs.pop(sid, None)
            raise
        return sub

    def serve(
        self,
        subject: str,
        handler: Callable[[Msg], Data],
        *,
        queue: str | None = None,
        workers: int | None = None,
        error_callback: ErrorCallback | None = None,
    ) -> Subscription:
        """Answer requests on ``subject`` with ``handler(msg)``'s return value.

        If the handler raises, the requester gets an error reply (the ``Nats-Service-Error``
        headers of NATS services), which :meth:`request` raises as
        :class:`~syncmsg.RemoteError`.
        """

        def respond(msg: Msg) -> None:
            try:
                result = handler(msg)
            except Exception as exc:
                if msg.reply:
                    description = (str(exc) or type(exc).__name__).replace("\r", " ")
                    msg.respond(
                        b"",
                        headers={
                            SERVICE_ERROR: description.replace("\n", " "),
                            SERVICE_ERROR_CODE: "500",
                        },
                    )
                raise
            if msg.reply:
                msg.respond(result)

        return self.subscribe(
            subject, respond, queue=queue, workers=workers, error_callback=error_callback
        )

    def _remove_interest(self, sub: _Base, *, drain: bool, timeout: float | None = None) -> None:
        """Tell the server to stop sending ``sub``'s messages (any thread but the loop)."""
        runtime, conn = self._runtime, self._conn
        if (
            runtime is None
            or conn is None
            or sub._nats_sub is None
            or self._pid != os.getpid()
            or runtime.in_loop_thread()
            or not runtime.is_alive
        ):
            return
        wait = self._timeout(timeout)
        try:
            runtime.call(conn.unsubscribe(sub._nats_sub, drain), wait, what="unsubscribe")
        except SyncMsgError as exc:
            log.debug("syncmsg: unsubscribe from %r failed: %s", sub.subject, exc)

    def _forget(self, sub: _Base) -> None:
        self._subs.pop(sub.sid, None)

    # ================================================================ JetStream
    def jetstream(self, **options: Any) -> JetStream:
        """The JetStream API on this connection (see :mod:`syncmsg.jetstream`)."""
        from syncmsg.jetstream import JetStream

        self._live()
        if options:
            return JetStream(self, **options)
        if self._js is None:
            self._js = JetStream(self)
        return self._js

    # ================================================================ observability
    def health(self, timeout: float | None = None) -> dict[str, Any]:
        """Connection state and a measured round-trip time; never raises.

        ``{"ok": bool, "state": ..., "connected": bool, "server": url, "rtt_ms": float|None,
        "error": str|None}``
        """
        timeout = self._timeout(timeout)
        info: dict[str, Any] = {
            "ok": False,
            "state": self._state.value,
            "connected": self.is_connected,
            "server": None,
            "rtt_ms": None,
            "error": None,
        }
        conn = self._conn
        if conn is not None and conn.nc.connected_url is not None:
            url = conn.nc.connected_url
            info["server"] = f"{url.scheme}://{url.hostname}:{url.port}"
            info["server_id"] = conn.server_info.get("server_id")
            info["server_version"] = conn.server_info.get("version")
        if not info["connected"]:
            info["error"] = f"not connected ({self._state.value})"
            return info
        started = time.perf_counter()
        try:
            self.flush(timeout)
        except SyncMsgError as exc:
            info["error"] = str(exc)
            return info
        info["rtt_ms"] = round((time.perf_counter() - started) * 1000, 3)
        info["ok"] = True
        return info

    def stats(self) -> dict[str, Any]:
        """Counters: messages and bytes in and out, reconnects, buffered bytes, subscriptions."""
        conn = self._conn
        nats_stats: dict[str, int] = dict(conn.nc.stats) if conn is not None else {}
        return {
            "state": self._state.value,
            "out_msgs": conn.out_msgs if conn else 0,
            "out_bytes": conn.out_bytes if conn else 0,
            "in_msgs": nats_stats.get("in_msgs", 0),
            "in_bytes": nats_stats.get("in_bytes", 0),
            "reconnects": self._reconnects,
            "errors": self._errors,
            "buffered_bytes": conn.buffered_bytes if conn else 0,
            "subscriptions": [sub.stats() for sub in list(self._subs.values())],
        }

    # ================================================================ status (loop thread)
    def _on_status(self, what: str) -> None:
        if what == "disconnected":
            if self._state is not ClientState.CONNECTED:
                return  # closing on purpose
            self._state = ClientState.RECONNECTING
            log.warning("syncmsg: disconnected from NATS; reconnecting")
        elif what == "reconnected":
            self._reconnects += 1
            if self._state is ClientState.RECONNECTING:
                self._state = ClientState.CONNECTED
            log.info("syncmsg: reconnected")
        elif what == "closed":
            if self._state not in (ClientState.DRAINING, ClientState.CLOSED):
                # nats-py gave up (max_reconnect_attempts): nothing more can succeed.
                log.error("syncmsg: connection closed by nats-py; the client is closed")
                self._state = ClientState.CLOSED
                reason = ConnectionClosedError("connection lost and reconnecting gave up")
                if self._conn is not None:
                    self._conn.refuse_new_work(reason)
                    self._conn.fail_waiters(reason)
                for sub in list(self._subs.values()):
                    sub._closed_by_client()
            return  # the "closed" hook runs from _finish_close or below
        self._run_hook(what)

    def _on_connection_error(self, error: BaseException, raw: BaseException) -> None:
        self._errors += 1
        if isinstance(error, SlowConsumerError):
            self._on_slow_consumer(getattr(raw, "sid", None))
            return
        if self._state is ClientState.RECONNECTING:
            # Each failed reconnect attempt reports an error; the outage is already logged.
            log.debug("syncmsg: reconnect attempt failed: %s", error)
        else:
            log.error("syncmsg: connection error: %s", error)
        self._report_error(error, None, None)

    def _on_slow_consumer(self, sid: int | None) -> None:
        """nats-py dropped a message for subscription ``sid`` (loop thread).

        Reported at most once a second per subscription, with the running count, so a flood
        of drops cannot flood the log or the hooks queue.
        """
        for sub in list(self._subs.values()):
            if sub._nats_sub is None or sub._nats_sub._id != sid:
                continue
            sub.dropped += 1
            now = time.monotonic()
            if now - sub._slow_reported_at < 1.0:
                return
            sub._slow_reported_at = now
            log.warning(
                "syncmsg: slow consumer on %r: %d messages dropped so far", sub.subject, sub.dropped
            )
            error = SlowConsumerError(
                f"slow consumer on {sub.subject!r}: messages dropped",
                subject=sub.subject,
                dropped=sub.dropped,
            )
            self._report_error(error, None, getattr(sub, "_error_callback", None))
            return

    def _report_error(
        self, error: BaseException, msg: Msg | None, callback: ErrorCallback | None
    ) -> None:
        """Hand ``error`` to the user's error callback, off the loop thread."""
        hook = callback or self._error_callback
        if hook is None:
            return
        runtime = self._runtime
        if runtime is not None and runtime.in_loop_thread():
            self._post_hook(lambda: hook(error, msg))
        else:
            try:
                hook(error, msg)
            except Exception:
                log.exception("syncmsg: error_callback raised")

    def _run_hook(self, what: str) -> None:
        hook = self._status_hooks.get(what)
        if hook is not None:
            self._post_hook(hook)

    def _post_hook(self, fn: Callable[[], Any]) -> None:
        with self._state_lock:
            if self._hooks is None:
                self._hooks = queue.SimpleQueue()
                self._hooks_thread = threading.Thread(
                    target=_run_hooks,
                    args=(self._hooks,),
                    name=f"syncmsg-hooks-{next(_hook_ids)}",
                    daemon=True,
                )
                self._hooks_thread.start()
        self._hooks.put(fn)

    # ================================================================ fork and exit
    def _restart_after_fork(self) -> None:
        """In a forked child: forget the parent's loop and socket, connect afresh.

        When a fork hook ran, the inherited outbound queue held only the parent's messages
        and was emptied by the hook. Without one (uWSGI), the child may have queued a few
        messages before noticing; they are carried over to the new connection.
        """
        with _fork_lock:
            if self._pid == os.getpid() and self._fork_generation == _fork_generation:
                return
            inherited = self._conn.take_outbound() if self._conn is not None else []
            _abandoned.append((self._runtime, self._conn))  # never closed: the parent's
            self._pid = os.getpid()
            self._fork_generation = _fork_generation
            self._runtime = None
            self._conn = None
            self._js = None
            self._subs.clear()
            self._hooks = None
            self._hooks_thread = None
            self._state_lock = threading.RLock()
            if self._state in (ClientState.CLOSED, ClientState.DRAINING):
                self._state = ClientState.CLOSED
                return
            self._state = ClientState.NEW
            _live_clients.add(self)
            log.info("syncmsg: pid changed (fork); reconnecting in the child")
            self.connect()
            conn = self._conn
            assert conn is not None
            for command in inherited:
                conn.enqueue(command)

    def _close_at_exit(self) -> None:
        if self._pid != os.getpid() or self._state is not ClientState.CONNECTED:
            return
        timeout = self._config.atexit_timeout
        if timeout <= 0:
            return
        try:
            self.flush(timeout)
        except SyncMsgError as exc:
            log.warning("syncmsg: at exit, could not flush accepted publishes: %s", exc)
        try:
            self._shutdown(timeout, strict=False)
        except SyncMsgError as exc:  # pragma: no cover - shutdown logs instead of raising
            log.warning("syncmsg: at exit: %s", exc)


def _run_hooks(hooks: queue.SimpleQueue[Callable[[], Any] | None]) -> None:
    while True:
        fn = hooks.get()
        if fn is None:
            return
        try:
            fn()
        except Exception:
            log.exception("syncmsg: a status hook raised")


_live_clients: weakref.WeakSet[Client] = weakref.WeakSet()
_abandoned: list[tuple[Any, Any]] = []
_fork_lock = threading.Lock()
_fork_generation = 0


def _close_all_at_exit() -> None:
    for client in list(_live_clients):
        client._close_at_exit()


def _after_fork_in_child() -> None:
    global _fork_lock, _fork_generation
    # A lock held by another thread at fork time would stay held forever in the child.
    _fork_lock = threading.Lock()
    _fork_generation += 1
    for client in list(_live_clients):
        if client._conn is not None:
            client._conn.take_outbound()  # the parent's messages: the parent sends them


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def connect(
    servers: str | list[str] | None = None,
    *,
    config: Config | None = None,
    error_callback: ErrorCallback | None = None,
    disconnected_callback: StatusCallback | None = None,
    reconnected_callback: StatusCallback | None = None,
    closed_callback: StatusCallback | None = None,
    **options: Any,
) -> Client:
    """Connect to NATS and return a connected :class:`Client`.

    ``servers`` is a URL, a comma-separated list or a list; ``None`` reads ``NATS_URL``.
    Other keywords are :class:`Config` fields (``timeout`` is the default timeout of every
    blocking call) and override ``config`` and the environment. The first connection is
    retried per ``connect_retry``, each attempt bounded by ``connect_timeout``::

        with syncmsg.connect("nats://localhost:4222", timeout=2.0) as client:
            client.publish("greetings", "hello")
    """
    if config is None:
        config = Config.build(servers, **options)
    elif servers is not None or options:
        if servers is not None:
            options["url"] = servers
        config = config.merged(**options)
    if not isinstance(config, Config):
        raise ConfigurationError("config must be a syncmsg.Config")
    client = Client(
        config,
        error_callback=error_callback,
        disconnected_callback=disconnected_callback,
        reconnected_callback=reconnected_callback,
        closed_callback=closed_callback,
    )
    return client.connect()
