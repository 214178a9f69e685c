"""Human units: parse what people type, format what they read. Sizes, durations, counts.

One module for every command, so that a size or a duration reads the same in a flag, in a
stream file and in a table::

    parse_size("1GiB") == parse_size("1G") == parse_size("1GB") == 1 << 30
    format_size(1 << 30) == "1 GiB"
    parse_duration("1h30m") == timedelta(hours=1, minutes=30)
    format_duration(timedelta(days=7)) == "7d"
    parse_count("10k") == 10_000;  format_count(10_000) == "10,000"

* **Sizes** are powers of 1024 however they are spelled (``K``, ``KB`` and ``KiB`` are all
  1024), as nats-server and the ``nats`` CLI read them. Units: ``B``, ``K``, ``M``, ``G``,
  ``T``, ``P``, each also with ``B`` or ``iB``, in any case; decimals are allowed (``1.5G``);
  a bare number is bytes. Sizes print in IEC units (``512 B``, ``1.5 MiB``, ``1 GiB``).
* **Durations** are Go's units plus days, weeks and years (365 days), combinable and in any
  case: ``ns``, ``us`` (or ``µs``), ``ms``, ``s``, ``m``, ``h``, ``d``, ``w``, ``y``:
  ``90s``, ``1h30m``, ``7d``, ``500ms``, ``1.5h``. A bare number is seconds. Durations print
  the same way (``250ms``, ``1.5s``, ``1h30m``, ``7d``), so what is printed can be typed
  back. Python's :class:`~datetime.timedelta` holds microseconds: ``ns`` values round to them.
* **Counts** take ``k``, ``M``, ``G`` (powers of 1000), ``,`` and ``_`` separators:
  ``200k``, ``1.5M``, ``1,000``. They print with thousands separators.

Parsers raise :class:`UnitError` (a :class:`ValueError`) with an example of what works.
:data:`SIZE`, :data:`DURATION`, :data:`SECONDS` and :data:`COUNT` are the matching click
parameter types, for flags.

Threading: pure functions and stateless parameter types; any thread.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    _ParamType = click.ParamType[Any]
else:  # click's ParamType is generic for type checkers only in recent versions
    _ParamType = click.ParamType

__all__ = [
    "COUNT",
    "DURATION",
    "SECONDS",
    "SIZE",
    "CountType",
    "DurationType",
    "SizeType",
    "UnitError",
    "format_byte_rate",
    "format_count",
    "format_duration",
    "format_nanos",
    "format_rate",
    "format_size",
    "nanos_to_timedelta",
    "parse_count",
    "parse_duration",
    "parse_size",
]


class UnitError(ValueError):
    """Text that is not a size, a duration or a count."""


# ============================================================================ sizes

_KIB = 1024
#: IEC names and factors, largest first, for printing.
_IEC = (("PiB", _KIB**5), ("TiB", _KIB**4), ("GiB", _KIB**3), ("MiB", _KIB**2), ("KiB", _KIB))
#: Every accepted spelling (lower case) and its factor.
_SIZE_UNITS = {"": 1, "b": 1}
for _power, _letter in enumerate("kmgtp", start=1):
    for _spelling in (_letter, f"{_letter}b", f"{_letter}i", f"{_letter}ib"):
        _SIZE_UNITS[_spelling] = _KIB**_power

_NUMBER = r"(\d[\d_,]*(?:\.\d*)?|\.\d+)"
_SIZE = re.compile(rf"\s*{_NUMBER}\s*([a-zA-Z]*)\s*")


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text.replace("_", "").replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the patterns only let numbers through
        raise UnitError(f"not a number: {text!r}") from None


def parse_size(text: str | int) -> int:
    """Bytes in ``text``: ``"1G"``, ``"1GiB"``, ``"512MB"``, ``"1.5k"``, ``"1024"``.

    Every unit is a power of 1024 (``1KB == 1KiB == 1024``). An int is taken as bytes.
    Raises :class:`UnitError`.
    """
    if isinstance(text, bool):
        raise UnitError(f"not a size: {text!r} (e.g. 512MiB, 1G)")
    if isinstance(text, int):
        if text < 0:
            raise UnitError(f"a size cannot be negative: {text}")
        return text
    match = _SIZE.fullmatch(text)
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise UnitError(f"not a size: {text!r} (e.g. 512MiB, 1G, 64KB, 1024)")
    value = _decimal(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    return int(value.to_integral_value())


def _short(value: float) -> str:
    """Three significant digits without an exponent or trailing zeros: 1.5, 14.6, 146."""
    if value >= 100:
        return f"{value:.0f}"
    text = f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    return text.rstrip("0").rstrip(".")


def format_size(size: int | None, *, unlimited: str = "unlimited") -> str:
    """``1073741824`` → ``"1 GiB"``; ``1536`` → ``"1.5 KiB"``; ``None`` or negative → ``unlimited``.

    Exact multiples print as integers; others with three significant digits.
    """
    if size is None or size < 0:
        return unlimited
    for unit, factor in _IEC:
        if size >= factor:
            if size % factor == 0:
                return f"{size // factor} {unit}"
            return f"{_short(size / factor)} {unit}"
    return f"{size} B"


def format_byte_rate(bytes_per_second: float) -> str:
    """``1572864.0`` → ``"1.5 MiB/s"``."""
    return f"{format_size(round(max(bytes_per_second, 0.0)))}/s"


# ============================================================================ durations

_DURATION_UNITS = {
    "ns": Decimal("1e-9"),
    "us": Decimal("1e-6"),
    "µs": Decimal("1e-6"),  # micro sign
    "μs": Decimal("1e-6"),  # Greek mu
    "ms": Decimal("1e-3"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
    "d": Decimal(86400),
    "w": Decimal(7 * 86400),
    "y": Decimal(365 * 86400),
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ns|us|µs|μs|ms|s|m|h|d|w|y)")
_BARE_SECONDS = re.compile(rf"\s*{_NUMBER}\s*")
_DURATION_EXAMPLES = "e.g. 90s, 1h30m, 7d, 500ms"
#: The largest duration a timedelta holds, in seconds.
_MAX_SECONDS = Decimal(dt.timedelta.max.total_seconds())


def parse_duration(text: str | float | dt.timedelta) -> dt.timedelta:
    """The duration in ``text``: ``"90s"``, ``"1h30m"``, ``"7d"``, ``"500ms"``, ``"2w"``.

    A bare number (or an int or float) is seconds; a timedelta is returned as it is.
    Raises :class:`UnitError` for anything else, and for negative durations.
    """
    if isinstance(text, dt.timedelta):
        if text < dt.timedelta(0):
            raise UnitError(f"a duration cannot be negative: {text}")
        return text
    if isinstance(text, bool):
        raise UnitError(f"not a duration: {text!r} ({_DURATION_EXAMPLES})")
    if isinstance(text, int | float):
        if not math.isfinite(text) or text < 0:
            raise UnitError(f"not a duration: {text!r} ({_DURATION_EXAMPLES})")
        seconds = Decimal(repr(float(text)))
    else:
        seconds = _parse_duration_text(text)
    if seconds > _MAX_SECONDS:
        raise UnitError(f"too long a duration: {text!r}")
    micros = (seconds * 1_000_000).to_integral_value()
    return dt.timedelta(microseconds=int(micros))


def _parse_duration_text(text: str) -> Decimal:
    bare = _BARE_SECONDS.fullmatch(text)
    if bare:
        return _decimal(bare.group(1))
    compact = text.strip().lower().replace(" ", "")
    position = 0
    total = Decimal(0)
    for part in _DURATION_PART.finditer(compact):
        if part.start() != position:
            break
        total += Decimal(part.group(1)) * _DURATION_UNITS[part.group(2)]
        position = part.end()
    if not compact or position != len(compact):
        raise UnitError(f"not a duration: {text!r} ({_DURATION_EXAMPLES})")
    return total


def format_duration(value: dt.timedelta | float | None, *, none: str = "unlimited") -> str:
    """A duration as it would be typed: ``"250ms"``, ``"1.5s"``, ``"1h30m"``, ``"7d"``.

    Below a minute it keeps three significant digits; from a minute on it is whole days,
    hours, minutes and seconds (``"1d2h3m4s"``). Floats are seconds; ``None`` → ``none``.
    """
    if value is None:
        return none
    if isinstance(value, dt.timedelta):
        micros = value // dt.timedelta(microseconds=1)
    else:
        micros = round(value * 1_000_000)
    if micros < 0:
        return "-" + format_duration(dt.timedelta(microseconds=-micros))
    if micros == 0:
        return "0s"
    if micros < 1000:
        return f"{micros}µs"
    if micros < 1_000_000:
        return f"{_short(micros / 1000)}ms"
    if micros < 59_995_000:  # what rounds to 60.0s prints as 1m
        return f"{_short(micros / 1_000_000)}s"
    seconds = round(micros / 1_000_000)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


def nanos_to_timedelta(nanos: int | None) -> dt.timedelta | None:
    """A JetStream API duration (integer nanoseconds) as a timedelta; ``None`` stays None."""
    if nanos is None:
        return None
    return dt.timedelta(microseconds=nanos / 1000)


def format_nanos(nanos: int | None, *, none: str = "unlimited", zero: str | None = None) -> str:
    """A JetStream API duration in nanoseconds, formatted: ``604800000000000`` → ``"7d"``.

    ``None`` prints as ``none``; ``0`` as ``zero`` when given (the API's "no limit").
    """
    if nanos is None:
        return none
    if nanos == 0 and zero is not None:
        return zero
    if 0 < abs(nanos) < 1000:
        return f"{nanos}ns"
    return format_duration(nanos_to_timedelta(nanos), none=none)


# ============================================================================ counts

_COUNT_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3}
_COUNT = re.compile(rf"\s*{_NUMBER}\s*([kKmMgG]?)\s*")


def parse_count(text: str | int) -> int:
    """A whole number of things: ``"200000"``, ``"200k"``, ``"1.5M"``, ``"1,000"``, ``"1_000"``.

    ``k``, ``M``, ``G`` are powers of 1000 (these are messages, not bytes). Raises
    :class:`UnitError` for fractions (``"1.5"``), negatives and anything else.
    """
    if isinstance(text, bool):
        raise UnitError(f"not a count: {text!r} (e.g. 1000, 10k, 1.5M)")
    if isinstance(text, int):
        if text < 0:
            raise UnitError(f"a count cannot be negative: {text}")
        return text
    match = _COUNT.fullmatch(text)
    if not match:
        raise UnitError(f"not a count: {text!r} (e.g. 1000, 10k, 1.5M)")
    value = _decimal(match.group(1)) * _COUNT_UNITS[match.group(2).lower()]
    if value != value.to_integral_value():
        raise UnitError(f"not a whole number: {text!r}")
    return int(value)


def format_count(count: int) -> str:
    """``1234567`` → ``"1,234,567"``."""
    return f"{count:,}"


def format_rate(per_second: float, unit: str = "msgs") -> str:
    """``12345.6`` → ``"12,346 msgs/s"``; below 10, one decimal (``"2.5 msgs/s"``)."""
    if per_second < 10:
        return f"{per_second:.1f} {unit}/s"
    return f"{round(per_second):,} {unit}/s"


# ============================================================================ click types


class _UnitType(_ParamType):
    """Converts a flag's text with one of the parsers above; errors name the flag."""

    def _parse(self, value: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value  # already converted (a default given as a value)
        try:
            return self._parse(value)
        except UnitError as exc:
            self.fail(str(exc), param, ctx)


class SizeType(_UnitType):
    """A size flag (``--max-bytes 1G``): converts to an int of bytes."""

    name = "size"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "SIZE"

    def _parse(self, value: str) -> int:
        return parse_size(value)


class DurationType(_UnitType):
    """A duration flag (``--max-age 7d``): converts to a timedelta, or float seconds."""

    name = "duration"

    def __init__(self, *, seconds: bool = False, positive: bool = False) -> None:
        self.seconds = seconds
        self.positive = positive

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "DURATION"

    def _parse(self, value: str) -> dt.timedelta | float:
        duration = parse_duration(value)
        if self.positive and duration <= dt.timedelta(0):
            raise UnitError(f"must be more than zero, not {value!r}")
        return duration.total_seconds() if self.seconds else duration


class CountType(_UnitType):
    """A count flag (``--count 200k``): converts to an int, at least ``minimum``."""

    name = "count"

    def __init__(self, minimum: int = 0) -> None:
        self.minimum = minimum

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "N"

    def _parse(self, value: str) -> int:
        count = parse_count(value)
        if count < self.minimum:
            raise UnitError(f"must be at least {self.minimum}, not {value!r}")
        return count


#: ``--max-bytes 1G``: int bytes.
SIZE = SizeType()
#: ``--max-age 7d``: a timedelta.
DURATION = DurationType()
#: ``--timeout 2s``: float seconds, more than zero.
SECONDS = DurationType(seconds=True, positive=True)
#: ``--count 10k``: an int, at least 1.
COUNT = CountType(minimum=1)
