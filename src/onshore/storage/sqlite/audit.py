"""SQL of the audit trail: appending to the hash chain, digests, keys, and reading them back.

Every function here that writes takes the *write* connection and must run inside the writer's
transaction (a job of :class:`~onshore.storage.sqlite.writer.GroupCommitWriter`): the chain head
is read and extended in the same transaction, while the writer holds the cross-process lock, so
two server processes can never both append after the same head. The readers take any connection
(the CLI opens the database read-only while the server runs: WAL lets it).

The tables are described in ``migrations/0003_audit.sql``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

__all__ = [
    "GENESIS",
    "AuditRow",
    "DigestRow",
    "Filters",
    "StoredEvent",
    "append",
    "digests",
    "events",
    "head",
    "index",
    "index_rows",
    "insert_digest",
    "insert_key",
    "keys",
    "last_digest",
    "search",
    "unindexed",
]

GENESIS = bytes(32)
"""The ``prev_hash`` of the first record of a deployment."""

Link = Callable[[bytes, bytes], bytes]


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One record to append: its canonical JSON and the copies of its fields that are indexed."""

    time_ms: int
    account: str
    user_name: str
    event_name: str
    bucket: str | None
    key: str | None
    error_code: str | None
    event: str


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    time_ms: int
    alg: str
    event: str
    prev_hash: bytes
    hash: bytes


@dataclass(frozen=True, slots=True)
class DigestRow:
    seq: int
    time_ms: int
    first_seq: int
    last_seq: int
    payload: str
    signature: str
    hash: str


