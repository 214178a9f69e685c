"""JetStream set-up shared by every client's worker (raw nats-py, never timed)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import nats
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig


def _names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:10]
    return f"BENCH_{tag}", f"benchjs.{tag}"


async def make_stream(js: Any) -> str:
    """A fresh file-backed stream; returns the subject to publish to."""
    name, subject = _names()
    await js.add_stream(StreamConfig(name=name, subjects=[f"{subject}.>"]))
    return f"{subject}.x"


async def drop_stream(js: Any, subject: str) -> None:
    name = "BENCH_" + subject.split(".")[1]
    with contextlib.suppress(Exception):  # clean-up only
        await js.delete_stream(name)


async def filled_stream(
    nc: Any, js: Any, n: int, size: int, *, pull_consumer: bool = True
) -> tuple[str, str]:
    """A stream holding ``n`` numbered messages, and a durable name for consuming them.

    With ``pull_consumer`` the durable is created as a pull consumer with explicit ack.
    """
    subject = await make_stream(js)
    name = "BENCH_" + subject.split(".")[1]
    filler = b"c" * max(size - 4, 0)
    for i in range(n):
        await nc.publish(subject, i.to_bytes(4, "big") + filler)
    await nc.flush(30)
    for _ in range(300):
        info = await js.stream_info(name)
        if info.state.messages >= n:
            break
        await asyncio.sleep(0.05)
    durable = "bench"
    if pull_consumer:
        await js.add_consumer(
            name, ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT)
        )
    return subject, durable


async def unacked(js: Any, subject: str, durable: str) -> int:
    """Messages the consumer still waits an ack for (0 when every ack arrived)."""
    name = "BENCH_" + subject.split(".")[1]
    for _ in range(20):
        info = await js.consumer_info(name, durable)
        if info.num_ack_pending == 0:
            return 0
        await asyncio.sleep(0.05)
    return int(info.num_ack_pending)


def run_setup(url: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run ``fn(nc, js, *args)`` on a throw-away raw connection (for the threaded clients)."""

    async def main() -> Any:
        nc = await nats.connect(url)
        try:
            return await fn(nc, nc.jetstream(), *args, **kwargs)
        finally:
            await nc.close()

    return asyncio.run(main())
