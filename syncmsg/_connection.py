"""The loop-side half of a client: the nats-py connection and the outbound queue.

Threading: this module is where the two sides meet.

* Caller threads call :meth:`Connection.enqueue` (append finished wire bytes, wake the loop
  at most once per batch) and :meth:`Connection.await_reply` (wait on a ``threading.Event``).
  Neither ever waits for the loop to run a coroutine.
* Everything else runs on the event-loop thread only: connecting, moving the outbound queue
  into nats-py (:meth:`Connection.drain_outbound`), subscribing, the reply inbox, status
  callbacks, closing.

Publishing skips nats-py's ``publish`` coroutine: the caller's thread builds the PUB command
(:func:`syncmsg._codec.pub_command`) and the loop appends whole batches to nats-py's pending
buffer. That buffer and its flusher are the single path to the socket, so ordering with the
commands nats-py writes itself (SUB, UNSUB, JetStream requests) holds: every operation that
goes through the loop first calls :meth:`drain_outbound`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from nats.aio.client import Client as NatsClient

from syncmsg._config import Config
from syncmsg._errors import (
    AuthorizationError,
    BufferFullError,
    ConnectionClosedError,
    NoRespondersError,
    NoServersError,
    RemoteError,
    TimeoutError,
    map_error,
)
from syncmsg._msg import Msg

if TYPE_CHECKING:
    from syncmsg._client import Client
    from syncmsg._runtime import LoopThread

__all__ = ["SERVICE_ERROR", "SERVICE_ERROR_CODE", "Connection"]

log = logging.getLogger("syncmsg")

# Header names used by NATS services (the nats "micro" convention) for error replies.
SERVICE_ERROR = "Nats-Service-Error"
SERVICE_ERROR_CODE = "Nats-Service-Error-Code"
_STATUS = "Status"
_NO_RESPONDERS = "503"
# While connected, publishers wait (flush) once this much is queued for the socket.
_MIN_HIGH_WATER = 4 * 1024 * 1024
# Most messages a subscription's pump moves to its workers in one hand-off.
_PUMP_BATCH = 256


class _Reply:
    """A wait for one reply message: a caller thread's Event, and optionally a callback.

    ``on_reply`` runs on the loop thread when the reply (or a failure) arrives; it is for
    syncmsg's own pipelining (JetStream ``publish_async``) and must only hand the result on.
    """

    __slots__ = ("error", "event", "msg", "on_reply")

    def __init__(self, on_reply: Callable[[_Reply], None] | None = None) -> None:
        self.event = threading.Event()
        self.msg: Msg | None = None
        self.error: BaseException | None = None
        self.on_reply = on_reply

    def resolve(self, msg: Msg | None, error: BaseException | None = None) -> None:
        self.msg = msg
        self.error = error
        self.event.set()
        if self.on_reply is not None:
            try:
                self.on_reply(self)
            except Exception:
                log.exception("syncmsg: reply callback raised")


class Connection:
    """Owns one nats-py client on the loop thread, and the queue that feeds it."""

    def __init__(self, client: Client, runtime: LoopThread, config: Config) -> None:
        self._client = client
        self._runtime = runtime
        self._config = config
        self.nc: NatsClient = NatsClient()
        self.max_payload = 1024 * 1024
        self.server_info: dict[str, Any] = {}

        self._outbound: deque[bytes] = deque()
        self._queued_bytes = 0  # bytes in _outbound, approximately (see enqueue)
        self._wake_pending = False
        self._buffer_limit = config.reconnect_buffer_size
        self._high_water = max(config.reconnect_buffer_size, _MIN_HIGH_WATER)
        self.out_msgs = 0
        self.out_bytes = 0

        self._reply_prefix = f"{config.inbox_prefix}.{secrets.token_hex(11)}."
        self._reply_tokens = itertools.count(1)
        self._replies: dict[str, _Reply] = {}
        self.closed_reason: BaseException | None = None
        self._connect_errors: list[BaseException] = []
        self._pumps: dict[int, asyncio.Task[None]] = {}

    # ================================================================= caller threads
    def enqueue(self, command: bytes) -> None:
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
        if self._queued_bytes + self.nc._pending_data_size + size > self._buffer_limit:
            self._make_room(size)
        if self.closed_reason is not None:
            raise ConnectionClosedError(str(self.closed_reason))
        self._outbound.append(command)
        # Not atomic: concurrent publishers may lose an update, but each drain recounts.
        self._queued_bytes += size
        if self.closed_reason is not None:
            self._withdraw(command)
        if not self._wake_pending:
            self._wake_pending = True
            self._runtime.call_soon(self.drain_outbound)

    def _withdraw(self, command: bytes) -> None:
        """Closed while appending: take ``command`` back, or accept that it was sent."""
        try:
            self._outbound.remove(command)
        except ValueError:
            return  # the final drain already moved it to the socket
        raise ConnectionClosedError(str(self.closed_reason))

    def take_outbound(self) -> list[bytes]:
        """Empty the outbound queue and return what was in it (used around fork)."""
        taken = list(self._outbound)
        self._outbound.clear()
        self._queued_bytes = 0
        self._wake_pending = False
        return taken

    def _make_room(self, size: int) -> None:
        if not self.nc.is_connected:
            if self.closed_reason is not None or self.nc.is_closed:
                raise ConnectionClosedError(str(self.closed_reason or "connection closed"))
            raise BufferFullError(
                f"disconnected and the reconnect buffer ({self._buffer_limit} bytes) is full"
            )
        if self._queued_bytes + self.nc._pending_data_size + size <= self._high_water:
            return
        if self._runtime.in_loop_thread():  # pragma: no cover - the loop never publishes
            return
        # Far ahead of the socket: let it catch up (back-pressure on the publisher).
        self._runtime.call(self.flush(self._config.timeout), self._config.timeout, what="flush")

    @property
    def buffered_bytes(self) -> int:
        return sum(map(len, list(self._outbound))) + self.nc._pending_data_size

    def new_reply(self, on_reply: Callable[[_Reply], None] | None = None) -> tuple[str, _Reply]:
        """A fresh reply subject and the waiter its reply will wake."""
        token = str(next(self._reply_tokens))
        waiter = _Reply(on_reply)
        self._replies[token] = waiter
        return self._reply_prefix + token, waiter

    def await_reply(self, reply: str, waiter: _Reply, timeout: float, what: str) -> Msg:
        """Wait for the reply to ``reply``; raises TimeoutError, NoRespondersError, RemoteError."""
        try:
            if not waiter.event.wait(timeout):
                raise TimeoutError(f"no reply to request on {what!r} within {timeout:g}s")
        finally:
            self.forget_reply(reply)
        return self.check_reply(waiter, what)

    def forget_reply(self, reply: str) -> None:
        """Stop waiting for ``reply`` (a late reply is then ignored)."""
        self._replies.pop(reply[len(self._reply_prefix) :], None)

    @staticmethod
    def check_reply(waiter: _Reply, what: str) -> Msg:
        """The reply message, or the error it stands for."""
        if waiter.error is not None:
            raise waiter.error
        msg = waiter.msg
        assert msg is not None
        headers = msg.headers
        if headers:
            if headers.get(_STATUS) == _NO_RESPONDERS and not msg.data:
                raise NoRespondersError(f"no responders on {what!r}")
            if SERVICE_ERROR in headers:
                raise RemoteError(
                    headers[SERVICE_ERROR],
                    code=headers.get(SERVICE_ERROR_CODE, "500"),
                    subject=what,
                )
        return msg

    def fail_waiters(self, reason: BaseException) -> None:
        """Wake every caller waiting for a reply with ``reason`` (any thread)."""
        waiters = list(self._replies.values())
        self._replies.clear()
        for waiter in waiters:
            waiter.resolve(None, reason)

    # ================================================================= loop thread
    async def connect(self, timeout: float) -> None:
        """One connection attempt under ``timeout``; the caller's retry policy repeats it.

        nats-py would retry the first connection forever when reconnects are unlimited, so
        the attempt runs without reconnects and they are switched on once connected.
        """
        options = self._config.nats_options()
        options.update(
            allow_reconnect=False,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            closed_cb=self._on_closed,
            discovered_server_cb=self._on_discovered,
            lame_duck_mode_cb=self._on_lame_duck,
        )
        self._connect_errors.clear()
        nc = NatsClient()
        try:
            await asyncio.wait_for(nc.connect(**options), timeout)
        except BaseException as exc:
            await self._abandon(nc)
            raise self._explain_connect_failure(exc) from None
        nc.options["allow_reconnect"] = True
        self.nc = nc
        self.max_payload = nc.max_payload
        self.server_info = dict(nc._server_info)
        await nc.subscribe(self._reply_prefix + "*", cb=self._on_reply)
        await self._ping(timeout)

    def _explain_connect_failure(self, exc: BaseException) -> BaseException:
        for seen in [exc, *self._connect_errors]:
            text = str(seen).lower()
            if "authorization" in text or "authentication" in text:
                return AuthorizationError(f"server refused the credentials: {seen}")
        mapped = map_error(exc)
        if isinstance(mapped, TimeoutError | asyncio.TimeoutError) or mapped is exc:
            servers = ", ".join(self._config.redacted_servers)
            return NoServersError(f"could not connect to {servers}: {exc!r}")
        return mapped

    @staticmethod
    async def _abandon(nc: NatsClient) -> None:
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(nc.close(), 1.0)

    def drain_outbound(self) -> None:
        """Move everything queued by caller threads into nats-py's pending buffer."""
        self._wake_pending = False
        outbound = self._outbound
        count = len(outbound)
        if not count:
            return
        popleft = outbound.popleft
        data = b"".join([popleft() for _ in range(count)])
        self._queued_bytes = sum(map(len, list(outbound)))
        self.out_msgs += count
        self.out_bytes += len(data)
        nc = self.nc
        nc._pending.append(data)
        nc._pending_data_size += len(data)
        flush_queue = nc._flush_queue
        if nc.is_connected and flush_queue is not None and flush_queue.empty():
            flush_queue.put_nowait(asyncio.get_running_loop().create_future())

    async def flush(self, timeout: float) -> None:
        self.drain_outbound()
        if self.nc.is_closed:
            raise ConnectionClosedError(str(self.closed_reason or "connection closed"))
        await self._ping(timeout)

    async def _ping(self, timeout: float) -> None:
        """PING and wait for the PONG: the server has everything written before it."""
        await self.nc.flush(timeout)  # type: ignore[arg-type]  # annotated int, takes float

    async def subscribe(
        self,
        subject: str,
        queue: str,
        deliver: Callable[[list[Any]], Awaitable[None]],
        pending_msgs_limit: int,
        pending_bytes_limit: int,
        timeout: float,
    ) -> Any:
        """Subscribe in nats-py and start the task that hands its messages to ``deliver``."""
        self.drain_outbound()
        sub = await self.nc.subscribe(
            subject,
            queue=queue,
            pending_msgs_limit=pending_msgs_limit,
            pending_bytes_limit=pending_bytes_limit,
        )
        self._pumps[sub._id] = asyncio.get_running_loop().create_task(self._pump(sub, deliver))
        if self.nc.is_connected:
            await self._ping(timeout)
        return sub

    async def _pump(self, nats_sub: Any, deliver: Callable[[list[Any]], Awaitable[None]]) -> None:
        """Move a subscription's messages out of nats-py's bounded queue, a batch at a time.

        nats-py's own callback mode awaits one coroutine per message; reading its queue
        directly hands whatever has arrived to the workers in one go. Its byte count and
        ``task_done`` are kept as nats-py does, so its slow-consumer limits and drain work.
        """
        queue = nats_sub._pending_queue
        get, get_nowait = queue.get, queue.get_nowait
        while True:
            batch = [await get()]
            with contextlib.suppress(asyncio.QueueEmpty):
                while len(batch) < _PUMP_BATCH:
                    batch.append(get_nowait())
            nats_sub._pending_size -= sum(len(msg.data) for msg in batch)
            try:
                await deliver(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug in a hand-off must not end the subscription
                log.exception("syncmsg: delivering %d messages failed", len(batch))
                self._client._on_connection_error(map_error(exc), exc)
            finally:
                for _ in batch:
                    queue.task_done()

    async def unsubscribe(self, nats_sub: Any, drain: bool) -> None:
        self.drain_outbound()
        try:
            if not self.nc.is_closed:
                if drain:
                    await nats_sub.drain()
                else:
                    await nats_sub.unsubscribe()
        finally:
            pump = self._pumps.pop(nats_sub._id, None)
            if pump is not None:
                pump.cancel()

    async def _on_reply(self, nats_msg: Any) -> None:
        token = nats_msg.subject[len(self._reply_prefix) :]
        waiter = self._replies.pop(token, None)
        if waiter is not None:
            waiter.resolve(
                Msg(nats_msg.subject, nats_msg.data, nats_msg.headers, nats_msg.reply, self._client)
            )

    async def close(self, timeout: float) -> None:
        """Flush what was accepted, then close the nats-py connection, within ``timeout``."""
        self.drain_outbound()
        nc = self.nc
        if nc.is_connected:
            try:
                await asyncio.wait_for(self._ping(timeout), timeout)
            except BaseException as exc:
                log.warning("syncmsg: final flush failed: %s", map_error(exc))
        if not nc.is_closed:
            try:
                await asyncio.wait_for(nc.close(), max(timeout, 0.5))
            except BaseException as exc:
                log.warning("syncmsg: closing the connection failed: %s", map_error(exc))

    def refuse_new_work(self, reason: BaseException) -> None:
        """From now on enqueue raises ``reason`` (any thread)."""
        self.closed_reason = reason

    # -- nats-py status callbacks (loop thread) -------------------------------------------
    async def _on_error(self, exc: Exception) -> None:
        if not self._connected_once():
            self._connect_errors.append(exc)  # explained by connect() if the attempt fails
            return
        self._client._on_connection_error(map_error(exc), exc)

    def _connected_once(self) -> bool:
        return bool(self.server_info)

    async def _on_disconnected(self) -> None:
        if self._connected_once():
            self._client._on_status("disconnected")

    async def _on_reconnected(self) -> None:
        self.server_info = dict(self.nc._server_info)
        self.max_payload = self.nc.max_payload
        self._client._on_status("reconnected")

    async def _on_closed(self) -> None:
        if self._connected_once():
            self._client._on_status("closed")

    async def _on_discovered(self) -> None:
        log.info("syncmsg: discovered new servers: %s", self.nc.discovered_servers)

    async def _on_lame_duck(self) -> None:
        url = self.nc.connected_url
        where = f"{url.hostname}:{url.port}" if url else "?"
        log.warning("syncmsg: server %s entered lame duck mode; it will close soon", where)
