"""The API's values as pydantic models: nanoseconds, times, unknown fields, the spec's new
fields and their drift, the error table (no server needed)."""

from __future__ import annotations

import datetime as dt

import pytest

import syncmsg
from syncmsg._errors import map_api_error
from syncmsg.jetstream import (
    AckPolicy,
    ApiErrorCode,
    ConsumerConfig,
    ConsumerInfo,
    DeliverPolicy,
    Placement,
    PubAck,
    RawStreamMsg,
    Republish,
    StreamInfo,
    StreamSource,
    StreamSpec,
    SubjectTransform,
    drift,
)
from syncmsg.jetstream._publish import Expect, ttl_header

NS = 1_000_000_000

# A consumer as nats-server 2.15 reports it, plus what a newer server might add.
CONSUMER_INFO = {
    "type": "io.nats.jetstream.api.v1.consumer_info_response",
    "stream_name": "ORDERS",
    "name": "billing",
    "created": "2026-12-01T11:34:47.892617773Z",
    "config": {
        "durable_name": "billing",
        "deliver_policy": "all",
        "ack_policy": "explicit",
        "ack_wait": 30 * NS,
        "max_deliver": 6,
        "backoff": [NS, 10 * NS],
        "filter_subject": "orders.>",
        "replay_policy": "instant",
        "max_waiting": 512,
        "max_ack_pending": 1000,
        "num_replicas": 0,
        "metadata": {"_nats.ver": "2.15.1"},
        "some_future_option": {"x": 1},
    },
    "delivered": {"consumer_seq": 7, "stream_seq": 9, "last_active": "2026-12-01T11:35:00Z"},
    "ack_floor": {"consumer_seq": 5, "stream_seq": 6},
    "num_ack_pending": 2,
    "num_redelivered": 1,
    "num_waiting": 1,
    "num_pending": 40,
    "cluster": {"leader": "n1", "replicas": [{"name": "n2", "current": True, "active": 2 * NS}]},
    "ts": "2026-12-01T11:35:01.000000001Z",
    "a_field_from_2_16": [1, 2, 3],
}


def test_consumer_info_reads_nanoseconds_and_times_and_keeps_the_old_names() -> None:
    info = ConsumerInfo.from_api(CONSUMER_INFO)
    assert info.config.ack_wait == dt.timedelta(seconds=30)
    assert info.ack_wait == dt.timedelta(seconds=30)
    assert info.backoff == (dt.timedelta(seconds=1), dt.timedelta(seconds=10))
    assert info.created == dt.datetime(2026, 12, 1, 11, 34, 47, 892617, tzinfo=dt.timezone.utc)
    assert info.delivered.last_active == dt.datetime(2026, 12, 1, 11, 35, tzinfo=dt.timezone.utc)
    assert (info.stream, info.name, info.durable) == ("ORDERS", "billing", "billing")
    assert (info.delivered_stream_seq, info.delivered_consumer_seq) == (9, 7)
    assert (info.ack_floor_stream_seq, info.ack_floor_consumer_seq) == (6, 5)
    assert (info.max_deliver, info.max_ack_pending, info.num_pending) == (6, 1000, 40)
    assert info.filter_subject == "orders.>"
    assert info.cluster is not None and info.cluster.replicas[0].active == dt.timedelta(seconds=2)
    # Read as the API's JSON, as when these were dicts.
    assert info.config["ack_policy"] == "explicit"
    assert info.config.get("nothing such") is None
    assert info.cluster.get("leader") == "n1"
    assert info.raw is not CONSUMER_INFO and info.raw == CONSUMER_INFO
    # Unknown fields are kept, and written back.
    assert info.model_extra == {"type": CONSUMER_INFO["type"], "a_field_from_2_16": [1, 2, 3]}
    assert info.config.to_api()["some_future_option"] == {"x": 1}
    assert info.config.to_api()["backoff"] == [NS, 10 * NS]


def test_unknown_enum_values_from_a_server_are_kept_but_refused_from_you() -> None:
    config = ConsumerConfig.from_api(
        {"ack_policy": "flow_control", "deliver_policy": "by_magic", "replay_policy": "instant"}
    )
    assert config.ack_policy == "flow_control" and isinstance(config.ack_policy, AckPolicy)
    assert config.deliver_policy.value == "by_magic"
    assert config.to_api()["ack_policy"] == "flow_control"
    with pytest.raises(ValueError, match="is not one of"):
        ConsumerConfig(ack_policy="flow_control")
    with pytest.raises(ValueError, match="unknown field"):
        ConsumerConfig(ack_wiat=3)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="is not one of"):
        StreamSpec(name="A", storage="memroy")  # type: ignore[arg-type]
    assert StreamSpec.from_api({"name": "A", "storage": "tape"}).storage == "tape"


