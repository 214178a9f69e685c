"""From events to (subject, bytes, headers) and back, in plain JSON or with encryption.

Threading: pure; codecs are immutable and can be shared by every thread. A publisher runs
``encode`` on the caller's thread and a subscriber runs ``decode`` on its worker thread, so
the event loop only ever moves finished bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from syncmsg.events._crypto import KEY_ID_HEADER, PayloadCipher, envelope_key_id
from syncmsg.events._errors import DecryptionError, EventValidationError, InvalidTokenError
from syncmsg.events._models import Event, decode_json_object, event_family
from syncmsg.events._subjects import subject_for

__all__ = ["EncodedEvent", "EncryptingCodec", "EventCodec", "parse_event"]


class EncodedEvent(NamedTuple):
    """What to publish for one event."""

    subject: str
    data: bytes
    headers: dict[str, str]


def parse_event(
    data: bytes | bytearray | memoryview | str,
    *,
    subject: str | None = None,
    strict: bool = True,
) -> Event:
    """Parse an event of any family, choosing the model from the prefix of its ``type``.

    When ``subject`` is given (the subject the message arrived on), it must be the subject
    the event belongs on (:func:`subject_for`), so that a message cannot pose as another
    agent or task type. Raises :class:`EventValidationError`.
    """
    obj = decode_json_object(data)
    event_type = obj.get("type")
    if not isinstance(event_type, str):
        raise EventValidationError(
            "event has no string 'type' field",
            errors=[{"loc": ("type",), "msg": "Field required", "type": "missing"}],
        )
    model = event_family(event_type)
    event = model.from_wire_dict(obj, strict=strict)
    if subject is not None:
        try:
            expected = subject_for(event)
        except InvalidTokenError as exc:
            raise EventValidationError(
                f"{event_type} event on {subject!r} cannot be checked against its subject: {exc}"
            ) from None
        if subject != expected:
            raise EventValidationError(
                f"{event_type} event arrived on {subject!r} but belongs on {expected!r}"
            )
    return event


def _header(headers: Mapping[str, Any] | None, key: str) -> str | None:
    if not headers:
        return None
    value = headers.get(key)
    if value is None:
        # Header names are case-insensitive in NATS as in HTTP.
        lowered = key.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Sequence) and value and all(isinstance(v, str) for v in value):
        if len(set(value)) != 1:
            raise DecryptionError(f"conflicting {key} headers: {list(value)!r}")
        return str(value[0])
    raise DecryptionError(f"header {key} is not a string")


class EventCodec:
    """Plain JSON events, as the TypeScript services send them (no headers).

    ``strict`` is passed to :meth:`~syncmsg.events.BaseMessage.from_wire`; ``check_subject``
    makes :meth:`decode` verify the arrival subject when it is given.
    """

    def __init__(self, *, strict: bool = True, check_subject: bool = True) -> None:
        self.strict = strict
        self.check_subject = check_subject

    def encode(self, event: Event) -> EncodedEvent:
        """The subject, bytes and headers to publish ``event`` with."""
        return EncodedEvent(subject_for(event), event.to_wire(), {})

    def decode(
        self,
        data: bytes | bytearray | memoryview | str,
        headers: Mapping[str, Any] | None = None,
        *,
        subject: str | None = None,
    ) -> Event:
        """Parse a received message into its event."""
        return parse_event(
            data, subject=subject if self.check_subject else None, strict=self.strict
        )


class EncryptingCodec(EventCodec):
    """Events whose ``payload`` (``metadata`` for audit) is encrypted with ``cipher``.

    :meth:`encode` encrypts with the cipher's active key and sets the ``Syncmsg-Key-Id``
    header; :meth:`decode` decrypts with whichever key the envelope names. A message whose
    data field is not encrypted is refused unless ``allow_plaintext`` (useful while
    publishers are being switched over).
    """

    def __init__(
        self,
        cipher: PayloadCipher,
        *,
        allow_plaintext: bool = False,
        strict: bool = True,
        check_subject: bool = True,
    ) -> None:
        super().__init__(strict=strict, check_subject=check_subject)
        self.cipher = cipher
        self.allow_plaintext = allow_plaintext

    def encode(self, event: Event) -> EncodedEvent:
        sealed = self.cipher.encrypt(event)
        return EncodedEvent(
            subject_for(sealed), sealed.to_wire(), {KEY_ID_HEADER: self.cipher.active_key_id}
        )

    def decode(
        self,
        data: bytes | bytearray | memoryview | str,
        headers: Mapping[str, Any] | None = None,
        *,
        subject: str | None = None,
    ) -> Event:
        event = super().decode(data, headers, subject=subject)
        header_kid = _header(headers, KEY_ID_HEADER)
        envelope_kid = envelope_key_id(event)
        if header_kid is not None and header_kid != envelope_kid:
            raise DecryptionError(
                f"{KEY_ID_HEADER} header {header_kid!r} does not match the envelope's key id "
                f"{envelope_kid!r}"
            )
        return self.cipher.decrypt(event, allow_plaintext=self.allow_plaintext)
