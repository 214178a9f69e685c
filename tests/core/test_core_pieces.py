"""Direct tests of the core's pieces: deadline, state machine, reply mux, dispatcher, worker
pool, loop thread and hooks thread. No server needed: each piece stands alone."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

import pytest
from nats.aio.client import Client as NatsPyClient
from nats.aio.msg import Msg as NatsPyMsg

import syncmsg
from syncmsg._deadline import Deadline, check_timeout
from syncmsg._dispatch import MessageQueue, WorkerPool
from syncmsg._hooks import Hooks
from syncmsg._lifecycle import ClientState, Lifecycle
from syncmsg._msg import Msg
from syncmsg._replies import CallbackReply, ReplyMux, new_token
from syncmsg._runtime import LoopThread

pytestmark = pytest.mark.timeout(30)


# ----------------------------------------------------------------------------- deadline
def test_deadline() -> None:
    assert Deadline(None).remaining() is None
    assert Deadline(None).remaining(2.0) == 2.0
    assert not Deadline(None).expired
    with pytest.raises(ValueError, match="unbounded"):
        Deadline(None).left()
    soon = Deadline(0.0)
    assert soon.expired and soon.left() == 0.0
    later = Deadline(10.0)
    assert 9.0 < later.left() <= 10.0 and later.left(1.0) == 1.0
    assert "Deadline" in repr(later) and "never" in repr(Deadline(None))
    assert check_timeout(None, 3.0) == 3.0 and check_timeout(2, 3.0) == 2.0
    for bad in (0, -1, True, "1", float("nan")):
        with pytest.raises(ValueError, match="timeout"):
            check_timeout(bad, 1.0)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- lifecycle
def test_lifecycle_moves_only_along_its_arrows() -> None:
    life = Lifecycle()
    assert life.state is ClientState.NEW
    assert not life.transition(ClientState.CONNECTED, expect={ClientState.CONNECTING})
    assert life.transition(ClientState.CONNECTING, expect={ClientState.NEW})
    assert life.transition(ClientState.CONNECTED, expect={ClientState.CONNECTING})
    with pytest.raises(AssertionError, match="illegal"):
        life.transition(ClientState.NEW, expect={ClientState.CONNECTED})
    assert life.transition(ClientState.DRAINING, expect={ClientState.CONNECTED})
    assert life.transition(ClientState.CLOSED, expect={ClientState.DRAINING})
    assert "closed" in repr(life)


def test_lifecycle_waiters_wake_on_the_transition() -> None:
    life = Lifecycle()
    life.transition(ClientState.CONNECTING, expect={ClientState.NEW})
    seen: list[ClientState] = []
    waiter = threading.Thread(
        target=lambda: seen.append(life.wait_while({ClientState.CONNECTING}, 10))
    )
    waiter.start()
    life.transition(ClientState.CONNECTED, expect={ClientState.CONNECTING})
    waiter.join(5)
    assert seen == [ClientState.CONNECTED]
    assert life.wait_while({ClientState.CONNECTED}, 0.01) is ClientState.CONNECTED


def test_lifecycle_after_fork() -> None:
    for inherited, child in [
        (ClientState.CONNECTED, ClientState.CONNECTING),
        (ClientState.RECONNECTING, ClientState.CONNECTING),
        (ClientState.DRAINING, ClientState.CLOSED),
        (ClientState.NEW, ClientState.NEW),
    ]:
        life = Lifecycle()
        life._state = inherited
        assert life.after_fork() is child


# ----------------------------------------------------------------------------- reply mux
def _nats_msg(subject: str, data: bytes = b"", headers: dict[str, str] | None = None) -> NatsPyMsg:
    """A nats-py message, as nats-py's reader hands one over (making one needs no server)."""
    return NatsPyMsg(_client=NatsPyClient(), subject=subject, data=data, headers=headers)


