"""``python manage.py syncmsg_worker``: run the registered handlers until told to stop.

With ``SYNCMSG["outbox"]`` set (and its ``run_in_worker`` left True), it also runs an
outbox relay (see :mod:`syncmsg.django.outbox`) on its ``syncmsg-outbox-relay`` thread;
``--no-relay`` leaves that to ``manage.py syncmsg_relay``.

Threading: ``handle`` runs on the main thread, which installs the SIGTERM/SIGINT handlers
and waits; the handlers run on syncmsg's worker threads (see
:mod:`syncmsg.django.worker`). The first SIGTERM or SIGINT starts a graceful stop under
``--shutdown-timeout``; a second one exits at once (messages in hand are then not acked
and come back after their ``ack_wait``).
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from syncmsg._errors import SyncMsgError


class Command(BaseCommand):  # type: ignore[misc]  # Django ships no type hints
    help = (
        "Run the syncmsg handlers registered in each app's handlers.py on durable JetStream "
        "consumers, and the services declared there. SIGTERM or SIGINT stops taking "
        "messages, finishes and acks (or answers) those in hand, and exits within "
        "--shutdown-timeout."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--shutdown-timeout",
            type=float,
            default=None,
            help="seconds to finish in-hand messages after SIGTERM "
            '(default: SYNCMSG["worker"]["shutdown_timeout"], 25)',
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help='handler threads per consumer (default: SYNCMSG["worker"]["workers"], 1)',
        )
        parser.add_argument(
            "--list", action="store_true", help="list the registered handlers and exit"
        )
        parser.add_argument(
            "--no-relay",
            action="store_true",
            help="do not run the outbox relay here (when SYNCMSG['outbox'] is set)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        import dataclasses

        from syncmsg.django import conf
        from syncmsg.django._process import close_client, get_client
        from syncmsg.django._registry import autodiscover
        from syncmsg.django.worker import Worker

        try:
            settings = conf.load()
        except SyncMsgError as exc:
            raise CommandError(str(exc)) from None
        worker_options = settings.worker
        if options["workers"] is not None:
            if options["workers"] < 1:
                raise CommandError("--workers must be at least 1")
            worker_options = dataclasses.replace(worker_options, workers=options["workers"])
        if options["shutdown_timeout"] is not None:
            if options["shutdown_timeout"] <= 0:
                raise CommandError("--shutdown-timeout must be positive")
            worker_options = dataclasses.replace(
                worker_options, shutdown_timeout=options["shutdown_timeout"]
            )
        handlers = autodiscover(worker_options.handlers)
        if options["list"]:
            for entry in handlers:
                self.stdout.write(entry.describe())
            return
        outbox = settings.outbox
        with_relay = outbox is not None and outbox.run_in_worker and not options["no_relay"]
        if not handlers and not with_relay:
            raise CommandError(
                f"no handlers registered: decorate functions with @handler or @event_handler, "
                f"or declare a service(), in an installed app's {worker_options.handlers}.py"
            )

        stop = threading.Event()

        def on_signal(signum: int, frame: Any) -> None:
            if stop.is_set():
                os._exit(1)  # the second signal: leave now, in-hand messages come back later
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            try:
                client = get_client()
                worker = Worker(
                    handlers,
                    client=client,
                    options=worker_options,
                    service=settings.service,
                    jetstream=settings.jetstream,
                )
                worker.start()
            except SyncMsgError as exc:
                raise CommandError(" ".join(str(exc).split())) from None
            relay = None
            if with_relay:
                from syncmsg.django.outbox import Relay

                relay = Relay(options=outbox, client=client)
                relay.start()
            self.stdout.write(
                f"syncmsg_worker: ready (pid {os.getpid()}): {len(handlers)} handler(s)"
                + (f", outbox relay ({relay.mode} mode)" if relay is not None else "")
            )
            for entry in handlers:
                self.stdout.write(f"  {entry.describe()}")
            self.stdout.flush()
            connected = worker.wait(stop)
            self.stdout.write(
                f"syncmsg_worker: stopping, finishing messages in hand "
                f"(up to {worker_options.shutdown_timeout:g}s)"
            )
            self.stdout.flush()
            if relay is not None:
                relay.stop(worker_options.shutdown_timeout)
            finished = worker.stop(worker_options.shutdown_timeout)
            close_client(timeout=5.0)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if not connected:
            raise CommandError("the connection to NATS was closed")
        if not finished:
            raise CommandError(
                f"some handlers did not finish within {worker_options.shutdown_timeout:g}s; "
                "their messages will be delivered again"
            )
        self.stdout.write("syncmsg_worker: stopped")
