"""``syncmsg services ls|info|stats`` in-process, against services on a real server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

import syncmsg
from syncmsg.cli import EXIT_NOT_FOUND, main

pytestmark = pytest.mark.timeout(60)


class Query(BaseModel):
    q: str


@pytest.fixture
def running(nats_server_factory: Any) -> Iterator[tuple[str, str, list[Any]]]:
    """A server of its own (``ls`` lists every service on it), with two instances of one
    service, one answering a request that failed."""
    server = nats_server_factory()
    name = f"cli-{uuid.uuid4().hex[:8]}"
    with syncmsg.connect(server.url) as client:
        first = client.add_service(
            name, version="1.0.0", description="billing things", metadata={"zone": "eu"}
        )
        first.add_endpoint("charge", lambda r: "ok", subject=f"{name}.charge")
        first.add_endpoint(
            "search",
            lambda r: r.parse().q,
            subject=f"{name}.search",
            request_model=Query,
            queue_group="",
        )
        second = client.add_service(name, version="1.1.0")
        second.add_endpoint("charge", lambda r: 1 / 0, subject=f"{name}.other")
        client.request(f"{name}.charge", timeout=5)
        with pytest.raises(syncmsg.RemoteError):
            client.request(f"{name}.other", timeout=5)
        yield server.url, name, [first, second]
        first.stop(5)
        second.stop(5)


def _lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_ls_lists_every_instance(running: Any, capsys: Any) -> None:
    url, name, (first, second) = running
    assert main(["services", "ls", "-s", url, "--timeout", "500ms"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if name in line]
    assert len(lines) == 2
    assert first.id in lines[0] and "billing things" in lines[0] and "1.0.0" in lines[0]
    assert second.id in lines[1] and "1.1.0" in lines[1]
    assert main(["services", "ls", name, "-s", url, "--json", "--timeout", "500ms"]) == 0
    answers = _lines(capsys.readouterr().out)
    assert sorted(a["id"] for a in answers) == sorted([first.id, second.id])
    assert all(a["type"] == "io.nats.micro.v1.info_response" for a in answers)


def test_ls_with_nobody_says_so(nats_server_factory: Any, capsys: Any) -> None:
    server = nats_server_factory()
    assert main(["services", "ls", "-s", server.url]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "no services answered" in captured.err


def test_info_shows_endpoints_and_metadata(running: Any, capsys: Any) -> None:
    url, name, (first, _) = running
    assert main(["services", "info", name, first.id, "-s", url]) == 0
    out = capsys.readouterr().out
    assert f"service {name} 1.0.0 ({first.id})" in out
    assert "zone=eu" in out and "billing things" in out
    assert f"{name}.charge" in out and "(none)" in out and "schemas: request" in out
    assert main(["services", "info", name, "-s", url, "--json", "--timeout", "500ms"]) == 0
    assert len(_lines(capsys.readouterr().out)) == 2


def test_stats_shows_counters_in_human_units(running: Any, capsys: Any) -> None:
    url, name, (first, second) = running
    assert main(["services", "stats", name, "-s", url, "--timeout", "500ms"]) == 0
    out = capsys.readouterr().out
    charge = next(line for line in out.splitlines() if first.id in line and "charge" in line)
    assert " 1 " in charge
    assert "µs" in charge or "ms" in charge
    failing = next(line for line in out.splitlines() if second.id in line)
    assert "500:ZeroDivisionError: division by zero" in failing
    assert main(["services", "stats", name, second.id, "-s", url, "--json"]) == 0
    (answer,) = _lines(capsys.readouterr().out)
    assert answer["endpoints"][0]["num_errors"] == 1
    assert isinstance(answer["endpoints"][0]["processing_time"], int)


def test_an_unknown_service_exits_with_not_found(nats_url: str, capsys: Any) -> None:
    for command in ("info", "stats"):
        code = main(["services", command, "nobody-here", "-s", nats_url, "--timeout", "200ms"])
        assert code == EXIT_NOT_FOUND
        assert "no service 'nobody-here' answered within 200ms" in capsys.readouterr().err
