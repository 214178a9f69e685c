"""Subject validation, done before anything reaches the wire.

Threading: pure functions, called on the caller's thread. Valid publish subjects are cached
(with their size in bytes) so the hot publish path pays for a dict lookup, not a parse.

Besides the syntax, names must fit the server's control line: nats-server closes the
connection of a client whose ``PUB``/``HPUB``/``SUB`` line is longer than its
``max_control_line`` (4096 bytes by default), so an over-long subject is refused here.
"""

from __future__ import annotations

import re
from typing import NoReturn

from syncmsg._errors import InvalidSubjectError

__all__ = [
    "MAX_CONTROL_LINE",
    "MAX_NAMES_BYTES",
    "check_publish",
    "check_publish_subject",
    "check_queue",
    "check_reply_subject",
    "check_request",
    "check_subscribe_subject",
    "check_subscription",
    "check_token",
]

MAX_CONTROL_LINE = 4096
"""nats-server's default ``max_control_line``, in bytes. Measured against nats-server 2.x:
it counts the arguments after the verb (``PUB <subject> <reply> <size>``), and a longer line
makes it send ``-ERR 'maximum control line exceeded'`` and close the connection."""

MAX_NAMES_BYTES = MAX_CONTROL_LINE - 64
"""The UTF-8 bytes a subject and its reply subject (publish) or queue group (subscribe) may
take together. The 64 bytes kept back hold the verb, the spaces, two sizes or a subscription
id, and CRLF, under either reading of the limit (with or without the verb), and the longer
``MSG <subject> <sid> <reply> <size>`` line that the server sends on to subscribers."""

_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f]")
# A literal subject, all in one match: tokens of allowed characters, none of them a lone
# ``*`` or ``>``. What it accepts, the token-by-token check accepts too; it only spares that
# check's cost for subjects seen for the first time (every reply subject a responder
# answers is one).
_TOKEN = r"(?![*>](?:\.|\Z))[^.\s\x00-\x1f\x7f]+"
_LITERAL_SUBJECT = re.compile(rf"{_TOKEN}(?:\.{_TOKEN})*")
_CACHE_LIMIT = 4096
_valid_publish_subjects: dict[str, int] = {}  # subject -> its size in UTF-8 bytes


def _show(name: object) -> str:
    """``name`` for an error message: repr'd, and cut when it is long."""
    text = repr(name)
    if len(text) <= 80:
        return text
    length = len(name) if isinstance(name, str) else len(text)
    return f"{text[:60]}…{text[-12:]} ({length} characters)"


def _size(name: str, what: str) -> int:
    """The UTF-8 size of a name that has been checked to be a str."""
    try:
        size = len(name.encode())
    except UnicodeEncodeError:
        raise InvalidSubjectError(
            f"{what} {_show(name)} cannot be encoded as UTF-8 (a lone surrogate?)"
        ) from None
    if size > MAX_NAMES_BYTES:
        raise InvalidSubjectError(
            f"{what} {_show(name)} is {size} bytes; the server's control line leaves room for "
            f"{MAX_NAMES_BYTES} bytes of subject and reply subject or queue group"
        )
    return size


def _tokens(subject: object, what: str) -> tuple[list[str], int]:
    if not isinstance(subject, str):
        raise InvalidSubjectError(f"{what} must be a str, not {type(subject).__name__}")
    if not subject:
        raise InvalidSubjectError(f"{what} must not be empty")
    if _FORBIDDEN.search(subject):
        raise InvalidSubjectError(
            f"{what} {_show(subject)} contains whitespace or a control character"
        )
    size = _size(subject, what)
    tokens = subject.split(".")
    if "" in tokens:
        raise InvalidSubjectError(f"{what} {_show(subject)} has an empty token")
    return tokens, size


def _learn_publish_subject(subject: object, what: str) -> int:
    """Check a publish subject not in the cache, cache it, and return its size in bytes."""
    if (
        type(subject) is str
        and subject.isascii()
        and len(subject) <= MAX_NAMES_BYTES
        and _LITERAL_SUBJECT.fullmatch(subject)
    ):
        size = len(subject)  # ASCII: one byte per character
    else:  # the slow look, which also says what is wrong
        tokens, size = _tokens(subject, what)
        for token in tokens:
            if token in ("*", ">"):
                raise InvalidSubjectError(f"cannot publish to wildcard {what} {_show(subject)}")
    if len(_valid_publish_subjects) >= _CACHE_LIMIT:
        _valid_publish_subjects.clear()
    _valid_publish_subjects[subject] = size  # type: ignore[index]
    return size


