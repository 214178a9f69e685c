"""The one encoder for payloads and headers, and the builder of wire commands.

Threading: pure functions, run on the caller's thread so that the event-loop thread only
moves finished bytes. Nothing here touches a socket.
"""

from __future__ import annotations

import json
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

_HEADER_KEY = re.compile(r"^[!-9;-~]+$")  # printable ASCII except ':' and space
_HEADER_LINE = b"NATS/1.0\r\n"
_CRLF = b"\r\n"


def encode_payload(data: Any) -> bytes:
    """Return the bytes to send for ``data``.

    bytes-like values are sent as they are; ``str`` as UTF-8; ``dict`` and ``list`` as compact
    JSON; a pydantic model as its JSON by alias; ``None`` as an empty payload.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    if isinstance(data, str):
        return data.encode()
    if data is None:
        return b""
    if isinstance(data, BaseModel):
        return data.model_dump_json(by_alias=True).encode()
    if isinstance(data, dict | list):
        try:
            return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        except (TypeError, ValueError) as exc:
            raise PayloadError(f"payload is not JSON-serialisable: {exc}") from None
    raise PayloadError(
        f"cannot send a {type(data).__name__}: pass bytes, str, dict, list or a pydantic model"
    )


def encode_headers(headers: Headers | None) -> bytes | None:
    """Encode ``headers`` as a NATS/1.0 header block, or None when there are none.

    Keys must be printable ASCII without ``:`` or spaces; values must not contain CR or LF
    (either would let a value forge protocol lines). A sequence value sends the key once
    per item.
    """
    if not headers:
        return None
    if not isinstance(headers, Mapping):
        raise InvalidHeaderError(f"headers must be a mapping, not {type(headers).__name__}")
    block = bytearray(_HEADER_LINE)
    for key, value in headers.items():
        if not isinstance(key, str) or not _HEADER_KEY.match(key):
            raise InvalidHeaderError(f"invalid header key {key!r}")
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, Sequence) or isinstance(values, bytes):
            raise InvalidHeaderError(f"header {key!r} must be a str or a list of str")
        for item in values:
            if not isinstance(item, str):
                raise InvalidHeaderError(f"header {key!r} must be a str or a list of str")
            if "\r" in item or "\n" in item:
                raise InvalidHeaderError(f"header {key!r} contains CR or LF")
            block += f"{key}: {item}\r\n".encode()
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
