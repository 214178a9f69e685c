"""``syncmsg health``: connect, measure the round trip, optionally check JetStream.

Threading: runs on the main thread.
"""

from __future__ import annotations

from typing import Any

import click

from syncmsg._errors import NatsConnectionError, SyncMsgError
from syncmsg.cli._app import app, examples, output, settings
from syncmsg.cli._connect import connected
from syncmsg.cli._exit import EXIT_OK, EXIT_UNAVAILABLE, CommandFailed, one_line
from syncmsg.cli._units import format_count

__all__ = ["health"]


@app.command(
    "health",
    short_help="Check the server: connect and measure the round trip.",
    epilog=examples(
        "syncmsg health",
        "syncmsg -s nats://prod:4222 --json health --jetstream",
        "syncmsg health --timeout 2s >/dev/null || echo 'NATS is down'",
        notes='In a container: healthcheck: ["CMD", "syncmsg", "health", "--jetstream", '
        '"--timeout", "2s"]',
    ),
)
@click.option("--jetstream", is_flag=True, help="Also check that the JetStream API answers.")
def health(jetstream: bool) -> int:
    """Connect, measure a round trip, and say whether the server is healthy.

    Prints 'ok: connected to nats://... (rtt 0.4ms)', or with --json the object of
    Client.health() (ok, state, connected, server, rtt_ms, server_id, server_version,
    error). Unhealthy or unreachable: the JSON (with "ok": false and the error) is still
    printed, the reason goes to stderr, and the status is 3.
    """
    out = output()
    try:
        with connected(settings()) as client:
            info: dict[str, Any] = client.health()
            if jetstream and info["ok"]:
                try:
                    info["streams"] = len(client.jetstream().stream_names())
                    info["jetstream"] = True
                except SyncMsgError as exc:
                    info.update(ok=False, jetstream=False, error=f"JetStream: {one_line(exc)}")
    except NatsConnectionError as exc:
        info = {
            "ok": False,
            "state": "unavailable",
            "connected": False,
            "server": None,
            "rtt_ms": None,
            "error": one_line(exc),
        }
    if info["ok"]:
        text = f"ok: connected to {info['server']} (rtt {info['rtt_ms']}ms)"
        if "streams" in info:
            streams = info["streams"]
            text += f", JetStream with {format_count(streams)} stream{'s' if streams != 1 else ''}"
        out.emit(info, text)
        return EXIT_OK
    out.emit(info, None)
    raise CommandFailed(f"unhealthy: {info['error']}", EXIT_UNAVAILABLE)
