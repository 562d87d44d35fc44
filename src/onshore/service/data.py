"""Moving object bytes: request body → blob (or inline), and blob → response body.

Writing streams: the body is read from the client in pieces and handled in ~1 MiB batches on
the I/O pool, in two lanes that run side by side, on two threads: one hashes the batches (MD5
for the ETag, and the default checksum), the other writes them to a new blob; each lane takes
its batches in order, up to three batches are in flight, and meanwhile the event loop receives
the next. Hashing and writing each take about as long as the other (MD5 runs at ~600 MB/s on
one core; copying into the page cache, sealing and the system calls add up to about the same),
so splitting them nearly halves the time per batch of a large upload; letting a lane run up to
two batches ahead of the other means neither waits for the other's slower batch (a large
upload is then as fast as its MD5 allows). A batch is the
list of pieces as received: they are written with one gathering ``writev`` or, when encrypting,
sealed one by one into a reused buffer (``segments.scratch``) that is written with one call, so
a write in progress holds its batch and that buffer, not fresh copies of the batch. Bodies that
end up no larger than
``inline_threshold`` never touch the filesystem: they are returned inline, to be committed
inside the metadata row. A blob is fsynced and renamed into place before its id is returned, so
the metadata commit that follows is the moment the object exists; on any failure, including
cancellation, the partial blob is removed.

Every object gets an additional checksum, as on AWS since 2025: the one the client sent (verified
by the body reader), or else a CRC64NVME computed here alongside the MD5.

Reading streams the same way in the other direction; memory use does not grow with object size.

Encryption at rest: given a data key (``aead``), bytes are sealed in the segment format of
:mod:`onshore.service.encryption.segments` in the same worker-thread call that writes them (and
opened in the one that reads them), so crypto stays off the event loop; inline bodies are sealed
too. MD5 and checksums are always those of the plaintext. A segment that fails authentication
stops the read with InternalError: before the first byte that is a 500 response, after it the
connection is cut (see ``S3App.send_stream``) — altered bytes are never sent.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from onshore.domain import checksums
from onshore.domain.errors import EntityTooLarge, InternalError
from onshore.domain.models import Checksum, ChecksumAlgorithm, ObjectVersion, Segment
from onshore.domain.ranges import ByteRange
from onshore.service import faults
from onshore.service.blocking import Blocking
from onshore.service.encryption import segments
from onshore.service.encryption.segments import Aead, IntegrityError, Sealer
from onshore.storage.ports import BlobStore, BlobWriter

WRITE_BATCH = 1024 * 1024
READ_CHUNK = 1024 * 1024
MAX_OBJECT_SIZE = 5 * 1024**3


class ByteSource(Protocol):
    """A request body: ``read()`` returns the next piece, ``b""`` at the end (after verifying
    signatures and checksums); ``checksum`` is the verified additional checksum, if any."""

    async def read(self) -> bytes | bytearray: ...

    @property
    def checksum(self) -> Checksum | None: ...


@dataclass(frozen=True, slots=True)
class StoredData:
    size: int
    md5: bytes
    inline: bytes | None
    blob_id: str | None
    checksum: Checksum

    @property
    def etag(self) -> str:
        return self.md5.hex()


class _Digests:
    """The MD5 (for the ETag) and the default CRC64NVME of the bytes seen so far."""

    __slots__ = ("crc", "md5")

    def __init__(self) -> None:
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.crc = checksums.new_hasher(ChecksumAlgorithm.CRC64NVME)

    def update(self, data: bytes | bytearray) -> None:
        self.md5.update(data)
        self.crc.update(data)

    def checksum(self, declared: Checksum | None) -> Checksum:
        if declared is not None:
            return declared
        return Checksum(ChecksumAlgorithm.CRC64NVME, checksums.encode(self.crc.digest()))


def _hash_batch(digests: _Digests, batch: list[bytes | bytearray]) -> None:
    for piece in batch:
        digests.update(piece)


def _write_batch(writer: BlobWriter, batch: list[bytes | bytearray], sealer: Sealer | None) -> None:
    if sealer is None:
        writer.write_pieces(batch)  # one system call for the batch
        return
    buffer = segments.scratch.take(sealer.room_for(sum(len(piece) for piece in batch)))
    try:
        with memoryview(buffer) as out:
            written = 0
            for piece in batch:
                written += sealer.update_into(piece, out[written:])
            writer.write(out[:written])  # one write for the batch
    finally:
        segments.scratch.give(buffer)


class _Lanes:
    """The two lanes of an upload's pipeline, hashing and writing: each runs its batches one
    after the other, in order, on the I/O pool; the two run side by side; and up to ``DEPTH``
    batches are in flight, so that neither lane waits for the other's slower batch, and the event
    loop goes on receiving meanwhile.

    A lane's jobs are tasks that are never cancelled, since a thread cannot be stopped in the
    middle of a job: when the request fails or is cancelled, the caller's cleanup (:meth:`abort`)
    lets the jobs already running finish, skips those not yet started, and only then aborts the
    blob they write to."""

    DEPTH = 3
    __slots__ = ("_abandoned", "_blocking", "_digests", "_in_flight", "_sealer", "writer")

    def __init__(
        self, blocking: Blocking, digests: _Digests, writer: BlobWriter, sealer: Sealer | None
    ) -> None:
        self._blocking = blocking
        self._digests = digests
        self.writer = writer
        self._sealer = sealer
        self._in_flight: deque[tuple[asyncio.Task[None], asyncio.Task[None]]] = deque()
        self._abandoned = False

    async def add(self, batch: list[bytes | bytearray]) -> None:
        """Queue ``batch`` on both lanes, first waiting for the oldest batch if ``DEPTH`` are
        in flight (which also surfaces a failed stage)."""
        in_flight = self._in_flight
        if len(in_flight) >= self.DEPTH:
            await self._wait_oldest()
        hashing, writing = in_flight[-1] if in_flight else (None, None)
        in_flight.append(
            (
                asyncio.create_task(self._after(hashing, _hash_batch, self._digests, batch)),
                asyncio.create_task(
                    self._after(writing, _write_batch, self.writer, batch, self._sealer)
                ),
            )
        )

    async def _after(
        self, previous: asyncio.Task[None] | None, fn: Callable[..., None], *args: object
    ) -> None:
        """Run ``fn(*args)`` on the pool once ``previous`` (the lane's batch before) is done; if
        that one failed, fail the same way without running."""
        if previous is not None:
            await previous
        if not self._abandoned:
            await self._blocking(fn, *args)

    async def _wait_oldest(self) -> None:
        for stage in self._in_flight[0]:
            await asyncio.shield(stage)
        self._in_flight.popleft()

    async def drain(self) -> None:
        """Wait until every queued batch is hashed and written; raise the first failure."""
        while self._in_flight:
            await self._wait_oldest()

    async def abort(self) -> None:
        """After a failure or a cancellation: skip the jobs not yet started, let the running
        ones finish, then abort the blob. The abort is chained to the jobs' end rather than
        done after this wait, so that a second cancellation, which ends the wait early, still
        never has the blob closed under a job writing to it."""
        self._abandoned = True
        stages = [stage for pair in self._in_flight for stage in pair]
        self._in_flight.clear()
        loop = asyncio.get_running_loop()
        writer = self.writer

        def abort_blob(_: object = None) -> None:
            loop.run_in_executor(None, writer.abort)

        if not stages:
            abort_blob()
            return
        ended = asyncio.ensure_future(asyncio.wait(stages))
        ended.add_done_callback(abort_blob)
        await asyncio.shield(ended)


def _commit(writer: BlobWriter, sealer: Sealer | None) -> str:
    if sealer is not None:
        writer.write(sealer.finish())
    return writer.commit()


async def store_stream(
    source: ByteSource,
    blobs: BlobStore,
    blocking: Blocking,
    *,
    inline_threshold: int,
    max_size: int = MAX_OBJECT_SIZE,
    aead: Aead | None = None,
    part_number: int = 0,
) -> StoredData:
    """Consume ``source`` entirely and store it, sealed with ``aead`` when given (a multipart
    part passes its ``part_number``, bound into every segment); see the module docstring."""
    digests = _Digests()
    sealer = None if aead is None else Sealer(aead, part_number)
    pending: list[bytes | bytearray] = []
    pending_size = 0
    total = 0
    lanes: _Lanes | None = None  # once the body is known not to fit inline
    try:
        while True:
            piece = await source.read()
            if not piece:
                break
            total += len(piece)
            if total > max_size:
                raise EntityTooLarge(MaxSizeAllowed=str(max_size))
            pending.append(piece)
            pending_size += len(piece)
            if pending_size >= WRITE_BATCH and pending_size > inline_threshold:
                if lanes is None:
                    lanes = _Lanes(blocking, digests, await blocking(blobs.create), sealer)
                batch, pending, pending_size = pending, [], 0
                await lanes.add(batch)
        if lanes is None and total <= inline_threshold:  # (so no batch was handed over)
            rest = b"".join(pending)
            checksums.update_on_loop((digests.md5, digests.crc), rest)
            checksum = digests.checksum(source.checksum)
            inline = rest if aead is None else segments.seal(aead, rest, part_number)
            return StoredData(total, digests.md5.digest(), inline, None, checksum)
        if lanes is None:
            lanes = _Lanes(blocking, digests, await blocking(blobs.create), sealer)
        if pending:
            await lanes.add(pending)
        await lanes.drain()
        faults.point("store_stream.before_blob_commit")
        blob_id = await blocking(_commit, lanes.writer, sealer)
        checksum = digests.checksum(source.checksum)
        return StoredData(total, digests.md5.digest(), None, blob_id, checksum)
    except BaseException:
        if lanes is not None:  # the blob is aborted only once no thread uses it any more
            await lanes.abort()
        raise


def _read_at(blobs: BlobStore, blob_id: str, offset: int, length: int) -> bytes:
    try:
        with blobs.open(blob_id) as handle:
            handle.seek(offset)
            return handle.read(length)
    except FileNotFoundError:
        raise InternalError("The object's data could not be read.") from None


_CORRUPT = "The object's data failed its integrity check."


def _open_at(blobs: BlobStore, segment: Segment, aead: Aead, offset: int, length: int) -> bytearray:
    """Plaintext ``[offset, offset + length)`` of a sealed blob: read and open in one call."""
    try:
        with blobs.open(segment.blob_id) as handle:
            return segments.open_range(
                aead, handle, segment.size, offset, offset + length, segment.part_number
            )
    except FileNotFoundError:
        raise InternalError("The object's data could not be read.") from None
    except IntegrityError:
        raise InternalError(_CORRUPT) from None


def open_inline(version: ObjectVersion, aead: Aead | None) -> bytes:
    """The plaintext body of an inline version (sealed or not)."""
    assert version.inline is not None
    if aead is None:
        return version.inline
    try:
        return segments.open_all(aead, version.inline, version.size)
    except IntegrityError:
        raise InternalError(_CORRUPT) from None


async def stream_version(
    version: ObjectVersion,
    blobs: BlobStore,
    blocking: Blocking,
    byte_range: ByteRange | None = None,
    aead: Aead | None = None,
) -> AsyncIterator[bytes | bytearray]:
    """Yield the bytes of ``version`` (or of ``byte_range`` of it) in ~1 MiB pieces, opening
    them with ``aead`` when the version is sealed."""
    start = byte_range.start if byte_range else 0
    end = byte_range.end + 1 if byte_range else version.size
    if version.inline is not None:
        if end > start:
            yield open_inline(version, aead)[start:end]
        return
    for segment, seg_start, seg_end in _overlapping(version.segments, start, end):
        offset = seg_start
        while offset < seg_end:
            length = min(READ_CHUNK, seg_end - offset)
            data: bytes | bytearray
            if aead is None:
                data = await blocking(_read_at, blobs, segment.blob_id, offset, length)
            else:
                data = await blocking(_open_at, blobs, segment, aead, offset, length)
            if len(data) != length:
                raise InternalError("The object's data is shorter than recorded.")
            offset += length
            yield data


def _overlapping(
    segments: tuple[Segment, ...], start: int, end: int
) -> list[tuple[Segment, int, int]]:
    """(segment, start within it, end within it) for each segment overlapping [start, end)."""
    found: list[tuple[Segment, int, int]] = []
    position = 0
    for segment in segments:
        seg_begin, seg_end = position, position + segment.size
        position = seg_end
        if seg_end <= start or seg_begin >= end:
            continue
        found.append((segment, max(start, seg_begin) - seg_begin, min(end, seg_end) - seg_begin))
    return found


async def copy_stream(
    version: ObjectVersion,
    blobs: BlobStore,
    blocking: Blocking,
    *,
    inline_threshold: int,
    byte_range: ByteRange | None = None,
    source_aead: Aead | None = None,
    aead: Aead | None = None,
    part_number: int = 0,
) -> StoredData:
    """Copy (a range of) an existing version into new storage, for CopyObject/UploadPartCopy:
    opened with the source's data key, sealed with the target's."""
    pieces = stream_version(version, blobs, blocking, byte_range, source_aead)

    class _Source:
        checksum: Checksum | None = None

        async def read(self) -> bytes | bytearray:
            return await anext(pieces, b"")

    return await store_stream(
        _Source(),
        blobs,
        blocking,
        inline_threshold=inline_threshold,
        aead=aead,
        part_number=part_number,
    )
