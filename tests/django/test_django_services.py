"""Services declared with ``syncmsg.django.service`` run by the worker next to consumers."""

from __future__ import annotations

import io
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from django.core.management import call_command
from django.db import connection
from taskboard.models import ProcessedMessage, Task

import syncmsg
from syncmsg import services
from syncmsg.django import (
    ServiceEntry,
    _registry,
    get_client,
    handler,
    registered_handlers,
    service,
)
from syncmsg.django.worker import Worker

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def registry() -> Iterator[list[Any]]:
    """An empty registry for the test; the real one is put back afterwards."""
    saved = list(_registry._handlers)
    _registry._handlers.clear()
    try:
        yield _registry._handlers
    finally:
        _registry._handlers[:] = saved


@pytest.fixture
def name() -> str:
    return f"dj-{uuid4().hex[:8]}"


def test_service_declares_a_spec_and_registers_it(registry: list[Any], name: str) -> None:
    spec = service(name, version="1.0.0", description="from django")

    @spec.endpoint("count", subject=f"{name}.count")
    def count(request: services.Request) -> str:
        return "0"

    (entry,) = registered_handlers()
    assert isinstance(entry, ServiceEntry) and entry.spec is spec
    assert entry.name == name
    assert entry.describe() == f"service {name} 1.0.0: {name}.count"
    again = service(name, version="1.0.1")  # the module imported again: replaced
    assert registered_handlers() == (ServiceEntry(again),)
    with pytest.raises(syncmsg.ConfigurationError):
        service("no spaces allowed", version="1.0.0")
    out = io.StringIO()
    call_command("syncmsg_worker", "--list", stdout=out)
    assert f"service {name} 1.0.1: no endpoints" in out.getvalue()


def test_the_worker_runs_services_next_to_durable_consumers(
    django_nats: Any, registry: list[Any], name: str, wait_until: Any
) -> None:
    fresh: list[bool] = []
    spec = service(name, version="2.0.0", workers=2)

    @spec.endpoint("tasks", subject=f"{name}.tasks")
    def tasks(request: services.Request) -> dict[str, Any]:
        fresh.append(connection.connection is None)  # closed after each call
        return {"tasks": Task.objects.count(), "asked": request.json()["who"]}

    @handler("taskboard.svc-probe", durable=f"probe-{name}")
    def probe(msg: syncmsg.Msg) -> None:
        ProcessedMessage.objects.create(message_id=f"probe-{name}", kind="probe", pid=os.getpid())

    Task.objects.create(title="one", tenant_id=uuid4())
    worker = Worker()
    worker.start(timeout=10)
    try:
        client = get_client()
        (svc,) = worker.services()
        assert client.request(f"{name}.tasks", {"who": "web"}, timeout=5).json() == {
            "tasks": 1,
            "asked": "web",
        }
        client.request(f"{name}.tasks", {"who": "again"}, timeout=5)
        assert fresh == [True, True]
        (ping,) = services.ping(client, name)
        assert (ping.id, ping.version) == (svc.id, "2.0.0")
        client.jetstream().publish("taskboard.svc-probe", b"")
        wait_until(lambda: ProcessedMessage.objects.filter(kind="probe").exists(), 20)
    finally:
        assert worker.stop(10) is True
    assert svc.stopped and worker.services() == []
    with pytest.raises(syncmsg.NoRespondersError):
        get_client().request(f"{name}.tasks", b"{}", timeout=5)


def test_stopping_the_worker_answers_the_requests_in_hand(
    django_nats: Any, registry: list[Any], name: str
) -> None:
    entered, release = threading.Event(), threading.Event()
    spec = service(name, version="1.0.0")

    @spec.endpoint("slow", subject=f"{name}.slow")
    def slow(request: services.Request) -> str:
        entered.set()
        release.wait(10)
        return "finished"

    worker = Worker(registered_handlers(), options=syncmsg.django.conf.WorkerOptions(), service="x")
    worker.start(timeout=10)
    answers: list[bytes] = []
    caller = threading.Thread(
        target=lambda: answers.append(get_client().request(f"{name}.slow", timeout=10).data)
    )
    caller.start()
    assert entered.wait(10)
    stopped: list[bool] = []
    stopper = threading.Thread(target=lambda: stopped.append(worker.stop(10)))
    stopper.start()
    release.set()
    stopper.join(15)
    caller.join(15)
    assert answers == [b"finished"] and stopped == [True]


def test_the_worker_reports_a_service_that_did_not_finish(
    django_nats: Any, registry: list[Any], name: str
) -> None:
    entered, release = threading.Event(), threading.Event()
    spec = service(name, version="1.0.0", workers=1)

    @spec.endpoint("stuck", subject=f"{name}.stuck")
    def stuck(request: services.Request) -> str:
        entered.set()
        release.wait(10)
        return "late"

    options = syncmsg.django.conf.WorkerOptions(shutdown_timeout=0.3)
    worker = Worker(registered_handlers(), options=options, service="x")
    worker.start(timeout=10)
    try:
        client = get_client()
        client.publish(f"{name}.stuck", b"", reply=client.new_inbox())
        assert entered.wait(10)
        assert worker.stop() is False
    finally:
        release.set()


def test_the_command_runs_a_service_until_sigterm(
    django_nats: Any, registry: list[Any], name: str, wait_until: Any
) -> None:
    spec = service(name, version="1.0.0")
    spec.endpoint("hello", subject=f"{name}.hello")(lambda request: "hello from the worker")
    out = io.StringIO()
    replies: list[bytes] = []
    errors: list[BaseException] = []

    def call_then_stop() -> None:
        try:
            wait_until(lambda: "ready" in out.getvalue(), 20)
            with syncmsg.connect(django_nats.url) as client:
                replies.append(client.request(f"{name}.hello", timeout=5).data)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        os.kill(os.getpid(), signal.SIGTERM)  # handled by the command on the main thread

    thread = threading.Thread(target=call_then_stop)
    thread.start()
    call_command("syncmsg_worker", "--shutdown-timeout", "5", stdout=out)
    thread.join(10)
    assert not errors, errors
    assert replies == [b"hello from the worker"]
    assert f"service {name} 1.0.0: {name}.hello" in out.getvalue()
    assert "syncmsg_worker: stopped" in out.getvalue()
