"""Subject validation, done before anything reaches the wire.

Threading: pure functions, called on the caller's thread. Valid publish subjects are cached
so the hot publish path pays for a dict lookup, not a parse.
"""

from __future__ import annotations

import re

from syncmsg._errors import InvalidSubjectError

__all__ = ["check_publish_subject", "check_queue", "check_subscribe_subject", "check_token"]

_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f]")
_CACHE_LIMIT = 4096
_valid_publish_subjects: dict[str, None] = {}


def _tokens(subject: object, what: str) -> list[str]:
    if not isinstance(subject, str):
        raise InvalidSubjectError(f"{what} must be a str, not {type(subject).__name__}")
    if not subject:
        raise InvalidSubjectError(f"{what} must not be empty")
    if _FORBIDDEN.search(subject):
        raise InvalidSubjectError(f"{what} {subject!r} contains whitespace or a control character")
    tokens = subject.split(".")
    if "" in tokens:
        raise InvalidSubjectError(f"{what} {subject!r} has an empty token")
    return tokens


def check_publish_subject(subject: str, what: str = "subject") -> str:
    """Return ``subject`` if a message can be published to it, else raise.

    Publishing needs a literal subject: no empty token, whitespace, control character,
    or wildcard token (``*`` or ``>``).
    """
    if subject in _valid_publish_subjects:
        return subject
    for token in _tokens(subject, what):
        if token in ("*", ">"):
            raise InvalidSubjectError(f"cannot publish to wildcard {what} {subject!r}")
    if len(_valid_publish_subjects) >= _CACHE_LIMIT:
        _valid_publish_subjects.clear()
    _valid_publish_subjects[subject] = None
    return subject


def check_subscribe_subject(subject: str) -> str:
    """Return ``subject`` if it can be subscribed to (wildcards allowed), else raise."""
    tokens = _tokens(subject, "subject")
    for index, token in enumerate(tokens):
        if token == ">" and index != len(tokens) - 1:
            raise InvalidSubjectError(f"'>' must be the last token in {subject!r}")
    return subject


def check_queue(queue: str | None) -> str:
    """Return the queue group name ('' for none), or raise if it cannot be used."""
    if not queue:
        return ""
    if not isinstance(queue, str) or _FORBIDDEN.search(queue):
        raise InvalidSubjectError(f"invalid queue group {queue!r}")
    return queue


def check_token(token: str, what: str = "subject token") -> str:
    """Return ``token`` if it can stand as exactly one subject token, else raise.

    Use it for values spliced into subjects (``f"orders.{customer}.created"``): a token
    holding ``.``, ``*``, ``>`` or whitespace would silently address another subject.
    """
    if not isinstance(token, str) or not token:
        raise InvalidSubjectError(f"{what} must be a non-empty str, got {token!r}")
    if "." in token or "*" in token or ">" in token or _FORBIDDEN.search(token):
        raise InvalidSubjectError(f"{what} {token!r} must not contain '.', '*', '>' or whitespace")
    return token
