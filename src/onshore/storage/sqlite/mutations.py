"""Write transactions: each function is one job for the group-commit writer (``writer.py``).

Every function takes the writer's connection, runs inside the savepoint the writer opened for it,
and either returns its result or raises an ``S3Error`` (its savepoint is then rolled back). None
of them commits: the writer commits the batch.

The versioning state machine of :mod:`onshore.domain.models`, as rows:

* the latest version of a key is the row with the highest ``seq``; ``is_latest`` mirrors that so
  the ``versions_current`` partial index can serve ``ListObjects``;
* storing a version: read the bucket's versioning state, evaluate the write condition against the
  latest row, remove a row with the same version id (the ``"null"`` version outside ENABLED),
  clear the old latest flag, insert the new row;
* removing a version: delete the row, and if it was the latest, flag the next newest.

Blob ids a write stops referencing are returned only if no other version or part still names
them (``version_blobs`` and ``parts_by_blob`` answer that with index seeks), so a blob shared by
two versions is never handed out for deletion while one of them remains.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace

from onshore.domain import etag as etags
from onshore.domain.errors import (
    BucketNotEmpty,
    IllegalVersioningConfigurationException,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
    PreconditionFailed,
)
from onshore.domain.models import (
    NULL_VERSION,
    Bucket,
    MultipartUpload,
    ObjectVersion,
    Part,
    Removed,
    Versioning,
    WriteCondition,
    WriteResult,
)
from onshore.storage.sqlite import acls, codec

_IN_CHUNK = 256  # ids per "IN (...)" query


# --- buckets ------------------------------------------------------------------------------------
def create_bucket(
    conn: sqlite3.Connection, bucket: Bucket, configs: Mapping[str, str] | None = None
) -> Bucket:
    row = conn.execute(
        f"SELECT {codec.BUCKET_COLUMNS} FROM buckets WHERE name = ?", (bucket.name,)
    ).fetchone()
    if row is not None:
        return codec.decode_bucket(row)
    cursor = conn.execute(
        "INSERT INTO buckets (name, owner_id, region, created_us, versioning)"
        " VALUES (?, ?, ?, ?, ?)",
        (
            bucket.name,
            bucket.owner_id,
            bucket.region,
            codec.to_us(bucket.created),
            bucket.versioning.value,
        ),
    )
    if configs:
        conn.executemany(
            "INSERT INTO bucket_configs (bucket_id, kind, document) VALUES (?, ?, ?)",
            [(cursor.lastrowid, kind, document) for kind, document in configs.items()],
        )
    return replace(bucket, created=codec.from_us(codec.to_us(bucket.created)))


def bucket_for_write(conn: sqlite3.Connection, name: str) -> tuple[int, Versioning]:
    row = conn.execute("SELECT id, versioning FROM buckets WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise NoSuchBucket(resource=name)
    return int(row[0]), Versioning(row[1])


def delete_bucket(conn: sqlite3.Connection, name: str) -> tuple[str, ...]:
    bucket_id, _ = bucket_for_write(conn, name)
    if conn.execute("SELECT 1 FROM versions WHERE bucket_id = ? LIMIT 1", (bucket_id,)).fetchone():
        raise BucketNotEmpty(resource=name)
    blobs = [
        str(row[0])
        for row in conn.execute(
            "SELECT p.blob_id FROM parts p JOIN uploads u ON p.upload_seq = u.seq"
            " WHERE u.bucket_id = ?",
            (bucket_id,),
        )
    ]
    conn.execute(
        "DELETE FROM parts WHERE upload_seq IN (SELECT seq FROM uploads WHERE bucket_id = ?)",
        (bucket_id,),
    )
    conn.execute("DELETE FROM uploads WHERE bucket_id = ?", (bucket_id,))
    conn.execute("DELETE FROM bucket_configs WHERE bucket_id = ?", (bucket_id,))
    conn.execute("DELETE FROM buckets WHERE id = ?", (bucket_id,))
    return unreferenced(conn, blobs)


def set_versioning(conn: sqlite3.Connection, name: str, state: Versioning) -> None:
    if state is Versioning.UNVERSIONED:
        raise IllegalVersioningConfigurationException()
    bucket_id, _ = bucket_for_write(conn, name)
    conn.execute("UPDATE buckets SET versioning = ? WHERE id = ?", (state.value, bucket_id))


def put_bucket_config(conn: sqlite3.Connection, name: str, kind: str, document: str | None) -> None:
    bucket_id, _ = bucket_for_write(conn, name)
    if document is None:
        conn.execute(
            "DELETE FROM bucket_configs WHERE bucket_id = ? AND kind = ?", (bucket_id, kind)
        )
        return
    conn.execute(
        "INSERT INTO bucket_configs (bucket_id, kind, document) VALUES (?, ?, ?)"
        " ON CONFLICT (bucket_id, kind) DO UPDATE SET document = excluded.document",
        (bucket_id, kind, document),
    )


# --- versions -----------------------------------------------------------------------------------
def _version_columns(*, brief: bool) -> str:
    """``VERSION_COLUMNS`` of the ``v`` table; ``brief``: in the same places, but NULL for the
    columns only a read uses (headers, metadata, checksum, inline body, encryption), so that a
    write looking at the version it replaces or removes neither reads an inline body from its
    overflow pages nor decodes what it reports nothing of (see ``Removed``)."""
    read_only = {"headers", "user_metadata", "checksum", "inline_data", "encryption"}
    columns = [c.strip() for c in codec.VERSION_COLUMNS.split(",")]
    return ", ".join("NULL" if brief and c in read_only else f"v.{c}" for c in columns)


def _locating(columns: str) -> tuple[str, str]:
    """One seek each: the bucket (id, versioning) and the key's latest version, or a given
    version; the version columns are NULL when there is none."""
    return (
        f"SELECT b.id, b.versioning, {columns} FROM buckets b"
        " LEFT JOIN versions v ON v.bucket_id = b.id AND v.object_key = ?"
        " WHERE b.name = ? ORDER BY v.seq DESC LIMIT 1",
        f"SELECT b.id, b.versioning, {columns} FROM buckets b"
        " LEFT JOIN versions v ON v.bucket_id = b.id AND v.object_key = ? AND v.version_id = ?"
        " WHERE b.name = ?",
    )


_FULL = _locating(_version_columns(brief=False))  # for get_object
_BRIEF = _locating(_version_columns(brief=True))  # for the writes here
_BY_ID = (
    f"SELECT {codec.VERSION_COLUMNS} FROM versions"
    " WHERE bucket_id = ? AND object_key = ? AND version_id = ?"
)
_INSERT_VERSION = (
    "INSERT INTO versions (bucket_id, object_key, version_id, is_latest, is_delete_marker, size,"
    " etag, last_modified_us, owner_id, storage_class, headers, user_metadata, checksum,"
    " segments, inline_data, encryption)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def locate(
    conn: sqlite3.Connection,
    bucket: str,
    key: bytes,
    version_id: str | None = None,
    *,
    brief: bool = True,
) -> tuple[int, Versioning, codec.VersionRow | None]:
    """The bucket's id and versioning state, and the key's latest version (or ``version_id``);
    ``brief`` (for writes): without the columns only a read uses, NULL in their places."""
    with_latest, with_version = _BRIEF if brief else _FULL
    if version_id is None:
        row = conn.execute(with_latest, (key, bucket)).fetchone()
    else:
        row = conn.execute(with_version, (key, version_id, bucket)).fetchone()
    if row is None:
        raise NoSuchBucket(resource=bucket)
    return int(row[0]), Versioning(row[1]), None if row[2] is None else row[2:]


def put_object(
    conn: sqlite3.Connection,
    version: ObjectVersion,
    condition: WriteCondition | None,
    acl: str | None = None,
) -> WriteResult:
    return _store(
        conn, locate(conn, version.bucket, codec.key_bytes(version.key)), version, condition, acl
    )


def _store(
    conn: sqlite3.Connection,
    located: tuple[int, Versioning, codec.VersionRow | None],
    version: ObjectVersion,
    condition: WriteCondition | None,
    acl: str | None = None,
) -> WriteResult:
    bucket_id, versioning, latest = located
    if condition is not None:
        _check_condition(condition, latest)
    version_id = version.version_id if versioning is Versioning.ENABLED else NULL_VERSION
    stored = replace(
        version,
        version_id=version_id,
        is_latest=True,
        last_modified=codec.from_us(codec.to_us(version.last_modified)),
        headers=dict(version.headers),
        user_metadata=dict(version.user_metadata),
    )
    replaced = _same_id(conn, bucket_id, latest, version_id)
    removed = None if replaced is None else _delete_row(conn, replaced)
    if latest is not None and replaced is not latest:
        conn.execute("UPDATE versions SET is_latest = 0 WHERE seq = ?", (latest[0],))
    cursor = conn.execute(_INSERT_VERSION, codec.version_params(bucket_id, stored))
    _link_blobs(conn, cursor.lastrowid, stored.blob_ids())
    if acl is not None and cursor.lastrowid is not None:
        acls.add_version_acl(conn, cursor.lastrowid, acl)
    freed = unreferenced(conn, removed.blobs if removed else ())
    return WriteResult(version=stored, freed_blobs=freed, removed=removed)


def _same_id(
    conn: sqlite3.Connection, bucket_id: int, latest: codec.VersionRow | None, version_id: str
) -> codec.VersionRow | None:
    """The existing version a new one with ``version_id`` replaces (usually the latest, or no
    version at all for a new key, both of which need no query)."""
    if latest is None:
        return None
    if latest[2] == version_id:
        return latest
    row: codec.VersionRow | None = conn.execute(
        _BY_ID, (bucket_id, latest[1], version_id)
    ).fetchone()
    return row


def delete_object(
    conn: sqlite3.Connection,
    bucket: str,
    key: str,
    version_id: str | None,
    marker: ObjectVersion,
    if_match: str | None = None,
) -> WriteResult:
    raw = codec.key_bytes(key)
    located = locate(conn, bucket, raw, version_id)
    bucket_id, versioning, row = located
    if if_match is not None:
        if row is None or row[4]:  # missing, or a delete marker
            raise NoSuchKey(Key=key)
        if not etags.matches(if_match, row[6]):
            raise PreconditionFailed(Condition="If-Match")
    if version_id is None and versioning is not Versioning.UNVERSIONED:
        stored_marker = replace(
            marker, bucket=bucket, key=key, is_delete_marker=True, size=0, inline=None,
            segments=(),
        )  # fmt: skip
        return _store(conn, located, stored_marker, None)
    # Unversioned, the latest row is the key's only version (the null one); otherwise ``row``
    # is the version asked for.
    if row is None:
        return WriteResult(version=None)
    removed = _delete_row(conn, row)
    if removed.is_latest and versioning is not Versioning.UNVERSIONED:
        _promote(conn, bucket_id, raw)
    return WriteResult(version=None, freed_blobs=unreferenced(conn, removed.blobs), removed=removed)


def _delete_row(conn: sqlite3.Connection, row: codec.VersionRow) -> Removed:
    removed = codec.decode_removed(row)
    conn.execute("DELETE FROM versions WHERE seq = ?", (row[0],))
    if removed.blobs:
        conn.executemany(
            "DELETE FROM version_blobs WHERE blob_id = ? AND version_seq = ?",
            [(blob, row[0]) for blob in dict.fromkeys(removed.blobs)],
        )
    return removed


def _promote(conn: sqlite3.Connection, bucket_id: int, key: bytes) -> None:
    """Flag the newest remaining version of ``key`` as latest."""
    row = conn.execute(
        "SELECT seq FROM versions WHERE bucket_id = ? AND object_key = ? ORDER BY seq DESC LIMIT 1",
        (bucket_id, key),
    ).fetchone()
    if row is not None:
        conn.execute("UPDATE versions SET is_latest = 1 WHERE seq = ?", (row[0],))


def _link_blobs(conn: sqlite3.Connection, seq: int | None, blobs: tuple[str, ...]) -> None:
    if blobs and seq is not None:
        conn.executemany(
            "INSERT INTO version_blobs (blob_id, version_seq) VALUES (?, ?)",
            [(blob, seq) for blob in dict.fromkeys(blobs)],
        )


def _check_condition(condition: WriteCondition, latest: codec.VersionRow | None) -> None:
    """Evaluate ``If-None-Match: *`` / ``If-Match`` against the latest version's row."""
    current_etag = None if latest is None or latest[4] else latest[6]
    if condition.if_none_match_any and current_etag is not None:
        raise PreconditionFailed()
    if condition.if_match is not None:
        if current_etag is None:
            raise NoSuchKey()
        if condition.if_match not in ("*", current_etag):
            raise PreconditionFailed()


