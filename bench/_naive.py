"""For scale: the wrapper everyone writes first. One loop thread runs nats-py, and every
call from a caller thread is ``asyncio.run_coroutine_threadsafe(...).result()``.

Subscription callbacks are handed from the loop to a worker thread through a
``queue.SimpleQueue``. Same job functions and measurements as ``_raw.py``.
"""

from __future__ import annotations

import asyncio
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Coroutine
from typing import Any

import _jsutil
import nats
from _common import BENCH_DIR, request_burst
from _raw import latency_rows, request_rate_row, subscribe_row


class NaiveClient:
    def __init__(self, url: str, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.nc = self.call(nats.connect(url, **options))

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def publish(self, subject: str, data: bytes) -> None:
        self.call(self.nc.publish(subject, data))

    def flush(self, timeout: float = 60) -> None:
        self.call(self.nc.flush(timeout))

    def request(self, subject: str, data: bytes, timeout: float = 5) -> Any:
        return self.call(self.nc.request(subject, data, timeout=timeout))

    def subscribe(self, subject: str, handler: Any, **limits: Any) -> Any:
        inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()

        async def hand_over(msg: Any) -> None:
            inbox.put(msg)

        def work() -> None:
            while True:
                msg = inbox.get()
                if msg is None:
                    return
                handler(msg)

        threading.Thread(target=work, daemon=True).start()
        sub = self.call(self.nc.subscribe(subject, cb=hand_over, **limits))
        self.flush()
        return sub, inbox

    def close(self) -> None:
        self.call(self.nc.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


# ------------------------------------------------------------------ core publish
def _publish(url: str, n: int, size: int, threads: int) -> float:
    client = NaiveClient(url)
    payload = b"x" * size
    subject = "bench.pub"
    for _ in range(min(n, 500)):
        client.publish(subject, payload)
    client.flush()
    per = n // threads
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
    client.flush()
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
    client = NaiveClient(p["url"])
    payload = b"r" * p["size"]
    subject = p["subject"]
    for _ in range(200):
        client.request(subject, payload)
    samples = []
    clock = time.perf_counter_ns
    for _ in range(p["n"]):
        t0 = clock()
        client.request(subject, payload)
        samples.append((clock() - t0) / 1000)
    client.close()
    return latency_rows(p["metric"], samples)


# ------------------------------------------------------------------ concurrent requests
def request_threads(p: dict[str, Any]) -> list[dict[str, Any]]:
    client = NaiveClient(p["url"])
    rows = []
    for point in p["points"]:
        result = request_burst(
            client.request, p["subject"], point["n"], p["size"], point["threads"]
        )
        rows.append(
            request_rate_row(point["metric"], point["n"], result, f"{point['threads']} threads")
        )
    client.close()
    return rows


# ------------------------------------------------------------------ core subscribe
def subscribe(p: dict[str, Any]) -> list[dict[str, Any]]:
    n, url = p["n"], p["url"]
    client = NaiveClient(url)
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

    _, inbox = client.subscribe(subject, handler, **p["limits"])
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
    inbox.put(None)
    client.close()
    return [subscribe_row(p["metric"], n, state)]


# ------------------------------------------------------------------ reconnect buffer
def buffer(p: dict[str, Any]) -> list[dict[str, Any]]:  # pragma: no cover - not measured
    raise NotImplementedError("the naive wrapper is not measured for the reconnect buffer")


# ------------------------------------------------------------------ JetStream
def js_publish(p: dict[str, Any]) -> list[dict[str, Any]]:
    client = NaiveClient(p["url"])
    js = client.nc.jetstream()
    subject = client.call(_jsutil.make_stream(js))
    payload = b"j" * p["size"]
    for _ in range(100):
        client.call(js.publish(subject, payload))
    samples = []
    clock = time.perf_counter_ns
    for _ in range(p["n"]):
        t0 = clock()
        client.call(js.publish(subject, payload))
        samples.append((clock() - t0) / 1000)
    client.call(_jsutil.drop_stream(js, subject))
    client.close()
    return latency_rows(p["metric"], samples)


def js_publish_async(p: dict[str, Any]) -> list[dict[str, Any]]:
    """Pipelined: submit a window of publishes without waiting, then wait for all of them."""
    n, window = p["n"], p["window"]
    client = NaiveClient(p["url"])
    js = client.nc.jetstream()
    subject = client.call(_jsutil.make_stream(js))
    payload = b"j" * p["size"]
    loop = client.loop

    def burst(count: int) -> None:
        futures = [
            asyncio.run_coroutine_threadsafe(js.publish(subject, payload), loop)
            for _ in range(count)
        ]
        for future in futures:
            future.result(30)

    burst(window)
    start, cpu0 = time.perf_counter(), time.process_time()
    for first in range(0, n, window):
        burst(min(window, n - first))
    elapsed = time.perf_counter() - start
    cpu_us = (time.process_time() - cpu0) / n * 1e6
    client.call(_jsutil.drop_stream(js, subject))
    client.close()
    return [
        {
            "metric": p["metric"],
            "value": n / elapsed,
            "unit": "msg/s",
            "n": n,
            "window": window,
            "cpu_us_per_msg": cpu_us,
        }
    ]


def js_consume(p: dict[str, Any]) -> list[dict[str, Any]]:
    n, batch = p["n"], p["batch"]
    client = NaiveClient(p["url"])
    js = client.nc.jetstream()
    subject, durable = client.call(_jsutil.filled_stream(client.nc, js, n, p["size"]))
    psub = client.call(js.pull_subscribe(subject, durable=durable))
    state: dict[str, Any] = {"count": 0, "first": 0.0, "last": 0.0, "disorder": 0}
    clock = time.perf_counter
    deadline = time.monotonic() + 120
    while state["count"] < n and time.monotonic() < deadline:
        try:
            msgs = client.call(psub.fetch(batch, timeout=5))
        except nats.errors.TimeoutError:
            continue
        for msg in msgs:
            count = state["count"]
            if count == 0:
                state["first"] = clock()
                state["cpu_first"] = time.process_time()
            if int.from_bytes(msg.data[:4], "big") != count:
                state["disorder"] += 1
            client.call(msg.ack())
            state["count"] = count + 1
            state["last"] = clock()
    state["cpu_last"] = time.process_time()
    client.flush()
    unacked = client.call(_jsutil.unacked(js, subject, durable))
    client.call(_jsutil.drop_stream(js, subject))
    client.close()
    row = subscribe_row(p["metric"], n, state)
    row.update(batch=batch, unacked=unacked)
    return [row]
