"""Several worker processes share the work: a burst of keep-alive connections is spread over
them rather than all accepted by whichever worker was awake, and a worker that dies is
replaced and its share served again.

A response's ``x-amz-request-id`` starts with its worker's random prefix
(:func:`onshore.domain.ids.new_request_id`), which tells the workers apart from outside.
"""

from __future__ import annotations

import http.client
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.api.server import ServerProcess

CONNECTIONS = 32


def workers_of(port: int) -> Counter[str]:
    """Open :data:`CONNECTIONS` connections at once (all before the first request, as a client
    pool does), ask each for the ready probe, and count the answering workers' id prefixes."""
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(CONNECTIONS)]
    try:
        for conn in conns:
            conn.connect()
        seen: Counter[str] = Counter()
        for conn in conns:
            conn.request("GET", "/onshore/health/ready")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            seen[response.headers["x-amz-request-id"][:6]] += 1
        return seen
    finally:
        for conn in conns:
            conn.close()


def worker_pids(supervisor: int) -> list[int]:
    with open(f"/proc/{supervisor}/task/{supervisor}/children") as f:
        return [int(pid) for pid in f.read().split()]


@pytest.fixture
def two_workers(tmp_path: Path) -> ServerProcess:
    server = ServerProcess(tmp_path / "data", extra_args=("--workers", "2")).start()
    yield server  # type: ignore[misc]
    server.stop()


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux only (SO_REUSEPORT)")
def test_a_burst_of_connections_is_spread_over_the_workers(two_workers: ServerProcess) -> None:
    for _ in range(3):
        seen = workers_of(two_workers.port)
        assert len(seen) == 2, seen
        # an even split of 32 by the kernel's hash: 16 give or take; 27 or more on one worker
        # has odds of about 1 in 5,000 per burst
        assert max(seen.values()) <= 26, seen


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux only (SO_REUSEPORT)")
def test_a_worker_that_dies_is_replaced_and_its_share_served(two_workers: ServerProcess) -> None:
    assert two_workers.process is not None
    supervisor = two_workers.process.pid
    before = set(workers_of(two_workers.port))
    victim = worker_pids(supervisor)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the supervisor notices within a second and restarts it
        pids = worker_pids(supervisor)
        if victim not in pids and len(pids) == 2:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the dead worker was not replaced")
    after = workers_of(two_workers.port)  # connections hashed to the new worker wait for it
    assert len(after) == 2, after
    assert len(set(after) - before) == 1  # one worker is new, the other is the same