# --- multipart ----------------------------------------------------------------------------------
_INSERT_UPLOAD = (
    "INSERT INTO uploads (bucket_id, object_key, upload_id, initiated_us, owner_id,"
    " storage_class, headers, user_metadata, checksum_algorithm, checksum_type, encryption)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def create_upload(
    conn: sqlite3.Connection, upload: MultipartUpload, acl: str | None = None
) -> None:
    bucket_id, _ = bucket_for_write(conn, upload.bucket)
    cursor = conn.execute(_INSERT_UPLOAD, codec.upload_params(bucket_id, upload))
    if acl is not None and cursor.lastrowid is not None:
        acls.add_upload_acl(conn, cursor.lastrowid, acl)


def upload_seq(conn: sqlite3.Connection, bucket: str, upload_id: str) -> int:
    """The upload's row id; NoSuchBucket or NoSuchUpload when missing."""
    row = conn.execute(
        "SELECT b.id, u.seq FROM buckets b"
        " LEFT JOIN uploads u ON u.bucket_id = b.id AND u.upload_id = ?"
        " WHERE b.name = ?",
        (upload_id, bucket),
    ).fetchone()
    if row is None:
        raise NoSuchBucket(resource=bucket)
    if row[1] is None:
        raise NoSuchUpload(resource=upload_id)
    return int(row[1])


