"""syncmsg.django.outbox in one process: writing rows, the relay's rounds, order, retries,
the duplicate window, retention, the single-relay lease, health and admin."""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from django.db import transaction
from django.db.transaction import TransactionManagementError
from django.test import Client as DjangoClient
from django.test import override_settings
from django.utils import timezone

import syncmsg
from syncmsg.django import conf, current_client, get_client, outbox
from syncmsg.django.outbox import OutboxLease, OutboxMessage, Relay, backlog
from syncmsg.events import AuditEvent, EventValidationError, TaskEvent
from syncmsg.jetstream import StreamSpec

TENANT = "7d0f3c1e-5b7a-4c2e-9f3a-2b1d4e6f8a90"


@pytest.fixture
def outbox_nats(django_nats: Any) -> Iterator[Any]:
    """django_nats with an ORDERS stream (orders.>) and a quick relay."""
    from django.conf import settings

    syncmsg_settings = {
        **settings.SYNCMSG,
        "streams": [*settings.SYNCMSG["streams"], {"name": "ORDERS", "subjects": ["orders.>"]}],
        "outbox": {"backoff_initial": 0.05, "backoff_max": 0.2, "poll_interval": 0.05},
    }
    with override_settings(SYNCMSG=syncmsg_settings):
        yield django_nats


def _stored(server: Any, stream: str) -> list[syncmsg.Msg]:
    with syncmsg.connect(server.url, timeout=5.0) as client:
        js = client.jetstream()
        state = js.stream_info(stream).state
        if not state.messages:
            return []
        return [js.get_msg(stream, seq) for seq in range(state.first_seq, state.last_seq + 1)]


# ---------------------------------------------------------------------------- writing
def test_publish_writes_a_row_in_the_transaction_and_never_touches_nats(outbox_nats: Any) -> None:
    with transaction.atomic():
        row = outbox.publish("orders.created", {"id": 1}, headers={"X-Trace": "t1"})
    assert current_client() is None  # nothing connected: the view never waits on NATS
    stored = OutboxMessage.objects.get()
    assert (stored.pk, stored.subject, stored.payload_bytes()) == (
        row.pk,
        "orders.created",
        b'{"id":1}',
    )
    assert stored.headers == {"X-Trace": "t1"} and stored.key is None
    assert stored.published is None and stored.attempts == 0
    assert len(stored.msg_id) == 36  # a uuid4, kept in the row

    with pytest.raises(RuntimeError), transaction.atomic():
        outbox.publish("orders.created", {"id": 2})
        raise RuntimeError("roll back")
    with transaction.atomic():
        outbox.publish("orders.created", {"id": 3})
        with pytest.raises(RuntimeError), transaction.atomic():  # a savepoint
            outbox.publish("orders.created", {"id": 4})
            raise RuntimeError("inner")
    payloads = [r.payload_bytes() for r in OutboxMessage.objects.order_by("id")]
    assert payloads == [b'{"id":1}', b'{"id":3}']
    assert str(OutboxMessage.objects.first()) == f"#{row.pk} orders.created (pending)"


def test_publish_refuses_to_run_outside_a_transaction(outbox_nats: Any) -> None:
    with pytest.raises(TransactionManagementError, match=r"transaction\.atomic\(\)"):
        outbox.publish("orders.created", b"")
    with pytest.raises(TransactionManagementError):
        outbox.publish_task_event(TENANT, type="task.created", task_id=uuid4(), task_type="email")
    outbox.publish("orders.created", b"alone", autocommit=True)  # asked for explicitly
    assert OutboxMessage.objects.get().payload_bytes() == b"alone"


