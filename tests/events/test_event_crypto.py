"""Payload encryption: round trip, key rotation, wrong key, tampering, and the envelope format."""

from __future__ import annotations

import base64
import builtins
import json
import sys
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from syncmsg._errors import ConfigurationError, PayloadError
from syncmsg.events import (
    KEY_ID_HEADER,
    AgentEvent,
    AgentEventType,
    AuditEvent,
    CryptoUnavailableError,
    DecryptionError,
    EncryptingCodec,
    EventCodec,
    EventValidationError,
    MissingKeyError,
    PayloadCipher,
    TaskEvent,
    WorkflowEvent,
    _crypto,
    envelope_key_id,
    is_encrypted,
    parse_event,
)

FIXTURES = Path(__file__).parent / "fixtures"
K1 = bytes(range(32))
K2 = bytes(range(32, 64))
TENANT = UUID("9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f")


def agent(**fields: Any) -> AgentEvent:
    data: dict[str, Any] = {
        "source": "py",
        "tenant_id": TENANT,
        "type": "agent.completed",
        "agent_id": uuid4(),
        "agent_type": "planner",
        "payload": {"secret": "s3cr3t", "n": [1, 2.5, None]},
    }
    data.update(fields)
    return AgentEvent(**data)


def audit(**fields: Any) -> AuditEvent:
    data: dict[str, Any] = {
        "source": "py",
        "tenant_id": TENANT,
        "type": "audit.access",
        "action": "read",
        "resource_type": "patient",
        "resource_id": "p-1",
        "user_id": uuid4(),
        "metadata": {"diagnosis": "confidential"},
    }
    data.update(fields)
    return AuditEvent(**data)


def all_families() -> list[Any]:
    common: dict[str, Any] = {"source": "py", "tenant_id": TENANT}
    return [
        agent(),
        WorkflowEvent(
            **common,
            type="workflow.step.completed",
            workflow_id=uuid4(),
            step_id="s",
            payload={"x": 1},
        ),
        TaskEvent(
            **common, type="task.failed", task_id=uuid4(), task_type="t", payload={"e": "boom"}
        ),
        audit(),
    ]


# --------------------------------------------------------------------- round trip


@pytest.mark.parametrize("event", all_families(), ids=lambda e: type(e).__name__)
def test_round_trip_every_family(event: Any) -> None:
    cipher = PayloadCipher({"k1": K1})
    sealed = cipher.encrypt(event)
    assert is_encrypted(sealed)
    assert not is_encrypted(event)
    body = getattr(sealed, event.body_field)
    assert set(body) == {"enc", "v", "kid", "nonce", "ct"}
    # Routing and audit fields stay readable.
    wire = json.loads(sealed.to_wire())
    assert wire["type"] == event.type.value
    assert wire["tenantId"] == str(TENANT)
    assert wire["id"] == str(event.id)
    assert "s3cr3t" not in sealed.to_wire().decode()
    assert "confidential" not in sealed.to_wire().decode()
    # The encrypted event is still a valid event for the zod schema.
    received = type(event).from_wire(sealed.to_wire())
    assert cipher.decrypt(received) == event


def test_codec_round_trip_with_header() -> None:
    codec = EncryptingCodec(PayloadCipher({"k1": K1}))
    event = agent()
    encoded = codec.encode(event)
    assert encoded.subject == "agent.planner.agent.completed"
    assert encoded.headers == {KEY_ID_HEADER: "k1"}
    assert b"s3cr3t" not in encoded.data
    assert codec.decode(encoded.data, encoded.headers, subject=encoded.subject) == event
    # Headers are optional for decoding: the envelope names its key.
    assert codec.decode(encoded.data) == event
    assert codec.decode(encoded.data, {"syncmsg-key-id": ["k1"]}) == event


def test_plain_codec() -> None:
    codec = EventCodec()
    event = audit()
    encoded = codec.encode(event)
    assert encoded.subject == "audit.audit.access"
    assert encoded.headers == {}
    assert encoded.data == event.to_wire()
    assert codec.decode(encoded.data, subject=encoded.subject) == event
    with pytest.raises(EventValidationError):
        codec.decode(encoded.data, subject="audit.audit.security")
    assert EventCodec(check_subject=False).decode(encoded.data, subject="x") == event


