"""``SqliteMetadataStore``: the embedded, default :class:`~onshore.storage.ports.MetadataStore`.

One database file, three kinds of connection use:

* **Writes** go through the :class:`~onshore.storage.sqlite.writer.GroupCommitWriter`: each write
  method submits a closure from :mod:`~onshore.storage.sqlite.mutations` and blocks until the
  batch holding it is committed and fsynced (group commit). One thread owns the write connection,
  so writes never contend for SQLite's lock, and concurrent writers share fsyncs.
* **Reads** use one connection per reader thread (thread-local, ``query_only``). In WAL mode they
  run concurrently with the writer and see the last committed state; a listing runs in one read
  transaction so all its index seeks see the same snapshot. Statements are prepared once per
  connection by sqlite3's statement cache; ``get_object`` is a single query that also tells a
  missing bucket from a missing key.
* **Migrations** run at open, on the write connection, before the writer thread starts
  (:mod:`~onshore.storage.sqlite.schema`).

The schema and its indexes are described in ``migrations/0001_initial.sql``; how listings skip
whole common prefixes in :mod:`~onshore.storage.sqlite.listing`.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import ParamSpec, TypeVar
from weakref import WeakSet

from onshore.domain.errors import NoSuchBucket
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
from onshore.storage.sqlite import acls, codec, keys, listing, mutations, schema
from onshore.storage.sqlite.writer import GroupCommitWriter, delivering_to, unwrapped

P = ParamSpec("P")
T = TypeVar("T")

__all__ = ["SqliteMetadataStore"]

_SCAN_BATCH = 256  # rows per query of the iter_* scans
_V_COLUMNS = ", ".join(f"v.{c.strip()}" for c in codec.VERSION_COLUMNS.split(","))
_U_COLUMNS = ", ".join(f"u.{c.strip()}" for c in codec.UPLOAD_COLUMNS.split(","))
_P_COLUMNS = ", ".join(f"p.{c.strip()}" for c in codec.PART_COLUMNS.split(","))
_SCAN_VERSIONS = (
    f"SELECT b.name, {_V_COLUMNS} FROM versions v JOIN buckets b ON v.bucket_id = b.id"
    " WHERE v.seq > ? ORDER BY v.seq LIMIT ?"
)
_SCAN_PARTS = (
    f"SELECT b.name, {_U_COLUMNS}, {_P_COLUMNS} FROM parts p"
    " JOIN uploads u ON p.upload_seq = u.seq JOIN buckets b ON u.bucket_id = b.id"
    " WHERE (p.upload_seq, p.part_number) > (?, ?)"
    " ORDER BY p.upload_seq, p.part_number LIMIT ?"
)


@contextmanager
def _exclusively(lock_path: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created 0600 if missing) for the block."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class _Reader:
    """A thread's read connection (a wrapper, since sqlite3 connections take no weak refs)."""

    __slots__ = ("conn", "__weakref__")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __del__(self) -> None:
        self.conn.close()