def test_bad_input_raises_before_anything_is_written(outbox_nats: Any) -> None:
    with transaction.atomic():
        with pytest.raises(syncmsg.InvalidSubjectError):
            outbox.publish("bad subject", b"")
        with pytest.raises(syncmsg.InvalidSubjectError):
            outbox.publish("orders.*", b"")
        with pytest.raises(syncmsg.PayloadError):
            outbox.publish("orders.x", object())  # type: ignore[arg-type]
        with pytest.raises(syncmsg.InvalidHeaderError):
            outbox.publish("orders.x", b"", headers={"Bad Name": "x"})
        with pytest.raises(syncmsg.InvalidHeaderError, match="Nats-Msg-Id"):
            outbox.publish("orders.x", b"", msg_id="a\r\nb")
        with pytest.raises(ValueError, match="key"):
            outbox.publish("orders.x", b"", key="k" * 256)
        with pytest.raises(syncmsg.PayloadTooLargeError):
            outbox.publish("orders.x", b"x" * (1024 * 1024 + 1))
        with pytest.raises(EventValidationError):
            outbox.publish_task_event("", type="task.created", task_id=uuid4(), task_type="e")
    assert not OutboxMessage.objects.exists()


def test_the_outbox_must_be_enabled(django_nats: Any) -> None:
    from django.conf import settings

    without = {k: v for k, v in settings.SYNCMSG.items() if k != "outbox"}
    with override_settings(SYNCMSG=without):
        expected = pytest.raises(syncmsg.ConfigurationError, match=r"SYNCMSG\['outbox'\]")
        with expected, transaction.atomic():
            outbox.publish("orders.created", b"")
        with pytest.raises(syncmsg.SyncMsgError, match="not enabled"):
            Relay()
        assert "outbox" not in DjangoClient().get("/health/nats/").json()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yes", "must be a dict"),
        ({"batch": 1}, "unknown keys"),
        ({"batch_size": 0}, "batch_size"),
        ({"mode": "many"}, "mode"),
        ({"retention": -1}, "retention"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"backoff_initial": 2, "backoff_max": 1}, "backoff_max"),
        ({"health_max_backlog": 1.5}, "health_max_backlog"),
        ({"lease": 5, "publish_timeout": 5}, "lease"),
        ({"run_in_worker": "no"}, "run_in_worker"),
        ({"database": ""}, "database"),
    ],
)
def test_settings_are_checked(value: Any, message: str) -> None:
    with pytest.raises(syncmsg.ConfigurationError, match=message):
        conf.load({"outbox": value})


def test_settings_defaults() -> None:
    assert conf.load({}).outbox is None
    options = conf.load({"outbox": True}).outbox
    assert options == conf.OutboxOptions()
    assert options.retention == 24 * 3600 and options.mode == "auto"


# ---------------------------------------------------------------------------- relaying
def test_relay_publishes_in_order_with_the_rows_msg_id(outbox_nats: Any) -> None:
    with transaction.atomic():
        rows = [outbox.publish(f"orders.n{i % 3}", {"n": i}) for i in range(25)]
    with transaction.atomic():
        given = outbox.publish("orders.paid", {"n": 25}, msg_id="order-25-paid", headers={"A": "b"})
    relay = Relay()
    assert relay.publish_pending(timeout=30) == 26
    stored = _stored(outbox_nats, "ORDERS")
    assert [m.json()["n"] for m in stored] == list(range(26))
    assert [m.headers["Nats-Msg-Id"] for m in stored] == [r.msg_id for r in [*rows, given]]
    assert stored[-1].headers["A"] == "b" and stored[-1].headers["Nats-Msg-Id"] == "order-25-paid"
    assert not OutboxMessage.objects.filter(published__isnull=True).exists()
    assert set(OutboxMessage.objects.values_list("attempts", flat=True)) == {1}
    assert relay.run_once() == 0
    stats = relay.stats()
    assert stats["published"] == 26 and stats["duplicates"] == 0 and stats["failed"] == 0
    assert stats["mode"] == "single" and stats["lease"] == "held"  # SQLite


def test_a_re_send_after_a_crash_is_stored_once(outbox_nats: Any) -> None:
    with transaction.atomic():
        for i in range(10):
            outbox.publish("orders.created", {"n": i})
    first = Relay()
    first.publish_pending(timeout=30)
    first.stop()  # gives up the lease
    # As if the relay had died after the PubAcks, before marking the rows.
    OutboxMessage.objects.update(published=None)
    again = Relay()
    assert again.publish_pending(timeout=30) == 10
    assert again.stats()["duplicates"] == 10
    assert len(_stored(outbox_nats, "ORDERS")) == 10


