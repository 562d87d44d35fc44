"""Tenant key rows (``tenant_keys``, migration 0005) and KMS keys, their key materials and
aliases (``kms_*``, migrations 0005 and 0011): reads take a connection, writes run as closures
on the group-commit writer, like :mod:`.mutations`."""

from __future__ import annotations

import sqlite3

from onshore.domain.models import KmsKey, KmsKeyMaterial, TenantKey
from onshore.storage.ports import KmsNotChanged
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


# --- KMS keys, their key materials and aliases ---------------------------------------------------
KMS_COLUMNS = (
    "key_id, account_id, description, state, created_us, wrapped, root_fingerprint,"
    " deletion_us, rotation_enabled, material_version, rotation_period_days, next_rotation_us"
)
KmsRow = tuple[str, str, str, str, int, bytes, str, int | None, int, int, int | None, int | None]
MATERIAL_COLUMNS = "key_id, version, wrapped, root_fingerprint, rotated_us, rotation_type"
MaterialRow = tuple[str, int, bytes, str, int, str]


def decode_kms(row: KmsRow) -> KmsKey:
    (
        key_id,
        account,
        description,
        state,
        created,
        wrapped,
        fingerprint,
        deletion,
        rotation,
        material_version,
        period,
        next_rotation,
    ) = row
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
        int(material_version),
        None if period is None else int(period),
        None if next_rotation is None else from_us(next_rotation),
    )


def decode_material(row: MaterialRow) -> KmsKeyMaterial:
    key_id, version, wrapped, fingerprint, rotated, rotation_type = row
    return KmsKeyMaterial(
        key_id, int(version), bytes(wrapped), fingerprint, from_us(rotated), rotation_type
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
    """Insert the key's row, or update its description, state, deletion date and sealed first
    material. The rotation columns are left alone on update: only :func:`set_kms_rotation` and
    :func:`rotate_kms` change them, so a state change made from a key read a moment ago never
    undoes a rotation that happened in between."""
    conn.execute(
        f"INSERT INTO kms_keys ({KMS_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (key_id) DO UPDATE SET description = excluded.description,"
        " state = excluded.state, wrapped = excluded.wrapped,"
        " root_fingerprint = excluded.root_fingerprint, deletion_us = excluded.deletion_us",
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
            key.material_version,
            key.rotation_period_days,
            None if key.next_rotation is None else to_us(key.next_rotation),
        ),
    )


def set_kms_rotation(conn: sqlite3.Connection, key: KmsKey) -> None:
    """Store the key's automatic rotation settings (enabled, period, next date)."""
    cursor = conn.execute(
        "UPDATE kms_keys SET rotation_enabled = ?, rotation_period_days = ?, next_rotation_us = ?"
        " WHERE key_id = ?",
        (
            1 if key.rotation_enabled else 0,
            key.rotation_period_days,
            None if key.next_rotation is None else to_us(key.next_rotation),
            key.key_id,
        ),
    )
    if cursor.rowcount != 1:
        raise KmsNotChanged(key.key_id)


def due_deletions(conn: sqlite3.Connection, now_us: int) -> list[KmsKey]:
    rows = conn.execute(
        f"SELECT {KMS_COLUMNS} FROM kms_keys WHERE deletion_us <= ? AND state = 'PendingDeletion'"
        " ORDER BY deletion_us, key_id",
        (now_us,),
    ).fetchall()
    return [decode_kms(r) for r in rows]


def due_rotations(conn: sqlite3.Connection, now_us: int) -> list[KmsKey]:
    rows = conn.execute(
        f"SELECT {KMS_COLUMNS} FROM kms_keys WHERE next_rotation_us <= ? AND state = 'Enabled'"
        " AND rotation_enabled = 1 ORDER BY next_rotation_us, key_id",
        (now_us,),
    ).fetchall()
    return [decode_kms(r) for r in rows]


def delete_due_kms(conn: sqlite3.Connection, key_id: str, now_us: int) -> KmsKey:
    """Delete a key whose pending deletion is due, with its key materials and aliases, and
    return it; KmsNotChanged if it is not (any more) pending deletion or not yet due."""
    row = conn.execute(
        f"SELECT {KMS_COLUMNS} FROM kms_keys WHERE key_id = ? AND state = 'PendingDeletion'"
        " AND deletion_us <= ?",
        (key_id, now_us),
    ).fetchone()
    if row is None:
        raise KmsNotChanged(key_id)
    conn.execute("DELETE FROM kms_aliases WHERE key_id = ?", (key_id,))
    conn.execute("DELETE FROM kms_key_materials WHERE key_id = ?", (key_id,))
    conn.execute("DELETE FROM kms_keys WHERE key_id = ?", (key_id,))
    return decode_kms(row)


def rotate_kms(
    conn: sqlite3.Connection, material: KmsKeyMaterial, next_rotation_us: int | None
) -> None:
    """Make ``material`` the key's current material, if the key is still Enabled at the version
    before it (compare-and-set: of two concurrent rotations one wins, the other gets
    KmsNotChanged). ``next_rotation_us``, when given (an automatic rotation), schedules the next
    one; an on-demand rotation leaves the schedule alone."""
    schedule = "" if next_rotation_us is None else ", next_rotation_us = :next"
    cursor = conn.execute(
        f"UPDATE kms_keys SET material_version = :version{schedule}"
        " WHERE key_id = :key AND material_version = :version - 1 AND state = 'Enabled'",
        {"version": material.version, "next": next_rotation_us, "key": material.key_id},
    )
    if cursor.rowcount != 1:
        raise KmsNotChanged(material.key_id)
    conn.execute(
        f"INSERT INTO kms_key_materials ({MATERIAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        (
            material.key_id,
            material.version,
            material.wrapped,
            material.root_fingerprint,
            to_us(material.rotated),
            material.rotation_type,
        ),
    )


def get_material(conn: sqlite3.Connection, key_id: str, version: int) -> KmsKeyMaterial | None:
    row = conn.execute(
        f"SELECT {MATERIAL_COLUMNS} FROM kms_key_materials WHERE key_id = ? AND version = ?",
        (key_id, version),
    ).fetchone()
    return None if row is None else decode_material(row)


def list_materials(conn: sqlite3.Connection, key_id: str) -> list[KmsKeyMaterial]:
    rows = conn.execute(
        f"SELECT {MATERIAL_COLUMNS} FROM kms_key_materials WHERE key_id = ? ORDER BY version",
        (key_id,),
    ).fetchall()
    return [decode_material(r) for r in rows]


def list_materials_all(conn: sqlite3.Connection) -> list[KmsKeyMaterial]:
    rows = conn.execute(
        f"SELECT {MATERIAL_COLUMNS} FROM kms_key_materials ORDER BY key_id, version"
    ).fetchall()
    return [decode_material(r) for r in rows]


def replace_material(
    conn: sqlite3.Connection, material: KmsKeyMaterial, expected_fingerprint: str
) -> bool:
    """Re-seal a material in place (root key rotation), compare-and-set on its old root key."""
    cursor = conn.execute(
        "UPDATE kms_key_materials SET wrapped = ?, root_fingerprint = ?"
        " WHERE key_id = ? AND version = ? AND root_fingerprint = ?",
        (
            material.wrapped,
            material.root_fingerprint,
            material.key_id,
            material.version,
            expected_fingerprint,
        ),
    )
    return cursor.rowcount == 1


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
