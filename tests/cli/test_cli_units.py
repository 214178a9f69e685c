"""syncmsg.cli._units: sizes, durations and counts, parsed and printed (no server needed)."""

from __future__ import annotations

import datetime as dt

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncmsg.cli._units import (
    COUNT,
    DURATION,
    SECONDS,
    SIZE,
    UnitError,
    format_byte_rate,
    format_count,
    format_duration,
    format_nanos,
    format_rate,
    format_size,
    nanos_to_timedelta,
    parse_count,
    parse_duration,
    parse_size,
)

KIB, MIB, GIB, TIB = 1 << 10, 1 << 20, 1 << 30, 1 << 40


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("1024", 1024),
        ("512B", 512),
        ("1K", KIB),
        ("1k", KIB),
        ("1KB", KIB),
        ("1KiB", KIB),
        ("512k", 512 * KIB),
        ("10MB", 10 * MIB),
        ("512MB", 512 * MIB),
        ("1.5M", 3 * MIB // 2),
        ("1G", GIB),
        ("1GiB", GIB),
        ("1 GiB", GIB),
        (" 2gb ", 2 * GIB),
        ("1T", TIB),
        ("1PiB", 1 << 50),
        ("1,024", 1024),
        (".5K", 512),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["", "x", "1X", "1GG", "-1", "1.2.3G", "G", "1 G B"])
def test_parse_size_rejects(bad: str) -> None:
    with pytest.raises(UnitError, match="not a size"):
        parse_size(bad)


def test_parse_size_takes_ints_but_not_negatives_or_bools() -> None:
    assert parse_size(4096) == 4096
    with pytest.raises(UnitError):
        parse_size(-1)
    with pytest.raises(UnitError):
        parse_size(True)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (512, "512 B"),
        (1023, "1023 B"),
        (KIB, "1 KiB"),
        (1536, "1.5 KiB"),
        (GIB, "1 GiB"),
        (1_500_000_000, "1.4 GiB"),
        (15 * MIB + MIB // 2, "15.5 MiB"),
        (511 * KIB + 100, "511 KiB"),
        (None, "unlimited"),
        (-1, "unlimited"),
    ],
)
def test_format_size(size: int | None, text: str) -> None:
    assert format_size(size) == text


@given(st.integers(min_value=0, max_value=1 << 60))
def test_sizes_round_trip_within_rounding(size: int) -> None:
    back = parse_size(format_size(size))
    assert abs(back - size) <= max(size * 0.005, 0.5)


@given(st.integers(min_value=0, max_value=1023), st.sampled_from([1, KIB, MIB, GIB, TIB]))
def test_exact_multiples_round_trip_exactly(amount: int, unit: int) -> None:
    assert parse_size(format_size(amount * unit)) == amount * unit


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("1.5", 1.5),
        ("500ms", 0.5),
        ("250us", 0.00025),
        ("250µs", 0.00025),
        ("1m", 60),
        ("1h30m", 5400),
        ("1H30M", 5400),
        ("1h 30m", 5400),
        ("1.5h", 5400),
        ("7d", 7 * 86400),
        ("30d", 30 * 86400),
        ("2w", 14 * 86400),
        ("1y", 365 * 86400),
        ("1d2h3m4s", 86400 + 7200 + 180 + 4),
        ("1000000ns", 0.001),
        ("0s", 0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "x", "1x", "7days", "1h30", "h", "-1s", "1.2.3s", "1mo"])
def test_parse_duration_rejects(bad: str) -> None:
    with pytest.raises(UnitError, match="not a duration"):
        parse_duration(bad)


