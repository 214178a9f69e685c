"""The app's models (Django imports this module): the outbox tables of
:mod:`syncmsg.django.outbox`. Migrating creates them whether or not ``SYNCMSG["outbox"]``
is set; they stay empty until it is."""

from syncmsg.django.outbox._models import OutboxLease, OutboxMessage

__all__ = ["OutboxLease", "OutboxMessage"]
