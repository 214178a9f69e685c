"""NKeys and NATS JWTs (operator, account, user), made at test time, and ``.creds`` files.

Threading: pure functions and immutable values; use them from any thread. Generating a
key reads ``os.urandom``; nothing here opens a connection or touches the disk except
:func:`write_creds`.

What nats-server checks, and so what is written here (the nats-io/jwt v2 format):

* a JWT is ``base64url(header) "." base64url(claims) "." base64url(signature)``, base64url
  without padding; the header is ``{"typ":"JWT","alg":"ed25519-nkey"}``;
* the signature is the Ed25519 signature, by the *issuer's* NKey, of the ASCII bytes
  ``header "." claims`` as they appear in the token;
* the claims hold ``jti`` (an id: the base32 SHA-512/256 of the standard claims without
  it), ``iat``, ``iss`` (the issuer's public key), ``name``, ``sub`` (the subject's public
  key), optionally ``exp``, and ``nats`` (the type-specific part, with ``type`` and
  ``version: 2``);
* an operator is self-signed (``iss == sub``, an ``O...`` key); an account is signed by its
  operator (``A...`` subject); a user by its account (``U...`` subject).

The NKey signing comes from the ``nkeys`` package (``pip install 'syncmsg[testing]'``), imported
only when a key is made, so that ``import syncmsg.testing`` works without it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from syncmsg._errors import ConfigurationError

__all__ = [
    "JWT_HEADER",
    "KeyKind",
    "NKey",
    "creds_text",
    "decode_jwt",
    "encode_jwt",
    "write_creds",
]

KeyKind = Literal["operator", "account", "user"]

JWT_HEADER: Mapping[str, str] = {"typ": "JWT", "alg": "ed25519-nkey"}
"""The only header nats-server accepts for v2 JWTs."""

_JWT_VERSION = 2
# The first base32 letter of a public key names its role; nkeys' prefix byte makes it so.
_PUBLIC_LETTER: Mapping[str, KeyKind] = {"O": "operator", "A": "account", "U": "user"}
_ISSUER_OF: Mapping[KeyKind, KeyKind] = {
    "operator": "operator",
    "account": "operator",
    "user": "account",
}


def _nkeys() -> Any:
    try:
        import nkeys
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ConfigurationError(
            "NKeys and JWTs need the nkeys package: pip install 'syncmsg[testing]'"
        ) from exc
    return nkeys


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class NKey:
    """An Ed25519 key pair in NKey form: ``public_key`` (``O…``/``A…``/``U…``) and ``seed``.

    The seed is a secret: it is not in the repr. Make one with :meth:`generate` or
    :meth:`from_seed`.
    """

    __slots__ = ("_pair", "kind", "public_key")

    def __init__(self, pair: Any) -> None:
        self._pair = pair
        self.public_key: str = pair.public_key.decode("ascii")
        kind = _PUBLIC_LETTER.get(self.public_key[:1])
        if kind is None:
            raise ConfigurationError("only operator, account and user NKeys are supported")
        self.kind: KeyKind = kind

    @classmethod
    def generate(cls, kind: KeyKind) -> NKey:
        """A new random key pair for an operator, an account or a user."""
        nkeys = _nkeys()
        prefix = {
            "operator": nkeys.PREFIX_BYTE_OPERATOR,
            "account": nkeys.PREFIX_BYTE_ACCOUNT,
            "user": nkeys.PREFIX_BYTE_USER,
        }[kind]
        return cls(nkeys.from_seed(bytearray(nkeys.encode_seed(os.urandom(32), prefix))))

    @classmethod
    def from_seed(cls, seed: str) -> NKey:
        """The key pair of an ``SO…``/``SA…``/``SU…`` seed."""
        nkeys = _nkeys()
        try:
            pair = nkeys.from_seed(bytearray(seed.encode("ascii")))
            return cls(pair)
        except (nkeys.NkeysError, binascii.Error, ValueError, UnicodeError):
            raise ConfigurationError("not a valid NKey seed") from None

    @property
    def seed(self) -> str:
        """The secret seed (``S…``) that signs for this key."""
        return bytes(self._pair.seed).decode("ascii")

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``data``."""
        return bytes(self._pair.sign(data))

    def __repr__(self) -> str:
        return f"<NKey {self.kind} {self.public_key}>"