def test_consumer_config_takes_seconds_or_timedeltas_and_writes_nanoseconds() -> None:
    config = ConsumerConfig(
        durable_name="d",
        ack_wait=2.5,
        backoff=[1, dt.timedelta(milliseconds=1500)],
        inactive_threshold=dt.timedelta(minutes=1),
        filter_subjects="a.>",
        opt_start_time=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        deliver_policy="by_start_time",
    )
    api = config.to_api()
    assert api["ack_wait"] == 2_500_000_000
    assert api["backoff"] == [NS, 1_500_000_000]
    assert api["inactive_threshold"] == 60 * NS
    assert api["filter_subjects"] == ["a.>"]
    assert api["opt_start_time"] == "2026-01-02T03:04:05Z"
    assert api["deliver_policy"] == "by_start_time"
    assert "max_deliver" not in api  # unset: the server's default
    assert ConsumerConfig.from_api(api) == config
    with pytest.raises(ValueError):
        ConsumerConfig(ack_wait=-1)


def test_times_and_durations_the_server_writes() -> None:
    info = StreamInfo.from_api(
        {
            "config": {"name": "S", "max_age": 0, "duplicate_window": 120 * NS},
            "created": "2026-12-01T11:34:46.263499097Z",
            "state": {
                "messages": 3,
                "first_ts": "0001-01-01T00:00:00Z",  # Go's zero time: none
                "last_ts": "2026-12-01T11:34:46Z",
                "num_subjects": 2,
            },
            "mirror": {"name": "O", "lag": 3, "active": -1},
            "ts": "garbage",
        }
    )
    assert info.name == "S" and info.duplicate_window == dt.timedelta(minutes=2)
    assert info.config.max_age is None
    assert info.state.first_ts is None
    assert info.state.last_ts == dt.datetime(2026, 12, 1, 11, 34, 46, tzinfo=dt.timezone.utc)
    assert info.state.messages == 3 and info.state.num_subjects == 2
    assert info.mirror is not None and info.mirror.active is None  # -1: never active
    assert info.ts is None
    assert info.with_action("updated").raw == info.raw


def test_pub_ack_keeps_what_newer_servers_add() -> None:
    ack = PubAck.from_api({"stream": "C", "seq": 3, "val": "42", "batch": "b", "count": 2})
    assert ack == PubAck.from_api({"stream": "C", "seq": 3, "val": "42", "batch": "b", "count": 2})
    assert (ack.value, ack.batch_id, ack.batch_size) == (42, "b", 2)  # counters and batches
    newer = PubAck.from_api({"stream": "C", "seq": 3, "some_new_field": [1]})
    assert newer.model_extra == {"some_new_field": [1]} and newer.value is None
    assert PubAck(stream="C", seq=1) == PubAck(stream="C", seq=1, duplicate=False)


def test_stream_spec_new_fields_in_the_api_form() -> None:
    spec = StreamSpec(
        name="AGG",
        sources=[
            StreamSource(
                name="ORDERS",
                subject_transforms=[SubjectTransform(src="orders.>", dest="agg.orders.>")],
                opt_start_time=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
            ),
            StreamSource(name="REMOTE", filter_subject="x.>", domain="hub"),
        ],
        republish=Republish(dest="rep.>", headers_only=True),
        placement=Placement(tags=["ssd"]),
        allow_direct=True,
        discard="new",
        discard_new_per_subject=True,
        max_msgs_per_subject=3,
        compression="s2",
        allow_msg_ttl=True,
        allow_atomic=True,
        metadata={"team": "core"},
    )
    api = spec.to_api()
    assert api["sources"][0] == {
        "name": "ORDERS",
        "opt_start_time": "2026-01-01T00:00:00Z",
        "subject_transforms": [{"src": "orders.>", "dest": "agg.orders.>"}],
    }
    assert api["sources"][1] == {
        "name": "REMOTE",
        "filter_subject": "x.>",
        "external": {"api": "$JS.hub.API", "deliver": ""},
    }
    assert api["republish"] == {"src": ">", "dest": "rep.>", "headers_only": True}
    assert api["placement"] == {"tags": ["ssd"]}
    assert (api["allow_direct"], api["discard_new_per_subject"], api["allow_atomic"]) == (
        True,
        True,
        True,
    )
    assert api["compression"] == "s2" and api["max_msgs_per_subject"] == 3
    for unset in ("mirror_direct", "allow_msg_counter", "subject_delete_marker_ttl", "mirror"):
        assert unset not in api  # left to the server, and never drift
    read_back = StreamSpec.from_api(api)
    assert read_back.sources[1].external is not None  # the domain became its API prefix
    assert drift(api, read_back.to_api()) == {}


