"""Finding services: ``$SRV.PING|INFO|STATS`` asked once, every instance's answer collected.

Threading: :func:`ping`, :func:`info` and :func:`stats` run on the caller's thread (any
thread but the event loop's). Each subscribes to a fresh inbox (a ``subscribe_sync``
subscription, read by the caller), publishes one request with that inbox as its reply
subject, and reads answers until the timeout, so that every instance of every service can
answer. They return at once when the server says nobody listens (a no-responders status),
and after the first answer when one instance is asked for by ``service_id``.

They speak ADR-32, so they find services of any implementation (nats.go, nats-py
``nats.micro``, nats.js, nats.java), as ``nats micro ls|info|stats`` does.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, TypeVar

from pydantic import ValidationError

from syncmsg._deadline import Deadline, check_timeout
from syncmsg._errors import ConfigurationError, TimeoutError
from syncmsg.services._models import (
    NAME_PATTERN,
    ServiceInfo,
    ServicePing,
    ServiceStats,
    _Wire,
    control_subject,
)

if TYPE_CHECKING:
    from syncmsg._client import Client

__all__ = ["DEFAULT_DISCOVERY_TIMEOUT", "info", "ping", "stats"]

log = logging.getLogger("syncmsg.services")

#: How long discovery waits for answers by default, in seconds: every instance answers
#: within a round trip, but one cannot know how many there are.
DEFAULT_DISCOVERY_TIMEOUT = 1.0

ResponseT = TypeVar("ResponseT", bound=_Wire)


def ping(
    client: Client,
    name: str | None = None,
    *,
    service_id: str | None = None,
    timeout: float = DEFAULT_DISCOVERY_TIMEOUT,
) -> list[ServicePing]:
    """Every service instance that answers ``$SRV.PING`` (of service ``name``, and of the
    instance ``service_id``) within ``timeout`` seconds, in the order they answered."""
    return _collect(client, "PING", name, service_id, timeout, ServicePing)


def info(
    client: Client,
    name: str | None = None,
    *,
    service_id: str | None = None,
    timeout: float = DEFAULT_DISCOVERY_TIMEOUT,
) -> list[ServiceInfo]:
    """Every instance's ``$SRV.INFO`` answer: description and endpoints (see :func:`ping`)."""
    return _collect(client, "INFO", name, service_id, timeout, ServiceInfo)


def stats(
    client: Client,
    name: str | None = None,
    *,
    service_id: str | None = None,
    timeout: float = DEFAULT_DISCOVERY_TIMEOUT,
) -> list[ServiceStats]:
    """Every instance's ``$SRV.STATS`` answer: each endpoint's counters (see :func:`ping`)."""
    return _collect(client, "STATS", name, service_id, timeout, ServiceStats)


def _collect(
    client: Client,
    verb: str,
    name: str | None,
    service_id: str | None,
    timeout: float,
    model: type[ResponseT],
) -> list[ResponseT]:
    if name is not None and (not isinstance(name, str) or not NAME_PATTERN.fullmatch(name)):
        raise ConfigurationError(f"service name {name!r} is not valid")
    if service_id is not None:
        if name is None:
            raise ConfigurationError("service_id needs the service's name too")
        if not isinstance(service_id, str) or not NAME_PATTERN.fullmatch(service_id):
            raise ConfigurationError(f"service id {service_id!r} is not valid")
    deadline = Deadline(check_timeout(timeout, DEFAULT_DISCOVERY_TIMEOUT))
    subject = control_subject(verb, name, service_id)
    answers: list[ResponseT] = []
    inbox = client.new_inbox()
    with client.subscribe_sync(inbox, timeout=max(deadline.left(), 0.001)) as sub:
        client.publish(subject, b"", reply=inbox)
        while not deadline.expired:
            try:
                msg = sub.next_msg(timeout=max(deadline.left(), 0.001))
            except TimeoutError:
                break
            headers = msg.headers or {}
            if headers.get("Status") == "503" and not msg.data:
                break  # no responders: nobody listens, no answer will come
            try:
                answers.append(model.model_validate_json(msg.data))
            except ValidationError as exc:
                log.warning("syncmsg: ignored an answer on %s that is not ADR-32: %s", subject, exc)
                continue
            if service_id is not None:
                break
    return answers
