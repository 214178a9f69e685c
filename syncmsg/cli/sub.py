"""``syncmsg sub``: print messages of core NATS, or of a durable JetStream consumer.

Threading: runs on the main thread, which reads the subscription itself (``next_msg`` or
``fetch``), so messages print in order and Ctrl-C stops it between two messages.
"""

from __future__ import annotations

import time

import click

from syncmsg._errors import TimeoutError as SyncTimeoutError
from syncmsg.cli._app import app, examples, output, settings
from syncmsg.cli._connect import connected
from syncmsg.cli._exit import EXIT_INTERRUPTED, EXIT_OK, EXIT_TIMEOUT, CommandFailed
from syncmsg.cli._messages import print_msg
from syncmsg.cli._units import COUNT, SECONDS, format_count, format_duration

__all__ = ["sub"]

#: Messages asked for in one fetch of a durable consumer.
_FETCH_BATCH = 64


@app.command(
    "sub",
    short_help="Print messages (core NATS, or a durable consumer with --durable).",
    epilog=examples(
        "syncmsg sub 'orders.>'",
        "syncmsg sub 'orders.>' --count 10 --json | jq .data",
        "syncmsg sub orders.created --queue billing --wait 30s",
        "syncmsg sub 'orders.>' --durable audit --count 100     # acks what it prints",
    ),
)
@click.argument("subject")
@click.option("--queue", metavar="GROUP", help="Join a queue group (core NATS).")
@click.option("--count", type=COUNT, help="Exit after N messages (status 4 if --wait ends first).")
@click.option("--wait", type=SECONDS, help="Exit after this long, e.g. 10s, 5m.")
@click.option(
    "--durable", metavar="NAME", help="Read this durable JetStream consumer, acking each message."
)
@click.option(
    "--stream", metavar="STREAM", help="The consumer's stream (default: the one capturing SUBJECT)."
)
@click.option(
    "--deliver",
    type=click.Choice(["all", "new", "last"]),
    default="all",
    show_default=True,
    help="Where a new durable consumer starts.",
)
def sub(
    subject: str,
    queue: str | None,
    count: int | None,
    wait: float | None,
    durable: str | None,
    stream: str | None,
    deliver: str,
) -> int:
    """Print each message on SUBJECT (wildcards allowed).

    Text: '[#1] orders.created: {"id": 42}' and the headers on indented lines. JSON: one
    object per message (subject, data or data_base64, headers, reply; seq with --durable).
    It stops after --count messages, after --wait, or at Ctrl-C/SIGTERM (status 0 when
    there was no --count).

    With --durable it reads a durable pull consumer (created if needed) and acks each
    message after printing it, so a second run continues where the first stopped.
    """
    out = output()
    deadline = None if wait is None else time.monotonic() + wait
    received = 0

    def left() -> float:
        return 1.0 if deadline is None else deadline - time.monotonic()

    def more() -> bool:
        return (count is None or received < count) and left() > 0

    interrupted = False
    with (
        connected(settings()) as client,
        out.progress(f"receiving from {subject}", count, enabled=count is not None) as bar,
    ):
        try:
            if durable:
                puller = client.jetstream().pull_subscribe(
                    subject, durable=durable, stream=stream, deliver_policy=deliver
                )
                out.status(f"consuming {subject} as {durable} on {puller.stream}")
                while more():
                    want = _FETCH_BATCH if count is None else min(_FETCH_BATCH, count - received)
                    for msg in puller.fetch(want, timeout=max(min(left(), 1.0), 0.05)):
                        received += 1
                        print_msg(out, received, msg, {"seq": msg.metadata.sequence_stream})
                        msg.ack()
                        bar.advance()
            else:
                subscription = client.subscribe_sync(subject, queue=queue)
                client.flush()
                out.status(f"listening on {subject}")
                while more():
                    try:
                        message = subscription.next_msg(timeout=max(min(left(), 1.0), 0.01))
                    except SyncTimeoutError:
                        continue
                    received += 1
                    print_msg(out, received, message, {})
                    bar.advance()
        except KeyboardInterrupt:
            interrupted = True  # Ctrl-C or SIGTERM: the usual way to stop listening
    if interrupted:
        return EXIT_OK if count is None else EXIT_INTERRUPTED
    if count is not None and received < count:
        assert wait is not None
        raise CommandFailed(
            f"received {format_count(received)} of {format_count(count)} messages "
            f"within {format_duration(wait)}",
            EXIT_TIMEOUT,
        )
    return EXIT_OK
