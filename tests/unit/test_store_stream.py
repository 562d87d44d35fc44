"""``store_stream``: a body hashed and written in batches by two threads side by side.

What must hold whatever the interleaving: the blob holds the body's bytes in order, the ETag and
default checksum are those of the whole body, and on a failure or a cancellation the blob being
written is aborted only once no thread still uses it, leaving no temporary file behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from onshore.domain import checksums
from onshore.domain.checksums import Buffer
from onshore.domain.models import Checksum, ChecksumAlgorithm
from onshore.service import data
from onshore.service.blocking import Blocking
from onshore.service.data import WRITE_BATCH, store_stream
from onshore.service.encryption import segments
from onshore.service.encryption.segments import Aead, CipherName
from onshore.storage.filesystem import FilesystemBlobStore, FilesystemBlobWriter


class _Body:
    """A request body handed over in pieces of varied sizes, as a socket delivers them."""

    checksum: Checksum | None = None

    def __init__(self, pieces: Sequence[bytes]) -> None:
        self._pieces: Iterator[bytes] = iter(pieces)

    async def read(self) -> bytes:
        await asyncio.sleep(0)
        return next(self._pieces, b"")


def _pieces(total: int) -> list[bytes]:
    sizes = [1, 65536, 4096, 300_000, 17, 1 << 20]
    out, left, i = [], total, 0
    while left:
        size = min(sizes[i % len(sizes)], left)
        out.append(os.urandom(size))
        left -= size
        i += 1
    return out


class _HeldWrites:
    """Makes every blob write wait for ``release`` (``entered`` is set once one waits), then
    write for real, which raises if the blob was aborted meanwhile; ``finished`` counts them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.finished: list[bool] = []
        real = FilesystemBlobWriter.write_pieces

        def held(writer: FilesystemBlobWriter, pieces: Sequence[Buffer]) -> None:
            self.entered.set()
            self.release.wait(5)
            real(writer, pieces)
            self.finished.append(True)

        monkeypatch.setattr(FilesystemBlobWriter, "write_pieces", held)

    async def cancel_an_upload(
        self, blobs: FilesystemBlobStore, blocking: Blocking
    ) -> asyncio.Task[data.StoredData]:
        """Start an upload of three batches, cancel it once a write is held, give it time to
        react; the upload's task."""
        task = asyncio.create_task(
            store_stream(_Body(_pieces(3 * WRITE_BATCH)), blobs, blocking, inline_threshold=4096)
        )
        while not self.entered.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.sleep(0.05)
        return task


@pytest.fixture
def blobs(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "data")


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "sealed"])
def test_batches_arrive_whole_and_in_order(
    blobs: FilesystemBlobStore, blocking: Blocking, encrypted: bool
) -> None:
    pieces = _pieces(5 * WRITE_BATCH + 12345)
    body = b"".join(pieces)
    aead = Aead(CipherName.AES_256_GCM, os.urandom(32)) if encrypted else None
    stored = asyncio.run(
        store_stream(_Body(pieces), blobs, blocking, inline_threshold=4096, aead=aead)
    )
    assert stored.size == len(body)
    assert stored.md5 == hashlib.md5(body).digest()
    assert stored.checksum == Checksum(
        ChecksumAlgorithm.CRC64NVME, checksums.compute(ChecksumAlgorithm.CRC64NVME, body)
    )
    assert stored.blob_id is not None
    with blobs.open(stored.blob_id) as handle:
        on_disk = handle.read()
    if aead is None:
        assert on_disk == body
    else:
        assert segments.open_all(aead, on_disk, len(body)) == body
    assert os.listdir(blobs.temp_dir) == []


def test_a_failed_write_fails_the_upload_and_leaves_nothing(
    blobs: FilesystemBlobStore, blocking: Blocking, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The third batch's write fails (a full disk, say): the error reaches the caller, and the
    temporary file is gone once the pool has run the abort."""
    real = FilesystemBlobWriter.write_pieces
    calls = 0

    def failing(self: FilesystemBlobWriter, pieces: Sequence[Buffer]) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError(28, "No space left on device")
        real(self, pieces)

    monkeypatch.setattr(FilesystemBlobWriter, "write_pieces", failing)
    body = _Body(_pieces(6 * WRITE_BATCH))
    with pytest.raises(OSError, match="No space"):
        asyncio.run(store_stream(body, blobs, blocking, inline_threshold=4096))
    assert calls == 3
    assert os.listdir(blobs.temp_dir) == []
    assert list(blobs.iter_blob_ids()) == []


def test_a_cancelled_upload_waits_for_its_batch_before_aborting(
    blobs: FilesystemBlobStore, blocking: Blocking, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled while a batch is being written: the write must finish (or fail) before the blob
    is aborted, never on a descriptor closed, or reused, under it."""
    held = _HeldWrites(monkeypatch)

    async def scenario() -> None:
        task = await held.cancel_an_upload(blobs, blocking)
        assert not task.done()  # still waiting for the write in progress
        held.release.set()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    blocking.shutdown()
    assert held.finished == [True]
    assert os.listdir(blobs.temp_dir) == []


def test_cancelled_twice_the_blob_is_still_aborted_only_after_the_write(
    blobs: FilesystemBlobStore, blocking: Blocking, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second cancellation ends the upload's wait for its running write early; the abort of
    the blob must still wait for that write to end, and happen then."""
    held = _HeldWrites(monkeypatch)

    async def scenario() -> None:
        task = await held.cancel_an_upload(blobs, blocking)
        task.cancel()  # the cleanup's wait is cancelled too
        with pytest.raises(asyncio.CancelledError):
            await task
        assert os.listdir(blobs.temp_dir) != []  # not aborted under the running write
        held.release.set()
        for _ in range(500):
            if not os.listdir(blobs.temp_dir):
                break
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    blocking.shutdown()
    assert held.finished == [True]
    assert os.listdir(blobs.temp_dir) == []


def test_hashing_runs_ahead_of_a_slow_write(
    blobs: FilesystemBlobStore, blocking: Blocking, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lanes are independent: while the first batch's write is stuck, the hashing lane
    goes on with the batches after it (up to the pipeline's depth), in order."""
    held = _HeldWrites(monkeypatch)
    hashed: list[int] = []
    real_hash = data._hash_batch

    def counted(digests: data._Digests, batch: list[bytes | bytearray]) -> None:
        real_hash(digests, batch)
        hashed.append(sum(len(piece) for piece in batch))

    monkeypatch.setattr(data, "_hash_batch", counted)
    pieces = [os.urandom(WRITE_BATCH) for _ in range(6)]

    async def scenario() -> data.StoredData:
        task = asyncio.ensure_future(
            store_stream(_Body(pieces), blobs, blocking, inline_threshold=4096)
        )
        for _ in range(500):
            if len(hashed) == data._Lanes.DEPTH:
                break
            await asyncio.sleep(0.01)
        assert len(hashed) == data._Lanes.DEPTH  # all in flight hashed, none written yet
        assert not task.done()
        held.release.set()
        return await task

    stored = asyncio.run(scenario())
    assert stored.md5 == hashlib.md5(b"".join(pieces)).digest()
    assert stored.blob_id is not None
    with blobs.open(stored.blob_id) as handle:
        assert handle.read() == b"".join(pieces)
