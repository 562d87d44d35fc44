"""``SqliteIamStore``: the :class:`~onshore.storage.iam_port.IamStore` in the metadata database.

It shares the metadata store's file, group-commit writer (each write below is one job, run in its
own savepoint) and per-thread reader connections. Tables and the usage triggers are in
``migrations/0002_iam.sql``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from onshore.domain.iam import (
    MAX_KEYS_PER_USER,
    AccessKey,
    DeleteConflict,
    EntityAlreadyExists,
    KeyRecord,
    KeyStatus,
    LimitExceeded,
    NoSuchEntity,
    OffboardingError,
    Quota,
    Tenant,
    Usage,
    User,
    is_account_id,
)
from onshore.storage.sqlite.codec import from_us, to_us
from onshore.storage.sqlite.store import SqliteMetadataStore

__all__ = ["SqliteIamStore"]

_USER = "account_id, name, user_id, created_us, is_admin"
_KEY = "k.access_key, u.account_id, u.name, k.status, k.created_us"


def _tenant(row: tuple[str, str, int]) -> Tenant:
    return Tenant(account_id=row[0], name=row[1], created=from_us(row[2]))


def _user(row: tuple[str, str, str, int, int]) -> User:
    return User(
        account_id=row[0],
        name=row[1],
        user_id=row[2],
        created=from_us(row[3]),
        is_admin=bool(row[4]),
    )


def _key(row: tuple[str, str, str, str, int]) -> AccessKey:
    return AccessKey(
        access_key=row[0],
        account_id=row[1],
        user_name=row[2],
        status=KeyStatus(row[3]),
        created=from_us(row[4]),
    )


def _require_tenant(conn: sqlite3.Connection, account_id: str) -> None:
    if not conn.execute("SELECT 1 FROM tenants WHERE account_id = ?", (account_id,)).fetchone():
        raise NoSuchEntity(f"The tenant {account_id} does not exist.")


def _user_id(conn: sqlite3.Connection, account_id: str, name: str) -> str:
    row = conn.execute(
        "SELECT user_id FROM iam_users WHERE account_id = ? AND name_key = ?",
        (account_id, name.lower()),
    ).fetchone()
    if row is None:
        raise NoSuchEntity(f"The user with name {name} cannot be found.")
    return str(row[0])


class SqliteIamStore:
    def __init__(self, meta: SqliteMetadataStore) -> None:
        self._meta = meta

    def _read(self) -> sqlite3.Connection:
        return self._meta.read_connection()

    # --- tenants --------------------------------------------------------------------------------
    def create_tenant(self, tenant: Tenant, admin: User) -> None:
        def work(conn: sqlite3.Connection) -> None:
            taken = conn.execute(
                "SELECT 1 FROM tenants WHERE account_id = ? OR name = ?",
                (tenant.account_id, tenant.name),
            ).fetchone()
            if taken:
                raise EntityAlreadyExists(f"A tenant named {tenant.name} already exists.")
            conn.execute(
                "INSERT INTO tenants (account_id, name, created_us) VALUES (?, ?, ?)",
                (tenant.account_id, tenant.name, to_us(tenant.created)),
            )
            _insert_user(conn, admin)

        self._meta.writer.submit(work)

    def get_tenant(self, ref: str) -> Tenant | None:
        column = "account_id" if is_account_id(ref) else "name"
        row = (
            self._read()
            .execute(f"SELECT account_id, name, created_us FROM tenants WHERE {column} = ?", (ref,))
            .fetchone()
        )
        return None if row is None else _tenant(row)

    def list_tenants(self) -> list[Tenant]:
        rows = self._read().execute(
            "SELECT account_id, name, created_us FROM tenants ORDER BY name"
        )
        return [_tenant(row) for row in rows]

    def delete_tenant(self, account_id: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            _require_tenant(conn, account_id)
            offboarding = conn.execute(
                "SELECT state FROM offboarding WHERE account_id = ?", (account_id,)
            ).fetchone()
            if offboarding is not None:
                raise OffboardingError(
                    f"Cannot delete a tenant that is {offboarding[0]}: its row keeps the "
                    "account id and name named by its offboarding record and deletion "
                    "certificate. Cancel the offboarding first if it is still in its notice "
                    "period."
                )
            if conn.execute(
                "SELECT 1 FROM buckets WHERE owner_id = ? LIMIT 1", (account_id,)
            ).fetchone():
                raise DeleteConflict(
                    "Cannot delete a tenant that owns buckets: delete its buckets first."
                )
            users = "SELECT user_id FROM iam_users WHERE account_id = ?"
            conn.execute(f"DELETE FROM access_keys WHERE user_id IN ({users})", (account_id,))
            conn.execute(f"DELETE FROM user_policies WHERE user_id IN ({users})", (account_id,))
            conn.execute("DELETE FROM iam_users WHERE account_id = ?", (account_id,))
            conn.execute("DELETE FROM tenant_quotas WHERE account_id = ?", (account_id,))
            conn.execute("DELETE FROM account_usage WHERE account_id = ?", (account_id,))
            conn.execute("DELETE FROM tenants WHERE account_id = ?", (account_id,))

        self._meta.writer.submit(work)

    # --- users ----------------------------------------------------------------------------------
    def create_user(self, user: User) -> None:
        def work(conn: sqlite3.Connection) -> None:
            _require_tenant(conn, user.account_id)
            _insert_user(conn, user)

        self._meta.writer.submit(work)

    def get_user(self, account_id: str, name: str) -> User | None:
        row = (
            self._read()
            .execute(
                f"SELECT {_USER} FROM iam_users WHERE account_id = ? AND name_key = ?",
                (account_id, name.lower()),
            )
            .fetchone()
        )
        return None if row is None else _user(row)

    def list_users(self, account_id: str) -> list[User]:
        conn = self._read()
        _require_tenant(conn, account_id)
        rows = conn.execute(
            f"SELECT {_USER} FROM iam_users WHERE account_id = ? ORDER BY name_key", (account_id,)
        )
        return [_user(row) for row in rows]

    def delete_user(self, account_id: str, name: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            user_id = _user_id(conn, account_id, name)
            row = conn.execute(
                "SELECT is_admin FROM iam_users WHERE user_id = ?", (user_id,)
            ).fetchone()
            if row[0]:
                raise DeleteConflict("The tenant's admin user cannot be deleted.")
            for table, what in (("access_keys", "access keys"), ("user_policies", "policies")):
                if conn.execute(f"SELECT 1 FROM {table} WHERE user_id = ?", (user_id,)).fetchone():
                    raise DeleteConflict(f"Cannot delete entity, must delete {what} first.")
            conn.execute("DELETE FROM iam_users WHERE user_id = ?", (user_id,))

        self._meta.writer.submit(work)

    # --- access keys ----------------------------------------------------------------------------
    def create_key(self, key: AccessKey, wrapped_secret: bytes) -> None:
        def work(conn: sqlite3.Connection) -> None:
            user_id = _user_id(conn, key.account_id, key.user_name)
            if conn.execute(
                "SELECT 1 FROM access_keys WHERE access_key = ?", (key.access_key,)
            ).fetchone():
                raise EntityAlreadyExists(f"The access key {key.access_key} already exists.")
            (count,) = conn.execute(
                "SELECT COUNT(*) FROM access_keys WHERE user_id = ?", (user_id,)
            ).fetchone()
            if count >= MAX_KEYS_PER_USER:
                raise LimitExceeded(
                    f"Cannot exceed quota for AccessKeysPerUser: {MAX_KEYS_PER_USER}"
                )
            conn.execute(
                "INSERT INTO access_keys (access_key, user_id, status, secret, created_us)"
                " VALUES (?, ?, ?, ?, ?)",
                (key.access_key, user_id, key.status.value, wrapped_secret, to_us(key.created)),
            )

        self._meta.writer.submit(work)

    def get_key(self, access_key: str) -> KeyRecord | None:
        row = (
            self._read()
            .execute(
                f"SELECT {_KEY}, k.secret, u.user_id, u.created_us, u.is_admin"
                " FROM access_keys k JOIN iam_users u ON k.user_id = u.user_id"
                " WHERE k.access_key = ?",
                (access_key,),
            )
            .fetchone()
        )
        if row is None:
            return None
        key = _key(row[:5])
        user = _user((row[1], row[2], row[6], row[7], row[8]))
        return KeyRecord(key=key, user=user, wrapped_secret=bytes(row[5]))

    def list_keys(self, account_id: str, user_name: str) -> list[AccessKey]:
        conn = self._read()
        user_id = _user_id(conn, account_id, user_name)
        rows = conn.execute(
            f"SELECT {_KEY} FROM access_keys k JOIN iam_users u ON k.user_id = u.user_id"
            " WHERE k.user_id = ? ORDER BY k.created_us, k.access_key",
            (user_id,),
        )
        return [_key(row) for row in rows]

    def set_key_status(self, account_id: str, access_key: str, status: KeyStatus) -> None:
        def work(conn: sqlite3.Connection) -> None:
            _key_in_tenant(conn, account_id, access_key)
            conn.execute(
                "UPDATE access_keys SET status = ? WHERE access_key = ?",
                (status.value, access_key),
            )

        self._meta.writer.submit(work)

    def delete_key(self, account_id: str, access_key: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            _key_in_tenant(conn, account_id, access_key)
            conn.execute("DELETE FROM access_keys WHERE access_key = ?", (access_key,))

        self._meta.writer.submit(work)

    # --- inline user policies -------------------------------------------------------------------
    def put_policy(self, account_id: str, user_name: str, name: str, document: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            user_id = _user_id(conn, account_id, user_name)
            conn.execute(
                "INSERT INTO user_policies (user_id, name, document) VALUES (?, ?, ?)"
                " ON CONFLICT (user_id, name) DO UPDATE SET document = excluded.document",
                (user_id, name, document),
            )

        self._meta.writer.submit(work)

    def get_policy(self, account_id: str, user_name: str, name: str) -> str | None:
        conn = self._read()
        user_id = _user_id(conn, account_id, user_name)
        row = conn.execute(
            "SELECT document FROM user_policies WHERE user_id = ? AND name = ?", (user_id, name)
        ).fetchone()
        return None if row is None else str(row[0])

    def list_policies(self, account_id: str, user_name: str) -> list[str]:
        conn = self._read()
        user_id = _user_id(conn, account_id, user_name)
        rows = conn.execute(
            "SELECT name FROM user_policies WHERE user_id = ? ORDER BY name", (user_id,)
        )
        return [str(row[0]) for row in rows]

    def delete_policy(self, account_id: str, user_name: str, name: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            user_id = _user_id(conn, account_id, user_name)
            cursor = conn.execute(
                "DELETE FROM user_policies WHERE user_id = ? AND name = ?", (user_id, name)
            )
            if cursor.rowcount == 0:
                raise NoSuchEntity(f"The user policy with name {name} cannot be found.")

        self._meta.writer.submit(work)

    def policies_of(self, user_id: str) -> Sequence[str]:
        rows = self._read().execute(
            "SELECT document FROM user_policies WHERE user_id = ? ORDER BY name", (user_id,)
        )
        return tuple(str(row[0]) for row in rows)

    # --- quotas and usage -----------------------------------------------------------------------
    def set_quota(self, account_id: str, quota: Quota) -> None:
        def work(conn: sqlite3.Connection) -> None:
            _require_tenant(conn, account_id)
            conn.execute(
                "INSERT INTO tenant_quotas (account_id, max_bytes, max_objects, max_buckets)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (account_id) DO UPDATE SET"
                " max_bytes = excluded.max_bytes, max_objects = excluded.max_objects,"
                " max_buckets = excluded.max_buckets",
                (account_id, quota.max_bytes, quota.max_objects, quota.max_buckets),
            )

        self._meta.writer.submit(work)

    def get_quota(self, account_id: str) -> Quota:
        row = (
            self._read()
            .execute(
                "SELECT max_bytes, max_objects, max_buckets FROM tenant_quotas"
                " WHERE account_id = ?",
                (account_id,),
            )
            .fetchone()
        )
        return Quota() if row is None else Quota(row[0], row[1], row[2])

    def usage(self, account_id: str) -> Usage:
        row = (
            self._read()
            .execute(
                "SELECT bytes, objects, buckets FROM account_usage WHERE account_id = ?",
                (account_id,),
            )
            .fetchone()
        )
        return Usage() if row is None else Usage(int(row[0]), int(row[1]), int(row[2]))


def _insert_user(conn: sqlite3.Connection, user: User) -> None:
    if conn.execute(
        "SELECT 1 FROM iam_users WHERE account_id = ? AND name_key = ?",
        (user.account_id, user.name.lower()),
    ).fetchone():
        raise EntityAlreadyExists(f"User with name {user.name} already exists.")
    conn.execute(
        "INSERT INTO iam_users (account_id, name_key, name, user_id, is_admin, created_us)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            user.account_id,
            user.name.lower(),
            user.name,
            user.user_id,
            int(user.is_admin),
            to_us(user.created),
        ),
    )


def _key_in_tenant(conn: sqlite3.Connection, account_id: str, access_key: str) -> None:
    row = conn.execute(
        "SELECT 1 FROM access_keys k JOIN iam_users u ON k.user_id = u.user_id"
        " WHERE k.access_key = ? AND u.account_id = ?",
        (access_key, account_id),
    ).fetchone()
    if row is None:
        raise NoSuchEntity(f"The Access Key with id {access_key} cannot be found.")
