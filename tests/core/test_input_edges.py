"""Edge cases of the codec and subject checks: refused with a syncmsg error, before the wire."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, computed_field

import syncmsg
from syncmsg._codec import encode_headers, encode_payload
from syncmsg._subjects import (
    MAX_CONTROL_LINE,
    MAX_NAMES_BYTES,
    check_publish,
    check_publish_subject,
    check_queue,
    check_reply_subject,
    check_request,
    check_subscribe_subject,
    check_subscription,
    check_token,
)

pytestmark = pytest.mark.timeout(30)

NAN, INF = float("nan"), float("inf")


class Reading(BaseModel):
    value: float
    note: str | None = None
    history: list[float] = []
    extra: dict[str, Any] = {}


class Constants(BaseModel):
    model_config = ConfigDict(ser_json_inf_nan="constants")
    value: float = 1.0
    label: str = "NaN and Infinity, as text"


class Strings(BaseModel):
    model_config = ConfigDict(ser_json_inf_nan="strings")
    value: float = 1.0


class Computed(BaseModel):
    base: float = 1.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ratio(self) -> float:
        return math.inf if self.base > 1 else 1.0


@pytest.mark.parametrize(
    "data",
    [
        {"v": NAN},
        {"v": INF},
        {"v": -INF},
        [1.0, NAN],
        {"a": [{"b": {"c": INF}}]},
        [[[[-INF]]]],
        Reading(value=NAN),
        Reading(value=1.0, history=[1.0, INF]),
        Reading(value=1.0, extra={"deep": [NAN]}),
        Constants(value=NAN),
        Computed(base=2.0),
    ],
    ids=lambda d: type(d).__name__,
)
def test_nan_and_infinity_are_refused(data: Any) -> None:
    with pytest.raises(syncmsg.PayloadError, match="NaN or Infinity"):
        encode_payload(data)


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        ({"v": 1.5, "n": None}, b'{"v":1.5,"n":null}'),
        (Reading(value=2.0), b'{"value":2.0,"note":null,"history":[],"extra":{}}'),
        (Constants(), b'{"value":1.0,"label":"NaN and Infinity, as text"}'),
        (Strings(value=NAN), b'{"value":"NaN"}'),  # the model asks for strings: valid JSON
        ({"text": "NaN"}, b'{"text":"NaN"}'),
        (Computed(), b'{"base":1.0,"ratio":1.0}'),
        (None, b""),
        ("héllo", "héllo".encode()),
        (memoryview(b"abc"), b"abc"),
    ],
)
def test_finite_values_and_none_encode(data: Any, wire: bytes) -> None:
    assert encode_payload(data) == wire


def test_none_is_an_empty_payload_not_json_null() -> None:
    assert encode_payload(None) == b""
    assert encode_payload(b"null") == b"null"


@pytest.mark.parametrize(
    "data",
    ["a\ud800b", {"k": "\udfff"}, ["\ud83d"], {"\ud800": 1}, Reading(value=1.0, note="\ud800")],
    ids=["str", "dict-value", "list", "dict-key", "model"],
)
def test_lone_surrogates_in_payloads_are_payload_errors(data: Any) -> None:
    with pytest.raises(syncmsg.PayloadError):
        encode_payload(data)


def test_unserialisable_payloads_are_payload_errors() -> None:
    looped: list[Any] = []
    looped.append(looped)
    deep: list[Any] = []
    for _ in range(50_000):
        deep = [deep]
    for data in (looped, deep, {(1, 2): "tuple key"}, {"s": {1, 2}}, 1.5, NAN, object()):
        with pytest.raises(syncmsg.PayloadError):
            encode_payload(data)


@pytest.mark.parametrize(
    "key",
    ["K\n", "K\r", "K\r\n", "\nK", "K:", "K V", "", "Ké", "K\ud800", "K\x00", "K\t"],
)
def test_bad_header_keys_are_refused(key: str) -> None:
    with pytest.raises(syncmsg.InvalidHeaderError):
        encode_headers({key: "v"})


@pytest.mark.parametrize(
    "value", ["a\nb", "a\r", "\r\nX-Forged: 1", "a\x00b", "a\x1bb", "a\x7f", "a\ud800"]
)
def test_bad_header_values_are_refused(value: str) -> None:
    with pytest.raises(syncmsg.InvalidHeaderError):
        encode_headers({"K": value})
    with pytest.raises(syncmsg.InvalidHeaderError):
        encode_headers({"K": ["fine", value]})


def test_good_header_values_are_sent() -> None:
    block = encode_headers({"K": "tab\there é ✓", "Multi": ["1", "2"], "Empty": ""})
    assert block == (
        "NATS/1.0\r\nK: tab\there é ✓\r\nMulti: 1\r\nMulti: 2\r\nEmpty: \r\n\r\n".encode()
    )


# ------------------------------------------------------------------ subjects


def test_the_budget_fits_the_server_control_line() -> None:
    # PUB <subject> <reply> <size>: the largest sizes a 64 MiB max_payload allows.
    line = f"HPUB {'s' * 2000} {'r' * (MAX_NAMES_BYTES - 2000)} 67108864 67108864\r\n"
    assert len(line.encode()) <= MAX_CONTROL_LINE


@pytest.mark.parametrize(
    "check", [check_publish_subject, check_reply_subject, check_subscribe_subject, check_token]
)
def test_a_name_at_the_limit_passes_and_one_byte_more_does_not(check: Any) -> None:
    assert check("a" * MAX_NAMES_BYTES) == "a" * MAX_NAMES_BYTES
    with pytest.raises(syncmsg.InvalidSubjectError, match="control line"):
        check("a" * (MAX_NAMES_BYTES + 1))
    with pytest.raises(syncmsg.InvalidSubjectError, match="control line"):
        check("é" * (MAX_NAMES_BYTES // 2 + 1))  # two bytes each: bytes count, not characters


def test_queue_groups_are_limited_too() -> None:
    assert check_queue("q" * MAX_NAMES_BYTES) == "q" * MAX_NAMES_BYTES
    with pytest.raises(syncmsg.InvalidSubjectError):
        check_queue("q" * (MAX_NAMES_BYTES + 1))


def test_subject_and_reply_are_limited_together() -> None:
    half = MAX_NAMES_BYTES // 2
    check_publish("s" * half, "r" * half)
    with pytest.raises(syncmsg.InvalidSubjectError, match="together"):
        check_publish("s" * half, "r" * (half + 1))
    check_request("s" * (MAX_NAMES_BYTES - 60), 60)
    with pytest.raises(syncmsg.InvalidSubjectError, match="together"):
        check_request("s" * (MAX_NAMES_BYTES - 60), 61)


def test_subject_and_queue_are_limited_together() -> None:
    half = MAX_NAMES_BYTES // 2
    assert check_subscription("s.>", None) == ""
    assert check_subscription("s" * half, "q" * half) == "q" * half
    with pytest.raises(syncmsg.InvalidSubjectError, match="together"):
        check_subscription("s" * half, "q" * (half + 1))


def test_long_names_are_shortened_in_messages() -> None:
    with pytest.raises(syncmsg.InvalidSubjectError) as info:
        check_publish_subject("x" * 10_000)
    assert len(str(info.value)) < 300 and "10000 characters" in str(info.value)


@pytest.mark.parametrize(
    "check", [check_publish_subject, check_subscribe_subject, check_queue, check_token]
)
def test_lone_surrogates_in_names_are_invalid_subjects(check: Any) -> None:
    with pytest.raises(syncmsg.InvalidSubjectError, match="UTF-8"):
        check("a\ud800")


@pytest.mark.parametrize("subject", [["a"], {"a": 1}, b"a", 1, None])
def test_names_that_are_not_str_are_invalid_subjects(subject: Any) -> None:
    with pytest.raises(syncmsg.InvalidSubjectError):
        check_publish(subject)
    with pytest.raises(syncmsg.InvalidSubjectError):
        check_publish("ok", subject if subject else ["x"])
    with pytest.raises(syncmsg.InvalidSubjectError):
        check_subscribe_subject(subject)


def test_queue_group_must_be_a_str() -> None:
    assert check_queue(None) == "" and check_queue("") == ""
    for queue in (0, False, ["q"], b"q"):
        with pytest.raises(syncmsg.InvalidSubjectError):
            check_queue(queue)  # type: ignore[arg-type]


def test_non_ascii_subjects_are_fine() -> None:
    assert check_publish_subject("orders.café.✓") == "orders.café.✓"
