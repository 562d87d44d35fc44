"""Tenant key rows (``tenant_keys``, migration 0005): reads take a connection, writes run as
closures on the group-commit writer, like :mod:`.mutations`."""

from __future__ import annotations

import sqlite3

from onshore.domain.models import KmsKey, TenantKey
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


# --- KMS keys and aliases -----------------------------------------------------------------------
KMS_COLUMNS = (
    "key_id, account_id, description, state, created_us, wrapped, root_fingerprint,"
    " deletion_us, rotation_enabled"
)
KmsRow = tuple[str, str, str, str, int, bytes, str, int | None, int]


def decode_kms(row: KmsRow) -> KmsKey:
    key_id, account, description, state, created, wrapped, fingerprint, deletion, rotation = row
    return KmsKey(
        key_id,
        account,
        description,
        state,
        from_us(created),
        bytes(wrapped),
        fingerprint,
        None if deletion is None else from_us(deletion),
        bool(rotation),
    )


def get_kms(conn: sqlite3.Connection, key_id: str) -> KmsKey | None:
    row = conn.execute(f"SELECT {KMS_COLUMNS} FROM kms_keys WHERE key_id = ?", (key_id,)).fetchone()
    return None if row is None else decode_kms(row)


def list_kms(conn: sqlite3.Connection, account_id: str) -> list[KmsKey]:
    rows = conn.execute(
        f"SELECT {KMS_COLUMNS} FROM kms_keys WHERE account_id = ? ORDER BY key_id", (account_id,)
    ).fetchall()
    return [decode_kms(r) for r in rows]


def list_kms_all(conn: sqlite3.Connection) -> list[KmsKey]:
    rows = conn.execute(f"SELECT {KMS_COLUMNS} FROM kms_keys ORDER BY key_id").fetchall()
    return [decode_kms(r) for r in rows]


def put_kms(conn: sqlite3.Connection, key: KmsKey) -> None:
    conn.execute(
        f"INSERT OR REPLACE INTO kms_keys ({KMS_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            key.key_id,
            key.account_id,
            key.description,
            key.state,
            to_us(key.created),
            key.wrapped,
            key.root_fingerprint,
            None if key.deletion is None else to_us(key.deletion),
            1 if key.rotation_enabled else 0,
        ),
    )


def get_alias(conn: sqlite3.Connection, account_id: str, alias: str) -> str | None:
    row = conn.execute(
        "SELECT key_id FROM kms_aliases WHERE account_id = ? AND alias_name = ?",
        (account_id, alias),
    ).fetchone()
    return None if row is None else str(row[0])


def add_alias(conn: sqlite3.Connection, account_id: str, alias: str, key_id: str, now: int) -> bool:
    cursor = conn.execute(
        "INSERT OR IGNORE INTO kms_aliases (account_id, alias_name, key_id, created_us)"
        " VALUES (?, ?, ?, ?)",
        (account_id, alias, key_id, now),
    )
    return cursor.rowcount == 1


def list_aliases(conn: sqlite3.Connection, account_id: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT alias_name, key_id FROM kms_aliases WHERE account_id = ? ORDER BY alias_name",
        (account_id,),
    ).fetchall()
    return [(str(a), str(k)) for a, k in rows]
