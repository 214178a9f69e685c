"""Services on a real nats-server: endpoints, groups, replies, errors, models, stats, stop."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import pytest
from pydantic import BaseModel

import syncmsg
from syncmsg import services
from syncmsg.services import Request, ServiceError

pytestmark = pytest.mark.timeout(60)


class Charge(BaseModel):
    amount: int
    currency: str = "EUR"


class Receipt(BaseModel):
    charged: int
    currency: str


def double(request: Request) -> dict[str, Any]:
    return {"n": request.json()["n"] * 2}


@pytest.fixture
def svc(client: syncmsg.Client, service_name: str, services_made: list[Any]) -> services.Service:
    made = client.add_service(service_name, version="1.2.0", description="under test")
    services_made.append(made)
    return made


# ------------------------------------------------------------------------ endpoints
def test_an_endpoint_answers_with_its_handlers_return_value(svc, client, service_name):
    endpoint = svc.add_endpoint("double", double, subject=f"{service_name}.double")
    assert (endpoint.subject, endpoint.queue_group) == (f"{service_name}.double", "q")
    assert client.request(f"{service_name}.double", {"n": 21}, timeout=5).json() == {"n": 42}


def test_the_subject_defaults_to_the_name_and_groups_prefix_it(svc, client, service_name):
    svc.add_endpoint(service_name, lambda r: b"plain")
    group = svc.add_group(f"{service_name}-g")
    inner = group.add_group("v1")
    created = group.add_endpoint("create", lambda r: "created")
    custom = inner.add_endpoint("list", lambda r: "listed", subject="all.items")
    assert created.subject == f"{service_name}-g.create"
    assert custom.subject == f"{service_name}-g.v1.all.items"
    assert client.request(service_name, timeout=5).data == b"plain"
    assert client.request(created.subject, timeout=5).data == b"created"
    assert client.request(custom.subject, timeout=5).data == b"listed"


def test_a_wildcard_endpoint_sees_the_subject_it_was_called_on(svc, client, service_name):
    svc.add_endpoint("any", lambda r: r.subject, subject=f"{service_name}.items.*")
    assert client.request(f"{service_name}.items.7", timeout=5).text() == f"{service_name}.items.7"


def test_handlers_run_on_worker_threads_never_the_loop(svc, client, service_name):
    seen: list[str] = []

    def where(request: Request) -> str:
        seen.append(threading.current_thread().name)
        return "ok"

    svc.add_endpoint("where", where, subject=f"{service_name}.where")
    client.request(f"{service_name}.where", timeout=5)
    assert seen[0].startswith("syncmsg-sub-")


def test_workers_handle_requests_in_parallel(client, service_name, services_made):
    svc = client.add_service(service_name, version="1.0.0", workers=4)
    services_made.append(svc)
    inside = threading.Barrier(4, timeout=10)

    def meet(request: Request) -> str:
        inside.wait()  # only returns when four handlers run at once
        return "met"

    svc.add_endpoint("meet", meet, subject=f"{service_name}.meet")
    answers: list[bytes] = []
    threads = [
        threading.Thread(
            target=lambda: answers.append(client.request(f"{service_name}.meet", timeout=10).data)
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert answers == [b"met"] * 4


def test_a_handler_may_respond_itself_with_headers(svc, client, service_name):
    def respond(request: Request) -> None:
        request.respond(b"early", headers={"X-Where": "handler"})
        with pytest.raises(ValueError, match="already answered"):
            request.respond(b"twice")

    svc.add_endpoint("self", respond, subject=f"{service_name}.self")
    reply = client.request(f"{service_name}.self", timeout=5)
    assert (reply.data, reply.headers["X-Where"]) == (b"early", "handler")
    assert svc.stats().endpoints[0].num_errors == 0


def test_none_is_an_empty_reply_and_models_are_json(svc, client, service_name):
    svc.add_endpoint("none", lambda r: None, subject=f"{service_name}.none")
    svc.add_endpoint(
        "model", lambda r: Receipt(charged=1, currency="EUR"), subject=f"{service_name}.m"
    )
    assert client.request(f"{service_name}.none", timeout=5).data == b""
    assert client.request(f"{service_name}.m", timeout=5).json() == {
        "charged": 1,
        "currency": "EUR",
    }


def test_the_default_queue_group_shares_requests_and_none_gives_each_instance_all(
    client, other_client, service_name, services_made
):
    got: list[str] = []
    lock = threading.Lock()

    def instance(tag: str) -> Any:
        def handle(request: Request) -> str:
            with lock:
                got.append(tag)
            return tag

        return handle

    shared = f"{service_name}.shared"
    each = f"{service_name}.each"
    for tag, c in (("a", client), ("b", other_client)):
        svc = c.add_service(service_name, version="1.0.0")
        services_made.append(svc)
        svc.add_endpoint("shared", instance(tag), subject=shared)
        svc.add_endpoint("each", instance(tag), subject=each, queue_group="")
    for _ in range(10):
        client.request(shared, timeout=5)
    assert len(got) == 10  # one instance each time
    got.clear()
    sub = client.subscribe_sync(client.new_inbox())
    client.publish(each, b"", reply=sub.subject)
    answers = {sub.next_msg(timeout=5).data, sub.next_msg(timeout=5).data}
    assert answers == {b"a", b"b"}
    info = services.info(client, service_name)
    queues = {e.name: e.queue_group for i in info for e in i.endpoints}
    assert queues == {"shared": "q", "each": ""}


def test_queue_groups_are_inherited_and_overridden(client, service_name, services_made):
    svc = client.add_service(service_name, version="1.0.0", queue_group="workers")
    services_made.append(svc)
    group = svc.add_group(f"{service_name}-g", queue_group="grp")
    assert svc.add_endpoint("a", double, subject=f"{service_name}.a").queue_group == "workers"
    assert group.add_endpoint("b", double).queue_group == "grp"
    assert group.add_group("sub").add_endpoint("c", double).queue_group == "grp"
    assert group.add_endpoint("d", double, queue_group="own").queue_group == "own"
    no_queue = client.add_service(f"{service_name}-nq", version="1.0.0", queue_group=None)
    services_made.append(no_queue)
    assert no_queue.add_endpoint("e", double, subject=f"{service_name}.e").queue_group == ""


# ------------------------------------------------------------------------ errors
def test_an_exception_is_a_500_error_reply_logged_counted_and_reported(
    nats_url, service_name, caplog
):
    reported: list[tuple[BaseException, Any]] = []
    with syncmsg.connect(nats_url, error_callback=lambda e, m: reported.append((e, m))) as client:
        svc = client.add_service(service_name, version="1.0.0")

        def broken(request: Request) -> None:
            raise KeyError("n")

        svc.add_endpoint("broken", broken, subject=f"{service_name}.broken")
        with (
            caplog.at_level(logging.ERROR, logger="syncmsg.services"),
            pytest.raises(syncmsg.RemoteError) as caught,
        ):
            client.request(f"{service_name}.broken", timeout=5)
        assert caught.value.code == "500"
        assert caught.value.description == "KeyError: 'n'"
        assert "endpoint 'broken'" in caplog.text and "KeyError" in caplog.text
        assert isinstance(reported[0][0], KeyError)
        assert reported[0][1].subject == f"{service_name}.broken"
        stats = svc.stats().endpoints[0]
        assert (stats.num_requests, stats.num_errors, stats.last_error) == (
            1,
            1,
            "500:KeyError: 'n'",
        )
        svc.stop(5)


def test_service_error_and_respond_error_choose_the_code(svc, client, service_name, wait_until):
    def missing(request: Request) -> None:
        raise ServiceError(404, "no such invoice", data={"id": 7})

    def refused(request: Request) -> None:
        request.respond_error("409", "already paid", b"detail", headers={"X-Extra": "1"})

    svc.add_endpoint("missing", missing, subject=f"{service_name}.missing")
    svc.add_endpoint("refused", refused, subject=f"{service_name}.refused")
    with pytest.raises(syncmsg.RemoteError) as caught:
        client.request(f"{service_name}.missing", timeout=5)
    assert (caught.value.code, caught.value.description) == ("404", "no such invoice")
    # The raw reply keeps the payload and the headers.
    sub = client.subscribe_sync(client.new_inbox())
    client.publish(f"{service_name}.refused", b"", reply=sub.subject)
    raw = sub.next_msg(timeout=5)
    assert raw.data == b"detail"
    assert raw.headers == {
        "Nats-Service-Error": "already paid",
        "Nats-Service-Error-Code": "409",
        "X-Extra": "1",
    }
    client.publish(f"{service_name}.missing", b"", reply=sub.subject)
    assert json.loads(sub.next_msg(timeout=5).data) == {"id": 7}
    # A reply the handler sent itself may come before its handler returned and was counted.
    wait_until(lambda: sum(e.num_requests for e in svc.stats().endpoints) == 3)
    errors = {e.name: (e.num_errors, e.last_error) for e in svc.stats().endpoints}
    assert errors == {"missing": (2, "404:no such invoice"), "refused": (1, "409:already paid")}


def test_error_codes_and_descriptions_are_checked(svc, client, service_name):
    with pytest.raises(ValueError, match="whole number"):
        ServiceError("E42", "nope")
    outcome: list[BaseException] = []

    def bad_code(request: Request) -> str:
        try:
            request.respond_error("oops", "x")
        except ValueError as exc:
            outcome.append(exc)
        try:
            request.respond_error(500, "")
        except ValueError as exc:
            outcome.append(exc)
        return "fine"

    svc.add_endpoint("codes", bad_code, subject=f"{service_name}.codes")
    assert client.request(f"{service_name}.codes", timeout=5).data == b"fine"
    assert len(outcome) == 2


def test_bad_json_is_a_400_and_a_published_request_gets_no_answer(
    svc, client, service_name, wait_until
):
    svc.add_endpoint("double", double, subject=f"{service_name}.double")
    with pytest.raises(syncmsg.RemoteError) as caught:
        client.request(f"{service_name}.double", b"{not json", timeout=5)
    assert caught.value.code == "400"
    assert "not valid JSON" in caught.value.description
    client.publish(f"{service_name}.double", {"n": 1})  # no reply subject: handled, not answered
    client.flush()
    wait_until(lambda: svc.stats().endpoints[0].num_requests == 2)


def test_a_reply_that_cannot_be_encoded_or_is_too_large_becomes_a_500(svc, client, service_name):
    svc.add_endpoint("nan", lambda r: {"x": float("nan")}, subject=f"{service_name}.nan")
    with pytest.raises(syncmsg.RemoteError) as caught:
        client.request(f"{service_name}.nan", timeout=5)
    assert caught.value.code == "500"
    assert "PayloadError" in caught.value.description
    too_big = b"x" * (client.max_payload + 1)
    svc.add_endpoint("big", lambda r: too_big, subject=f"{service_name}.big")
    with pytest.raises(syncmsg.RemoteError) as caught:
        client.request(f"{service_name}.big", timeout=5)
    assert caught.value.code == "500"
    assert "max_payload" in caught.value.description
    # Counted before the answer was sent: no waiting needed.
    assert [e.num_errors for e in svc.stats().endpoints] == [1, 1]


# ------------------------------------------------------------------------ models
def test_request_and_response_models(svc, client, service_name):
    def charge(request: Request) -> dict[str, Any]:
        body = request.parse()
        assert isinstance(body, Charge)
        assert request.parse() is body  # validated once
        return {"charged": body.amount, "currency": body.currency}

    endpoint = svc.add_endpoint(
        "charge",
        charge,
        subject=f"{service_name}.charge",
        request_model=Charge,
        response_model=Receipt,
        metadata={"owner": "billing"},
    )
    reply = client.request(f"{service_name}.charge", {"amount": 5}, timeout=5)
    assert reply.json() == {"charged": 5, "currency": "EUR"}
    with pytest.raises(syncmsg.RemoteError) as caught:
        client.request(f"{service_name}.charge", {"amount": "lots"}, timeout=5)
    assert caught.value.code == "400"
    assert "Charge" in caught.value.description
    metadata = services.info(client, service_name)[0].endpoints[0].metadata
    assert metadata["owner"] == "billing"
    assert json.loads(metadata["request_schema"]) == Charge.model_json_schema()
    assert json.loads(metadata["response_schema"]) == Receipt.model_json_schema()
    assert endpoint.metadata == metadata


def test_a_response_that_does_not_match_its_model_is_a_500(svc, client, service_name):
    svc.add_endpoint(
        "wrong", lambda r: {"charged": "x"}, subject=f"{service_name}.w", response_model=Receipt
    )
    with pytest.raises(syncmsg.RemoteError) as caught:
        client.request(f"{service_name}.w", timeout=5)
    assert caught.value.code == "500"
    assert "Receipt" in caught.value.description


def test_parse_without_a_declared_model_is_a_usage_error(svc, client, service_name):
    svc.add_endpoint("bare", lambda r: r.parse(), subject=f"{service_name}.bare")
    with pytest.raises(syncmsg.RemoteError, match="declares no request_model"):
        client.request(f"{service_name}.bare", timeout=5)

    svc.add_endpoint("other", lambda r: str(r.parse(Charge).amount), subject=f"{service_name}.o")
    assert client.request(f"{service_name}.o", {"amount": 3}, timeout=5).data == b"3"
    with pytest.raises(syncmsg.RemoteError) as caught:
        client.request(f"{service_name}.o", {"amount": []}, timeout=5)
    assert caught.value.code == "400"


# ------------------------------------------------------------------------ configuration
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "has space", "version": "1.0.0"}, "service name"),
        ({"name": "ok", "version": "1.0"}, "semantic version"),
        ({"name": "ok", "version": "1.0.0", "metadata": {"a": 1}}, "metadata"),
        ({"name": "ok", "version": "1.0.0", "workers": 0}, "workers"),
        ({"name": "ok", "version": "1.0.0", "stats_handler": 3}, "stats_handler"),
        ({"name": "ok", "version": "1.0.0", "description": 3}, "description"),
    ],
)
def test_bad_service_settings_fail_before_anything_is_sent(client, options, message):
    with pytest.raises(syncmsg.ConfigurationError, match=message):
        client.add_service(**options)
    assert len(client.subscriptions) == 0


def test_bad_endpoint_settings_fail_before_anything_is_sent(svc, client):
    before = len(client.subscriptions)
    with pytest.raises(syncmsg.ConfigurationError, match="endpoint name"):
        svc.add_endpoint("a.b", double)
    with pytest.raises(syncmsg.ConfigurationError, match="callable"):
        svc.add_endpoint("a", "not a function")
    with pytest.raises(syncmsg.InvalidSubjectError):
        svc.add_endpoint("a", double, subject="bad subject")
    with pytest.raises(syncmsg.InvalidSubjectError):
        svc.add_endpoint("a", double, queue_group="bad queue")
    with pytest.raises(syncmsg.ConfigurationError, match="pydantic"):
        svc.add_endpoint("a", double, request_model=dict)
    with pytest.raises(syncmsg.ConfigurationError, match="'>'"):
        svc.add_group("all.>")
    with pytest.raises(syncmsg.ConfigurationError, match="group name"):
        svc.add_group("")
    with pytest.raises(syncmsg.ConfigurationError, match="metadata"):
        svc.add_endpoint("a", double, metadata=["x"])
    assert len(client.subscriptions) == before


# ------------------------------------------------------------------------ stats
def test_stats_count_requests_and_time_in_nanoseconds(svc, client, service_name):
    svc.add_endpoint("slow", lambda r: time.sleep(0.02) or "done", subject=f"{service_name}.slow")
    for _ in range(3):
        client.request(f"{service_name}.slow", timeout=5)
    stats = svc.stats()
    assert (stats.name, stats.id, stats.version) == (service_name, svc.id, "1.2.0")
    endpoint = stats.endpoints[0]
    assert endpoint.num_requests == 3
    assert endpoint.processing_time >= 3 * 20_000_000
    assert endpoint.average_processing_time == endpoint.processing_time // 3
    assert endpoint.average.total_seconds() >= 0.02
    before = svc.started
    svc.reset()
    after = svc.stats()
    assert after.endpoints[0].num_requests == after.endpoints[0].processing_time == 0
    assert after.endpoints[0].average_processing_time == 0
    assert after.started >= before


def test_a_stats_handler_fills_data_on_the_discovery_thread(client, service_name, services_made):
    threads: list[str] = []

    def data(endpoint: services.Endpoint) -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        return {"endpoint": endpoint.name, "cache_hits": 7}

    svc = client.add_service(service_name, version="1.0.0", stats_handler=data)
    services_made.append(svc)
    svc.add_endpoint("a", double, subject=f"{service_name}.a")
    (answer,) = services.stats(client, service_name)
    assert answer.endpoints[0].data == {"endpoint": "a", "cache_hits": 7}
    assert threads[0].startswith("syncmsg-sub-")


def test_a_failing_stats_handler_leaves_data_out(client, service_name, services_made, caplog):
    def broken(endpoint: services.Endpoint) -> Any:
        return {"not json": object()}

    svc = client.add_service(service_name, version="1.0.0", stats_handler=broken)
    services_made.append(svc)
    svc.add_endpoint("a", double, subject=f"{service_name}.a")
    with caplog.at_level(logging.ERROR, logger="syncmsg.services"):
        (answer,) = services.stats(client, service_name)
    assert answer.endpoints[0].data is None
    assert "stats_handler" in caplog.text


# ------------------------------------------------------------------------ stopping
def test_stop_drains_requests_in_hand_and_then_nobody_answers(
    client, other_client, service_name, wait_until
):
    svc = client.add_service(service_name, version="1.0.0", workers=2)
    release = threading.Event()
    entered = threading.Semaphore(0)

    def slow(request: Request) -> str:
        entered.release()
        release.wait(10)
        return "finished"

    subject = f"{service_name}.slow"
    svc.add_endpoint("slow", slow, subject=subject)
    answers: list[Any] = []

    def call() -> None:
        try:
            answers.append(other_client.request(subject, timeout=10).data)
        except syncmsg.SyncMsgError as exc:
            answers.append(exc)

    callers = [threading.Thread(target=call) for _ in range(4)]
    for thread in callers:
        thread.start()
    assert entered.acquire(timeout=5) and entered.acquire(timeout=5)  # two in handlers
    wait_until(lambda: svc.endpoints[0].subscription.delivered == 4)  # all four in hand
    stopper = threading.Thread(target=lambda: answers.append(svc.stop(10)))
    stopper.start()
    time.sleep(0.2)  # stop is waiting for the handlers (nothing to poll: it is blocked)
    assert not svc.stopped
    release.set()
    stopper.join(10)
    for thread in callers:
        thread.join(10)
    assert sorted(map(str, answers)) == ["True", *["b'finished'"] * 4]
    assert svc.stopped
    with pytest.raises(syncmsg.NoRespondersError):
        other_client.request(subject, timeout=5)
    assert services.ping(other_client, service_name, timeout=0.3) == []
    assert svc.stop() is True  # idempotent
    with pytest.raises(syncmsg.SyncMsgError, match="stopped"):
        svc.add_endpoint("late", double)


def test_stop_returns_false_when_handlers_outlast_the_deadline(client, service_name, caplog):
    svc = client.add_service(service_name, version="1.0.0", workers=1)
    entered, release = threading.Event(), threading.Event()

    def stuck(request: Request) -> str:
        entered.set()
        release.wait(10)
        return "late"

    svc.add_endpoint("stuck", stuck, subject=f"{service_name}.s")
    client.publish(f"{service_name}.s", b"", reply=client.new_inbox())
    assert entered.wait(5)
    with caplog.at_level(logging.WARNING, logger="syncmsg.services"):
        assert svc.stop(0.3) is False
    assert "before finishing" in caplog.text
    release.set()


def test_a_handler_can_stop_its_own_service(client, service_name):
    svc = client.add_service(service_name, version="1.0.0")
    result: list[bool] = []

    def shutdown(request: Request) -> str:
        request.respond("bye")
        result.append(svc.stop(5))
        return "ignored"

    svc.add_endpoint("shutdown", shutdown, subject=f"{service_name}.shutdown")
    svc.add_endpoint("other", double, subject=f"{service_name}.other")
    assert client.request(f"{service_name}.shutdown", timeout=5).data == b"bye"
    assert svc.wait(10)
    assert result == [True]


def test_stop_from_several_threads_and_the_context_manager(client, service_name):
    with client.add_service(service_name, version="1.0.0") as svc:
        svc.add_endpoint("a", double, subject=f"{service_name}.a")
        results: list[bool] = []
        threads = [threading.Thread(target=lambda: results.append(svc.stop(5))) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert results == [True, True, True]
    assert svc.stopped
    assert "stopped" in repr(svc)


def test_closing_the_client_stops_the_service(nats_url, service_name):
    client = syncmsg.connect(nats_url)
    svc = client.add_service(service_name, version="1.0.0")
    assert not svc.wait(0.05)
    client.close()
    assert svc.stopped and svc.wait(1)


# ------------------------------------------------------------------------ discovery
def test_discovery_by_name_and_by_id(client, other_client, service_name, services_made):
    first = client.add_service(service_name, version="1.0.0", metadata={"zone": "a"})
    second = other_client.add_service(service_name, version="1.0.1")
    services_made.extend([first, second])
    pings = services.ping(client, service_name, timeout=0.5)
    assert {(p.id, p.version) for p in pings} == {(first.id, "1.0.0"), (second.id, "1.0.1")}
    assert {p.id: p.metadata for p in pings}[first.id] == {"zone": "a"}
    started = time.monotonic()
    (one,) = services.info(client, service_name, service_id=second.id, timeout=5)
    assert time.monotonic() - started < 2  # the one asked for answered: no waiting it out
    assert one.id == second.id and one.description == ""
    assert first.ping() == next(p for p in pings if p.id == first.id)


def test_ping_all_services_on_a_server(nats_server_factory):
    server = nats_server_factory()
    with syncmsg.connect(server.url) as client:
        assert services.ping(client, timeout=5) == []  # no responders: at once
        a = client.add_service("alpha", version="1.0.0")
        b = client.add_service("beta", version="2.0.0")
        assert sorted(p.name for p in services.ping(client, timeout=0.5)) == ["alpha", "beta"]
        assert [s.name for s in services.stats(client, "beta", timeout=0.5)] == ["beta"]
        a.stop(5)
        b.stop(5)


def test_unknown_verbs_and_bad_answers_are_ignored(svc, client, service_name, caplog):
    sub = client.subscribe_sync(client.new_inbox())
    client.publish(f"$SRV.SCHEMA.{service_name}", b"", reply=sub.subject)
    with pytest.raises(syncmsg.TimeoutError):
        sub.next_msg(timeout=0.3)
    impostor = client.subscribe(f"$SRV.PING.{service_name}", lambda m: m.respond(b"{}"))
    with caplog.at_level(logging.WARNING, logger="syncmsg.services"):
        pings = services.ping(client, service_name, timeout=0.5)
    assert [p.id for p in pings] == [svc.id]
    assert "not ADR-32" in caplog.text
    impostor.unsubscribe()


def test_discovery_arguments_are_checked(client):
    with pytest.raises(syncmsg.ConfigurationError):
        services.ping(client, "bad name")
    with pytest.raises(syncmsg.ConfigurationError, match="needs the service's name"):
        services.ping(client, service_id="abc")
    with pytest.raises(syncmsg.ConfigurationError):
        services.ping(client, "ok", service_id="a.b")
    with pytest.raises(ValueError):
        services.ping(client, timeout=0)


def test_info_lists_endpoints_added_later(svc, client, service_name):
    assert services.info(client, service_name)[0].endpoints == []
    svc.add_endpoint("late", double, subject=f"{service_name}.late", metadata={"k": "v"})
    (info,) = services.info(client, service_name)
    assert [(e.name, e.subject, e.queue_group, e.metadata) for e in info.endpoints] == [
        ("late", f"{service_name}.late", "q", {"k": "v"})
    ]
    assert info == svc.info()
    assert info.description == "under test"


# ------------------------------------------------------------------------ declared services
def test_a_service_spec_declares_endpoints_and_starts_later(client, service_name, services_made):
    spec = services.ServiceSpec(service_name, version="3.0.0", workers=2)

    @spec.endpoint("charge", subject=f"{service_name}.charge", request_model=Charge)
    def charge(request: Request) -> dict[str, int]:
        return {"charged": request.parse().amount}

    group = spec.group(f"{service_name}-inv", queue_group="inv")

    @group.endpoint("create")
    def create(request: Request) -> str:
        return "created"

    @group.group("v2").endpoint("create")
    def create_v2(request: Request) -> str:
        return "created v2"

    spec.endpoint("create", subject=f"{service_name}-inv.create")(create)  # again: replaced
    assert [e.subject for e in spec.endpoints] == [
        f"{service_name}.charge",
        f"{service_name}-inv.v2.create",
        f"{service_name}-inv.create",
    ]
    calls: list[str] = []

    def wrap(handler: Any) -> Any:
        def wrapped(request: Request) -> Any:
            calls.append(request.subject)
            return handler(request)

        return wrapped

    svc = spec.start(client, wrap=wrap)
    services_made.append(svc)
    assert client.request(f"{service_name}.charge", {"amount": 2}, timeout=5).json() == {
        "charged": 2
    }
    assert client.request(f"{service_name}-inv.v2.create", timeout=5).data == b"created v2"
    assert calls == [f"{service_name}.charge", f"{service_name}-inv.v2.create"]
    assert [(e.subject, e.queue_group) for e in svc.info().endpoints] == [
        (f"{service_name}.charge", "q"),
        (f"{service_name}-inv.v2.create", "inv"),
        (f"{service_name}-inv.create", "q"),
    ]
    assert "ServiceSpec" in repr(spec) and "GroupSpec" in repr(group)


def test_a_spec_that_cannot_start_leaves_nothing_behind(client, service_name):
    spec = services.ServiceSpec(service_name, version="1.0.0")
    spec.endpoint("a", subject=f"{service_name}.a")(double)
    before = len(client.subscriptions)

    def broken_wrap(handler: Any) -> Any:
        raise RuntimeError("no wrapping today")

    with pytest.raises(RuntimeError):
        spec.start(client, wrap=broken_wrap)
    assert len(client.subscriptions) == before
    assert services.ping(client, service_name, timeout=0.3) == []


def test_reprs_name_what_they_show(svc, service_name):
    endpoint = svc.add_endpoint("a", double, subject=f"{service_name}.a")
    group = svc.add_group("g")
    assert service_name in repr(svc) and "running" in repr(svc)
    assert "'a'" in repr(endpoint) and "'g'" in repr(group)
    assert "Request" in repr(Request(syncmsg.Msg("s", b"xy")))


def test_error_headers_format_an_error_reply_sent_any_other_way(client, service_name):
    assert services.error_headers(503, "busy\nnow") == {
        "Nats-Service-Error": "busy now",
        "Nats-Service-Error-Code": "503",
    }
    with pytest.raises(ValueError):
        services.error_headers(503, " ")
    subject = f"{service_name}.plain"
    client.subscribe(subject, lambda m: m.respond(b"", headers=services.error_headers(503, "busy")))
    with pytest.raises(syncmsg.RemoteError) as caught:
        client.request(subject, timeout=5)
    assert (caught.value.code, caught.value.description) == ("503", "busy")


@pytest.mark.slow
def test_a_service_survives_a_server_restart(nats_server_factory, service_name, wait_until):
    server = nats_server_factory()
    with syncmsg.connect(server.url, reconnect_wait=0.05) as client:
        svc = client.add_service(service_name, version="1.0.0")
        svc.add_endpoint("double", double, subject=f"{service_name}.double")
        server.stop()
        wait_until(lambda: client.state is syncmsg.ClientState.RECONNECTING)
        server.start()
        wait_until(lambda: client.is_connected, timeout=15)
        client.flush()
        assert client.request(f"{service_name}.double", {"n": 2}, timeout=5).json() == {"n": 4}
        assert [p.id for p in services.ping(client, service_name)] == [svc.id]
        assert not svc.stopped
        svc.stop(5)
