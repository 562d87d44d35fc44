"""Large objects through boto3, with the server's memory watched: it must not grow with size.

The bodies are generated on the fly by ``PatternStream`` (seekable, so botocore can hash it before
sending, but never materialised) and verified on the way back with running MD5 and SHA-256
digests. The server under test is a dedicated process (with its default worker processes), so
its memory reflects only these transfers; ``RssSampler`` reads ``VmRSS`` of every process of its
tree from ``/proc`` every 50 ms and finally each one's ``VmHWM`` (the kernel's own peak, which
catches spikes between samples).
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import make_client
from tests.api.server import ServerProcess

MiB = 1024 * 1024
GiB = 1024 * MiB
# Peak resident memory allowed for any one server process during a transfer.
RSS_LIMIT = 200 * MiB
# Growth of the whole server tree's resident memory over its idle level.
GROWTH_LIMIT = 128 * MiB

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="needs Linux /proc to sample the server's RSS"
)


class PatternStream(io.RawIOBase):
    """``size`` bytes in which the 64 KiB block ``i`` is ``i`` (8 bytes) followed by random bytes
    shared by all blocks: any byte depends only on its position, so the stream can seek, and any
    misplaced, repeated or shifted block changes the digests."""

    BLOCK = 64 * 1024

    def __init__(self, size: int, seed: bytes) -> None:
        self.size = size
        self.pos = 0
        self._base = hashlib.shake_256(seed).digest(self.BLOCK)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: self.size}[whence]
        self.pos = base + offset
        return self.pos

    def read(self, n: int | None = -1) -> bytes:
        end = self.size if n is None or n < 0 else min(self.size, self.pos + n)
        pieces = []
        while self.pos < end:
            index, offset = divmod(self.pos, self.BLOCK)
            block = index.to_bytes(8, "big") + self._base[8:]
            piece = block[offset : offset + end - self.pos]
            pieces.append(piece)
            self.pos += len(piece)
        return b"".join(pieces)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@dataclass
class Digests:
    md5: str
    sha256: str
    part_md5s: list[bytes] = field(default_factory=list)

    def multipart_etag(self) -> str:
        joined = b"".join(self.part_md5s)
        return f'"{hashlib.md5(joined).hexdigest()}-{len(self.part_md5s)}"'


def digests_of(stream: PatternStream, part_size: int = 0) -> Digests:
    """MD5 and SHA-256 of the whole stream and, with ``part_size``, the MD5 of each part."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    parts: list[bytes] = []
    part = hashlib.md5()
    in_part = 0
    stream.seek(0)
    for chunk in iter(lambda: stream.read(MiB), b""):
        md5.update(chunk)
        sha.update(chunk)
        if part_size:
            assert part_size % MiB == 0
            part.update(chunk)
            in_part += len(chunk)
            if in_part == part_size:
                parts.append(part.digest())
                part, in_part = hashlib.md5(), 0
    if part_size and in_part:
        parts.append(part.digest())
    stream.seek(0)
    return Digests(md5.hexdigest(), sha.hexdigest(), parts)


class HashingSink(io.RawIOBase):
    """A write-only file that keeps running digests of what it receives, and nothing else."""

    def __init__(self) -> None:
        self.md5 = hashlib.md5()
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.md5.update(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)


def _tree(root: int) -> list[int]:
    """``root`` and its live descendants, found through the parent id in ``/proc/PID/stat``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                raw = Path(f"/proc/{entry}/stat").read_text(errors="replace")
            except OSError:
                continue
            ppid = int(raw[raw.rfind(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def _status_kib(pid: int, field_name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler:
    """Samples the resident memory of a process tree in a thread while a block runs."""

    def __init__(self, root: int, interval: float = 0.05) -> None:
        self.root = root
        self.interval = interval
        self.pids = _tree(root)
        self.idle_total = self._total()
        self.peak_total = self.idle_total
        self.peak_each: dict[int, int] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _total(self) -> int:
        return sum(_status_kib(pid, "VmRSS") for pid in self.pids) * 1024

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            total = 0
            for pid in self.pids:
                rss = _status_kib(pid, "VmRSS") * 1024
                self.peak_each[pid] = max(self.peak_each.get(pid, 0), rss)
                total += rss
            self.peak_total = max(self.peak_total, total)
            self.samples += 1

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for pid in self.pids:  # the kernel's high-water mark catches what sampling missed
            hwm = _status_kib(pid, "VmHWM") * 1024
            self.peak_each[pid] = max(self.peak_each.get(pid, 0), hwm)

    def report(self) -> str:
        each = ", ".join(f"{pid}: {rss / MiB:.0f} MiB" for pid, rss in self.peak_each.items())
        return (
            f"idle {self.idle_total / MiB:.0f} MiB, peak {self.peak_total / MiB:.0f} MiB "
            f"over {self.samples} samples; per process peak {each}"
        )

    def check(self) -> None:
        assert self.samples > 10, "the transfer was too short to sample"
        assert max(self.peak_each.values()) < RSS_LIMIT, self.report()
        assert self.peak_total - self.idle_total < GROWTH_LIMIT, self.report()


@pytest.fixture(scope="module")
def big_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of its own, so that its memory high-water marks belong to these tests alone."""
    proc = ServerProcess(tmp_path_factory.mktemp("onshore-large") / "data").start()
    yield proc
    proc.cleanup()


