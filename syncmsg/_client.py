"""The blocking, thread-safe client: a thin facade over the core's pieces.

Threading model (see docs/threading.md):

* **Caller threads** (any number) run every public method. ``publish`` validates and encodes
  on the caller's thread and appends to the outbound queue: no round trip to the loop.
  ``request`` registers a waiter with the reply mux, queues the request the same way and
  waits on a lock the loop releases. Other blocking calls hand one coroutine to the loop
  and wait for it with a timeout. None may be called from the loop thread.
* **The loop thread** ``syncmsg-loop-N`` owns nats-py (:mod:`syncmsg._connection`). It never
  runs user code. It calls :meth:`Client._on_status` and :meth:`Client._on_error`, and
  :meth:`Client.publish` for the automatic acks of JetStream consumers' closing messages.
* **Worker threads** ``syncmsg-sub-<sid>-<i>`` run subscription callbacks
  (:mod:`syncmsg._subscription`).
* **The hooks thread** ``syncmsg-hooks-N`` runs status hooks (``disconnected_callback`` …)
  and reports of errors seen on the loop (:mod:`syncmsg._hooks`).

Every lifecycle change goes through the one state machine (:mod:`syncmsg._lifecycle`);
``state``, ``is_connected`` and ``health()`` all read it, so they never disagree.

A client created before ``os.fork()`` notices in the child that the pid changed and starts
afresh there, with a new loop thread and a new connection; it never touches the parent's
socket. The restart is a state transition: other threads of the child that need the
connection meanwhile wait for it. Subscriptions stay with the process that made them.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from syncmsg import _instrumentation
from syncmsg._codec import Data, Headers, encode_headers, encode_payload, pub_command
from syncmsg._config import Config
from syncmsg._connection import Connection
from syncmsg._deadline import Deadline, check_timeout
from syncmsg._dispatch import MessageQueue
from syncmsg._errors import (
    ConfigurationError,
    ConnectionClosedError,
    LoopThreadError,
    NatsConnectionError,
    PayloadTooLargeError,
    SlowConsumerError,
    SyncMsgError,
    TimeoutError,
    describe_remote_exception,
    is_definite_refusal,
)
from syncmsg._hooks import Hooks
from syncmsg._instrumentation import TracedHeaders
from syncmsg._lifecycle import (
    CLOSED,
    CONNECTED,
    CONNECTING,
    DRAINING,
    LIVE,
    NEW,
    RECONNECTING,
    ClientState,
    Lifecycle,
)
from syncmsg._msg import Msg
from syncmsg._replies import REPLY_TOKEN_LENGTH, SERVICE_ERROR, SERVICE_ERROR_CODE, new_token
from syncmsg._retry import RetryPolicy
from syncmsg._subjects import check_publish, check_request, check_subscription
from syncmsg._subscription import (
    Subscription,
    SubscriptionRegistry,
    SyncSubscription,
)
from syncmsg._types import ErrorCallback, StatusCallback

if TYPE_CHECKING:
    from syncmsg.jetstream import JetStream
    from syncmsg.services import Service

__all__ = ["Client", "ClientState", "connect"]

log = logging.getLogger("syncmsg")

#: Even when the close budget is spent (an unreachable server took it), closing the
#: nats-py client and ending the loop thread each get this long, so that nothing is left
#: half closed.
_MIN_CLOSE_STEP = 0.25


class Client:
    """A NATS connection for threaded code. Create it with :func:`syncmsg.connect`.

    Every method may be called from any thread but the client's own event-loop thread.
    Blocking methods take ``timeout`` in seconds (default: ``config.timeout``) and raise
    :class:`~syncmsg.TimeoutError` when it runs out. Use it as a context manager, or call
    :meth:`close`.

    For layers built on the core (syncmsg's JetStream, key-value and services, or your
    own), :meth:`connection`, :attr:`hooks` and :attr:`subscriptions` are the shared core
    API: the live :class:`~syncmsg._connection.Connection`, the thread that runs user
    callbacks, and the registry of live subscriptions.
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
        self.hooks = Hooks(
            error_callback,
            disconnected=disconnected_callback,
            reconnected=reconnected_callback,
            closed=closed_callback,
        )
        self.subscriptions = SubscriptionRegistry()
        self._lifecycle = Lifecycle()
        self._conn: Connection | None = None
        self._pid = os.getpid()
        self._fork_generation = _fork_generation
        self._reconnects = 0
        self._errors = 0
        self._calls = 0
        self._js: JetStream | None = None
        if self._config.tracing:
            _instrumentation.enable()
        _live_clients.add(self)

    def __repr__(self) -> str:
        servers = ",".join(self._config.redacted_servers)
        return f"<syncmsg.Client {self.state.value} {servers}>"

    # ================================================================ state (any thread)
    @property
    def config(self) -> Config:
        return self._config

    @property
    def state(self) -> ClientState:
        """The lifecycle state. In a forked child that has not used the client yet, the
        state its restart will start from (``connecting``)."""
        state = self._lifecycle.state
        if self._pid != os.getpid() and state in LIVE:
            return CLOSED if state is DRAINING else CONNECTING
        return state

    @property
    def is_connected(self) -> bool:
        return self.state is CONNECTED

    @property
    def is_closed(self) -> bool:
        return self.state is CLOSED

    @property
    def reconnects(self) -> int:
        """How many times the connection came back after being lost."""
        return self._reconnects

    @property
    def server_info(self) -> dict[str, Any]:
        """The connected server's INFO (``server_id``, ``version``, ``max_payload``, …)."""
        conn = self._conn
        return dict(conn.server_info) if conn is not None else {}

    @property
    def max_payload(self) -> int:
        """The largest message (payload plus headers) the server accepts, in bytes."""
        conn = self._conn
        return conn.max_payload if conn is not None else 0

    @property
    def connected_url(self) -> str | None:
        """The server connected to now (credentials removed), or None."""
        conn = self._conn
        return conn.connected_url if conn is not None and self.is_connected else None

    @property
    def servers(self) -> list[str]:
        """Every server this client may connect to: configured and discovered."""
        conn = self._conn
        return conn.servers if conn is not None else list(self._config.redacted_servers)

    @property
    def discovered_servers(self) -> list[str]:
        """Servers the cluster told this client about."""
        conn = self._conn
        return conn.discovered_servers if conn is not None else []

    # ================================================================ lifecycle
    def connect(self, timeout: float | None = None) -> Client:
        """Connect, retrying per ``config.connect_retry``; returns the client itself.

        ``timeout`` bounds the whole connect, retries included. Definite refusals (bad
        credentials, a bad certificate) are not retried. Called while another thread
        connects, waits for that connect.

        :raises ConnectionClosedError: the client is closed.
        :raises NoServersError: no server could be reached in time.
        :raises AuthorizationError: the server refused the credentials.
        :raises TLSError: the TLS handshake was refused (certificate, host name).
        """
        self._check_fork()
        lifecycle = self._lifecycle
        if not lifecycle.transition(CONNECTING, expect={NEW}):
            state = lifecycle.state
            if state is CONNECTING:
                state = lifecycle.wait_while({CONNECTING}, timeout or self._connect_budget())
            if state is CLOSED:
                raise ConnectionClosedError("client is closed")
            if state is not NEW:
                return self
            raise ConnectionClosedError("connecting (in another thread) failed")
        try:
            conn = self._open_connection(Deadline(timeout))
        except BaseException:
            lifecycle.transition(NEW, expect={CONNECTING})
            raise
        self._conn = conn
        if not lifecycle.transition(CONNECTED, expect={CONNECTING}):
            conn.close(1.0)  # closed while connecting
            conn.stop(1.0)
            raise ConnectionClosedError("client was closed while connecting")
        log.info("syncmsg: connected to %s", conn.connected_url)
        return self

    def _open_connection(self, deadline: Deadline) -> Connection:
        """A new, connected :class:`Connection` (caller thread)."""
        conn = Connection(self._config, on_status=self._on_status, on_error=self._on_error)
        conn.start()
        attempt_timeout = self._config.connect_timeout

        def attempt(left: float | None) -> None:
            conn.connect(attempt_timeout if left is None else min(attempt_timeout, left))

        try:
            self._config.connect_retry.call(
                attempt, deadline=deadline.at, should_retry=self._retry_connect
            )
        except BaseException:
            conn.stop(1.0)
            raise
        return conn

    def _retry_connect(self, exc: BaseException) -> bool:
        if is_definite_refusal(exc):
            return False  # bad credentials, a bad certificate: trying again cannot help
        return isinstance(exc, self._config.connect_retry.retry_on)

    def _connect_budget(self) -> float:
        return self._config.connect_retry.deadline or self._config.connect_timeout

    def __enter__(self) -> Client:
        return self.connect()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self, timeout: float | None = None) -> None:
        """Flush, drain subscriptions, close the connection and end the threads.

        Idempotent; called while another thread closes, waits for that close. Everything
        happens under one deadline (default ``config.close_timeout``); callers still
        waiting are woken with :class:`~syncmsg.ConnectionClosedError`. Work not finished
        by the deadline is abandoned with a warning, never waited for forever. Unread
        messages of ``subscribe_sync`` subscriptions are discarded at once.
        """
        self._shutdown(check_timeout(timeout, self._config.close_timeout), strict=False)

    def drain(self, timeout: float | None = None) -> None:
        """Like :meth:`close`, but raises :class:`~syncmsg.TimeoutError` if in-hand messages
        were not all handled before the deadline (default ``config.drain_timeout``)."""
        self._shutdown(check_timeout(timeout, self._config.drain_timeout), strict=True)

    def _shutdown(self, timeout: float, *, strict: bool) -> None:
        deadline = Deadline(timeout)
        if self._pid != os.getpid() or self._fork_generation != _fork_generation:
            self._forget_parent()
        lifecycle = self._lifecycle
        while True:
            state = lifecycle.state
            if state is CLOSED:
                self._stop_loop_thread(deadline)
                return
            if state is DRAINING:  # another thread is closing: wait for it
                lifecycle.wait_while({DRAINING}, deadline.left())
                return
            if state in (NEW, CONNECTING):
                if lifecycle.transition(CLOSED, expect={NEW, CONNECTING}):
                    self._finish_close(was_connected=False)
                    return
                continue
            if lifecycle.transition(DRAINING, expect={CONNECTED, RECONNECTING}):
                was_connected = state is CONNECTED
                break
        conn = self._conn
        assert conn is not None
        in_loop = conn.in_loop_thread()
        unfinished: list[str] = []
        for sub in self.subscriptions:
            try:
                if in_loop:
                    sub._closed_by_client()
                else:
                    sub._close_with_client(deadline.left())
            except SyncMsgError as exc:
                unfinished.append(f"{sub.subject}: {exc}")
        reason = ConnectionClosedError("client closed")
        conn.refuse_new_work(reason)
        if conn.is_connected and not in_loop and not conn.all_confirmed:
            # The PONG comes after every reply the server routed back to us before it:
            # answers to requests made while draining are in.
            try:
                conn.flush(deadline.left())
            except SyncMsgError as exc:
                log.warning("syncmsg: final flush failed: %s", exc)
        # Wake the waiters before the close, which can take all that is left of the budget
        # when the server is unreachable.
        conn.replies.close(reason)
        conn.close(max(deadline.left(), _MIN_CLOSE_STEP))
        if not conn.stop(max(deadline.left(), _MIN_CLOSE_STEP), reason) and not in_loop:
            log.warning("syncmsg: loop thread %s did not stop in time; abandoned", conn.thread_name)
        self._finish_close(was_connected)
        if unfinished:
            message = "; ".join(unfinished)
            if strict:
                raise TimeoutError(f"drain did not finish: {message}")
            log.warning("syncmsg: close abandoned unfinished work: %s", message)

    def _stop_loop_thread(self, deadline: Deadline) -> None:
        """The client closed under us (reconnecting gave up): end the loop thread now."""
        conn = self._conn
        if conn is not None and conn.loop_alive and not conn.in_loop_thread():
            conn.stop(deadline.left())

    def _finish_close(self, was_connected: bool) -> None:
        for sub in self.subscriptions.clear():
            sub._closed_by_client()
        self._lifecycle.transition(CLOSED, expect={DRAINING, NEW, CONNECTING})
        if was_connected:
            self.hooks.status("disconnected")
        self.hooks.status("closed")
        self.hooks.stop()
        _live_clients.discard(self)

    # ================================================================ the shared core API
    def connection(self, timeout: float | None = None) -> Connection:
        """The connection to use now (any thread but the loop).

        Reconnects in a forked child, and waits (at most ``timeout``, default the connect
        budget) while a connect or a fork restart is in progress. Works while the client
        drains: callbacks finishing their last messages must be able to reply and ack.

        :raises ConnectionClosedError: the client is closed, or was never connected.
        """
        self._check_fork()
        lifecycle = self._lifecycle
        state = lifecycle.state
        if state is CONNECTING:
            state = lifecycle.wait_while({CONNECTING}, timeout or self._connect_budget())
        conn = self._conn
        if state is CLOSED:
            raise ConnectionClosedError("client is closed")
        if conn is None or state is NEW or state is CONNECTING:
            raise ConnectionClosedError("client is not connected: call connect() first")
        return conn

    def _check_fork(self) -> None:
        if self._pid != os.getpid() or self._fork_generation != _fork_generation:
            self._restart_after_fork()

    def _guard(self, conn: Connection, what: str) -> None:
        if conn.in_loop_thread():
            raise LoopThreadError(
                f"{what}() blocks, and cannot be called from the event loop thread "
                f"{conn.thread_name!r}; call it from another thread"
            )

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

        Any thread, the loop's included (syncmsg's own acks). ``data`` may be bytes, str
        (UTF-8), a dict or list (JSON), a pydantic model, or None (an empty payload).
        Messages published by one thread are sent in order. Call :meth:`flush` to wait
        until the server has them. Raises on bad input before anything is queued, and
        :class:`~syncmsg.BufferFullError` when disconnected with a full reconnect buffer.
        """
        tracing = _instrumentation.active  # None unless syncmsg.otel is instrumenting
        if tracing is not None and type(headers) is not TracedHeaders:
            tracing.publish(self, subject, data, headers, reply)  # calls back, traced
            return
        # The hot path. os.getpid() is a system call, so the pid is checked on every 64th
        # call and whenever a fork hook has run; a child without fork hooks (uWSGI) is
        # caught within a few calls, and what it queued meanwhile moves to its new
        # connection (see _restart_after_fork). The generation is read before the
        # connection: a fork restart clears the connection before it moves the generation.
        self._calls += 1
        if self._fork_generation != _fork_generation or not self._calls & 63:
            conn = self.connection()
        else:
            conn = self._conn or self.connection()
        check_publish(subject, reply)
        payload = data if type(data) is bytes else encode_payload(data)
        block = None if headers is None else encode_headers(headers)
        size = len(payload) if block is None else len(payload) + len(block)
        if size > conn.max_payload:
            raise PayloadTooLargeError(
                f"{size} bytes (payload and headers) is more than the server's max_payload "
                f"({conn.max_payload}) on {subject!r}"
            )
        conn.enqueue(pub_command(subject, reply or "", payload, block), len(payload))

    def flush(self, timeout: float | None = None) -> None:
        """Wait until the server has received everything published so far.

        :raises LoopThreadError: called from the event-loop thread.
        """
        timeout = check_timeout(timeout, self._config.timeout)
        conn = self.connection()
        self._guard(conn, "flush")
        conn.flush(timeout)

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

        :raises LoopThreadError: called from the event-loop thread.
        """
        tracing = _instrumentation.active
        if tracing is not None and type(headers) is not TracedHeaders:
            return tracing.request(self, subject, data, headers, timeout, retry)
        timeout = check_timeout(timeout, self._config.timeout)
        conn = self.connection()
        self._guard(conn, "request")
        check_request(subject, len(conn.replies.prefix) + REPLY_TOKEN_LENGTH)
        payload = encode_payload(data)
        block = encode_headers(headers)
        size = len(payload) + (len(block) if block else 0)
        if size > conn.max_payload:
            raise PayloadTooLargeError(
                f"{size} bytes (payload and headers) is more than the server's max_payload "
                f"({conn.max_payload}) on {subject!r}"
            )

        def once(left: float | None) -> Msg:
            answer = conn.request(
                subject, payload, block, timeout if left is None else min(timeout, left)
            )
            return Msg(answer.subject, answer.data, answer.headers, "", self)

        policy = retry or self._config.request_retry
        if policy is None:
            return once(None)
        return policy.call(once)

    def new_inbox(self) -> str:
        """A fresh, unguessable inbox subject (``<inbox_prefix>.<random>``), as nats-py's."""
        return f"{self._config.inbox_prefix}.{new_token()}{new_token()}"

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
        max_msgs: int | None = None,
        error_callback: ErrorCallback | None = None,
        timeout: float | None = None,
    ) -> Subscription:
        """Call ``callback(msg)`` on worker threads for each message on ``subject``.

        ``workers`` threads (default ``config.workers``, 1 keeps order) run the callback. An
        exception is logged with the subject and passed to ``error_callback`` (or the
        client's); it never stops the subscription. At most ``pending_msgs_limit``
        messages and ``pending_bytes_limit`` bytes wait for a worker; beyond that messages
        are dropped and reported as a :class:`~syncmsg.SlowConsumerError`. With
        ``max_msgs``, the subscription ends by itself after that many messages. The
        subscription is registered at the server when this returns.

        :raises LoopThreadError: called from the event-loop thread.
        """
        if not callable(callback):
            raise TypeError("callback must be callable")
        workers = workers or self._config.workers
        if workers < 1:
            raise ValueError("workers must be at least 1")
        conn, queue_group, handoff, wait = self._prepare_subscription(
            subject, queue, pending_msgs_limit, pending_bytes_limit, timeout
        )
        tracing = _instrumentation.active
        if tracing is not None:  # wrapped once here rather than checked per message
            callback = tracing.process(self, subject, queue_group, callback)
        sub = Subscription(self, subject, queue_group, handoff, callback, workers, error_callback)
        sub._open(conn, subject, wait, limit=_check_max_msgs(max_msgs))
        sub._start_workers()
        return sub

    def subscribe_sync(
        self,
        subject: str,
        *,
        queue: str | None = None,
        pending_msgs_limit: int | None = None,
        pending_bytes_limit: int | None = None,
        max_msgs: int | None = None,
        timeout: float | None = None,
    ) -> SyncSubscription:
        """Subscribe, and read messages with ``next_msg(timeout=...)`` or by iterating.

        :raises LoopThreadError: called from the event-loop thread.
        """
        conn, queue_group, handoff, wait = self._prepare_subscription(
            subject, queue, pending_msgs_limit, pending_bytes_limit, timeout
        )
        sub = SyncSubscription(self, subject, queue_group, handoff)
        sub._open(conn, subject, wait, limit=_check_max_msgs(max_msgs))
        return sub

    def _prepare_subscription(
        self,
        subject: str,
        queue: str | None,
        pending_msgs_limit: int | None,
        pending_bytes_limit: int | None,
        timeout: float | None,
    ) -> tuple[Connection, str, MessageQueue, float]:
        wait = check_timeout(timeout, self._config.timeout)
        conn = self.connection()
        self._guard(conn, "subscribe")
        if self._lifecycle.state is DRAINING:
            raise ConnectionClosedError("client is closing; no new subscriptions")
        queue_group = check_subscription(subject, queue)
        msgs = pending_msgs_limit or self._config.pending_msgs_limit
        limit_bytes = pending_bytes_limit or self._config.pending_bytes_limit
        return conn, queue_group, MessageQueue(conn.loop, msgs, limit_bytes), wait

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
                    msg.respond(
                        b"",
                        headers={
                            SERVICE_ERROR: describe_remote_exception(exc),
                            SERVICE_ERROR_CODE: "500",
                        },
                    )
                raise
            if msg.reply:
                msg.respond(result)

        return self.subscribe(
            subject, respond, queue=queue, workers=workers, error_callback=error_callback
        )

    # ================================================================ JetStream
    def jetstream(self, **options: Any) -> JetStream:
        """The JetStream API on this connection (see :mod:`syncmsg.jetstream`)."""
        from syncmsg.jetstream import JetStream

        self.connection()
        if options:
            return JetStream(self, **options)
        if self._js is None:
            self._js = JetStream(self)
        return self._js

    # ================================================================ services
    def add_service(self, name: str, *, version: str, **options: Any) -> Service:
        """Start a NATS micro service (ADR-32) on this connection; see
        :func:`syncmsg.services.add_service` for ``description``, ``metadata``,
        ``queue_group`` (``"q"``), ``workers`` (8) and ``stats_handler``."""
        from syncmsg.services import add_service

        return add_service(self, name, version=version, **options)

    # ================================================================ observability
    def health(self, timeout: float | None = None) -> dict[str, Any]:
        """Connection state and a measured round-trip time; never raises.

        ``{"ok": bool, "state": ..., "connected": bool, "server": url, "rtt_ms": float|None,
        "error": str|None}``
        """
        timeout = check_timeout(timeout, self._config.timeout)
        state = self.state
        conn = self._conn
        info: dict[str, Any] = {
            "ok": False,
            "state": state.value,
            "connected": state is CONNECTED,
            "server": None,
            "rtt_ms": None,
            "error": None,
        }
        if conn is not None and state is CONNECTED:
            info["server"] = conn.connected_url
            info["server_id"] = conn.server_info.get("server_id")
            info["server_version"] = conn.server_info.get("version")
        if state is not CONNECTED:
            info["error"] = f"not connected ({state.value})"
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
        """Counters: messages and payload bytes in and out, reconnects, buffered bytes,
        subscriptions."""
        conn = self._conn
        nats_stats = conn.nats_stats if conn is not None else {}
        return {
            "state": self.state.value,
            "out_msgs": conn.out_msgs if conn else 0,
            "out_bytes": conn.out_bytes if conn else 0,
            "in_msgs": nats_stats.get("in_msgs", 0),
            "in_bytes": nats_stats.get("in_bytes", 0),
            "reconnects": self._reconnects,
            "errors": self._errors,
            "buffered_bytes": conn.buffered_bytes if conn else 0,
            "subscriptions": [sub.stats() for sub in self.subscriptions],
        }

    # ================================================================ the loop thread's news
    def _on_status(self, what: str) -> None:
        """The connection's status changed (loop thread)."""
        lifecycle = self._lifecycle
        if what == "disconnected":
            if lifecycle.transition(RECONNECTING, expect={CONNECTED}):
                log.warning("syncmsg: disconnected from NATS; reconnecting")
                self.hooks.status("disconnected")
        elif what == "reconnected":
            self._reconnects += 1
            if lifecycle.transition(CONNECTED, expect={RECONNECTING}):
                log.info("syncmsg: reconnected")
                self.hooks.status("reconnected")
        elif what == "lost" and lifecycle.transition(CLOSED, expect={CONNECTED, RECONNECTING}):
            self._lost()

    def _lost(self) -> None:
        """Reconnecting gave up (the user's own limit): the client is closed (loop thread)."""
        reason = ConnectionClosedError("connection lost and reconnecting gave up")
        conn = self._conn
        for sub in self.subscriptions.clear():
            sub._closed_by_client()
        self.hooks.status("closed")
        if conn is not None:
            conn.refuse_new_work(reason)
            conn.replies.close(reason)
            # The loop thread cannot join itself: the hooks thread ends it.
            self.hooks.post(lambda: conn.stop(self._config.close_timeout, reason))
        self.hooks.stop()
        _live_clients.discard(self)

    def _on_error(self, error: BaseException, raw: BaseException) -> None:
        """The connection reported an error (loop thread); it is never fatal."""
        self._errors += 1
        if self._lifecycle.state is RECONNECTING:
            # Each failed reconnect attempt reports an error; the outage is already logged.
            log.debug("syncmsg: reconnect attempt failed: %s", error)
        elif isinstance(error, SlowConsumerError | NatsConnectionError):
            log.warning("syncmsg: %s", error)  # a lost connection is logged as such next
        else:
            log.error("syncmsg: connection error: %s", error)
        self.hooks.report_error(error, None, None, on_loop=True)

    # ================================================================ fork and exit
    def _restart_after_fork(self) -> None:
        """In a forked child: forget the parent's loop and socket, connect afresh.

        Runs on whichever thread of the child first uses the client; the others wait in
        :meth:`connection` while the state is ``connecting``. When a fork hook ran, the
        inherited outbound queue held only the parent's messages and was emptied by the
        hook. Without one (uWSGI), the child may have queued a few messages before
        noticing; they are carried over to the new connection.
        """
        inherited = self._forget_parent()
        if inherited is None:
            return
        log.info("syncmsg: pid changed (fork); reconnecting in the child")
        try:
            conn = self._open_connection(Deadline(None))
        except BaseException:
            self._lifecycle.transition(NEW, expect={CONNECTING})
            raise
        for command, size in inherited:
            conn.enqueue(command, size)
        self._conn = conn
        if not self._lifecycle.transition(CONNECTED, expect={CONNECTING}):
            conn.close(1.0)
            conn.stop(1.0)

    def _forget_parent(self) -> list[tuple[bytes, int]] | None:
        """The first half of a fork restart; returns the commands to carry over, or None
        when there is nothing to restart (another thread did, or the client is not live)."""
        with _fork_lock:
            if self._pid == os.getpid() and self._fork_generation == _fork_generation:
                return None
            old = self._conn
            inherited = old.take_outbound() if old is not None else []
            if old is not None:
                _abandoned.append(old)  # never closed: the parent's
            self._conn = None  # before the generation moves: see publish()
            self._js = None
            for sub in self.subscriptions.clear():
                sub._closed_by_client()
            self.hooks = self.hooks.after_fork()
            state = self._lifecycle.after_fork()
            self._pid = os.getpid()
            self._fork_generation = _fork_generation
            if state is CLOSED:
                _live_clients.discard(self)
            return inherited if state is CONNECTING else None

    def _close_at_exit(self) -> None:
        """Flush and close within ``atexit_timeout`` (one budget for both)."""
        if self._pid != os.getpid() or self._lifecycle.state not in (CONNECTED, RECONNECTING):
            return
        timeout = self._config.atexit_timeout
        if timeout <= 0:
            return
        deadline = Deadline(timeout)
        try:
            # Most of the budget may go to waiting for a lost connection to come back.
            self.flush(max(timeout - 2 * _MIN_CLOSE_STEP, timeout / 2))
        except SyncMsgError as exc:
            log.warning("syncmsg: at exit, could not flush accepted publishes: %s", exc)
        try:
            self._shutdown(max(deadline.left(), _MIN_CLOSE_STEP), strict=False)
        except SyncMsgError as exc:  # pragma: no cover - shutdown logs instead of raising
            log.warning("syncmsg: at exit: %s", exc)


