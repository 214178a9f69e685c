"""docker-compose.nats.yml matches the design document's NATS service, field by field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.nats.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_only_the_nats_service_and_its_volume(compose: dict[str, Any]) -> None:
    assert set(compose) == {"services", "volumes"}
    assert set(compose["services"]) == {"nats"}
    assert compose["volumes"] == {"nats_data": None}


def test_nats_service(compose: dict[str, Any]) -> None:
    nats = compose["services"]["nats"]
    assert set(nats) == {"image", "command", "ports", "volumes", "healthcheck"}
    assert nats["image"] == "nats:2.10-alpine"
    assert nats["command"] == ["--jetstream", "--store_dir=/data", "--http_port=8222"]
    assert nats["ports"] == ["4222:4222", "8222:8222"]
    assert nats["volumes"] == ["nats_data:/data"]


def test_healthcheck(compose: dict[str, Any]) -> None:
    assert compose["services"]["nats"]["healthcheck"] == {
        "test": ["CMD", "wget", "-q", "--spider", "http://localhost:8222/healthz"],
        "interval": "5s",
        "timeout": "3s",
        "retries": 3,
    }


def test_header_says_who_it_is_for() -> None:
    header = COMPOSE.read_text(encoding="utf-8").split("services:", 1)[0]
    assert header.lstrip().startswith("#")
    assert "docker compose -f docker-compose.nats.yml up" in header
    assert "CI" in header
