"""Timestamps are written as JavaScript's toISOString() writes them and read as zod reads them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncmsg.events import format_timestamp, parse_timestamp, utc_now

UTC = timezone.utc


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC), "2026-01-02T03:04:05.678Z"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05.000Z"),
        # Microseconds are truncated, not rounded: a JS Date holds whole milliseconds.
        (datetime(2026, 1, 2, 3, 4, 5, 678999, tzinfo=UTC), "2026-01-02T03:04:05.678Z"),
        (datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=UTC), "2026-01-02T03:04:05.999Z"),
        (datetime(2026, 1, 2, 3, 4, 5, 1, tzinfo=UTC), "2026-01-02T03:04:05.000Z"),
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00.000Z"),
        (datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC), "0999-12-31T23:59:59.000Z"),
        (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "9999-12-31T23:59:59.999Z"),
        (
            datetime(2026, 1, 2, 4, 4, 5, 678000, tzinfo=timezone(timedelta(hours=1))),
            "2026-01-02T03:04:05.678Z",
        ),
        (
            datetime(2026, 1, 1, 22, 0, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
            "2026-01-02T03:30:00.000Z",
        ),
    ],
)
def test_format_like_to_iso_string(value: datetime, text: str) -> None:
    assert format_timestamp(value) == text


def test_format_refuses_naive() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2026, 1, 2))


def test_format_refuses_overflow_when_converting() -> None:
    late = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-2)))
    with pytest.raises(ValueError, match="out of range"):
        format_timestamp(late)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2026-01-02T03:04:05.678Z", datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)),
        ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05.6Z", datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)),
        ("2026-01-02T03:04:05.67Z", datetime(2026, 1, 2, 3, 4, 5, 670000, tzinfo=UTC)),
        ("2026-01-02T03:04:05.6789Z", datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)),
        (
            "2026-01-02T03:04:05.000000000000000001Z",
            datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        ),
        ("2024-02-29T23:59:59.999Z", datetime(2024, 2, 29, 23, 59, 59, 999000, tzinfo=UTC)),
    ],
)
def test_parse_strict(text: str, value: datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == value
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-02T03:04:05.678+00:00",
        "2026-01-02T03:04:05.678-00:00",
        "2026-01-02T03:04:05.678",
        "2026-01-02t03:04:05.678Z",
        "2026-01-02T03:04:05.678z",
        "2026-01-02 03:04:05.678Z",
        "2026-1-2T03:04:05Z",
        "2026-01-02T3:04:05Z",
        "2026-01-02T03:04Z",
        "2026-01-02T03:04:05.Z",
        "20260102T030405Z",
        " 2026-01-02T03:04:05Z",
        "2026-01-02T03:04:05Z ",
        "2026-01-02T03:04:05Z\n",
        "0000-01-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-01-00T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-01-02T23:60:00Z",
        "2026-01-02T23:59:60Z",
        "",
    ],
)
def test_parse_strict_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        parse_timestamp(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2026-01-02T04:04:05.678+01:00", datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)),
        ("2026-01-02T04:04:05.678+0100", datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)),
        ("2026-01-02T04:04:05.678+01", datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)),
        ("2026-01-01T22:34:05-04:30", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02 03:04:05z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05.678Z", datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)),
    ],
)
def test_parse_lenient(text: str, value: datetime) -> None:
    assert parse_timestamp(text, strict=False) == value


@pytest.mark.parametrize(
    "text",
    ["2026-01-02T03:04:05", "2026-01-02T03:04:05+24:00", "2026-01-02T03:04:05+01:60", "x"],
)
def test_parse_lenient_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        parse_timestamp(text, strict=False)


def test_parse_refuses_non_strings() -> None:
    with pytest.raises(ValueError, match="string"):
        parse_timestamp(1767323045678)  # type: ignore[arg-type]


def test_utc_now_has_millisecond_precision() -> None:
    now = utc_now()
    assert now.tzinfo is UTC
    assert now.microsecond % 1000 == 0


@given(
    st.datetimes(
        timezones=st.just(UTC), min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)
    )
)
def test_format_parse_round_trip(value: datetime) -> None:
    text = format_timestamp(value)
    assert len(text) == 24
    assert text.endswith("Z")
    parsed = parse_timestamp(text)
    assert parsed == value.replace(microsecond=value.microsecond // 1000 * 1000)
    assert format_timestamp(parsed) == text


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.builds(
            timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
        ),
    )
)
def test_offsets_are_normalised_to_utc(value: datetime) -> None:
    text = format_timestamp(value)
    utc = value.astimezone(UTC)
    assert parse_timestamp(text) == utc.replace(microsecond=utc.microsecond // 1000 * 1000)
