"""The other side of a measurement, always raw nats-py in its own process.

    python bench/_peer.py responder URL SUBJECT      answer requests with their own payload
    python bench/_peer.py publisher URL SUBJECT N SIZE   publish N numbered messages (socket)
    python bench/_peer.py requester URL SUBJECT N CONCURRENCY SIZE
                                                     N requests from CONCURRENCY asyncio tasks

Each prints ``ready`` once it is subscribed/connected and ``done`` when finished, so the
process that started it knows when to begin timing. The same peer serves every client, so
the client under test is the only thing that changes between rows.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import nats
from _common import percentile


async def responder(url: str, subject: str) -> None:
    nc = await nats.connect(url, max_reconnect_attempts=-1)

    async def answer(msg: nats.aio.msg.Msg) -> None:
        await nc.publish(msg.reply, msg.data)

    await nc.subscribe(subject, cb=answer)
    await nc.flush()
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await nc.close()


def publisher(url: str, subject: str, count: int, size: int) -> None:
    """Publish with pre-built protocol bytes on a plain socket.

    The publisher should cost as little CPU as possible (the machine has few cores and the
    subscriber is what is measured), so the PUB commands are built before connecting and
    written in large chunks; the PING at the end returns once the server has them all.
    """
    parts = urlsplit(url)
    filler = b"x" * max(size - 4, 0)
    head = f"PUB {subject} {size}\r\n".encode()
    chunks = []
    batch = max(1, (256 * 1024) // (size + len(head) + 2))
    for first in range(0, count, batch):
        chunks.append(
            b"".join(
                head + i.to_bytes(4, "big") + filler + b"\r\n"
                for i in range(first, min(first + batch, count))
            )
        )
    with socket.create_connection((parts.hostname, parts.port or 4222)) as sock:
        reader = sock.makefile("rb")
        reader.readline()  # INFO
        sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"protocol":1}\r\nPING\r\n')
        _expect_pong(reader)
        print("ready", flush=True)
        for chunk in chunks:
            sock.sendall(chunk)
        sock.sendall(b"PING\r\n")
        _expect_pong(reader)
    print("done", flush=True)


async def requester(url: str, subject: str, count: int, concurrency: int, size: int) -> None:
    """The load for a responder under test: ``count`` requests from ``concurrency`` tasks.

    Prints ``start`` when the timed part begins (after 200 warm-up requests), then one JSON
    line: the rate and the per-request latencies it saw.
    """
    nc = await nats.connect(url)
    payload = b"q" * size
    for _ in range(200):
        await nc.request(subject, payload, timeout=10)
    samples: list[float] = []
    clock = time.perf_counter_ns
    per = count // concurrency

    async def one() -> None:
        for _ in range(per):
            t0 = clock()
            await nc.request(subject, payload, timeout=10)
            samples.append((clock() - t0) / 1000)

    print("start", flush=True)
    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await nc.close()
    result = {
        "rate": per * concurrency / elapsed,
        "p50": percentile(samples, 50),
        "p99": percentile(samples, 99),
    }
    print(json.dumps(result), flush=True)


def _expect_pong(reader: Any) -> None:
    while True:
        line = reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        if line.startswith(b"PONG"):
            return
        if line.startswith(b"-ERR"):
            raise ConnectionError(line.decode().strip())


def main(argv: list[str]) -> None:
    role, url, subject, *rest = argv
    if role == "responder":
        asyncio.run(responder(url, subject))
    elif role == "publisher":
        publisher(url, subject, int(rest[0]), int(rest[1]))
    elif role == "requester":
        asyncio.run(requester(url, subject, int(rest[0]), int(rest[1]), int(rest[2])))
    else:
        raise SystemExit(f"unknown role {role!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
