"""Offboarding rows (``offboarding``, migration 0007) and the deletions of an offboarding run.

Reads take a connection; writes are closures for the group-commit writer (each runs in its own
savepoint), like :mod:`.mutations`. Every deletion step adds what it deleted to the row's
counters *in the same transaction*, so an interrupted run resumed later counts each thing once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from onshore.storage.sqlite.mutations import unreferenced

COLUMNS = (
    "account_id, tenant_name, state, requested_us, notice_days, started_us, executed_us, step,"
    " forced, counts, fingerprints, certificate"
)


@dataclass(frozen=True, slots=True)
class OffboardingRow:
    account_id: str
    tenant_name: str
    state: str
    requested_us: int
    notice_days: int
    started_us: int | None
    executed_us: int | None
    step: str
    forced: bool
    counts: Mapping[str, int]
    fingerprints: tuple[str, ...]
    certificate: str | None


def _decode(row: tuple[object, ...]) -> OffboardingRow:
    counts = json.loads(str(row[9]))
    return OffboardingRow(
        account_id=str(row[0]),
        tenant_name=str(row[1]),
        state=str(row[2]),
        requested_us=int(row[3]),  # type: ignore[call-overload]
        notice_days=int(row[4]),  # type: ignore[call-overload]
        started_us=None if row[5] is None else int(row[5]),  # type: ignore[call-overload]
        executed_us=None if row[6] is None else int(row[6]),  # type: ignore[call-overload]
        step=str(row[7]),
        forced=bool(row[8]),
        counts={str(k): int(v) for k, v in counts.items()},
        fingerprints=tuple(str(f) for f in json.loads(str(row[10]))),
        certificate=None if row[11] is None else str(row[11]),
    )


def get(conn: sqlite3.Connection, account_id: str) -> OffboardingRow | None:
    row = conn.execute(
        f"SELECT {COLUMNS} FROM offboarding WHERE account_id = ?", (account_id,)
    ).fetchone()
    return None if row is None else _decode(row)


def all_rows(conn: sqlite3.Connection) -> list[OffboardingRow]:
    rows = conn.execute(f"SELECT {COLUMNS} FROM offboarding ORDER BY account_id").fetchall()
    return [_decode(row) for row in rows]


def insert(
    conn: sqlite3.Connection, account_id: str, name: str, requested_us: int, notice_days: int
) -> OffboardingRow:
    """A new request in the notice state; an existing row (of any state) is returned as is."""
    conn.execute(
        "INSERT OR IGNORE INTO offboarding (account_id, tenant_name, state, requested_us,"
        " notice_days) VALUES (?, ?, 'notice', ?, ?)",
        (account_id, name, requested_us, notice_days),
    )
    found = get(conn, account_id)
    assert found is not None
    return found


def delete_notice(conn: sqlite3.Connection, account_id: str) -> bool:
    """Cancel: remove the row if (and only if) it is still in the notice state."""
    cursor = conn.execute(
        "DELETE FROM offboarding WHERE account_id = ? AND state = 'notice'", (account_id,)
    )
    return cursor.rowcount > 0


def start(conn: sqlite3.Connection, account_id: str, now_us: int, forced: bool) -> OffboardingRow:
    conn.execute(
        "UPDATE offboarding SET state = 'executing', started_us = ?, forced = ?, step = 'keys'"
        " WHERE account_id = ? AND state = 'notice'",
        (now_us, int(forced), account_id),
    )
    found = get(conn, account_id)
    assert found is not None
    return found


def set_step(conn: sqlite3.Connection, account_id: str, step: str) -> None:
    conn.execute("UPDATE offboarding SET step = ? WHERE account_id = ?", (step, account_id))


def add_fingerprint(conn: sqlite3.Connection, account_id: str, fingerprint: str) -> None:
    row = get(conn, account_id)
    assert row is not None
    if fingerprint not in row.fingerprints:
        found = [*row.fingerprints, fingerprint]
        conn.execute(
            "UPDATE offboarding SET fingerprints = ? WHERE account_id = ?",
            (json.dumps(found), account_id),
        )


def _add_counts(conn: sqlite3.Connection, account_id: str, delta: Mapping[str, int]) -> None:
    row = get(conn, account_id)
    assert row is not None
    counts = dict(row.counts)
    for name, value in delta.items():
        counts[name] = counts.get(name, 0) + value
    conn.execute(
        "UPDATE offboarding SET counts = ? WHERE account_id = ?",
        (json.dumps(counts, sort_keys=True), account_id),
    )


def finish(conn: sqlite3.Connection, account_id: str, executed_us: int, certificate: str) -> None:
    conn.execute(
        "UPDATE offboarding SET state = 'offboarded', step = 'done', executed_us = ?,"
        " certificate = ? WHERE account_id = ?",
        (executed_us, certificate, account_id),
    )


# --- what the tenant owns -----------------------------------------------------------------------
def bucket_ids(conn: sqlite3.Connection, account_id: str) -> list[tuple[int, str]]:
    rows = conn.execute(
        "SELECT id, name FROM buckets WHERE owner_id = ? ORDER BY id", (account_id,)
    ).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def bucket_blobs(conn: sqlite3.Connection, bucket_id: int) -> list[str]:
    """Every blob a bucket's versions and multipart parts name."""
    rows = conn.execute(
        "SELECT vb.blob_id FROM version_blobs vb JOIN versions v ON vb.version_seq = v.seq"
        " WHERE v.bucket_id = ?"
        " UNION SELECT p.blob_id FROM parts p JOIN uploads u ON p.upload_seq = u.seq"
        " WHERE u.bucket_id = ?",
        (bucket_id, bucket_id),
    ).fetchall()
    return [str(r[0]) for r in rows]


