"""Handlers, their registry, and the worker run in-process (the subprocess is in another file)."""

from __future__ import annotations

import io
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client as DjangoClient
from django.test import override_settings
from taskboard import handlers as taskboard_handlers
from taskboard.models import ProcessedMessage, Task

import syncmsg
from syncmsg.django import (
    DurableHandler,
    EventHandler,
    _registry,
    autodiscover,
    event_handler,
    get_client,
    handler,
    registered_handlers,
)
from syncmsg.django.outbox import Relay
from syncmsg.django.worker import Worker
from syncmsg.events import AuditEventType, EventRetryPolicy, TaskEventType


@pytest.fixture
def registry() -> Iterator[list[Any]]:
    """An empty registry for the test; the real one is put back afterwards."""
    saved = list(_registry._handlers)
    _registry._handlers.clear()
    try:
        yield _registry._handlers
    finally:
        _registry._handlers[:] = saved


def test_decorators_register(registry: list[Any]) -> None:
    @handler("orders.>", durable="orders", max_deliver=3, backoff=[0.5], dead_letter="dlq.o")
    def on_order(msg: syncmsg.Msg) -> None: ...

    @event_handler(TaskEventType.CREATED)
    def created(event: Any) -> None: ...

    @event_handler("audit.*")
    @event_handler("*", family="workflow")
    @event_handler("agent.started", family="agent")
    def many(event: Any) -> None: ...

    entries = registered_handlers()
    assert [type(e) for e in entries] == [DurableHandler, EventHandler, *[EventHandler] * 3]
    durable = entries[0]
    assert isinstance(durable, DurableHandler)
    assert (durable.subject, durable.durable, durable.options["backoff"]) == (
        "orders.>",
        "orders",
        (0.5,),
    )
    assert durable.describe().endswith("on_order: orders.> (durable orders)")
    kinds = [(e.family, e.event_type) for e in entries[1:] if isinstance(e, EventHandler)]
    assert kinds == [
        ("task", "task.created"),
        ("agent", "agent.started"),
        ("workflow", "*"),
        ("audit", "*"),
    ]
    assert entries[-1].describe().endswith("many: audit.* events")

    event_handler("task.created")(created)  # registering again replaces, not duplicates
    assert len(registered_handlers()) == 5
    _registry.unregister(many)
    assert len(registered_handlers()) == 2


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        (("*",), {}, ValueError),
        (("task.nope",), {}, ValueError),
        (("nope.created",), {}, ValueError),
        (("task",), {}, ValueError),
        (("task.created",), {"family": "agent"}, ValueError),
        ((TaskEventType.CREATED,), {"family": "agent"}, ValueError),
        ((AuditEventType.ACCESS,), {"family": "audit"}, None),
        ((3,), {}, TypeError),
    ],
)
def test_event_handler_checks_its_type(args: Any, kwargs: Any, error: Any, registry: Any) -> None:
    if error is None:
        event_handler(*args, **kwargs)(print)
    else:
        with pytest.raises(error):
            event_handler(*args, **kwargs)


