"""Fixtures of the tracing tests: ``traces`` instruments syncmsg with the OpenTelemetry
SDK's in-memory exporter and reader for one test, and removes it after."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from _otel_helpers import Inbox, Traces, instrumented


@pytest.fixture
def traces() -> Iterator[Traces]:
    yield from instrumented()


@pytest.fixture
def inbox() -> Callable[[], Inbox]:
    return Inbox
