"""Wire compatibility with nats-py's ``nats.micro``, in the same run, both ways:

* a nats-py client discovers, pings and calls a syncmsg service, and reads its stats with
  nats.micro's own parsers (``ServicePing.from_dict``, ``ServiceInfo.from_dict``,
  ``ServiceStats.from_dict``);
* syncmsg discovers, calls and reads the stats of a ``nats.micro`` service;
* instances of both kinds serve one service together, sharing its queue group.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from nats import micro
from nats.micro.request import Request as MicroRequest
from nats.micro.request import ServiceError as MicroServiceError
from nats.micro.service import ServiceInfo as MicroInfo
from nats.micro.service import ServicePing as MicroPing
from nats.micro.service import ServiceStats as MicroStats

import syncmsg
from syncmsg import services
from syncmsg.services import Request

pytestmark = [
    pytest.mark.timeout(60),
    # nats.micro's own use of datetime.utcnow() (deprecated from Python 3.12 on).
    pytest.mark.filterwarnings("ignore:datetime.datetime.utcnow:DeprecationWarning"),
]


def test_nats_py_discovers_pings_calls_and_reads_stats_of_a_syncmsg_service(
    client, peer, service_name, services_made
):
    svc = client.add_service(
        service_name, version="1.4.2", description="syncmsg side", metadata={"lang": "python"}
    )
    services_made.append(svc)
    svc.add_endpoint("double", lambda r: {"n": r.json()["n"] * 2}, subject=f"{service_name}.double")

    def broken(request: Request) -> None:
        raise ValueError("no")

    svc.add_group(service_name).add_endpoint("broken", broken)

    # Discovery: every verb, at every level (all services, by name, by name and id).
    for subject in ("$SRV.PING", f"$SRV.PING.{service_name}", f"$SRV.PING.{service_name}.{svc.id}"):
        pings = [MicroPing.from_dict(json.loads(m.data)) for m in peer.gather(subject)]
        mine = [p for p in pings if p.id == svc.id]
        assert len(mine) == 1, subject
        assert (mine[0].name, mine[0].version, mine[0].metadata) == (
            service_name,
            "1.4.2",
            {"lang": "python"},
        )
    (info_msg,) = peer.gather(f"$SRV.INFO.{service_name}")
    info = MicroInfo.from_dict(json.loads(info_msg.data))
    assert (info.id, info.description, info.type) == (
        svc.id,
        "syncmsg side",
        micro.service.INFO_RESPONSE_TYPE,
    )
    assert [(e.name, e.subject, e.queue_group) for e in info.endpoints] == [
        ("double", f"{service_name}.double", "q"),
        ("broken", f"{service_name}.broken", "q"),
    ]

    # Calls, as nats-py makes them.
    reply = peer.request(f"{service_name}.double", b'{"n": 4}')
    assert json.loads(reply.data) == {"n": 8}
    error = peer.request(f"{service_name}.broken")
    assert error.headers["Nats-Service-Error-Code"] == "500"
    assert error.headers["Nats-Service-Error"] == "ValueError: no"

    (stats_msg,) = peer.gather(f"$SRV.STATS.{service_name}.{svc.id}")
    stats = MicroStats.from_dict(json.loads(stats_msg.data))  # parses "started" with strptime
    assert stats.id == svc.id
    counts = {e.name: (e.num_requests, e.num_errors, e.last_error) for e in stats.endpoints}
    assert counts == {"double": (1, 0, ""), "broken": (1, 1, "500:ValueError: no")}
    assert all(e.processing_time > 0 for e in stats.endpoints)


@pytest.fixture
def micro_service(peer, service_name) -> Any:
    """A nats.micro service (nats-py) with an echo endpoint, a group and failing endpoints."""

    async def start() -> Any:
        svc = await micro.add_service(
            peer.nc,
            name=service_name,
            version="0.9.0",
            description="nats-py side",
            metadata={"lang": "nats-py"},
        )

        async def echo(request: MicroRequest) -> None:
            await request.respond(request.data)

        async def crash(request: MicroRequest) -> None:
            raise RuntimeError("boom")

        async def missing(request: MicroRequest) -> None:
            raise MicroServiceError("404", "no such thing")

        await svc.add_endpoint(name="echo", subject=f"{service_name}.echo", handler=echo)
        group = svc.add_group(name=f"{service_name}-g")
        await group.add_endpoint(name="crash", handler=crash)
        await group.add_endpoint(name="missing", handler=missing)
        return svc

    svc = peer.run(start())
    yield svc
    peer.run(svc.stop())


def test_syncmsg_discovers_and_calls_a_nats_py_micro_service(client, micro_service, service_name):
    (ping,) = services.ping(client, service_name)
    assert (ping.id, ping.version, ping.metadata) == (
        micro_service.id,
        "0.9.0",
        {"lang": "nats-py"},
    )
    assert [p.id for p in services.ping(client, timeout=0.5) if p.name == service_name] == [ping.id]
    (info,) = services.info(client, service_name, service_id=micro_service.id)
    assert info.description == "nats-py side"
    assert [(e.name, e.subject, e.queue_group) for e in info.endpoints] == [
        ("echo", f"{service_name}.echo", "q"),
        ("crash", f"{service_name}-g.crash", "q"),
        ("missing", f"{service_name}-g.missing", "q"),
    ]

    assert client.request(f"{service_name}.echo", {"hello": "micro"}, timeout=5).json() == {
        "hello": "micro"
    }
    with pytest.raises(syncmsg.RemoteError) as crashed:
        client.request(f"{service_name}-g.crash", timeout=5)
    assert crashed.value.code == "500" and "boom" in crashed.value.description
    with pytest.raises(syncmsg.RemoteError) as missing:
        client.request(f"{service_name}-g.missing", timeout=5)
    assert (missing.value.code, missing.value.description) == ("404", "no such thing")

    (stats,) = services.stats(client, service_name)
    assert stats.id == micro_service.id
    counts = {e.name: (e.num_requests, e.num_errors) for e in stats.endpoints}
    assert counts == {"echo": (1, 0), "crash": (1, 1), "missing": (1, 1)}
    assert stats.started.tzinfo is not None


def test_syncmsg_and_nats_py_instances_share_one_service(client, peer, service_name, services_made):
    subject = f"{service_name}.work"
    mine = client.add_service(service_name, version="1.0.0")
    services_made.append(mine)
    mine.add_endpoint("work", lambda r: "syncmsg", subject=subject)

    async def start() -> Any:
        theirs = await micro.add_service(peer.nc, name=service_name, version="1.0.0")

        async def work(request: MicroRequest) -> None:
            await request.respond(b"nats-py")

        await theirs.add_endpoint(name="work", subject=subject, handler=work)
        return theirs

    theirs = peer.run(start())
    try:
        answered = {client.request(subject, timeout=5).data for _ in range(40)}
        assert answered == {b"syncmsg", b"nats-py"}  # one queue group "q": shared
        pings = services.ping(client, service_name, timeout=0.5)
        assert {p.id for p in pings} == {mine.id, theirs.id}
    finally:
        peer.run(theirs.stop())


def test_a_syncmsg_stats_handler_reaches_nats_py(client, peer, service_name, services_made):
    svc = client.add_service(
        service_name, version="1.0.0", stats_handler=lambda e: {"queue": e.queue_group}
    )
    services_made.append(svc)
    svc.add_endpoint("a", lambda r: "a", subject=f"{service_name}.a")
    (msg,) = peer.gather(f"$SRV.STATS.{service_name}")
    assert MicroStats.from_dict(json.loads(msg.data)).endpoints[0].data == {"queue": "q"}


def test_syncmsg_reads_the_nulls_nats_py_sends(client, peer, service_name):
    """nats.micro sends ``"description": null`` (which the INFO schema does not allow) and
    ``"metadata": null`` for endpoints without metadata: read as empty, not refused."""

    async def start() -> Any:
        svc = await micro.add_service(peer.nc, name=service_name, version="1.0.0")

        async def noop(request: MicroRequest) -> None:
            await request.respond(b"")

        await svc.add_endpoint(name="noop", subject=f"{service_name}.noop", handler=noop)
        return svc

    theirs = peer.run(start())
    try:
        (raw,) = peer.gather(f"$SRV.INFO.{service_name}")
        assert json.loads(raw.data)["description"] is None
        (info,) = services.info(client, service_name)
        assert info.description == "" and info.endpoints[0].metadata == {}
    finally:
        peer.run(theirs.stop())
