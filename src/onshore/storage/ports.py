"""The two storage seams: ``MetadataStore`` (what exists) and ``BlobStore`` (the bytes).

Contracts, which every implementation honours and ``tests/contract`` checks:

* **Atomicity.** Each ``MetadataStore`` write method is one transaction: it happens entirely or
  not at all, and when it returns the change is durable (fsynced). Implementations may batch
  concurrent writers into one transaction and one fsync (group commit) as long as each call
  still returns only after its own change is durable, and a failure of one call (an ``S3Error``)
  does not affect the others.
* **Ordering.** Keys are compared as UTF-8 bytes, as S3 lists them. Within a key, versions are
  ordered newest first (by a store-assigned sequence, not by clock).
* **Versioning.** ``put_object`` and ``delete_object`` implement the state machine described in
  :mod:`onshore.domain.models`, reading the bucket's versioning state in the same transaction.
* **Blobs.** The metadata store only records blob ids. Write methods return the ids they stopped
  referencing (``WriteResult.freed_blobs``) for the caller to delete after the commit. A blob is
  written and made durable *before* the metadata that names it is committed.
* **Errors.** Methods raise :mod:`onshore.domain.errors` classes: ``NoSuchBucket`` for a missing
  bucket, ``NoSuchUpload``, ``BucketNotEmpty``, ``PreconditionFailed`` and so on, as documented per
  method. Nothing else escapes except genuine I/O failures.
* **Concurrency.** All methods are synchronous and thread-safe; the service layer calls them from
  worker threads, never from the event loop.
* **Listings return** :class:`~onshore.domain.models.ListedVersion` entries (what
  :meth:`ObjectVersion.listed` gives): key, version id, flags, size, ETag, time, owner, storage
  class and checksum names, but no headers, user metadata or data — a listing never needs them,
  and reading them would cost more than the rest of the page.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import BinaryIO, NamedTuple, Protocol

from onshore.domain.checksums import Buffer
from onshore.domain.models import (
    Bucket,
    KmsKey,
    KmsKeyMaterial,
    ListPage,
    MultipartUpload,
    ObjectVersion,
    Part,
    PartPage,
    TenantKey,
    UploadPage,
    Versioning,
    VersionPage,
    WriteCondition,
    WriteResult,
)


class MetadataStore(Protocol):
    # --- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        """Flush and release everything. Idempotent."""

    # --- buckets --------------------------------------------------------------------------------
    def create_bucket(self, bucket: Bucket, *, configs: Mapping[str, str] | None = None) -> Bucket:
        """Create ``bucket`` with its first sub-resource documents (``configs``, kind →
        document: CreateBucket's object ownership and ACL), in one transaction. If the name
        exists, return the existing bucket unchanged and store nothing (the caller decides
        between BucketAlreadyOwnedByYou and BucketAlreadyExists)."""

    def get_bucket(self, name: str) -> Bucket | None: ...

    def list_buckets(
        self,
        *,
        owner_id: str | None = None,
        prefix: str = "",
        start_after: str = "",
        limit: int = 10000,
    ) -> list[Bucket]:
        """Buckets in name order, name > ``start_after``, starting with ``prefix``; all owners
        when ``owner_id`` is None."""

    def delete_bucket(self, name: str) -> tuple[str, ...]:
        """Delete an empty bucket. Raises NoSuchBucket, or BucketNotEmpty if any version or
        delete marker remains. Aborts its multipart uploads and returns their freed blob ids."""

    def set_versioning(self, name: str, state: Versioning) -> None:
        """Set ENABLED or SUSPENDED. Raises NoSuchBucket."""

    def get_bucket_config(self, name: str, kind: str) -> str | None:
        """A bucket sub-resource document (``policy``, ``tagging``, ``cors``, ...), or None."""

    def put_bucket_config(self, name: str, kind: str, document: str | None) -> None:
        """Store (or with None, delete) a sub-resource document. Raises NoSuchBucket."""

    def get_object_acl(self, bucket: str, key: str, version_id: str | None) -> str | None:
        """The ACL document stored for one object version (``version_id`` None: the latest),
        or None (no ACL stored, or no such version). An ACL lives and dies with its version:
        a new version gets one only in the transaction that stores it (``put_object``'s and
        ``create_upload``'s ``acl``), so no reader ever sees the version without it."""

    def put_object_acl(self, bucket: str, key: str, version_id: str, document: str) -> bool:
        """Replace one existing version's ACL document (PutObjectAcl); False if the version
        does not exist."""

    def get_upload_acl(self, bucket: str, upload_id: str) -> str | None:
        """The ACL document a multipart upload will give its object (``create_upload``'s
        ``acl``), or None."""

    # --- objects --------------------------------------------------------------------------------
    def get_object(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> ObjectVersion | None:
        """The latest version (possibly a delete marker) when ``version_id`` is None, else that
        version; None if there is none. Raises NoSuchBucket."""

    def put_object(
        self,
        version: ObjectVersion,
        *,
        condition: WriteCondition | None = None,
        acl: str | None = None,
    ) -> WriteResult:
        """Store ``version`` as the key's latest.

        The stored version id is ``version.version_id`` when the bucket is ENABLED and ``"null"``
        otherwise; whatever it replaces (the unversioned or null version) is removed and its blobs
        returned in ``freed_blobs``, and its ACL with it. ``acl``, when given, is the new
        version's ACL document, stored in the same transaction. ``condition`` is evaluated
        against the current latest version in the same transaction (PreconditionFailed /
        NoSuchKey). ``version.is_delete_marker`` may be set (used by delete). Raises
        NoSuchBucket. Returns the stored version (is_latest=True).
        """

    def delete_object(
        self,
        bucket: str,
        key: str,
        *,
        version_id: str | None,
        marker: ObjectVersion,
        if_match: str | None = None,
    ) -> WriteResult:
        """DeleteObject semantics.

        ``if_match`` (the ``If-Match`` header as sent) is checked in the same transaction as the
        delete, against the addressed version (``version_id``, or the latest): NoSuchKey if it
        is missing or a delete marker, PreconditionFailed if no listed ETag matches.

        Without ``version_id``: unversioned bucket → remove the null version (if any), returning
        ``WriteResult(version=None, removed=<it>)``; ENABLED → store ``marker`` (a delete marker
        whose id the caller generated) as latest; SUSPENDED → store ``marker`` with id ``"null"``,
        replacing the null version. ``version`` is the marker stored, if any.
        With ``version_id``: remove that version permanently (``removed``), promoting the next
        newest to latest; a missing version id is not an error (``removed=None``).
        """

    def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        start_after: str = "",
        limit: int = 1000,
    ) -> ListPage:
        """Current (non-delete-marker latest) versions with key > ``start_after`` and starting
        with ``prefix``; keys containing ``delimiter`` after the prefix are rolled up into common
        prefixes (each counted once toward ``limit``). ``start_after`` may be a common prefix
        returned earlier: everything beginning with it is then skipped. Cost is proportional to
        the page, not the bucket. Raises NoSuchBucket."""

    def list_versions(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str = "",
        version_id_marker: str = "",
        limit: int = 1000,
    ) -> VersionPage:
        """All versions and delete markers, by key then newest first, resuming after
        (``key_marker``, ``version_id_marker``) as S3 defines: with no version id marker, start
        after all versions of ``key_marker``. Raises NoSuchBucket."""

    def count_objects(self, bucket: str) -> int:
        """Number of versions (including delete markers) in the bucket."""

    # --- multipart ------------------------------------------------------------------------------
    def create_upload(self, upload: MultipartUpload, *, acl: str | None = None) -> None:
        """Store a new upload and, in the same transaction, the ACL document (``acl``) the
        object it completes into will get. Raises NoSuchBucket."""

    def get_upload(self, bucket: str, upload_id: str) -> MultipartUpload | None: ...

    def put_part(self, bucket: str, upload_id: str, part: Part) -> tuple[str, ...]:
        """Add or replace a part; returns the blob ids of a replaced part. Raises NoSuchUpload."""

    def list_parts(
        self, bucket: str, upload_id: str, *, part_number_marker: int = 0, limit: int = 1000
    ) -> PartPage:
        """Parts with number > marker, ascending. Raises NoSuchUpload."""

    def get_parts(self, bucket: str, upload_id: str) -> list[Part]:
        """Every part of the upload, ascending. Raises NoSuchUpload."""

    def complete_upload(
        self,
        bucket: str,
        upload_id: str,
        version: ObjectVersion,
        *,
        condition: WriteCondition | None = None,
    ) -> WriteResult:
        """Atomically: store ``version`` exactly as ``put_object`` would, with the upload's ACL
        document (if it has one) as the version's ACL, and delete the upload and its part rows.
        Part blobs that ``version.segments`` does not name are returned in ``freed_blobs``
        together with those of any replaced version. Raises NoSuchUpload."""

    def abort_upload(self, bucket: str, upload_id: str) -> tuple[str, ...]:
        """Delete the upload and its parts; returns their blob ids. Raises NoSuchUpload."""

    def list_uploads(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str = "",
        upload_id_marker: str = "",
        limit: int = 1000,
    ) -> UploadPage:
        """In-progress uploads ordered by key, then initiation time; markers as S3 defines."""

    # --- maintenance ----------------------------------------------------------------------------
    def referenced_blobs(self, blob_ids: Iterable[str]) -> set[str]:
        """The subset of ``blob_ids`` that some version or part still references."""

    def iter_versions(self) -> Iterator[ObjectVersion]:
        """Every version and delete marker of every bucket, complete (headers, metadata, inline
        data, segments, ``is_latest``), in no particular order. Read-only, for offline tools
        such as ``onshore fsck``: it reads in batches, so a version written while it runs may or
        may not be seen, but none is seen twice."""

    def iter_parts(self) -> Iterator[tuple[MultipartUpload, Part]]:
        """Every part of every in-progress multipart upload, with its upload; in no particular
        order and with the same guarantees as :meth:`iter_versions`."""

    def check_integrity(self) -> list[str]:
        """The store's own consistency check (SQLite: ``PRAGMA integrity_check`` and
        ``PRAGMA foreign_key_check``): one line per problem, empty when the store is sound."""


class KeyStore(Protocol):
    """Tenant keys (wrapped by the root key), kept beside the metadata they protect.

    Same contracts as :class:`MetadataStore`: each write is one durable transaction.
    """

    def get_tenant_key(self, account_id: str) -> TenantKey | None: ...

    def add_tenant_key(self, key: TenantKey) -> TenantKey:
        """Store ``key`` unless the account already has one; return the one stored (so
        concurrent first uses in several processes agree on one key)."""
        ...

    def list_tenant_keys(self) -> list[TenantKey]: ...

    def replace_tenant_key(self, key: TenantKey, *, expected_fingerprint: str) -> bool:
        """Re-wrapped ``key`` replaces the stored one only if that one is still wrapped by
        ``expected_fingerprint``; return whether it did."""
        ...

    def delete_tenant_key(self, account_id: str) -> bool:
        """Destroy the account's key (crypto-shredding); return whether there was one."""
        ...


class KmsNotChanged(Exception):
    """A conditional :class:`KmsStore` write found its condition false — the key is gone, or
    changed since it was read (another server process deleted or rotated it first) — and wrote
    nothing. Raised from inside the write's transaction, so anything written with it (the audit
    record of the change) is rolled back too."""


class KmsStore(Protocol):
    """KMS keys, their key materials and aliases (SQLite only for now). Writes are durable when
    they return. A key's first key material is in its row (``KmsKey.wrapped``); each rotation
    adds a :class:`~onshore.domain.models.KmsKeyMaterial` of the next version."""

    def get_kms_key(self, key_id: str) -> KmsKey | None: ...

    def list_kms_keys(self, account_id: str) -> list[KmsKey]: ...

    def all_kms_keys(self) -> list[KmsKey]: ...

    def put_kms_key(self, key: KmsKey) -> None:
        """Insert the key's row, or update its description, state, deletion date and sealed
        first material; its rotation settings and material version are left as stored."""
        ...

    def set_kms_rotation(self, key: KmsKey) -> None:
        """Store the key's automatic rotation settings (``rotation_enabled``,
        ``rotation_period_days``, ``next_rotation``); KmsNotChanged if the key is gone."""
        ...

    def rotate_kms_key(self, material: KmsKeyMaterial, next_rotation: datetime | None) -> None:
        """Make ``material`` (version n) the key's current material, in one transaction, if the
        key is Enabled at version n - 1; otherwise KmsNotChanged. ``next_rotation`` (automatic
        rotations) reschedules the next one; None (on demand) leaves the schedule as it is."""
        ...

    def get_kms_material(self, key_id: str, version: int) -> KmsKeyMaterial | None: ...

    def list_kms_materials(self, key_id: str) -> list[KmsKeyMaterial]:
        """The key's materials made by rotations (versions 2 and up), oldest first."""
        ...

    def all_kms_materials(self) -> list[KmsKeyMaterial]: ...

    def replace_kms_material(self, material: KmsKeyMaterial, *, expected_fingerprint: str) -> bool:
        """Re-seal a material (root key rotation): compare-and-set on the root key fingerprint
        it was sealed by; False if it was not (already done, or gone)."""
        ...

    def due_kms_deletions(self, now: datetime) -> list[KmsKey]:
        """Keys pending deletion whose deletion date is ``now`` or earlier."""
        ...

    def due_kms_rotations(self, now: datetime) -> list[KmsKey]:
        """Enabled keys with automatic rotation on whose next rotation is ``now`` or earlier."""
        ...

    def delete_due_kms_key(self, key_id: str, now: datetime) -> KmsKey:
        """Delete a key pending deletion and due at ``now``, with its materials and aliases, in
        one fsynced transaction, and return it; KmsNotChanged if it is not (or no longer)."""
        ...

    def get_kms_alias(self, account_id: str, alias: str) -> str | None: ...

    def add_kms_alias(self, account_id: str, alias: str, key_id: str, now_us: int) -> bool:
        """False if the account already has that alias."""
        ...

    def list_kms_aliases(self, account_id: str) -> list[tuple[str, str]]: ...


class BlobWriter(Protocol):
    """An in-progress blob. ``write`` appends; ``commit`` makes it durable (fsync, rename, fsync
    the directory) and returns its id; ``abort`` removes every trace. Exactly one of
    ``commit``/``abort`` is called; ``abort`` after ``commit`` or twice is a no-op."""

    blob_id: str

    def write(self, data: Buffer) -> None: ...

    def write_pieces(self, pieces: Sequence[Buffer]) -> None:
        """Append ``pieces`` in order, as one ``write`` of their concatenation would, but
        without making that concatenation (a gathering write)."""
        ...

    def commit(self) -> str: ...

    def abort(self) -> None: ...


class TempFile(NamedTuple):
    """A temporary file of a blob writer: in progress, or left by one that never committed."""

    name: str
    modified: float  # seconds since the epoch


class BlobStore(Protocol):
    """Immutable blobs named by random ids, never by anything a user chose."""

    def create(self) -> BlobWriter: ...

    def open(self, blob_id: str) -> BinaryIO:
        """Open for reading (seekable). Raises FileNotFoundError if missing."""

    def delete(self, blob_ids: Iterable[str]) -> None:
        """Remove blobs; missing ones are ignored."""

    def size(self, blob_id: str) -> int: ...

    def modified(self, blob_id: str) -> float:
        """When the blob was written (seconds since the epoch): a blob newer than a maintenance
        run may belong to a write in progress. Raises FileNotFoundError if missing."""

    def iter_blob_ids(self) -> Iterator[str]:
        """Every committed blob id (for the orphan sweep)."""

    def iter_temp(self) -> Iterator[TempFile]:
        """Every temporary file (for reports; :meth:`sweep_temp` deletes them)."""

    def sweep_temp(self, older_than_seconds: float = 0.0) -> int:
        """Delete temporary files of writers that never committed; returns how many."""
