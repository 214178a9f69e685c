"""NATS micro services (ADR-32) for threaded code: endpoints answered on worker threads,
discoverable and measurable by every NATS tool and client.

::

    import syncmsg
    from syncmsg import services

    client = syncmsg.connect()
    svc = client.add_service(name="billing", version="1.2.0", description="Charges")
    svc.add_endpoint("charge", lambda request: {"ok": True, "amount": request.json()["amount"]})
    invoices = svc.add_group("invoices")
    invoices.add_endpoint("create", create_invoice)          # subject invoices.create

    client.request("charge", {"amount": 5}, timeout=2).json()   # {"ok": true, "amount": 5}
    services.ping(client)                  # every instance of every service, within 1 s
    services.stats(client, "billing")      # their counters
    svc.stop()                             # drain: requests in hand are answered

Layout, one module per role, each naming its threads:

* ``_config.py``: :class:`ServiceConfig`, :class:`EndpointConfig` (checked when made);
* ``_service.py``: :class:`Service`, :class:`Group`, :func:`add_service`; answers
  discovery on its own worker threads;
* ``_endpoint.py``: :class:`Endpoint`: one subscription, the handler on its workers;
* ``_request.py``: :class:`Request` (what a handler gets), :class:`ServiceError`;
* ``_stats.py``: the per-endpoint counters;
* ``_models.py``: the ADR-32 responses as pydantic models;
* ``_discovery.py``: :func:`ping`, :func:`info`, :func:`stats`, asked of every instance;
* ``_spec.py``: :class:`ServiceSpec`, a service declared with decorators, started later.

It uses only the core's public API (``client.subscribe``, ``msg.respond``,
``client.publish``, ``client.subscribe_sync``), as JetStream does. See docs/services.md.
"""

import sys

from syncmsg import _exports
from syncmsg.services._config import (
    REQUEST_SCHEMA,
    RESPONSE_SCHEMA,
    EndpointConfig,
    Handler,
    ServiceConfig,
    StatsHandler,
)
from syncmsg.services._discovery import DEFAULT_DISCOVERY_TIMEOUT, info, ping, stats
from syncmsg.services._endpoint import Endpoint
from syncmsg.services._models import (
    API_PREFIX,
    DEFAULT_QUEUE_GROUP,
    INFO_RESPONSE_TYPE,
    PING_RESPONSE_TYPE,
    STATS_RESPONSE_TYPE,
    EndpointInfo,
    EndpointStats,
    ServiceInfo,
    ServicePing,
    ServiceStats,
    control_subject,
)
from syncmsg.services._request import Request, ServiceError, error_headers
from syncmsg.services._service import Group, Service, add_service
from syncmsg.services._spec import GroupSpec, ServiceSpec

__all__ = [
    "API_PREFIX",
    "DEFAULT_DISCOVERY_TIMEOUT",
    "DEFAULT_QUEUE_GROUP",
    "INFO_RESPONSE_TYPE",
    "PING_RESPONSE_TYPE",
    "REQUEST_SCHEMA",
    "RESPONSE_SCHEMA",
    "STATS_RESPONSE_TYPE",
    "Endpoint",
    "EndpointConfig",
    "EndpointInfo",
    "EndpointStats",
    "Group",
    "GroupSpec",
    "Handler",
    "Request",
    "Service",
    "ServiceConfig",
    "ServiceError",
    "ServiceInfo",
    "ServicePing",
    "ServiceSpec",
    "ServiceStats",
    "StatsHandler",
    "add_service",
    "control_subject",
    "error_headers",
    "info",
    "ping",
    "stats",
]

_exports.present_as_public(sys.modules[__name__])
