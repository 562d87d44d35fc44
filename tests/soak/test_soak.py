"""Soak: mixed traffic from many concurrent clients for a bounded time, then proof that nothing
went wrong and that the server's memory stopped growing.

Each client thread owns a key prefix and remembers the SHA-256 of what it last wrote under each
key (or that it deleted it), so every GET, HEAD and LIST has one right answer. Operations:
GET (verified), HEAD, PUT (0 bytes to 64 MiB), DELETE, LIST (the thread's whole prefix, compared
with what it expects) and multipart uploads. Any error or mismatch fails the test; at the end
every key is read back once more.

The server's memory (the sum of VmRSS over its processes) is sampled every second and written,
with a plot (``rss.svg``) and a summary, to ``test-output/soak/``. Memory must stop growing: the
peak of the second half of the run may not exceed the peak of the first half by more than 20%
(plus 16 MiB of slack for a short run's warm-up).

Quick form (in CI, 2 minutes): ``scripts/test tests/soak``. Long form, 30 minutes:
``ONSHORE_SOAK_SECONDS=1800 scripts/test tests/soak``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from onshore.bench.procstat import descendants, rss_bytes
from tests.api.conftest import make_client
from tests.api.server import ServerProcess

SECONDS = float(os.environ.get("ONSHORE_SOAK_SECONDS", "120"))
CLIENTS = int(os.environ.get("ONSHORE_SOAK_CLIENTS", "8"))
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "soak"
BUCKET = "soak"
MIB = 1024 * 1024
PART = 5 * MIB

#: (weight, operation)
MIX = [(34, "get"), (8, "head"), (28, "put"), (12, "delete"), (10, "list"), (3, "multipart")]


def object_size(rng: random.Random) -> int:
    """Mostly small objects, some medium, a few large, now and then 64 MiB."""
    roll = rng.random()
    if roll < 0.05:
        return 0
    if roll < 0.65:
        return rng.randint(1, 64 * 1024)
    if roll < 0.90:
        return rng.randint(64 * 1024, MIB)
    if roll < 0.995:
        return rng.randint(MIB, 8 * MIB)
    return 64 * MIB


@dataclass
class Client:
    """One client thread: its own connection pool, key prefix and expectations."""

    number: int
    s3: Any
    rng: random.Random
    expected: dict[str, bytes] = field(default_factory=dict)  # key -> sha256 of the content
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def key(self) -> str:
        return f"c{self.number}/{self.rng.randrange(200):03d}"

    def fail(self, what: str) -> None:
        self.failures.append(what)

    def run(self, until: float) -> None:
        operations, weights = zip(*((op, w) for w, op in MIX), strict=True)
        while time.monotonic() < until and len(self.failures) < 10:
            op = self.rng.choices(operations, weights)[0]
            try:
                getattr(self, op)()
                self.counts[op] += 1
            except ClientError as error:
                self.fail(f"{op}: {error}")
            except Exception as error:  # noqa: BLE001 - every failure is reported, not raised
                self.fail(f"{op}: {type(error).__name__}: {error}")

    def put(self) -> None:
        key, body = self.key(), self.rng.randbytes(object_size(self.rng))
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        self.expected[key] = hashlib.sha256(body).digest()

    def multipart(self) -> None:
        key = self.key()
        parts = [self.rng.randbytes(PART) for _ in range(self.rng.randint(1, 2))]
        parts.append(self.rng.randbytes(self.rng.randint(1, MIB)))
        upload = self.s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
        done = []
        for number, part in enumerate(parts, start=1):
            etag = self.s3.upload_part(
                Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=number, Body=part
            )["ETag"]
            done.append({"PartNumber": number, "ETag": etag})
        self.s3.complete_multipart_upload(
            Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": done}
        )
        self.expected[key] = hashlib.sha256(b"".join(parts)).digest()

    def get(self) -> None:
        if not self.expected:
            return
        key = self.rng.choice(sorted(self.expected))
        digest = hashlib.sha256()
        for piece in self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].iter_chunks(MIB):
            digest.update(piece)
        if digest.digest() != self.expected[key]:
            self.fail(f"get {key}: content differs from what was written")

    def head(self) -> None:
        key = self.key()
        try:
            self.s3.head_object(Bucket=BUCKET, Key=key)
            found = True
        except ClientError as error:
            if error.response["ResponseMetadata"]["HTTPStatusCode"] != 404:
                raise
            found = False
        if found != (key in self.expected):
            self.fail(f"head {key}: found={found}, expected {key in self.expected}")

    def delete(self) -> None:
        key = self.key()
        self.s3.delete_object(Bucket=BUCKET, Key=key)
        self.expected.pop(key, None)

    def list(self) -> None:
        listed = {
            item["Key"]
            for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=BUCKET, Prefix=f"c{self.number}/", PaginationConfig={"PageSize": 100}
            )
            for item in page.get("Contents", [])
        }
        if listed != set(self.expected):
            self.fail(f"list c{self.number}/: {len(listed ^ set(self.expected))} keys differ")


class MemorySampler(threading.Thread):
    """Samples the server tree's resident memory every second."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[tuple[float, int]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self.stopping.wait(1.0):
            self.samples.append((time.monotonic() - started, rss_bytes(descendants(self.pid))))


