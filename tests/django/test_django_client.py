"""The process-wide client: one per process, thread-safe creation, recreated after fork."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.core import checks
from django.test import override_settings

import syncmsg
from syncmsg.django import (
    _process,
    close_client,
    current_client,
    get_client,
    get_jetstream,
    get_publisher,
)
from syncmsg.django import conf as django_conf
from syncmsg.jetstream import DEFAULT_PUBLISH_RETRY, StreamSpec


def test_one_client_for_all_threads(django_nats: Any) -> None:
    assert current_client() is None
    barrier = threading.Barrier(16)

    def get(_: int) -> syncmsg.Client:
        barrier.wait(5)
        return get_client()

    with ThreadPoolExecutor(16) as pool:
        clients = list(pool.map(get, range(16)))
    assert len({id(c) for c in clients}) == 1
    client = clients[0]
    assert client.is_connected and current_client() is client
    assert client.config.name == "taskboard"
    assert get_jetstream().client is client and get_jetstream() is get_jetstream()
    assert get_jetstream(timeout=1.0).timeout == 1.0
    assert get_publisher() is get_publisher()
    assert get_publisher().source == "taskboard"
    names = set(client.jetstream().stream_names())
    assert {"TASKBOARD", "TASK_EVENTS", "AGENT_EVENTS", "AUDIT_EVENTS"} <= names

    client.close()
    replacement = get_client()  # a closed client is replaced
    assert replacement is not client and replacement.is_connected


def test_settings_change_makes_a_new_client(django_nats: Any, nats_server_factory: Any) -> None:
    first = get_client()
    other = nats_server_factory(jetstream=True)
    with override_settings(SYNCMSG={"url": other.url, "streams": [StreamSpec(name="S2")]}):
        assert first.is_closed
        second = get_client()
        assert second.health()["server"].endswith(f":{other.port}")
        assert second.config.name == "django"  # the default service
        assert second.jetstream().stream_names() == ["S2"]
    assert second.is_closed


def test_a_forked_child_makes_its_own_client(django_nats: Any) -> None:
    parent_client = get_client()
    with syncmsg.connect(django_nats.url) as watcher, watcher.subscribe_sync("fork.>") as sub:
        watcher.flush()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: like a gunicorn worker after --preload
            code = 1
            try:
                os.close(read_end)
                child_client = get_client()
                same = child_client is parent_client
                child_client.publish("fork.child", {"pid": os.getpid(), "same": same})
                child_client.flush(5)
                close_client(5)
                code = 0
            finally:
                os.write(write_end, str(code).encode())
                os._exit(code)
        os.close(write_end)
        _, status = os.waitpid(pid, 0)
        os.close(read_end)
        assert os.waitstatus_to_exitcode(status) == 0
        msg = sub.next_msg(timeout=5)
        assert msg.json() == {"pid": pid, "same": False}
    assert get_client() is parent_client and parent_client.is_connected
    parent_client.flush(5)  # the child did not touch the parent's connection


def test_no_server(refused_url: str) -> None:
    with override_settings(SYNCMSG={"url": refused_url, "connect_timeout": 0.2}):
        with pytest.raises(syncmsg.NoServersError):
            get_client(timeout=0.5)
        assert current_client() is None


def test_creation_waits_for_another_thread_with_a_timeout(django_nats: Any) -> None:
    with _process._lock, pytest.raises(syncmsg.TimeoutError):
        get_client(timeout=0.1)
    assert get_client().is_connected


def test_a_stream_that_cannot_be_ensured_fails_the_first_use(nats_server_factory: Any) -> None:
    server = nats_server_factory(jetstream=False)
    with override_settings(SYNCMSG={"url": server.url, "streams": [{"name": "NOPE"}]}):
        with pytest.raises(syncmsg.SyncMsgError):
            get_client(timeout=5)
        assert current_client() is None


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("nope", "must be a dict"),
        ({"service": ""}, "service"),
        ({"event_source": 3}, "event_source"),
        ({"url": "http://x"}, "unsupported scheme"),
        ({"colour": "blue"}, "colour"),
        ({"health_timeout": 0}, "health_timeout"),
        ({"streams": "ORDERS"}, "list of StreamSpec"),
        ({"streams": [3]}, "not int"),
        ({"streams": [{"name": "a.b"}]}, "invalid stream 'a.b'"),
        ({"streams": [{"name": "A"}, {"name": "A"}]}, "twice"),
        ({"event_streams": "yes"}, "event_streams"),
        ({"worker": []}, "must be a dict"),
        ({"worker": {"threads": 2}}, "unknown keys"),
        ({"worker": {"workers": 0}}, "workers"),
        ({"worker": {"shutdown_timeout": -1}}, "shutdown_timeout"),
        ({"worker": {"max_ack_pending": 0}}, "max_ack_pending"),
        ({"worker": {"retry": 3}}, "EventRetryPolicy"),
        ({"worker": {"prefetch": 0}}, "prefetch"),
        ({"jetstream": []}, "must be a dict"),
        ({"jetstream": {"retries": 3}}, "unknown keys"),
    ],
)
def test_invalid_settings_are_reported(setting: Any, message: str) -> None:
    with override_settings(SYNCMSG=setting):
        with pytest.raises(syncmsg.ConfigurationError, match=message):
            django_conf.load()
        errors = checks.run_checks(tags=["syncmsg"])
        assert [e.id for e in errors] == ["syncmsg.E001"]
        assert message in errors[0].msg


def test_valid_settings() -> None:
    from syncmsg.events import EventRetryPolicy

    retry = EventRetryPolicy(max_deliver=3, backoff=(1.0,))
    options = django_conf.load(
        {
            "url": "nats://a:4222,nats://b:4222",
            "name": "given",
            "event_streams": {"replicas": 1, "dead_letters": False},
            "worker": {"retry": retry, "workers": 3},
            "jetstream": {"timeout": 2.0},
        }
    )
    # The timeout bounds a publish in all: its retries end with it.
    assert options.jetstream == {
        "timeout": 2.0,
        "publish_retry": DEFAULT_PUBLISH_RETRY.replace(deadline=2.0),
    }
    given = syncmsg.RetryPolicy(deadline=9.0)
    assert django_conf.load({"jetstream": {"timeout": 2, "publish_retry": given}}).jetstream == {
        "timeout": 2,
        "publish_retry": given,
    }
    assert options.worker.effective_prefetch == 16
    assert django_conf.WorkerOptions(workers=8).effective_prefetch == 32
    assert options.config.servers == ["nats://a:4222", "nats://b:4222"]
    assert options.config.name == "given"
    assert options.event_streams == {"replicas": 1, "dead_letters": False}
    assert options.worker.retry is retry and options.worker.workers == 3
    with override_settings(SYNCMSG=None):
        assert django_conf.load().service == "django"
        assert checks.run_checks(tags=["syncmsg"]) == []
