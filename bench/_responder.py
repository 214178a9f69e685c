"""An echo responder of one client kind, in its own process, for the end-to-end rows.

    python bench/_responder.py raw URL SUBJECT WORKERS       nats-py, answered on its loop
    python bench/_responder.py syncmsg URL SUBJECT WORKERS   client.serve(..., workers=N)

Prints ``ready`` once subscribed, answers until SIGTERM. Only the chosen client is
imported, so the raw responder never loads syncmsg.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def serve_syncmsg(url: str, subject: str, workers: int) -> None:
    import syncmsg

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with syncmsg.connect(url) as client:
        client.serve(subject, lambda msg: msg.data, workers=workers)
        client.flush()
        print("ready", flush=True)
        while not stop.wait(0.5):
            pass


def main(argv: list[str]) -> None:
    kind, url, subject, workers = argv
    if kind == "raw":
        import asyncio

        from _peer import responder

        asyncio.run(responder(url, subject))
    elif kind == "syncmsg":
        serve_syncmsg(url, subject, int(workers))
    else:
        raise SystemExit(f"unknown client {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