def test_subject_delete_markers_imply_ttls_and_rollups() -> None:
    spec = StreamSpec(name="K", subject_delete_marker_ttl=dt.timedelta(minutes=5))
    assert spec.allow_msg_ttl is True and spec.allow_rollup is True
    assert spec.to_api()["subject_delete_marker_ttl"] == 300 * NS
    assert StreamSpec(name="K", allow_rollup_hdrs=True).allow_rollup is True
    for bad in (
        {"allow_msg_ttl": False},
        {"allow_rollup": False},
        {"deny_purge": True},
        {"subject_delete_marker_ttl": 0.5},
    ):
        with pytest.raises(ValueError):
            StreamSpec(name="K", **{"subject_delete_marker_ttl": 60, **bad})
    with pytest.raises(ValueError, match="mirror"):
        StreamSpec(name="M", subjects=["m.>"], mirror=StreamSource(name="O"))
    with pytest.raises(ValueError):
        StreamSource(name="O", filter_subject="a", subject_transforms=[{"src": "a", "dest": "b"}])


def test_drift_compares_sources_and_mirrors_by_meaning() -> None:
    wanted = StreamSpec(
        name="A",
        sources=[StreamSource(name="X"), StreamSource(name="Y", filter_subject="y.>")],
        mirror_direct=True,
    ).to_api()
    server = dict(wanted)
    server["sources"] = [
        {"name": "Y", "filter_subject": "y.>", "opt_start_time": None},
        {"name": "X", "subject_transforms": []},
    ]
    server["mirror_direct"] = False  # the server decides it from the origin
    server["allow_msg_ttl"] = False  # omitempty fields it adds
    assert drift(wanted, server) == {}
    server["sources"] = [{"name": "X"}]
    assert set(drift(wanted, server)) == {"sources"}


def test_raw_stream_msg_reads_both_forms() -> None:
    stored = RawStreamMsg.from_api(
        "S",
        {
            "subject": "a.b",
            "seq": 4,
            "hdrs": "TkFUUy8xLjANCk5hdHMtVFRMOiAyDQoNCg==",  # NATS/1.0 Nats-TTL: 2
            "data": "eyJuIjogMX0=",  # {"n": 1}
            "time": "2026-12-01T11:34:46.269295952Z",
        },
    )
    direct = RawStreamMsg.from_direct(
        b'{"n": 1}',
        {
            "Nats-TTL": "2",
            "Nats-Stream": "S",
            "Nats-Subject": "a.b",
            "Nats-Sequence": "4",
            "Nats-Time-Stamp": "2026-12-01T11:34:46.269295952Z",
        },
    )
    assert stored == direct
    assert stored.headers == {"Nats-TTL": "2"}
    assert stored.json() == {"n": 1} and stored.sequence == 4 and stored.header == stored.headers
    assert stored.text() == '{"n": 1}'


def test_the_error_table() -> None:
    assert ApiErrorCode.STREAM_NOT_FOUND == 10059
    assert ApiErrorCode(10037).error_class is syncmsg.MessageNotFoundError
    error = map_api_error({"code": 400, "err_code": 10071, "description": "wrong last sequence: 4"})
    assert isinstance(error, syncmsg.WrongLastSequenceError)
    assert error.err_code is ApiErrorCode.WRONG_LAST_SEQUENCE
    unknown = map_api_error({"code": 400, "err_code": 99999, "description": "new"})
    assert type(unknown) is syncmsg.JetStreamError and unknown.err_code == 99999
    for code in ApiErrorCode:
        assert issubclass(code.error_class, syncmsg.JetStreamError)


def test_publish_options_are_checked_before_the_wire() -> None:
    assert ttl_header(5) == "5"
    assert ttl_header(dt.timedelta(minutes=2)) == "120"
    assert ttl_header(1.5) == "1500ms"
    for bad in (0.5, 0, -1, float("nan")):
        with pytest.raises(ValueError):
            ttl_header(bad)
    assert Expect(stream="S", last_subject_seq=0).headers() == {
        "Nats-Expected-Stream": "S",
        "Nats-Expected-Last-Subject-Sequence": "0",
    }
    for bad_expect in ({"last_seq": -1}, {"last_subject_seq": True}, {"last_msg_id": ""}):
        with pytest.raises(ValueError):
            Expect(**bad_expect)  # type: ignore[arg-type]
    assert DeliverPolicy.of("last_per_subject") is DeliverPolicy.LAST_PER_SUBJECT