def _check_max_msgs(max_msgs: int | None) -> int:
    if max_msgs is None:
        return 0
    if isinstance(max_msgs, bool) or not isinstance(max_msgs, int) or max_msgs < 1:
        raise ValueError(f"max_msgs must be a positive number of messages, got {max_msgs!r}")
    return max_msgs


_live_clients: weakref.WeakSet[Client] = weakref.WeakSet()
_abandoned: list[Connection] = []  # the parent's connections in a forked child: untouched
_fork_lock = threading.Lock()
_fork_generation = 0


def _close_all_at_exit() -> None:
    for client in list(_live_clients):
        client._close_at_exit()


def _after_fork_in_child() -> None:
    """The fork hook (the child's only thread, right after ``fork()``)."""
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
    timeout: float | None = None,
    **options: Any,
) -> Client:
    """Connect to NATS and return a connected :class:`Client`.

    ``servers`` is a URL, a comma-separated list or a list; ``None`` reads ``NATS_URL``.
    Other keywords are :class:`Config` fields and override ``config`` and the environment.
    ``timeout`` is the default timeout of every blocking call and also bounds this first
    connect, retries included (per ``connect_retry``, each attempt bounded by
    ``connect_timeout``)::

        with syncmsg.connect("nats://localhost:4222", timeout=2.0) as client:
            client.publish("greetings", "hello")
    """
    if timeout is not None:
        options["timeout"] = timeout
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
    return client.connect(timeout)