def test_nonces_are_fresh() -> None:
    cipher = PayloadCipher({"k1": K1})
    event = agent()
    first, second = cipher.encrypt(event), cipher.encrypt(event)
    assert first.payload["nonce"] != second.payload["nonce"]
    assert first.payload["ct"] != second.payload["ct"]


@settings(max_examples=50, deadline=None)
@given(
    payload=st.dictionaries(
        st.text(),
        st.recursive(
            st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
            lambda inner: (
                st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3)
            ),
            max_leaves=10,
        ),
        max_size=5,
    )
)
def test_round_trip_arbitrary_payloads(payload: dict[str, Any]) -> None:
    codec = EncryptingCodec(PayloadCipher({"k1": K1}))
    event = agent(payload=payload)
    encoded = codec.encode(event)
    assert codec.decode(encoded.data, encoded.headers) == event


# --------------------------------------------------------------------- rotation


def test_rotation() -> None:
    old = PayloadCipher({"2026-01": K1})
    sealed_old = old.encrypt(agent())
    # Step 1: every consumer gets the new key; the old one still encrypts.
    both = old.with_key("2026-02", K2)
    assert both.active_key_id == "2026-01"
    assert both.key_ids == ("2026-01", "2026-02")
    # Step 2: publishers switch to the new key.
    rotated = both.with_active_key("2026-02")
    sealed_new = rotated.encrypt(agent())
    assert envelope_key_id(sealed_new) == "2026-02"
    assert envelope_key_id(sealed_old) == "2026-01"
    assert rotated.decrypt(sealed_old).payload["secret"] == "s3cr3t"
    assert rotated.decrypt(sealed_new).payload["secret"] == "s3cr3t"
    # A consumer that has not received the new key yet fails clearly.
    with pytest.raises(MissingKeyError, match="2026-02") as info:
        old.decrypt(sealed_new)
    assert info.value.key_id == "2026-02"
    # Step 3: the old key is retired once its messages have aged out.
    retired = rotated.without_keys(["2026-01"])
    assert retired.key_ids == ("2026-02",)
    with pytest.raises(MissingKeyError):
        retired.decrypt(sealed_old)
    with pytest.raises(ConfigurationError, match="active"):
        rotated.without_keys(["2026-02"])


def test_with_key_activate() -> None:
    cipher = PayloadCipher({"a": K1}).with_key("b", K2, activate=True)
    assert cipher.active_key_id == "b"
    assert envelope_key_id(cipher.encrypt(agent())) == "b"


def test_codec_header_follows_rotation() -> None:
    codec = EncryptingCodec(PayloadCipher({"a": K1, "b": K2}, active_key_id="b"))
    assert codec.encode(agent()).headers == {KEY_ID_HEADER: "b"}


# --------------------------------------------------------------------- failures


def test_wrong_key_is_a_clear_error_never_garbage() -> None:
    sealed = PayloadCipher({"k1": K1}).encrypt(agent())
    impostor = PayloadCipher({"k1": K2})
    with pytest.raises(DecryptionError, match="wrong key") as info:
        impostor.decrypt(sealed)
    assert not isinstance(info.value, MissingKeyError)
    assert isinstance(info.value, PayloadError)


def test_missing_key_is_a_decryption_error() -> None:
    sealed = PayloadCipher({"k1": K1}).encrypt(agent())
    with pytest.raises(DecryptionError):
        PayloadCipher({"k2": K2}).decrypt(sealed)


def _retarget(event: Any, **update: Any) -> Any:
    return event.model_copy(update=update)


@pytest.mark.parametrize(
    "change",
    [
        {"id": UUID("00000000-0000-4000-8000-000000000000")},
        {"tenant_id": UUID("11111111-1111-4111-8111-111111111111")},
        {"type": AgentEventType.FAILED},
    ],
    ids=["id", "tenantId", "type"],
)
def test_ciphertext_cannot_move_to_another_event(change: dict[str, Any]) -> None:
    cipher = PayloadCipher({"k1": K1})
    sealed = cipher.encrypt(agent())
    moved = AgentEvent.from_wire(_retarget(sealed, **change).to_wire())
    with pytest.raises(DecryptionError, match="changed"):
        cipher.decrypt(moved)


def test_ciphertext_cannot_move_from_payload_to_metadata() -> None:
    cipher = PayloadCipher({"k1": K1})
    sealed_agent = cipher.encrypt(agent())
    target = audit()
    forged = target.model_copy(update={"metadata": dict(sealed_agent.payload)})
    with pytest.raises(DecryptionError):
        cipher.decrypt(forged)