def put_part(conn: sqlite3.Connection, bucket: str, upload_id: str, part: Part) -> tuple[str, ...]:
    seq = upload_seq(conn, bucket, upload_id)
    old = conn.execute(
        "SELECT blob_id FROM parts WHERE upload_seq = ? AND part_number = ?",
        (seq, part.part_number),
    ).fetchone()
    conn.execute(
        f"INSERT INTO parts (upload_seq, {codec.PART_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (upload_seq, part_number) DO UPDATE SET size = excluded.size,"
        " etag = excluded.etag, last_modified_us = excluded.last_modified_us,"
        " blob_id = excluded.blob_id, checksum = excluded.checksum",
        codec.part_params(seq, part),
    )
    if old is None or old[0] == part.blob_id:
        return ()
    return unreferenced(conn, [str(old[0])])


def complete_upload(
    conn: sqlite3.Connection,
    bucket: str,
    upload_id: str,
    version: ObjectVersion,
    condition: WriteCondition | None,
) -> WriteResult:
    seq = upload_seq(conn, bucket, upload_id)
    acl = acls.upload_acl_by_seq(conn, seq)  # read before the upload's row (and it) goes
    part_blobs = _drop_upload(conn, seq)
    located = locate(conn, bucket, codec.key_bytes(version.key))
    result = _store(conn, located, version, condition, acl)
    kept = set(version.blob_ids())
    loose = unreferenced(conn, [blob for blob in part_blobs if blob not in kept])
    return replace(result, freed_blobs=tuple(dict.fromkeys(result.freed_blobs + loose)))


