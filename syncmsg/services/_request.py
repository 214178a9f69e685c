"""The request a handler gets, and the error a handler raises to choose its error reply.

Threading: a :class:`Request` is made and used on one of its endpoint's worker threads
(``syncmsg-sub-<sid>-<i>``); its replies go through the client's outbound queue, so
answering never waits for the network.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar, overload

from pydantic import BaseModel

from syncmsg._codec import Data, Headers
from syncmsg._errors import PayloadError, SyncMsgError
from syncmsg._msg import Msg
from syncmsg._replies import SERVICE_ERROR, SERVICE_ERROR_CODE

__all__ = ["Request", "ServiceError", "check_error_code", "error_headers", "one_line"]

ModelT = TypeVar("ModelT", bound=BaseModel)

# The ADR: the code "should be a value that is always safe to parse as a number".
_CODE = re.compile(r"-?\d{1,18}")


def one_line(text: str) -> str:
    """``text`` as a header value: control characters (CR, LF, ...) become spaces, runs of
    spaces one; an error description is often a multi-line validation message."""
    return " ".join("".join(" " if ch < " " or ch == "\x7f" else ch for ch in text).split())


def check_error_code(code: int | str) -> str:
    """``code`` as the ``Nats-Service-Error-Code`` header value, or ValueError."""
    text = str(code) if isinstance(code, int) and not isinstance(code, bool) else code
    if not isinstance(text, str) or not _CODE.fullmatch(text):
        raise ValueError(f"a service error code must be a whole number, like 400, not {code!r}")
    return text


def error_headers(code: int | str, description: str) -> dict[str, str]:
    """The headers of an ADR-32 error reply, for answers sent another way (``msg.respond(b"",
    headers=error_headers(503, "busy"))`` from a plain subscription): ``Nats-Service-Error``
    and ``Nats-Service-Error-Code``. Raises ValueError for a code that is not a whole
    number or an empty description."""
    text = one_line(description) if isinstance(description, str) else ""
    if not text:
        raise ValueError("a service error needs a description")
    return {SERVICE_ERROR: text, SERVICE_ERROR_CODE: check_error_code(code)}


class ServiceError(SyncMsgError):
    """Raise it in a handler to answer with this error: ``raise ServiceError(404, "no such
    invoice")``. The caller's ``request()`` raises :class:`~syncmsg.RemoteError` with the
    same ``code`` (as a string) and ``description``; ``data`` is the error reply's payload.
    """

    def __init__(self, code: int | str, description: str, data: Data = b"") -> None:
        super().__init__(f"{code}: {description}")
        self.code = check_error_code(code)
        self.description = description
        self.data = data


class Request:
    """One request to an endpoint: ``data``, ``headers``, ``subject``, ``reply``.

    Answer it by returning the reply from the handler, or by calling :meth:`respond` or
    :meth:`respond_error` once. A payload that :meth:`json` or :meth:`parse` cannot read
    gets a 400 error reply when the handler lets the error out.
    """

    __slots__ = ("_input_error", "_model", "_parsed", "_responded", "error", "msg")

    def __init__(self, msg: Msg, model: type[BaseModel] | None = None) -> None:
        #: The message as received (a :class:`syncmsg.Msg`).
        self.msg = msg
        #: ``"<code>:<description>"`` once an error reply was sent, else None.
        self.error: str | None = None
        self._model = model
        self._parsed: BaseModel | None = None
        self._responded = False
        self._input_error: PayloadError | None = None

    def __repr__(self) -> str:
        return f"<syncmsg.services.Request subject={self.subject!r} size={len(self.data)}>"

    @property
    def subject(self) -> str:
        """The subject the request was sent to (an endpoint's subject may be a wildcard)."""
        return self.msg.subject

    @property
    def data(self) -> bytes:
        return self.msg.data

    @property
    def headers(self) -> dict[str, str] | None:
        return self.msg.headers

    @property
    def reply(self) -> str:
        """Where the answer goes; ``""`` for a message published without a reply subject."""
        return self.msg.reply

    @property
    def responded(self) -> bool:
        """True once :meth:`respond` or :meth:`respond_error` was called."""
        return self._responded

    # -- the payload ---------------------------------------------------------------------
    def text(self, encoding: str = "utf-8") -> str:
        return self.msg.text(encoding)

    def json(self) -> Any:
        """The payload parsed as JSON; raises :class:`~syncmsg.PayloadError` (a 400 reply if
        the handler lets it out)."""
        try:
            return self.msg.json()
        except PayloadError as exc:
            self._input_error = exc
            raise

    @overload
    def parse(self) -> Any: ...

    @overload
    def parse(self, model: type[ModelT]) -> ModelT: ...

    def parse(self, model: type[BaseModel] | None = None) -> Any:
        """The payload validated into ``model``, by default the endpoint's ``request_model``
        (validated once, before the handler ran). Raises :class:`~syncmsg.PayloadError`
        (a 400 reply if the handler lets it out)."""
        if model is None or model is self._model:
            if self._model is None:
                raise ValueError(f"endpoint for {self.subject!r} declares no request_model")
            if self._parsed is None:
                self._parsed = self._decode(self._model)
            return self._parsed
        return self._decode(model)

    def _decode(self, model: type[ModelT]) -> ModelT:
        try:
            return self.msg.parse(model)
        except PayloadError as exc:
            self._input_error = exc
            raise

    def _is_input_error(self, exc: BaseException) -> bool:
        """Whether ``exc`` is this request's own payload failing to parse."""
        return exc is self._input_error

    # -- answers -------------------------------------------------------------------------
    def respond(self, data: Data = b"", *, headers: Headers | None = None) -> None:
        """Send the reply (once). ``data`` is encoded as for ``publish``: bytes, str, a dict
        or list (JSON), a pydantic model; None is an empty payload."""
        self._claim()
        try:
            self.msg.respond(data, headers=headers)
        except BaseException:
            self._responded = False  # nothing was sent: an error reply may still go
            raise

    def respond_error(
        self,
        code: int | str,
        description: str,
        data: Data = b"",
        *,
        headers: Headers | None = None,
    ) -> None:
        """Send an error reply (once): ``Nats-Service-Error: description`` and
        ``Nats-Service-Error-Code: code`` headers, with ``data`` as the payload. It counts
        as an error in the endpoint's stats. The description is sent on one line."""
        error = error_headers(code, description)
        merged: dict[str, Any] = {**(headers or {}), **error}
        self.respond(data, headers=merged)
        self.error = f"{error[SERVICE_ERROR_CODE]}:{error[SERVICE_ERROR]}"

    def _claim(self) -> None:
        if self._responded:
            raise ValueError(f"the request on {self.subject!r} was already answered")
        self._responded = True
