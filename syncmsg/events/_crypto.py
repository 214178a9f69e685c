"""Optional AES-256-GCM encryption of an event's data field, for sensitive data.

Threading: :class:`PayloadCipher` is immutable (rotation returns a new cipher), so one
instance can be shared by every thread; its methods are pure apart from reading random
nonces from ``os.urandom``.

Only the event's data field is encrypted: ``payload`` (agent, workflow, task) or
``metadata`` (audit). Its JSON object is replaced by an *envelope*, itself a JSON object, so
the encrypted event still satisfies the zod schema and subject, ``type``, ``tenantId`` and
every other field stay readable for routing and audit::

    "payload": {"enc": "AES-256-GCM", "v": 1, "kid": "2026-01",
                "nonce": "<base64, 12 bytes>", "ct": "<base64, ciphertext + 16-byte tag>"}

The plaintext is the UTF-8 compact JSON of the original object. The associated data binds
the ciphertext to its event, so it cannot be moved to another event, tenant or type::

    "syncmsg-event-enc/v1\\nAES-256-GCM\\n{kid}\\n{field}\\n{id}\\n{tenantId}\\n{type}"

(ASCII; ``id`` and ``tenantId`` in lower-case 8-4-4-4-12 form; ``field`` is ``payload`` or
``metadata``). docs/events.md describes the format for other implementations.

``cryptography`` is an optional dependency: ``pip install 'syncmsg[crypto]'``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pydantic import TypeAdapter

from syncmsg._errors import ConfigurationError
from syncmsg.events._errors import (
    CryptoUnavailableError,
    DecryptionError,
    EventValidationError,
    MissingKeyError,
)
from syncmsg.events._models import AgentEvent, AuditEvent, TaskEvent, WorkflowEvent

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "ALGORITHM",
    "ENVELOPE_VERSION",
    "KEY_ID_HEADER",
    "PayloadCipher",
    "envelope_key_id",
    "is_encrypted",
]

ALGORITHM = "AES-256-GCM"
"""The ``enc`` value of an envelope."""
ENVELOPE_VERSION = 1
"""The ``v`` value of an envelope."""
KEY_ID_HEADER = "Syncmsg-Key-Id"
"""Message header that repeats the envelope's key id, for consumers that route on it."""

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
_AAD_PREFIX = "syncmsg-event-enc/v1"
_ENVELOPE_KEYS = frozenset({"enc", "v", "kid", "nonce", "ct"})
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_JSON_OBJECT: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])

EventT = TypeVar("EventT", bound=AgentEvent | WorkflowEvent | TaskEvent | AuditEvent)


def _aesgcm() -> type[AESGCM]:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as exc:
        raise CryptoUnavailableError(
            "payload encryption needs the 'cryptography' package: pip install 'syncmsg[crypto]'"
        ) from exc
    return AESGCM


def _check_key_id(key_id: object) -> str:
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise ConfigurationError(
            f"key id {key_id!r} must be 1 to 64 characters of A-Z a-z 0-9 . _ -"
        )
    return key_id


def is_encrypted(event: AgentEvent | WorkflowEvent | TaskEvent | AuditEvent) -> bool:
    """True when the event's data field holds an encryption envelope."""
    body = getattr(event, event.body_field)
    return isinstance(body, dict) and body.keys() == _ENVELOPE_KEYS


def envelope_key_id(event: AgentEvent | WorkflowEvent | TaskEvent | AuditEvent) -> str | None:
    """The key id of the event's envelope, or None when its data field is not encrypted."""
    if not is_encrypted(event):
        return None
    kid = getattr(event, event.body_field)["kid"]
    return kid if isinstance(kid, str) else None


def _associated_data(
    event: AgentEvent | WorkflowEvent | TaskEvent | AuditEvent, key_id: str
) -> bytes:
    parts = (
        _AAD_PREFIX,
        ALGORITHM,
        key_id,
        event.body_field,
        str(event.id),
        str(event.tenant_id),
        event.type.value,
    )
    return "\n".join(parts).encode("ascii")


