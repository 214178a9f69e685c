"""The one encoder for payloads and headers, and the builder of wire commands.

Threading: pure functions, run on the caller's thread so that the event-loop thread only
moves finished bytes. Nothing here touches a socket.

What each kind of ``data`` becomes on the wire:

* ``bytes``, ``bytearray``, ``memoryview``: the bytes as they are;
* ``str``: UTF-8 (a lone surrogate, which UTF-8 cannot encode, is a ``PayloadError``);
* ``dict``, ``list``: compact JSON, UTF-8, with ``NaN`` and ``Infinity`` refused (they are
  not JSON: ``JSON.parse`` in a nats.js peer would throw);
* a pydantic model: its JSON by alias, with non-finite floats refused too (pydantic would
  write them as ``null``, silently changing the value);
* ``None``: an empty payload, as nats-py's default ``b""`` (a message with no body, such as
  a bare request or a signal). ``None`` is *not* JSON ``null``; send ``b"null"`` for that.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias, TypeVar

from pydantic import BaseModel, ValidationError

from syncmsg._errors import InvalidHeaderError, PayloadError

__all__ = [
    "Data",
    "Headers",
    "decode_json",
    "decode_model",
    "encode_headers",
    "encode_payload",
    "pub_command",
]

Data: TypeAlias = (
    "bytes | bytearray | memoryview | str | dict[str, Any] | list[Any] | BaseModel | None"
)
Headers: TypeAlias = Mapping[str, "str | Sequence[str]"]
ModelT = TypeVar("ModelT", bound=BaseModel)

_HEADER_KEY = re.compile(r"[!-9;-~]+")  # printable ASCII except ':' and space (fullmatch)
# Control characters other than TAB: CR or LF would let a value forge protocol lines, and
# the rest are not allowed in a header value (RFC 9110 field-value) by any NATS client.
_HEADER_VALUE_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_HEADER_LINE = b"NATS/1.0\r\n"
_CRLF = b"\r\n"


def encode_payload(data: Any) -> bytes:
    """Return the bytes to send for ``data`` (see the module docstring for each type).

    Raises :class:`~syncmsg.PayloadError` for anything that cannot be sent as it is meant.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    if isinstance(data, str):
        try:
            return data.encode()
        except UnicodeEncodeError as exc:
            raise PayloadError(f"str payload is not valid UTF-8: {exc.reason}") from None
    if data is None:
        return b""
    if isinstance(data, BaseModel):
        return _encode_model(data)
    if isinstance(data, dict | list):
        try:
            text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
            return text.encode()
        except UnicodeEncodeError as exc:
            raise PayloadError(
                f"payload holds a str that is not valid UTF-8: {exc.reason}"
            ) from None
        except ValueError as exc:
            if "out of range float" in str(exc).lower():
                raise PayloadError(f"payload {_NON_FINITE}") from None
            raise PayloadError(f"payload is not JSON-serialisable: {exc}") from None
        except (TypeError, RecursionError) as exc:
            raise PayloadError(f"payload is not JSON-serialisable: {exc}") from None
    raise PayloadError(
        f"cannot send a {type(data).__name__}: pass bytes, str, dict, list or a pydantic model"
    )


_NON_FINITE = "holds NaN or Infinity, which JSON cannot represent"


def _encode_model(model: BaseModel) -> bytes:
    name = type(model).__name__
    try:
        encoded = model.model_dump_json(by_alias=True).encode()
        # pydantic writes NaN and Infinity as null (by default) or as bare NaN/Infinity
        # tokens (ser_json_inf_nan="constants"): only then is a slower look needed.
        values = model.model_dump(by_alias=True) if b"null" in encoded else None
    except (ValueError, TypeError) as exc:  # PydanticSerializationError is a ValueError
        raise PayloadError(f"{name} cannot be serialised: {exc}") from None
    if values is not None and _holds_non_finite(values):
        raise PayloadError(f"{name} {_NON_FINITE}")
    if (b"NaN" in encoded or b"Infinity" in encoded) and not _is_strict_json(encoded):
        raise PayloadError(f"{name} {_NON_FINITE}")
    return encoded


def _holds_non_finite(value: Any) -> bool:
    """Whether a float NaN or Infinity is anywhere in ``value`` (iteratively: no recursion)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
    return False


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _is_strict_json(encoded: bytes) -> bool:
    try:
        json.loads(encoded, parse_constant=_reject_constant)
    except ValueError:
        return False
    return True


def encode_headers(headers: Headers | None) -> bytes | None:
    """Encode ``headers`` as a NATS/1.0 header block, or None when there are none.

    Keys must be printable ASCII without ``:`` or spaces; values must be UTF-8 text
    without control characters other than TAB (CR or LF would let a value forge protocol
    lines). A sequence value sends the key once per item. Raises
    :class:`~syncmsg.InvalidHeaderError`.
    """
    if not headers:
        return None
    if not isinstance(headers, Mapping):
        raise InvalidHeaderError(f"headers must be a mapping, not {type(headers).__name__}")
    block = bytearray(_HEADER_LINE)
    for key, value in headers.items():
        if not isinstance(key, str) or not _HEADER_KEY.fullmatch(key):
            raise InvalidHeaderError(f"invalid header key {key!r}")
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, Sequence) or isinstance(values, bytes):
            raise InvalidHeaderError(f"header {key!r} must be a str or a list of str")
        for item in values:
            if not isinstance(item, str):
                raise InvalidHeaderError(f"header {key!r} must be a str or a list of str")
            if _HEADER_VALUE_FORBIDDEN.search(item):
                raise InvalidHeaderError(
                    f"header {key!r} contains CR, LF or another control character"
                )
            try:
                block += f"{key}: {item}\r\n".encode()
            except UnicodeEncodeError as exc:
                raise InvalidHeaderError(
                    f"header {key!r} is not valid UTF-8: {exc.reason}"
                ) from None
    block += _CRLF
    return bytes(block)


def pub_command(subject: str, reply: str, payload: bytes, header_block: bytes | None) -> bytes:
    """The complete PUB or HPUB protocol command for one message."""
    if header_block is None:
        if reply:
            line = f"PUB {subject} {reply} {len(payload)}\r\n"
        else:
            line = f"PUB {subject} {len(payload)}\r\n"
        return b"".join((line.encode(), payload, _CRLF))
    total = len(header_block) + len(payload)
    if reply:
        line = f"HPUB {subject} {reply} {len(header_block)} {total}\r\n"
    else:
        line = f"HPUB {subject} {len(header_block)} {total}\r\n"
    return b"".join((line.encode(), header_block, payload, _CRLF))


def decode_json(data: bytes, subject: str = "") -> Any:
    """Parse a payload as JSON, raising :class:`~syncmsg.PayloadError` when it is not."""
    try:
        return json.loads(data)
    except ValueError as exc:
        where = f" on {subject}" if subject else ""
        raise PayloadError(f"message{where} is not valid JSON: {exc}") from None


def decode_model(data: bytes, model: type[ModelT], subject: str = "") -> ModelT:
    """Validate a JSON payload into ``model``, raising :class:`~syncmsg.PayloadError`."""
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        where = f" on {subject}" if subject else ""
        raise PayloadError(f"message{where} is not a valid {model.__name__}: {exc}") from None
