"""The keyword arguments of ``subscribe``, ``subscribe_sync`` and ``pull_subscribe``,
checked and turned into consumer configurations.

Threading: pure functions, run on the subscribing thread; they raise :class:`ValueError`
for settings that cannot work, before anything reaches the server.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from syncmsg.jetstream._models import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    Duration,
    ReplayPolicy,
    to_nanos,
)

__all__ = [
    "DEFAULT_INACTIVE_THRESHOLD",
    "check_filters",
    "consumer_config",
    "ordered_only",
    "start_position",
]

#: An ephemeral consumer (and each consumer of an ordered consumer's chain) is removed by
#: the server this long after nobody pulls from it: a fetch loop that pauses between
#: batches must not lose it, a process that died leaves nothing behind for long.
DEFAULT_INACTIVE_THRESHOLD = dt.timedelta(minutes=5)


def check_filters(subject: str | Sequence[str]) -> tuple[str, ...]:
    """The consumer filter subjects given as ``subject`` (one, or several)."""
    filters = (subject,) if isinstance(subject, str) else tuple(subject)
    if not filters:
        raise ValueError("give at least one subject")
    if len(set(filters)) != len(filters):
        raise ValueError("the subjects contain duplicates")
    return filters


def consumer_config(
    name: str,
    subject: str | Sequence[str] | None,
    *,
    durable: bool = True,
    ack_wait: Duration,
    max_deliver: int,
    max_ack_pending: int,
    backoff: Sequence[Duration] | None,
    deliver_policy: DeliverPolicy | str | None,
    opt_start_seq: int | None = None,
    opt_start_time: dt.datetime | None = None,
    headers_only: bool = False,
    inactive_threshold: Duration | None = None,
    description: str | None = None,
    extra: dict[str, Any] | None = None,
) -> ConsumerConfig:
    """The configuration of a pull consumer with explicit acks (durable, or ephemeral with
    an inactive threshold); raises :class:`ValueError` for settings that cannot work."""
    if max_ack_pending < 1:
        raise ValueError("max_ack_pending must be at least 1")
    if max_deliver == 0 or max_deliver < -1:
        raise ValueError("max_deliver must be positive, or -1 for no limit")
    if to_nanos(ack_wait) <= 0:
        raise ValueError("ack_wait must be positive")
    fields: dict[str, Any] = {
        "ack_policy": AckPolicy.EXPLICIT,
        "replay_policy": ReplayPolicy.INSTANT,
        "ack_wait": ack_wait,
        "max_deliver": max_deliver,
        "max_ack_pending": max_ack_pending,
        **start_position(deliver_policy, opt_start_seq, opt_start_time),
    }
    if durable:
        fields["durable_name"] = name
    else:
        fields["name"] = name
        fields["inactive_threshold"] = (
            DEFAULT_INACTIVE_THRESHOLD if inactive_threshold is None else inactive_threshold
        )
    if durable and inactive_threshold is not None:
        fields["inactive_threshold"] = inactive_threshold
    if backoff:
        steps = [to_nanos(b) for b in backoff]
        if any(s <= 0 for s in steps):
            raise ValueError("backoff durations must be positive")
        if max_deliver != -1 and max_deliver <= len(steps):
            raise ValueError("max_deliver must be larger than the number of backoff steps")
        fields["backoff"] = tuple(backoff)
    filters = () if subject is None else check_filters(subject)
    if len(filters) == 1:
        fields["filter_subject"] = filters[0]
    elif filters:
        fields["filter_subjects"] = filters
    if headers_only:
        fields["headers_only"] = True
    if description:
        fields["description"] = description
    fields.update(extra or {})
    return ConsumerConfig(**fields)


def start_position(
    policy: DeliverPolicy | str | None,
    opt_start_seq: int | None,
    opt_start_time: dt.datetime | None,
) -> dict[str, Any]:
    """Where a consumer starts: the policy (inferred from a start sequence or time when not
    given) and its argument."""
    if policy is None:
        if opt_start_seq is not None:
            policy = DeliverPolicy.BY_START_SEQUENCE
        elif opt_start_time is not None:
            policy = DeliverPolicy.BY_START_TIME
        else:
            policy = DeliverPolicy.ALL
    policy = DeliverPolicy.of(policy, "deliver_policy")
    fields: dict[str, Any] = {"deliver_policy": policy}
    if policy is DeliverPolicy.BY_START_SEQUENCE:
        if opt_start_seq is None or isinstance(opt_start_seq, bool) or opt_start_seq < 1:
            raise ValueError("deliver_policy by_start_sequence needs opt_start_seq >= 1")
        fields["opt_start_seq"] = opt_start_seq
    elif opt_start_seq is not None:
        raise ValueError(
            f"opt_start_seq needs deliver_policy by_start_sequence, not {policy.value}"
        )
    if policy is DeliverPolicy.BY_START_TIME:
        if not isinstance(opt_start_time, dt.datetime):
            raise ValueError("deliver_policy by_start_time needs opt_start_time (a datetime)")
        fields["opt_start_time"] = opt_start_time
    elif opt_start_time is not None:
        raise ValueError(f"opt_start_time needs deliver_policy by_start_time, not {policy.value}")
    return fields


def ordered_only(**given: Any) -> None:
    """Refuse options that mean nothing for an ordered consumer (it acks nothing)."""
    wrong = sorted(name for name, value in given.items() if value not in (None, False))
    if wrong:
        raise ValueError(
            f"ordered consumers are ephemeral and acknowledge nothing: {', '.join(wrong)} "
            "cannot be used with ordered_consumer=True"
        )
