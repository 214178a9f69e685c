"""``syncmsg req`` and ``syncmsg reply``: request/reply from the command line.

Threading: ``req`` runs on the main thread. ``reply`` answers on the subscription's worker
thread and prints from there (the Output is thread-safe); the main thread waits for
``--count`` or Ctrl-C.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import click

import syncmsg
from syncmsg.cli._app import app, examples, output, settings
from syncmsg.cli._connect import connected
from syncmsg.cli._exit import EXIT_OK, EXIT_UNAVAILABLE, CommandFailed
from syncmsg.cli._messages import (
    HEADER_OPTION,
    parse_headers,
    payload_fields,
    print_msg,
    read_data,
    show,
)
from syncmsg.cli._units import COUNT

__all__ = ["reply", "req"]


@app.command(
    "req",
    short_help="Send a request and print the reply.",
    epilog=examples(
        "syncmsg req time.now",
        "syncmsg req billing.quote '{\"items\": 3}' --timeout 2s --json",
        "cat query.json | syncmsg req search.run - -H 'Trace: abc'",
        notes="Status 5: nobody listens on SUBJECT; 4: no reply within --timeout; 1: the "
        "responder's handler failed (its error description is printed).",
    ),
)
@click.argument("subject")
@click.argument("data", required=False)
@HEADER_OPTION
def req(subject: str, data: str | None, headers: tuple[str, ...]) -> int:
    """Send DATA to SUBJECT as a request and print the reply's payload.

    '-' reads the request's payload from stdin. JSON: subject, data (or data_base64),
    headers and rtt_ms, the round trip in milliseconds.
    """
    out = output()
    header_map = parse_headers(headers)
    payload = read_data(data)
    with connected(settings()) as client:
        started = time.perf_counter()
        answer = client.request(subject, payload, headers=header_map)
        rtt = round((time.perf_counter() - started) * 1000, 3)
    obj: dict[str, Any] = {"subject": subject, **payload_fields(answer.data), "rtt_ms": rtt}
    if answer.headers:
        obj["headers"] = answer.headers
    out.emit(obj, show(answer.data))
    return EXIT_OK


@app.command(
    "reply",
    short_help="Answer requests: echo them, or send a fixed response.",
    epilog=examples(
        "syncmsg reply time.now                       # echoes each request",
        "syncmsg reply greet.joe 'hello #{n}' --count 3",
        "syncmsg reply billing.quote '{\"price\": 10}' --queue billing",
    ),
)
@click.argument("subject")
@click.argument("response", required=False)
@HEADER_OPTION
@click.option("--queue", metavar="GROUP", help="Join a queue group, sharing the requests.")
@click.option("--count", type=COUNT, help="Exit after answering N requests.")
def reply(
    subject: str,
    response: str | None,
    headers: tuple[str, ...],
    queue: str | None,
    count: int | None,
) -> int:
    """Answer requests on SUBJECT until Ctrl-C or --count.

    The reply is RESPONSE ({n} becomes the request's number) or, without it, the request's
    own payload. Each request answered is printed as sub prints messages.
    """
    out = output()
    fixed = None if response is None else read_data(response)
    header_map = parse_headers(headers)
    served = 0
    lock = threading.Lock()
    enough = threading.Event()

    def handle(msg: syncmsg.Msg) -> None:  # on the subscription's worker thread
        nonlocal served
        with lock:
            if enough.is_set():
                return
            served += 1
            n = served
            if count is not None and served >= count:
                enough.set()
        answer = msg.data if fixed is None else fixed.replace(b"{n}", str(n).encode())
        if msg.reply:
            msg.respond(answer, headers=header_map)
        print_msg(out, n, msg, {"replied": show(answer)})

    with connected(settings()) as client:
        client.subscribe(subject, handle, queue=queue)
        client.flush()
        out.status(f"answering requests on {subject}")
        try:
            while not enough.wait(0.5):
                if client.is_closed:
                    raise CommandFailed("the connection was closed", EXIT_UNAVAILABLE)
        except KeyboardInterrupt:
            pass
        client.flush()
    return EXIT_OK
