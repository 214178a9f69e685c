"""A server newer than this syncmsg: a real nats-server's JetStream answers, relayed with
fields added that no server has yet (at the top, in configs, in states, in acks). Nothing
is fatal, what syncmsg knows reads as before, and the unknown fields are kept."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _js_helpers import unique

import syncmsg
from syncmsg.jetstream import ConsumerConfig, StreamSpec

pytestmark = pytest.mark.timeout(60)

FUTURE = {"from_2_99": {"nested": [1, 2]}}


def _known(request: Any, seen: list[str]) -> Any:
    """``request`` without the new fields, which a newer server would understand and this
    one refuses (nats-server reads API requests strictly); ``seen`` notes where they were."""
    if isinstance(request, dict):
        if "from_2_99" in request:
            seen.append(",".join(sorted(request)))
        return {k: _known(v, seen) for k, v in request.items() if k != "from_2_99"}
    if isinstance(request, list):
        return [_known(item, seen) for item in request]
    return request


def _newer(answer: dict[str, Any]) -> dict[str, Any]:
    """``answer`` as a newer server might write it: new fields wherever objects nest."""
    if "error" in answer:
        return answer
    grown = {**answer, **FUTURE}
    for key in ("config", "state", "cluster", "api", "limits", "delivered"):
        if isinstance(grown.get(key), dict):
            grown[key] = {**grown[key], **FUTURE}
    if isinstance(grown.get("streams"), list):  # STREAM.LIST
        grown["streams"] = [_newer(item) for item in grown["streams"]]
    return grown


@pytest.fixture
def sent_back() -> list[str]:
    """The requests that carried a new field back to the server (their keys)."""
    return []


@pytest.fixture
def newer(
    nats_server_factory: Callable[..., Any], nats_url: str, sent_back: list[str]
) -> Iterator[syncmsg.JetStream]:
    """A JetStream context whose API (``$JS.API.>``) and stream subjects (``NEW.>``) are a
    relay to the shared JetStream server, growing every answer by :func:`_newer`."""
    front = nats_server_factory(jetstream=False)
    relayed: list[str] = []
    lock = threading.Lock()
    with contextlib.ExitStack() as stack:
        upstream = stack.enter_context(syncmsg.connect(nats_url, timeout=5))
        relay = stack.enter_context(syncmsg.connect(front.url, timeout=5))

        def forward(msg: syncmsg.Msg) -> None:
            with lock:
                relayed.append(msg.subject)
            data = msg.data
            if msg.subject.startswith("$JS.API.") and data:
                data = json.dumps(_known(json.loads(data), sent_back)).encode()
            reply = upstream.request(msg.subject, data, headers=msg.headers, timeout=5)
            msg.respond(json.dumps(_newer(json.loads(reply.data))))

        relay.subscribe("$JS.API.>", forward, workers=4)
        relay.subscribe("NEW.>", forward, workers=4)
        relay.flush()
        client = stack.enter_context(syncmsg.connect(front.url, timeout=5))
        yield client.jetstream()
        assert relayed, "nothing went through the relay: the test proves nothing"


def test_answers_with_fields_no_server_has_yet(
    newer: syncmsg.JetStream, client: Any, sent_back: list[str]
) -> None:
    name = unique("NEW")
    spec = StreamSpec(name=name, subjects=[f"NEW.{name}.>"], storage="memory", max_msgs=10)
    try:
        created = newer.ensure_stream(spec)
        assert created.action == "created" and created.config.max_msgs == 10
        assert created.model_extra is not None and created.model_extra["from_2_99"]
        assert created.config.extra["from_2_99"] == FUTURE["from_2_99"]  # a spec keeps them here
        # A new config field is not drift: the spec does not set it.
        assert newer.ensure_stream(spec).action in ("created", "unchanged")
        moved = newer.ensure_stream(spec.model_copy(update={"max_msgs": 20}))
        assert moved.action == "updated" and moved.config.max_msgs == 20
        # The update sent back what the server said, new fields and all: a setting of a
        # newer server is kept, not reset by an older client.
        assert len(sent_back) == 1 and "max_msgs" in sent_back[0]

        ack = newer.publish(f"NEW.{name}.a", b"one")
        assert (ack.stream, ack.seq, ack.duplicate) == (name, 1, False)
        assert ack.model_extra == FUTURE
        info = newer.stream_info(name)
        assert info.state.messages == 1 and info.state.model_extra == FUTURE
        assert [s.name for s in newer.streams(f"NEW.{name}.x")] == [name]

        made = newer.add_consumer(name, ConsumerConfig(durable_name="reader", ack_wait=30))
        assert made.config.ack_wait is not None and made.config.ack_wait.total_seconds() == 30
        assert made.config.model_extra == FUTURE
        assert newer.consumer_info(name, "reader").num_pending == 1
        assert newer.account_info().api.level >= 1
        assert newer.get_msg(name, 1).data == b"one"
    finally:
        client.jetstream().delete_stream(name)
