"""Checking that the metadata and the blobs agree (``onshore fsck``), and repairing what can be.

The store keeps two kinds of record that must agree: metadata rows (versions, and parts of
in-progress multipart uploads) and blob files. :func:`check` compares them from both sides:

* **the metadata store's own check** (SQLite: ``PRAGMA integrity_check`` and
  ``foreign_key_check``), and that every blob a row names is known to the store's reference
  index (``referenced_blobs``), which is what orphan collection trusts;
* **every version and part → its blobs**: each blob exists and has the size recorded for its
  segment (``missing_blob``, ``size_mismatch``); then its bytes are read again and compared with
  what was recorded when they were written (``checksum_mismatch``):

  - the MD5 where the ETag is one: the object's ETag for an object stored in one piece (not the
    ``<md5>-<N>`` ETag a copy of a multipart object keeps), each part's ETag for a multipart
    object and for the parts of an upload in progress;
  - each part's own additional checksum, when it has one;
  - the object's additional checksum when it is of type ``FULL_OBJECT`` (a checksum of all the
    bytes; every object written by this version of onshore has one, CRC64NVME by default).
    ``COMPOSITE`` checksums are checksums of part checksums, covered by the parts' own.

  Inline objects (bytes inside the metadata row) get the same size, MD5 and checksum checks.
  Sealed data (encryption at rest) is opened with its data key (``unseal``), so every segment's
  tag is checked too and the digests are those of the plaintext; data whose key fsck cannot
  have (SSE-C: the customer holds it) gets the size check only.
* **every blob → a row**: blob files no version or part names are ``orphan_blob``; files left in
  ``tmp/`` by writes that never committed are ``temp_file``.

**Repair** (:func:`repair`) is deliberately narrow:

* orphan blobs and temporary files are deleted — nothing refers to them, so nothing is lost;
* a version whose data is missing or corrupt is **deleted**, exactly as
  ``DeleteObject?versionId=`` would delete it: if it was the latest, the next newest version
  becomes current; in an unversioned bucket the key disappears. Its data is lost and cannot be
  recovered (not from this store: restore it from a backup or a replica);
* a multipart upload in progress with a missing or corrupt part is **aborted** (the client's
  next request for it gets ``NoSuchUpload`` and it uploads again), because completing it would
  create an object with bad data;
* nothing at all is repaired while the metadata store fails its own check, or a blob a row names
  is unknown to the reference index: the orphan verdicts would not be trustworthy, and deleting
  by them could delete live data. Fix the database first (restore it, or ``sqlite3 .recover``).

**Safety.** ``fsck`` runs with the server stopped (the CLI refuses a database a server has
open). Even so, it never deletes a blob or temporary file that is newer than the check itself:
such a file can only belong to a write that started after it (``skipped_recent`` counts them).
A version is deleted only if it is still the one that was checked (same id, ETag and blob), so
a version written meanwhile is never touched.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum
from typing import BinaryIO, TypeVar

from onshore.domain import checksums
from onshore.domain.errors import S3Error
from onshore.domain.ids import new_version_id
from onshore.domain.models import Checksum, ChecksumType, Encryption, ObjectVersion
from onshore.service.encryption import segments
from onshore.service.encryption.segments import Aead, IntegrityError
from onshore.storage.ports import BlobStore, MetadataStore

READ_CHUNK = 1024 * 1024
BATCH = 500

Progress = Callable[[str], None]
T = TypeVar("T")


class Kind(str, Enum):  # noqa: UP042 - values print and serialise as plain strings
    """What is wrong. The first two make ``--repair`` refuse to change anything."""

    INTEGRITY = "integrity"  # the metadata store failed its own consistency check
    UNINDEXED_BLOB = "unindexed_blob"  # a row names a blob the reference index does not know
    MISSING_BLOB = "missing_blob"  # a row names a blob that does not exist
    SIZE_MISMATCH = "size_mismatch"  # a blob (or inline data) is not the recorded size
    CHECKSUM_MISMATCH = "checksum_mismatch"  # the bytes are not the ones recorded
    ORPHAN_BLOB = "orphan_blob"  # a blob nothing names
    TEMP_FILE = "temp_file"  # a temporary file of a write that never committed


_BLOCKING = frozenset({Kind.INTEGRITY, Kind.UNINDEXED_BLOB})
_DATA_LOSS = frozenset({Kind.MISSING_BLOB, Kind.SIZE_MISMATCH, Kind.CHECKSUM_MISMATCH})


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding. ``bucket``/``key``/``version_id`` locate a version, ``bucket``/``key``/
    ``upload_id``/``part_number`` a part of an upload in progress; ``blob_id`` the file."""

    kind: Kind
    message: str
    bucket: str | None = None
    key: str | None = None
    version_id: str | None = None
    upload_id: str | None = None
    part_number: int | None = None
    blob_id: str | None = None
    etag: str | None = None  # of the version, as checked: --repair acts only if it is unchanged
    repaired: str | None = None  # what --repair did about it, once done

    @property
    def where(self) -> str:
        """``bucket/key (version v)``, ``bucket/key (upload u, part n)``, or the blob."""
        if self.bucket is not None and self.upload_id is not None:
            return f"{self.bucket}/{self.key} (upload {self.upload_id}, part {self.part_number})"
        if self.bucket is not None:
            return f"{self.bucket}/{self.key} (version {self.version_id})"
        return self.blob_id or ""

    def as_dict(self) -> dict[str, object]:
        fields = {
            "kind": self.kind.value,
            "message": self.message,
            "bucket": self.bucket,
            "key": self.key,
            "version_id": self.version_id,
            "upload_id": self.upload_id,
            "part_number": self.part_number,
            "blob_id": self.blob_id,
            "etag": self.etag,
            "repaired": self.repaired,
        }
        return {name: value for name, value in fields.items() if value is not None}


