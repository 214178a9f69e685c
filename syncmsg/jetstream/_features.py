"""Which JetStream features the server has, told by its JetStream API level.

Threading: :class:`ApiLevel` is used from any thread but the event loop's (its one
request goes through the client's request path); the rest are values and pure functions.

nats-server reports an API level (``$JS.API.INFO``: ``api.level``, read as
``js.account_info().api.level``) that grows with the features it speaks: 1 for 2.11, 2 for
2.12.0 to 2.12.4, 3 from 2.12.5, 4 for 2.14, 5 for 2.15; servers before 2.11 report none
(0). A feature this client sends explicitly is checked against that level before anything
about it reaches the wire, so that an older server gives a clear
:class:`~syncmsg.NotSupportedError` instead of a confusing answer: a 2.10 server answers a
pause request with "bad request", ignores priority-group fields of a consumer and the
headers of an atomic batch (storing each message on its own), and has nobody listening
for a consumer reset.

The level is read once per connection (a reconnect may land on another server of a
cluster in the middle of a rolling upgrade) and kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from syncmsg._errors import NotSupportedError

__all__ = [
    "ATOMIC_PUBLISH",
    "CONSUMER_PAUSE",
    "CONSUMER_RESET",
    "MESSAGE_COUNTERS",
    "PRIORITIZED_POLICY",
    "PRIORITY_GROUPS",
    "ApiLevel",
    "Feature",
    "require_api_level",
]


@dataclasses.dataclass(frozen=True)
class Feature:
    """A JetStream feature, the API level that brought it and the server version."""

    name: str
    level: int
    server: str


#: Levels from nats-server's ``server/jetstream_versioning.go`` and the ADRs.
CONSUMER_PAUSE = Feature("consumer pause and resume", 1, "2.11")
PRIORITY_GROUPS = Feature("priority groups (overflow, pinned client)", 1, "2.11")
PRIORITIZED_POLICY = Feature("the prioritized priority policy", 2, "2.12")
MESSAGE_COUNTERS = Feature("message counters", 2, "2.12")
ATOMIC_PUBLISH = Feature("atomic batch publishing", 2, "2.12")
#: ``$JS.API.CONSUMER.RESET``: added in nats-server 2.14.0, whose API level is 4 (level 3,
#: from 2.12.5, has no reset).
CONSUMER_RESET = Feature("consumer reset", 4, "2.14")


def require_api_level(feature: Feature, server_level: int) -> None:
    """Raise :class:`~syncmsg.NotSupportedError` unless a server of ``server_level`` has
    ``feature``."""
    if server_level >= feature.level:
        return
    raise NotSupportedError(
        f"{feature.name} needs nats-server {feature.server} or later (JetStream API level "
        f"{feature.level}); this server reports API level {server_level}",
        feature=feature.name,
        required_level=feature.level,
        server_level=server_level,
    )


class ApiLevel:
    """The server's API level, read with ``read()`` (a ``$JS.API.INFO`` request) once per
    connection: ``reconnects()`` tells when it changed."""

    def __init__(self, read: Callable[[float | None], int], reconnects: Callable[[], int]) -> None:
        self._read = read
        self._reconnects = reconnects
        # (reconnects, level), replaced whole: two threads racing read the level twice.
        self._known: tuple[int, int] | None = None

    def level(self, timeout: float | None = None) -> int:
        """The level of the server this connection talks to (read once, then kept)."""
        reconnects = self._reconnects()
        known = self._known
        if known is not None and known[0] == reconnects:
            return known[1]
        level = self._read(timeout)
        self._known = (reconnects, level)
        return level

    def require(self, feature: Feature, timeout: float | None = None) -> None:
        """Raise :class:`~syncmsg.NotSupportedError` when the server lacks ``feature``."""
        require_api_level(feature, self.level(timeout))
