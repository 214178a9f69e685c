"""Fuzzing subjects, headers and payloads through the public API, against a real server.

Every input is either accepted or refused with a syncmsg error (any other exception fails
the test), what is accepted arrives intact, and after every call, refused or not, the same
connection still publishes and requests: no reconnect, no connection error.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import syncmsg
from syncmsg._codec import encode_payload
from syncmsg._subjects import MAX_NAMES_BYTES

pytestmark = pytest.mark.timeout(180)

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SURROGATE = st.characters(categories=["Cs"])  # lone surrogates: UTF-8 cannot encode them
NASTY = st.one_of(
    st.sampled_from(
        [".", "*", ">", " ", "\t", "\r", "\n", "\x00", "\x1b", "\x7f", "\u00a0", "\u2028", ":"]
    ),
    SURROGATE,
)


def texts(plain: str, max_size: int, min_size: int = 0) -> st.SearchStrategy[str]:
    """``plain`` characters with nasty ones mixed in, or any text.

    Two branches, because hypothesis merges a union of character strategies into one and
    then drops the surrogates.
    """
    mixed = st.text(st.one_of(st.sampled_from(plain), NASTY), min_size=min_size, max_size=max_size)
    return st.one_of(mixed, st.text(min_size=min_size, max_size=max_size))


NOT_STR = st.one_of(
    st.none(), st.integers(), st.binary(max_size=4), st.lists(st.text(max_size=2), max_size=2)
)
SUBJECT_LIKE = st.lists(
    st.sampled_from(["a", "b1", "*", ">", "", "é", "✓", "$JS", "_INBOX", "'"]),
    min_size=1,
    max_size=5,
)
NAMES = st.one_of(
    texts("ab.", max_size=12),
    SUBJECT_LIKE.map(".".join),
    st.tuples(SUBJECT_LIKE.map(".".join), NASTY).map("".join),
    st.builds(
        lambda size, char: char * size,
        st.integers(MAX_NAMES_BYTES // 2 - 2, MAX_NAMES_BYTES // 2 + 2),  # é: two bytes
        st.sampled_from(["é"]),
    ),
    st.integers(MAX_NAMES_BYTES - 2, MAX_NAMES_BYTES + 2).map(lambda size: "a" * size),
    NOT_STR,
)
VALID_KEY = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,8}", fullmatch=True)
HEADER_KEYS = st.one_of(
    VALID_KEY,
    VALID_KEY,
    st.tuples(VALID_KEY, NASTY).map("".join),  # "K\n", "K:", "K\ud800", ...
    texts("Ab-_", max_size=6),
    st.sampled_from(["", "K V", "Nats-Msg-Id", "Status", "é"]),
    st.integers(),
)
HEADER_VALUES = st.one_of(
    texts("v1 ", max_size=10),
    st.lists(texts("v2", max_size=4), max_size=3),
    st.integers() | st.binary(max_size=3) | st.none(),
)
HEADERS = st.one_of(
    st.dictionaries(VALID_KEY, HEADER_VALUES, min_size=1, max_size=3),  # the values vary
    st.dictionaries(HEADER_KEYS, st.just("v"), min_size=1, max_size=2),  # the keys vary
    st.dictionaries(HEADER_KEYS, HEADER_VALUES, max_size=3),
    st.lists(st.tuples(st.text(max_size=3), st.text(max_size=3)), max_size=2) | st.text(max_size=3),
)


class Reading(BaseModel):
    value: float
    tags: list[str] = []
    extra: dict[str, Any] = {}


JSON_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts("ab", max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)
PAYLOADS = st.one_of(
    st.binary(max_size=64),
    texts("abc ", max_size=16),
    st.dictionaries(texts("k", max_size=4), JSON_LIKE, max_size=3),
    st.lists(JSON_LIKE, max_size=3),
    st.builds(
        Reading,
        value=st.floats(),
        tags=st.lists(texts("t", max_size=3), max_size=2),
        extra=st.dictionaries(st.text(max_size=3), JSON_LIKE, max_size=2),
    ),
    st.none(),
    st.floats(),
    st.sets(st.integers(), max_size=2),
    st.tuples(st.integers()),
    st.builds(object),
)


class Fuzzed:
    """A client with an echo service, and the check that it is still healthy."""

    def __init__(self, client: syncmsg.Client) -> None:
        self.client = client
        self.reconnects = client.stats()["reconnects"]
        self.errors = client.stats()["errors"]
        self.received: queue.Queue[bytes] = queue.Queue()
        self._tokens = itertools.count()

    def attempt(self, call: Callable[[], Any]) -> Any:
        """Run ``call``: its result if accepted, None if refused with a syncmsg error."""
        try:
            return call()
        except syncmsg.SyncMsgError:
            return None

    def assert_still_healthy(self) -> None:
        client = self.client
        token = b"still publishing %d" % next(self._tokens)
        client.publish("fuzz.sink", token)
        client.flush(timeout=5)
        while self.received.get(timeout=5) != token:  # skip what a fuzzed publish sent
            pass
        assert client.request("fuzz.echo", b"ping", timeout=5).data == b"ping"
        stats = client.stats()
        assert stats["reconnects"] == self.reconnects, "the server dropped the connection"
        assert stats["errors"] == self.errors, "the connection reported an error"
        assert client.state is syncmsg.ClientState.CONNECTED


@pytest.fixture(scope="module")
def fuzzed(nats_url: str) -> Iterator[Fuzzed]:
    with syncmsg.connect(nats_url, timeout=5) as client:
        state = Fuzzed(client)
        client.serve("fuzz.echo", lambda msg: msg.data)
        client.serve(
            "fuzz.headers", lambda msg: {"headers": dict(msg.headers or {}), "data": msg.text()}
        )
        client.subscribe("fuzz.sink", lambda msg: state.received.put(msg.data))
        client.flush(timeout=5)
        state.assert_still_healthy()
        yield state


def ignore(msg: syncmsg.Msg) -> None:
    """A subscription callback that does nothing."""


@FUZZ
@given(name=NAMES)
def test_fuzzed_subjects_reply_subjects_and_queue_groups(fuzzed: Fuzzed, name: Any) -> None:
    client = fuzzed.client
    fuzzed.attempt(lambda: client.publish(name, b"x"))
    fuzzed.attempt(lambda: client.publish("fuzz.sink.other", b"x", reply=name))
    fuzzed.attempt(lambda: client.request(name, b"x", timeout=0.3))
    for subscribe in (
        lambda: client.subscribe(name, ignore),
        lambda: client.subscribe("fuzz.queue", ignore, queue=name),
        lambda: client.serve(name, lambda msg: b"served"),
    ):
        sub = fuzzed.attempt(subscribe)
        if sub is not None:
            sub.unsubscribe()
    fuzzed.assert_still_healthy()


@FUZZ
@given(headers=HEADERS)
def test_fuzzed_headers(fuzzed: Fuzzed, headers: Any) -> None:
    client = fuzzed.client
    reply = fuzzed.attempt(lambda: client.request("fuzz.headers", b"", headers=headers))
    if reply is not None and headers:  # accepted: it arrived; so must every key with a value
        received = reply.json()["headers"]
        for key, value in headers.items():
            values = [value] if isinstance(value, str) else value
            if values:  # the last value wins; receivers strip spaces and tabs around it
                assert received.get(key) == values[-1].strip(" \t"), (key, values, received)
    fuzzed.attempt(lambda: client.publish("fuzz.sink.other", b"", headers=headers))
    fuzzed.assert_still_healthy()


@FUZZ
@given(data=PAYLOADS)
def test_fuzzed_payloads(fuzzed: Fuzzed, data: Any) -> None:
    client = fuzzed.client
    reply = fuzzed.attempt(lambda: client.request("fuzz.echo", data, timeout=5))
    if reply is not None:  # accepted: the responder got exactly the encoded bytes
        assert reply.data == encode_payload(data)
    fuzzed.attempt(lambda: client.publish("fuzz.sink.other", data))
    fuzzed.attempt(lambda: client.publish("fuzz.sink.other", data, headers={"K": "v"}))
    fuzzed.assert_still_healthy()


# ---------------------------------------------- names that fit alone but not together


# Each on a client of its own: until the check is wired, the server drops the connection.
@pytest.mark.timeout(30)
def test_subject_and_reply_that_do_not_fit_together_are_refused(client: syncmsg.Client) -> None:
    half = MAX_NAMES_BYTES // 2 + 100
    with pytest.raises(syncmsg.InvalidSubjectError, match="together"):
        client.publish("s" * half, b"x", reply="r" * half)


@pytest.mark.timeout(30)
def test_subject_and_queue_that_do_not_fit_together_are_refused(client: syncmsg.Client) -> None:
    half = MAX_NAMES_BYTES // 2 + 100
    with pytest.raises(syncmsg.InvalidSubjectError, match="together"):
        client.subscribe("s" * half, ignore, queue="q" * half)


@pytest.mark.timeout(30)
def test_longest_names_accepted_still_fit_the_server(fuzzed: Fuzzed) -> None:
    client = fuzzed.client
    longest = "a" * MAX_NAMES_BYTES
    got: list[bytes] = []
    done = threading.Event()
    sub = client.subscribe(longest, lambda msg: (got.append(msg.data), done.set()))
    client.publish(longest, b"far", headers={"K": "v"})
    assert done.wait(5) and got == [b"far"]
    sub.unsubscribe()
    client.publish("fuzz.sink.other", b"x", reply="r" * (MAX_NAMES_BYTES - len("fuzz.sink.other")))
    fuzzed.assert_still_healthy()
