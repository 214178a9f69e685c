"""The error map, public names of exceptions, error-reply text and definite refusals."""

from __future__ import annotations

import asyncio
import pickle
import ssl
import traceback
from typing import Any

import nkeys
import pytest
from nats import errors as nerr
from nats.js import errors as jerr

import syncmsg
import syncmsg.jetstream
from syncmsg._errors import (
    describe_remote_exception,
    explain_connect_failure,
    is_definite_refusal,
    map_api_error,
    map_error,
)

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("package", [syncmsg, syncmsg.jetstream], ids=lambda p: p.__name__)
def test_exported_names_print_as_their_public_module(package: Any) -> None:
    for name in package.__all__:
        value = getattr(package, name)
        if isinstance(value, type) or callable(value):
            assert not value.__module__.split(".")[-1].startswith("_"), name
            assert getattr(__import__(value.__module__, fromlist=["_"]), name) is value


def test_tracebacks_name_syncmsg_not_its_private_module() -> None:
    line = traceback.format_exception_only(syncmsg.RemoteError("boom", subject="svc"))[-1]
    assert line == "syncmsg.RemoteError: svc: boom\n"
    assert repr(syncmsg.ClientState.CONNECTED).startswith("<ClientState")
    assert (
        syncmsg.Config.__pydantic_complete__ and syncmsg.jetstream.StreamSpec.__pydantic_complete__
    )


def test_exceptions_still_pickle() -> None:
    for error in (syncmsg.NoServersError("x"), syncmsg.TLSError("y"), syncmsg.TimeoutError("z")):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)


def test_tls_error_is_a_connection_error() -> None:
    assert issubclass(syncmsg.TLSError, syncmsg.NatsConnectionError)
    assert "TLSError" in syncmsg._errors.__doc__  # drawn in the tree


@pytest.mark.parametrize(
    ("raw", "expected", "text"),
    [
        (nerr.BadHeaderError("K\n"), syncmsg.InvalidHeaderError, "invalid header"),
        (nerr.Error("nats: 'Authorization Violation'"), syncmsg.AuthorizationError, "refused"),
        (
            nerr.Error("nats: 'Permissions Violation for Publish to \"x\"'"),
            syncmsg.AuthorizationError,
            "permission denied",
        ),
        (nerr.Error("nats: 'User Authentication Expired'"), syncmsg.AuthorizationError, "expired"),
        (nerr.Error("nats: 'Maximum Payload Violation'"), syncmsg.PayloadTooLargeError, "max"),
        (nerr.Error("nats: invalid connect url option"), syncmsg.ConfigurationError, "URL"),
        (
            ssl.SSLCertVerificationError(1, "certificate verify failed"),
            syncmsg.TLSError,
            "verify",
        ),
        (ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED]"), syncmsg.TLSError, "SSL"),
        (ssl.SSLEOFError(8, "EOF occurred"), syncmsg.NatsConnectionError, "EOF"),
        (nkeys.ErrInvalidSeed(), syncmsg.ConfigurationError, "seed is invalid"),
        (nerr.InvalidUserCredentialsError(), syncmsg.ConfigurationError, "credentials"),
        (nerr.ConnectionReconnectingError(), syncmsg.NatsConnectionError, "reconnecting"),
        (nerr.FlushTimeoutError(), syncmsg.TimeoutError, "timed out"),
        (nerr.UnexpectedEOF(), syncmsg.NatsConnectionError, "EOF"),
        (ConnectionRefusedError(111, "refused"), syncmsg.NatsConnectionError, "refused"),
        (asyncio.TimeoutError(), syncmsg.TimeoutError, "timed out"),
    ],
)
def test_map_error_table(raw: BaseException, expected: type[BaseException], text: str) -> None:
    mapped = map_error(raw)
    assert type(mapped) is expected and text in str(mapped), mapped


def test_map_error_names_the_subject_and_passes_the_rest_through() -> None:
    assert str(map_error(nerr.TimeoutError(), subject="svc.x")) == "timed out (svc.x)"
    assert str(map_error(nerr.NoRespondersError(), subject="svc.x")) == "no responders (svc.x)"
    bug = ZeroDivisionError("mine")
    assert map_error(bug) is bug
    ours = syncmsg.PayloadError("ours")
    assert map_error(ours) is ours


