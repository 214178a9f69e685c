"""An endpoint: one subscription whose worker threads run the handler and answer.

Threading: :meth:`Endpoint._handle` runs on the endpoint subscription's worker threads
(``syncmsg-sub-<sid>-<i>``, ``workers`` of them, made by ``client.subscribe``), several at
once; it never runs on the event loop. :meth:`Endpoint.info` and :meth:`Endpoint.stats`
are called from any thread (the service's discovery worker answering ``$SRV.STATS``, or
the user's). The reply goes back with ``msg.respond`` through the client's outbound queue.

What a request becomes:

* the handler returns: the return value is the reply (unless the handler already called
  ``respond``/``respond_error``); with a ``response_model`` it is validated first;
* :class:`~syncmsg.services.ServiceError`: an error reply with its code and description;
* a payload the endpoint's ``request_model`` (or the handler's ``request.json()`` /
  ``request.parse()``) cannot read: a 400 error reply;
* any other exception: a 500 error reply whose description is ``"<Type>: <message>"``;
  it is logged on ``syncmsg.services`` with its traceback and passed to the client's
  ``error_callback``.

Every error reply has the ``Nats-Service-Error`` and ``Nats-Service-Error-Code`` headers
(the caller's ``request()`` raises :class:`~syncmsg.RemoteError` with the code) and counts
in ``num_errors``, with ``last_error`` = ``"<code>:<description>"`` (as nats.go counts).
A request is counted when its handler returns, before the reply made of its return value
(or of its error) is sent: a caller holding that reply finds the request in the stats.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from syncmsg import _instrumentation
from syncmsg._codec import Data, encode_payload
from syncmsg._errors import PayloadTooLargeError, SyncMsgError, describe_remote_exception
from syncmsg._msg import Msg
from syncmsg.services._config import EndpointConfig, StatsHandler
from syncmsg.services._models import EndpointInfo, EndpointStats
from syncmsg.services._request import Request, ServiceError, one_line
from syncmsg.services._stats import EndpointCounters

if TYPE_CHECKING:
    from syncmsg._client import Client
    from syncmsg._subscription import Subscription

__all__ = ["Endpoint", "current_endpoint"]

log = logging.getLogger("syncmsg.services")

_handling = threading.local()  # .endpoint: the Endpoint whose handler this thread runs


def current_endpoint() -> Endpoint | None:
    """The endpoint whose handler is running on this thread, if any (so that a handler
    stopping its own service does not wait for itself)."""
    return getattr(_handling, "endpoint", None)


class Endpoint:
    """One endpoint of a running service (see :meth:`Service.add_endpoint`)."""

    def __init__(
        self,
        config: EndpointConfig,
        queue_group: str,
        service_name: str,
        stats_handler: StatsHandler | None,
    ) -> None:
        self.config = config
        self.queue_group = queue_group
        self._service_name = service_name
        self._stats_handler = stats_handler
        self._counters = EndpointCounters()
        self._client: Client | None = None
        self.subscription: Subscription | None = None

    def __repr__(self) -> str:
        return (
            f"<syncmsg.services.Endpoint {self.name!r} subject={self.subject!r} "
            f"queue_group={self.queue_group!r}>"
        )

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def subject(self) -> str:
        assert self.config.subject is not None  # EndpointConfig fills it in
        return self.config.subject

    @property
    def metadata(self) -> Mapping[str, str]:
        return self.config.metadata

    # -- starting (the caller's thread) --------------------------------------------------
    def _start(self, client: Client, workers: int, timeout: float | None) -> None:
        """Subscribe; the server has the subscription when this returns."""
        self._client = client
        self.subscription = client.subscribe(
            self.subject,
            self._handle,
            queue=self.queue_group or None,
            workers=workers,
            timeout=timeout,
        )

    # -- the worker threads ----------------------------------------------------------------
    def _handle(self, msg: Msg) -> None:
        """Run the handler on one request and answer it (an endpoint worker thread)."""
        started = time.perf_counter_ns()
        config = self.config
        request = Request(msg, config.request_model)
        reply: bytes | None = None
        failure: tuple[str, str, Data] | None = None
        _handling.endpoint = self
        try:
            if config.request_model is not None:
                request.parse()  # bad input: a 400 before the handler runs
            result = config.handler(request)
            if not request.responded and msg.reply:
                reply = self._encode(result)
        except Exception as exc:
            failure = self._failure(request, exc)
        finally:
            _handling.endpoint = None
        # Counted before the answer goes, so that a caller holding the answer finds it in
        # the stats. (An answer the handler sent itself may arrive a moment sooner.)
        error = request.error
        if failure is not None and error is None:
            error = f"{failure[0]}:{failure[1]}"
        self._counters.record(time.perf_counter_ns() - started, error)
        tracing = _instrumentation.active
        if tracing is not None:  # the service and endpoint, on the request's process span
            tracing.service_call(self._service_name, self.name, error)
        if reply is not None:
            try:
                msg.respond(reply)
            except SyncMsgError as exc:  # the connection is closed, or its buffer full
                self._counters.add_error(f"500:{describe_remote_exception(exc)}")
                log.warning("syncmsg: %s: could not send the reply: %s", self._where(request), exc)
        elif failure is not None and msg.reply and not request.responded:
            try:
                request.respond_error(*failure)
            except (SyncMsgError, ValueError) as exc:
                log.warning(
                    "syncmsg: %s: could not send the error reply: %s", self._where(request), exc
                )

    def _encode(self, result: Any) -> bytes:
        """The reply's bytes: encoded (and validated, with a response model) here, so that
        what cannot be sent becomes a 500 error reply."""
        model = self.config.response_model
        if model is not None and not isinstance(result, model):
            result = model.model_validate(result)
        data = result if type(result) is bytes else encode_payload(result)
        limit = self._client.max_payload if self._client is not None else 0
        if limit and len(data) > limit:
            raise PayloadTooLargeError(
                f"the reply is {len(data)} bytes, more than the server's max_payload ({limit})"
            )
        return data

    def _failure(self, request: Request, exc: Exception) -> tuple[str, str, Data]:
        """What the error reply says (code, description, payload); logs what is unexpected."""
        data: Data = b""
        if isinstance(exc, ServiceError):
            code, description, data = exc.code, exc.description, exc.data
            log.debug("syncmsg: %s: error reply %s: %s", self._where(request), code, description)
        elif request._is_input_error(exc):
            code, description = "400", str(exc)
            log.debug("syncmsg: %s: bad request: %s", self._where(request), description)
        else:
            code, description = "500", describe_remote_exception(exc)
            log.error(
                "syncmsg: %s: handler raised",
                self._where(request),
                exc_info=(type(exc), exc, exc.__traceback__),
            )
            if self._client is not None:
                self._client.hooks.report_error(exc, request.msg)
            _instrumentation.handler_failed(exc)
        return code, one_line(description), data

    def _where(self, request: Request) -> str:
        return f"service {self._service_name!r} endpoint {self.name!r} ({request.subject})"

    # -- any thread ------------------------------------------------------------------------
    def info(self) -> EndpointInfo:
        return EndpointInfo(
            name=self.name,
            subject=self.subject,
            queue_group=self.queue_group,
            metadata=dict(self.metadata),
        )

    def stats(self) -> EndpointStats:
        """The counters now, with the service's ``stats_handler`` data."""
        requests, errors, last_error, nanos = self._counters.snapshot()
        data = None
        if self._stats_handler is not None:
            try:
                data = self._stats_handler(self)
                json.dumps(data)  # what cannot go on the wire is left out, not a failed answer
            except Exception:
                data = None
                log.exception("syncmsg: stats_handler of service %r failed", self._service_name)
        return EndpointStats(
            name=self.name,
            subject=self.subject,
            queue_group=self.queue_group,
            num_requests=requests,
            num_errors=errors,
            last_error=last_error,
            processing_time=nanos,
            average_processing_time=nanos // requests if requests else 0,
            data=data,
        )

    def reset(self) -> None:
        self._counters.reset()
