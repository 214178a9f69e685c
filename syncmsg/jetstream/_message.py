"""The message type JetStream consumers hand out: a :class:`~syncmsg.Msg` that reports back.

Threading: a :class:`JsMsg` is created on the event-loop thread and used on a worker thread
(or the thread that called ``fetch``). Its acknowledgements are safe from any thread: each
is one ``PUB`` through ``Client.publish`` (which keeps working while the client drains, so
handlers finishing during ``close()`` can still acknowledge), and only the first of ack, nak
and term is ever sent. When one is sent, the subscription that delivered the message hears
of it at once (on the acknowledging thread), so that its leaser stops extending the message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from syncmsg._msg import Msg

if TYPE_CHECKING:
    from syncmsg._types import Responder

__all__ = ["JsMsg", "dead_letter"]


class _Owner(Protocol):
    def _settled(self, msg: JsMsg) -> None: ...

    def dead_letter(self, msg: Msg, error: BaseException | str) -> bool: ...


class JsMsg(Msg):
    """A message delivered by a JetStream consumer."""

    __slots__ = ("_owner",)

    def __init__(
        self,
        subject: str,
        data: bytes,
        headers: dict[str, str] | None,
        reply: str,
        client: Responder | None,
        owner: _Owner | None = None,
    ) -> None:
        super().__init__(subject, data, headers, reply, client)
        self._owner = owner

    # -- acknowledgements --------------------------------------------------------------
    def _claim(self) -> bool:
        claimed = super()._claim()
        if claimed and self._owner is not None:
            self._owner._settled(self)
        return claimed

    def dead_letter(self, error: BaseException | str) -> bool:
        """Move this message to its subscription's dead-letter subject now, and terminate it.

        For a message that can never succeed (it fails validation, say). Returns True when
        it was published to the dead-letter subject, False when the subscription has none
        (the message is then only terminated). Raises :class:`~syncmsg.DeadLetterError`
        when the dead-letter publish failed (the message is then left unacknowledged).
        """
        if self._owner is None:
            raise ValueError("this message was not delivered by a JetStream subscription")
        return self._owner.dead_letter(self, error)


def dead_letter(msg: Msg, error: BaseException | str) -> bool:
    """Dead-letter ``msg`` (delivered by ``js.subscribe``) at once; see :meth:`JsMsg.dead_letter`.

    Call it from a handler when a message can never succeed, e.g. it fails validation::

        def handle(msg):
            try:
                order = msg.parse(Order)
            except syncmsg.PayloadError as exc:
                dead_letter(msg, exc)
                return
    """
    if not isinstance(msg, JsMsg):
        raise ValueError("dead_letter() needs a message delivered by js.subscribe()")
    return msg.dead_letter(error)


def describe(error: Any) -> str:
    """A one-line description of an error, for a header."""
    if isinstance(error, BaseException):
        text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    else:
        text = str(error)
    return " ".join(text.split())[:1024]