def test_tokens_are_random_and_distinct() -> None:
    tokens = [new_token() for _ in range(2000)]
    assert len(set(tokens)) == 2000
    assert all(len(t) == 16 and int(t, 16) >= 0 for t in tokens)


def test_mux_resolves_each_reply_once() -> None:
    mux = ReplyMux("_INBOX.test.")
    assert mux.subscription_subject == "_INBOX.test.*"
    first, waiter = mux.new_reply()
    second, other = mux.new_reply()
    assert len(mux) == 2 and "waiting=2" in repr(mux)
    mux.dispatch([_nats_msg(first, b"one"), _nats_msg(first, b"again"), _nats_msg("x.y")])
    mux.wait(first, waiter, 1.0, "first")
    assert waiter.data == b"one"
    assert not mux.dispatch_one(_nats_msg(first, b"late"))
    with pytest.raises(syncmsg.TimeoutError, match="no reply on 'second'"):
        mux.wait(second, other, 0.01, "second")
    assert len(mux) == 0


def test_mux_turns_statuses_and_service_errors_into_exceptions() -> None:
    mux = ReplyMux("_INBOX.s.")
    reply, waiter = mux.new_reply()
    mux.dispatch_one(_nats_msg(reply, b"", {"Status": "503"}))
    with pytest.raises(syncmsg.NoRespondersError):
        mux.wait(reply, waiter, 1.0, "nobody")
    reply, waiter = mux.new_reply()
    headers = {"Nats-Service-Error": "bad input", "Nats-Service-Error-Code": "400"}
    mux.dispatch_one(_nats_msg(reply, b"", headers))
    with pytest.raises(syncmsg.RemoteError) as info:
        mux.wait(reply, waiter, 1.0, "svc")
    assert info.value.code == "400" and info.value.description == "bad input"


def test_mux_close_fails_every_waiter_now_and_later() -> None:
    mux = ReplyMux("_INBOX.c.")
    reply, waiter = mux.new_reply()
    called: list[Any] = []
    mux.expect(CallbackReply(lambda msg, error: called.append(error)))
    mux.close(syncmsg.ConnectionClosedError("closing"))
    with pytest.raises(syncmsg.ConnectionClosedError):
        mux.wait(reply, waiter, 1.0, "x")
    assert isinstance(called[0], syncmsg.ConnectionClosedError)
    with pytest.raises(syncmsg.ConnectionClosedError):
        mux.new_reply()
    assert mux.waiters() == []


def test_mux_keeps_an_answer_that_races_the_timeout() -> None:
    mux = ReplyMux("_INBOX.r.")
    reply, waiter = mux.new_reply()
    # The loop took the waiter out of the table and is about to resolve it as the wait
    # ends: the answer is still the caller's.
    mux._waiting.clear()
    threading.Timer(0.05, waiter.resolve, args=(_nats_msg(reply, b"just in time"),)).start()
    mux.wait(reply, waiter, 0.0, "race")
    assert waiter.data == b"just in time"


# ----------------------------------------------------------------------------- dispatcher
@pytest.fixture
def loop() -> Any:
    thread = LoopThread()
    thread.start()
    yield thread.loop
    thread.stop(5)


def _msgs(count: int, size: int = 1) -> list[Msg]:
    return [Msg("s", b"x" * size) for _ in range(count)]


def test_queue_bounds_count_what_consumers_hold(loop: Any) -> None:
    queue = MessageQueue(loop, max_msgs=3, max_bytes=1000)
    assert queue.free() == 3
    assert queue.offer_batch(_msgs(5)) == 3
    batch = queue.take_batch(1.0, limit=2)
    assert len(batch) == 2 and len(queue) == 1
    assert queue.free() == 0  # taken is still held until done
    assert not queue.offer(Msg("s", b"y"))
    queue.done(batch)
    assert queue.free() == 2
    assert queue.offer(Msg("s", b"y"))


