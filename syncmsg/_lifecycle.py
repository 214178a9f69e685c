"""The client's one state machine.

Threading: any thread. Every change of state goes through :meth:`Lifecycle.transition`
under one lock, and threads that must wait for a state to be left (a connect or a fork
restart in progress, a close in progress) wait on the same lock's condition. The loop
thread makes the ``CONNECTED ⇄ RECONNECTING`` and "connection lost for good" transitions
from nats-py's status callbacks; caller threads make the others.

::

    NEW ──connect()──▶ CONNECTING ──▶ CONNECTED ⇄ RECONNECTING
     ▲                    │  ▲            │             │
     └──connect failed────┘  └─fork──┐    ▼             ▼
                                     └─ (any live state in a forked child)
    CONNECTED / RECONNECTING ──close()/drain()──▶ DRAINING ──▶ CLOSED
    CONNECTED / RECONNECTING ──the user's reconnect limit ran out──▶ CLOSED

A forked child restarts by moving its inherited state to ``CONNECTING``; threads of the
child that need the connection wait until the restart has made a new one.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Collection

from syncmsg._deadline import Deadline

__all__ = ["ClientState", "Lifecycle"]

log = logging.getLogger("syncmsg")


class ClientState(str, enum.Enum):
    """Where a client is in its life: NEW → CONNECTING → CONNECTED ⇄ RECONNECTING →
    DRAINING → CLOSED."""

    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DRAINING = "draining"
    CLOSED = "closed"


NEW = ClientState.NEW
CONNECTING = ClientState.CONNECTING
CONNECTED = ClientState.CONNECTED
RECONNECTING = ClientState.RECONNECTING
DRAINING = ClientState.DRAINING
CLOSED = ClientState.CLOSED

#: Every legal move. A move not listed is a bug in syncmsg, and fails loudly.
_ALLOWED: dict[ClientState, frozenset[ClientState]] = {
    NEW: frozenset({CONNECTING, CLOSED}),
    CONNECTING: frozenset({CONNECTED, NEW, CLOSED}),
    CONNECTED: frozenset({RECONNECTING, DRAINING, CLOSED, CONNECTING}),
    RECONNECTING: frozenset({CONNECTED, DRAINING, CLOSED, CONNECTING}),
    DRAINING: frozenset({CLOSED}),
    CLOSED: frozenset(),
}
#: States that own a connection (or are making one).
LIVE = frozenset({CONNECTING, CONNECTED, RECONNECTING, DRAINING})


class Lifecycle:
    """The state, its lock, and waiting for a state to change."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._state = NEW

    def __repr__(self) -> str:
        return f"<Lifecycle {self._state.value}>"

    @property
    def state(self) -> ClientState:
        return self._state

    def transition(self, to: ClientState, *, expect: Collection[ClientState]) -> bool:
        """Move to ``to`` if the state is one of ``expect``; True when it moved."""
        with self._cond:
            current = self._state
            if current not in expect:
                return False
            if to not in _ALLOWED[current]:
                raise AssertionError(f"illegal client state change {current.value} -> {to.value}")
            self._state = to
            self._cond.notify_all()
        log.debug("syncmsg: client state %s -> %s", current.value, to.value)
        return True

    def wait_while(self, states: Collection[ClientState], timeout: float | None) -> ClientState:
        """Wait until the state is not one of ``states`` (at most ``timeout``); return it."""
        deadline = Deadline(timeout)
        cond = self._cond  # after_fork() may replace it; keep waiting on the one we hold
        with cond:
            while self._state in states and not deadline.expired:
                cond.wait(deadline.remaining(0.5))  # slices, so that Ctrl-C reaches the waiter
            return self._state

    def after_fork(self) -> ClientState:
        """In a forked child: a fresh lock (the parent's may be held by a thread that did
        not survive the fork), and the inherited state mapped to the child's.

        A live client starts its restart (``CONNECTING``); one that was closing is closed.
        """
        self._cond = threading.Condition(threading.Lock())
        inherited = self._state
        if inherited in (CONNECTED, RECONNECTING, CONNECTING):
            self._state = CONNECTING
        elif inherited is DRAINING:
            self._state = CLOSED
        return self._state
