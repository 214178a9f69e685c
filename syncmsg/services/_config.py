"""What a service and its endpoints are made of, checked when they are declared.

Threading: immutable values, built and read on any thread.

Everything is checked here, before anything reaches the wire: names as the ADR allows
(``A-Z a-z 0-9 - _``), the version as semantic versioning, subjects and queue groups as
the core checks them, metadata as strings. A problem raises
:class:`~syncmsg.ConfigurationError` (or :class:`~syncmsg.InvalidSubjectError` for a
subject) at once, naming the field.

Queue groups: ``None`` on an endpoint or a group means "the enclosing one's"; the
service's default is ``"q"`` (:data:`~syncmsg.services.DEFAULT_QUEUE_GROUP`), so that the
instances of a service share its requests. ``""`` on an endpoint or a group, or ``None``
or ``""`` on the service, subscribes without a queue group: every instance then gets every
request (the ADR's "no queue group" option).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from syncmsg._errors import ConfigurationError
from syncmsg._subjects import check_queue, check_subscribe_subject, check_subscription
from syncmsg.services._models import DEFAULT_QUEUE_GROUP, NAME_PATTERN, SEMVER_PATTERN

if TYPE_CHECKING:
    from syncmsg.services._endpoint import Endpoint
    from syncmsg.services._request import Request

__all__ = [
    "REQUEST_SCHEMA",
    "RESPONSE_SCHEMA",
    "EndpointConfig",
    "Handler",
    "ServiceConfig",
    "StatsHandler",
    "group_prefix",
]

#: ``handler(request)``: its return value is the reply (see :class:`~syncmsg.services.Request`).
Handler = Callable[["Request"], Any]
#: ``stats_handler(endpoint)``: JSON-serialisable data for the endpoint's ``data`` stats field.
StatsHandler = Callable[["Endpoint"], Any]

#: Endpoint metadata keys under which the JSON schemas of the endpoint's pydantic request
#: and response models are published in ``$SRV.INFO`` (metadata values are strings).
REQUEST_SCHEMA = "request_schema"
RESPONSE_SCHEMA = "response_schema"


def _check_name(value: object, what: str) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise ConfigurationError(
            f"{what} {value!r} is not valid: use letters, digits, '-' and '_' only"
        )
    return value


def _frozen_metadata(value: Mapping[str, str] | None, what: str) -> Mapping[str, str]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{what} metadata must be a dict of str to str")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise ConfigurationError(
                f"{what} metadata must map str to str; {key!r}: {item!r} is not"
            )
    return MappingProxyType(dict(value))


def _check_queue_group(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"{what} queue_group must be a str or None, not {value!r}")
    return check_queue(value)


def _check_model(model: object, what: str) -> type[BaseModel] | None:
    if model is None:
        return None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ConfigurationError(f"{what} must be a pydantic model class, not {model!r}")
    return model


def group_prefix(name: object, parent: str = "") -> str:
    """A group's subject prefix, ``parent.name``; a group name may hold several tokens
    (``"billing.v1"``) and ``*``, but not ``>``: it comes before every endpoint's subject."""
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"group name must be a non-empty str, not {name!r}")
    prefix = f"{parent}.{name}" if parent else name
    check_subscribe_subject(prefix)
    if ">" in prefix.split("."):
        raise ConfigurationError(f"group name {name!r} must not contain '>'")
    return prefix


@dataclasses.dataclass(frozen=True)
class ServiceConfig:
    """A service: its identity (``name``, ``version``, ``description``, ``metadata``),
    the default queue group of its endpoints, and the worker threads of each endpoint."""

    name: str
    version: str
    description: str = ""
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)
    queue_group: str | None = DEFAULT_QUEUE_GROUP
    workers: int = 8
    stats_handler: StatsHandler | None = None

    def __post_init__(self) -> None:
        _check_name(self.name, "service name")
        if not isinstance(self.version, str) or not SEMVER_PATTERN.fullmatch(self.version):
            raise ConfigurationError(
                f"service version {self.version!r} is not a semantic version (e.g. 1.2.0)"
            )
        description = "" if self.description is None else self.description
        if not isinstance(description, str):
            raise ConfigurationError("service description must be a str")
        object.__setattr__(self, "description", description)
        object.__setattr__(self, "metadata", _frozen_metadata(self.metadata, "service"))
        object.__setattr__(
            self, "queue_group", _check_queue_group(self.queue_group, "service") or None
        )
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ConfigurationError(f"workers must be a whole number >= 1, not {self.workers!r}")
        if self.stats_handler is not None and not callable(self.stats_handler):
            raise ConfigurationError("stats_handler must be callable")


@dataclasses.dataclass(frozen=True)
class EndpointConfig:
    """An endpoint: ``handler`` answers requests on ``subject`` (default: ``name``).

    With ``request_model``, a request whose payload does not validate gets a 400 error
    reply before the handler runs, and :meth:`Request.parse` returns the validated model.
    With ``response_model``, the handler's return value is validated (a dict, or an
    instance) and sent as that model's JSON. Both models' JSON schemas are published in
    the endpoint's metadata (``request_schema``, ``response_schema``).
    """

    name: str
    handler: Handler
    subject: str | None = None
    queue_group: str | None = None
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)
    request_model: type[BaseModel] | None = None
    response_model: type[BaseModel] | None = None

    def __post_init__(self) -> None:
        _check_name(self.name, "endpoint name")
        if not callable(self.handler):
            raise ConfigurationError(f"the handler of endpoint {self.name!r} must be callable")
        subject = self.name if self.subject is None else self.subject
        check_subscribe_subject(subject)
        object.__setattr__(self, "subject", subject)
        queue_group = _check_queue_group(self.queue_group, f"endpoint {self.name!r}")
        object.__setattr__(self, "queue_group", queue_group)
        check_subscription(subject, queue_group)
        _check_model(self.request_model, f"request_model of endpoint {self.name!r}")
        _check_model(self.response_model, f"response_model of endpoint {self.name!r}")
        metadata = dict(_frozen_metadata(self.metadata, f"endpoint {self.name!r}"))
        for key, model in (
            (REQUEST_SCHEMA, self.request_model),
            (RESPONSE_SCHEMA, self.response_model),
        ):
            if model is not None:
                schema = model.model_json_schema()
                metadata.setdefault(key, json.dumps(schema, separators=(",", ":")))
        object.__setattr__(self, "metadata", MappingProxyType(metadata))

    def in_group(self, prefix: str, queue_group: str | None) -> EndpointConfig:
        """This endpoint inside a group: subject ``prefix.subject``, and the group's queue
        group unless the endpoint names its own."""
        return dataclasses.replace(
            self,
            subject=f"{prefix}.{self.subject}",
            queue_group=queue_group if self.queue_group is None else self.queue_group,
            metadata=dict(self.metadata),
        )

    def resolved_queue_group(self, service_queue_group: str | None) -> str:
        """The queue group to subscribe in (``""`` for none)."""
        if self.queue_group is not None:
            return self.queue_group
        return service_queue_group or ""