def test_queue_bytes_bound_and_one_big_message(loop: Any) -> None:
    queue = MessageQueue(loop, max_msgs=100, max_bytes=10)
    assert queue.offer_batch(_msgs(1, 50)) == 1  # an empty queue takes anything once
    assert not queue.offer(Msg("s", b"z"))
    queue.done(queue.take_batch(1.0, 10))
    assert queue.offer_batch(_msgs(20, 1)) == 10


def test_queue_fair_share_waits_and_close(loop: Any) -> None:
    queue = MessageQueue(loop, max_msgs=100, max_bytes=10_000)
    queue.offer_batch(_msgs(8))
    assert len(queue.take_batch(1.0, limit=64, share=4)) == 2
    assert not queue.wait_idle(0.01) and not queue.wait_empty(0.01)
    assert queue.take_batch(0.0, 1) != []
    assert queue.close(discard=True) == 5
    assert queue.closed and queue.take(1.0) is None
    assert queue.offer_batch(_msgs(3)) == 3  # a closed queue takes and drops everything
    assert queue.offer(Msg("s", b""))


def test_queue_wait_for_room_wakes_when_a_consumer_finishes(loop: Any) -> None:
    queue = MessageQueue(loop, max_msgs=1, max_bytes=100)
    queue.offer(Msg("s", b"a"))
    batch = queue.take_batch(1.0, 1)
    waited = asyncio.run_coroutine_threadsafe(queue.wait_for_room(), loop)
    time.sleep(0.05)
    assert not waited.done()
    queue.done(batch)
    waited.result(5)


def test_worker_pool_reports_errors_and_keeps_going(loop: Any) -> None:
    queue = MessageQueue(loop, max_msgs=100, max_bytes=10_000)
    errors: list[BaseException] = []
    handled: list[bytes] = []

    def handler(msg: Msg) -> None:
        if msg.data == b"bad":
            raise ValueError("bad message")
        handled.append(msg.data)

    pool = WorkerPool("test-pool", queue, handler, 2, lambda exc, msg: errors.append(exc))
    queue.offer_batch([Msg("s", b"ok"), Msg("s", b"bad"), Msg("s", b"ok2")])
    assert queue.wait_idle(5)
    assert sorted(handled) == [b"ok", b"ok2"] and isinstance(errors[0], ValueError)
    assert (pool.handled, pool.failed) == (2, 1)
    assert not pool.in_worker()
    queue.close(discard=False)
    assert pool.join(5)


def test_a_worker_may_join_its_own_pool(loop: Any) -> None:
    queue = MessageQueue(loop, max_msgs=10, max_bytes=10_000)
    joined: list[bool] = []
    pool: WorkerPool

    def handler(msg: Msg) -> None:
        assert pool.in_worker()
        queue.close(discard=False)
        joined.append(pool.join(5))

    pool = WorkerPool("self-join", queue, handler, 1, lambda exc, msg: None)
    queue.offer(Msg("s", b"x"))
    assert pool.join(5)
    assert joined == [True]


# ----------------------------------------------------------------------------- loop thread
def test_a_second_stop_while_the_loop_cancels_its_tasks_lets_them_finish() -> None:
    # Two closers at once (close() and the reconnect limit) each stop the loop; the second
    # stop landed while the stopping loop waited for its cancelled tasks, which then never
    # finished ("Event loop stopped before Future completed" on the loop thread).
    thread = LoopThread()
    thread.start()
    started, cancelling, finished = threading.Event(), threading.Event(), threading.Event()

    async def slow_to_cancel() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelling.set()
            await asyncio.sleep(0.3)  # a cleanup that takes a few loop turns
            finished.set()
            raise

    thread.call_soon(lambda: thread.loop.create_task(slow_to_cancel()))
    assert started.wait(5)
    assert not thread.stop(0)  # the first closer does not wait
    assert cancelling.wait(5)
    assert thread.stop(5)  # the second closer, while the task cleans up
    assert finished.is_set()


