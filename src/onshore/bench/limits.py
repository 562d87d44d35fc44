"""Physical limits of this machine, measured by the benchmark itself so results can be read as a
fraction of what is possible here:

- **disk**: sequential write of one file in 1 MiB chunks followed by ``fsync`` (what a durable large
  PUT must at least pay), then reading it back after ``posix_fadvise(DONTNEED)`` has asked the
  kernel to drop it from the page cache; and the rate of *durable small files*: write 4 KiB,
  ``fsync``, ``rename``, ``fsync`` the directory, which is what one un-batched durable small PUT
  costs.
- **hashing**: MD5 (the ETag), SHA-256 (SigV4 payload hashes), CRC-32 and CRC32C (S3's additional
  checksums, with ``awscrt``) throughput on one core, over 1 MiB buffers.
- **loopback**: TCP throughput over 127.0.0.1, one sender and one receiver thread.
- **trivial HTTP**: requests/s of ``responder.py`` (onshore's HTTP stack, one worker, 4 KiB
  per response) driven by the same load generator, processes and concurrency as the small workload.

The disk test runs in a temporary directory under ``--data-dir`` (default: the system temporary
directory), so point it at the filesystem the server stores its data on.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .payloads import CHUNK, PayloadPool

MEASURE_SECONDS = 0.5


def disk(data_dir: str | None, total_bytes: int, small_files: int) -> dict[str, float]:
    pool = PayloadPool(7)
    with tempfile.TemporaryDirectory(prefix="onshore-bench-disk-", dir=data_dir) as tmp:
        path = Path(tmp) / "big"
        t0 = time.perf_counter()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for chunk in pool.stream(3, total_bytes):
                os.write(fd, chunk)
            os.fsync(fd)
        finally:
            os.close(fd)
        write_s = time.perf_counter() - t0
        fd = os.open(path, os.O_RDONLY)
        try:
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            buf = bytearray(CHUNK)
            t0 = time.perf_counter()
            for _ in range(total_bytes // CHUNK + 2):  # bounded
                if os.readv(fd, [buf]) <= 0:
                    break
            read_s = time.perf_counter() - t0
        finally:
            os.close(fd)
        small = pool.body(11, 4096)
        dir_fd = os.open(tmp, os.O_RDONLY)
        t0 = time.perf_counter()
        try:
            for i in range(small_files):
                tmp_name, final = Path(tmp) / f".t{i}", Path(tmp) / f"f{i}"
                fd = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    os.write(fd, small)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.rename(tmp_name, final)
                os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        small_s = time.perf_counter() - t0
    return {
        "disk_write_fsync_mb_per_s": total_bytes / write_s / 1e6,
        "disk_read_mb_per_s": total_bytes / read_s / 1e6,
        "durable_4k_files_per_s": small_files / small_s,
        "disk_test_bytes": float(total_bytes),
    }


def _rate(fn: Callable[[bytes], object], data: bytes) -> float:
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < MEASURE_SECONDS:
        fn(data)
        n += 1
    return n * len(data) / (time.perf_counter() - t0) / 1e6


def hashing() -> dict[str, float]:
    data = PayloadPool(5).data[:CHUNK]
    rates = {
        "md5_mb_per_s": _rate(lambda b: hashlib.md5(b).digest(), data),
        "sha256_mb_per_s": _rate(lambda b: hashlib.sha256(b).digest(), data),
        "crc32_mb_per_s": _rate(zlib.crc32, data),
    }
    try:  # the CRC32C of S3's additional checksums, as onshore computes it (awscrt)
        from awscrt.checksums import crc32c
    except ImportError:  # pragma: no cover - awscrt is a dependency
        return rates
    rates["crc32c_mb_per_s"] = _rate(crc32c, data)
    return rates


def loopback(total_bytes: int) -> dict[str, float]:
    """TCP throughput over 127.0.0.1 between two threads (the socket calls release the GIL)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        received = [0]

        def drain() -> None:
            conn, _ = listener.accept()
            buf = bytearray(CHUNK)
            with conn:
                for _ in range(total_bytes):  # bounded: at least one byte per call
                    n = conn.recv_into(buf)
                    if n <= 0:
                        break
                    received[0] += n

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        chunk = PayloadPool(9).data[:CHUNK]
        t0 = time.perf_counter()
        with socket.create_connection(listener.getsockname()) as sender:
            for _ in range(total_bytes // CHUNK):
                sender.sendall(chunk)
        reader.join(60)
        seconds = time.perf_counter() - t0
    return {"loopback_mb_per_s": received[0] / seconds / 1e6}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen[Any] | None = None) -> None:
    """Wait until something accepts connections on 127.0.0.1:``port`` (or the process dies)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f}s")


def start_responder() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "onshore.bench.responder:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "onshore.s3api.protocol:S3HttpProtocol",
            "--no-access-log",
            "--log-level",
            "warning",
            "--workers",
            "1",
        ],
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, 30, proc)
    except BaseException:
        proc.kill()
        proc.wait(10)
        raise
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
