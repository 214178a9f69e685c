"""``syncmsg services ls|info|stats``: NATS micro services (ADR-32) of any implementation.

Each command asks once (``$SRV.INFO`` or ``$SRV.STATS``) and prints every instance that
answers within ``--timeout`` (default 1s), as ``nats micro ls|info|stats`` does; with
``--json``, each answer is one line, exactly as the service sent it (durations in
nanoseconds). Text shows durations in human units.

Threading: runs on the main thread.
"""

from __future__ import annotations

from typing import Any

import click

from syncmsg.cli._app import app, examples, output, settings
from syncmsg.cli._connect import connected
from syncmsg.cli._exit import EXIT_NOT_FOUND, EXIT_OK, CommandFailed
from syncmsg.cli._output import Column
from syncmsg.cli._units import format_count, format_duration, format_nanos

__all__ = ["services"]


def _window() -> float:
    """How long to collect answers: ``--timeout``, else the discovery default."""
    from syncmsg.services import DEFAULT_DISCOVERY_TIMEOUT

    return settings().timeout or DEFAULT_DISCOVERY_TIMEOUT


def _nobody(name: str, service_id: str | None) -> CommandFailed:
    who = f"instance {service_id} of service {name!r}" if service_id else f"service {name!r}"
    return CommandFailed(f"no {who} answered within {format_duration(_window())}", EXIT_NOT_FOUND)


def _metadata(values: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(values.items())) or "-"


@app.group(
    "services",
    short_help="NATS micro services: ls, info, stats.",
    epilog=examples(
        "syncmsg services ls",
        "syncmsg services info billing",
        "syncmsg services stats billing --json",
        notes="Services of every NATS client answer (nats.go micro, nats-py nats.micro, "
        "nats.js, syncmsg): they all speak ADR-32 on $SRV.PING|INFO|STATS.",
    ),
)
def services() -> None:
    """Discover and inspect services: who runs, their endpoints, their counters."""


@services.command(
    "ls",
    short_help="List the running service instances.",
    epilog=examples("syncmsg services ls", "syncmsg services ls billing --timeout 3s"),
)
@click.argument("name", required=False)
def ls(name: str | None) -> int:
    """List every instance (of service NAME, if given) that answers: name, version, id,
    endpoints and description, sorted by name and version.

    JSON: each instance's $SRV.INFO answer, one per line.
    """
    from syncmsg.services import info

    out = output()
    with connected(settings()) as client:
        answers = info(client, name, timeout=_window())
    answers.sort(key=lambda a: (a.name, a.version, a.id))
    rows = [
        {
            "name": a.name,
            "version": a.version,
            "id": a.id,
            "endpoints": len(a.endpoints),
            "description": a.description,
        }
        for a in answers
    ]
    if out.json:
        for answer in answers:
            out.emit(answer.model_dump(mode="json"), None)
        return EXIT_OK
    out.table(
        rows,
        [
            Column("name", "NAME"),
            Column("version", "VERSION"),
            Column("id", "ID"),
            Column("endpoints", "ENDPOINTS", format_count, "right"),
            Column("description", "DESCRIPTION", lambda d: d or "-"),
        ],
        empty="no services answered",
    )
    return EXIT_OK


@services.command(
    "info",
    short_help="Show a service's instances and their endpoints.",
    epilog=examples("syncmsg services info billing", "syncmsg services info billing 4Xb9...Qz"),
)
@click.argument("name")
@click.argument("service_id", metavar="[ID]", required=False)
def info_command(name: str, service_id: str | None) -> int:
    """Show each instance of service NAME (or only instance ID): version, description,
    metadata, and each endpoint's subject, queue group and metadata.

    JSON: each instance's $SRV.INFO answer, one per line. Nobody answering exits with 5.
    """
    from syncmsg.services import info

    out = output()
    with connected(settings()) as client:
        answers = info(client, name, service_id=service_id, timeout=_window())
    if not answers:
        raise _nobody(name, service_id)
    for answer in answers:
        if out.json:
            out.emit(answer.model_dump(mode="json"), None)
            continue
        out.fields(
            f"service {answer.name} {answer.version} ({answer.id})",
            [
                ("description", answer.description or "-"),
                ("metadata", _metadata(answer.metadata)),
                ("endpoints", format_count(len(answer.endpoints))),
            ],
        )
        out.table(
            [
                {
                    "name": e.name,
                    "subject": e.subject,
                    "queue_group": e.queue_group,
                    "metadata": e.metadata,
                }
                for e in answer.endpoints
            ],
            [
                Column("name", "ENDPOINT"),
                Column("subject", "SUBJECT"),
                Column("queue_group", "QUEUE GROUP", lambda q: q or "(none)"),
                Column("metadata", "METADATA", _endpoint_metadata),
            ],
            empty="no endpoints",
        )
    return EXIT_OK


def _endpoint_metadata(values: dict[str, str]) -> str:
    """Metadata without the (long) model schemas, which only say that they are there."""
    shown = {k: v for k, v in values.items() if not k.endswith("_schema")}
    schemas = sorted(k.removesuffix("_schema") for k in values if k.endswith("_schema"))
    text = _metadata(shown) if shown else ""
    if schemas:
        text = f"{text}, " if text else ""
        text += f"schemas: {', '.join(schemas)}"
    return text or "-"


@services.command(
    "stats",
    short_help="Show the counters of a service's endpoints.",
    epilog=examples("syncmsg services stats billing", "syncmsg services stats billing --json"),
)
@click.argument("name")
@click.argument("service_id", metavar="[ID]", required=False)
def stats_command(name: str, service_id: str | None) -> int:
    """Show, for each instance of service NAME (or only instance ID) and each endpoint:
    requests, errors, total and average processing time, and the last error.

    JSON: each instance's $SRV.STATS answer, one per line (times in nanoseconds). Nobody
    answering exits with 5.
    """
    from syncmsg.services import stats

    out = output()
    with connected(settings()) as client:
        answers = stats(client, name, service_id=service_id, timeout=_window())
    if not answers:
        raise _nobody(name, service_id)
    if out.json:
        for answer in answers:
            out.emit(answer.model_dump(mode="json"), None)
        return EXIT_OK
    rows: list[dict[str, Any]] = [
        {
            "id": answer.id,
            "version": answer.version,
            "endpoint": e.name,
            "requests": e.num_requests,
            "errors": e.num_errors,
            "processing_time": e.processing_time,
            "average": e.average_processing_time,
            "last_error": e.last_error,
        }
        for answer in sorted(answers, key=lambda a: a.id)
        for e in answer.endpoints
    ]
    out.table(
        rows,
        [
            Column("id", "ID"),
            Column("version", "VERSION"),
            Column("endpoint", "ENDPOINT"),
            Column("requests", "REQUESTS", format_count, "right"),
            Column("errors", "ERRORS", format_count, "right"),
            Column("processing_time", "TOTAL TIME", format_nanos, "right"),
            Column("average", "AVERAGE", format_nanos, "right"),
            Column("last_error", "LAST ERROR", lambda e: e or "-"),
        ],
        empty=f"{len(answers)} instance(s) answered, with no endpoints",
    )
    return EXIT_OK