def test_events_are_published_with_their_id_and_keyed_by_aggregate(outbox_nats: Any) -> None:
    task_id = uuid4()
    with syncmsg.events.correlation_scope(uuid4()) as correlation, transaction.atomic():
        created = outbox.publish_task_event(
            TENANT, type="task.created", task_id=task_id, task_type="email", payload={"a": 1}
        )
        agent = outbox.publish_agent_event(
            TENANT, type="agent.started", agent_id=uuid4(), agent_type="planner"
        )
        workflow = outbox.publish_workflow_event(
            TENANT, type="workflow.started", workflow_id=uuid4(), step_id="s1"
        )
        audit = outbox.publish_audit_event(
            TENANT,
            type="audit.mutation",
            action="update",
            resource_type="task",
            resource_id="r" * 300,  # a key that long is hashed to fit
            metadata={"field": "title"},
        )
        own = outbox.publish_event(
            TaskEvent(
                source="elsewhere",
                tenant_id=TENANT,
                type="task.completed",
                task_id=task_id,
                task_type="email",
                payload={},
            )
        )
    rows = list(OutboxMessage.objects.order_by("id"))
    assert [r.msg_id for r in rows] == [str(e.id) for e in (created, agent, workflow, audit, own)]
    assert rows[0].key == rows[4].key == f"task:{task_id}"
    assert rows[1].key == f"agent:{agent.agent_id}"
    assert rows[2].key == f"workflow:{workflow.workflow_id}"
    assert rows[3].key.startswith("audit:sha256:") and len(rows[3].key) <= 255
    assert rows[0].subject == "task.email.task.created"
    assert created.source == "taskboard" and created.correlation_id == correlation
    assert own.correlation_id == correlation  # taken when written, not when published

    assert Relay().publish_pending(timeout=30) == 5
    tasks = [TaskEvent.from_wire(m.data) for m in _stored(outbox_nats, "TASK_EVENTS")]
    assert tasks == [created, own]
    (stored_audit,) = _stored(outbox_nats, "AUDIT_EVENTS")
    assert AuditEvent.from_wire(stored_audit.data) == audit
    assert stored_audit.headers["Nats-Msg-Id"] == str(audit.id)


def test_a_failing_row_holds_back_its_key_only(outbox_nats: Any, caplog: Any) -> None:
    with transaction.atomic():
        outbox.publish("orders.a", {"n": 1}, key="k1")
        lost = outbox.publish("nostream.x", {"n": 2}, key="k1")  # no stream captures it
        outbox.publish("orders.b", {"n": 3}, key="k1")
        outbox.publish("orders.c", {"n": 4}, key="k2")
        outbox.publish("orders.d", {"n": 5})
    relay = Relay()
    with caplog.at_level(logging.WARNING, "syncmsg.django.outbox"):
        assert relay.publish_pending(timeout=60) == 3
    assert [m.json()["n"] for m in _stored(outbox_nats, "ORDERS")] == [1, 4, 5]
    lost.refresh_from_db()
    assert lost.published is None and lost.attempts == 1 and "NoResponders" in lost.last_error
    assert lost.available > timezone.now() - dt.timedelta(seconds=1)
    assert "nostream.x" in caplog.text and relay.stats()["failed"] == 1
    now = backlog()
    assert (now.pending, now.failing) == (2, 1) and now.oldest_age is not None

    # The stream appears; the key's rows go out in order once the row is due again.
    get_client().jetstream().ensure_stream(StreamSpec(name="LATE", subjects=["nostream.>"]))
    OutboxMessage.objects.filter(pk=lost.pk).update(available=timezone.now())
    assert relay.publish_pending(timeout=30) == 2
    assert [m.json()["n"] for m in _stored(outbox_nats, "ORDERS")] == [1, 4, 5, 3]
    assert [m.json()["n"] for m in _stored(outbox_nats, "LATE")] == [2]


