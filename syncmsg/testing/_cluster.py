"""A routed cluster of real ``nats-server`` processes on loopback.

Threading: everything runs on the caller's thread, as in :mod:`syncmsg.testing._server`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from syncmsg._errors import ConfigurationError
from syncmsg.testing import _server
from syncmsg.testing._binary import find_server_binary
from syncmsg.testing._server import (
    _ADDR_IN_USE,
    _LOOPBACK,
    _PORT_ATTEMPTS,
    NatsServer,
    NatsServerError,
    _conf_string,
    _connect_host,
    _Deadline,
    _host_port,
    _http_get,
    _live,
    _live_lock,
    _release_ports,
)

__all__ = ["NatsCluster"]


class NatsCluster:
    """``size`` JetStream servers on loopback, routed to each other as one cluster.

    Each node gets a generated config file (``server_name``, ``jetstream { store_dir }``,
    ``cluster { name, listen, routes }``) and a monitoring port. :meth:`start` returns
    once every node accepts clients and all of them agree on a JetStream meta leader that
    sees every other node as current. Ports and stores are fixed, so a node that is
    killed or restarted comes back as the same cluster member.

    ``config_text`` is appended to every node's config file; ``extra_args`` are added
    to every node's command line.

    Example::

        with NatsCluster(3) as cluster:
            connect(cluster.urls)
            cluster.kill(0)
            cluster.restart(0)
    """

    def __init__(
        self,
        size: int = 3,
        *,
        name: str = "syncmsg",
        host: str = _LOOPBACK,
        binary: str | os.PathLike[str] | None = None,
        extra_args: Sequence[str] = (),
        config_text: str | None = None,
    ) -> None:
        if size < 2:
            raise ConfigurationError("a cluster needs at least two servers")
        self._size = size
        self._name = name
        self._host = host
        self._binary = str(binary) if binary is not None else find_server_binary()
        self._extra_args = tuple(extra_args)
        self._extra_config = config_text or ""
        self._lock = threading.RLock()
        self._closed = False
        self._formed = False
        self._tmp = Path(tempfile.mkdtemp(prefix="syncmsg-nats-cluster-"))
        self._route_ports: list[int] = []
        self._servers: list[NatsServer] = []
        try:
            for index in range(size):
                self._servers.append(
                    NatsServer(
                        host=host,
                        port=0,
                        http_port=0,
                        jetstream=False,  # the config file enables it (flags would clash)
                        store_dir=self._tmp / f"n{index}",
                        name=self._node_name(index),
                        binary=self._binary,
                        extra_args=self._extra_args,
                        log_file=self._tmp / f"n{index}.log",
                    )
                )
            self._assign_route_ports()
        except BaseException:
            self.close()
            raise
        with _live_lock:
            _live.add(self)

    # ------------------------------------------------------------------ properties

    @property
    def servers(self) -> list[NatsServer]:
        """The nodes, in a fixed order (index ``i`` is what :meth:`kill` takes)."""
        return list(self._servers)

    @property
    def urls(self) -> str:
        """The client URLs of all nodes, comma-separated."""
        return ",".join(server.url for server in self._servers)

    @property
    def url_list(self) -> list[str]:
        """The client URLs of all nodes."""
        return [server.url for server in self._servers]

    @property
    def name(self) -> str:
        """The cluster name."""
        return self._name

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        running = sum(server.is_running for server in self._servers)
        return f"<NatsCluster {self._name} {running}/{self._size} running>"

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 30.0) -> None:
        """Start every node that is not running and wait for a JetStream meta leader.

        Raises:
            NatsServerError: a node failed to start, or the cluster did not form within
                ``timeout``.
        """
        with self._lock:
            if self._closed:
                raise NatsServerError("this NatsCluster was closed; create a new one")
            deadline = _Deadline(timeout)
            attempt = 0
            while True:
                attempt += 1
                try:
                    self._start_nodes(deadline)
                    self._wait_formed(deadline)
                except NatsServerError as exc:
                    if (
                        _ADDR_IN_USE in str(exc)
                        and not self._formed
                        and attempt < _PORT_ATTEMPTS
                        and not deadline.expired
                    ):
                        for server in self._servers:
                            server.kill()
                        self._repick_all_ports()
                        continue
                    raise
                self._formed = True
                return

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every node (SIGTERM, then SIGKILL); ports and stores are kept."""
        with self._lock:
            for server in self._servers:
                server.stop(timeout)

    def kill(self, index: int) -> None:
        """SIGKILL node ``index`` and wait for it to exit."""
        self._servers[index].kill()

    def restart(self, index: int, timeout: float = 30.0) -> None:
        """Stop node ``index`` (if running) and start it again on the same ports and store.

        When enough nodes run to have a quorum, also waits until the cluster agrees on a
        meta leader again.
        """
        with self._lock:
            deadline = _Deadline(timeout)
            server = self._servers[index]
            server.stop(timeout)
            server._start(deadline.left(), check_health=False)
            running = sum(s.is_running for s in self._servers)
            if running >= self._size // 2 + 1:
                self._wait_formed(deadline)

    def wait_for_meta_leader(self, timeout: float = 30.0) -> NatsServer:
        """Wait until the running nodes agree on a meta leader; return that node.

        Raises:
            NatsServerError: no agreed leader within ``timeout`` (e.g. no quorum).
        """
        with self._lock:
            return self._wait_formed(_Deadline(timeout))

    def close(self, timeout: float = 10.0) -> None:
        """Stop every node and remove all temporary directories. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                for server in self._servers:
                    server.close(timeout)
            finally:
                shutil.rmtree(self._tmp, ignore_errors=True)
                _release_ports(self._route_ports)
                with _live_lock:
                    _live.discard(self)

    def __enter__(self) -> NatsCluster:
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
        if self._lock.acquire(timeout=2.0):
            try:
                self.close(timeout=3.0)
            finally:
                self._lock.release()
            return
        for server in self._servers:
            server._close_at_exit()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def _node_name(self, index: int) -> str:
        return f"{self._name}-n{index}"

    def _assign_route_ports(self) -> None:
        _release_ports(self._route_ports)
        self._route_ports = _server._pick_ports(_connect_host(self._host), self._size)
        route_host = _connect_host(self._host)
        for index, server in enumerate(self._servers):
            routes = ", ".join(
                _conf_string(f"nats-route://{_host_port(route_host, port)}")
                for other, port in enumerate(self._route_ports)
                if other != index
            )
            listen = _conf_string(_host_port(self._host, self._route_ports[index]))
            server._name_flag = False  # server_name is in the config file
            server.store_dir.mkdir(parents=True, exist_ok=True)
            server._config_text = (
                f"server_name: {_conf_string(self._node_name(index))}\n"
                f"jetstream {{\n  store_dir: {_conf_string(str(server.store_dir))}\n}}\n"
                f"cluster {{\n  name: {_conf_string(self._name)}\n"
                f"  listen: {listen}\n  routes: [{routes}]\n}}\n"
                f"{self._extra_config}\n"
            )

    def _repick_all_ports(self) -> None:
        for server in self._servers:
            # The cluster never formed: drop what the half-started nodes stored.
            shutil.rmtree(server.store_dir, ignore_errors=True)
            _release_ports((server._port, server._http_port))
            server._port, server._http_port = _server._pick_ports(_connect_host(self._host), 2)
        self._assign_route_ports()

    def _start_nodes(self, deadline: _Deadline) -> None:
        # All processes first: a clustered node is not healthy until it has a quorum.
        pending = [server for server in self._servers if not server.is_running]
        try:
            for server in pending:
                server._spawn()
            for server in pending:
                server._wait_ready(deadline, check_health=False)
                server._started_once = True
        except NatsServerError:
            for server in pending:
                server.kill()
            raise

    def _wait_formed(self, deadline: _Deadline) -> NatsServer:
        """Poll ``/jsz`` until the running nodes agree on a meta leader that sees them."""
        last = "no node answered"
        while True:
            running = [s for s in self._servers if s.is_running]
            if not running:
                raise NatsServerError(f"cluster {self._name}: no node is running")
            leader, last = self._agreed_leader(running, deadline)
            if leader is not None:
                return leader
            if deadline.expired:
                logs = "\n".join(
                    f"{s.name}:\n{s._log_excerpt(head=0, tail=10)}" for s in self._servers
                )
                raise NatsServerError(
                    f"cluster {self._name} has no JetStream meta leader in time ({last}).\n{logs}"
                )
            deadline.pause()

    def _agreed_leader(
        self, running: list[NatsServer], deadline: _Deadline
    ) -> tuple[NatsServer | None, str]:
        leaders: dict[str, dict[str, Any]] = {}
        for server in running:
            status, body = _http_get(f"{server.monitor_url}/jsz", min(1.0, deadline.left()))
            if status != 200:
                return None, f"{server.name}: /jsz answered {status or 'nothing'}"
            try:
                meta = json.loads(body).get("meta_cluster") or {}
            except ValueError:
                return None, f"{server.name}: /jsz is not JSON"
            leader = meta.get("leader") or ""
            if not leader:
                return None, f"{server.name} knows no meta leader"
            leaders[server.name or ""] = meta
        names = {meta["leader"] for meta in leaders.values()}
        if len(names) != 1:
            return None, f"nodes disagree on the meta leader: {sorted(names)}"
        leader_name = names.pop()
        leader_meta = leaders.get(leader_name)
        if leader_meta is None:
            return None, f"meta leader {leader_name} is not a running node"
        current = {
            replica.get("name")
            for replica in leader_meta.get("replicas") or ()
            if replica.get("current")
        }
        lagging = [s.name for s in running if s.name != leader_name and s.name not in current]
        if lagging:
            return None, f"meta leader {leader_name} does not see {lagging} as current"
        leader = next(s for s in running if s.name == leader_name)
        return leader, ""
