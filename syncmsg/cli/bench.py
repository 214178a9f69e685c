"""``syncmsg bench pub|sub|req|js``: a quick throughput test against any server.

Each test is self-contained (it brings its own publisher, subscribers or responder, each
client on its own connection and thread) and prints a table: one row per client and a
total, with messages per second, bytes per second and, for ``req``, latency percentiles.
It measures syncmsg's synchronous API end to end, as an application sees it; for the
server's own limits use ``nats bench``.

Threading: the main thread starts the clients' threads (``syncmsg-bench-N``) together
behind a barrier and joins them; subscriptions count on their worker threads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import click

import syncmsg
from syncmsg.cli._app import app, examples, output, settings
from syncmsg.cli._connect import build_config
from syncmsg.cli._exit import EXIT_OK, EXIT_TIMEOUT, CommandFailed
from syncmsg.cli._output import Column, Output
from syncmsg.cli._units import (
    COUNT,
    SIZE,
    format_byte_rate,
    format_count,
    format_duration,
    format_rate,
    format_size,
)

__all__ = ["bench"]

#: Progress is counted in steps of this many messages, to keep it out of the hot loop.
_STEP = 256
#: A test gives up when no message has moved for this long.
_STALL_SECONDS = 10.0


@dataclasses.dataclass
class Result:
    """One row of the result table."""

    test: str
    client: str
    msgs: int
    size: int
    seconds: float
    latencies_ms: list[float] = dataclasses.field(default_factory=list, repr=False)

    def row(self) -> dict[str, Any]:
        seconds = max(self.seconds, 1e-9)
        row: dict[str, Any] = {
            "test": self.test,
            "client": self.client,
            "msgs": self.msgs,
            "size": self.size,
            "seconds": round(self.seconds, 6),
            "msgs_per_sec": round(self.msgs / seconds, 1),
            "bytes_per_sec": round(self.msgs * self.size / seconds, 1),
        }
        if self.latencies_ms:
            row["latency_ms"] = _percentiles(self.latencies_ms)
        return row


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    if len(ordered) == 1:
        value = round(ordered[0], 4)
        return {"p50": value, "p90": value, "p99": value, "max": value}
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "p50": round(cuts[49], 4),
        "p90": round(cuts[89], 4),
        "p99": round(cuts[98], 4),
        "max": round(ordered[-1], 4),
    }


def _total(test: str, results: Sequence[Result], seconds: float) -> Result:
    total = Result(test, "total", sum(r.msgs for r in results), results[0].size, seconds)
    for result in results:
        total.latencies_ms.extend(result.latencies_ms)
    return total


def _latency(key: str) -> Callable[[Any], str]:
    def show(latency: Any) -> str:
        return "" if not latency else format_duration(latency[key] / 1000)

    return show


def _print(out: Output, rows: list[dict[str, Any]]) -> None:
    columns = [
        Column("test", "TEST"),
        Column("client", "CLIENT"),
        Column("msgs", "MSGS", format_count, "right"),
        Column("size", "SIZE", format_size, "right"),
        Column("seconds", "TIME", format_duration, "right"),
        Column("msgs_per_sec", "MSGS/S", lambda v: format_rate(v, "msgs"), "right"),
        Column("bytes_per_sec", "THROUGHPUT", format_byte_rate, "right"),
    ]
    if any("latency_ms" in row for row in rows):
        columns += [
            Column("latency_ms", name.upper(), _latency(name), "right")
            for name in ("p50", "p90", "p99", "max")
        ]
    out.table(rows, columns)


def _run_clients(
    count: int, work: Callable[[int, threading.Barrier], Result]
) -> tuple[list[Result], float]:
    """Run ``work(index, barrier)`` on ``count`` threads; their results and the wall time."""
    barrier = threading.Barrier(count + 1)
    results: list[Result | None] = [None] * count
    errors: list[BaseException] = []

    def target(index: int) -> None:
        try:
            results[index] = work(index, barrier)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [
        threading.Thread(target=target, args=(i,), name=f"syncmsg-bench-{i + 1}", daemon=True)
        for i in range(count)
    ]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a client failed: see errors
        barrier.wait(timeout=60.0)
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return [r for r in results if r is not None], elapsed


def _connect(config: syncmsg.Config) -> syncmsg.Client:
    """A connected client (any thread: ``config`` was read on the main thread)."""
    client = syncmsg.Client(config)
    try:
        client.connect(config.timeout)
    except BaseException:
        client.close(timeout=1.0)
        raise
    return client


def _split(total: int, parts: int) -> list[int]:
    """``total`` messages shared by ``parts`` clients as evenly as possible."""
    share, extra = divmod(total, parts)
    return [share + (1 if i < extra else 0) for i in range(parts)]


def _subject(given: str | None, test: str) -> str:
    return given or f"syncmsg.bench.{test}.{uuid.uuid4().hex[:8]}"


_COMMON = [
    click.argument("subject", required=False),
    click.option(
        "--msgs", type=COUNT, default="100k", show_default=True, help="Messages in all (10k, 1M)."
    ),
    click.option(
        "--size", type=SIZE, default="128B", show_default=True, help="Payload size (128B, 1KiB)."
    ),
    click.option(
        "--clients",
        type=click.IntRange(1, 64),
        metavar="N",
        default=1,
        show_default=True,
        help="Concurrent clients, each its own connection.",
    ),
]


def _common(function: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed(_COMMON):
        function = decorator(function)
    return function


@app.group(
    "bench",
    short_help="Measure throughput and latency against a server.",
    epilog=examples(
        "syncmsg bench pub --msgs 1M --size 128B",
        "syncmsg bench sub --clients 4",
        "syncmsg bench req --msgs 10k --clients 8",
        "syncmsg bench js --msgs 100k --storage file",
        "syncmsg -s nats://prod:4222 --json bench pub | jq .msgs_per_sec",
    ),
)
def bench() -> None:
    """Quick throughput tests, like nats bench, of syncmsg's own API.

    SUBJECT defaults to a fresh syncmsg.bench.<test>.<random> subject. Sizes take units
    (128B, 4KiB), counts too (100k, 1M). Table: one row per client and the total; JSON:
    one object per row (msgs_per_sec, bytes_per_sec, latency_ms percentiles for req).
    """


@bench.command(
    "pub",
    short_help="Publishing throughput (core NATS).",
    epilog=examples(
        "syncmsg bench pub", "syncmsg bench pub orders.test --msgs 1M --size 1KiB --clients 4"
    ),
)
@_common
def pub(subject: str | None, msgs: int, size: int, clients: int) -> int:
    """Publish MSGS messages of SIZE bytes from CLIENTS connections, then flush.

    The time runs until the server has every message (the flush returned).
    """
    out = output()
    config = build_config(settings())
    subject = _subject(subject, "pub")
    payload = os.urandom(size)
    shares = _split(msgs, clients)
    with out.progress(f"publishing to {subject}", msgs) as bar:

        def work(index: int, barrier: threading.Barrier) -> Result:
            client = _connect(config)
            try:
                barrier.wait(timeout=60.0)
                started = time.perf_counter()
                for n in range(1, shares[index] + 1):
                    client.publish(subject, payload)
                    if not n % _STEP:
                        bar.advance(_STEP)
                client.flush(timeout=max(client.config.timeout, 60.0))
                bar.advance(shares[index] % _STEP)
                return Result(
                    "pub", str(index + 1), shares[index], size, time.perf_counter() - started
                )
            finally:
                client.close(timeout=5.0)

        results, elapsed = _run_clients(clients, work)
    rows = [r.row() for r in results] + (
        [_total("pub", results, elapsed).row()] if clients > 1 else []
    )
    _print(out, rows)
    return EXIT_OK


class _Received:
    """What one subscriber has seen: the count, and when the first and last arrived."""

    def __init__(self, expected: int, bar: Any) -> None:
        self.expected = expected
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.done = threading.Event()
        self._bar = bar

    def on_msg(self, msg: syncmsg.Msg) -> None:  # on the subscription's worker thread
        now = time.perf_counter()
        if not self.count:
            self.first = now
        self.count += 1
        self.last = now
        if not self.count % _STEP:
            self._bar.advance(_STEP)
        if self.count >= self.expected:
            self.done.set()

    def wait(self) -> bool:
        seen = -1
        while not self.done.wait(_STALL_SECONDS):
            if self.count == seen:
                return False
            seen = self.count
        return True


@bench.command(
    "sub",
    short_help="Subscribing throughput, with its own publisher.",
    epilog=examples("syncmsg bench sub", "syncmsg bench sub --msgs 500k --clients 4 --json"),
)
@_common
def sub(subject: str | None, msgs: int, size: int, clients: int) -> int:
    """Start CLIENTS subscribers, publish MSGS messages of SIZE bytes on another
    connection, and time each subscriber from its first message to its last.

    Every subscriber receives every message; the total row counts them all.
    """
    out = output()
    config = build_config(settings())
    subject = _subject(subject, "sub")
    payload = os.urandom(size)
    subscribers: list[tuple[syncmsg.Client, _Received]] = []
    publisher = _connect(config)
    with out.progress(f"receiving from {subject}", msgs * clients) as bar:
        try:
            for _ in range(clients):
                client = _connect(config)
                received = _Received(msgs, bar)
                subscribers.append((client, received))
                client.subscribe(
                    subject,
                    received.on_msg,
                    pending_msgs_limit=max(msgs, 65536),
                    pending_bytes_limit=max(msgs * (size + 64), 64 << 20),
                )
                client.flush()
            started = time.perf_counter()
            for _ in range(msgs):
                publisher.publish(subject, payload)
            publisher.flush(timeout=max(publisher.config.timeout, 60.0))
            complete = all(received.wait() for _, received in subscribers)
            elapsed = time.perf_counter() - started
        finally:
            for client, _ in subscribers:
                client.close(timeout=5.0)
            publisher.close(timeout=5.0)
    results = [
        Result("sub", str(i + 1), received.count, size, max(received.last - received.first, 1e-9))
        for i, (_, received) in enumerate(subscribers)
    ]
    rows = [r.row() for r in results] + (
        [_total("sub", results, elapsed).row()] if clients > 1 else []
    )
    _print(out, rows)
    if not complete:
        short = sum(msgs - received.count for _, received in subscribers)
        raise CommandFailed(
            f"{format_count(short)} messages did not arrive within "
            f"{format_duration(_STALL_SECONDS)} of the last one (slow consumers?)",
            EXIT_TIMEOUT,
        )
    return EXIT_OK


@bench.command(
    "req",
    short_help="Request/reply rate and latency, with its own responder.",
    epilog=examples(
        "syncmsg bench req --msgs 10k --clients 8",
        "syncmsg bench req time.now --no-responder --msgs 1k   # a running service",
    ),
)
@_common
@click.option(
    "--responder/--no-responder",
    default=True,
    show_default=True,
    help="Start an echo responder, or use the service already on SUBJECT.",
)
def req(subject: str | None, msgs: int, size: int, clients: int, responder: bool) -> int:
    """Send MSGS requests of SIZE bytes from CLIENTS connections, one at a time each,
    to an echo responder, and report the rate and the round-trip latency percentiles.
    """
    out = output()
    config = build_config(settings())
    if not responder and not subject:
        raise CommandFailed("--no-responder needs the SUBJECT of a running service", 2)
    subject = _subject(subject, "req")
    payload = os.urandom(size)
    shares = _split(msgs, clients)
    service_client = _connect(config) if responder else None
    try:
        if service_client is not None:
            service_client.serve(subject, lambda msg: msg.data, workers=clients)
            service_client.flush()
        with out.progress(f"requests on {subject}", msgs) as bar:

            def work(index: int, barrier: threading.Barrier) -> Result:
                client = _connect(config)
                latencies: list[float] = []
                try:
                    barrier.wait(timeout=60.0)
                    started = time.perf_counter()
                    for n in range(1, shares[index] + 1):
                        sent = time.perf_counter()
                        client.request(subject, payload)
                        latencies.append((time.perf_counter() - sent) * 1000)
                        if not n % _STEP:
                            bar.advance(_STEP)
                    bar.advance(shares[index] % _STEP)
                    elapsed = time.perf_counter() - started
                    return Result("req", str(index + 1), shares[index], size, elapsed, latencies)
                finally:
                    client.close(timeout=5.0)

            results, elapsed = _run_clients(clients, work)
    finally:
        if service_client is not None:
            service_client.close(timeout=5.0)
    rows = [r.row() for r in results] + (
        [_total("req", results, elapsed).row()] if clients > 1 else []
    )
    _print(out, rows)
    return EXIT_OK


@bench.command(
    "js",
    short_help="JetStream: publish with acks, then consume with acks.",
    epilog=examples(
        "syncmsg bench js", "syncmsg bench js --msgs 100k --size 1KiB --storage file --sync"
    ),
)
@_common
@click.option(
    "--storage",
    type=click.Choice(["memory", "file"]),
    default="memory",
    show_default=True,
    help="The test stream's storage.",
)
@click.option(
    "--sync", "sync_publish", is_flag=True, help="Wait for each ack before the next publish."
)
def js(
    subject: str | None, msgs: int, size: int, clients: int, storage: str, sync_publish: bool
) -> int:
    """Store MSGS messages of SIZE bytes in a temporary stream (acks pipelined, or one
    at a time with --sync) from CLIENTS connections, then read them back through a
    durable pull consumer, acking each. The stream is deleted afterwards.
    """
    from syncmsg.jetstream import StorageType, StreamSpec

    out = output()
    config = build_config(settings())
    subject = _subject(subject, "js")
    stream = f"SYNCMSG_BENCH_{uuid.uuid4().hex[:8].upper()}"
    payload = os.urandom(size)
    shares = _split(msgs, clients)
    admin = _connect(config)
    try:
        admin.jetstream().ensure_stream(
            StreamSpec(name=stream, subjects=[subject], storage=StorageType(storage))
        )
        with out.progress(f"storing in {stream}", msgs) as bar:

            def work(index: int, barrier: threading.Barrier) -> Result:
                client = _connect(config)
                try:
                    jetstream = client.jetstream()
                    barrier.wait(timeout=60.0)
                    started = time.perf_counter()
                    futures = []
                    for n in range(1, shares[index] + 1):
                        if sync_publish:
                            jetstream.publish(subject, payload)
                        else:
                            futures.append(jetstream.publish_async(subject, payload))
                        if not n % _STEP:
                            bar.advance(_STEP)
                    jetstream.flush(max(client.config.timeout, 60.0))
                    for future in futures:
                        future.result()
                    bar.advance(shares[index] % _STEP)
                    return Result(
                        "js pub", str(index + 1), shares[index], size, time.perf_counter() - started
                    )
                finally:
                    client.close(timeout=5.0)

            results, elapsed = _run_clients(clients, work)
        rows = [r.row() for r in results]
        if clients > 1:
            rows.append(_total("js pub", results, elapsed).row())
        consumed = _consume(admin, out, subject, stream, msgs)
        rows.append(Result("js consume", "1", consumed[0], size, consumed[1]).row())
    finally:
        try:
            admin.jetstream().delete_stream(stream)
        finally:
            admin.close(timeout=5.0)
    _print(out, rows)
    return EXIT_OK


def _consume(
    client: syncmsg.Client, out: Output, subject: str, stream: str, msgs: int
) -> tuple[int, float]:
    puller = client.jetstream().pull_subscribe(
        subject, durable="bench", stream=stream, max_ack_pending=10_000
    )
    received = 0
    with out.progress(f"consuming from {stream}", msgs) as bar:
        started = time.perf_counter()
        idle_since = time.monotonic()
        while received < msgs:
            batch = puller.fetch(min(1000, msgs - received), timeout=1.0)
            if not batch:
                if time.monotonic() - idle_since > _STALL_SECONDS:
                    break
                continue
            idle_since = time.monotonic()
            for msg in batch:
                msg.ack()
            received += len(batch)
            bar.advance(len(batch))
        elapsed = time.perf_counter() - started
    return received, elapsed