def test_rows_held_by_another_relay_hold_back_their_keys(outbox_nats: Any) -> None:
    with transaction.atomic():
        first = outbox.publish("orders.a", {"n": 1}, key="k1")
        outbox.publish("orders.b", {"n": 2}, key="k1")
        outbox.publish("orders.c", {"n": 3}, key="k2")
    # A row that is not due (it waits for a retry) stands for one another relay holds.
    OutboxMessage.objects.filter(pk=first.pk).update(
        available=timezone.now() + dt.timedelta(hours=1)
    )
    assert Relay().publish_pending(timeout=30) == 1
    assert [m.json()["n"] for m in _stored(outbox_nats, "ORDERS")] == [3]


def test_rows_past_the_duplicate_window_are_sent_with_a_warning(
    outbox_nats: Any, caplog: Any
) -> None:
    with transaction.atomic():
        old = outbox.publish("orders.old", {"n": 1})
        young = outbox.publish("orders.young", {"n": 2})
    OutboxMessage.objects.filter(pk=old.pk).update(created=timezone.now() - dt.timedelta(minutes=5))
    OutboxMessage.objects.filter(pk=young.pk).update(
        created=timezone.now() - dt.timedelta(seconds=30)  # inside the 2-minute window
    )
    relay = Relay()
    with caplog.at_level(logging.WARNING, "syncmsg.django.outbox"):
        assert relay.publish_pending(timeout=30) == 2
    assert relay.stats()["past_dedup_window"] == 1
    assert f"outbox row {old.pk} " in caplog.text and "duplicate window of 120s" in caplog.text
    assert f"outbox row {young.pk} " not in caplog.text
    assert len(_stored(outbox_nats, "ORDERS")) == 2


def test_published_rows_are_deleted_after_the_retention(outbox_nats: Any) -> None:
    with transaction.atomic():
        for i in range(3):
            outbox.publish("orders.created", {"n": i})
    relay = Relay()
    relay.publish_pending(timeout=30)
    assert relay.clean_up() == 0  # published just now
    OutboxMessage.objects.filter(
        pk__in=OutboxMessage.objects.order_by("id").values("pk")[:2]
    ).update(published=timezone.now() - dt.timedelta(days=2))
    with transaction.atomic():
        outbox.publish("orders.created", {"n": 3})  # pending rows are never deleted
    OutboxMessage.objects.filter(published__isnull=True).update(
        created=timezone.now() - dt.timedelta(days=3)
    )
    assert relay.clean_up() == 2
    assert OutboxMessage.objects.count() == 2 and relay.stats()["deleted"] == 2
    keep = Relay(options=conf.OutboxOptions(retention=None))
    assert keep.clean_up() == 0


def test_nats_down_leaves_rows_pending_and_writes_still_work(outbox_nats: Any) -> None:
    relay = Relay()
    relay.run_once()  # connected
    outbox_nats.stop()
    client = get_client()
    syncmsg.testing.wait_until(lambda: not client.is_connected, 10)
    with transaction.atomic():
        outbox.publish("orders.created", {"n": 1})  # the database write alone
    with pytest.raises(syncmsg.NatsConnectionError):
        relay.run_once()
    assert OutboxMessage.objects.get().published is None
    outbox_nats.start()
    syncmsg.testing.wait_until(lambda: client.is_connected, 15)
    assert relay.publish_pending(timeout=30) == 1


def test_the_relay_thread_backs_off_and_catches_up(outbox_nats: Any) -> None:
    outbox_nats.stop()
    relay = Relay()
    relay.start()
    try:
        assert relay.is_running and "running" in repr(relay)
        with transaction.atomic():
            for i in range(5):
                outbox.publish("orders.created", {"n": i})
        syncmsg.testing.wait_until(lambda: relay.stats()["unavailable"] > 0, 20)
        outbox_nats.start()
        syncmsg.testing.wait_until(
            lambda: not OutboxMessage.objects.filter(published__isnull=True).exists(), 30
        )
    finally:
        assert relay.stop(10)
    assert not relay.is_running
    assert [m.json()["n"] for m in _stored(outbox_nats, "ORDERS")] == list(range(5))


