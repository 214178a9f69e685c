"""Consumer operations of nats-server 2.11 and later: pause and resume, unpin, reset.

Threading: every method runs on the calling thread (any thread but the event loop's), as
one JetStream API request, after the server's API level says it has the feature (see
:mod:`syncmsg.jetstream._features`; the level is read once per connection).

:class:`ConsumerAdmin` is a base of :class:`~syncmsg.jetstream.JetStream`, as
:class:`~syncmsg.jetstream._streams.StreamManager` is.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from syncmsg._subjects import check_token
from syncmsg.jetstream._features import (
    CONSUMER_PAUSE,
    CONSUMER_RESET,
    PRIORITIZED_POLICY,
    PRIORITY_GROUPS,
    ApiLevel,
)
from syncmsg.jetstream._models import (
    ConsumerConfig,
    ConsumerPause,
    ConsumerReset,
    Duration,
    PriorityPolicy,
    check_group_name,
    format_time,
    to_nanos,
)

if TYPE_CHECKING:
    from syncmsg.jetstream._api import ApiClient

__all__ = ["ConsumerAdmin", "pause_deadline"]


def pause_deadline(until: dt.datetime | Duration, now: dt.datetime | None = None) -> dt.datetime:
    """The aware UTC time a pause ends: ``until`` itself (a naive datetime is UTC, as
    everywhere in syncmsg), or that long from now (seconds or a timedelta). Refuses a time
    that is not in the future."""
    now = now or dt.datetime.now(dt.timezone.utc)
    if isinstance(until, dt.datetime):
        stamp = until if until.tzinfo else until.replace(tzinfo=dt.timezone.utc)
    else:
        nanos = to_nanos(until)
        if nanos <= 0:
            raise ValueError(f"a pause must last more than zero, not {until!r}")
        stamp = now + dt.timedelta(microseconds=nanos / 1_000)
    if stamp <= now:
        raise ValueError(f"cannot pause until {stamp.isoformat()}: that is not in the future")
    return stamp.astimezone(dt.timezone.utc)


class ConsumerAdmin:
    """Pause, resume, unpin and reset consumers (a base of
    :class:`~syncmsg.jetstream.JetStream`)."""

    _api: ApiClient
    _levels: ApiLevel

    def api_level(self, *, timeout: float | None = None) -> int:
        """The server's JetStream API level (``account_info().api.level``): 1 for
        nats-server 2.11, 2 for 2.12, 4 for 2.14, 5 for 2.15; 0 before 2.11.

        Read once per connection and kept (a reconnect reads it again).
        """
        return self._levels.level(timeout)

    def pause_consumer(
        self,
        stream: str,
        name: str,
        until: dt.datetime | Duration,
        *,
        timeout: float | None = None,
    ) -> ConsumerPause:
        """Pause a consumer: it delivers nothing until ``until`` (a datetime; naive ones
        are UTC) or for that long (seconds or a timedelta), then resumes by itself.

        Pull requests wait while it is paused (they end at their expiry with nothing), and
        ``consumer_info()`` reports ``paused``, ``pause_remaining`` and ``pause_until``.
        Subscriptions keep their consumer paused: creating or updating a consumer never
        changes its pause. Needs nats-server 2.11 (else :class:`~syncmsg.NotSupportedError`);
        raises :class:`~syncmsg.ConsumerNotFoundError` when there is no such consumer and
        :class:`ValueError` for a time that is not in the future.
        """
        stamp = pause_deadline(until)
        return self._pause(stream, name, {"pause_until": format_time(stamp)}, timeout)

    def resume_consumer(
        self, stream: str, name: str, *, timeout: float | None = None
    ) -> ConsumerPause:
        """Resume a paused consumer now (nothing happens to one that is not paused)."""
        return self._pause(stream, name, None, timeout)

    def _pause(
        self, stream: str, name: str, body: dict[str, Any] | None, timeout: float | None
    ) -> ConsumerPause:
        check_token(stream, "stream name")
        check_token(name, "consumer name")
        self._levels.require(CONSUMER_PAUSE, timeout)
        data = self._api.request(f"CONSUMER.PAUSE.{stream}.{name}", body, timeout=timeout)
        return ConsumerPause.from_api(data)

    def unpin_consumer(
        self, stream: str, name: str, group: str, *, timeout: float | None = None
    ) -> None:
        """Unpin the client pinned in ``group`` of a ``pinned_client`` consumer: the next
        client that pulls from the group (without a pin id) is pinned instead.

        The client that was pinned hears of it on its next pull request (a 423 status),
        forgets its pin and pulls like the others. Raises
        :class:`~syncmsg.JetStreamError` (``ApiErrorCode.INVALID_PRIORITY_GROUP``) when the
        consumer has no such group.
        """
        check_token(stream, "stream name")
        check_token(name, "consumer name")
        check_group_name(group)
        self._levels.require(PRIORITY_GROUPS, timeout)
        self._api.request(
            f"CONSUMER.UNPIN.{stream}.{name}", {"group": group}, timeout=timeout, idempotent=False
        )

    def reset_consumer(
        self, stream: str, name: str, seq: int | None = None, *, timeout: float | None = None
    ) -> ConsumerReset:
        """Move a consumer back (or forward) in its stream: it delivers again from stream
        sequence ``seq``, or, without it, from just after its ack floor (every message not
        acknowledged yet is delivered again at once, without waiting for ``ack_wait``).

        Messages delivered and not acknowledged before the reset are forgotten by the
        consumer: their acks no longer count. A consumer with ``deliver_policy`` ``all``
        may go to any sequence, one that starts by sequence or by time not before its
        start; others only back to their ack floor (else :class:`~syncmsg.JetStreamError`,
        ``ApiErrorCode.CONSUMER_INVALID_RESET``). Returns the consumer's information and
        ``reset_seq``. Needs nats-server 2.14 (JetStream API level 4): on an older server
        it raises :class:`~syncmsg.NotSupportedError` before anything is sent.
        """
        check_token(stream, "stream name")
        check_token(name, "consumer name")
        if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or seq < 1):
            raise ValueError("seq must be a positive integer (or None: the ack floor)")
        self._levels.require(CONSUMER_RESET, timeout)
        # Each consumer answers its own resets: a missing one leaves the request unanswered
        # (a timeout). Asking for it first turns that into ConsumerNotFoundError at once.
        self._api.request(f"CONSUMER.INFO.{stream}.{name}", None, timeout=timeout)
        body = None if seq is None else {"seq": seq}
        data = self._api.request(
            f"CONSUMER.RESET.{stream}.{name}", body, timeout=timeout, idempotent=False
        )
        return ConsumerReset.from_api(data)

    def _check_consumer_features(self, config: ConsumerConfig, timeout: float | None) -> None:
        """Refuse a configuration the server would silently get wrong: an older server drops
        the fields it does not know (priority groups, a pause) and makes the consumer anyway."""
        policy = config.priority_policy
        if policy is PriorityPolicy.PRIORITIZED:
            self._levels.require(PRIORITIZED_POLICY, timeout)
        elif (
            policy not in (None, PriorityPolicy.NONE) or config.priority_groups or config.pinned_ttl
        ):
            self._levels.require(PRIORITY_GROUPS, timeout)
        if config.pause_until is not None:
            self._levels.require(CONSUMER_PAUSE, timeout)