def svg_plot(samples: list[tuple[float, int]], title: str) -> str:
    """A small self-contained SVG line chart of RSS (MiB) over time (s)."""
    width, height, pad = 720, 360, 50
    times = [t for t, _ in samples] or [0.0]
    mibs = [r / MIB for _, r in samples] or [0.0]
    t_max, m_max = max(times) or 1.0, (max(mibs) or 1.0) * 1.1

    def x(t: float) -> float:
        return pad + (width - 2 * pad) * t / t_max

    def y(m: float) -> float:
        return height - pad - (height - 2 * pad) * m / m_max

    points = " ".join(f"{x(t):.1f},{y(m):.1f}" for t, m in zip(times, mibs, strict=True))
    ticks = "".join(
        f'<text x="{pad - 8}" y="{y(m_max * i / 4) + 4:.1f}" text-anchor="end" font-size="11">'
        f"{m_max * i / 4:.0f}</text>"
        for i in range(5)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
        f'<rect width="100%" height="100%" fill="white"/>'
        f'<text x="{width / 2}" y="24" text-anchor="middle" font-size="14">{title}</text>'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        f'stroke="black"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" '
        f'stroke="black"/>{ticks}'
        f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle" font-size="12">'
        f"seconds (0 to {t_max:.0f})</text>"
        f'<text x="14" y="{height / 2}" font-size="12" transform="rotate(-90 14 {height / 2})"'
        f' text-anchor="middle">RSS, MiB</text>'
        f'<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{points}"/></svg>'
    )


@pytest.fixture
def soak_server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "data").start()
    yield server
    server.cleanup()


def test_soak_mixed_traffic(soak_server: ServerProcess) -> None:
    make_client(soak_server.endpoint).create_bucket(Bucket=BUCKET)
    assert soak_server.process is not None
    sampler = MemorySampler(soak_server.process.pid)
    sampler.start()
    clients = [
        Client(n, make_client(soak_server.endpoint), random.Random(n)) for n in range(CLIENTS)
    ]
    until = time.monotonic() + SECONDS
    threads = [threading.Thread(target=c.run, args=(until,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sampler.stopping.set()
    sampler.join()

    # Every key, once more, as its owner expects it.
    for client in clients:
        for key in sorted(client.expected):
            body = client.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            if hashlib.sha256(body).digest() != client.expected[key]:
                client.fail(f"final read of {key}: content differs")

    counts = sum((c.counts for c in clients), Counter())
    failures = [f for c in clients for f in c.failures]
    samples = sampler.samples
    half = len(samples) // 2
    first_peak = max((r for _, r in samples[:half]), default=0)
    second_peak = max((r for _, r in samples[half:]), default=0)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    summary = {
        "seconds": SECONDS,
        "clients": CLIENTS,
        "operations": dict(counts),
        "total_operations": sum(counts.values()),
        "failures": failures,
        "rss_peak_first_half_mib": round(first_peak / MIB, 1),
        "rss_peak_second_half_mib": round(second_peak / MIB, 1),
    }
    (OUTPUT / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (OUTPUT / "rss.csv").write_text(
        "seconds,rss_bytes\n" + "".join(f"{t:.1f},{r}\n" for t, r in samples)
    )
    (OUTPUT / "rss.svg").write_text(
        svg_plot(samples, f"onshore server RSS, {CLIENTS} clients, {SECONDS:.0f} s soak")
    )

    assert failures == [], failures[:10]
    assert counts["put"] > 0 and counts["get"] > 0 and counts["multipart"] > 0, counts
    assert len(samples) >= 10
    assert second_peak <= first_peak * 1.2 + 16 * MIB, summary