@dataclass(slots=True)
class Report:
    """What :func:`check` found (and, after :func:`repair`, what was done about it)."""

    started: float
    problems: list[Problem] = field(default_factory=list)
    versions: int = 0  # versions and delete markers examined
    parts: int = 0  # parts of uploads in progress examined
    blobs: int = 0  # blob files seen
    bytes_read: int = 0
    skipped_recent: int = 0  # blob and temporary files newer than the check, left alone
    repair_refused: str | None = None

    @property
    def clean(self) -> bool:
        return not self.problems

    @property
    def repairable(self) -> bool:
        """Whether :func:`repair` may act: not while the metadata itself is in doubt."""
        return not any(p.kind in _BLOCKING for p in self.problems)

    @property
    def unrepaired(self) -> list[Problem]:
        return [p for p in self.problems if p.repaired is None]

    def as_dict(self) -> dict[str, object]:
        return {
            "clean": self.clean,
            "unrepaired": len(self.unrepaired),
            "checked": {
                "versions": self.versions,
                "parts": self.parts,
                "blobs": self.blobs,
                "bytes_read": self.bytes_read,
                "skipped_recent": self.skipped_recent,
            },
            "repair_refused": self.repair_refused,
            "problems": [p.as_dict() for p in self.problems],
        }


# --- checking -----------------------------------------------------------------------------------
#: Recovers the data key of sealed data (None when fsck cannot have it, as for SSE-C).
Unsealer = Callable[[Encryption], Aead | None]


@dataclass(frozen=True, slots=True)
class _Seal:
    """How one blob or inline body is sealed: not at all (``sealed`` False), or with ``aead``
    (None: sealed with a key fsck cannot have), binding ``part_number``."""

    sealed: bool = False
    aead: Aead | None = None
    part_number: int = 0

    def stored_size(self, size: int) -> int:
        return segments.sealed_size(size) if self.sealed else size


def _seal_of(encryption: Encryption | None, unseal: Unsealer | None) -> _Seal:
    if encryption is None:
        return _Seal()
    try:
        aead = None if unseal is None else unseal(encryption)
    except Exception:  # noqa: BLE001 - a key fsck cannot recover: size checks only
        aead = None
    return _Seal(True, aead)


def check(
    meta: MetadataStore,
    blobs: BlobStore,
    *,
    progress: Progress | None = None,
    unseal: Unsealer | None = None,
) -> Report:
    """Compare metadata and blobs; nothing is changed. See the module docstring."""
    report = Report(started=time.time())
    for line in meta.check_integrity():
        report.problems.append(Problem(Kind.INTEGRITY, line))
    unindexed: set[str] = set()  # named by a row, yet unknown to the index: not orphans
    _check_versions(meta, blobs, report, unindexed, progress, unseal)
    _check_parts(meta, blobs, report, unindexed, unseal)
    _find_orphans(meta, blobs, report, unindexed)
    return report


