"""A member of a pinned_client priority group for test_js_priority: it records each message.

Usage: python js_pinned_child.py URL STREAM DURABLE GROUP OUT_FILE
Lines appended to OUT_FILE: ``got <stream seq>`` once the message is acked. Runs until
killed (or two minutes, as a safety net).
"""

from __future__ import annotations

import os
import sys
import threading

import syncmsg


def main() -> None:
    url, stream, durable, group, out_file = sys.argv[1:6]
    fd = os.open(out_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def handle(msg: syncmsg.Msg) -> None:
        msg.ack_sync(timeout=5)
        os.write(fd, f"got {msg.metadata.sequence_stream}\n".encode())  # whole lines

    client = syncmsg.connect(url, timeout=5)
    client.jetstream().subscribe(
        f"{stream}.>",
        handle,
        durable=durable,
        stream=stream,
        manual_ack=True,
        priority_policy="pinned_client",
        group=group,
        pinned_ttl=2,
        ack_wait=3,
    )
    print("ready", flush=True)
    threading.Event().wait(120)


if __name__ == "__main__":
    main()
