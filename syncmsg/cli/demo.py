"""``syncmsg demo``: what syncmsg does, in five steps of one line each.

1. the server: an embedded one unless a server is configured;
2. publish ``--count`` messages and handle them on worker threads, with back-pressure: at
   most a window of messages is in flight (published, not yet handled), so the
   subscription's buffer never overflows whatever the count;
3. a request answered by a handler on a worker thread;
4. JetStream: store ``--count`` messages (acks pipelined) and consume them with a durable
   consumer whose handler's return acks each one;
5. the connection's health.

Nothing is reported that did not happen: counts are the ones seen, and a shortfall is said
plainly, with its reason (dropped as a slow consumer, or not arrived in time), and exit 1.

Threading: the steps run on the main thread; handlers on the subscriptions' worker
threads, counting under a lock (:class:`_Counter`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import click

import syncmsg
from syncmsg._config import redact_url
from syncmsg.cli._app import Settings, app, examples, output, settings
from syncmsg.cli._connect import build_config, server_configured
from syncmsg.cli._exit import EXIT_ERROR, EXIT_OK, CommandFailed
from syncmsg.cli._output import Output
from syncmsg.cli._units import COUNT, format_count, format_duration

__all__ = ["demo"]

#: Most messages in flight at once in step 2 (also bounded by half the subscription's
#: buffer, config.pending_msgs_limit, so that the buffer can never fill up).
MAX_WINDOW = 10_000
#: A step gives up when its count has not moved for this long.
STALL_SECONDS = 10.0
_SUBJECTS = "demo.orders.*"
_STREAM = "DEMO"


class _Counter:
    """A count that worker threads raise and the main thread waits on."""

    def __init__(self) -> None:
        self.value = 0
        self.threads: set[str] = set()
        self._changed = threading.Condition()

    def add(self) -> None:
        with self._changed:
            self.value += 1
            self.threads.add(threading.current_thread().name)
            self._changed.notify_all()

    def wait_for(self, target: int) -> bool:
        """Wait until the count reaches ``target``; False once it stood still STALL_SECONDS."""
        stall = STALL_SECONDS
        with self._changed:
            last, moved_at = self.value, time.monotonic()
            while self.value < target:
                if self.value != last:
                    last, moved_at = self.value, time.monotonic()
                left = moved_at + stall - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.5))
            return True


def in_flight_window(pending_msgs_limit: int) -> int:
    """Most messages published and not yet handled: half the buffer, at most MAX_WINDOW."""
    return max(1, min(MAX_WINDOW, pending_msgs_limit // 2))


def _plural(count: int, word: str) -> str:
    return f"{format_count(count)} {word}{'' if count == 1 else 's'}"


@contextlib.contextmanager
def _demo_server(state: Settings) -> Iterator[tuple[str | None, bool]]:
    """The configured server (None: let the config say), or an embedded JetStream one."""
    if server_configured(state):
        yield None, False
        return
    from syncmsg.testing import NatsServer

    with NatsServer(jetstream=True) as embedded:
        yield embedded.url, True


@app.command(
    "demo",
    short_help="See syncmsg work: pub/sub on worker threads, request/reply, JetStream.",
    epilog=examples(
        "syncmsg demo                          # starts an embedded server",
        "syncmsg demo --count 200k --workers 8",
        "NATS_URL=nats://localhost:4222 syncmsg demo --json",
    ),
)
@click.option(
    "--count", type=COUNT, default=1000, show_default=True, help="Messages per step (10k, 1M)."
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    metavar="N",
    default=4,
    show_default=True,
    help="Worker threads of the subscriptions.",
)
def demo(count: int, workers: int) -> int:
    """Publish, consume on worker threads, request/reply and a JetStream round trip,
    explaining each step in one line.

    It uses the configured server (-s, NATS_URL or a context), else starts an embedded
    JetStream nats-server for the demo's duration. Large counts are paced: publishing
    waits while too many messages are in flight, and the line says so.
    """
    out = output()
    state = settings()
    with _demo_server(state) as (url, embedded):
        config = build_config(state, **({"url": url} if url else {}))
        shown_url = ",".join(config.redacted_servers)
        out.emit(
            {"event": "server", "url": shown_url, "embedded": embedded},
            f"started an embedded nats-server with JetStream at {shown_url}"
            if embedded
            else f"using the server at {shown_url}",
        )
        client = syncmsg.Client(config)
        try:
            started = time.perf_counter()
            client.connect(config.timeout)
            info = client.health()
            took = time.perf_counter() - started
            server, version = redact_url(str(info.get("server"))), info.get("server_version")
            out.emit(
                {
                    "event": "connect",
                    "server": server,
                    "version": version,
                    "ms": round(took * 1000, 3),
                },
                f"connected to {server} (nats-server {version}) in {format_duration(took)}",
            )
            failures = _pubsub(client, out, count, workers)
            _request(client, out)
            failures += _jetstream(client, out, count, workers)
            health = client.health()
            out.emit(
                {"event": "health", **health},
                f"health: {'ok' if health['ok'] else 'NOT ok'}, round trip "
                f"{health.get('rtt_ms')}ms"
                + (f" ({health['error']})" if health.get("error") else ""),
            )
        finally:
            client.close(timeout=5.0)
    if failures:
        raise CommandFailed("; ".join(failures), EXIT_ERROR)
    return EXIT_OK


def _pubsub(client: syncmsg.Client, out: Output, count: int, workers: int) -> list[str]:
    handled = _Counter()
    window = in_flight_window(client.config.pending_msgs_limit)
    pauses = 0
    with out.progress(f"pub/sub on {workers} threads", count) as bar:

        def on_order(msg: syncmsg.Msg) -> None:  # on a worker thread
            handled.add()
            bar.advance()

        subscription = client.subscribe(_SUBJECTS, on_order, workers=workers)
        client.flush()
        started = time.perf_counter()
        published = 0
        try:
            for n in range(count):
                if n - handled.value >= window:  # back-pressure: let the workers catch up
                    pauses += 1
                    if not handled.wait_for(n - window // 2):
                        break
                client.publish(f"demo.orders.{n % 3}", {"order": n})
                published += 1
            client.flush()
            handled.wait_for(published)
            elapsed = time.perf_counter() - started
        finally:
            dropped = subscription.dropped
            subscription.unsubscribe()
    threads = len(handled.threads)
    done = handled.value
    fields: dict[str, Any] = {
        "event": "pubsub",
        "subject": _SUBJECTS,
        "published": published,
        "handled": done,
        "dropped": dropped,
        "workers": workers,
        "worker_threads": sorted(handled.threads),
        "window": window,
        "pauses": pauses,
        "seconds": round(elapsed, 4),
    }
    paced = (
        f" (publishing paused {_plural(pauses, 'time')} to keep at most "
        f"{format_count(window)} messages in flight)"
        if pauses
        else ""
    )
    if done == count:
        # One thread may keep up with a small count alone; say so rather than claim all did.
        needed = f" (only {threads} of them took part)" if threads < min(workers, count) else ""
        them = "it" if count == 1 else "them"
        out.emit(
            fields,
            f"published {_plural(count, 'message')} to {_SUBJECTS}; "
            f"{_plural(workers, 'worker thread')} handled {them} in "
            f"{format_duration(elapsed)}{needed}{paced}",
        )
        return []
    missing = count - done
    reasons = []
    if published < count:
        reasons.append(
            f"{_plural(count - published, 'message')} not published: the workers stalled"
        )
    if dropped:
        reasons.append(
            f"{_plural(dropped, 'message')} dropped by the client as a slow consumer (the "
            f"workers fell behind and the subscription's buffer of "
            f"{format_count(client.config.pending_msgs_limit)} messages overflowed)"
        )
    if missing - dropped - (count - published) > 0:
        reasons.append(
            f"{_plural(missing - dropped - (count - published), 'message')} not arrived "
            f"{format_duration(STALL_SECONDS)} after the last one"
        )
    text = (
        f"published {_plural(published, 'message')} to {_SUBJECTS}; "
        f"{_plural(threads, 'worker thread')} handled {format_count(done)} of "
        f"{format_count(count)}{paced}: " + "; ".join(reasons)
    )
    out.emit(fields, text)
    return [f"pub/sub: {format_count(missing)} of {format_count(count)} messages not handled"]


def _request(client: syncmsg.Client, out: Output) -> None:
    answered_by: list[str] = []

    def now(msg: syncmsg.Msg) -> dict[str, Any]:  # on a worker thread
        answered_by.append(threading.current_thread().name)
        return {"now": time.time(), "echo": msg.text()}

    service = client.serve("demo.time", now)
    try:
        client.flush()
        started = time.perf_counter()
        answer = client.request("demo.time", "hello", timeout=5.0)
        rtt = time.perf_counter() - started
    finally:
        service.unsubscribe()
    out.emit(
        {
            "event": "request",
            "subject": "demo.time",
            "reply": answer.json(),
            "rtt_ms": round(rtt * 1000, 3),
        },
        f"request on demo.time answered in {format_duration(rtt)} by worker thread "
        f"{answered_by[0] if answered_by else '?'}: {answer.text()}",
    )


def _jetstream(client: syncmsg.Client, out: Output, count: int, workers: int) -> list[str]:
    from syncmsg._errors import StreamNotFoundError
    from syncmsg.jetstream import StorageType, StreamSpec

    js = client.jetstream()
    with contextlib.suppress(StreamNotFoundError):
        js.delete_stream(_STREAM)  # left over by an interrupted demo
    js.ensure_stream(StreamSpec(name=_STREAM, subjects=["demo.js.>"], storage=StorageType.MEMORY))
    try:
        started = time.perf_counter()
        with out.progress(f"storing in stream {_STREAM}", count) as bar:
            futures = []
            for n in range(count):
                futures.append(js.publish_async("demo.js.created", {"n": n}))
                bar.advance()
            js.flush(max(client.config.timeout, 60.0))
        acks = [future.result() for future in futures]
        stored = time.perf_counter() - started

        consumed = _Counter()
        started = time.perf_counter()
        with out.progress(f"consuming from {_STREAM}", count) as bar:

            def handle(msg: syncmsg.Msg) -> None:  # on a worker thread; returning acks
                consumed.add()
                bar.advance()

            consumer = js.subscribe(
                "demo.js.>", handle, durable="demo-worker", stream=_STREAM, workers=workers
            )
            try:
                complete = consumed.wait_for(count)
                took = time.perf_counter() - started
            finally:
                consumer.drain(10.0)
    finally:
        js.delete_stream(_STREAM)
    last = acks[-1].seq if acks else 0
    fields = {
        "event": "jetstream",
        "stream": _STREAM,
        "published": len(acks),
        "last_seq": last,
        "consumed": consumed.value,
        "store_seconds": round(stored, 4),
        "consume_seconds": round(took, 4),
    }
    stalled = "" if complete else f", then nothing for {format_duration(STALL_SECONDS)}"
    out.emit(
        fields,
        f"JetStream: stored {_plural(len(acks), 'message')} in stream {_STREAM} (#1..#{last}) "
        f"in {format_duration(stored)}; durable consumer demo-worker acked "
        f"{format_count(consumed.value)} on {_plural(len(consumed.threads), 'worker thread')} "
        f"in {format_duration(took)}{stalled}; stream {_STREAM} deleted",
    )
    if complete:
        return []
    missing = count - consumed.value
    return [f"JetStream: {format_count(missing)} of {format_count(count)} messages not consumed"]
