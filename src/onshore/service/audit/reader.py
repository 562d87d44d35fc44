"""Reading the trail from a data directory, for the ``onshore audit`` commands.

The database is opened read-only (``query_only``), which is safe while the server runs: in WAL
mode a reader sees the last committed state and never blocks the writer. Nothing here writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from onshore.service.audit.search import search as search_records
from onshore.storage.sqlite import audit as sql
from onshore.storage.sqlite.schema import connect

__all__ = ["Filters", "TrailUnavailable", "parse_time", "public_keys", "reading", "search"]

METADATA_FILE = "metadata.db"
Filters = sql.Filters


class TrailUnavailable(Exception):
    """No audit trail can be read from the data directory; the message says why."""


@contextmanager
def reading(data_dir: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the data directory's metadata database."""
    path = data_dir / METADATA_FILE
    if not path.is_file():
        raise TrailUnavailable(f"no onshore data in {data_dir} ({METADATA_FILE} not found)")
    conn = connect(str(path), writer=False)
    try:
        found = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_blocks'"
        ).fetchone()
        if found is None:
            raise TrailUnavailable(
                f"{path} has no audit trail yet: start this onshore version's server once"
            )
        yield conn
    finally:
        conn.close()


def public_keys(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """Every audit public key as ``(fingerprint, PEM)``, the current one last."""
    return [(fingerprint, pem) for fingerprint, pem, _ in sql.keys(conn)]


def search(conn: sqlite3.Connection, filters: sql.Filters) -> list[sql.StoredEvent]:
    return search_records(conn, filters)


def parse_time(text: str) -> int:
    """Milliseconds since the epoch from ISO 8601 (``2026-05-01``, ``2026-05-01T12:00:00Z``,
    with or without fractions or an offset; naive times are UTC)."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)
