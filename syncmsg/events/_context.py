"""Correlation ids that follow a chain of work from event to event (contextvars).

Threading: a :class:`contextvars.ContextVar` holds the current correlation per thread (and
per asyncio task); nothing here is shared between threads. :class:`EventSubscriber` sets it
on the worker thread around every handler call, so an :class:`EventPublisher` called from
inside the handler stamps the new event with the handled event's correlation id.

A thread started *inside* a handler does not inherit the value (threads start with an empty
context); run its target through ``contextvars.copy_context().run`` to carry it along, or
pass ``correlation_id=`` explicitly.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from uuid import UUID

from syncmsg.events._models import _to_uuid

if TYPE_CHECKING:
    from syncmsg.events._models import Event

__all__ = [
    "correlation_for",
    "correlation_scope",
    "current_correlation_id",
    "current_event",
]

_correlation: contextvars.ContextVar[UUID | None] = contextvars.ContextVar(
    "syncmsg_events_correlation", default=None
)
_event: contextvars.ContextVar[Event | None] = contextvars.ContextVar(
    "syncmsg_events_current_event", default=None
)


def current_correlation_id() -> UUID | None:
    """The correlation id events published now will carry by default, or None."""
    return _correlation.get()


def current_event() -> Event | None:
    """The event whose handler is running on this thread, or None outside a handler."""
    return _event.get()


def correlation_for(event: Event) -> UUID:
    """The correlation id of the chain ``event`` belongs to.

    Its ``correlationId``; an event without one starts a chain, so its own ``id`` is used.
    """
    return event.correlation_id if event.correlation_id is not None else event.id


@contextmanager
def correlation_scope(correlation_id: UUID | str | None) -> Iterator[UUID | None]:
    """Publish with ``correlation_id`` by default inside the ``with`` block.

    For code that is not an event handler, e.g. a Django view that starts a chain of work::

        with correlation_scope(request_id):
            publisher.publish_task_event(tenant, type="task.created", ...)

    ``None`` clears the correlation for the block. The previous value is restored on exit.
    """
    value = None if correlation_id is None else _to_uuid(correlation_id)
    token = _correlation.set(value)
    try:
        yield value
    finally:
        _correlation.reset(token)


@contextmanager
def handling(event: Event) -> Iterator[None]:
    """The context a handler of ``event`` runs in (used by the subscriber)."""
    corr = _correlation.set(correlation_for(event))
    current = _event.set(event)
    try:
        yield
    finally:
        _event.reset(current)
        _correlation.reset(corr)
