"""Shared types: callback signatures, and the small protocols that keep the core acyclic.

Threading: types only.

The core's pieces meet through these protocols rather than through each other's classes:
a :class:`~syncmsg.Msg` answers through a :class:`Responder`; a subscription talks to the
client through a :class:`SubscriptionHost`. Layers built on the core (JetStream, key-value,
services) use the same public surface, never the core's private members.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from syncmsg._codec import Data, Headers

if TYPE_CHECKING:
    from syncmsg._config import Config
    from syncmsg._connection import Connection
    from syncmsg._hooks import Hooks
    from syncmsg._msg import Msg
    from syncmsg._subscription import SubscriptionRegistry

__all__ = [
    "Data",
    "ErrorCallback",
    "Headers",
    "Responder",
    "StatusCallback",
    "SubscriptionHost",
]

#: ``error_callback(error, msg)``: ``msg`` is the message being handled, or None.
ErrorCallback = Callable[[BaseException, "Msg | None"], None]
#: ``disconnected_callback()``, ``reconnected_callback()``, ``closed_callback()``.
StatusCallback = Callable[[], Any]


class Responder(Protocol):
    """What a received message needs to answer: the client's publish and request."""

    def publish(
        self,
        subject: str,
        data: Data = b"",
        *,
        headers: Headers | None = None,
        reply: str | None = None,
    ) -> None: ...

    def request(
        self,
        subject: str,
        data: Data = b"",
        *,
        headers: Headers | None = None,
        timeout: float | None = None,
    ) -> Msg: ...


class SubscriptionHost(Responder, Protocol):
    """What a subscription needs of its client: all of it public API."""

    @property
    def config(self) -> Config: ...

    @property
    def hooks(self) -> Hooks: ...

    @property
    def subscriptions(self) -> SubscriptionRegistry: ...

    @property
    def reconnects(self) -> int: ...

    def connection(self, timeout: float | None = None) -> Connection: ...
