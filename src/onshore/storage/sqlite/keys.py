"""Tenant key rows (``tenant_keys``, migration 0005): reads take a connection, writes run as
closures on the group-commit writer, like :mod:`.mutations`."""

from __future__ import annotations

import sqlite3

from onshore.domain.models import TenantKey
from onshore.storage.sqlite.codec import from_us, to_us

COLUMNS = "account_id, cipher, wrapped, root_fingerprint, created_us"
Row = tuple[str, str, bytes, str, int]


def decode(row: Row) -> TenantKey:
    account, cipher, wrapped, fingerprint, created = row
    return TenantKey(account, cipher, bytes(wrapped), fingerprint, from_us(created))


def get(conn: sqlite3.Connection, account_id: str) -> TenantKey | None:
    row = conn.execute(
        f"SELECT {COLUMNS} FROM tenant_keys WHERE account_id = ?", (account_id,)
    ).fetchone()
    return None if row is None else decode(row)


def list_all(conn: sqlite3.Connection) -> list[TenantKey]:
    rows = conn.execute(f"SELECT {COLUMNS} FROM tenant_keys ORDER BY account_id").fetchall()
    return [decode(row) for row in rows]


def add(conn: sqlite3.Connection, key: TenantKey) -> TenantKey:
    conn.execute(
        f"INSERT OR IGNORE INTO tenant_keys ({COLUMNS}) VALUES (?, ?, ?, ?, ?)",
        (key.account_id, key.cipher, key.wrapped, key.root_fingerprint, to_us(key.created)),
    )
    stored = get(conn, key.account_id)
    assert stored is not None
    return stored


def replace(conn: sqlite3.Connection, key: TenantKey, expected_fingerprint: str) -> bool:
    cursor = conn.execute(
        "UPDATE tenant_keys SET wrapped = ?, root_fingerprint = ?"
        " WHERE account_id = ? AND root_fingerprint = ?",
        (key.wrapped, key.root_fingerprint, key.account_id, expected_fingerprint),
    )
    return cursor.rowcount == 1


def delete(conn: sqlite3.Connection, account_id: str) -> bool:
    cursor = conn.execute("DELETE FROM tenant_keys WHERE account_id = ?", (account_id,))
    return cursor.rowcount == 1
