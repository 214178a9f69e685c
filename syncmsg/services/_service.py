"""A running service: its endpoints, its groups, and the answers to discovery requests.

Threading: :func:`add_service` and every public method run on the caller's thread (any
thread but the event loop's). Each endpoint's handler runs on that endpoint's worker
threads (:mod:`syncmsg.services._endpoint`). Discovery requests (``$SRV.PING|INFO|STATS``,
with the service's name, and with its name and id) are answered by
:meth:`Service._answer` on the worker thread of one of three subscriptions
(``syncmsg-sub-<sid>-0``), never on the loop: ``$SRV.*``, ``$SRV.*.<name>`` and
``$SRV.*.<name>.<id>``, whose first wildcard is the verb (an unknown verb is not
answered, as by a service that has no subscription for it).

:meth:`Service.stop` drains every subscription at once, one helper thread each
(``syncmsg-svc-<name>-stop-<i>``), under one deadline: the server stops sending, the
requests already received are handled and answered, the workers end. A handler may stop
its own service; its own endpoint is then drained on its thread, without waiting for itself.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pydantic import BaseModel

from syncmsg._deadline import Deadline, check_timeout
from syncmsg._errors import SyncMsgError
from syncmsg._msg import Msg
from syncmsg.services._config import (
    EndpointConfig,
    Handler,
    ServiceConfig,
    StatsHandler,
    group_prefix,
)
from syncmsg.services._endpoint import Endpoint, current_endpoint
from syncmsg.services._models import (
    API_PREFIX,
    DEFAULT_QUEUE_GROUP,
    ServiceInfo,
    ServicePing,
    ServiceStats,
)

if TYPE_CHECKING:
    from syncmsg._client import Client
    from syncmsg._subscription import Subscription

__all__ = ["Group", "Service", "add_service", "new_service_id"]

log = logging.getLogger("syncmsg.services")

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_LENGTH = 22  # as a NUID: what nats.go and nats-py give their services


def new_service_id() -> str:
    """A random instance id: 22 letters and digits (about 131 bits), a valid subject token."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(_ID_LENGTH))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Group:
    """Endpoints under a common subject prefix: ``svc.add_group("invoices")`` then
    ``add_endpoint("create", ...)`` listens on ``invoices.create``. Its ``queue_group``
    (default: the service's) applies to its endpoints and sub-groups."""

    def __init__(self, service: Service, prefix: str, queue_group: str | None) -> None:
        self._service = service
        self.prefix = prefix
        self.queue_group = queue_group

    def __repr__(self) -> str:
        return f"<syncmsg.services.Group {self.prefix!r}>"

    def add_endpoint(
        self,
        name: str,
        handler: Handler,
        *,
        subject: str | None = None,
        queue_group: str | None = None,
        metadata: Mapping[str, str] | None = None,
        request_model: type[BaseModel] | None = None,
        response_model: type[BaseModel] | None = None,
    ) -> Endpoint:
        """Add an endpoint on ``<prefix>.<subject or name>``; see :meth:`Service.add_endpoint`."""
        config = EndpointConfig(
            name,
            handler,
            subject=subject,
            queue_group=queue_group,
            metadata=metadata or {},
            request_model=request_model,
            response_model=response_model,
        )
        return self._service._add(config.in_group(self.prefix, self.queue_group))

    def add_group(self, name: str, *, queue_group: str | None = None) -> Group:
        """A group inside this one: prefix ``<prefix>.<name>``."""
        group_queue = self.queue_group if queue_group is None else queue_group
        return Group(self._service, group_prefix(name, self.prefix), group_queue)


