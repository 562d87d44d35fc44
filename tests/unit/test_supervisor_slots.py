"""Which listening socket a new worker gets (:class:`onshore.cli.supervisor.Supervisor`):
worker *i* serves S3 socket *i*, on the first start, when a dead worker is replaced, and in a
rolling restart; the shared sockets (admin, KMS) go to every worker."""

from __future__ import annotations

import socket
import sys
from typing import Any

import pytest

from onshore.cli.supervisor import Supervisor, spread_sockets


class _Worker:
    def __init__(self, exitcode: int | None = None) -> None:
        self.exitcode = exitcode


def _supervisor(workers: int) -> Any:
    made: Any = Supervisor.__new__(Supervisor)  # no uvicorn set-up (it installs signal handlers)
    made._spread, made._restarting, made.processes_num = ["s0", "s1", "s2"][:workers], None, workers
    made.sockets = ["admin", "kms"]  # what uvicorn's constructor sets: the shared sockets
    made.processes = []
    return made


def test_the_first_start_gives_each_worker_its_own_socket_in_order() -> None:
    sup = _supervisor(3)
    for slot in range(3):
        assert sup.sockets == [f"s{slot}", "admin", "kms"]
        # a worker that died before the others started does not take their slot
        sup.processes.append(_Worker(exitcode=1 if slot == 0 else None))


def test_a_dead_worker_is_replaced_on_its_own_socket() -> None:
    sup = _supervisor(3)
    sup.processes = [_Worker(), _Worker(exitcode=-9), _Worker()]
    assert sup.sockets == ["s1", "admin", "kms"]


def test_a_rolling_restart_replaces_each_worker_on_its_socket() -> None:
    sup = _supervisor(2)
    sup.processes = old = [_Worker(), _Worker()]
    sup._restarting = list(old)
    assert sup.sockets[0] == "s0"
    sup.processes = [_Worker(), old[1]]  # the first replaced, the second still the old one
    assert sup.sockets[0] == "s1"


def test_outside_a_worker_creation_every_socket_is_named() -> None:
    sup = _supervisor(2)
    sup.processes = [_Worker(), _Worker()]
    assert sup.sockets == ["s0", "s1", "admin", "kms"]


def test_without_spread_sockets_every_worker_shares_them() -> None:
    sup = _supervisor(2)
    sup._spread = []
    assert sup.sockets == ["admin", "kms"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT spread: Linux")
def test_spread_sockets_listen_before_any_worker_serves() -> None:
    """A connection the kernel hashes to a worker that has not started yet waits in that
    worker's socket rather than going to the worker already up: both sockets listen from the
    start. With one socket still not listening (as when each worker began to listen itself),
    a burst lands entirely on the other."""
    sockets = spread_sockets("127.0.0.1", 0, 2, backlog=64)
    try:
        port = sockets[0].getsockname()[1]
        assert all(s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) for s in sockets)
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(32)]
        try:
            accepted = []
            for server in sockets:
                server.setblocking(False)
                count = 0
                while True:
                    try:
                        conn, _ = server.accept()
                    except BlockingIOError:
                        break
                    conn.close()
                    count += 1
                accepted.append(count)
        finally:
            for client in clients:
                client.close()
        assert sum(accepted) == 32
        assert min(accepted) >= 6, accepted  # spread by a hash: 16 give or take
    finally:
        for sock in sockets:
            sock.close()
