"""Smoke test of ``onshore bench``: every workload at a tiny scale against a real S3 server process.

Benchmarks are not tests; this only proves the command works end to end (and that a server passes
its read-back checks), in seconds. The server under test is chosen by
``ONSHORE_BENCH_SMOKE_SERVER``:

- ``moto``: ``python -m moto.server`` on a free loopback port (``pip install 'moto[server]'``, part
  of the ``bench`` extra); the default when moto is installed;
- ``onshore``: the onshore server, started as the other API tests start it; the default otherwise,
  so that the command is always exercised against a real server.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from onshore.bench.limits import free_port, wait_for_port

SERVER = os.environ.get("ONSHORE_BENCH_SMOKE_SERVER") or (
    "moto" if importlib.util.find_spec("moto") is not None else "onshore"
)
WORKLOADS = ("small", "medium", "large", "list", "mixed")


@dataclass
class Target:
    endpoint: str
    access_key: str
    secret_key: str
    region: str
    pid: int


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    if SERVER == "onshore":
        from tests.api.server import ACCESS_KEY, REGION, SECRET_KEY, ServerProcess

        server = ServerProcess(tmp_path_factory.mktemp("bench") / "data").start()
        assert server.process is not None
        try:
            yield Target(server.endpoint, ACCESS_KEY, SECRET_KEY, REGION, server.process.pid)
        finally:
            server.cleanup()
        return
    if SERVER != "moto":
        pytest.fail(f"ONSHORE_BENCH_SMOKE_SERVER={SERVER!r}: choose moto or onshore")
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, 30, proc)
        yield Target(
            f"http://127.0.0.1:{port}", "benchaccess", "benchsecret", "us-east-1", proc.pid
        )
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def _bench(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "onshore", "bench", "--no-progress", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_every_workload_runs_and_verifies(target: Target, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = _bench(
        "--endpoint", target.endpoint,
        "--access-key", target.access_key,
        "--secret-key", target.secret_key,
        "--region", target.region,
        "--workloads", ",".join(WORKLOADS),
        "--scale", "0.002",
        "--duration", "1",
        "--processes", "2",
        "--server-pid", str(target.pid),
        "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(out.read_text())
    assert doc["format"] == 1 and doc["problems"] == []
    rows = {(r["workload"], r["op"]): r for r in doc["rows"]}
    expected = [
        ("small", "PUT"), ("small", "GET"), ("small", "HEAD"), ("small", "DELETE"),
        ("medium", "PUT"), ("medium", "GET"),
        ("large", "PUT"), ("large", "GET"), ("large", "PART"), ("large", "MPU"),
        ("large", "GET MPU"),
        ("list", "PUT (fill)"), ("list", "LIST walk"), ("list", "LIST delimiter"),
        ("mixed", "GET"), ("mixed", "PUT"),
    ]  # fmt: skip
    for key in expected:
        assert key in rows, f"missing {key} in {sorted(rows)}"
        row = rows[key]
        assert row["ops"] >= 1 and row["errors"] == 0, row
        assert row["ops_per_s"] > 0 and row["p50_ms"] is not None
        assert row["server_peak_rss_mib"] > 0
    assert rows[("list", "LIST walk")]["items_per_s"] > 0
    assert "small" in done.stdout and "ops/s" in done.stdout  # the summary table


def test_limits_run(tmp_path: Path) -> None:
    out = tmp_path / "limits.json"
    done = _bench(
        "--workloads", "limits", "--scale", "0.001", "--data-dir", str(tmp_path),
        "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    limits = json.loads(out.read_text())["limits"]
    for key in (
        "md5_mb_per_s", "sha256_mb_per_s", "crc32_mb_per_s", "crc32c_mb_per_s",
        "loopback_mb_per_s", "disk_write_fsync_mb_per_s",
        "disk_read_mb_per_s", "durable_4k_files_per_s", "trivial_http_get_per_s",
    ):  # fmt: skip
        assert limits[key] > 0, key


def test_refuses_a_non_loopback_endpoint() -> None:
    done = _bench("--endpoint", "http://192.0.2.1:9000", "--access-key", "a", "--secret-key", "b")
    assert done.returncode == 2
    assert "loopback" in done.stderr