def test_stream_not_found_names_the_stream() -> None:
    reply = {"code": 404, "err_code": 10059, "description": "stream not found"}
    error = map_api_error(reply, stream="ORDERS")
    assert type(error) is syncmsg.StreamNotFoundError and error.stream == "ORDERS"
    assert str(error) == "stream not found (stream 'ORDERS')"
    assert error.description == "stream not found" and error.err_code == 10059
    consumer = map_api_error(
        {"code": 404, "err_code": 10014, "description": "consumer not found"},
        stream="ORDERS",
        consumer="billing",
    )
    assert str(consumer) == "consumer not found (stream 'ORDERS', consumer 'billing')"
    raw = jerr.APIError(code=404, err_code=10059, description="stream not found")
    assert "'ORDERS'" in str(map_error(raw, stream="ORDERS"))
    assert str(map_api_error(reply)) == "stream not found"  # no context: as before
    assert str(syncmsg.StreamNotFoundError()) == "The stream does not exist."


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (KeyError("n"), "KeyError: 'n'"),
        (ValueError("bad value"), "ValueError: bad value"),
        (ValueError(), "ValueError"),
        (RuntimeError("line one\r\nline two\n"), "RuntimeError: line one line two"),
        (TypeError("tab\there\x00nul"), "TypeError: tab here nul"),
        (ValueError("lone \ud800 surrogate"), "ValueError: lone \\ud800 surrogate"),
    ],
)
def test_describe_remote_exception(exc: BaseException, text: str) -> None:
    assert describe_remote_exception(exc) == text


def test_describe_remote_exception_is_one_short_line() -> None:
    class Broken(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert describe_remote_exception(Broken()).endswith("Broken")
    long = describe_remote_exception(ValueError("x" * 100_000))
    assert len(long) <= 1024 and long.endswith("…")
    long.encode()  # a valid header value: UTF-8, no CR/LF
    assert "\r" not in long and "\n" not in long


def test_definite_refusals() -> None:
    for refusal in (
        syncmsg.AuthorizationError("no"),
        syncmsg.TLSError("cert"),
        syncmsg.ConfigurationError("bad"),
        nerr.Error("nats: 'Authorization Violation'"),
        ssl.SSLCertVerificationError(1, "verify failed"),
        nkeys.ErrInvalidSeed(),
    ):
        assert is_definite_refusal(refusal), refusal
    for transient in (
        syncmsg.NoServersError("refused"),
        syncmsg.TimeoutError("slow"),
        ConnectionRefusedError(111, "refused"),
        ConnectionResetError("Connection lost"),
        ssl.SSLEOFError(8, "EOF"),
        asyncio.TimeoutError(),
        ValueError("a bug"),
    ):
        assert not is_definite_refusal(transient), transient


def test_explain_connect_failure_without_context() -> None:
    handshake = explain_connect_failure(ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER]"), [], ["u"])
    assert type(handshake) is syncmsg.TLSError and "TLS handshake failed" in str(handshake)
    closed = explain_connect_failure(ConnectionResetError("Connection lost"), [], ["u"])
    assert type(closed) is syncmsg.NoServersError and "closed the connection" in str(closed)
    nothing = explain_connect_failure(asyncio.CancelledError(), [], [])
    assert type(nothing) is syncmsg.NoServersError and "the server" in str(nothing)
    ours = syncmsg.ConfigurationError("from the options")
    assert explain_connect_failure(ours) is ours
    several = explain_connect_failure(
        TimeoutError(),
        [ConnectionRefusedError(111, "a"), OSError(113, "No route to host")],
        ["nats://a:1", "nats://b:2"],
    )
    assert "connection refused" in str(several) and "No route to host" in str(several)
    assert "nats://a:1, nats://b:2" in str(several)


@pytest.mark.parametrize(
    "refusal", [syncmsg.AuthorizationError("no"), syncmsg.TLSError("certificate")]
)
def test_retry_policies_never_retry_a_definite_refusal(refusal: BaseException) -> None:
    calls: list[float | None] = []

    def refused(left: float | None) -> None:
        calls.append(left)
        raise refusal

    policy = syncmsg.RetryPolicy(attempts=5, deadline=10, initial=0)
    with pytest.raises(type(refusal)):
        policy.call(refused, sleep=lambda s: None)
    with pytest.raises(type(refusal)):
        policy.call(refused, should_retry=lambda e: True, sleep=lambda s: None)
    assert len(calls) == 2


# ---------------------------------------------- waiting for serve()'s and jetstream's wiring


@pytest.mark.timeout(30)
def test_remote_error_keeps_the_handler_exception_type(client: syncmsg.Client) -> None:
    def handler(msg: syncmsg.Msg) -> Any:
        return {}["n"]

    sub = client.serve("errors.keyerror", handler, error_callback=lambda e, m: None)
    try:
        with pytest.raises(syncmsg.RemoteError) as info:
            client.request("errors.keyerror", b"", timeout=5)
        assert info.value.description == "KeyError: 'n'"
        assert str(info.value) == "errors.keyerror: KeyError: 'n'"
    finally:
        sub.unsubscribe()


@pytest.mark.timeout(30)
def test_stream_not_found_from_the_server_names_the_stream(client: syncmsg.Client) -> None:
    with pytest.raises(syncmsg.StreamNotFoundError) as info:
        client.jetstream().stream_info("NO_SUCH_STREAM_HERE")
    assert info.value.stream == "NO_SUCH_STREAM_HERE" and "NO_SUCH_STREAM_HERE" in str(info.value)
