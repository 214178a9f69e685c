"""``syncmsg pub``: publish to core NATS, or to JetStream with ``--js``.

Threading: runs on the main thread.
"""

from __future__ import annotations

import time

import click

from syncmsg.cli._app import app, examples, output, settings
from syncmsg.cli._connect import connected
from syncmsg.cli._exit import EXIT_OK, EXIT_USAGE, CommandFailed
from syncmsg.cli._messages import HEADER_OPTION, parse_headers, read_data
from syncmsg.cli._units import COUNT, format_count, format_duration

__all__ = ["pub"]


@app.command(
    "pub",
    short_help="Publish a message (core NATS, or JetStream with --js).",
    epilog=examples(
        "syncmsg pub orders.created '{\"id\": 1}'",
        "syncmsg pub orders.created 'order {n}' --count 10k     # {n}: 1..10000",
        "syncmsg pub orders.created '{\"id\": 1}' --js --msg-id order-1",
        "echo hello | syncmsg pub greet.joe - -H 'Trace: abc'",
    ),
)
@click.argument("subject")
@click.argument("data", required=False)
@HEADER_OPTION
@click.option(
    "--count", type=COUNT, default=1, show_default=True, help="Publish N messages (10k, 1M)."
)
@click.option("--js", is_flag=True, help="Store in JetStream and wait for the acks.")
@click.option(
    "--msg-id", metavar="ID", help="Nats-Msg-Id for exactly-once (with --js; {n} allowed)."
)
def pub(
    subject: str,
    data: str | None,
    headers: tuple[str, ...],
    count: int,
    js: bool,
    msg_id: str | None,
) -> int:
    """Publish DATA to SUBJECT.

    DATA is sent as UTF-8 text; '-' reads the payload (any bytes) from stdin. With --count,
    {n} in DATA and in --msg-id becomes the message number, 1 to N.

    Core NATS (the default) returns once the server has every message (a flush). With --js
    the messages are stored in the stream that captures SUBJECT and each ack is awaited
    (pipelined with --count); publishing a --msg-id again within the stream's duplicate
    window stores nothing and reports a duplicate.
    """
    out = output()
    header_map = parse_headers(headers)
    template = read_data(data)
    if msg_id and not js:
        raise CommandFailed("--msg-id needs --js (message ids are a JetStream feature)", EXIT_USAGE)
    if count > 1 and msg_id and "{n}" not in msg_id:
        raise CommandFailed("with --count, --msg-id must contain {n}", EXIT_USAGE)

    def body(n: int) -> bytes:
        return template.replace(b"{n}", str(n).encode()) if count > 1 else template

    def message_id(n: int) -> str | None:
        if not msg_id:
            return None
        return msg_id.replace("{n}", str(n)) if count > 1 else msg_id

    started = time.monotonic()
    with connected(settings()) as client:
        if not js:
            with out.progress(f"publishing to {subject}", count, enabled=count > 1) as bar:
                for n in range(1, count + 1):
                    client.publish(subject, body(n), headers=header_map)
                    bar.advance()
                client.flush()
            elapsed = time.monotonic() - started
            out.emit(
                {"subject": subject, "published": count, "seconds": round(elapsed, 4)},
                f"published {format_count(count)} message{'s' if count != 1 else ''} to "
                f"{subject}" + (f" in {format_duration(elapsed)}" if count > 1 else ""),
            )
            return EXIT_OK
        jetstream = client.jetstream()
        if count == 1:
            ack = jetstream.publish(subject, body(1), msg_id=message_id(1), headers=header_map)
            out.emit(
                {
                    "subject": subject,
                    "stream": ack.stream,
                    "seq": ack.seq,
                    "duplicate": ack.duplicate,
                },
                f"stored in {ack.stream} as #{ack.seq}" + (" (duplicate)" if ack.duplicate else ""),
            )
            return EXIT_OK
        futures = []
        with out.progress(f"storing in JetStream ({subject})", total=count) as bar:
            for n in range(1, count + 1):
                futures.append(
                    jetstream.publish_async(
                        subject, body(n), msg_id=message_id(n), headers=header_map
                    )
                )
                bar.advance()
            jetstream.flush(max(client.config.timeout, 60.0))
        acks = [future.result() for future in futures]
    elapsed = time.monotonic() - started
    duplicates = sum(1 for ack in acks if ack.duplicate)
    first, last = min(a.seq for a in acks), max(a.seq for a in acks)
    out.emit(
        {
            "subject": subject,
            "published": len(acks),
            "stream": acks[-1].stream,
            "first_seq": first,
            "last_seq": last,
            "duplicates": duplicates,
            "seconds": round(elapsed, 4),
        },
        f"stored {format_count(len(acks))} messages in {acks[-1].stream} (#{first}..#{last}"
        + (f", {format_count(duplicates)} duplicates" if duplicates else "")
        + f") in {format_duration(elapsed)}",
    )
    return EXIT_OK
