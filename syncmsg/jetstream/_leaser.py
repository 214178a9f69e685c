"""Leases: the messages a subscription holds, kept from redelivery while they are held.

Threading: the keeper thread ``syncmsg-js-<sid>-keeper`` runs :meth:`Leaser.extend` a few
times per lease period; the event-loop thread adds each message as it arrives; whichever
thread settles a message (ack, nak, term: a worker, or any thread holding it) or lets it go
drops it. The table is guarded by the leaser's own lock, and ``in_progress`` is sent
outside it.

A message held longer than ``lease_after`` (half of the consumer's ack wait, or of its
shortest backoff step), whether queued or in a handler, gets ``in_progress`` (``+WPI``),
which restarts the server's ack-wait timer; again every ``lease_after`` until it is
settled or released. A process that dies stops extending, and its messages come back after
the ack wait.
"""

from __future__ import annotations

import logging
import threading

from syncmsg._errors import SyncMsgError
from syncmsg.jetstream._message import JsMsg

__all__ = ["Leaser"]

log = logging.getLogger("syncmsg.jetstream")

#: The shortest lease period (seconds): a tiny ack wait must not make the keeper spin.
MIN_LEASE = 0.05


class _Lease:
    __slots__ = ("msg", "touched")

    def __init__(self, msg: JsMsg, now: float) -> None:
        self.msg = msg
        self.touched = now


class Leaser:
    """The held messages of one subscription, by their ack subject."""

    def __init__(self, ack_wait: float, backoff: tuple[float, ...] = ()) -> None:
        shortest = min((ack_wait, *backoff)) if backoff else ack_wait
        self.lease_after = max(shortest / 2.0, MIN_LEASE)
        self._lock = threading.Lock()
        self._leases: dict[str, _Lease] = {}

    def __len__(self) -> int:
        return len(self._leases)

    def add(self, msgs: list[JsMsg], now: float) -> None:
        """Lease the messages of a batch that just arrived (the loop thread)."""
        with self._lock:
            leases = self._leases
            for msg in msgs:
                leases[msg.reply] = _Lease(msg, now)

    def drop(self, msg: JsMsg) -> None:
        with self._lock:
            self._leases.pop(msg.reply, None)

    def extend(self, now: float) -> int:
        """Send ``in_progress`` for every message held for ``lease_after`` since it arrived
        or was last extended (the keeper thread); returns how many."""
        with self._lock:
            due = [
                lease for lease in self._leases.values() if now - lease.touched >= self.lease_after
            ]
            for lease in due:
                lease.touched = now
        for lease in due:
            try:
                lease.msg.in_progress()
            except SyncMsgError as exc:
                log.debug("syncmsg: in_progress failed: %s", exc)
        return len(due)
