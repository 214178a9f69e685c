"""Django views: :func:`health`.

::

    # urls.py
    from django.urls import path
    import syncmsg.django.views

    urlpatterns = [path("health/nats", syncmsg.django.views.health)]

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
    ``ok`` is false, ``error`` says why and the status is 503. Only GET and HEAD are
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
    response = JsonResponse(info, status=200 if info.get("ok") else 503)
    add_never_cache_headers(response)
    return response