def test_parse_duration_other_inputs() -> None:
    assert parse_duration(2) == dt.timedelta(seconds=2)
    assert parse_duration(0.25) == dt.timedelta(milliseconds=250)
    assert parse_duration(dt.timedelta(hours=1)) == dt.timedelta(hours=1)
    for bad in (-1, float("nan"), float("inf"), True, dt.timedelta(seconds=-1)):
        with pytest.raises(UnitError):
            parse_duration(bad)  # type: ignore[arg-type]
    with pytest.raises(UnitError, match="too long"):
        parse_duration("99999999999d")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (dt.timedelta(0), "0s"),
        (dt.timedelta(microseconds=850), "850µs"),
        (dt.timedelta(milliseconds=8), "8ms"),
        (dt.timedelta(microseconds=8250), "8.25ms"),
        (dt.timedelta(milliseconds=250), "250ms"),
        (1.5, "1.5s"),
        (59.9, "59.9s"),
        (59.999, "1m"),
        (dt.timedelta(minutes=1), "1m"),
        (dt.timedelta(hours=1, minutes=30), "1h30m"),
        (dt.timedelta(days=7), "7d"),
        (dt.timedelta(days=1, hours=2, minutes=3, seconds=4), "1d2h3m4s"),
        (dt.timedelta(days=400), "400d"),
        (-2.0, "-2s"),
        (None, "unlimited"),
    ],
)
def test_format_duration(value: dt.timedelta | float | None, text: str) -> None:
    assert format_duration(value) == text


@given(st.integers(min_value=60, max_value=10**9))
def test_whole_second_durations_round_trip_exactly(seconds: int) -> None:
    value = dt.timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


@given(st.integers(min_value=1, max_value=59_999_999))
def test_short_durations_round_trip_within_rounding(micros: int) -> None:
    value = dt.timedelta(microseconds=micros)
    back = parse_duration(format_duration(value))
    assert abs(back - value) <= max(value * 0.005, dt.timedelta(microseconds=1))


def test_nanos() -> None:
    assert format_nanos(604_800_000_000_000) == "7d"
    assert format_nanos(120_000_000_000) == "2m"
    assert format_nanos(500) == "500ns"
    assert format_nanos(0) == "0s"
    assert format_nanos(0, zero="unlimited") == "unlimited"
    assert format_nanos(None) == "unlimited"
    assert nanos_to_timedelta(1_500_000) == dt.timedelta(microseconds=1500)
    assert nanos_to_timedelta(None) is None


@pytest.mark.parametrize(
    ("text", "count"),
    [("0", 0), ("1000", 1000), ("1,000", 1000), ("1_000", 1000), ("10k", 10_000),
     ("200K", 200_000), ("1.5M", 1_500_000), ("2m", 2_000_000), ("1G", 10**9)],
)  # fmt: skip
def test_parse_count(text: str, count: int) -> None:
    assert parse_count(text) == count


@pytest.mark.parametrize("bad", ["", "x", "1.5", "-3", "10kb", "1T"])
def test_parse_count_rejects(bad: str) -> None:
    with pytest.raises(UnitError):
        parse_count(bad)


def test_parse_count_ints() -> None:
    assert parse_count(7) == 7
    for bad in (-1, False):
        with pytest.raises(UnitError):
            parse_count(bad)


@given(st.integers(min_value=0, max_value=10**15))
def test_counts_round_trip(count: int) -> None:
    assert parse_count(format_count(count)) == count


def test_rates() -> None:
    assert format_rate(12345.6) == "12,346 msgs/s"
    assert format_rate(2.54, "reqs") == "2.5 reqs/s"
    assert format_byte_rate(1.5 * MIB) == "1.5 MiB/s"
    assert format_byte_rate(-1) == "0 B/s"


def test_click_types() -> None:
    @click.command()
    @click.option("--size", type=SIZE)
    @click.option("--age", type=DURATION)
    @click.option("--timeout", type=SECONDS)
    @click.option("--count", type=COUNT)
    def command(size: int, age: dt.timedelta, timeout: float, count: int) -> None:
        click.echo(f"{size} {age.total_seconds()} {timeout} {count}")

    runner_args = ["--size", "1GiB", "--age", "7d", "--timeout", "500ms", "--count", "10k"]
    result = command.main(runner_args, standalone_mode=False)
    assert result is None
    for args, words in (
        (["--size", "1X"], "not a size"),
        (["--age", "soon"], "not a duration"),
        (["--timeout", "0s"], "more than zero"),
        (["--count", "0"], "at least 1"),
    ):
        with pytest.raises(click.BadParameter, match=words):
            command.main(args, standalone_mode=False)
    assert SIZE.convert(5, None, None) == 5  # a default given as a value is kept
    assert SIZE.get_metavar(click.Option(["--x"]), None) == "SIZE"
    assert DURATION.get_metavar(click.Option(["--x"]), None) == "DURATION"
    assert COUNT.get_metavar(click.Option(["--x"]), None) == "N"
