"""Streams: StreamSpec, ensure_stream (create, drift, 4 processes at once), info, errors."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest
from _js_helpers import unique, wait_until

import syncmsg
from syncmsg.jetstream import (
    Republish,
    RetentionPolicy,
    StorageType,
    StreamSource,
    StreamSpec,
    SubjectTransform,
    drift,
)

# ---------------------------------------------------------------------------- pure


def test_spec_to_api_uses_nanoseconds_and_no_limit_markers() -> None:
    spec = StreamSpec(
        name="ORDERS",
        subjects=["orders.>"],
        max_age=timedelta(days=1),
        max_bytes=1024,
        duplicate_window=timedelta(minutes=5),
        storage="memory",
    )
    api = spec.to_api()
    assert api["max_age"] == 86_400 * 10**9
    assert api["duplicate_window"] == 300 * 10**9
    assert api["max_bytes"] == 1024
    assert api["max_msgs"] == -1
    assert api["storage"] == "memory"
    assert api["subjects"] == ["orders.>"]
    assert spec.storage is StorageType.MEMORY


def test_spec_reads_numbers_as_seconds_and_validates() -> None:
    assert StreamSpec(name="A", max_age=90).max_age == timedelta(seconds=90)
    assert StreamSpec(name="A", subjects="a.b").subjects == ("a.b",)
    for bad in ({"name": "a.b"}, {"name": "a b"}, {"name": ""}, {"name": "A", "replicas": 7}):
        with pytest.raises(ValueError):
            StreamSpec(**bad)
    with pytest.raises(ValueError):
        StreamSpec(name="A", subjects=["bad subject"])
    with pytest.raises(ValueError):
        StreamSpec(name="A", max_age=-1)
    with pytest.raises(ValueError):
        StreamSpec(name="A", unknown_field=1)


def test_drift_ignores_server_defaults_and_compares_what_the_spec_sets() -> None:
    wanted = StreamSpec(name="A", subjects=["a.>", "b.>"], max_msgs=10).to_api()
    server = dict(wanted)
    server.update(
        subjects=["b.>", "a.>"],
        duplicate_window=120 * 10**9,
        allow_direct=False,
        consumer_limits={},
        metadata={"_nats.ver": "2.15.1"},
        sealed=False,
    )
    del server["deny_delete"]  # omitted by the server when false
    assert drift(wanted, server) == {}
    server["max_msgs"] = 20
    assert drift(wanted, server) == {"max_msgs": (10, 20)}


def test_spec_round_trips_through_the_api_form() -> None:
    spec = StreamSpec(
        name="A",
        subjects=["a.>"],
        retention=RetentionPolicy.WORKQUEUE,
        max_age=timedelta(hours=1),
        duplicate_window=timedelta(seconds=30),
        max_bytes=5000,
        metadata={"team": "x"},
    )
    assert StreamSpec.from_api(spec.to_api()) == spec


# ---------------------------------------------------------------------------- server


def test_ensure_stream_creates_then_is_idempotent(client: syncmsg.Client) -> None:
    js = client.jetstream()
    name = unique("S")
    spec = StreamSpec(name=name, subjects=[f"{name}.>"], max_msgs=100)
    first = js.ensure_stream(spec)
    assert first.action == "created"
    assert first.config.max_msgs == 100
    again = js.ensure_stream(spec)
    assert again.action in ("created", "unchanged")
    assert again.config == first.config
    info = js.stream_info(name)
    assert info.name == name
    assert info.state.messages == 0
    js.delete_stream(name)
    with pytest.raises(syncmsg.StreamNotFoundError):
        js.stream_info(name)


def test_drifted_stream_is_updated(client: syncmsg.Client) -> None:
    js = client.jetstream()
    name = unique("S")
    old = StreamSpec(name=name, subjects=[f"{name}.a"], max_msgs=100, max_age=timedelta(hours=1))
    js.ensure_stream(old)
    js.publish(f"{name}.a", b"kept")
    new = old.model_copy(
        update={"subjects": (f"{name}.a", f"{name}.b"), "max_msgs": 500, "description": "v2"}
    )
    info = js.ensure_stream(new)
    assert info.action == "updated"
    assert info.config.max_msgs == 500
    assert set(info.config.subjects) == {f"{name}.a", f"{name}.b"}
    assert info.config.description == "v2"
    assert info.state.messages == 1  # an update keeps the messages
    assert js.ensure_stream(new).action in ("created", "unchanged")
    assert js.publish(f"{name}.b", b"new subject").seq == 2
    js.delete_stream(name)


def test_unchangeable_drift_raises_a_jetstream_error(client: syncmsg.Client) -> None:
    js = client.jetstream()
    name = unique("S")
    js.ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"], storage="memory"))
    with pytest.raises(syncmsg.JetStreamError):
        js.ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"], storage="file"))
    js.delete_stream(name)


def test_api_errors_map_to_the_syncmsg_tree(client: syncmsg.Client) -> None:
    js = client.jetstream()
    with pytest.raises(syncmsg.StreamNotFoundError) as err:
        js.stream_info("NO_SUCH_STREAM")
    assert err.value.err_code == 10059
    with pytest.raises(syncmsg.StreamNotFoundError):
        js.delete_stream("NO_SUCH_STREAM")
    name = unique("S")
    js.ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"], storage="memory"))
    with pytest.raises(syncmsg.ConsumerNotFoundError):
        js.consumer_info(name, "nobody")
    with pytest.raises(syncmsg.StreamNotFoundError):
        js.find_stream("no.stream.here")
    assert js.find_stream(f"{name}.x") == name
    js.delete_stream(name)


_ENSURE_SCRIPT = textwrap.dedent(
    """
    import sys, syncmsg
    from datetime import timedelta
    url, name = sys.argv[1], sys.argv[2]
    with syncmsg.connect(url, timeout=10) as client:
        print("ready", flush=True)
        sys.stdin.readline()  # start together
        spec = syncmsg.StreamSpec(name=name, subjects=[name + ".>"], max_msgs=1000,
                                  max_age=timedelta(hours=2), duplicate_window=timedelta(minutes=1))
        info = client.jetstream().ensure_stream(spec)
        print(info.action, info.config.max_msgs, flush=True)
    """
)


@pytest.mark.slow
def test_ensure_stream_from_four_processes_at_once(client: syncmsg.Client, nats_url: str) -> None:
    name = unique("RACE")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _ENSURE_SCRIPT, nats_url, name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:  # release them as close together as we can
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=60) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        action, max_msgs = out.split()
        assert action in ("created", "unchanged", "updated")
        assert max_msgs == "1000"
    js = client.jetstream()
    assert js.stream_names(f"{name}.x") == [name]
    info = js.stream_info(name)
    assert info.config.max_msgs == 1000
    assert info.config.max_age == timedelta(hours=2)
    assert info.config.duplicate_window == timedelta(minutes=1)
    js.delete_stream(name)


# ---------------------------------------------------------------------------- the spec's reach


def test_sources_with_transforms_republish_and_the_other_options(client: syncmsg.Client) -> None:
    js = client.jetstream()
    origin, agg = unique("O"), unique("AGG")
    js.ensure_stream(StreamSpec(name=origin, subjects=[f"{origin}.>"], storage="memory"))
    spec = StreamSpec(
        name=agg,
        storage="memory",
        sources=[
            StreamSource(
                name=origin,
                subject_transforms=[SubjectTransform(src=f"{origin}.>", dest=f"{agg}.from.>")],
            )
        ],
        republish=Republish(src=f"{agg}.>", dest=f"rep.{agg}.>"),
        allow_direct=True,
        discard="new",
        discard_new_per_subject=True,
        max_msgs_per_subject=2,
        compression="s2",
        allow_atomic=True,
        metadata={"owner": "tests"},
        description="aggregate",
    )
    try:
        created = js.ensure_stream(spec)
        assert created.action == "created"
        config = created.config
        assert config.sources[0].subject_transforms[0].dest == f"{agg}.from.>"
        assert config.republish == Republish(src=f"{agg}.>", dest=f"rep.{agg}.>")
        assert (config.allow_direct, config.discard_new_per_subject, config.allow_atomic) == (
            True,
            True,
            True,
        )
        assert config.compression == "s2" and config.max_msgs_per_subject == 2
        assert config.metadata == {"owner": "tests"}  # the server's _nats.* keys left out
        assert js.ensure_stream(spec).action in ("created", "unchanged")

        republished = client.subscribe_sync(f"rep.{agg}.>")
        js.publish(f"{origin}.orders.1", b"one")
        wait_until(lambda: js.stream_info(agg).state.messages == 1, 10)
        stored = js.get_last_msg(agg, f"{agg}.from.orders.1", direct=True)
        assert stored.data == b"one"
        assert republished.next_msg(5).subject == f"rep.{agg}.from.orders.1"
        info = js.stream_info(agg)
        assert info.sources and info.sources[0].name == origin

        # Drift in the new fields is found, and only the fields that moved are changed.
        moved = {"republish": Republish(dest="r2.>"), "max_msgs_per_subject": 5}
        updated = js.ensure_stream(spec.model_copy(update=moved))
        assert updated.action == "updated"
        assert updated.config.republish == Republish(dest="r2.>")
        assert updated.config.max_msgs_per_subject == 5
        assert updated.state.messages == 1
    finally:
        js.delete_stream(agg)
        js.delete_stream(origin)


def test_a_mirror_and_a_counter_stream(client: syncmsg.Client) -> None:
    js = client.jetstream()
    origin, mirror, counter = unique("O"), unique("MIR"), unique("CNT")
    js.ensure_stream(
        StreamSpec(name=origin, subjects=[f"{origin}.>"], storage="memory", allow_direct=True)
    )
    try:
        spec = StreamSpec(
            name=mirror,
            storage="memory",
            mirror=StreamSource(name=origin, filter_subject=f"{origin}.keep.>"),
            mirror_direct=True,
        )
        assert js.ensure_stream(spec).action == "created"
        assert js.ensure_stream(spec).action in ("created", "unchanged")
        js.publish(f"{origin}.keep.1", b"k")
        js.publish(f"{origin}.drop.1", b"d")
        wait_until(lambda: js.stream_info(mirror).state.messages == 1, 10)
        info = js.stream_info(mirror)
        assert info.mirror is not None and info.mirror.name == origin
        assert info.config.mirror is not None and info.config.mirror.filter_subject

        # allow_msg_counter (2.12): the server keeps the sum in the message (Nats-Incr).
        made = js.ensure_stream(
            StreamSpec(name=counter, subjects=[f"{counter}.>"], allow_msg_counter=True)
        )
        assert made.config.allow_msg_counter is True
        ack = client.request(f"{counter}.hits", b"", headers={"Nats-Incr": "+5"}, timeout=5)
        assert b'"val":"5"' in ack.data
    finally:
        for name in (counter, mirror, origin):
            with contextlib.suppress(syncmsg.SyncMsgError):
                js.delete_stream(name)


def test_stream_listing_and_account_info(client: syncmsg.Client) -> None:
    js = client.jetstream()
    name = unique("L")
    js.ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"], storage="memory"))
    try:
        assert name in [info.name for info in js.streams()]
        assert [info.name for info in js.streams(f"{name}.x")] == [name]
        account = js.account_info()
        assert account.streams >= 1
        assert account.api.level >= 1  # nats-server 2.11 and later report an API level
    finally:
        js.delete_stream(name)


# Each step changes one of the spec's fields on a live stream (in order; each from the last).
_DRIFT_STEPS: tuple[tuple[str, dict[str, object]], ...] = (
    ("compression", {"compression": "s2"}),
    ("allow_direct on", {"allow_direct": True}),
    ("allow_direct off", {"allow_direct": False}),
    ("discard_new_per_subject", {"discard": "new", "discard_new_per_subject": True,
                                 "max_msgs_per_subject": 1}),
    ("republish", {"republish": {"src": "{name}.>", "dest": "rep.{name}.>"}}),
    ("republish headers_only", {"republish": {"src": "{name}.>", "dest": "rep.{name}.>",
                                              "headers_only": True}}),
    ("sources instead of subjects", {"subjects": [], "sources": [
        {"name": "{origin}", "subject_transforms": [{"src": "{origin}.>", "dest": "a.{name}.>"}]}
    ]}),
    ("a source's transform", {"sources": [
        {"name": "{origin}", "subject_transforms": [{"src": "{origin}.>", "dest": "b.{name}.>"}]}
    ]}),
    ("placement", {"placement": {"tags": ["ssd"]}}),
    ("placement tags", {"placement": {"tags": ["ssd", "eu"]}}),
)  # fmt: skip


def _filled(value: object, **names: str) -> object:
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, list):
        return [_filled(item, **names) for item in value]
    if isinstance(value, dict):
        return {key: _filled(item, **names) for key, item in value.items()}
    return value


def test_ensure_stream_finds_drift_in_each_of_the_specs_fields(client: syncmsg.Client) -> None:
    js = client.jetstream()
    origin, name = unique("DO"), unique("DS")
    js.ensure_stream(StreamSpec(name=origin, subjects=[f"{origin}.>"], storage="memory"))
    spec = StreamSpec(name=name, subjects=[f"{name}.>"], storage="memory")
    try:
        assert js.ensure_stream(spec).action == "created"
        for step, change in _DRIFT_STEPS:
            fields = _filled(change, name=name, origin=origin)
            assert isinstance(fields, dict)
            spec = StreamSpec.model_validate({**dict(spec), **fields})
            assert drift(spec.to_api(), js.stream_info(name).raw["config"]), step
            assert js.ensure_stream(spec).action == "updated", step
            server_config = js.stream_info(name).raw["config"]
            assert drift(spec.to_api(), server_config) == {}, step
            assert js.ensure_stream(spec).action in ("created", "unchanged"), step
        config = js.stream_info(name).config
        assert config.compression == "s2" and config.discard_new_per_subject is True
        assert config.placement is not None and set(config.placement.tags) == {"ssd", "eu"}
        assert config.sources[0].subject_transforms[0].dest == f"b.{name}.>"
        assert config.republish is not None and config.republish.headers_only is True
    finally:
        js.delete_stream(name)
        js.delete_stream(origin)


def test_a_mirror_cannot_be_moved_and_says_so_with_its_code(client: syncmsg.Client) -> None:
    js = client.jetstream()
    origin, other, mirror = unique("MO"), unique("MO"), unique("MM")
    for source in (origin, other):
        js.ensure_stream(StreamSpec(name=source, subjects=[f"{source}.>"], storage="memory"))
    spec = StreamSpec(name=mirror, storage="memory", mirror=StreamSource(name=origin))
    try:
        assert js.ensure_stream(spec).action == "created"
        for moved in (StreamSource(name=other), StreamSource(name=origin, filter_subject="x.>")):
            with pytest.raises(syncmsg.JetStreamError) as caught:
                js.ensure_stream(spec.model_copy(update={"mirror": moved}))
            # Not one of syncmsg's own codes: kept as the server's number all the same.
            assert caught.value.err_code == 10055
            assert mirror in str(caught.value)
        assert js.stream_info(mirror).config.mirror == StreamSource(name=origin)
    finally:
        for stream in (mirror, origin, other):
            js.delete_stream(stream)
