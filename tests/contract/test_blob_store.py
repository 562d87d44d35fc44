"""The ``BlobStore`` / ``BlobWriter`` contract, on the filesystem blob store."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from onshore.storage import filesystem
from onshore.storage.filesystem import FilesystemBlobStore
from onshore.storage.ports import BlobStore, BlobWriter


def store_blob(blobs: BlobStore, *pieces: bytes) -> str:
    writer = blobs.create()
    for piece in pieces:
        writer.write(piece)
    return writer.commit()


def temp_files(blobs: FilesystemBlobStore) -> list[str]:
    return sorted(os.listdir(blobs.temp_dir))


def test_write_commit_read(blobs: FilesystemBlobStore) -> None:
    writer: BlobWriter = blobs.create()
    assert re.fullmatch(r"[0-9a-f]{32}", writer.blob_id)
    writer.write(b"hello ")
    writer.write(b"")
    writer.write(b"world")
    assert temp_files(blobs) == [f"{writer.blob_id}.part"]
    blob_id = writer.commit()
    assert blob_id == writer.blob_id
    assert temp_files(blobs) == []
    assert blobs.size(blob_id) == 11
    with blobs.open(blob_id) as f:
        assert f.read() == b"hello world"
        f.seek(6)
        assert f.read(3) == b"wor"


def test_layout_fans_out_by_id(blobs: FilesystemBlobStore, tmp_path: Path) -> None:
    blob_id = store_blob(blobs, b"x")
    assert (tmp_path / "data" / "blobs" / blob_id[:2] / blob_id[2:4] / blob_id).is_file()


def test_large_writes_stream_through(blobs: FilesystemBlobStore) -> None:
    piece = os.urandom(1 << 20)
    blob_id = store_blob(blobs, *([piece] * 9), memoryview(piece)[:123].tobytes())
    assert blobs.size(blob_id) == 9 * (1 << 20) + 123
    with blobs.open(blob_id) as f:
        f.seek(8 << 20)
        assert f.read(1 << 20) == piece


def test_write_pieces_gathers_them_in_order(blobs: FilesystemBlobStore) -> None:
    # More pieces than one writev() takes (1,024), of every buffer type, some empty.
    pieces: list[bytes | bytearray | memoryview] = []
    for i in range(2500):
        piece = os.urandom(i % 700)
        pieces.append(
            piece if i % 3 == 0 else bytearray(piece) if i % 3 == 1 else memoryview(piece)
        )
    writer = blobs.create()
    writer.write(b"head:")
    writer.write_pieces(pieces)
    writer.write_pieces([])
    blob_id = writer.commit()
    with blobs.open(blob_id) as f:
        assert f.read() == b"head:" + b"".join(bytes(piece) for piece in pieces)


def test_write_pieces_resumes_after_short_writes(
    blobs: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """writev may write less than asked (a signal, a full pipe, some filesystems): the rest,
    mid-piece included, must still go out, once and in order."""
    real_writev = os.writev

    def stingy_writev(fd: int, buffers: list[memoryview]) -> int:
        return real_writev(fd, [memoryview(b"".join(bytes(b) for b in buffers))[:777]])

    monkeypatch.setattr(os, "writev", stingy_writev)
    pieces = [os.urandom(size) for size in (1000, 1, 0, 5000, 776, 777, 778)]
    writer = blobs.create()
    writer.write_pieces(pieces)
    blob_id = writer.commit()
    with blobs.open(blob_id) as f:
        assert f.read() == b"".join(pieces)


def test_writeback_starts_every_few_mebibytes_behind_the_writes(
    blobs: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every WRITEBACK_EVERY bytes the writer asks the kernel to start writing out what it was
    given before (never a range not yet written), through both write methods."""
    asked: list[tuple[int, int]] = []
    real = filesystem._start_writeback

    def recorded(fd: int, offset: int, length: int) -> None:
        asked.append((offset, length))
        real(fd, offset, length)  # the real call (sync_file_range on Linux), on a real file

    monkeypatch.setattr(filesystem, "_start_writeback", recorded)
    mib = 1024 * 1024
    mib_per_writeback = filesystem.WRITEBACK_EVERY // mib
    assert mib_per_writeback == 4
    body = os.urandom(11 * mib)
    writer = blobs.create()
    for start in range(0, 6 * mib, mib):
        writer.write(body[start : start + mib])
    half = mib // 2
    writer.write_pieces([body[start : start + half] for start in range(6 * mib, 9 * mib, half)])
    writer.write_pieces([body[9 * mib : 10 * mib], body[10 * mib :]])
    blob_id = writer.commit()
    # before the 5th call (4 MiB behind it), and before the last (the 5 MiB since)
    assert asked == [(0, 4 * mib), (4 * mib, 5 * mib)]
    with blobs.open(blob_id) as f:
        assert f.read() == body