@pytest.fixture(scope="module")
def big_s3(big_server: ServerProcess) -> Any:
    return make_client(big_server.endpoint, read_timeout=300, connect_timeout=10)


@pytest.fixture
def big_bucket(big_s3: Any) -> Iterator[str]:
    name = f"large-{os.urandom(6).hex()}"
    big_s3.create_bucket(Bucket=name)
    yield name
    for page in big_s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for obj in page.get("Contents", []):
            big_s3.delete_object(Bucket=name, Key=obj["Key"])
    big_s3.delete_bucket(Bucket=name)


def download(s3: Any, bucket: str, key: str) -> HashingSink:
    sink = HashingSink()
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    for chunk in iter(lambda: body.read(MiB), b""):
        sink.write(chunk)
    return sink


def test_two_gib_single_put_and_get(
    big_server: ServerProcess, big_s3: Any, big_bucket: str
) -> None:
    size = 2 * GiB
    stream = PatternStream(size, seed=b"two-gib")
    expected = digests_of(stream)
    assert big_server.process is not None

    started = time.monotonic()
    with RssSampler(big_server.process.pid) as upload_rss:
        put = big_s3.put_object(Bucket=big_bucket, Key="big/two-gib.bin", Body=stream)
    upload_seconds = time.monotonic() - started
    assert put["ETag"] == f'"{expected.md5}"'
    assert big_s3.head_object(Bucket=big_bucket, Key="big/two-gib.bin")["ContentLength"] == size

    started = time.monotonic()
    with RssSampler(big_server.process.pid) as download_rss:
        sink = download(big_s3, big_bucket, "big/two-gib.bin")
    download_seconds = time.monotonic() - started
    assert sink.size == size
    assert sink.md5.hexdigest() == expected.md5
    assert sink.sha256.hexdigest() == expected.sha256

    print(f"upload {upload_seconds:.1f} s, server memory: {upload_rss.report()}")
    print(f"download {download_seconds:.1f} s, server memory: {download_rss.report()}")
    upload_rss.check()
    download_rss.check()


def test_one_gib_multipart_with_transfer_config(
    big_server: ServerProcess, big_s3: Any, big_bucket: str
) -> None:
    """boto3's managed transfer: 16 MiB parts, several in flight at once, both ways."""
    from boto3.s3.transfer import TransferConfig

    size = GiB + 5 * MiB  # 65 parts, the last one short
    part = 16 * MiB
    stream = PatternStream(size, seed=b"one-gib-multipart")
    expected = digests_of(stream, part_size=part)
    config = TransferConfig(
        multipart_threshold=part, multipart_chunksize=part, max_concurrency=8, use_threads=True
    )
    assert big_server.process is not None

    started = time.monotonic()
    with RssSampler(big_server.process.pid) as upload_rss:
        big_s3.upload_fileobj(stream, big_bucket, "big/multipart.bin", Config=config)
    upload_seconds = time.monotonic() - started
    head = big_s3.head_object(Bucket=big_bucket, Key="big/multipart.bin")
    assert head["ContentLength"] == size
    assert head["ETag"] == expected.multipart_etag()
    assert len(expected.part_md5s) == 65
    assert big_s3.list_multipart_uploads(Bucket=big_bucket).get("Uploads", []) == []

    started = time.monotonic()
    with RssSampler(big_server.process.pid) as download_rss:
        sink = HashingSink()
        big_s3.download_fileobj(big_bucket, "big/multipart.bin", sink, Config=config)
    download_seconds = time.monotonic() - started
    assert sink.size == size
    assert sink.sha256.hexdigest() == expected.sha256

    print(f"upload {upload_seconds:.1f} s, server memory: {upload_rss.report()}")
    print(f"download {download_seconds:.1f} s, server memory: {download_rss.report()}")
    upload_rss.check()
    download_rss.check()