def purge_bucket(conn: sqlite3.Connection, account_id: str, bucket_id: int) -> tuple[str, ...]:
    """Delete one bucket of the account with every version, upload, part and configuration,
    add what was deleted to the account's offboarding counters, and return the blobs no row
    names any more (to delete from disk after the commit)."""
    owner = conn.execute("SELECT owner_id FROM buckets WHERE id = ?", (bucket_id,)).fetchone()
    if owner is None or owner[0] != account_id:
        return ()
    blobs = bucket_blobs(conn, bucket_id)
    objects, version_bytes, markers = conn.execute(
        "SELECT COALESCE(SUM(1 - is_delete_marker), 0), COALESCE(SUM(size), 0),"
        " COALESCE(SUM(is_delete_marker), 0) FROM versions WHERE bucket_id = ?",
        (bucket_id,),
    ).fetchone()
    uploads, part_bytes, parts = conn.execute(
        "SELECT COUNT(DISTINCT u.seq), COALESCE(SUM(p.size), 0), COUNT(p.part_number)"
        " FROM uploads u LEFT JOIN parts p ON p.upload_seq = u.seq WHERE u.bucket_id = ?",
        (bucket_id,),
    ).fetchone()
    versions = "SELECT seq FROM versions WHERE bucket_id = ?"
    conn.execute(f"DELETE FROM version_blobs WHERE version_seq IN ({versions})", (bucket_id,))
    conn.execute("DELETE FROM versions WHERE bucket_id = ?", (bucket_id,))
    uploads_q = "SELECT seq FROM uploads WHERE bucket_id = ?"
    conn.execute(f"DELETE FROM parts WHERE upload_seq IN ({uploads_q})", (bucket_id,))
    conn.execute("DELETE FROM uploads WHERE bucket_id = ?", (bucket_id,))
    conn.execute("DELETE FROM bucket_configs WHERE bucket_id = ?", (bucket_id,))
    conn.execute("DELETE FROM buckets WHERE id = ?", (bucket_id,))
    _add_counts(
        conn,
        account_id,
        {
            "buckets": 1,
            "objects": int(objects),
            "delete_markers": int(markers),
            "bytes": int(version_bytes) + int(part_bytes),
            "multipart_uploads": int(uploads),
            "parts": int(parts),
        },
    )
    return unreferenced(conn, blobs)


def purge_identities(conn: sqlite3.Connection, account_id: str) -> None:
    """Delete the account's users, access keys, inline policies, quota, usage counters and
    KMS keys and aliases (the tenant row stays: it is the tombstone that keeps the account id
    and name from being reused)."""
    users = "SELECT user_id FROM iam_users WHERE account_id = ?"
    keys = conn.execute(
        f"SELECT COUNT(*) FROM access_keys WHERE user_id IN ({users})", (account_id,)
    ).fetchone()[0]
    policies = conn.execute(
        f"SELECT COUNT(*) FROM user_policies WHERE user_id IN ({users})", (account_id,)
    ).fetchone()[0]
    user_count = conn.execute(
        "SELECT COUNT(*) FROM iam_users WHERE account_id = ?", (account_id,)
    ).fetchone()[0]
    conn.execute(f"DELETE FROM access_keys WHERE user_id IN ({users})", (account_id,))
    conn.execute(f"DELETE FROM user_policies WHERE user_id IN ({users})", (account_id,))
    conn.execute("DELETE FROM iam_users WHERE account_id = ?", (account_id,))
    conn.execute("DELETE FROM tenant_quotas WHERE account_id = ?", (account_id,))
    conn.execute("DELETE FROM account_usage WHERE account_id = ?", (account_id,))
    conn.execute("DELETE FROM kms_aliases WHERE account_id = ?", (account_id,))
    conn.execute("DELETE FROM kms_keys WHERE account_id = ?", (account_id,))
    _add_counts(
        conn,
        account_id,
        {"users": int(user_count), "access_keys": int(keys), "policies": int(policies)},
    )


def kms_key_ids(conn: sqlite3.Connection, account_id: str) -> list[str]:
    rows = conn.execute(
        "SELECT key_id FROM kms_keys WHERE account_id = ? ORDER BY key_id", (account_id,)
    ).fetchall()
    return [str(r[0]) for r in rows]


def delete_kms_key(conn: sqlite3.Connection, key_id: str) -> None:
    conn.execute("DELETE FROM kms_aliases WHERE key_id = ?", (key_id,))
    conn.execute("DELETE FROM kms_keys WHERE key_id = ?", (key_id,))
