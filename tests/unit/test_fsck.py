"""``onshore.service.fsck`` in-process, on the reference metadata store and real blob files.

The end-to-end behaviour (a real server's data, damaged, then the real command) is in
``tests/api/test_fsck.py``; these are the cases that need a hand on the store mid-run.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from onshore.domain.models import Bucket, ObjectVersion, Segment
from onshore.service import fsck
from onshore.storage.filesystem import FilesystemBlobStore
from onshore.storage.memory import MemoryMetadataStore

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def put(meta: MemoryMetadataStore, blobs: FilesystemBlobStore, key: str, body: bytes) -> str:
    writer = blobs.create()
    writer.write(body)
    blob_id = writer.commit()
    meta.put_object(
        ObjectVersion(
            "b", key, "v", T0, size=len(body), etag=hashlib.md5(body).hexdigest(),
            segments=(Segment(blob_id, len(body)),),
        )
    )  # fmt: skip
    return blob_id


def stores(tmp_path: Path) -> tuple[MemoryMetadataStore, FilesystemBlobStore]:
    meta = MemoryMetadataStore()
    meta.create_bucket(Bucket("b", "owner", "r", T0))
    return meta, FilesystemBlobStore(tmp_path)


def test_repair_leaves_alone_a_version_replaced_after_the_check(tmp_path: Path) -> None:
    """In an unversioned bucket a new write gets the same version id (``null``): repair must
    not delete it in place of the corrupt version it checked."""
    meta, blobs = stores(tmp_path)
    blob_id = put(meta, blobs, "k", b"original bytes")
    blobs.path_of(blob_id).write_bytes(b"corrupt! bytes")
    report = fsck.check(meta, blobs)
    [problem] = report.problems
    assert problem.kind is fsck.Kind.CHECKSUM_MISMATCH and problem.version_id == "null"
    put(meta, blobs, "k", b"a newer, good body")  # a write after the check
    repaired = fsck.repair(meta, blobs, report)
    [left] = repaired.unrepaired
    assert "replaced after the check" in left.message
    current = meta.get_object("b", "k")
    assert current is not None and current.size == len(b"a newer, good body")


def test_one_repair_per_version_however_many_blobs_are_bad(tmp_path: Path) -> None:
    meta, blobs = stores(tmp_path)
    first, second = blobs.create(), blobs.create()
    first.write(b"a" * 10)
    second.write(b"b" * 10)
    ids = (first.commit(), second.commit())
    meta.put_object(
        ObjectVersion(
            "b", "mp", "v", T0, size=20, etag="x-2",
            segments=(Segment(ids[0], 10, 1, "0" * 32), Segment(ids[1], 10, 2, "1" * 32)),
        )
    )  # fmt: skip
    report = fsck.check(meta, blobs)
    assert [p.message.split(":")[0] for p in report.problems] == ["part 1", "part 2"]
    repaired = fsck.repair(meta, blobs, report)
    assert not repaired.unrepaired
    assert meta.get_object("b", "mp") is None
    assert list(blobs.iter_blob_ids()) == []