def _tampered(envelope: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    return {**envelope, key: value}


def _flip(b64: str, index: int) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    ("key", "make_value", "match"),
    [
        ("ct", lambda env: _flip(env["ct"], 0), "wrong key"),
        ("ct", lambda env: _flip(env["ct"], -1), "wrong key"),  # the tag
        ("ct", lambda env: env["ct"][:-8] + "AAAAAAA=", "wrong key|base64"),
        ("ct", lambda env: base64.b64encode(b"short").decode(), "shorter than"),
        ("ct", lambda env: "not base64!", "base64"),
        ("ct", lambda env: 5, "base64"),
        ("nonce", lambda env: _flip(env["nonce"], 3), "wrong key"),
        ("nonce", lambda env: base64.b64encode(b"12345678").decode(), "12 bytes"),
        ("kid", lambda env: "k1 ", "kid"),
        ("kid", lambda env: None, "kid"),
        ("enc", lambda env: "AES-128-GCM", "unsupported"),
        ("v", lambda env: 2, "version"),
        ("v", lambda env: True, "version"),
        ("v", lambda env: "1", "version"),
    ],
)
def test_tampering_is_detected(key: str, make_value: Any, match: str) -> None:
    cipher = PayloadCipher({"k1": K1})
    sealed = cipher.encrypt(agent())
    envelope = dict(sealed.payload)
    forged = sealed.model_copy(update={"payload": _tampered(envelope, key, make_value(envelope))})
    with pytest.raises(DecryptionError, match=match):
        cipher.decrypt(forged)


def test_kid_swap_to_another_key_in_the_ring_fails() -> None:
    cipher = PayloadCipher({"a": K1, "b": K2}, active_key_id="a")
    sealed = cipher.encrypt(agent())
    forged = sealed.model_copy(update={"payload": {**sealed.payload, "kid": "b"}})
    with pytest.raises(DecryptionError, match="wrong key"):
        cipher.decrypt(forged)


def test_decrypted_plaintext_must_be_a_json_object() -> None:
    event = agent()
    nonce = bytes(12)
    aad = _crypto._associated_data(event, "k1")
    for plaintext in (b"[1,2]", b"\xff", b"NaN", b"{"):
        ct = AESGCM(K1).encrypt(nonce, plaintext, aad)
        forged = event.model_copy(
            update={
                "payload": {
                    "enc": "AES-256-GCM",
                    "v": 1,
                    "kid": "k1",
                    "nonce": base64.b64encode(nonce).decode(),
                    "ct": base64.b64encode(ct).decode(),
                }
            }
        )
        with pytest.raises(DecryptionError, match="decrypted payload"):
            PayloadCipher({"k1": K1}).decrypt(forged)


def test_plaintext_is_refused_unless_allowed() -> None:
    cipher = PayloadCipher({"k1": K1})
    event = agent()
    with pytest.raises(DecryptionError, match="not encrypted"):
        cipher.decrypt(event)
    assert cipher.decrypt(event, allow_plaintext=True) is event
    data = event.to_wire()
    with pytest.raises(DecryptionError, match="not encrypted"):
        EncryptingCodec(cipher).decode(data)
    assert EncryptingCodec(cipher, allow_plaintext=True).decode(data) == event


def test_header_must_match_the_envelope() -> None:
    codec = EncryptingCodec(PayloadCipher({"a": K1, "b": K2}, active_key_id="a"))
    encoded = codec.encode(agent())
    with pytest.raises(DecryptionError, match="does not match"):
        codec.decode(encoded.data, {KEY_ID_HEADER: "b"})
    with pytest.raises(DecryptionError, match="conflicting"):
        codec.decode(encoded.data, {KEY_ID_HEADER: ["a", "b"]})
    # A plaintext message that claims to be encrypted is refused even when plaintext is allowed.
    lenient = EncryptingCodec(PayloadCipher({"a": K1}), allow_plaintext=True)
    with pytest.raises(DecryptionError, match="does not match"):
        lenient.decode(agent().to_wire(), {KEY_ID_HEADER: "a"})


def test_double_encryption_is_refused() -> None:
    cipher = PayloadCipher({"k1": K1})
    with pytest.raises(EventValidationError, match="already encrypted"):
        cipher.encrypt(cipher.encrypt(agent()))


