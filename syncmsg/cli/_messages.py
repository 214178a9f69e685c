"""Payloads, headers and printed messages, shared by pub, sub, req and reply.

Threading: pure functions, plus :func:`print_msg`, which goes through the thread-safe
:class:`~syncmsg.cli._output.Output` (``reply`` calls it from worker threads).
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Sequence
from typing import Any

import click

import syncmsg
from syncmsg.cli._exit import EXIT_USAGE, CommandFailed
from syncmsg.cli._output import Output

__all__ = ["HEADER_OPTION", "parse_headers", "payload_fields", "print_msg", "read_data", "show"]

#: ``-H NAME:VALUE``, repeatable.
HEADER_OPTION = click.option(
    "-H",
    "--header",
    "headers",
    multiple=True,
    metavar="NAME:VALUE",
    help="Add a header (repeatable).",
)


def parse_headers(values: Sequence[str]) -> dict[str, str] | None:
    """``["Trace: abc"]`` → ``{"Trace": "abc"}``; None when there are none."""
    if not values:
        return None
    headers: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition(":")
        if not sep or not name.strip():
            raise CommandFailed(f"header {value!r} is not NAME:VALUE", EXIT_USAGE)
        headers[name.strip()] = rest.strip()
    return headers


def read_data(value: str | None) -> bytes:
    """A payload argument: UTF-8 text, ``-`` for stdin's bytes, nothing for empty."""
    if value is None:
        return b""
    if value == "-":
        return sys.stdin.buffer.read()
    return value.encode("utf-8")


def payload_fields(data: bytes) -> dict[str, Any]:
    """``{"data": text}``, or ``{"data_base64": ...}`` when the payload is not UTF-8."""
    try:
        return {"data": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"data_base64": base64.b64encode(data).decode("ascii")}


def show(data: bytes) -> str:
    """A payload for people (bytes that are not UTF-8 shown as U+FFFD)."""
    return data.decode("utf-8", errors="replace")


def print_msg(out: Output, n: int, msg: syncmsg.Msg, extra: dict[str, Any]) -> None:
    """``[#n] subject: payload`` and its headers indented, or one JSON object."""
    obj: dict[str, Any] = {"subject": msg.subject, **payload_fields(msg.data)}
    if msg.headers:
        obj["headers"] = msg.headers
    if msg.reply and not extra:
        obj["reply"] = msg.reply
    obj.update(extra)
    text = f"[#{n}] {msg.subject}"
    if "seq" in extra:
        text += f" (stream seq {extra['seq']})"
    lines = [f"{text}: {show(msg.data)}"]
    lines += [f"  {key}: {value}" for key, value in (msg.headers or {}).items()]
    out.emit(obj, "\n".join(lines))