def _b64decode(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise DecryptionError(f"encryption envelope: {what} must be a base64 string")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise DecryptionError(f"encryption envelope: {what} is not valid base64") from None


def _new_nonce() -> bytes:
    return os.urandom(NONCE_SIZE)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class PayloadCipher:
    """Encrypts and decrypts the data field of events with AES-256-GCM.

    ``keys`` maps key ids (1 to 64 of ``A-Z a-z 0-9 . _ -``) to 32-byte keys. New envelopes
    use ``active_key_id`` (optional when there is a single key); any key in the ring can
    decrypt, so keys rotate by adding a key, making it active once every consumer has it,
    and removing the old one when its messages have aged out of the stream. Each envelope
    has a random 96-bit nonce: rotate a key well before 2**32 messages.
    """

    __slots__ = ("_active", "_keys")

    def __init__(self, keys: Mapping[str, bytes], active_key_id: str | None = None) -> None:
        _aesgcm()  # fail now, not at the first message, if cryptography is missing
        if not isinstance(keys, Mapping) or not keys:
            raise ConfigurationError("the keyring must be a non-empty mapping {key_id: key}")
        ring: dict[str, bytes] = {}
        for key_id, key in keys.items():
            _check_key_id(key_id)
            if not isinstance(key, bytes | bytearray | memoryview):
                raise ConfigurationError(f"key {key_id!r} must be bytes, not {type(key).__name__}")
            raw = bytes(key)
            if len(raw) != KEY_SIZE:
                raise ConfigurationError(
                    f"key {key_id!r} must be {KEY_SIZE} bytes for AES-256, got {len(raw)}"
                )
            ring[key_id] = raw
        if active_key_id is None:
            if len(ring) != 1:
                raise ConfigurationError(
                    "the keyring holds several keys: pass active_key_id to choose the one "
                    "that encrypts"
                )
            active_key_id = next(iter(ring))
        if active_key_id not in ring:
            raise ConfigurationError(f"active key id {active_key_id!r} is not in the keyring")
        self._keys = ring
        self._active = active_key_id

    @staticmethod
    def generate_key() -> bytes:
        """A new random 32-byte key."""
        return os.urandom(KEY_SIZE)

    @property
    def active_key_id(self) -> str:
        """The key id new envelopes are encrypted with."""
        return self._active

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every key id this cipher can decrypt."""
        return tuple(self._keys)

    def with_key(self, key_id: str, key: bytes, *, activate: bool = False) -> PayloadCipher:
        """A new cipher with ``key`` added (or replaced), optionally made active."""
        ring = {**self._keys, key_id: key}
        return PayloadCipher(ring, key_id if activate else self._active)

    def with_active_key(self, key_id: str) -> PayloadCipher:
        """A new cipher that encrypts with ``key_id``, which must be in the keyring."""
        return PayloadCipher(self._keys, key_id)

    def without_keys(self, key_ids: Iterable[str]) -> PayloadCipher:
        """A new cipher without ``key_ids``; the active key cannot be removed."""
        drop = set(key_ids)
        if self._active in drop:
            raise ConfigurationError(f"cannot remove the active key {self._active!r}")
        return PayloadCipher({k: v for k, v in self._keys.items() if k not in drop}, self._active)

    def __repr__(self) -> str:
        return f"PayloadCipher(active_key_id={self._active!r}, key_ids={list(self._keys)!r})"

    # ------------------------------------------------------------------ encrypt / decrypt

    def encrypt(self, event: EventT) -> EventT:
        """A copy of ``event`` whose data field is replaced by an encryption envelope."""
        field = event.body_field
        if is_encrypted(event):
            raise EventValidationError(f"the {field} of this event is already encrypted")
        body = getattr(event, field)
        try:
            plaintext = json.dumps(
                _JSON_OBJECT.dump_python(body, mode="json"),
                separators=(",", ":"),
                ensure_ascii=False,
                allow_nan=False,
            ).encode()
        except (TypeError, ValueError) as exc:
            raise EventValidationError(f"the {field} cannot be written as JSON: {exc}") from None
        nonce = _new_nonce()
        aad = _associated_data(event, self._active)
        ciphertext = _aesgcm()(self._keys[self._active]).encrypt(nonce, plaintext, aad)
        envelope = {
            "enc": ALGORITHM,
            "v": ENVELOPE_VERSION,
            "kid": self._active,
            "nonce": base64.b64encode(nonce).decode("ascii"),
            "ct": base64.b64encode(ciphertext).decode("ascii"),
        }
        return cast(EventT, event.model_copy(update={field: envelope}))

    def decrypt(self, event: EventT, *, allow_plaintext: bool = False) -> EventT:
        """A copy of ``event`` with its data field decrypted and authenticated.

        Raises :class:`MissingKeyError` when the envelope's key id is not in the keyring,
        :class:`DecryptionError` when the key is wrong, anything covered by the associated
        data was changed, or the envelope is malformed; and, unless ``allow_plaintext``,
        when the data field is not encrypted at all.
        """
        field = event.body_field
        if not is_encrypted(event):
            if allow_plaintext:
                return event
            raise DecryptionError(f"the {field} of this {event.type.value} event is not encrypted")
        envelope = getattr(event, field)
        if envelope["enc"] != ALGORITHM:
            raise DecryptionError(f"unsupported encryption {envelope['enc']!r}")
        version = envelope["v"]
        if type(version) is not int or version != ENVELOPE_VERSION:
            raise DecryptionError(f"unsupported encryption envelope version {version!r}")
        key_id = envelope["kid"]
        if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
            raise DecryptionError("encryption envelope: kid is not a valid key id")
        key = self._keys.get(key_id)
        if key is None:
            raise MissingKeyError(
                f"no key {key_id!r} in the keyring (have: {', '.join(self._keys)})",
                key_id=key_id,
            )
        nonce = _b64decode(envelope["nonce"], "nonce")
        ciphertext = _b64decode(envelope["ct"], "ct")
        if len(nonce) != NONCE_SIZE:
            raise DecryptionError(f"encryption envelope: nonce must be {NONCE_SIZE} bytes")
        if len(ciphertext) < TAG_SIZE:
            raise DecryptionError("encryption envelope: ct is shorter than the GCM tag")
        from cryptography.exceptions import InvalidTag

        try:
            plaintext = _aesgcm()(key).decrypt(nonce, ciphertext, _associated_data(event, key_id))
        except InvalidTag:
            raise DecryptionError(
                f"cannot decrypt the {field} with key {key_id!r}: wrong key, or the ciphertext, "
                "id, tenantId or type was changed"
            ) from None
        try:
            body = json.loads(plaintext.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise DecryptionError(f"the decrypted {field} is not valid JSON") from None
        if not isinstance(body, dict):
            raise DecryptionError(f"the decrypted {field} is not a JSON object")
        return cast(EventT, event.model_copy(update={field: body}))