def test_a_task_started_while_the_loop_cancels_is_finished_too() -> None:
    # nats-py's reconnect task, cancelled while it reconnects, may start a new flusher task
    # first; left pending on the closed loop, its coroutine was closed at garbage
    # collection and raised "Event loop is closed" (an unraisable exception, seen in CI).
    thread = LoopThread()
    thread.start()
    started = threading.Event()
    followers: list[asyncio.Task[None]] = []

    async def follower() -> None:
        await asyncio.Queue().get()  # what nats-py's flusher waits on

    async def reconnecting() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            followers.append(asyncio.get_running_loop().create_task(follower()))
            raise

    thread.call_soon(lambda: thread.loop.create_task(reconnecting()))
    assert started.wait(5)
    assert thread.stop(5)
    assert len(followers) == 1 and followers[0].cancelled()


def test_a_task_that_swallows_its_cancellation_is_cancelled_again() -> None:
    # asyncio.wait_for (Python 3.11) loses a cancellation that arrives with the result; a
    # task that carries on must not keep the stopping loop (and close()) waiting.
    thread = LoopThread()
    thread.start()
    started, ended = threading.Event(), threading.Event()

    async def stubborn() -> None:
        started.set()
        with contextlib.suppress(asyncio.CancelledError):  # swallowed: the task carries on
            await asyncio.sleep(60)
        try:
            await asyncio.sleep(60)
        finally:
            ended.set()

    thread.call_soon(lambda: thread.loop.create_task(stubborn()))
    assert started.wait(5)
    assert thread.stop(5)
    assert ended.is_set()


def test_loop_thread_bridge() -> None:
    thread = LoopThread()
    thread.start()
    assert thread.is_alive and thread.name.startswith("syncmsg-loop-")

    async def answer() -> int:
        return 42

    async def never() -> None:
        await asyncio.sleep(60)

    assert thread.call(answer(), 1.0) == 42
    with pytest.raises(syncmsg.TimeoutError):
        thread.call(never(), 0.05, what="never")
    box: list[BaseException] = []

    def on_loop() -> None:
        coro = answer()
        try:
            thread.call(coro, 1.0, what="from the loop")
        except BaseException as exc:
            box.append(exc)

    thread.call_soon(on_loop)
    deadline = time.monotonic() + 5
    while not box and time.monotonic() < deadline:
        time.sleep(0.01)
    assert isinstance(box[0], syncmsg.LoopThreadError)
    waiting = thread.submit(never(), None)
    assert thread.stop(5, syncmsg.ConnectionClosedError("stopping"))
    with pytest.raises(syncmsg.ConnectionClosedError):
        thread.wait(waiting, 1.0)
    with pytest.raises(syncmsg.ConnectionClosedError):
        thread.call(answer(), 1.0)
    with pytest.raises(syncmsg.ConnectionClosedError):
        thread.call_soon(print)


# ----------------------------------------------------------------------------- hooks thread
def test_hooks_run_in_order_on_their_thread_and_survive_a_raise(caplog: Any) -> None:
    ran: list[tuple[str, str]] = []
    done = threading.Event()

    def boom() -> None:
        raise RuntimeError("hook failed")

    hooks = Hooks(
        lambda error, msg: ran.append(("error", threading.current_thread().name)),
        disconnected=lambda: ran.append(("disconnected", threading.current_thread().name)),
        closed=done.set,
    )
    hooks.status("disconnected")
    hooks.post(boom)
    hooks.report_error(ValueError("x"), on_loop=True)
    hooks.status("reconnected")  # no callback given: nothing to run
    hooks.status("closed")
    assert done.wait(5)
    assert [what for what, _ in ran] == ["disconnected", "error"]
    assert all(name.startswith("syncmsg-hooks-") for _, name in ran)
    assert "a status hook raised" in caplog.text
    hooks.report_error(ValueError("here"))  # not from the loop: runs on this thread
    assert ran[-1] == ("error", threading.current_thread().name)
    hooks.stop()
    assert hooks.after_fork().error_callback is hooks.error_callback
