"""Helpers shared by the JetStream tests (imported by module name: tests have no packages)."""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

from syncmsg.testing import wait_until

__all__ = ["read_stream", "unique", "wait_until"]

_names = itertools.count(1)


def unique(prefix: str) -> str:
    """A name no other test (or earlier run on a shared server) uses."""
    return f"{prefix}_{os.getpid()}_{next(_names)}_{time.monotonic_ns() % 1_000_000}"


def read_stream(js: Any, stream: str) -> list[Any]:
    """Every message stored in ``stream``, in order (through the direct get API)."""
    info = js.stream_info(stream)
    msgs = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        if info.state.messages == 0:
            break
        msgs.append((seq, js.get_msg(stream, seq)))
    return msgs
