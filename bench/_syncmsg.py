"""The client under test: syncmsg's blocking API, called from ordinary threads.

Same job functions and measurements as ``_raw.py``. Limits that differ between the clients
by default (subscription pending limits) are passed explicitly so every client gets the
same ones; everything else is each client's default.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import _jsutil
from _common import BENCH_DIR, peak_rss_bytes, request_burst, rss_bytes
from _raw import (
    MiB,
    buffer_row,
    latency_rows,
    load_requests,
    request_rate_row,
    serve_row,
    start_responder,
    stop_responder,
    subscribe_row,
)

import syncmsg


def _connect(url: str, **options: Any) -> syncmsg.Client:
    return syncmsg.connect(url, **options)


# ------------------------------------------------------------------ core publish
def _publish(url: str, n: int, size: int, threads: int) -> float:
    client = _connect(url)
    payload = b"x" * size
    subject = "bench.pub"
    for _ in range(min(n, 2000)):
        client.publish(subject, payload)
    client.flush()
    per = n // threads
    if threads == 1:
        publish = client.publish
        start, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(per):
            publish(subject, payload)
        client.flush(60)
        elapsed = time.perf_counter() - start
    else:
        gate = threading.Barrier(threads + 1)

        def one() -> None:
            gate.wait()
            publish = client.publish
            for _ in range(per):
                publish(subject, payload)

        workers = [threading.Thread(target=one) for _ in range(threads)]
        for worker in workers:
            worker.start()
        gate.wait()
        start, cpu0 = time.perf_counter(), time.process_time()
        for worker in workers:
            worker.join()
        client.flush(60)
        elapsed = time.perf_counter() - start
    cpu_us = (time.process_time() - cpu0) / (per * threads) * 1e6
    client.close()
    return per * threads / elapsed, cpu_us


def publish(p: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for point in p["points"]:
        rate, cpu_us = _publish(p["url"], point["n"], point["size"], point["threads"])
        out.append(
            {
                "metric": point["metric"],
                "value": rate,
                "unit": "msg/s",
                "mb_s": rate * point["size"] / 1e6,
                "cpu_us_per_msg": cpu_us,
                "n": point["n"],
                "concurrency": f"{point['threads']} threads",
            }
        )
    return out


# ------------------------------------------------------------------ request / reply
def request(p: dict[str, Any]) -> list[dict[str, Any]]:
    client = _connect(p["url"])
    payload = b"r" * p["size"]
    subject = p["subject"]
    req = client.request
    for _ in range(200):
        req(subject, payload, timeout=5)
    samples = []
    clock = time.perf_counter_ns
    for _ in range(p["n"]):
        t0 = clock()
        req(subject, payload, timeout=5)
        samples.append((clock() - t0) / 1000)
    client.close()
    return latency_rows(p["metric"], samples)


# ------------------------------------------------------------------ concurrent requests
def request_threads(p: dict[str, Any]) -> list[dict[str, Any]]:
    """Requests from N threads to one responder: the shared raw one, or (``own``) a syncmsg
    ``serve()`` with ``workers`` threads in another process."""
    subject = p.get("subject") or start_responder(p, "syncmsg")
    try:
        client = _connect(p["url"])

        def request(subject: str, payload: bytes) -> Any:
            return client.request(subject, payload, timeout=10)

        rows = []
        for point in p["points"]:
            result = request_burst(request, subject, point["n"], p["size"], point["threads"])
            rows.append(
                request_rate_row(point["metric"], point["n"], result, f"{point['threads']} threads")
            )
        client.close()
        return rows
    finally:
        stop_responder(p)


# ------------------------------------------------------------------ serving requests
def serve(p: dict[str, Any]) -> list[dict[str, Any]]:
    """This process answers with ``client.serve`` on ``workers`` worker threads."""
    client = _connect(p["url"])
    subject = f"bench.serve.{uuid.uuid4().hex[:8]}"
    workers = p.get("workers", 4)
    client.serve(subject, lambda msg: msg.data, workers=workers)
    client.flush()
    result = load_requests(p["url"], subject, p["n"], p["concurrency"], p["size"])
    client.close()
    return [serve_row(p["metric"], p["n"], result, f"serve(), {workers} workers")]


# ------------------------------------------------------------------ core subscribe
def subscribe(p: dict[str, Any]) -> list[dict[str, Any]]:
    n, url = p["n"], p["url"]
    client = _connect(url)
    subject = f"bench.sub.{uuid.uuid4().hex[:8]}"
    state = {"count": 0, "first": 0.0, "last": 0.0, "disorder": 0}
    done = threading.Event()
    clock = time.perf_counter

    def handler(msg: Any) -> None:
        count = state["count"]
        if count == 0:
            state["first"] = clock()
            state["cpu_first"] = time.process_time()
        if int.from_bytes(msg.data[:4], "big") != count:
            state["disorder"] += 1
        state["count"] = count + 1
        state["last"] = clock()
        if count + 1 == n:
            state["cpu_last"] = time.process_time()
            done.set()

    client.subscribe(subject, handler, workers=p.get("workers", 1), **p["limits"])
    peer = subprocess.Popen(
        [
            sys.executable,
            str(BENCH_DIR / "_peer.py"),
            "publisher",
            url,
            subject,
            str(n),
            str(p["size"]),
        ],
        stdout=subprocess.DEVNULL,
    )
    done.wait(120)
    peer.wait(60)
    client.close()
    return [subscribe_row(p["metric"], n, state)]


# ------------------------------------------------------------------ reconnect buffer
def buffer(p: dict[str, Any]) -> list[dict[str, Any]]:
    from _common import Server

    n, size, threads = p["n"], p["size"], p.get("threads", 1)
    server = Server(jetstream=False).start()
    client = _connect(server.url, reconnect_wait=0.5, close_timeout=2.0, atexit_timeout=0)
    payload = b"b" * size
    client.publish("bench.buf", payload)
    client.flush()
    server.kill()
    deadline = time.monotonic() + 10
    while client.is_connected and time.monotonic() < deadline:
        time.sleep(0.01)
    gc.collect()
    rss0 = rss_bytes()
    first_error: list[int] = []
    other: dict[str, int] = {}
    tallies: list[list[int]] = []  # per thread: [accepted, refused]

    def one(count: int) -> None:
        tally = [0, 0]
        tallies.append(tally)
        publish = client.publish
        for _ in range(count):
            try:
                publish("bench.buf", payload)
                tally[0] += 1
            except syncmsg.BufferFullError:
                tally[1] += 1
                if not first_error:
                    first_error.append(sum(t[0] for t in tallies))
            except syncmsg.SyncMsgError as exc:
                other[type(exc).__name__] = other.get(type(exc).__name__, 0) + 1

    start = time.perf_counter()
    if threads == 1:
        one(n)
    else:
        workers = [threading.Thread(target=one, args=(n // threads,)) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    elapsed = time.perf_counter() - start
    rss1 = rss_bytes()
    peak = peak_rss_bytes()
    accepted = sum(t[0] for t in tallies)
    result = {
        "accepted": accepted,
        "accepted_bytes": accepted * size,
        "errors": sum(t[1] for t in tallies),
        "first_error_at": first_error[0] if first_error else None,
        "error_type": "syncmsg.BufferFullError",
        "other_errors": other,
        "rss_growth": (rss1 - rss0) / MiB,
        "peak_growth": max(peak - rss0, 0) / MiB,
        "buffer_limit_bytes": client.config.reconnect_buffer_size,
        "ns_per_publish": elapsed / n * 1e9,
        "concurrency": f"{threads} threads",
    }
    client.close(timeout=2.0)
    server.close()
    return [buffer_row(p["metric"], n, result)]


# ------------------------------------------------------------------ JetStream
# Streams are made and filled with raw nats-py (untimed), so every client measures against
# the same stream configuration.
def _jetstream(client: syncmsg.Client) -> Any:
    try:
        return client.jetstream()
    except (ImportError, AttributeError) as exc:  # before syncmsg.jetstream existed
        raise NotImplementedError(f"syncmsg.jetstream is not available: {exc}") from None


def _stream_name(subject: str) -> str:
    return "BENCH_" + subject.split(".")[1]


def js_publish(p: dict[str, Any]) -> list[dict[str, Any]]:
    client = _connect(p["url"])
    js = _jetstream(client)
    subject = _jsutil.run_setup(p["url"], lambda nc, raw_js: _jsutil.make_stream(raw_js))
    payload = b"j" * p["size"]
    publish = js.publish
    for _ in range(100):
        publish(subject, payload)
    samples = []
    clock = time.perf_counter_ns
    for _ in range(p["n"]):
        t0 = clock()
        publish(subject, payload)
        samples.append((clock() - t0) / 1000)
    _jsutil.run_setup(p["url"], lambda nc, raw_js: _jsutil.drop_stream(raw_js, subject))
    client.close()
    return latency_rows(p["metric"], samples)


def js_publish_async(p: dict[str, Any]) -> list[dict[str, Any]]:
    """syncmsg's own pipelining: publish_async for every message (its window of
    ``max_pending`` unacknowledged messages throttles), then wait for every ack."""
    n = p["n"]
    client = _connect(p["url"])
    js = _jetstream(client)
    subject = _jsutil.run_setup(p["url"], lambda nc, raw_js: _jsutil.make_stream(raw_js))
    payload = b"j" * p["size"]
    publish_async = js.publish_async
    for _ in range(p["window"]):
        publish_async(subject, payload)
    js.flush(30)
    start, cpu0 = time.perf_counter(), time.process_time()
    futures = [publish_async(subject, payload) for _ in range(n)]
    js.flush(60)
    elapsed = time.perf_counter() - start
    cpu_us = (time.process_time() - cpu0) / n * 1e6
    failed = sum(1 for f in futures if f.exception() is not None)
    _jsutil.run_setup(p["url"], lambda nc, raw_js: _jsutil.drop_stream(raw_js, subject))
    client.close()
    return [
        {
            "metric": p["metric"],
            "value": n / elapsed,
            "unit": "msg/s",
            "n": n,
            "window": f"max_pending={js.max_pending}",
            "failed": failed,
            "cpu_us_per_msg": cpu_us,
        }
    ]


def js_consume(p: dict[str, Any]) -> list[dict[str, Any]]:
    """A durable consumer (syncmsg creates it) with the handler on a worker thread and an
    explicit ``msg.ack()`` per message."""
    n, url = p["n"], p["url"]
    subject, durable = _jsutil.run_setup(
        url, _jsutil.filled_stream, n, p["size"], pull_consumer=False
    )
    client = _connect(url)
    js = _jetstream(client)
    state: dict[str, Any] = {"count": 0, "first": 0.0, "last": 0.0, "disorder": 0}
    done = threading.Event()
    clock = time.perf_counter

    def handler(msg: Any) -> None:
        count = state["count"]
        if count == 0:
            state["first"] = clock()
            state["cpu_first"] = time.process_time()
        if int.from_bytes(msg.data[:4], "big") != count:
            state["disorder"] += 1
        msg.ack()
        state["count"] = count + 1
        state["last"] = clock()
        if count + 1 == n:
            state["cpu_last"] = time.process_time()
            done.set()

    sub = js.subscribe(
        subject, handler, durable=durable, stream=_stream_name(subject), manual_ack=True
    )
    done.wait(120)
    sub.drain(10)
    client.flush()
    unacked = _jsutil.run_setup(url, lambda nc, raw_js: _jsutil.unacked(raw_js, subject, durable))
    _jsutil.run_setup(url, lambda nc, raw_js: _jsutil.drop_stream(raw_js, subject))
    client.close()
    row = subscribe_row(p["metric"], n, state)
    row.update(batch=f"prefetch={sub.prefetch}", unacked=unacked)
    return [row]
