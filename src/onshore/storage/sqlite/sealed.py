"""Columns of secrets sealed directly by the root key, re-sealed in place by a root rotation.

Besides tenant keys and KMS key material (which the key stores rotate themselves), the root key
seals: IAM secret keys (``access_keys.secret``), operator secret keys (``operators.secret``),
the audit signing key (``audit_keys.wrapped_private``), the licensing deployment key
(``license_deployment.wrapped_key``) and support-access secrets (``support_access.secret``).
Each row is re-sealed with a compare-and-set on its old blob, in the metadata store's writer,
so a rerun after an interruption skips finished rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from onshore.storage.sqlite.store import SqliteMetadataStore

#: (table, row id column, sealed blob column)
SEALED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("access_keys", "access_key", "secret"),
    ("operators", "access_key", "secret"),
    ("audit_keys", "fingerprint", "wrapped_private"),
    ("license_deployment", "id", "wrapped_key"),
    ("support_access", "access_key", "secret"),
)


def reseal_column(
    meta: SqliteMetadataStore,
    table: str,
    id_column: str,
    blob_column: str,
    reseal: Callable[[str, bytes], bytes | None],
) -> int:
    """Apply ``reseal(row id, blob)`` to every row (``None``: already done); rows changed."""
    assert (table, id_column, blob_column) in SEALED_COLUMNS

    def work(conn: sqlite3.Connection) -> int:
        rows = conn.execute(
            f"SELECT {id_column}, {blob_column} FROM {table} WHERE {blob_column} IS NOT NULL"
        ).fetchall()
        changed = 0
        for row_id, blob in rows:
            fresh = reseal(str(row_id), bytes(blob))
            if fresh is None:
                continue
            changed += conn.execute(
                f"UPDATE {table} SET {blob_column} = ? WHERE {id_column} = ? AND {blob_column} = ?",
                (fresh, row_id, blob),
            ).rowcount
        return changed

    return meta.writer.submit(work)