class SqliteMetadataStore:
    """Metadata in one SQLite database file (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], *, max_batch: int = 256) -> None:
        self._path = os.fspath(path)
        lock_path = self._path + "-writer.lock"
        # Switching a new database to WAL takes an exclusive lock without waiting on SQLite's
        # busy handler, so processes opening the same new file at once would fail with
        # "database is locked": the writer lock file serialises opening and migrating too.
        with _exclusively(lock_path):
            conn = schema.connect(self._path, writer=True)
            try:
                self.schema_version = schema.migrate(conn)
            except BaseException:
                conn.close()
                raise
        self._writer = GroupCommitWriter(conn, max_batch=max_batch, lock_path=lock_path)
        self._local = threading.local()
        self._readers: WeakSet[_Reader] = WeakSet()
        self._readers_lock = threading.Lock()
        self._closed = False

    # --- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        with self._readers_lock:
            readers = list(self._readers)
        for reader in readers:
            reader.conn.close()

    def reusable_bytes(self) -> int:
        """Bytes of free pages inside the database file: deleted rows leave them, new rows fill
        them first, and the file never shrinks, so this is space a full disk still has for
        metadata (see :mod:`onshore.service.space`)."""
        conn = self._conn()
        pages = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        return int(pages) * int(size)

    @property
    def writer(self) -> GroupCommitWriter:
        """The group-commit writer (its ``batches``/``jobs`` counters are useful in tests)."""
        return self._writer

    # --- connections ----------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        reader: _Reader | None = getattr(self._local, "reader", None)
        if reader is None:
            if self._closed:
                raise sqlite3.ProgrammingError("the metadata store is closed")
            reader = _Reader(schema.connect(self._path, writer=False))
            self._local.reader = reader
            with self._readers_lock:
                self._readers.add(reader)
        return reader.conn

    def read_connection(self) -> sqlite3.Connection:
        """This thread's read-only connection (for sibling stores sharing the database, such
        as :class:`~onshore.storage.sqlite.iam.SqliteIamStore`)."""
        return self._conn()

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every statement inside sees the same committed state."""
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def _bucket_id(self, conn: sqlite3.Connection, name: str) -> int:
        row = conn.execute("SELECT id FROM buckets WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NoSuchBucket(resource=name)
        return int(row[0])

    # --- buckets --------------------------------------------------------------------------------
    async def awrite(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Await one of this store's write methods from the event loop without occupying a
        thread while its batch commits (see :mod:`.writer`). ``method`` must be a write method
        of this store: each of them only builds a closure and submits it, so calling it here
        does no I/O on the loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with delivering_to(loop, future):
            method(*args, **kwargs)
        return await future

    def create_bucket(self, bucket: Bucket, *, configs: Mapping[str, str] | None = None) -> Bucket:
        return self._writer.submit(lambda c: mutations.create_bucket(c, bucket, configs))

    def get_bucket(self, name: str) -> Bucket | None:
        row = (
            self._conn()
            .execute(f"SELECT {codec.BUCKET_COLUMNS} FROM buckets WHERE name = ?", (name,))
            .fetchone()
        )
        return None if row is None else codec.decode_bucket(row)

    def list_buckets(
        self,
        *,
        owner_id: str | None = None,
        prefix: str = "",
        start_after: str = "",
        limit: int = 10000,
    ) -> list[Bucket]:
        if limit <= 0:
            return []
        sql = f"SELECT {codec.BUCKET_COLUMNS} FROM buckets WHERE name >= ? AND name > ?"
        params: tuple[object, ...] = (prefix, start_after)
        if owner_id is not None:
            sql += " AND owner_id = ?"
            params += (owner_id,)
        found: list[Bucket] = []
        cursor = self._conn().execute(sql + " ORDER BY name", params)
        try:
            for row in cursor:
                if not str(row[0]).startswith(prefix) or len(found) >= limit:
                    break
                found.append(codec.decode_bucket(row))
        finally:
            cursor.close()
        return found

    def delete_bucket(self, name: str) -> tuple[str, ...]:
        return self._writer.submit(lambda c: mutations.delete_bucket(c, name))

    def set_versioning(self, name: str, state: Versioning) -> None:
        self._writer.submit(lambda c: mutations.set_versioning(c, name, state))

    def get_bucket_config(self, name: str, kind: str) -> str | None:
        row = (
            self._conn()
            .execute(
                "SELECT c.document FROM bucket_configs c JOIN buckets b ON c.bucket_id = b.id"
                " WHERE b.name = ? AND c.kind = ?",
                (name, kind),
            )
            .fetchone()
        )
        return None if row is None else str(row[0])

    def put_bucket_config(self, name: str, kind: str, document: str | None) -> None:
        self._writer.submit(lambda c: mutations.put_bucket_config(c, name, kind, document))

    def get_object_acl(self, bucket: str, key: str, version_id: str | None) -> str | None:
        return acls.get_object_acl(self._conn(), bucket, codec.key_bytes(key), version_id)

    def put_object_acl(self, bucket: str, key: str, version_id: str, document: str) -> bool:
        return self._writer.submit(
            lambda c: acls.put_object_acl(c, bucket, codec.key_bytes(key), version_id, document)
        )

    def get_upload_acl(self, bucket: str, upload_id: str) -> str | None:
        return acls.get_upload_acl(self._conn(), bucket, upload_id)

    # --- objects --------------------------------------------------------------------------------
    def get_object(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> ObjectVersion | None:
        _, _, row = mutations.locate(
            self._conn(), bucket, codec.key_bytes(key), version_id, brief=False
        )
        return None if row is None else codec.decode_version(bucket, row)

    def put_object(
        self,
        version: ObjectVersion,
        *,
        condition: WriteCondition | None = None,
        acl: str | None = None,
    ) -> WriteResult:
        return self._writer.submit(lambda c: mutations.put_object(c, version, condition, acl))

    def delete_object(
        self,
        bucket: str,
        key: str,
        *,
        version_id: str | None,
        marker: ObjectVersion,
        if_match: str | None = None,
    ) -> WriteResult:
        return self._writer.submit(
            lambda c: mutations.delete_object(c, bucket, key, version_id, marker, if_match)
        )

    def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        start_after: str = "",
        limit: int = 1000,
    ) -> ListPage:
        with self._snapshot() as conn:
            return listing.list_objects(
                conn,
                self._bucket_id(conn, bucket),
                bucket,
                prefix=prefix,
                delimiter=delimiter,
                start_after=start_after,
                limit=limit,
            )

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
        with self._snapshot() as conn:
            return listing.list_versions(
                conn,
                self._bucket_id(conn, bucket),
                bucket,
                prefix=prefix,
                delimiter=delimiter,
                key_marker=key_marker,
                version_id_marker=version_id_marker,
                limit=limit,
            )

    def count_objects(self, bucket: str) -> int:
        with self._snapshot() as conn:
            bucket_id = self._bucket_id(conn, bucket)
            row = conn.execute(
                "SELECT COUNT(*) FROM versions WHERE bucket_id = ?", (bucket_id,)
            ).fetchone()
        return int(row[0])

    # --- multipart ------------------------------------------------------------------------------
    def create_upload(self, upload: MultipartUpload, *, acl: str | None = None) -> None:
        self._writer.submit(lambda c: mutations.create_upload(c, upload, acl))

    def get_upload(self, bucket: str, upload_id: str) -> MultipartUpload | None:
        row = (
            self._conn()
            .execute(
                f"SELECT {', '.join('u.' + c.strip() for c in codec.UPLOAD_COLUMNS.split(','))}"
                " FROM uploads u JOIN buckets b ON u.bucket_id = b.id"
                " WHERE b.name = ? AND u.upload_id = ?",
                (bucket, upload_id),
            )
            .fetchone()
        )
        return None if row is None else codec.decode_upload(bucket, row)

    def put_part(self, bucket: str, upload_id: str, part: Part) -> tuple[str, ...]:
        return self._writer.submit(lambda c: mutations.put_part(c, bucket, upload_id, part))

    def list_parts(
        self, bucket: str, upload_id: str, *, part_number_marker: int = 0, limit: int = 1000
    ) -> PartPage:
        room = max(limit, 0)
        with self._snapshot() as conn:
            seq = mutations.upload_seq(conn, bucket, upload_id)
            rows = conn.execute(
                f"SELECT {codec.PART_COLUMNS} FROM parts"
                " WHERE upload_seq = ? AND part_number > ? ORDER BY part_number LIMIT ?",
                (seq, part_number_marker, room + 1),
            ).fetchall()
        parts = tuple(codec.decode_part(row) for row in rows[:room])
        truncated = bool(parts) and len(rows) > room
        return PartPage(parts, truncated, parts[-1].part_number if truncated else None)

    def get_parts(self, bucket: str, upload_id: str) -> list[Part]:
        with self._snapshot() as conn:
            seq = mutations.upload_seq(conn, bucket, upload_id)
            rows = conn.execute(
                f"SELECT {codec.PART_COLUMNS} FROM parts WHERE upload_seq = ? ORDER BY part_number",
                (seq,),
            ).fetchall()
        return [codec.decode_part(row) for row in rows]

    def complete_upload(
        self,
        bucket: str,
        upload_id: str,
        version: ObjectVersion,
        *,
        condition: WriteCondition | None = None,
    ) -> WriteResult:
        return self._writer.submit(
            lambda c: mutations.complete_upload(c, bucket, upload_id, version, condition)
        )

    def abort_upload(self, bucket: str, upload_id: str) -> tuple[str, ...]:
        return self._writer.submit(lambda c: mutations.abort_upload(c, bucket, upload_id))

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
        with self._snapshot() as conn:
            return listing.list_uploads(
                conn,
                self._bucket_id(conn, bucket),
                bucket,
                prefix=prefix,
                delimiter=delimiter,
                key_marker=key_marker,
                upload_id_marker=upload_id_marker,
                limit=limit,
            )

    # --- tenant keys (encryption at rest) -------------------------------------------------------
    def get_tenant_key(self, account_id: str) -> TenantKey | None:
        return keys.get(self._conn(), account_id)

    def add_tenant_key(self, key: TenantKey) -> TenantKey:
        # Made on a tenant's first write, but not that request's change: no audit record of it.
        with unwrapped():
            return self._writer.submit(lambda c: keys.add(c, key))

    def list_tenant_keys(self) -> list[TenantKey]:
        return keys.list_all(self._conn())

    def replace_tenant_key(self, key: TenantKey, *, expected_fingerprint: str) -> bool:
        return self._writer.submit(lambda c: keys.replace(c, key, expected_fingerprint))

    def delete_tenant_key(self, account_id: str) -> bool:
        return self._writer.submit(lambda c: keys.delete(c, account_id))

    # --- KMS keys and aliases ------------------------------------------------------------------
    def get_kms_key(self, key_id: str) -> KmsKey | None:
        return keys.get_kms(self._conn(), key_id)

    def list_kms_keys(self, account_id: str) -> list[KmsKey]:
        return keys.list_kms(self._conn(), account_id)

    def all_kms_keys(self) -> list[KmsKey]:
        return keys.list_kms_all(self._conn())

    def put_kms_key(self, key: KmsKey) -> None:
        self._writer.submit(lambda c: keys.put_kms(c, key))

    def set_kms_rotation(self, key: KmsKey) -> None:
        self._writer.submit(lambda c: keys.set_kms_rotation(c, key))

    def rotate_kms_key(self, material: KmsKeyMaterial, next_rotation: datetime | None) -> None:
        next_us = None if next_rotation is None else codec.to_us(next_rotation)
        self._writer.submit(lambda c: keys.rotate_kms(c, material, next_us))

    def get_kms_material(self, key_id: str, version: int) -> KmsKeyMaterial | None:
        return keys.get_material(self._conn(), key_id, version)

    def list_kms_materials(self, key_id: str) -> list[KmsKeyMaterial]:
        return keys.list_materials(self._conn(), key_id)

    def all_kms_materials(self) -> list[KmsKeyMaterial]:
        return keys.list_materials_all(self._conn())

    def replace_kms_material(self, material: KmsKeyMaterial, *, expected_fingerprint: str) -> bool:
        return self._writer.submit(
            lambda c: keys.replace_material(c, material, expected_fingerprint)
        )

    def due_kms_deletions(self, now: datetime) -> list[KmsKey]:
        return keys.due_deletions(self._conn(), codec.to_us(now))

    def due_kms_rotations(self, now: datetime) -> list[KmsKey]:
        return keys.due_rotations(self._conn(), codec.to_us(now))

    def delete_due_kms_key(self, key_id: str, now: datetime) -> KmsKey:
        now_us = codec.to_us(now)
        return self._writer.submit(lambda c: keys.delete_due_kms(c, key_id, now_us))

    def get_kms_alias(self, account_id: str, alias: str) -> str | None:
        return keys.get_alias(self._conn(), account_id, alias)

    def add_kms_alias(self, account_id: str, alias: str, key_id: str, now_us: int) -> bool:
        return self._writer.submit(lambda c: keys.add_alias(c, account_id, alias, key_id, now_us))

    def list_kms_aliases(self, account_id: str) -> list[tuple[str, str]]:
        return keys.list_aliases(self._conn(), account_id)

    # --- maintenance ----------------------------------------------------------------------------
    def referenced_blobs(self, blob_ids: Iterable[str]) -> set[str]:
        with self._snapshot() as conn:
            return mutations.referenced(conn, blob_ids)

    # Scans page by primary key, one short query per batch: no statement stays open while the
    # caller works on the rows it was given (and may call this store meanwhile).
    def iter_versions(self) -> Iterator[ObjectVersion]:
        after = 0
        while rows := self._conn().execute(_SCAN_VERSIONS, (after, _SCAN_BATCH)).fetchall():
            for row in rows:
                yield codec.decode_version(row[0], row[1:])
            after = rows[-1][1]

    def iter_parts(self) -> Iterator[tuple[MultipartUpload, Part]]:
        upload_width = len(codec.UPLOAD_COLUMNS.split(","))
        after = (0, 0)
        while rows := self._conn().execute(_SCAN_PARTS, (*after, _SCAN_BATCH)).fetchall():
            for row in rows:
                upload_row, part_row = row[1 : 1 + upload_width], row[1 + upload_width :]
                yield codec.decode_upload(row[0], upload_row), codec.decode_part(part_row)
            last = rows[-1]
            after = (last[1], last[1 + upload_width])

    def check_integrity(self) -> list[str]:
        conn = self._conn()
        problems = [str(row[0]) for row in conn.execute("PRAGMA integrity_check") if row[0] != "ok"]
        problems += [
            f"foreign key: row {row[1]} of {row[0]} refers to a missing row of {row[2]}"
            for row in conn.execute("PRAGMA foreign_key_check")
        ]
        return problems