def test_writeback_hint_exists_on_linux() -> None:
    if os.uname().sysname != "Linux":
        pytest.skip("sync_file_range is Linux's")
    assert filesystem._SYNC_FILE_RANGE is not None


def test_empty_blob(blobs: FilesystemBlobStore) -> None:
    blob_id = store_blob(blobs)
    assert blobs.size(blob_id) == 0
    with blobs.open(blob_id) as f:
        assert f.read() == b""


def test_ids_are_random_and_distinct(blobs: FilesystemBlobStore) -> None:
    ids = {store_blob(blobs, b"same bytes") for _ in range(20)}
    assert len(ids) == 20


def test_abort_removes_every_trace(blobs: FilesystemBlobStore) -> None:
    writer = blobs.create()
    writer.write(b"partial")
    writer.abort()
    writer.abort()  # twice is a no-op
    assert temp_files(blobs) == []
    assert list(blobs.iter_blob_ids()) == []
    with pytest.raises(ValueError):
        writer.write(b"more")
    with pytest.raises(ValueError):
        writer.commit()


def test_abort_after_commit_is_a_no_op(blobs: FilesystemBlobStore) -> None:
    writer = blobs.create()
    writer.write(b"kept")
    blob_id = writer.commit()
    writer.abort()
    with blobs.open(blob_id) as f:
        assert f.read() == b"kept"
    with pytest.raises(ValueError):
        writer.write(b"more")


def test_writer_as_context_manager_aborts_unless_committed(blobs: FilesystemBlobStore) -> None:
    with pytest.raises(RuntimeError), blobs.create() as writer:
        writer.write(b"x")
        raise RuntimeError("client went away")
    assert temp_files(blobs) == []
    with blobs.create() as writer:
        writer.write(b"y")
        blob_id = writer.commit()
    assert blobs.size(blob_id) == 1


def test_delete_ignores_missing(blobs: FilesystemBlobStore) -> None:
    keep, drop = store_blob(blobs, b"1"), store_blob(blobs, b"2")
    blobs.delete([drop, drop, "f" * 32, "not-an-id"])
    assert list(blobs.iter_blob_ids()) == [keep]
    with pytest.raises(FileNotFoundError):
        blobs.open(drop)


def test_only_blob_ids_name_files(blobs: FilesystemBlobStore, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"outside")
    for hostile in ["../../secret", "/etc/passwd", "", "A" * 32, "a" * 31, "a" * 33, "../" * 11]:
        with pytest.raises(FileNotFoundError):
            blobs.open(hostile)
        with pytest.raises(FileNotFoundError):
            blobs.size(hostile)
        blobs.delete([hostile])
    assert secret.read_bytes() == b"outside"


def test_iter_blob_ids_walks_the_fan_out(blobs: FilesystemBlobStore) -> None:
    ids = {store_blob(blobs, b"%d" % n) for n in range(50)}
    (blobs.blob_dir / "zz").mkdir()  # stray directories and files are not blobs
    (blobs.blob_dir / "README").write_text("hi")
    uncommitted = blobs.create()
    assert set(blobs.iter_blob_ids()) == ids
    uncommitted.abort()


def test_sweep_temp_removes_only_stale_writers(blobs: FilesystemBlobStore) -> None:
    stale, fresh = blobs.create(), blobs.create()
    stale.write(b"old")
    fresh.write(b"new")
    old = time.time() - 3600
    os.utime(blobs.temp_dir / f"{stale.blob_id}.part", (old, old))
    assert blobs.sweep_temp(older_than_seconds=600) == 1
    assert temp_files(blobs) == [f"{fresh.blob_id}.part"]
    assert blobs.sweep_temp() == 1
    assert temp_files(blobs) == []
    fresh.abort()  # its file is gone already: still fine


def test_iter_temp_and_modified(blobs: FilesystemBlobStore) -> None:
    before = time.time()
    writer = blobs.create()
    writer.write(b"in flight")
    [temp] = list(blobs.iter_temp())
    assert temp.name == f"{writer.blob_id}.part" and temp.modified >= before - 1
    blob_id = writer.commit()
    assert list(blobs.iter_temp()) == []
    assert before - 1 <= blobs.modified(blob_id) <= time.time() + 1
    with pytest.raises(FileNotFoundError):
        blobs.modified("0" * 32)
    with pytest.raises(FileNotFoundError):
        blobs.modified("../../etc/passwd")


def test_reopening_the_store_sees_committed_blobs(tmp_path: Path) -> None:
    first = FilesystemBlobStore(tmp_path / "data")
    blob_id = store_blob(first, b"durable")
    second = FilesystemBlobStore(tmp_path / "data")
    assert list(second.iter_blob_ids()) == [blob_id]
    with second.open(blob_id) as f:
        assert f.read() == b"durable"