_INSERT = (
    "INSERT INTO audit_events (seq, time_ms, alg, event, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)"
)
_INDEX = (
    "INSERT OR IGNORE INTO audit_search (seq, time_ms, account, user_name, event_name, bucket,"
    " object_key, error_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# A change's search row is written later, by another job: only if its record is still the one
# that was appended (a rolled-back change's seq may since have gone to another record).
_INDEX_IF_PRESENT = (
    "INSERT OR IGNORE INTO audit_search (seq, time_ms, account, user_name, event_name, bucket,"
    " object_key, error_code) SELECT ?, ?, ?, ?, ?, ?, ?, ? FROM audit_events"
    " WHERE seq = ? AND hash = ?"
)
_HEAD = "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1"
_EVENT_COLUMNS = "seq, time_ms, alg, event, prev_hash, hash"


def head(conn: sqlite3.Connection) -> tuple[int, bytes]:
    """The last record's sequence number and hash; ``(0, GENESIS)`` for an empty trail."""
    row = conn.execute(_HEAD).fetchone()
    return (0, GENESIS) if row is None else (int(row[0]), bytes(row[1]))


def _fields(seq: int, row: AuditRow) -> tuple[object, ...]:
    return (
        seq,
        row.time_ms,
        row.account,
        row.user_name,
        row.event_name,
        row.bucket,
        row.key,
        row.error_code,
    )


def append(
    conn: sqlite3.Connection,
    rows: Sequence[AuditRow],
    alg: str,
    link: Link,
    *,
    search: bool = True,
) -> list[tuple[int, bytes]]:
    """Append ``rows`` to the chain (inside the caller's write transaction); return each one's
    ``(seq, hash)``. With ``search``, also write their search rows (the bulk path); without,
    the caller hands them to :func:`index` later (the per-write path, kept to one table)."""
    seq, prev = head(conn)
    appended: list[tuple[int, bytes]] = []
    for row in rows:
        seq += 1
        digest = link(prev, row.event.encode("utf-8"))
        conn.execute(_INSERT, (seq, row.time_ms, alg, row.event, prev, digest))
        if search:
            conn.execute(_INDEX, _fields(seq, row))
        appended.append((seq, digest))
        prev = digest
    return appended


def index(conn: sqlite3.Connection, entries: Iterable[tuple[int, bytes, AuditRow]]) -> None:
    """Write the search rows of records appended earlier without them."""
    conn.executemany(
        _INDEX_IF_PRESENT, [(*_fields(seq, row), seq, digest) for seq, digest, row in entries]
    )


def index_rows(conn: sqlite3.Connection, entries: Iterable[tuple[int, AuditRow]]) -> None:
    """Write search rows for records read in this same transaction."""
    conn.executemany(_INDEX, [_fields(seq, row) for seq, row in entries])


def unindexed(conn: sqlite3.Connection, window: int) -> list[tuple[int, int, str]]:
    """``(seq, time_ms, event)`` of the records among the last ``window`` with no search row
    (their change committed, then the process died before the flusher indexed them)."""
    top, _ = head(conn)
    rows = conn.execute(
        "SELECT e.seq, e.time_ms, e.event FROM audit_events e"
        " LEFT JOIN audit_search s ON s.seq = e.seq"
        " WHERE e.seq > ? AND s.seq IS NULL ORDER BY e.seq",
        (top - window,),
    ).fetchall()
    return [(int(r[0]), int(r[1]), str(r[2])) for r in rows]


def events(
    conn: sqlite3.Connection, first: int, last: int, batch: int = 1000
) -> Iterator[StoredEvent]:
    """Records ``first..last`` (inclusive) in chain order, read in short queries."""
    after = first - 1
    while after < last:
        rows = conn.execute(
            f"SELECT {_EVENT_COLUMNS} FROM audit_events WHERE seq > ? AND seq <= ?"
            " ORDER BY seq LIMIT ?",
            (after, last, batch),
        ).fetchall()
        if not rows:
            return
        for r in rows:
            yield StoredEvent(int(r[0]), int(r[1]), str(r[2]), str(r[3]), bytes(r[4]), bytes(r[5]))
        after = int(rows[-1][0])


_DIGEST_COLUMNS = "seq, time_ms, first_seq, last_seq, payload, signature, hash"


def _digest(r: Sequence[object]) -> DigestRow:
    return DigestRow(
        int(r[0]),  # type: ignore[call-overload]
        int(r[1]),  # type: ignore[call-overload]
        int(r[2]),  # type: ignore[call-overload]
        int(r[3]),  # type: ignore[call-overload]
        str(r[4]),
        str(r[5]),
        str(r[6]),
    )


def last_digest(conn: sqlite3.Connection) -> DigestRow | None:
    row = conn.execute(
        f"SELECT {_DIGEST_COLUMNS} FROM audit_digests ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    return None if row is None else _digest(row)


def digests(conn: sqlite3.Connection) -> list[DigestRow]:
    """Every digest, in order (one per digest interval: a few thousand over retention)."""
    rows = conn.execute(f"SELECT {_DIGEST_COLUMNS} FROM audit_digests ORDER BY seq").fetchall()
    return [_digest(r) for r in rows]


def insert_digest(conn: sqlite3.Connection, digest: DigestRow) -> None:
    conn.execute(
        f"INSERT INTO audit_digests ({_DIGEST_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            digest.seq,
            digest.time_ms,
            digest.first_seq,
            digest.last_seq,
            digest.payload,
            digest.signature,
            digest.hash,
        ),
    )


def keys(conn: sqlite3.Connection) -> list[tuple[str, str, bytes]]:
    """Every audit key as ``(fingerprint, public PEM, wrapped private key)``, newest last."""
    rows = conn.execute(
        "SELECT fingerprint, public_pem, wrapped_private FROM audit_keys ORDER BY id"
    ).fetchall()
    return [(str(r[0]), str(r[1]), bytes(r[2])) for r in rows]


def insert_key(
    conn: sqlite3.Connection, created_ms: int, fingerprint: str, public_pem: str, wrapped: bytes
) -> None:
    conn.execute(
        "INSERT INTO audit_keys (created_ms, fingerprint, public_pem, wrapped_private)"
        " VALUES (?, ?, ?, ?)",
        (created_ms, fingerprint, public_pem, wrapped),
    )


@dataclass(frozen=True, slots=True)
class Filters:
    """Search filters; every one is optional and they combine with AND."""

    start_ms: int | None = None
    end_ms: int | None = None
    account: str | None = None
    user_name: str | None = None
    event_name: str | None = None
    bucket: str | None = None
    key_prefix: str | None = None
    error_code: str | None = None
    limit: int = 100


def search(conn: sqlite3.Connection, f: Filters) -> list[StoredEvent]:
    """Records matching ``f``, oldest first. Every filter is served by an index (see the
    migration); a key prefix is a range scan on ``(bucket, object_key)``."""
    where: list[str] = []
    params: list[object] = []
    if f.start_ms is not None:
        where.append("time_ms >= ?")
        params.append(f.start_ms)
    if f.end_ms is not None:
        where.append("time_ms < ?")
        params.append(f.end_ms)
    for column, value in (
        ("account", f.account),
        ("user_name", f.user_name),
        ("event_name", f.event_name),
        ("bucket", f.bucket),
        ("error_code", f.error_code),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if f.key_prefix:
        where.append("object_key >= ? AND s.object_key < ? AND substr(s.object_key, 1, ?) = ?")
        params += [f.key_prefix, f.key_prefix + "\U0010ffff", len(f.key_prefix), f.key_prefix]
    columns = ", ".join(f"e.{c.strip()}" for c in _EVENT_COLUMNS.split(","))
    sql = f"SELECT {columns} FROM audit_search s JOIN audit_events e ON e.seq = s.seq"
    if where:
        sql += " WHERE " + " AND ".join(f"s.{w}" for w in where)
    sql += " ORDER BY s.time_ms, s.seq LIMIT ?"
    params.append(max(0, f.limit))
    return [
        StoredEvent(int(r[0]), int(r[1]), str(r[2]), str(r[3]), bytes(r[4]), bytes(r[5]))
        for r in conn.execute(sql, params)
    ]