# ---------------------------------------------------------------------------- single mode
def test_single_mode_one_relay_at_a_time(outbox_nats: Any) -> None:
    with transaction.atomic():
        outbox.publish("orders.created", {"n": 1})
    first, second = Relay(name="first"), Relay(name="second")
    assert first.run_once() == 1
    with transaction.atomic():
        outbox.publish("orders.created", {"n": 2})
    assert second.run_once() == 0  # standby: the lease is first's
    assert second.stats()["lease"] == "standby"
    lease = OutboxLease.objects.get()
    assert lease.owner == "first" and "first until" in str(lease)
    first._release_lease()  # what stop() does
    assert second.run_once() == 1
    assert OutboxLease.objects.get().owner == "second"
    # An expired lease is taken over: first has to wait until second stops renewing.
    assert first.run_once() == 0
    OutboxLease.objects.update(expires=timezone.now() - dt.timedelta(seconds=1))
    first._lease_until = 0.0
    with transaction.atomic():
        outbox.publish("orders.created", {"n": 3})
    assert first.run_once() == 1
    second._lease_until = 0.0
    assert second.run_once() == 0 and second.stats()["lease"] == "standby"
    assert [m.json()["n"] for m in _stored(outbox_nats, "ORDERS")] == [1, 2, 3]


# ---------------------------------------------------------------------------- health, admin
def test_health_reports_the_backlog_and_turns_503_over_the_threshold(outbox_nats: Any) -> None:
    from django.conf import settings

    web = DjangoClient()
    body = web.get("/health/nats/").json()
    assert body["ok"] is True
    assert body["outbox"] == {
        "ok": True,
        "pending": 0,
        "oldest_age": None,
        "failing": 0,
        "error": None,
    }
    with transaction.atomic():
        outbox.publish("orders.created", b"")
    OutboxMessage.objects.update(created=timezone.now() - dt.timedelta(seconds=90))
    slow = {**settings.SYNCMSG, "outbox": {**settings.SYNCMSG["outbox"], "health_max_age": 60}}
    with override_settings(SYNCMSG=slow):
        response = web.get("/health/nats/")
    assert response.status_code == 503
    body = response.json()
    assert body["connected"] is True and body["outbox"]["pending"] == 1
    assert body["outbox"]["oldest_age"] >= 90 and "health_max_age" in body["outbox"]["error"]
    many = {**settings.SYNCMSG, "outbox": {**settings.SYNCMSG["outbox"], "health_max_backlog": 0}}
    with override_settings(SYNCMSG=many):
        assert "health_max_backlog" in web.get("/health/nats/").json()["outbox"]["error"]


def test_admin_is_read_only_with_retry_now(outbox_nats: Any) -> None:
    from django.contrib.auth.models import User

    with transaction.atomic():
        waiting = outbox.publish("orders.created", {"n": 1}, key="k")
        outbox.publish("orders.binary", b"\xff\xfe")
    later = timezone.now() + dt.timedelta(hours=1)
    OutboxMessage.objects.filter(pk=waiting.pk).update(
        available=later, attempts=2, last_error="NoRespondersError: " + "x" * 100
    )
    relay = Relay()
    relay.publish_pending(timeout=30)  # publishes the binary one
    admin = User.objects.create_superuser("admin", "admin@example.com", "pw")
    try:
        web = DjangoClient()
        web.force_login(admin)
        listing = web.get("/admin/syncmsg/outboxmessage/")
        assert listing.status_code == 200
        page = listing.content.decode()
        assert "orders.created" in page and "failing" in page and "published" in page
        assert "retry_now" in page and "delete_selected" not in page
        assert web.get("/admin/syncmsg/outboxmessage/add/").status_code == 403
        detail = web.get(f"/admin/syncmsg/outboxmessage/{waiting.pk}/change/").content.decode()
        assert "{&quot;n&quot;:1}" in detail or '{"n":1}' in detail
        assert (
            "2 bytes (binary)"
            in web.get(f"/admin/syncmsg/outboxmessage/{waiting.pk + 1}/change/").content.decode()
        )
        assert web.get("/admin/syncmsg/outboxmessage/?state=failing").status_code == 200
        response = web.post(
            "/admin/syncmsg/outboxmessage/",
            {"action": "retry_now", "_selected_action": [waiting.pk, waiting.pk + 1]},
            follow=True,
        )
        assert "1 pending row(s) will be published" in response.content.decode()
        assert "1 published row(s) left" in response.content.decode()
        waiting.refresh_from_db()
        assert waiting.available <= timezone.now()
        assert relay.publish_pending(timeout=30) == 1
    finally:
        User.objects.all().delete()


