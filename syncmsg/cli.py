"""The ``syncmsg`` command line (also ``python -m syncmsg``).

Threading: runs on the main thread; the client it creates has its own loop thread, and
subscription callbacks print from worker threads.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import syncmsg
from syncmsg._errors import SyncMsgError

__all__ = ["main"]


@contextlib.contextmanager
def _server_for_demo(url: str | None) -> Iterator[str]:
    """NATS_URL's server when given, else an embedded JetStream server for the demo."""
    if url:
        yield url
        return
    from syncmsg._server import NatsServer

    with NatsServer(jetstream=True) as server:
        yield server.url


def _demo(args: argparse.Namespace) -> int:
    say = _printer(args.json)
    with _server_for_demo(args.url or os.environ.get("NATS_URL")) as url:
        say("server", url=url, embedded=not (args.url or os.environ.get("NATS_URL")))
        with syncmsg.connect(url, timeout=5.0) as client:
            done = threading.Event()
            handled: list[str] = []
            lock = threading.Lock()

            def on_order(msg: syncmsg.Msg) -> None:
                with lock:
                    handled.append(threading.current_thread().name)
                    if len(handled) == args.count:
                        done.set()

            client.subscribe("demo.orders.*", on_order, workers=4)
            started = time.perf_counter()
            for i in range(args.count):
                client.publish(f"demo.orders.{i % 3}", {"order": i})
            client.flush()
            if not done.wait(30):
                raise SyncMsgError(f"only {len(handled)} of {args.count} messages arrived")
            elapsed = time.perf_counter() - started
            say(
                "pubsub",
                published=args.count,
                handled=len(handled),
                worker_threads=sorted(set(handled)),
                seconds=round(elapsed, 4),
            )

            client.serve("demo.time", lambda msg: {"now": time.time(), "echo": msg.text()})
            started = time.perf_counter()
            reply = client.request("demo.time", "hello", timeout=5.0)
            say(
                "request",
                reply=reply.json(),
                rtt_ms=round((time.perf_counter() - started) * 1000, 3),
            )
            _demo_jetstream(client, say, args.count)
            say("health", **client.health())
    return 0


def _demo_jetstream(client: syncmsg.Client, say: Any, count: int) -> None:
    try:
        from syncmsg.jetstream import StreamSpec
    except ImportError:  # pragma: no cover - the JetStream package is part of syncmsg
        return
    js = client.jetstream()
    js.ensure_stream(StreamSpec(name="DEMO", subjects=["demo.js.>"]))
    acks = [js.publish("demo.js.created", {"n": i}) for i in range(count)]
    done = threading.Event()
    seen: list[int] = []

    def handle(msg: syncmsg.Msg) -> None:
        seen.append(msg.metadata.sequence_stream)
        if len(seen) >= count:
            done.set()

    sub = js.subscribe("demo.js.>", handle, durable="demo-worker", stream="DEMO")
    done.wait(30)
    sub.drain(10)
    say(
        "jetstream",
        published=len(acks),
        last_seq=acks[-1].seq if acks else 0,
        consumed=len(seen),
    )
    js.delete_stream("DEMO")


def _printer(as_json: bool) -> Any:
    def say(event: str, **fields: Any) -> None:
        if as_json:
            print(json.dumps({"event": event, **fields}, default=str), flush=True)
        else:
            detail = " ".join(f"{k}={v}" for k, v in fields.items())
            print(f"{event:>9}: {detail}", flush=True)

    return say


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncmsg", description="NATS and JetStream from the command line, via syncmsg."
    )
    parser.add_argument("--version", action="version", version=f"syncmsg {syncmsg.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="publish, consume in worker threads, request/reply, JetStream"
    )
    demo.add_argument("--url", help="server URL (default: NATS_URL, else an embedded server)")
    demo.add_argument("--count", type=int, default=1000, help="messages to publish")
    demo.add_argument("--json", action="store_true", help="print JSON lines")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except SyncMsgError as exc:
        print(f"syncmsg: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