def test_handler_checks_its_options(registry: list[Any]) -> None:
    with pytest.raises(syncmsg.InvalidSubjectError):
        handler("bad subject", durable="d")
    with pytest.raises(syncmsg.InvalidSubjectError):
        handler("ok", durable="no.dots")
    with pytest.raises(syncmsg.InvalidSubjectError):
        handler("ok", durable="d", dead_letter="dlq.*")
    with pytest.raises(ValueError):
        handler("ok", durable="d", workers=0)
    with pytest.raises(TypeError):
        handler("ok", durable="d")(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        event_handler("task.created")(3)  # type: ignore[arg-type]


def test_autodiscover_finds_the_example_handlers() -> None:
    names = {entry.name for entry in autodiscover()}
    assert "taskboard.handlers.task_created" in names
    assert "taskboard.handlers.task_completed" in names


def test_worker_runs_the_example_handlers(django_nats: Any, wait_until: Any) -> None:
    web = DjangoClient()
    ids = [
        web.post("/tasks/", data={"title": f"t{i}", "kind": "email"}).json()["id"]
        for i in range(20)
    ]
    web.post(f"/tasks/{ids[0]}/complete/")
    relay = Relay()
    assert relay.publish_pending(timeout=30) == 21  # the views wrote to the outbox
    relay.stop()
    seen_connections: list[bool] = []

    @handler("taskboard.probe", durable="probe")
    def probe(msg: syncmsg.Msg) -> None:
        seen_connections.append(connection.connection is None)  # closed after each call
        Task.objects.exists()

    handlers = [
        taskboard_handlers.task_created,
        taskboard_handlers.task_completed,
    ]
    entries = [e for e in registered_handlers() if e.func in (*handlers, probe)]
    _registry.unregister(probe)
    worker = Worker(entries)
    worker.start()
    try:
        assert "running" in repr(worker)
        get_client().jetstream().publish("taskboard.probe", b"1")
        get_client().jetstream().publish("taskboard.probe", b"2")
        wait_until(lambda: ProcessedMessage.objects.count() == 21, 20)
        wait_until(lambda: len(seen_connections) == 2, 10)
        consumer = "TASK_EVENTS/taskboard-task-consumer"
        wait_until(lambda: worker.stats()[consumer]["acked"] == 20, 10)
    finally:
        assert worker.stop(10) is True
    assert "stopped" in repr(worker)
    assert seen_connections == [True, True]
    assert Task.objects.filter(state="queued").count() == 19
    assert Task.objects.get(pk=ids[0]).state == "done"
    assert set(ProcessedMessage.objects.values_list("deliveries", flat=True)) == {1}
    assert ProcessedMessage.objects.filter(kind="taskboard.completed").count() == 1


def test_worker_retries_failed_event_handlers(django_nats: Any, wait_until: Any) -> None:
    calls: list[str] = []

    @event_handler("task.failed")
    def flaky(event: Any) -> None:
        calls.append(str(event.id))
        if len(calls) == 1:
            raise RuntimeError("first time fails")

    entry = [e for e in registered_handlers() if e.func is flaky]
    _registry.unregister(flaky)
    options = syncmsg.django.conf.WorkerOptions(
        retry=EventRetryPolicy(max_deliver=3, backoff=(0.1,))
    )
    worker = Worker(entry, options=options, service="retrying")
    worker.start()
    try:
        from syncmsg.django import get_publisher

        get_publisher().publish_task_event(
            "7d0f3c1e-5b7a-4c2e-9f3a-2b1d4e6f8a90",
            type="task.failed",
            task_id=uuid4(),
            task_type="x",
        )
        wait_until(lambda: len(calls) == 2, 15)
    finally:
        assert worker.stop() is True
    assert calls[0] == calls[1]


def test_worker_stop_reports_unfinished_handlers(django_nats: Any, wait_until: Any) -> None:
    release = threading.Event()
    started = threading.Event()

    def slow(msg: syncmsg.Msg) -> None:
        started.set()
        release.wait(10)

    worker = Worker(
        [DurableHandler(slow, "taskboard.slow", "slow", {"ack_wait": 30.0})],
        client=get_client(),
        options=syncmsg.django.conf.WorkerOptions(shutdown_timeout=0.3),
        service="x",
    )
    worker.start()
    try:
        get_client().jetstream().publish("taskboard.slow", b"")
        assert started.wait(10)
        assert worker.stop() is False
    finally:
        release.set()


def test_worker_start_failure_stops_what_started(django_nats: Any) -> None:
    ok = DurableHandler(print, "taskboard.ok", "ok", {})
    bad = DurableHandler(print, "nowhere.at.all", "bad", {})
    worker = Worker(
        [ok, bad], client=get_client(), options=syncmsg.django.conf.WorkerOptions(), service="x"
    )
    with pytest.raises(syncmsg.StreamNotFoundError):
        worker.start()
    assert worker.subscriptions() == []


def test_worker_defaults_come_from_the_registry_and_settings(
    django_nats: Any, registry: list[Any]
) -> None:
    @handler("taskboard.defaults", durable="defaults", prefetch=3)
    def on_default(msg: syncmsg.Msg) -> None: ...

    worker = Worker()
    assert worker.handlers == registered_handlers()
    worker.start()
    worker.start()  # idempotent
    try:
        (sub,) = worker.subscriptions()
        assert sub.prefetch == 3 and sub.durable == "defaults"
    finally:
        assert worker.stop() is True


def test_worker_wait_returns_when_the_connection_closes(django_nats: Any) -> None:
    client = syncmsg.connect(django_nats.url)
    worker = Worker([], client=client, options=syncmsg.django.conf.WorkerOptions(), service="x")
    worker.start()
    client.close()
    assert worker.wait(threading.Event(), poll=0.01) is False
    assert worker.stop(1) is True


def test_command_lists_handlers() -> None:
    out = io.StringIO()
    call_command("syncmsg_worker", "--list", stdout=out)
    assert "taskboard.handlers.task_created: task.created events" in out.getvalue()
    assert "taskboard.completed.* (durable taskboard-completions)" in out.getvalue()


def test_command_refuses_bad_options(registry: list[Any]) -> None:
    with pytest.raises(CommandError, match="workers"):
        call_command("syncmsg_worker", "--workers", "0")
    with pytest.raises(CommandError, match="shutdown-timeout"):
        call_command("syncmsg_worker", "--shutdown-timeout", "0")
    no_handlers = override_settings(SYNCMSG={"worker": {"handlers": "no_such_module"}})
    with no_handlers, pytest.raises(CommandError, match="no handlers registered"):
        call_command("syncmsg_worker")
    with override_settings(SYNCMSG={"colour": 1}), pytest.raises(CommandError, match="colour"):
        call_command("syncmsg_worker")


def test_command_without_a_server(refused_url: str) -> None:
    settings = {
        "url": refused_url,
        "connect_timeout": 0.2,
        "connect_retry": syncmsg.RetryPolicy(attempts=1),
    }
    with override_settings(SYNCMSG=settings), pytest.raises(CommandError, match="nats"):
        call_command("syncmsg_worker")


def test_command_runs_until_sigterm(django_nats: Any, wait_until: Any) -> None:
    DjangoClient().post("/tasks/", data={"title": "in process"})
    out = io.StringIO()
    errors: list[BaseException] = []

    def stop_when_ready() -> None:
        try:
            wait_until(lambda: "ready" in out.getvalue(), 20)
            wait_until(lambda: ProcessedMessage.objects.count() == 1, 20)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        os.kill(os.getpid(), signal.SIGTERM)  # handled by the command on the main thread

    previous = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=stop_when_ready)
    thread.start()
    call_command("syncmsg_worker", "--workers", "2", "--shutdown-timeout", "5", stdout=out)
    thread.join(10)
    assert not errors, errors
    assert signal.getsignal(signal.SIGTERM) is previous
    assert "syncmsg_worker: stopped" in out.getvalue()
    assert Task.objects.get().state == "queued"