@dataclass(frozen=True, slots=True)
class _Where:
    """The row a problem was found through: a version, or a part of an upload in progress."""

    bucket: str
    key: str
    version_id: str | None = None
    upload_id: str | None = None
    part_number: int | None = None
    etag: str | None = None

    def on(self, problem: Problem) -> Problem:
        return replace(
            problem,
            bucket=self.bucket,
            key=self.key,
            version_id=self.version_id,
            upload_id=self.upload_id,
            part_number=self.part_number,
            etag=self.etag,
        )


def _check_versions(
    meta: MetadataStore,
    blobs: BlobStore,
    report: Report,
    unindexed: set[str],
    progress: Progress | None,
    unseal: Unsealer | None = None,
) -> None:
    for batch in _batches(meta.iter_versions()):
        named: dict[str, _Where] = {}
        for version in batch:
            report.versions += 1
            where = _Where(
                version.bucket, version.key, version_id=version.version_id, etag=version.etag
            )
            seal = _seal_of(version.encryption, unseal)
            report.problems += [where.on(p) for p in _check_version(version, blobs, report, seal)]
            named.update((blob_id, where) for blob_id in version.blob_ids())
        unindexed |= _check_indexed(meta, named, report)
        if progress is not None:
            progress(
                f"{report.versions} versions checked, {report.bytes_read / 2**20:.0f} MiB read"
            )


def _check_parts(
    meta: MetadataStore,
    blobs: BlobStore,
    report: Report,
    unindexed: set[str],
    unseal: Unsealer | None = None,
) -> None:
    for batch in _batches(meta.iter_parts()):
        named: dict[str, _Where] = {}
        for upload, part in batch:
            report.parts += 1
            where = _Where(
                upload.bucket, upload.key, upload_id=upload.upload_id, part_number=part.part_number
            )
            seal = replace(_seal_of(upload.encryption, unseal), part_number=part.part_number)
            found = _check_blob(
                blobs, part.blob_id, part.size, part.etag, part.checksum, report, seal=seal
            )
            if found is not None:
                report.problems.append(where.on(found))
            named[part.blob_id] = where
        unindexed |= _check_indexed(meta, named, report)


def _check_indexed(meta: MetadataStore, named: dict[str, _Where], report: Report) -> set[str]:
    """Every blob a row names must be known to ``referenced_blobs`` (the orphan sweep's view);
    returns those that are not."""
    if not named:
        return set()
    missing = named.keys() - meta.referenced_blobs(named)
    for blob_id in sorted(missing):
        message = (
            "a row names this blob but the blob reference index does not list it: an orphan "
            "sweep would delete it"
        )
        problem = Problem(Kind.UNINDEXED_BLOB, message, blob_id=blob_id)
        report.problems.append(named[blob_id].on(problem))
    return missing


def _check_version(
    version: ObjectVersion, blobs: BlobStore, report: Report, seal: _Seal
) -> list[Problem]:
    """The problems of one version's data (locations are filled in by the caller)."""
    if version.is_delete_marker:
        return []
    # The ETag is the MD5 of the bytes only for an object stored in one piece; a copy of a
    # multipart object keeps the source's "<md5>-<N>".
    md5_etag = version.etag if not version.parts_count and "-" not in version.etag else None
    whole = version.checksum
    if whole is not None and whole.type is not ChecksumType.FULL_OBJECT:
        whole = None
    hasher = checksums.new_hasher(whole.algorithm) if whole is not None else None
    if version.inline is not None:
        data = version.inline
        report.bytes_read += len(data)
        if len(data) != seal.stored_size(version.size):
            message = f"inline data is {len(data)} bytes, {version.size} are recorded"
            return [Problem(Kind.SIZE_MISMATCH, message)]
        if seal.sealed and seal.aead is None:
            return []
        if seal.aead is not None:
            try:
                data = segments.open_all(seal.aead, data, version.size)
            except IntegrityError:
                return [Problem(Kind.CHECKSUM_MISMATCH, _TAMPERED)]
        found = _digest_problem("MD5", md5_etag, hashlib.md5(data, usedforsecurity=False))
        if found is None and hasher is not None and whole is not None:
            hasher.update(data)
            found = _checksum_problem(whole, hasher)
        return [] if found is None else [Problem(Kind.CHECKSUM_MISMATCH, found)]
    recorded = sum(s.size for s in version.segments)
    if recorded != version.size:
        message = f"its blobs should hold {recorded} bytes, the object has {version.size}"
        return [Problem(Kind.SIZE_MISMATCH, message)]
    problems: list[Problem] = []
    for segment in version.segments:
        expected = segment.etag if segment.part_number else md5_etag
        found_blob = _check_blob(
            blobs, segment.blob_id, segment.size, expected or None, segment.checksum, report,
            hasher, seal=replace(seal, part_number=segment.part_number),
        )  # fmt: skip
        if found_blob is not None:
            if segment.part_number:
                message = f"part {segment.part_number}: {found_blob.message}"
                found_blob = replace(found_blob, message=message)
            problems.append(found_blob)
    if not problems and hasher is not None and whole is not None:
        found = _checksum_problem(whole, hasher)
        if found is not None:
            problems.append(Problem(Kind.CHECKSUM_MISMATCH, f"whole object: {found}"))
    return problems


