"""The discovery answers of syncmsg services against the ADR-32 JSON schemas, field by field.

The schemas are vendored from their publisher (see schemas/README.md). Each answer, read
raw off the wire, must validate with formats checked (``started`` is an RFC 3339
date-time), carry every property the schema names (nats-py's parsers index optional ones
too) and nothing the schema does not name, with each field of the type the schema gives.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel

import syncmsg
from syncmsg import services

pytestmark = pytest.mark.timeout(60)

SCHEMAS = Path(__file__).parent / "schemas"
TYPES = {
    "PING": ("ping_response", services.PING_RESPONSE_TYPE),
    "INFO": ("info_response", services.INFO_RESPONSE_TYPE),
    "STATS": ("stats_response", services.STATS_RESPONSE_TYPE),
}


def load_schema(response_type: str) -> dict[str, Any]:
    """The vendored schema of ``ping_response``, ``info_response`` or ``stats_response``."""
    schema: dict[str, Any] = json.loads((SCHEMAS / f"{response_type}.json").read_text("utf-8"))
    return schema


class Query(BaseModel):
    q: str


def raw_answers(client: Any, verb: str, name: str) -> list[dict[str, Any]]:
    sub = client.subscribe_sync(client.new_inbox())
    client.publish(f"$SRV.{verb}.{name}", b"", reply=sub.subject)
    answers = [json.loads(sub.next_msg(timeout=5).data)]
    sub.unsubscribe()
    return answers


def check_fields(value: Any, schema: dict[str, Any], where: str) -> None:
    """Every property of ``schema`` present in ``value``, no other, each of its type."""
    kind = schema.get("type")
    if "oneOf" in schema:
        assert any(_matches(value, option) for option in schema["oneOf"]), where
        return
    if kind == "object" and "properties" in schema:
        assert isinstance(value, dict), where
        assert set(value) == set(schema["properties"]), (
            f"{where}: fields {sorted(value)} != schema {sorted(schema['properties'])}"
        )
        for key, sub in schema["properties"].items():
            check_fields(value[key], sub, f"{where}.{key}")
    elif kind == "array":
        assert isinstance(value, list), where
        for i, item in enumerate(value):
            check_fields(item, schema["items"], f"{where}[{i}]")
    elif kind is not None:
        assert _matches(value, schema), f"{where}: {value!r} is not {kind}"


def _matches(value: Any, schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    types = {
        "string": str,
        "integer": int,
        "object": dict,
        "array": list,
        "null": type(None),
    }
    if kind is None:
        return True
    if kind == "integer" and isinstance(value, bool):
        return False
    return isinstance(value, types[kind])


@pytest.fixture
def full_service(client, service_name, services_made) -> Any:
    """A service using every feature that shows in its answers."""
    svc = client.add_service(
        service_name,
        version="2.1.0-beta.1+build.7",
        description="schema check",
        metadata={"region": "eu"},
        stats_handler=lambda endpoint: {"endpoint": endpoint.name, "hits": [1, 2]},
    )
    services_made.append(svc)
    svc.add_endpoint("plain", lambda r: "ok", subject=f"{service_name}.plain")
    svc.add_endpoint(
        "typed",
        lambda r: {"q": r.parse().q},
        subject=f"{service_name}.typed",
        request_model=Query,
        response_model=Query,
        metadata={"owner": "search"},
    )
    group = svc.add_group(f"{service_name}-g", queue_group="")
    group.add_endpoint("each", lambda r: "each")
    group.add_endpoint("fails", lambda r: 1 / 0)
    client.request(f"{service_name}.plain", timeout=5)
    client.request(f"{service_name}.typed", {"q": "x"}, timeout=5)
    with pytest.raises(syncmsg.RemoteError):
        client.request(f"{service_name}-g.fails", timeout=5)
    return svc


@pytest.fixture
def bare_service(client, service_name, services_made) -> Any:
    """No description, no metadata, no endpoints, no stats handler."""
    svc = client.add_service(service_name, version="0.0.1")
    services_made.append(svc)
    return svc


@pytest.mark.parametrize("verb", ["PING", "INFO", "STATS"])
@pytest.mark.parametrize("which", ["full_service", "bare_service"])
def test_answers_validate_against_the_adr_schemas(request, client, service_name, verb, which):
    request.getfixturevalue(which)
    schema_name, response_type = TYPES[verb]
    schema = load_schema(schema_name)
    (answer,) = raw_answers(client, verb, service_name)
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(answer)]
    assert not errors
    assert answer["type"] == response_type == schema["properties"]["type"]["const"]
    check_fields(answer, schema, verb)


def test_the_date_time_format_is_really_checked() -> None:
    schema = load_schema("stats_response")
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    bad = {
        "type": services.STATS_RESPONSE_TYPE,
        "name": "x",
        "id": "y",
        "version": "1.0.0",
        "started": "yesterday",
        "endpoints": [],
    }
    assert any(e.validator == "format" for e in validator.iter_errors(bad))


def test_the_full_services_answers_say_what_it_is(client, full_service, service_name):
    (info,) = raw_answers(client, "INFO", service_name)
    endpoints = {e["name"]: e for e in info["endpoints"]}
    assert endpoints["each"]["queue_group"] == ""
    assert json.loads(endpoints["typed"]["metadata"]["request_schema"])["title"] == "Query"
    (stats,) = raw_answers(client, "STATS", service_name)
    by_name = {e["name"]: e for e in stats["endpoints"]}
    assert by_name["fails"]["num_errors"] == 1
    assert by_name["fails"]["last_error"] == "500:ZeroDivisionError: division by zero"
    assert by_name["plain"]["data"] == {"endpoint": "plain", "hits": [1, 2]}
    assert stats["started"].endswith("Z")


def test_the_models_read_back_what_they_write(full_service) -> None:
    for value in (full_service.ping(), full_service.info(), full_service.stats()):
        assert type(value).model_validate_json(value.to_wire()) == value