def abort_upload(conn: sqlite3.Connection, bucket: str, upload_id: str) -> tuple[str, ...]:
    return unreferenced(conn, _drop_upload(conn, upload_seq(conn, bucket, upload_id)))


def _drop_upload(conn: sqlite3.Connection, seq: int) -> list[str]:
    """Delete an upload (its ACL goes with it) and its parts; return the parts' blob ids."""
    blobs = [
        str(row[0])
        for row in conn.execute(
            "SELECT blob_id FROM parts WHERE upload_seq = ? ORDER BY part_number", (seq,)
        )
    ]
    conn.execute("DELETE FROM parts WHERE upload_seq = ?", (seq,))
    conn.execute("DELETE FROM uploads WHERE seq = ?", (seq,))
    return blobs


# --- blob references ----------------------------------------------------------------------------
def referenced(conn: sqlite3.Connection, blob_ids: Iterable[str]) -> set[str]:
    """The subset of ``blob_ids`` named by some version or part."""
    found: set[str] = set()
    for chunk in _chunks(list(dict.fromkeys(blob_ids)), _IN_CHUNK):
        marks = ", ".join("?" * len(chunk))
        for table in ("version_blobs", "parts"):
            rows = conn.execute(
                f"SELECT DISTINCT blob_id FROM {table} WHERE blob_id IN ({marks})", chunk
            )
            found.update(str(row[0]) for row in rows)
    return found


def unreferenced(conn: sqlite3.Connection, candidates: Iterable[str]) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(candidates))
    if not wanted:
        return ()
    still = referenced(conn, wanted)
    return tuple(blob for blob in wanted if blob not in still)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