def _refuse_together(total: int, subject: object, other_what: str) -> NoReturn:
    raise InvalidSubjectError(
        f"subject {_show(subject)} and its {other_what} are {total} bytes together; "
        f"the server's control line leaves room for {MAX_NAMES_BYTES}"
    )


def check_publish_subject(subject: str, what: str = "subject") -> str:
    """Return ``subject`` if a message can be published to it, else raise.

    Publishing needs a literal subject: no empty token, whitespace, control character,
    wildcard token (``*`` or ``>``) or lone surrogate, and at most :data:`MAX_NAMES_BYTES`.
    """
    try:
        if subject in _valid_publish_subjects:  # the hot path: one dict lookup
            return subject
    except TypeError:  # unhashable, so certainly not a str
        pass
    _learn_publish_subject(subject, what)
    return subject


def check_reply_subject(reply: str) -> str:
    """Return ``reply`` if it can be a message's reply subject (a literal subject), else raise."""
    return check_publish_subject(reply, "reply subject")


def check_publish(subject: str, reply: str | None = None) -> None:
    """Check a publish's subject and (optional) reply subject, each and together.

    The hot path of publish: a dict lookup (two with a reply) for names seen before.
    """
    try:
        size = _valid_publish_subjects[subject]
    except (KeyError, TypeError):  # TypeError: unhashable, so certainly not a str
        size = _learn_publish_subject(subject, "subject")
    if reply:
        try:
            reply_size = _valid_publish_subjects[reply]
        except (KeyError, TypeError):
            reply_size = _learn_publish_subject(reply, "reply subject")
        if size + reply_size > MAX_NAMES_BYTES:
            _refuse_together(size + reply_size, subject, "reply subject")


def check_request(subject: str, reply_bytes: int) -> None:
    """Check a request's subject, leaving room for a generated reply of ``reply_bytes``.

    For inboxes made per request (``_INBOX.<prefix>.<token>``), which are never cached.
    """
    try:
        size = _valid_publish_subjects[subject]
    except (KeyError, TypeError):
        size = _learn_publish_subject(subject, "subject")
    if size + reply_bytes > MAX_NAMES_BYTES:
        _refuse_together(size + reply_bytes, subject, "reply subject")


def check_subscribe_subject(subject: str) -> str:
    """Return ``subject`` if it can be subscribed to (wildcards allowed), else raise."""
    tokens, _ = _tokens(subject, "subject")
    for index, token in enumerate(tokens):
        if token == ">" and index != len(tokens) - 1:
            raise InvalidSubjectError(f"'>' must be the last token in {_show(subject)}")
    return subject


def check_queue(queue: str | None) -> str:
    """Return the queue group name ('' for none), or raise if it cannot be used."""
    if queue is None or queue == "":
        return ""
    if not isinstance(queue, str) or _FORBIDDEN.search(queue):
        raise InvalidSubjectError(f"invalid queue group {queue!r}")
    _size(queue, "queue group")
    return queue


def check_subscription(subject: str, queue: str | None = None) -> str:
    """Check a subscription's subject and queue group, each and together.

    Returns the queue group ('' for none).
    """
    check_subscribe_subject(subject)
    group = check_queue(queue)
    total = len(subject.encode()) + len(group.encode())
    if total > MAX_NAMES_BYTES:
        _refuse_together(total, subject, "queue group")
    return group


def check_token(token: str, what: str = "subject token") -> str:
    """Return ``token`` if it can stand as exactly one subject token, else raise.

    Use it for values spliced into subjects (``f"orders.{customer}.created"``): a token
    holding ``.``, ``*``, ``>`` or whitespace would silently address another subject.
    """
    if not isinstance(token, str) or not token:
        raise InvalidSubjectError(f"{what} must be a non-empty str, got {token!r}")
    if "." in token or "*" in token or ">" in token or _FORBIDDEN.search(token):
        raise InvalidSubjectError(f"{what} {token!r} must not contain '.', '*', '>' or whitespace")
    _size(token, what)
    return token
