"""The one-match check of a new publish subject accepts exactly what the token-by-token
check accepts (it only exists to make a first sight of a subject cheap)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from syncmsg._errors import InvalidSubjectError
from syncmsg._subjects import _LITERAL_SUBJECT, MAX_NAMES_BYTES, _tokens

PIECES = ["a", "b", "Z9", "*", ">", ".", " ", "\t", "\n", "\x00", "\x1f", "\x7f", "é", "**", "*a"]


def _slow_accepts(subject: str) -> bool:
    try:
        tokens, _ = _tokens(subject, "subject")
    except InvalidSubjectError:
        return False
    return not any(token in ("*", ">") for token in tokens)


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=8).map("".join))
def test_one_match_agrees_with_the_token_check(subject: str) -> None:
    fast = subject.isascii() and _LITERAL_SUBJECT.fullmatch(subject) is not None
    if subject.isascii() and len(subject) <= MAX_NAMES_BYTES:
        assert fast == _slow_accepts(subject), repr(subject)
    elif fast:  # what the fast check accepts is always valid
        assert _slow_accepts(subject), repr(subject)


def test_examples() -> None:
    for good in ("a", "a.b", "a*b.c", "x>.y", "_INBOX.abc.def", "$JS.API.INFO"):
        assert _LITERAL_SUBJECT.fullmatch(good)
    for bad in ("", ".", "a.", ".a", "a..b", "*", ">", "a.*", "a.>.b", "a b", "a\n", ">\n"):
        assert not _LITERAL_SUBJECT.fullmatch(bad), repr(bad)