def test_a_round_that_outlives_its_lease_stops_sending(outbox_nats: Any) -> None:
    class Stalled(Relay):
        def _hold_lease(self) -> bool:  # as if the round had stalled past the lease
            self._holding, self._lease_until = True, 0.0
            return True

    with transaction.atomic():
        outbox.publish("orders.created", {"n": 1})
    with pytest.raises(syncmsg.TimeoutError, match="lease ran out"):
        Stalled().run_once()
    assert OutboxMessage.objects.get().published is None
    assert not _stored(outbox_nats, "ORDERS")


# ---------------------------------------------------------------------------- commands
def test_syncmsg_relay_once_and_its_errors(outbox_nats: Any) -> None:
    from django.conf import settings
    from django.core.management import CommandError, call_command

    with transaction.atomic():
        for i in range(3):
            outbox.publish("orders.created", {"n": i})
    out = io.StringIO()
    call_command("syncmsg_relay", "--once", "--batch-size", "2", "--mode", "single", stdout=out)
    assert "published 3 row(s)" in out.getvalue()
    assert len(_stored(outbox_nats, "ORDERS")) == 3
    with pytest.raises(CommandError, match="batch_size"):
        call_command("syncmsg_relay", "--once", "--batch-size", "0")
    without = {k: v for k, v in settings.SYNCMSG.items() if k != "outbox"}
    with override_settings(SYNCMSG=without), pytest.raises(CommandError, match="not enabled"):
        call_command("syncmsg_relay")
    outbox_nats.stop()
    dead = {
        **settings.SYNCMSG,
        "connect_timeout": 0.2,
        "connect_retry": syncmsg.RetryPolicy(attempts=1),
    }
    with override_settings(SYNCMSG=dead), pytest.raises(CommandError, match="syncmsg_relay"):
        call_command("syncmsg_relay", "--once")


def test_syncmsg_relay_runs_until_sigterm(outbox_nats: Any) -> None:
    from django.core.management import call_command

    with transaction.atomic():
        outbox.publish("orders.created", {"n": 1})
    out = io.StringIO()
    errors: list[BaseException] = []

    def stop_when_published() -> None:
        try:
            syncmsg.testing.wait_until(lambda: "ready" in out.getvalue(), 20)
            syncmsg.testing.wait_until(lambda: backlog().pending == 0, 20)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        os.kill(os.getpid(), signal.SIGTERM)  # handled by the command on the main thread

    thread = threading.Thread(target=stop_when_published)
    thread.start()
    call_command("syncmsg_relay", stdout=out)
    thread.join(10)
    assert not errors, errors
    text = out.getvalue()
    assert "single mode" in text and "syncmsg_relay: stopped: {'published': 1" in text


def test_concurrent_mode_needs_skip_locked(outbox_nats: Any) -> None:
    relay = Relay(options=conf.OutboxOptions(mode="concurrent"))
    with pytest.raises(syncmsg.ConfigurationError, match="SKIP LOCKED"):
        relay.start()  # SQLite: Django would drop FOR UPDATE without a word
    assert not relay.is_running
