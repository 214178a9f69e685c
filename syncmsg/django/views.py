"""Django views: :func:`health`.

::

    # urls.py
    from django.urls import path
    import syncmsg.django.views

    urlpatterns = [path("health/nats", syncmsg.django.views.health)]

With ``SYNCMSG["outbox"]`` set, the response also reports the outbox's backlog (two
indexed queries on the pending rows) and turns 503 when it is over
``health_max_backlog`` or its oldest row over ``health_max_age`` seconds.

Threading: runs on the request thread; the round trip is bounded by
``SYNCMSG["health_timeout"]`` (2 s by default), and so is the first connection when the
process has no client yet.
"""

from __future__ import annotations

import os
from typing import Any

from syncmsg._errors import SyncMsgError

__all__ = ["health"]


def health(request: Any) -> Any:
    """JSON with the connection state and round-trip time: 200 when connected, else 503.

    ``{"ok": true, "state": "connected", "connected": true, "rtt_ms": 0.42,
    "server": "nats://10.0.0.5:4222", "server_id": ..., "server_version": ...,
    "error": null, "pid": 1234}``. With no reachable server (or while reconnecting)
    ``ok`` is false, ``error`` says why and the status is 503. With the outbox enabled,
    ``"outbox": {"ok": true, "pending": 3, "oldest_age": 0.4, "failing": 0, "error":
    null}`` too, and a backlog over the thresholds makes it 503. Only GET and HEAD are
    allowed; the response is never cached.
    """
    from django.http import HttpResponseNotAllowed, JsonResponse
    from django.utils.cache import add_never_cache_headers

    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    from syncmsg.django._process import get_client, get_options

    info: dict[str, Any]
    try:
        timeout = get_options().health_timeout
        info = get_client(timeout=timeout).health(timeout=timeout)
    except SyncMsgError as exc:
        info = {
            "ok": False,
            "state": "unavailable",
            "connected": False,
            "server": None,
            "rtt_ms": None,
            "error": " ".join(str(exc).split()),
        }
    info["pid"] = os.getpid()
    outbox = _outbox()
    if outbox is not None:
        info["outbox"] = outbox
        info["ok"] = bool(info.get("ok")) and outbox["ok"]
    response = JsonResponse(info, status=200 if info.get("ok") else 503)
    add_never_cache_headers(response)
    return response


def _outbox() -> dict[str, Any] | None:
    from django.db import DatabaseError

    from syncmsg.django import conf

    try:
        options = conf.options().outbox
    except SyncMsgError:
        return None  # an invalid setting is reported with the NATS part
    if options is None:
        return None
    from syncmsg.django.outbox import backlog

    try:
        current = backlog(options.database)
    except DatabaseError as exc:
        return {"ok": False, "error": " ".join(str(exc).split()) or type(exc).__name__}
    over = current.over(options)
    return {"ok": over is None, **current.as_dict(), "error": over}
