#!/usr/bin/env python
"""Outbox relay throughput: rows published (and marked) per second, beside its ceiling.

    python bench/outbox_relay.py                        # SQLite, 20,000 rows, 3 repetitions
    python bench/outbox_relay.py --rows 50000 --repeat 5
    python bench/outbox_relay.py --database-url postgres://user@127.0.0.1:5432/bench

It starts its own nats-server (JetStream, loopback, free port), configures Django in this
process (the ``syncmsg.django`` app alone, a SQLite file in a temporary directory in WAL
mode, or the PostgreSQL database given), migrates, and for each scenario fills the outbox
with ``--rows`` committed rows of 200-byte JSON, then times ``Relay.publish_pending()``:
claim, publish with ``Nats-Msg-Id``, wait for the acks, mark published. The stream is
file-backed and emptied between runs.

Scenarios: every row its own key (typed events: one aggregate each), rows without a key,
and every row the same key (published one at a time: each waits for its predecessor's ack).
The ceiling is ``js.publish_async`` of the same messages with message ids and nothing
else (no database), in the same process, interleaved with the relay runs. One JSON line
per scenario on stdout; medians over the repetitions. Nothing here is asserted by the
test suite.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Server

STREAM = "OUTBOXBENCH"
SUBJECT = "outboxbench.created"


def _database(url: str | None, tmp: Path) -> dict[str, Any]:
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(tmp / "bench.sqlite3"),
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    parts = urlsplit(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/"),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }


def _setup(nats_url: str, database: dict[str, Any], batch_size: int | None) -> None:
    import django
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=["syncmsg.django"],
        DATABASES={"default": database},
        USE_TZ=True,
        SYNCMSG={
            "url": nats_url,
            "streams": [{"name": STREAM, "subjects": ["outboxbench.>"]}],
            "outbox": {
                "publish_timeout": 10.0,
                **({"batch_size": batch_size} if batch_size else {}),
            },
        },
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def _fill(rows: int, keys: str) -> None:
    """``rows`` committed outbox rows, as ``outbox.publish`` writes them (bulk-inserted
    here: the writing is not what is measured)."""
    import uuid

    from syncmsg.django.outbox import OutboxMessage

    def row(i: int) -> OutboxMessage:
        key = {"distinct": f"order:{i}", "none": None, "one": "order:1"}[keys]
        body = json.dumps({"text": "x" * 160, "n": i}, separators=(",", ":")).encode()
        return OutboxMessage(subject=SUBJECT, payload=body, msg_id=str(uuid.uuid4()), key=key)

    for start in range(0, rows, 1000):
        OutboxMessage.objects.bulk_create([row(i) for i in range(start, min(start + 1000, rows))])


def _empty() -> None:
    from syncmsg.django import get_client
    from syncmsg.django.outbox import OutboxMessage

    OutboxMessage.objects.all().delete()
    get_client().jetstream().purge_stream(STREAM)


def _relay_run(rows: int, keys: str, profile: bool = False) -> float:
    from syncmsg.django.outbox import Relay, backlog

    _empty()
    _fill(rows, keys)
    relay = Relay()
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    published = relay.publish_pending()
    took = time.perf_counter() - started
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    relay.stop()
    assert published == rows and backlog().pending == 0, (published, backlog())
    return rows / took


def _ceiling_run(rows: int) -> float:
    import uuid

    from syncmsg.django import get_client

    _empty()
    js = get_client().jetstream()
    body = json.dumps({"text": "x" * 160, "n": 0}).encode()
    ids = [str(uuid.uuid4()) for _ in range(rows)]
    started = time.perf_counter()
    futures = [js.publish_async(SUBJECT, body, msg_id=ident) for ident in ids]
    js.flush(60)
    took = time.perf_counter() - started
    assert all(f.exception() is None for f in futures)
    return rows / took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None, help="default: the setting's")
    parser.add_argument("--database-url", default=None, help="postgres://... (default: SQLite)")
    parser.add_argument("--scenarios", default="distinct,none,one")
    parser.add_argument("--profile", action="store_true", help="cProfile one run, to stderr")
    args = parser.parse_args()

    server = Server(jetstream=True, use_syncmsg=True)
    server.start()
    try:
        with tempfile.TemporaryDirectory(prefix="syncmsg-outbox-bench-") as tmp:
            database = _database(args.database_url, Path(tmp))
            _setup(server.url, database, args.batch_size)
            engine = database["ENGINE"].rsplit(".", 1)[1]
            _relay_run(min(args.rows, 2000), "distinct")  # warm-up: connection, streams
            if args.profile:
                _relay_run(args.rows, args.scenarios.split(",")[0], profile=True)
                return
            scenarios = args.scenarios.split(",")
            samples: dict[str, list[float]] = {name: [] for name in [*scenarios, "ceiling"]}
            for _ in range(args.repeat):
                for name in scenarios:
                    print(f"  {engine} {name} ...", file=sys.stderr, flush=True)
                    samples[name].append(_relay_run(args.rows, name))
                samples["ceiling"].append(_ceiling_run(args.rows))
            from syncmsg.django.conf import OutboxOptions

            ceiling = statistics.median(samples["ceiling"])
            for name, values in samples.items():
                value = statistics.median(values)
                line = {
                    "metric": "outbox_relay" if name != "ceiling" else "js_publish_async",
                    "database": engine,
                    "keys": name if name != "ceiling" else None,
                    "rows": args.rows,
                    "batch_size": args.batch_size or OutboxOptions().batch_size,
                    "value": round(value),
                    "unit": "rows/s" if name != "ceiling" else "msg/s",
                    "ratio_to_publish_async": round(value / ceiling, 2),
                    "samples": [round(v) for v in values],
                }
                print(json.dumps(line), flush=True)
            from syncmsg.django import close_client

            close_client(5.0)
    finally:
        server.close()


if __name__ == "__main__":
    main()
