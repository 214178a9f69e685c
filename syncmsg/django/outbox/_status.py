"""How far behind the outbox is: for the health view, the admin and monitoring.

Threading: runs on the caller's thread (a request thread) and its database connection;
two indexed queries on the pending rows, nothing on NATS.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from syncmsg.django import conf

__all__ = ["Backlog", "backlog"]


@dataclasses.dataclass(frozen=True)
class Backlog:
    """The pending rows: how many, and how old the oldest is (seconds; None if none)."""

    pending: int
    oldest_age: float | None
    failing: int  # pending rows whose last attempt failed (see their last_error)

    def over(self, options: conf.OutboxOptions) -> str | None:
        """Why this backlog is over the health thresholds of ``options``, or None."""
        limit = options.health_max_backlog
        if limit is not None and self.pending > limit:
            return f"outbox backlog {self.pending} > health_max_backlog {limit}"
        age = options.health_max_age
        if age is not None and self.oldest_age is not None and self.oldest_age > age:
            return f"oldest outbox row is {self.oldest_age:.1f}s old > health_max_age {age:g}s"
        return None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def backlog(using: str | None = None) -> Backlog:
    """The outbox's pending rows in database ``using`` (default ``SYNCMSG["outbox"]
    ["database"]``, else ``"default"``)."""
    from django.utils import timezone

    from syncmsg.django.outbox._models import OutboxMessage

    options = conf.options().outbox
    alias = using or (options.database if options is not None else "default")
    pending = OutboxMessage.objects.using(alias).filter(published__isnull=True)
    count = pending.count()
    oldest = None
    failing = 0
    if count:
        first = pending.order_by("id").values_list("created", flat=True).first()
        if first is not None:
            oldest = max((timezone.now() - first).total_seconds(), 0.0)
        failing = pending.filter(attempts__gt=0).count()
    return Backlog(pending=count, oldest_age=oldest, failing=failing)
