"""Counters (nats-server 2.12, ADR-49): every subject of a counter stream is a number.

Threading: pure functions, used on the caller's thread by ``js.increment`` and
``js.counter_value``.

A stream made with ``allow_msg_counter`` stores, for each increment (an empty message
with a ``Nats-Incr: +5`` header), a message whose payload is the subject's new total,
``{"val": "123"}``: a big integer written as a string, since a JSON number loses
precision in JavaScript beyond 2**53. The publish ack carries that total too (``val``).
The server adds up in arbitrary precision; so does Python's ``int``.
"""

from __future__ import annotations

import json

from syncmsg._errors import JetStreamError
from syncmsg.jetstream._models import RawStreamMsg

__all__ = ["INCREMENT", "counter_of", "increment_header"]

INCREMENT = "Nats-Incr"


def increment_header(by: int) -> str:
    """The ``Nats-Incr`` value for adding ``by`` (negative subtracts): ``+5``, ``-2``."""
    if isinstance(by, bool) or not isinstance(by, int):
        raise TypeError(f"a counter is incremented by an int, not {type(by).__name__}")
    return f"{by:+d}"


def counter_of(msg: RawStreamMsg) -> int:
    """The counter value stored in ``msg`` (the last message of a counter's subject)."""
    try:
        value = json.loads(msg.data)["val"]
        return int(value)
    except (ValueError, KeyError, TypeError):
        raise JetStreamError(
            f"the last message on {msg.subject!r} (stream {msg.stream!r}, seq {msg.seq}) is not "
            f"a counter value: {msg.data[:100]!r}",
            stream=msg.stream,
        ) from None
