"""A consumer process for test_js_durability: records each delivery and each confirmed ack.

Usage: python js_consumer_child.py URL STREAM DURABLE OUT_FILE RUN_ID
Lines appended to OUT_FILE: ``got <run> <seq> <delivery>`` and ``acked <run> <seq>``.
Runs until killed.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import syncmsg


def main() -> None:
    url, stream, durable, out_file, run_id = sys.argv[1:6]
    fd = os.open(out_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def record(line: str) -> None:
        os.write(fd, (line + "\n").encode())  # one write per line: whole lines survive a kill

    def handle(msg: syncmsg.Msg) -> None:
        meta = msg.metadata
        record(f"got {run_id} {meta.sequence_stream} {meta.num_delivered}")
        time.sleep(0.01)  # some work, so that the kill lands mid-way
        msg.ack_sync(timeout=5)
        record(f"acked {run_id} {meta.sequence_stream}")

    client = syncmsg.connect(url, timeout=5)
    client.jetstream().subscribe(
        f"{stream}.>",
        handle,
        durable=durable,
        stream=stream,
        manual_ack=True,
        workers=2,
        ack_wait=2.0,
        prefetch=20,
    )
    print("ready", flush=True)
    threading.Event().wait(120)  # until killed (or two minutes, as a safety net)


if __name__ == "__main__":
    main()
