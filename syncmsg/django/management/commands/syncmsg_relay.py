"""``python manage.py syncmsg_relay``: publish the outbox until told to stop.

Threading: ``handle`` runs on the main thread, which installs the SIGTERM/SIGINT handlers
and waits; the relay runs on its ``syncmsg-outbox-relay`` thread (see
:mod:`syncmsg.django.outbox._relay`). A signal lets the current round finish (within
``publish_timeout``); a second one exits at once (the rows of that round are published
again by the next relay, and JetStream drops the copies).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from syncmsg._errors import SyncMsgError


class Command(BaseCommand):  # type: ignore[misc]  # Django ships no type hints
    help = (
        "Publish the rows of the syncmsg outbox (SYNCMSG['outbox']) to JetStream, in order, "
        "each exactly once, until SIGTERM or SIGINT. Several relays may run at once."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--once",
            action="store_true",
            help="publish what is pending now, then exit (status 1 if NATS is unavailable)",
        )
        parser.add_argument(
            "--batch-size", type=int, default=None, help="rows per round (default: settings)"
        )
        parser.add_argument(
            "--mode",
            choices=["auto", "concurrent", "single"],
            default=None,
            help="concurrent: row locks (PostgreSQL...); single: one relay at a time (SQLite)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from syncmsg.django import conf
        from syncmsg.django._process import close_client
        from syncmsg.django.outbox import Relay

        try:
            outbox = conf.options().outbox
        except SyncMsgError as exc:
            raise CommandError(str(exc)) from None
        if outbox is None:
            raise CommandError("the outbox is not enabled: set SYNCMSG['outbox'] (e.g. to {})")
        changes: dict[str, Any] = {}
        if options["batch_size"] is not None:
            changes["batch_size"] = options["batch_size"]
        if options["mode"] is not None:
            changes["mode"] = options["mode"]
        if changes:
            try:
                changed = conf.outbox_options({**dataclasses.asdict(outbox), **changes})
            except SyncMsgError as exc:
                raise CommandError(str(exc)) from None
            assert changed is not None
            outbox = changed
        relay = Relay(options=outbox)

        if options["once"]:
            try:
                published = relay.publish_pending()
            except Exception as exc:
                raise CommandError(f"syncmsg_relay: {' '.join(str(exc).split())}") from None
            finally:
                close_client(timeout=5.0)
            self.stdout.write(f"syncmsg_relay: published {published} row(s)")
            return

        stop = threading.Event()

        def on_signal(signum: int, frame: Any) -> None:
            if stop.is_set():
                os._exit(1)
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            relay.start()
            self.stdout.write(
                f"syncmsg_relay: ready (pid {os.getpid()}, {relay.mode} mode, "
                f"batches of {outbox.batch_size})"
            )
            self.stdout.flush()
            while not stop.wait(0.5):
                if not relay.is_running:
                    raise CommandError("syncmsg_relay: the relay thread ended")
            self.stdout.write("syncmsg_relay: stopping")
            self.stdout.flush()
            stopped = relay.stop()
            close_client(timeout=5.0)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write(f"syncmsg_relay: stopped: {relay.stats()}")
        if not stopped:
            raise CommandError("syncmsg_relay: the last round did not finish in time")