def _verify(public_key: str, data: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``public_key``'s signature of ``data``."""
    import nacl.exceptions
    import nacl.signing

    nkeys = _nkeys()
    try:
        raw = base64.b32decode(public_key + "=" * (-len(public_key) % 8))
    except binascii.Error:
        return False
    body, checksum = raw[:-2], raw[-2:]
    if len(body) != 33 or nkeys.crc16_checksum(body) != checksum:
        return False
    try:
        nacl.signing.VerifyKey(bytes(body[1:])).verify(data, signature)
    except nacl.exceptions.BadSignatureError:
        return False
    return True


def _jti(claims: Mapping[str, Any]) -> str:
    """The id nats-io/jwt gives a token: a hash of its standard claims (without ``jti``)."""
    # nats-io/jwt's field order of its standard claims, which its hash is taken over.
    names = ("aud", "exp", "iat", "iss", "name", "nbf", "sub")
    standard = {k: claims[k] for k in names if k in claims}
    try:
        digest = hashlib.new("sha512_256", _compact(standard)).digest()
    except ValueError:  # pragma: no cover - OpenSSL without SHA-512/256; any unique id will do
        digest = hashlib.sha256(_compact(standard)).digest()
    return base64.b32encode(digest).rstrip(b"=").decode("ascii")


def encode_jwt(
    kind: KeyKind,
    *,
    subject: str,
    signer: NKey,
    name: str,
    nats: Mapping[str, Any] | None = None,
    expires: float | None = None,
    issued_at: float | None = None,
) -> str:
    """Sign a ``kind`` JWT for the public key ``subject`` with ``signer``.

    ``nats`` is the type-specific part (limits, permissions, exports, …); ``type`` and
    ``version`` are added. ``expires`` is a Unix time after which the server refuses it.

    Raises:
        ConfigurationError: ``subject`` is not a public key of ``kind``, or ``signer`` may
            not sign such a token (an account is signed by an operator, a user by an account).
    """
    if _PUBLIC_LETTER.get(subject[:1]) != kind:
        raise ConfigurationError(f"the subject of a {kind} JWT must be a {kind} public key")
    if signer.kind != _ISSUER_OF[kind]:
        raise ConfigurationError(f"a {kind} JWT is signed by an {_ISSUER_OF[kind]} key")
    if kind == "operator" and signer.public_key != subject:
        raise ConfigurationError("an operator JWT is signed by the operator itself")
    claims: dict[str, Any] = {
        "iat": int(time.time() if issued_at is None else issued_at),
        "iss": signer.public_key,
        "name": name,
        "sub": subject,
    }
    if expires is not None:
        claims["exp"] = int(expires)
    claims["jti"] = _jti(claims)
    claims["nats"] = {**(nats or {}), "type": kind, "version": _JWT_VERSION}
    signed = f"{_b64url(_compact(dict(JWT_HEADER)))}.{_b64url(_compact(claims))}"
    return f"{signed}.{_b64url(signer.sign(signed.encode('ascii')))}"


def decode_jwt(token: str, *, verify: bool = True) -> dict[str, Any]:
    """The claims of a NATS JWT; with ``verify``, only if its issuer's signature is good.

    Raises:
        ConfigurationError: not a NATS JWT, or (with ``verify``) a bad signature.
    """
    try:
        header_part, claims_part, signature_part = token.strip().split(".")
        header = json.loads(_b64url_decode(header_part))
        claims = json.loads(_b64url_decode(claims_part))
        signature = _b64url_decode(signature_part)
    except (ValueError, binascii.Error):
        raise ConfigurationError("not a JWT") from None
    if not isinstance(claims, dict) or header != dict(JWT_HEADER):
        raise ConfigurationError("not a NATS v2 JWT")
    if verify:
        issuer = claims.get("iss")
        signed = f"{header_part}.{claims_part}".encode("ascii")
        if not isinstance(issuer, str) or not _verify(issuer, signed, signature):
            raise ConfigurationError("the JWT's signature does not match its issuer")
    return claims


def creds_text(jwt: str, seed: str) -> str:
    """A ``.creds`` file's text: a user JWT and the user's NKey seed, as ``nsc`` writes it."""
    return (
        "-----BEGIN NATS USER JWT-----\n"
        f"{jwt}\n"
        "------END NATS USER JWT------\n"
        "\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n"
        "NKEYs are sensitive and should be treated as secrets.\n"
        "\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{seed}\n"
        "------END USER NKEY SEED------\n"
        "\n"
        "*************************************************************\n"
    )


def write_creds(path: str | os.PathLike[str], jwt: str, seed: str) -> Path:
    """Write a ``.creds`` file readable by its owner only (0600); returns its path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(creds_text(jwt, seed))
    os.chmod(target, 0o600)  # O_CREAT's mode does not apply to a file that already existed
    return target