_TAMPERED = "a sealed segment failed authentication (corrupt or tampered with)"


def _plain_chunks(handle: BinaryIO, size: int, seal: _Seal) -> Iterator[bytes | bytearray]:
    """The plaintext of a blob in READ_CHUNK pieces, every segment's tag checked."""
    if seal.aead is None:
        while chunk := handle.read(READ_CHUNK):
            yield chunk
        return
    for offset in range(0, max(size, 1), READ_CHUNK):
        end = min(size, offset + READ_CHUNK)
        yield segments.open_range(seal.aead, handle, size, offset, end, seal.part_number)


def _check_blob(
    blobs: BlobStore,
    blob_id: str,
    size: int,
    md5_hex: str | None,
    checksum: Checksum | None,
    report: Report,
    whole: checksums.Hasher | None = None,
    *,
    seal: _Seal | None = None,
) -> Problem | None:
    """Existence, size, then the bytes of one blob (also fed to ``whole``, the object's hasher)."""
    seal = seal or _Seal()
    missing = Problem(Kind.MISSING_BLOB, "the blob does not exist", blob_id=blob_id)
    try:
        actual = blobs.size(blob_id)
    except FileNotFoundError:
        return missing
    if actual != seal.stored_size(size):
        message = f"the blob is {actual} bytes, {seal.stored_size(size)} are expected"
        return Problem(Kind.SIZE_MISMATCH, message, blob_id=blob_id)
    if seal.sealed and seal.aead is None:
        return None  # sealed with a key fsck cannot have: nothing more to check
    own = checksums.new_hasher(checksum.algorithm) if checksum is not None else None
    md5 = hashlib.md5(usedforsecurity=False)
    try:
        with blobs.open(blob_id) as handle:
            for chunk in _plain_chunks(handle, size, seal):
                report.bytes_read += len(chunk)
                md5.update(chunk)
                if own is not None:
                    own.update(chunk)
                if whole is not None:
                    whole.update(chunk)
    except FileNotFoundError:
        return missing
    except IntegrityError:
        return Problem(Kind.CHECKSUM_MISMATCH, _TAMPERED, blob_id=blob_id)
    found = _digest_problem("MD5", md5_hex, md5)
    if found is None and checksum is not None and own is not None:
        found = _checksum_problem(checksum, own)
    return None if found is None else Problem(Kind.CHECKSUM_MISMATCH, found, blob_id=blob_id)


def _digest_problem(name: str, expected_hex: str | None, digest: hashlib._Hash) -> str | None:
    if expected_hex is None or digest.hexdigest() == expected_hex:
        return None
    return f"the {name} of the bytes is {digest.hexdigest()}, {expected_hex} is recorded"


def _checksum_problem(expected: Checksum, hasher: checksums.Hasher) -> str | None:
    actual = checksums.encode(hasher.digest())
    if actual == expected.value:
        return None
    name = expected.algorithm.value
    return f"the {name} of the bytes is {actual}, {expected.value} is recorded"


