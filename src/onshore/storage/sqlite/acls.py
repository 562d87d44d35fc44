"""Object ACL rows (table ``object_acls``, one per object version, keyed by the version's
``seq`` and removed with it by ``ON DELETE CASCADE``) and upload ACL rows (``upload_acls``,
likewise with their upload). A new version's or upload's ACL is inserted by the mutation that
inserts the row it belongs to (:mod:`.mutations`), in the same transaction."""

from __future__ import annotations

import sqlite3

_GET = (
    "SELECT a.document FROM object_acls a JOIN versions v ON a.version_seq = v.seq"
    " JOIN buckets b ON v.bucket_id = b.id WHERE b.name = ? AND v.object_key = ? AND "
)
_VERSION_SEQ = (
    "SELECT v.seq FROM versions v JOIN buckets b ON v.bucket_id = b.id"
    " WHERE b.name = ? AND v.object_key = ? AND v.version_id = ?"
)


def get_object_acl(
    conn: sqlite3.Connection, bucket: str, key: bytes, version_id: str | None
) -> str | None:
    """The ACL of one version (``version_id`` None: the latest), None if none is stored."""
    if version_id is None:
        row = conn.execute(_GET + "v.is_latest = 1", (bucket, key)).fetchone()
    else:
        row = conn.execute(_GET + "v.version_id = ?", (bucket, key, version_id)).fetchone()
    return None if row is None else str(row[0])


def put_object_acl(
    conn: sqlite3.Connection, bucket: str, key: bytes, version_id: str, document: str
) -> bool:
    """Store the ACL of one version (a writer closure); False if the version is gone."""
    row = conn.execute(_VERSION_SEQ, (bucket, key, version_id)).fetchone()
    if row is None:
        return False
    conn.execute(
        "INSERT INTO object_acls (version_seq, document) VALUES (?, ?)"
        " ON CONFLICT (version_seq) DO UPDATE SET document = excluded.document",
        (row[0], document),
    )
    return True


_UPLOAD_SEQ = (
    "SELECT u.seq FROM uploads u JOIN buckets b ON u.bucket_id = b.id"
    " WHERE b.name = ? AND u.upload_id = ?"
)


def get_upload_acl(conn: sqlite3.Connection, bucket: str, upload_id: str) -> str | None:
    row = conn.execute(
        "SELECT a.document FROM upload_acls a WHERE a.upload_seq = (" + _UPLOAD_SEQ + ")",
        (bucket, upload_id),
    ).fetchone()
    return None if row is None else str(row[0])


def add_version_acl(conn: sqlite3.Connection, version_seq: int, document: str) -> None:
    """The ACL of a version being inserted, in the transaction that inserts it."""
    conn.execute(
        "INSERT INTO object_acls (version_seq, document) VALUES (?, ?)", (version_seq, document)
    )


def add_upload_acl(conn: sqlite3.Connection, upload_seq: int, document: str) -> None:
    """The ACL of an upload being created, in the transaction that creates it."""
    conn.execute(
        "INSERT INTO upload_acls (upload_seq, document) VALUES (?, ?)", (upload_seq, document)
    )


def upload_acl_by_seq(conn: sqlite3.Connection, upload_seq: int) -> str | None:
    row = conn.execute(
        "SELECT document FROM upload_acls WHERE upload_seq = ?", (upload_seq,)
    ).fetchone()
    return None if row is None else str(row[0])
