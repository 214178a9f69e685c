"""Exceptions of the typed-events layer; each one subclasses a class of :mod:`syncmsg._errors`.

Threading: plain exception classes, raised on whichever thread called the failing function.

::

    PayloadError
    ├── EventValidationError        not a valid event (bad JSON, field, uuid, timestamp, type)
    └── DecryptionError             an encrypted payload cannot be opened (wrong key, tampered)
        └── MissingKeyError         the payload names a key id the keyring does not hold
    InvalidSubjectError
    └── InvalidTokenError           agentType / taskType cannot stand as one subject token
    ConfigurationError
    └── CryptoUnavailableError(ImportError)   ``cryptography`` is not installed
    SyncMsgError
    └── HandlerError                an event's handlers failed on its last delivery
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from syncmsg._errors import ConfigurationError, InvalidSubjectError, PayloadError, SyncMsgError

__all__ = [
    "CryptoUnavailableError",
    "DecryptionError",
    "EventValidationError",
    "HandlerError",
    "InvalidTokenError",
    "MissingKeyError",
]


class EventValidationError(PayloadError):
    """The data is not a valid event of the expected kind.

    ``errors`` lists one dict per problem (``loc``, ``msg``, ``type``), in the shape of
    pydantic's ``ValidationError.errors()``, without the offending input values, so that an
    error message never echoes a (possibly sensitive) payload.
    """

    def __init__(self, message: str, *, errors: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(message)
        self.errors: list[dict[str, Any]] = list(errors)


class InvalidTokenError(InvalidSubjectError):
    """A caller-supplied value (``agentType``, ``taskType``) cannot be one subject token."""


class DecryptionError(PayloadError):
    """An encrypted payload could not be decrypted and authenticated.

    Raised for a wrong key, a tampered ciphertext, an envelope moved to another event, or a
    malformed envelope. Decryption never returns unauthenticated data.
    """


class MissingKeyError(DecryptionError):
    """The envelope's key id is not in the keyring (rotated out, or never distributed)."""

    def __init__(self, message: str, *, key_id: str = "") -> None:
        super().__init__(message)
        self.key_id = key_id


class CryptoUnavailableError(ConfigurationError, ImportError):
    """Payload encryption needs the optional ``cryptography`` dependency."""


class HandlerError(SyncMsgError):
    """Handlers of an event kept raising until its last delivery (retry policy on).

    It is the error an event is dead-lettered with (``Syncmsg-Last-Error``); ``errors``
    holds each failing handler's exception of that last delivery, in the order they ran.
    """

    def __init__(self, message: str, *, errors: Sequence[BaseException] = ()) -> None:
        super().__init__(message)
        self.errors: list[BaseException] = list(errors)