def _find_orphans(meta: MetadataStore, blobs: BlobStore, report: Report, named: set[str]) -> None:
    for batch in _batches(blobs.iter_blob_ids()):
        report.blobs += len(batch)
        referenced = meta.referenced_blobs(batch)
        for blob_id in batch:
            if blob_id in referenced or blob_id in named:
                continue
            try:
                if blobs.modified(blob_id) >= report.started:
                    report.skipped_recent += 1
                    continue
                size = blobs.size(blob_id)
            except FileNotFoundError:
                continue
            message = f"no version or part names this blob ({size} bytes)"
            report.problems.append(Problem(Kind.ORPHAN_BLOB, message, blob_id=blob_id))
    for temp in blobs.iter_temp():
        if temp.modified >= report.started:
            report.skipped_recent += 1
            continue
        message = "a temporary file of a write that never committed"
        report.problems.append(Problem(Kind.TEMP_FILE, message, blob_id=f"tmp/{temp.name}"))


def _batches(items: Iterable[T]) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, BATCH)):
        yield batch


# --- repairing ----------------------------------------------------------------------------------
def repair(meta: MetadataStore, blobs: BlobStore, report: Report) -> Report:
    """Act on ``report`` (from :func:`check`) as the module docstring says; return the report
    with ``repaired`` set on each problem dealt with."""
    if not report.repairable:
        report.repair_refused = repair_refusal()
        return report
    done: dict[tuple[str | None, ...], str | None] = {}
    orphans = [p.blob_id for p in report.problems if p.kind is Kind.ORPHAN_BLOB and p.blob_id]
    blobs.delete(orphans)
    if any(p.kind is Kind.TEMP_FILE for p in report.problems):
        # Only files older than the check were reported; the same cut-off spares newer ones.
        blobs.sweep_temp(older_than_seconds=max(0.0, time.time() - report.started))
    repaired: list[Problem] = []
    for problem in report.problems:
        outcome: str | None
        if problem.kind in (Kind.ORPHAN_BLOB, Kind.TEMP_FILE):
            outcome = "deleted"
        elif problem.kind in _DATA_LOSS:
            # One action per version or upload, however many of its blobs are bad.
            uploading = problem.upload_id is not None
            target = (problem.bucket, problem.key, problem.version_id, problem.upload_id)
            if target not in done:
                act = _abort_upload if uploading else _delete_version
                done[target] = act(meta, blobs, problem)
            outcome = done[target]
        else:
            outcome = None
        if outcome is not None and outcome.startswith(_LEFT_ALONE):
            repaired.append(replace(problem, message=f"{problem.message} ({outcome})"))
        else:
            repaired.append(replace(problem, repaired=outcome))
    report.problems = repaired
    return report


def repair_refusal() -> str:
    """Why nothing is repaired while the metadata itself is in doubt."""
    return (
        "the metadata store is damaged or inconsistent, and orphans are judged by it: restore "
        "the database from a backup (or recover it with sqlite3 .recover) and run fsck again"
    )


_LEFT_ALONE = "left alone"


def _delete_version(meta: MetadataStore, blobs: BlobStore, problem: Problem) -> str:
    """Delete the version the problem was found in — if it is still that version: in an
    unversioned bucket every version is ``null``, so a write since the check would have the
    same id (the ETag and blob then tell them apart)."""
    assert problem.bucket is not None and problem.key is not None
    assert problem.version_id is not None
    try:
        current = meta.get_object(problem.bucket, problem.key, problem.version_id)
    except S3Error as error:  # NoSuchBucket: gone already
        return f"already gone ({error.code})"
    if current is None:
        return "already gone"
    if current.etag != problem.etag or (
        problem.blob_id is not None and problem.blob_id not in current.blob_ids()
    ):
        return f"{_LEFT_ALONE}: the version was replaced after the check"
    unused_marker = ObjectVersion(
        problem.bucket, problem.key, new_version_id(), datetime.now(UTC), is_delete_marker=True
    )
    try:
        result = meta.delete_object(
            problem.bucket, problem.key, version_id=problem.version_id, marker=unused_marker
        )
    except S3Error as error:  # NoSuchBucket: gone already
        return f"already gone ({error.code})"
    blobs.delete(result.freed_blobs)
    return "version deleted: its data is lost and cannot be recovered from this store"


def _abort_upload(meta: MetadataStore, blobs: BlobStore, problem: Problem) -> str:
    assert problem.bucket is not None and problem.upload_id is not None
    try:
        freed = meta.abort_upload(problem.bucket, problem.upload_id)
    except S3Error as error:  # NoSuchUpload, NoSuchBucket: gone already
        return f"already gone ({error.code})"
    blobs.delete(freed)
    return "upload aborted: the client must upload it again"
