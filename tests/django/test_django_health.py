"""syncmsg.django.views.health: 200 with the round trip when connected, else 503."""

from __future__ import annotations

from typing import Any

from django.test import Client as DjangoClient
from django.test import override_settings

from syncmsg.django import get_client


def test_healthy(django_nats: Any) -> None:
    response = DjangoClient().get("/health/nats/")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True and body["state"] == "connected" and body["connected"] is True
    assert isinstance(body["rtt_ms"], float) and body["error"] is None
    assert body["server"].endswith(f":{django_nats.port}")
    assert "no-cache" in response["Cache-Control"]
    assert DjangoClient().head("/health/nats/").status_code == 200
    assert DjangoClient().post("/health/nats/").status_code == 405


def test_unhealthy_while_the_server_is_down(django_nats: Any, wait_until: Any) -> None:
    client = get_client()
    django_nats.stop()
    wait_until(lambda: not client.is_connected, 10)
    response = DjangoClient().get("/health/nats/")
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False and body["state"] == "reconnecting" and body["error"]
    django_nats.start()
    wait_until(lambda: DjangoClient().get("/health/nats/").status_code == 200, 15)


def test_unavailable_without_a_server(refused_url: str) -> None:
    settings = {"url": refused_url, "health_timeout": 0.5, "connect_timeout": 0.2}
    with override_settings(SYNCMSG=settings):
        response = DjangoClient().get("/health/nats/")
    assert response.status_code == 503
    body = response.json()
    assert body["state"] == "unavailable" and body["connected"] is False
    assert body["error"] and "\n" not in body["error"]
