"""The loop-side half of a client: the nats-py connection, the outbound queue, the reply
inbox, and every interest, kept alive across anything nats-py gives up on.

Threading: this module is where the two sides meet.

* Caller threads (and worker threads, and the acks thread of ``publish_async``) call
  :meth:`Connection.enqueue`: append finished wire bytes and wake the loop at most once
  per batch, never waiting for it. The blocking methods (:meth:`~Connection.connect`,
  :meth:`~Connection.flush`, :meth:`~Connection.open_interest`, ...) hand one coroutine to
  the loop thread through :class:`~syncmsg._runtime.LoopThread` and wait with a timeout.
* The loop thread ``syncmsg-loop-N`` runs everything else: moving the outbound queue into
  nats-py (:meth:`Connection.drain_outbound`), the interests' pumps, reply dispatch,
  nats-py's status callbacks, and replacing the nats-py client when it closes on its own.

Publishing skips nats-py's ``publish`` coroutine: the caller's thread builds the PUB command
(:func:`syncmsg._codec.pub_command`) and the loop moves whole batches on: straight to the
socket when nats-py has nothing pending and the socket keeps up, otherwise into nats-py's
pending buffer for its flusher. Either way a batch goes after everything nats-py queued
before it, so ordering with the commands nats-py writes itself (SUB, UNSUB, PING) holds:
every operation that goes through the loop first calls :meth:`drain_outbound`.

Never a zombie: nats-py closes its client for good on any server ``-ERR`` it does not know
(a maximum payload or subscription violation, say), or when its close task dies half way.
Unless syncmsg is closing on purpose, or the user's own ``max_reconnect_attempts`` ran out,
the connection then makes a new nats-py client, opens every interest on it again and goes
on; the client sees an ordinary disconnect and reconnect.

The connection tells its owner what happened through two callables, never by calling the
client: ``on_status("disconnected" | "reconnected" | "lost")`` and ``on_error(error, raw)``,
both on the loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import ParseResult

import tenacity
from nats import errors as nats_errors
from nats.aio.client import Client as NatsClient

from syncmsg._codec import pub_command
from syncmsg._config import Config, redact_url
from syncmsg._deadline import Deadline
from syncmsg._errors import (
    BufferFullError,
    ConnectionClosedError,
    SlowConsumerError,
    SyncMsgError,
    TimeoutError,
    TLSError,
    explain_connect_failure,
    map_error,
)
from syncmsg._interest import Interest
from syncmsg._replies import Reply, ReplyMux, new_token
from syncmsg._runtime import LoopThread

__all__ = ["Connection"]

log = logging.getLogger("syncmsg")
T = TypeVar("T")

StatusListener = Callable[[str], None]
ErrorListener = Callable[[BaseException, BaseException], None]

# While connected, a publisher this far ahead of the socket waits until the loop has handed
# what is queued to the socket. Small enough that the loop starts writing long before a
# publisher holding the GIL for a whole switch interval (5 ms) could fill it, so that
# writing and publishing overlap instead of taking turns.
_HIGH_WATER = 1024 * 1024
# How often the loop checks that nats-py has not closed its client without telling us.
_WATCH_INTERVAL = 0.5
# How often a flush that waits for the connection to come back looks again.
_RECONNECT_POLL = 0.02
#: Server errors after which nats-server keeps the connection open (it only refuses that
#: one operation), but on which nats-py would close its client for good.
_NOT_FATAL = ("maximum subscriptions exceeded", "invalid subject", "invalid publish subject")
_PING = b"PING\r\n"
# How long a client whose connect failed is given to close.
_ABANDON_WAIT = 0.05
# A final flush at close gets at least this long, whatever is left of the close budget.
_MIN_CLOSE_STEP = 0.25


class _NatsClient(NatsClient):
    """nats-py's client, with two of its reactions to the server corrected.

    * An ``-ERR`` that nats-server sends without closing the connection (a refused
      subscription over the account's limit, an invalid subject) is reported to the error
      callback instead of closing the client.
    * TLS asked for is TLS had, or the connection fails.
    * A PING is queued behind the commands before it, so that its PONG confirms them.
    * A PONG whose waiter has already given up (a flush that timed out, or was cancelled by
      Ctrl-C) is dropped; nats-py would fail its reader with ``InvalidStateError``.
    """

    refusals = 0  # how many non-fatal -ERRs this client has seen
    last_refusal = ""
    tls_wanted = False  # TLS was asked for (a tls:// URL or TLS files): never go without

    async def _process_info(self, info: dict[str, Any], initial_connection: bool = False) -> None:
        # nats-py upgrades to TLS only when the server requires it, so a tls:// URL to a
        # server that merely allows TLS, or does not offer it, would go on in plaintext.
        if initial_connection and self.tls_wanted and not info.get("tls_required"):
            if not info.get("tls_available"):
                raise TLSError("TLS was asked for, but the server does not offer TLS")
            info["tls_required"] = True  # upgrade, as nats.go does
        await super()._process_info(info, initial_connection)

    async def _process_err(self, err_msg: str) -> None:
        text = err_msg.strip().strip("'")
        if any(marker in text.lower() for marker in _NOT_FATAL):
            self.refusals += 1
            self.last_refusal = text
            await self._error_cb(nats_errors.Error(f"nats: {text}"))
            return
        await super()._process_err(err_msg)

    async def _send_ping(self, future: asyncio.Future[Any] | None = None) -> None:
        # nats-py writes a PING straight to the socket, ahead of commands still waiting in
        # its pending buffer: its PONG would then not prove that the server has them (a
        # SUB, say). Queued behind them, it does.
        self._pongs.append(future if future is not None else asyncio.Future())
        self._pending.append(_PING)
        self._pending_data_size += len(_PING)
        await self._flush_pending()

    async def _process_pong(self) -> None:
        pongs = self._pongs
        while pongs and pongs[0].done():
            pongs.pop(0)  # its flush gave up; the PONG belongs to the next waiter
        await super()._process_pong()


class Connection:
    """One process's connection: a loop thread, a nats-py client on it, and what feeds it.

    Made by the client; replaced only after a fork (a child never touches its parent's).
    Layers built on the core (JetStream, key-value, services) use its public methods:
    :meth:`enqueue`, :attr:`replies`, :meth:`open_interest` / :meth:`close_interest`,
    :attr:`max_payload`, :attr:`loop`.
    """

    def __init__(
        self, config: Config, *, on_status: StatusListener, on_error: ErrorListener
    ) -> None:
        self._config = config
        self._on_status = on_status
        self._on_error = on_error
        self._runtime = LoopThread()
        self.nc = _NatsClient()  # a placeholder until the first connect
        self._ready = False  # self.nc has connected once: the outbound queue may move into it
        self.max_payload = 1024 * 1024
        self.server_info: dict[str, Any] = {}

        self._outbound: deque[tuple[bytes, int]] = deque()  # (command, payload bytes)
        self._queued_bytes = 0  # bytes in _outbound, approximately (see enqueue)
        self._wake_pending = False
        self._buffer_limit = config.reconnect_buffer_size
        self._high_water = _HIGH_WATER
        # enqueue's one test: above this, look closer (_make_room).
        self._check_at = min(self._buffer_limit, self._high_water)
        self.out_msgs = 0
        self._confirmed_msgs = 0  # out_msgs when the server last confirmed them (a PONG)
        self.out_bytes = 0  # payload bytes, as nats-py and nats.go count them

        self.replies = ReplyMux(f"{config.inbox_prefix}.{new_token()}{new_token()[:6]}.")
        self._reply_interest = Interest(
            self.replies.subscription_subject,
            "",
            None,
            receive=self.replies.dispatch_one,
            on_failure=self._failed,
        )
        self._interests: dict[int, Interest] = {}  # id(interest) -> interest
        self.closed_reason: BaseException | None = None
        self._closing = False  # syncmsg closes on purpose: nothing to replace
        self._replacing: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._connect_errors: list[BaseException] = []

    def __repr__(self) -> str:
        return f"<Connection {self._runtime.name} ready={self._ready}>"

    # ================================================================= any thread
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop (for waking it from another thread; never run code on it)."""
        return self._runtime.loop

    @property
    def thread_name(self) -> str:
        return self._runtime.name

    def in_loop_thread(self) -> bool:
        return self._runtime.in_loop_thread()

    @property
    def is_connected(self) -> bool:
        return self._ready and self.nc.is_connected

    @property
    def connected_url(self) -> str | None:
        """The URL of the server connected to now, without credentials."""
        url = self.nc.connected_url if self._ready else None
        return None if url is None else _url_text(url)

    @property
    def servers(self) -> list[str]:
        """Every server the client may connect to: configured and discovered."""
        return [_url_text(url) for url in self.nc.servers] if self._ready else []

    @property
    def discovered_servers(self) -> list[str]:
        """Servers the cluster told us about (not in the configuration)."""
        return [_url_text(url) for url in self.nc.discovered_servers] if self._ready else []

    @property
    def nats_stats(self) -> dict[str, int]:
        return dict(self.nc.stats)

    @property
    def buffered_bytes(self) -> int:
        return sum(len(cmd) for cmd, _ in list(self._outbound)) + self.nc._pending_data_size

    def interest_for_sid(self, sid: int | None) -> Interest | None:
        for interest in list(self._interests.values()):
            if interest.sid == sid:
                return interest
        return None

    # ================================================================= caller threads
    def start(self) -> None:
        self._runtime.start()

    def connect(self, timeout: float) -> None:
        """One connection attempt under ``timeout``; the client's retry policy repeats it."""
        self._runtime.call(self._connect(timeout), timeout, what="connect")

    def call(self, coro: Coroutine[Any, Any, T], timeout: float, what: str) -> T:
        """Run ``coro`` on the loop thread and wait for it (the bridge, for this module's
        own coroutines)."""
        return self._runtime.call(coro, timeout, what=what)

    def enqueue(self, command: bytes, payload_size: int = 0) -> None:
        """Queue one finished wire command for the socket; never waits for the loop.

        Raises :class:`~syncmsg.BufferFullError` when disconnected and the reconnect buffer
        is full; while connected and far ahead of the socket, first waits for a flush.

        Lock-free: a deque append is atomic, and the loop clears ``_wake_pending`` before it
        empties the deque, so a command appended while the flag is still set is always
        moved by the wake that set it. The bytes waiting in the deque are counted without a
        lock, so the bound can be off by what concurrent publishers queue at the same instant;
        every drain recounts them exactly.
        """
        size = len(command)
        if self._queued_bytes + self.nc._pending_data_size + size > self._check_at:
            self._make_room(size)
        if self.closed_reason is not None:
            raise ConnectionClosedError(str(self.closed_reason))
        item = (command, payload_size)
        self._outbound.append(item)
        # Not atomic: concurrent publishers may lose an update, but each drain recounts.
        self._queued_bytes += size
        if self.closed_reason is not None:
            self._withdraw(item)
        if not self._wake_pending:
            self._wake_pending = True
            self._runtime.call_soon(self.drain_outbound)

    def _withdraw(self, item: tuple[bytes, int]) -> None:
        """Closed while appending: take ``item`` back, or accept that it was sent."""
        try:
            self._outbound.remove(item)
        except ValueError:
            return  # the final drain already moved it to the socket
        raise ConnectionClosedError(str(self.closed_reason))

    def take_outbound(self) -> list[tuple[bytes, int]]:
        """Empty the outbound queue and return what was in it (used around fork)."""
        taken = list(self._outbound)
        self._outbound.clear()
        self._queued_bytes = 0
        self._wake_pending = False
        return taken

    def _backlog(self) -> int:
        """Bytes queued and not yet handed to the socket (approximately; see enqueue)."""
        return self._queued_bytes + self.nc._pending_data_size

    def _make_room(self, size: int) -> None:
        if not self.is_connected:
            if self._backlog() + size <= self._buffer_limit:
                return
            if self.closed_reason is not None:
                raise ConnectionClosedError(str(self.closed_reason))
            raise BufferFullError(
                f"disconnected and the reconnect buffer ({self._buffer_limit} bytes) is full"
            )
        if self._backlog() + size <= self._high_water:
            return
        if self._runtime.in_loop_thread():
            return  # the loop itself never waits for its own writes
        # Far ahead of the socket: let it catch up (back-pressure on the publisher).
        timeout = self._config.timeout
        self._runtime.call(self._catch_up(timeout), timeout, what="flush")

    def request(
        self,
        subject: str,
        payload: bytes,
        header_block: bytes | None,
        timeout: float,
        what: str | None = None,
    ) -> Reply:
        """Send one request and wait for its answer (the caller's thread, never the loop's).

        Returns the resolved :class:`~syncmsg._replies.Reply`; raises
        :class:`~syncmsg.TimeoutError`, :class:`~syncmsg.NoRespondersError`,
        :class:`~syncmsg.RemoteError`, or why the connection closed.
        """
        replies = self.replies
        reply, waiter = replies.new_reply()
        try:
            self.enqueue(pub_command(subject, reply, payload, header_block), len(payload))
        except BaseException:
            replies.forget(reply)
            raise
        replies.wait(reply, waiter, timeout, what or subject)
        return waiter

    def flush(self, timeout: float) -> None:
        """Wait until the server has received everything queued so far (PING/PONG)."""
        self._runtime.call(self._flush(timeout), timeout, what="flush")

    def open_interest(self, interest: Interest, timeout: float) -> None:
        """Subscribe ``interest`` at the server and keep it across connection replacements.

        Returns once the server has the subscription (a PING/PONG after the SUB).
        """
        self._interests[id(interest)] = interest
        try:
            self._runtime.call(
                self._open(interest, timeout), timeout, what=f"subscribe {interest.subject}"
            )
        except BaseException:
            self._interests.pop(id(interest), None)
            raise

    def set_interest_limit(self, interest: Interest, limit: int, timeout: float) -> None:
        """Ask the server to stop sending after ``limit`` messages in all."""
        self._runtime.call(interest.set_limit(limit), timeout, what="unsubscribe")

    def close_interest(self, interest: Interest, *, drain: bool, timeout: float) -> None:
        """Remove ``interest`` at the server (any thread but the loop; quiet when closed)."""
        self._interests.pop(id(interest), None)
        runtime = self._runtime
        if runtime.in_loop_thread():  # an owner closing itself from a delivery: no waiting
            interest.stop_pump()
            return
        if not runtime.is_alive:
            return
        try:
            runtime.call(self._close_interest(interest, drain), timeout, what="unsubscribe")
        except Exception as exc:
            log.debug("syncmsg: unsubscribe from %r failed: %s", interest.subject, map_error(exc))

    def refuse_new_work(self, reason: BaseException) -> None:
        """From now on :meth:`enqueue` raises ``reason`` (any thread)."""
        self.closed_reason = reason

    def close(self, timeout: float) -> None:
        """Flush what was accepted and close the nats-py client, all within ``timeout``.

        Logs (never raises) when the flush or the close could not finish in time.
        """
        if not self._runtime.is_alive or self._runtime.in_loop_thread():
            return
        try:
            self._runtime.call(self._close(timeout), timeout, what="close")
        except Exception as exc:
            log.warning("syncmsg: close did not finish cleanly: %s", map_error(exc))

    def stop(self, timeout: float, reason: BaseException | None = None) -> bool:
        """End the loop thread (waiters still in the bridge are woken with ``reason``)."""
        return self._runtime.stop(timeout, reason)

    @property
    def loop_alive(self) -> bool:
        return self._runtime.is_alive

    # ================================================================= loop thread
    async def _connect(self, timeout: float) -> None:
        """One connection attempt under ``timeout``.

        nats-py would retry the first connection forever when reconnects are unlimited, so
        the attempt runs without reconnects and they are switched on once connected.
        """
        self._connect_errors.clear()
        nc = await self._new_nats_client(timeout)
        self.nc = nc
        self._ready = True
        self._learn_server(nc)
        await self._reply_interest.open(nc)
        await self._ping(timeout)
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().create_task(self._watch())

    async def _new_nats_client(self, timeout: float) -> _NatsClient:
        options = self._config.nats_options()
        options.update(
            allow_reconnect=False,
            error_cb=self._nats_error,
            disconnected_cb=self._nats_disconnected,
            reconnected_cb=self._nats_reconnected,
            closed_cb=self._nats_closed,
            discovered_server_cb=self._nats_discovered,
            lame_duck_mode_cb=self._nats_lame_duck,
        )
        nc = _NatsClient()
        nc.tls_wanted = "tls" in options and not options.get("tls_handshake_first")
        try:
            await asyncio.wait_for(nc.connect(**options), timeout)
        except BaseException as exc:
            server_info = dict(nc._server_info or {})
            await _abandon(nc)
            error = explain_connect_failure(
                exc,
                self._connect_errors,
                self._config.redacted_servers,
                server_info=server_info,
                has_client_cert=self._config.tls_cert is not None,
            )
            raise error from error.__cause__
        nc.options["allow_reconnect"] = True
        return nc

    def _learn_server(self, nc: NatsClient) -> None:
        self.max_payload = nc.max_payload
        self.server_info = dict(nc._server_info)

    def drain_outbound(self) -> None:
        """Move everything queued by caller threads to the socket or nats-py's pending buffer.

        While there is no usable nats-py client (before the first connect, or while it is
        being replaced), the queue keeps what it has: the reconnect buffer.
        """
        self._wake_pending = False
        outbound = self._outbound
        count = len(outbound)
        nc = self.nc
        if not count or not self._ready or nc.is_closed:
            if self._ready and nc.is_closed:
                self._recover_soon()
            return
        popleft = outbound.popleft
        items = [popleft() for _ in range(count)]
        commands = [command for command, _ in items]
        self._queued_bytes = sum(len(command) for command, _ in list(outbound))
        self.out_msgs += count
        self.out_bytes += sum(size for _, size in items)
        if not nc._pending and _write_now(nc, commands):
            return
        # No join here: nats-py's flusher joins its pending list anyway (writelines), so
        # the commands are copied once on their way to the socket, not twice.
        nc._pending.extend(commands)
        nc._pending_data_size += sum(map(len, commands))
        flush_queue = nc._flush_queue
        if nc.is_connected and flush_queue is not None and flush_queue.empty():
            flush_queue.put_nowait(asyncio.get_running_loop().create_future())

    async def _flush(self, timeout: float) -> None:
        self.drain_outbound()
        await self._ping(timeout)

    async def _catch_up(self, timeout: float) -> None:
        """Wait until nats-py's flusher has written what is queued (back-pressure).

        No PING: the publisher may go on as soon as the bytes are with the socket, while
        the server still reads them. Returns early when the connection drops: enqueue then
        applies the reconnect buffer's bound.
        """
        deadline = Deadline(timeout)
        self.drain_outbound()
        loop = asyncio.get_running_loop()
        while self._backlog() > self._high_water // 2:
            nc = self.nc
            flush_queue = nc._flush_queue
            if not nc.is_connected or flush_queue is None:
                return
            if deadline.expired:
                raise TimeoutError(f"the socket did not take the queued bytes in {timeout:g}s")
            written = loop.create_future()
            await flush_queue.put(written)  # the flusher resolves it after a write and drain
            await asyncio.wait((written,), timeout=min(_WATCH_INTERVAL, deadline.left()))

    async def _ping(self, timeout: float) -> None:
        """PING and wait for the PONG: the server has everything written before it.

        While disconnected, first waits (within ``timeout``) for the connection to come
        back: what was published meanwhile is sent then.
        """
        deadline = Deadline(timeout)
        while not (self._replacing is None and self.nc.is_connected):
            if self._closing or self.closed_reason is not None:
                raise ConnectionClosedError(str(self.closed_reason or "connection closed"))
            if deadline.expired:
                raise TimeoutError(f"not connected to NATS within {timeout:g}s")
            await asyncio.sleep(min(_RECONNECT_POLL, deadline.left()))
        sent = self.out_msgs
        pong = asyncio.get_running_loop().create_future()
        await self.nc._send_ping(pong)
        await asyncio.wait_for(pong, deadline.left())
        self._confirmed_msgs = max(self._confirmed_msgs, sent)

    @property
    def all_confirmed(self) -> bool:
        """Nothing was sent since the server last confirmed what it has, and no reply is
        awaited: a final flush would learn nothing."""
        return (
            self.out_msgs == self._confirmed_msgs and not self._outbound and not len(self.replies)
        )

    async def _open(self, interest: Interest, timeout: float) -> None:
        self.drain_outbound()
        nc = self.nc
        if self._replacing is not None or not self._ready or nc.is_closed:
            return  # being replaced: the interest is opened with the others
        refusals = nc.refusals
        await interest.open(nc)
        if not nc.is_connected:
            return
        await self._ping(timeout)
        # The server answers a SUB it refuses with an -ERR, which comes before the PONG.
        if nc.refusals > refusals and "subscriptions" in nc.last_refusal.lower():
            await interest.close(drain=False)
            raise SyncMsgError(
                f"the server refused the subscription to {interest.subject!r}: {nc.last_refusal}"
            )

    async def _close_interest(self, interest: Interest, drain: bool) -> None:
        self.drain_outbound()
        await interest.close(drain=drain)

    async def _close(self, timeout: float) -> None:
        """Flush what was accepted, then close the nats-py client, within ``timeout``."""
        deadline = Deadline(timeout)
        self._closing = True
        for task in (self._watchdog, self._replacing):
            if task is not None:
                task.cancel()
        self.drain_outbound()
        nc = self.nc
        if nc.is_connected and not self.all_confirmed:
            try:
                await asyncio.wait_for(self._ping(timeout), deadline.left(timeout))
            except BaseException as exc:
                log.warning("syncmsg: final flush failed: %s", map_error(exc))
        for interest in [self._reply_interest, *self._interests.values()]:
            interest.stop_pump()
        if not nc.is_closed:
            try:
                await asyncio.wait_for(nc.close(), max(deadline.left(), _MIN_CLOSE_STEP))
            except BaseException as exc:
                log.warning("syncmsg: closing the connection failed: %s", map_error(exc))

    # -- never a zombie (loop thread) ------------------------------------------------------
    async def _watch(self) -> None:
        """Notice a nats-py client that closed without calling its closed callback."""
        while True:
            await asyncio.sleep(_WATCH_INTERVAL)
            if self._ready and self.nc.is_closed:
                self._recover_soon()

    def _recover_soon(self) -> None:
        if self._closing or self._replacing is not None or self.closed_reason is not None:
            return
        self._replacing = asyncio.get_running_loop().create_task(self._replace())

    async def _replace(self) -> None:
        """nats-py closed its client on its own: make a new one and carry on.

        Unless the user's own ``max_reconnect_attempts`` ran out (nats-py then gave up with
        no servers left), in which case the connection is lost for good.
        """
        old = self.nc
        reason = old.last_error
        limit = self._config.max_reconnect_attempts
        if limit >= 0 and _gave_up_reconnecting(reason):
            log.error(
                "syncmsg: reconnecting gave up after %d attempts; the client is closed", limit
            )
            self._replacing = None
            self._on_status("lost")
            return
        log.warning(
            "syncmsg: the connection was closed (%s); connecting again",
            map_error(reason) if reason is not None else "no reason given",
        )
        self._on_status("disconnected")
        carried = list(old._pending)
        try:
            nc = await self._reconnect_with_backoff(limit)
        except asyncio.CancelledError:
            self._replacing = None
            raise
        except Exception as exc:
            log.error("syncmsg: could not connect again (%s); the client is closed", exc)
            self._replacing = None
            self._on_status("lost")
            return
        self.nc = nc
        self._learn_server(nc)
        if carried:
            nc._pending[:0] = carried
            nc._pending_data_size += sum(len(chunk) for chunk in carried)
        for interest in [self._reply_interest, *self._interests.values()]:
            try:
                await interest.open(nc)
            except Exception as exc:
                log.error("syncmsg: could not subscribe to %r again: %s", interest.subject, exc)
                self._on_error(map_error(exc), exc)
        self._replacing = None
        self.drain_outbound()
        self._on_status("reconnected")

    async def _reconnect_with_backoff(self, limit: int) -> _NatsClient:
        waits = self._config.connect_retry.waits()
        attempts = 0
        async for attempt in tenacity.AsyncRetrying(
            stop=tenacity.stop_never if limit < 0 else tenacity.stop_after_attempt(max(limit, 1)),
            wait=tenacity.wait_fixed(self._config.reconnect_wait) + waits,
            retry=tenacity.retry_if_exception_type(Exception),
            reraise=True,
        ):
            with attempt:
                attempts += 1
                nc = await self._new_nats_client(self._config.connect_timeout)
                log.info("syncmsg: connected again after %d attempt(s)", attempts)
                return nc
        raise AssertionError("unreachable: tenacity returns or re-raises")  # pragma: no cover

    def _failed(self, exc: BaseException) -> None:
        self._on_error(map_error(exc), exc)

    # -- nats-py's callbacks (loop thread) -----------------------------------------------
    async def _nats_error(self, exc: Exception) -> None:
        if not self._ready:
            self._connect_errors.append(exc)  # explained by connect() if the attempt fails
            return
        error = map_error(exc)
        if isinstance(error, SlowConsumerError):
            interest = self.interest_for_sid(getattr(exc, "sid", None))
            if interest is not None and interest.on_dropped is not None:
                interest.on_dropped(1)  # the owner counts and reports it
                return
        self._on_error(error, exc)

    async def _nats_disconnected(self) -> None:
        if self._ready and not self._closing and self._replacing is None:
            self._on_status("disconnected")

    async def _nats_reconnected(self) -> None:
        self._learn_server(self.nc)
        self._on_status("reconnected")

    async def _nats_closed(self) -> None:
        if self._ready and not self._closing:
            self._recover_soon()

    async def _nats_discovered(self) -> None:
        log.info("syncmsg: discovered new servers: %s", self.discovered_servers)

    async def _nats_lame_duck(self) -> None:
        log.warning(
            "syncmsg: server %s entered lame duck mode; it will close soon", self.connected_url
        )


def _write_now(nc: NatsClient, commands: list[bytes]) -> bool:
    """Hand ``commands`` to the socket at once when nothing is waiting before them (loop
    thread); False when they must go through nats-py's pending buffer and its flusher.

    Only when nats-py has nothing pending (so its own commands keep their place) and the
    socket has kept up (its transport buffers nothing, so the bytes not yet sent stay
    bounded by one batch, and a lost connection is noticed: its transport is closing).
    This saves the flusher's turn of the loop: a request goes out in the same turn that
    woke the loop for it.
    """
    if not nc.is_connected:
        return False
    writer = getattr(nc._transport, "_io_writer", None)  # TCP and TLS; not websockets
    transport = getattr(writer, "transport", None)
    if transport is None or transport.is_closing() or transport.get_write_buffer_size():
        return False
    transport.writelines(commands)
    return True


def _url_text(url: ParseResult) -> str:
    host = url.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{url.port}" if url.port else ""
    return redact_url(f"{url.scheme}://{host}{port}")


def _gave_up_reconnecting(reason: BaseException | None) -> bool:
    from nats import errors as nerr

    return isinstance(reason, nerr.NoServersError)


async def _abandon(nc: NatsClient) -> None:
    """Close a client whose connect failed, without waiting long: after a failed TLS
    handshake nats-py's close never returns (the loop cancels what is left at its end)."""
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(nc.close(), _ABANDON_WAIT)