class Service:
    """A NATS micro service (ADR-32) on a client: discoverable with ``$SRV.PING|INFO|STATS``
    by every NATS tool and client, its endpoints answered on worker threads.

    Make one with ``client.add_service(...)`` (or :func:`add_service`); it answers
    discovery requests at once and each endpoint from :meth:`add_endpoint` on. Use it as a
    context manager, or call :meth:`stop`.
    """

    def __init__(self, client: Client, config: ServiceConfig) -> None:
        self._client = client
        self.config = config
        self.id = new_service_id()
        self.started = _now()
        self._endpoints: list[Endpoint] = []
        self._discovery: list[Subscription] = []
        self._lock = threading.Lock()
        self._stopping = False
        self._stopped = threading.Event()

    def __repr__(self) -> str:
        state = "stopped" if self.stopped else "running"
        return (
            f"<syncmsg.services.Service {self.name!r} {self.version} id={self.id} {state} "
            f"endpoints={len(self._endpoints)}>"
        )

    # -- identity --------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.config.name

    @property
    def version(self) -> str:
        return self.config.version

    @property
    def description(self) -> str:
        return self.config.description

    @property
    def metadata(self) -> Mapping[str, str]:
        return self.config.metadata

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        with self._lock:
            return tuple(self._endpoints)

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` finished, or the client was closed."""
        return self._stopped.is_set() or self._client.is_closed

    # -- starting (the caller's thread) ----------------------------------------------------
    def _start(self, timeout: float | None) -> Service:
        """Subscribe to the discovery subjects (for :func:`add_service`)."""
        wait = check_timeout(timeout, self._client.config.timeout)
        deadline = Deadline(wait)
        subjects = (
            f"{API_PREFIX}.*",
            f"{API_PREFIX}.*.{self.name}",
            f"{API_PREFIX}.*.{self.name}.{self.id}",
        )
        try:
            for subject in subjects:
                sub = self._client.subscribe(
                    subject, self._answer, timeout=max(deadline.left(), 0.001)
                )
                self._discovery.append(sub)
        except BaseException:
            self.stop(1.0)
            raise
        log.info("syncmsg: service %r %s started (id %s)", self.name, self.version, self.id)
        return self

    def add_endpoint(
        self,
        name: str,
        handler: Handler,
        *,
        subject: str | None = None,
        queue_group: str | None = None,
        metadata: Mapping[str, str] | None = None,
        request_model: type[BaseModel] | None = None,
        response_model: type[BaseModel] | None = None,
    ) -> Endpoint:
        """Answer requests on ``subject`` (default: ``name``) with ``handler(request)``.

        The handler runs on the endpoint's ``workers`` threads and gets a
        :class:`~syncmsg.services.Request`; its return value is the reply. ``queue_group``
        defaults to the service's (``"q"``); ``""`` subscribes without one. With
        ``request_model`` and ``response_model`` (pydantic classes) the payloads are
        validated and the models' JSON schemas published in ``metadata``
        (``request_schema``, ``response_schema``). The server has the subscription when
        this returns.

        :raises ConfigurationError: a bad name or metadata (nothing is subscribed).
        :raises InvalidSubjectError: a bad subject or queue group.
        :raises LoopThreadError: called from the event-loop thread.
        """
        config = EndpointConfig(
            name,
            handler,
            subject=subject,
            queue_group=queue_group,
            metadata=metadata or {},
            request_model=request_model,
            response_model=response_model,
        )
        return self._add(config)

    def _add(self, config: EndpointConfig, timeout: float | None = None) -> Endpoint:
        """Start an endpoint (for :class:`Group` and :class:`~syncmsg.services.ServiceSpec`)."""
        if self._stopping or self.stopped:
            raise SyncMsgError(f"service {self.name!r} is stopped; no new endpoints")
        endpoint = Endpoint(
            config,
            config.resolved_queue_group(self.config.queue_group),
            self.name,
            self.config.stats_handler,
        )
        endpoint._start(self._client, self.config.workers, timeout)
        with self._lock:
            if not self._stopping:
                self._endpoints.append(endpoint)
                return endpoint
        if endpoint.subscription is not None:  # stopped while subscribing
            endpoint.subscription.unsubscribe()
        raise SyncMsgError(f"service {self.name!r} is stopped; no new endpoints")

    def add_group(self, name: str, *, queue_group: str | None = None) -> Group:
        """Endpoints under the subject prefix ``name`` (see :class:`Group`)."""
        return Group(self, group_prefix(name), queue_group)

    # -- what discovery answers (any thread) -----------------------------------------------
    def ping(self) -> ServicePing:
        return ServicePing(
            name=self.name, id=self.id, version=self.version, metadata=dict(self.metadata)
        )

    def info(self) -> ServiceInfo:
        """The service and every endpoint it has now (the ``$SRV.INFO`` answer)."""
        return ServiceInfo(
            name=self.name,
            id=self.id,
            version=self.version,
            metadata=dict(self.metadata),
            description=self.description,
            endpoints=[endpoint.info() for endpoint in self.endpoints],
        )

    def stats(self) -> ServiceStats:
        """Each endpoint's counters now (the ``$SRV.STATS`` answer)."""
        return ServiceStats(
            name=self.name,
            id=self.id,
            version=self.version,
            metadata=dict(self.metadata),
            started=self.started,
            endpoints=[endpoint.stats() for endpoint in self.endpoints],
        )

    def reset(self) -> None:
        """Set every endpoint's counters to zero and ``started`` to now."""
        for endpoint in self.endpoints:
            endpoint.reset()
        self.started = _now()

    def _answer(self, msg: Msg) -> None:
        """Answer a discovery request (a discovery subscription's worker thread)."""
        verb = msg.subject.split(".", 2)[1]
        response: ServicePing | ServiceInfo | ServiceStats
        if verb == "PING":
            response = self.ping()
        elif verb == "INFO":
            response = self.info()
        elif verb == "STATS":
            response = self.stats()
        else:
            return
        if msg.reply:
            msg.respond(response.to_wire())

    # -- stopping (any thread but the loop; a handler of this service too) -----------------
    def stop(self, timeout: float | None = None) -> bool:
        """Stop: drain every endpoint and the discovery subscriptions, under one deadline
        (default ``config.drain_timeout``). Requests already received are handled and
        answered; new ones go to the other instances. Idempotent.

        Returns False (and logs a warning) when some requests were still unhandled at the
        deadline: those got no answer.
        """
        wait = check_timeout(timeout, self._client.config.drain_timeout)
        with self._lock:
            if self._stopping:
                if current_endpoint() is not None:  # the stopping thread waits for us
                    return self._stopped.is_set()
                return self._stopped.wait(wait)
            self._stopping = True
            endpoints = list(self._endpoints)
        deadline = Deadline(wait)
        mine = current_endpoint()
        own = [e.subscription for e in endpoints if e is mine and e.subscription is not None]
        others = [e.subscription for e in endpoints if e is not mine and e.subscription is not None]
        failures: list[str] = []

        def drain(sub: Subscription) -> None:
            try:
                sub.drain(max(deadline.left(), 0.001))
            except SyncMsgError as exc:
                failures.append(str(exc))

        threads = [
            threading.Thread(
                target=drain, args=(sub,), name=f"syncmsg-svc-{self.name}-stop-{i}", daemon=True
            )
            for i, sub in enumerate([*others, *self._discovery])
        ]
        for thread in threads:
            thread.start()
        for sub in own:
            drain(sub)  # on this thread: the subscription knows not to wait for its own worker
        for thread in threads:
            thread.join(deadline.left() + 1.0)
        finished = not failures and not any(thread.is_alive() for thread in threads)
        if not finished:
            log.warning(
                "syncmsg: service %r stopped before finishing every request: %s",
                self.name,
                "; ".join(failures) or "drain still running",
            )
        self._stopped.set()
        log.info("syncmsg: service %r (id %s) stopped", self.name, self.id)
        return finished

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the service is stopped (by another thread, or its client closed);
        False when ``timeout`` ran out first. Waits in slices, so Ctrl-C reaches it."""
        deadline = Deadline(timeout)
        while not self.stopped:
            if deadline.expired:
                return False
            self._stopped.wait(deadline.remaining(0.5))
        return True

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def add_service(
    client: Client,
    name: str,
    *,
    version: str,
    description: str = "",
    metadata: Mapping[str, str] | None = None,
    queue_group: str | None = DEFAULT_QUEUE_GROUP,
    workers: int = 8,
    stats_handler: StatsHandler | None = None,
    timeout: float | None = None,
) -> Service:
    """Start a service on ``client``; add endpoints to it with :meth:`Service.add_endpoint`.

    ``name`` (letters, digits, ``-``, ``_``) is the kind of service, shared by its
    instances; ``version`` a semantic version. Every endpoint subscribes in ``queue_group``
    (``"q"``; None subscribes without one) and runs its handler on ``workers`` threads.
    ``stats_handler(endpoint)`` supplies each endpoint's ``data`` in ``$SRV.STATS``. The
    service answers discovery requests when this returns.

    :raises ConfigurationError: a bad name, version, metadata or workers (nothing is sent).
    :raises LoopThreadError: called from the event-loop thread.
    """
    config = ServiceConfig(
        name,
        version,
        description=description,
        metadata=metadata or {},
        queue_group=queue_group,
        workers=workers,
        stats_handler=stats_handler,
    )
    return Service(client, config)._start(timeout)
