"""A service declared ahead of time, started later: endpoints registered with decorators.

Threading: declaring (:class:`ServiceSpec`, :meth:`ServiceSpec.endpoint`) happens at
import time on the importing thread and takes a lock; :meth:`ServiceSpec.start` runs on
the caller's thread, like :func:`~syncmsg.services.add_service`.

::

    billing = ServiceSpec("billing", version="1.2.0", description="Charges and invoices")

    @billing.endpoint("charge", request_model=Charge, response_model=Receipt)
    def charge(request): ...

    invoices = billing.group("invoices")

    @invoices.endpoint("create")
    def create_invoice(request): ...

    svc = billing.start(client)          # a running Service, every endpoint subscribed

Everything is checked when declared, so a bad name fails at import, not when a worker
starts. The Django worker (``manage.py syncmsg_worker``) starts the specs registered with
:func:`syncmsg.django.service`, wrapping each handler the way Django wraps a request.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from syncmsg.services._config import EndpointConfig, ServiceConfig, StatsHandler, group_prefix
from syncmsg.services._models import DEFAULT_QUEUE_GROUP
from syncmsg.services._service import Service

if TYPE_CHECKING:
    from syncmsg._client import Client

__all__ = ["GroupSpec", "ServiceSpec"]

F = TypeVar("F", bound=Callable[..., Any])


class GroupSpec:
    """Endpoints declared under a subject prefix: ``spec.group("invoices")``, then
    ``@group.endpoint("create")`` for ``invoices.create``. A :class:`ServiceSpec` is the
    group with no prefix, so these methods are the service's too."""

    def __init__(self, owner: ServiceSpec, prefix: str, queue_group: str | None) -> None:
        self._owner = owner
        self.prefix = prefix
        self.queue_group = queue_group

    def endpoint(
        self,
        name: str,
        *,
        subject: str | None = None,
        queue_group: str | None = None,
        metadata: Mapping[str, str] | None = None,
        request_model: type[BaseModel] | None = None,
        response_model: type[BaseModel] | None = None,
    ) -> Callable[[F], F]:
        """Declare the decorated function as the handler of endpoint ``name`` (the options
        of :meth:`Service.add_endpoint`); it is returned unchanged."""

        def register(func: F) -> F:
            config = EndpointConfig(
                name,
                func,
                subject=subject,
                queue_group=queue_group,
                metadata=metadata or {},
                request_model=request_model,
                response_model=response_model,
            )
            if self.prefix:
                config = config.in_group(self.prefix, self.queue_group)
            self._owner._declare(config)
            return func

        return register

    def group(self, name: str, *, queue_group: str | None = None) -> GroupSpec:
        """Endpoints under the subject prefix ``<prefix>.<name>`` (see :class:`Group`)."""
        inherited = self.queue_group if queue_group is None else queue_group
        return GroupSpec(self._owner, group_prefix(name, self.prefix), inherited)

    def __repr__(self) -> str:
        return f"<syncmsg.services.GroupSpec {self.prefix!r}>"


class ServiceSpec(GroupSpec):
    """A service to start later, on any client: the arguments of
    :func:`~syncmsg.services.add_service`, and endpoints declared with
    :meth:`~GroupSpec.endpoint` (and :meth:`~GroupSpec.group`, from :class:`GroupSpec`)."""

    def __init__(
        self,
        name: str,
        *,
        version: str,
        description: str = "",
        metadata: Mapping[str, str] | None = None,
        queue_group: str | None = DEFAULT_QUEUE_GROUP,
        workers: int = 8,
        stats_handler: StatsHandler | None = None,
    ) -> None:
        super().__init__(self, "", None)
        self.config = ServiceConfig(
            name,
            version,
            description=description,
            metadata=metadata or {},
            queue_group=queue_group,
            workers=workers,
            stats_handler=stats_handler,
        )
        self._lock = threading.Lock()
        self._endpoints: list[EndpointConfig] = []

    def __repr__(self) -> str:
        return (
            f"<syncmsg.services.ServiceSpec {self.name!r} {self.config.version} "
            f"endpoints={len(self._endpoints)}>"
        )

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def endpoints(self) -> tuple[EndpointConfig, ...]:
        with self._lock:
            return tuple(self._endpoints)

    def _declare(self, config: EndpointConfig) -> None:
        with self._lock:
            # The same module imported again (Django's autoreloader): the newest wins.
            self._endpoints[:] = [
                e for e in self._endpoints if (e.name, e.subject) != (config.name, config.subject)
            ]
            self._endpoints.append(config)

    def start(
        self,
        client: Client,
        *,
        wrap: Callable[[Callable[[Any], Any]], Callable[[Any], Any]] | None = None,
        timeout: float | None = None,
    ) -> Service:
        """Start the service on ``client`` with every endpoint declared so far.

        ``wrap(handler)`` may wrap each handler (the Django worker gives each call fresh
        database connections). If an endpoint cannot subscribe, the service is stopped
        and the error raised.
        """
        config = self.config
        service = Service(client, config)._start(timeout)
        try:
            for endpoint in self.endpoints:
                if wrap is not None:
                    endpoint = dataclasses.replace(
                        endpoint, handler=wrap(endpoint.handler), metadata=dict(endpoint.metadata)
                    )
                service._add(endpoint, timeout)
        except BaseException:
            service.stop(1.0)
            raise
        return service
