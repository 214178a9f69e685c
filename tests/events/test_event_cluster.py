"""The event streams on a three-node cluster: replicas, and events flowing through them."""

from __future__ import annotations

import queue
from uuid import UUID, uuid4

import pytest

import syncmsg
from syncmsg.events import (
    EventPublisher,
    EventSubscriber,
    TaskEvent,
    ensure_event_streams,
)
from syncmsg.testing.plugin import NatsClusterFactory

TENANT = UUID("9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f")


@pytest.mark.slow
def test_replicated_event_streams_on_a_cluster(nats_cluster_factory: NatsClusterFactory) -> None:
    cluster = nats_cluster_factory(3)
    cluster.wait_for_meta_leader(timeout=10)
    with syncmsg.connect(cluster.urls, timeout=10.0) as client:
        js = client.jetstream()
        # Created with one replica (as the document does), then scaled up: updated in place.
        first = ensure_event_streams(client, replicas=1, timeout=10.0)
        assert {i.action for i in first} == {"created"}
        scaled = ensure_event_streams(client, replicas=3, timeout=10.0)
        assert {i.name: i.action for i in scaled} == {
            "AGENT_EVENTS": "updated",
            "TASK_EVENTS": "updated",
            "AUDIT_EVENTS": "updated",
            "EVENT_DEAD_LETTERS": "updated",
        }
        for info in scaled:
            assert js.stream_info(info.name, timeout=10.0).config.replicas == 3

        got: queue.Queue[TaskEvent] = queue.Queue()
        sub = EventSubscriber(client, service="cluster")
        sub.on_task_event("*", got.put)
        sub.start(timeout=10.0)
        try:
            ack = EventPublisher(client).publish_task_event(
                TENANT, type="task.started", task_id=uuid4(), task_type="report", timeout=10.0
            )
            assert ack.stream == "TASK_EVENTS"
            assert got.get(timeout=10.0) == ack.event
        finally:
            sub.stop(timeout=10.0)