def test_lookalike_payload_is_not_an_envelope() -> None:
    event = agent(payload={"enc": "AES-256-GCM", "kid": "k1", "nonce": "", "ct": "", "x": 1})
    assert not is_encrypted(event)
    assert envelope_key_id(event) is None


# --------------------------------------------------------------------- keyring


@pytest.mark.parametrize(
    ("keys", "active", "match"),
    [
        ({}, None, "non-empty"),
        ({"k1": b"short"}, None, "32 bytes"),
        ({"k1": K1 + b"x"}, None, "32 bytes"),
        ({"k1": "0" * 32}, None, "bytes"),
        ({"": K1}, None, "key id"),
        ({"k 1": K1}, None, "key id"),
        ({"k\n1": K1}, None, "key id"),
        ({"x" * 65: K1}, None, "key id"),
        ({"a": K1, "b": K2}, None, "active_key_id"),
        ({"a": K1}, "b", "not in the keyring"),
    ],
)
def test_keyring_validation(keys: Any, active: Any, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        PayloadCipher(keys, active)


def test_repr_never_shows_keys() -> None:
    cipher = PayloadCipher({"k1": K1})
    assert "k1" in repr(cipher)
    assert K1.hex() not in repr(cipher)
    assert str(list(K1)) not in repr(cipher)


def test_generate_key() -> None:
    key = PayloadCipher.generate_key()
    assert len(key) == 32
    assert key != PayloadCipher.generate_key()
    PayloadCipher({"new": key})


def test_missing_cryptography_points_at_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_cryptography(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("cryptography"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cryptography)
    for module in [m for m in sys.modules if m.startswith("cryptography")]:
        monkeypatch.delitem(sys.modules, module)
    with pytest.raises(CryptoUnavailableError, match=r"pip install 'syncmsg\[crypto\]'") as info:
        PayloadCipher({"k1": K1})
    assert isinstance(info.value, ConfigurationError)
    assert isinstance(info.value, ImportError)


# --------------------------------------------------------------------- the documented format


def test_envelope_matches_the_documented_format(monkeypatch: pytest.MonkeyPatch) -> None:
    """An independent implementation of docs/events.md produces the same bytes."""
    nonce = bytes.fromhex("000102030405060708090a0b")
    monkeypatch.setattr(_crypto, "_new_nonce", lambda: nonce)
    event = AgentEvent.from_wire((FIXTURES / "agent_event.json").read_bytes())
    sealed = PayloadCipher({"k-2026-01": K1}).encrypt(event)

    plaintext = json.dumps(event.payload, separators=(",", ":"), ensure_ascii=False).encode()
    aad = (
        b"syncmsg-event-enc/v1\nAES-256-GCM\nk-2026-01\npayload\n"
        b"3b241101-e2bb-4255-8caf-4136c566a962\n9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f\n"
        b"agent.started"
    )
    ct = AESGCM(K1).encrypt(nonce, plaintext, aad)
    assert sealed.payload == {
        "enc": "AES-256-GCM",
        "v": 1,
        "kid": "k-2026-01",
        "nonce": base64.b64encode(nonce).decode(),
        "ct": base64.b64encode(ct).decode(),
    }
    expected = json.loads((FIXTURES / "agent_event_encrypted.json").read_text(encoding="utf-8"))
    assert json.loads(sealed.to_wire()) == expected


def test_test_vector_decrypts() -> None:
    """fixtures/agent_event_encrypted.json is a test vector for other implementations."""
    raw = (FIXTURES / "agent_event_encrypted.json").read_bytes()
    codec = EncryptingCodec(PayloadCipher({"k-2026-01": K1}))
    event = codec.decode(raw, {KEY_ID_HEADER: "k-2026-01"}, subject="agent.planner.agent.started")
    plain = parse_event((FIXTURES / "agent_event.json").read_bytes())
    assert event == plain


def test_upper_case_ids_on_the_wire_use_lower_case_in_the_aad() -> None:
    cipher = PayloadCipher({"k1": K1})
    sealed = json.loads(cipher.encrypt(agent()).to_wire())
    sealed["id"] = sealed["id"].upper()
    sealed["tenantId"] = sealed["tenantId"].upper()
    raw = json.dumps(sealed).encode()
    assert EncryptingCodec(cipher).decode(raw).payload["secret"] == "s3cr3t"  # type: ignore[union-attr]
