"""The keyword arguments of ``subscribe``, ``subscribe_sync`` and ``pull_subscribe``,
checked and turned into consumer configurations.

:class:`ConsumerChoices` gathers the keywords the three calls share; it refuses, for an
ordered consumer, the ones that mean nothing there, and :meth:`ConsumerChoices.checked`
turns the others into a :class:`ConsumerPlan`: the consumer to create and how the
subscription pulls from it.

Threading: values and functions used on the calling (subscribing) thread, never on the
event-loop thread; they raise :class:`ValueError` (or
:class:`~syncmsg.InvalidSubjectError`) for settings that cannot work, before anything
reaches the server.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from syncmsg._subjects import check_queue, check_subscribe_subject, check_token
from syncmsg.jetstream._models import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    Duration,
    PriorityPolicy,
    ReplayPolicy,
    check_group_name,
    to_nanos,
    to_seconds,
)
from syncmsg.jetstream._pull import PullGroup

__all__ = [
    "DEFAULT_ACK_WAIT",
    "DEFAULT_INACTIVE_THRESHOLD",
    "DEFAULT_MAX_ACK_PENDING",
    "DEFAULT_PREFETCH",
    "ConsumerChoices",
    "ConsumerPlan",
    "check_filters",
    "consumer_config",
    "priority_settings",
    "shared_durable",
    "start_position",
    "subscription_filters",
]

#: An ephemeral consumer (and each consumer of an ordered consumer's chain) is removed by
#: the server this long after nobody pulls from it: a fetch loop that pauses between
#: batches must not lose it, a process that died leaves nothing behind for long.
DEFAULT_INACTIVE_THRESHOLD = dt.timedelta(minutes=5)
#: How long (seconds) the server waits for a message's ack before it delivers it again.
DEFAULT_ACK_WAIT = 30.0
#: How many unacknowledged messages a consumer may have out, all its subscribers together.
DEFAULT_MAX_ACK_PENDING = 1000
#: How many messages a subscription holds (pulled, not yet settled) unless told; a
#: subscription with acks holds no more than its consumer's ``max_ack_pending``.
DEFAULT_PREFETCH = 256


def check_filters(subject: str | Sequence[str]) -> tuple[str, ...]:
    """The consumer filter subjects given as ``subject`` (one, or several)."""
    filters = (subject,) if isinstance(subject, str) else tuple(subject)
    if not filters:
        raise ValueError("give at least one subject")
    if len(set(filters)) != len(filters):
        raise ValueError("the subjects contain duplicates")
    return filters


def subscription_filters(subject: str | Sequence[str]) -> tuple[str, ...]:
    """The filter subjects of a subscription's consumer: ``subject``, one or several, each
    one a subject may subscribe to."""
    filters = check_filters(subject)
    for one in filters:
        check_subscribe_subject(one)
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


def shared_durable(durable: str | None, queue: str | None) -> str | None:
    """The durable consumer a subscription with ``queue`` shares: the one named after the
    queue, as nats.go's ``QueueSubscribe`` does when no durable is given.

    JetStream shares a pull consumer's messages between everyone pulling from it, so the
    queue group of a pull subscription *is* its durable consumer: every process that
    subscribes with ``queue="billing"`` pulls from the durable ``billing`` and each message
    goes to one of them. ``durable`` and ``queue`` may both be given only when they are the
    same name.
    """
    if queue is None:
        return durable
    if not check_queue(queue):
        raise ValueError("queue must be a non-empty name")
    check_token(queue, "queue (the name of the durable consumer its members share)")
    if durable is not None and durable != queue:
        raise ValueError(
            f"queue {queue!r} and durable {durable!r} would name two consumers: a JetStream "
            "queue group is the durable consumer its members share; give one of them (or "
            "the same name to both)"
        )
    return queue


#: The priority policies a subscription can pull with (``prioritized`` needs a priority
#: on each pull request, which syncmsg does not send yet: create such a consumer with
#: ``add_consumer`` and read it with the policy's own client).
_SUBSCRIPTION_POLICIES = (PriorityPolicy.OVERFLOW, PriorityPolicy.PINNED_CLIENT)


def priority_settings(
    *,
    group: str | None,
    priority_policy: PriorityPolicy | str | None,
    priority_groups: Sequence[str] | None,
    pinned_ttl: Duration | None,
    min_pending: int | None,
    min_ack_pending: int | None,
) -> tuple[dict[str, Any], PullGroup | None]:
    """The consumer fields of a subscription's priority groups (nats-server 2.11), and what
    its pull requests say about them; raises :class:`ValueError` for settings that cannot
    work.

    ``group`` is the group this subscription pulls as (default: the consumer's only group);
    ``priority_groups`` the consumer's groups (default: ``[group]``); ``priority_policy``
    ``"overflow"`` (then ``min_pending`` / ``min_ack_pending``: pull only when the backlog,
    or the unacknowledged messages, reach that many) or ``"pinned_client"`` (then
    ``pinned_ttl``: how long the pinned client may go without pulling before another takes
    over).
    """
    given = (priority_groups, pinned_ttl, min_pending, min_ack_pending)
    if priority_policy is None:
        if group is not None or any(value is not None for value in given):
            raise ValueError(
                "group, priority_groups, pinned_ttl, min_pending and min_ack_pending need a "
                "priority_policy ('overflow' or 'pinned_client')"
            )
        return {}, None
    policy = PriorityPolicy.of(priority_policy, "priority_policy")
    if policy not in _SUBSCRIPTION_POLICIES:
        raise ValueError(
            f"priority_policy {policy.value!r}: subscriptions pull with 'overflow' or "
            "'pinned_client'"
        )
    if isinstance(priority_groups, str):
        priority_groups = [priority_groups]
    groups = tuple(priority_groups) if priority_groups else ((group,) if group else ())
    if not groups:
        raise ValueError(f"priority_policy {policy.value!r} needs a group (group=...)")
    for name in groups:
        check_group_name(name)
    if len(set(groups)) != len(groups):
        raise ValueError("priority_groups contains duplicates")
    if group is None:
        if len(groups) > 1:
            raise ValueError(f"say which of the priority groups {list(groups)} to pull as: group=")
        group = groups[0]
    elif group not in groups:
        raise ValueError(f"group {group!r} is not one of the priority_groups {list(groups)}")
    fields: dict[str, Any] = {"priority_policy": policy, "priority_groups": groups}
    if pinned_ttl is not None:
        if policy is not PriorityPolicy.PINNED_CLIENT:
            raise ValueError("pinned_ttl is for priority_policy 'pinned_client'")
        if to_nanos(pinned_ttl) < 1_000_000_000:
            raise ValueError("pinned_ttl must be at least one second")
        fields["pinned_ttl"] = pinned_ttl
    for name, value in (("min_pending", min_pending), ("min_ack_pending", min_ack_pending)):
        if value is None:
            continue
        if policy is not PriorityPolicy.OVERFLOW:
            raise ValueError(f"{name} is for priority_policy 'overflow'")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer")
    pull = PullGroup(
        group,
        pinned=policy is PriorityPolicy.PINNED_CLIENT,
        min_pending=min_pending or 0,
        min_ack_pending=min_ack_pending or 0,
    )
    return fields, pull


#: The choices that mean nothing for an ordered consumer: it is ephemeral, acknowledges
#: nothing and belongs to no group.
_NOT_ORDERED = (
    "durable",
    "queue",
    "max_ack_pending",
    "ack_wait",
    "max_deliver",
    "backoff",
    "description",
    "group",
    "priority_policy",
    "priority_groups",
    "pinned_ttl",
    "min_pending",
    "min_ack_pending",
)


@dataclasses.dataclass(frozen=True)
class ConsumerChoices:
    """What a ``subscribe``, ``subscribe_sync`` or ``pull_subscribe`` call chose for its
    consumer: the keywords the three share, as given (``None``: the call's default).

    Nothing is checked when it is made: an ordered call checks it with
    :meth:`check_ordered` and reads :meth:`ordered_settings`, any other with
    :meth:`checked`, so that each call refuses bad input in the order it always has.
    """

    durable: str | None = None
    queue: str | None = None
    stream: str | None = None
    max_ack_pending: int | None = None
    ack_wait: Duration | None = None
    max_deliver: int | None = None
    backoff: Sequence[Duration] | None = None
    deliver_policy: DeliverPolicy | str | None = None
    opt_start_seq: int | None = None
    opt_start_time: dt.datetime | None = None
    headers_only: bool = False
    inactive_threshold: Duration | None = None
    prefetch: int | None = None
    description: str | None = None
    group: str | None = None
    priority_policy: PriorityPolicy | str | None = None
    priority_groups: Sequence[str] | None = None
    pinned_ttl: Duration | None = None
    min_pending: int | None = None
    min_ack_pending: int | None = None

    @classmethod
    def of(cls, keywords: Mapping[str, Any]) -> ConsumerChoices:
        """The choices among a call's ``keywords`` (its ``locals()`` before it binds
        anything else), picked by name; the call's other keywords are left out."""
        names = [field.name for field in dataclasses.fields(cls)]
        return cls(**{name: keywords[name] for name in names if name in keywords})

    def check_ordered(self, **others: Any) -> None:
        """Refuse the choices that mean nothing for an ordered consumer (it acknowledges
        nothing), and ``others``: the calling method's own (``manual_ack=``, ...)."""
        given = {name: getattr(self, name) for name in _NOT_ORDERED} | others
        wrong = sorted(name for name, value in given.items() if value not in (None, False))
        if wrong:
            raise ValueError(
                f"ordered consumers are ephemeral and acknowledge nothing: {', '.join(wrong)} "
                "cannot be used with ordered_consumer=True"
            )

    def ordered_settings(self) -> dict[str, Any]:
        """The settings of an ordered consumer's chain of consumers: where it starts,
        headers only, its inactive threshold, and how many messages it holds."""
        start = start_position(self.deliver_policy, self.opt_start_seq, self.opt_start_time)
        threshold = (
            DEFAULT_INACTIVE_THRESHOLD
            if self.inactive_threshold is None
            else self.inactive_threshold
        )
        if to_nanos(threshold) <= 0:
            raise ValueError("inactive_threshold must be positive")
        prefetch = DEFAULT_PREFETCH if self.prefetch is None else self.prefetch
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        return {
            "deliver_policy": start["deliver_policy"],
            "opt_start_seq": start.get("opt_start_seq"),
            "opt_start_time": start.get("opt_start_time"),
            "headers_only": self.headers_only,
            "inactive_threshold": dt.timedelta(microseconds=to_nanos(threshold) / 1_000),
            "replay_policy": ReplayPolicy.INSTANT,
            "prefetch": prefetch,
        }

    def checked(self) -> ConsumerPlan:
        """The plan of a consumer that acknowledges: the queue group, the durable it
        names (see :func:`shared_durable`), and the priority groups; raises for those
        that cannot work (the rest is checked as the consumer is configured)."""
        queue_group = check_queue(self.queue)
        durable = shared_durable(self.durable, self.queue)
        priority, pull_group = priority_settings(
            group=self.group,
            priority_policy=self.priority_policy,
            priority_groups=self.priority_groups,
            pinned_ttl=self.pinned_ttl,
            min_pending=self.min_pending,
            min_ack_pending=self.min_ack_pending,
        )
        return ConsumerPlan(self, durable, queue_group, priority, pull_group)


@dataclasses.dataclass(frozen=True)
class ConsumerPlan:
    """The consumer a (not ordered) subscription creates, or updates, and how it pulls:
    made by :meth:`ConsumerChoices.checked`."""

    choices: ConsumerChoices
    #: The durable consumer's name; None for an ephemeral consumer.
    durable: str | None
    #: The queue group (``""`` for none).
    queue_group: str
    #: The consumer fields of its priority groups (empty without a ``priority_policy``).
    priority: dict[str, Any]
    #: What its pull requests say about the group it pulls as (None without one).
    pull_group: PullGroup | None

    @property
    def ack_wait(self) -> Duration:
        return DEFAULT_ACK_WAIT if self.choices.ack_wait is None else self.choices.ack_wait

    @property
    def max_ack_pending(self) -> int:
        given = self.choices.max_ack_pending
        return DEFAULT_MAX_ACK_PENDING if given is None else given

    @property
    def backoff_seconds(self) -> tuple[float, ...]:
        return tuple(to_seconds(step) for step in self.choices.backoff or ())

    def prefetch(self) -> int:
        """How many messages a continuously pulling subscription holds: ``prefetch`` (by
        default :data:`DEFAULT_PREFETCH`), never more than ``max_ack_pending``."""
        prefetch = self.choices.prefetch or min(self.max_ack_pending, DEFAULT_PREFETCH)
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        return min(prefetch, self.max_ack_pending)

    def config(self, filters: tuple[str, ...], *, max_deliver: int) -> tuple[str, ConsumerConfig]:
        """The consumer's name (the durable's, or a new random one) and its configuration
        on ``filters``, with ``max_deliver`` (each call has its own default)."""
        if self.durable is not None:
            check_token(self.durable, "durable name")
        name = self.durable or secrets.token_hex(8)
        choices = self.choices
        config = consumer_config(
            name,
            filters,
            durable=self.durable is not None,
            ack_wait=self.ack_wait,
            max_deliver=max_deliver,
            max_ack_pending=self.max_ack_pending,
            backoff=choices.backoff,
            deliver_policy=choices.deliver_policy,
            opt_start_seq=choices.opt_start_seq,
            opt_start_time=choices.opt_start_time,
            headers_only=choices.headers_only,
            inactive_threshold=choices.inactive_threshold,
            description=choices.description,
            extra=self.priority,
        )
        return name, config
