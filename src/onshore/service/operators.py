"""Operator accounts and their three separate roles.

A regulator certifying an operated region (China's MLPS 2.0 "three officers", SecNumCloud's
separation of duties) asks that no single administrator can both run the platform, change who
may access what, and read the record of what happened. onshore's admin API therefore knows
three roles:

* **system** administers the deployment: tenants, their users, quotas, offboarding;
* **security** administers access: access keys, user policies, keys of the KMS, approvals of
  support access;
* **audit** reads the audit trail, and nothing else.

Each admin endpoint requires exactly one role. Operator accounts are created on the server host
(``onshore operator create NAME --role ROLE``, which needs the data directory, so only whoever
runs the deployment can appoint administrators) and sign admin requests with their own access
key. The operator's root credentials are the bootstrap account: they hold all three roles,
unless ``separate_operator_roles`` is on, in which case root is a system administrator only and
the other two roles must be given to named operators.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from onshore.domain.iam import (
    EntityAlreadyExists,
    NoSuchEntity,
    ValidationError,
    new_access_key_id,
    new_secret_key,
)
from onshore.service.rootkey import KeyWrapper, UnwrapError
from onshore.service.snapshot import Snapshot
from onshore.storage.sqlite.codec import from_us, to_us
from onshore.storage.sqlite.store import SqliteMetadataStore


class Role(str, Enum):
    SYSTEM = "system"
    SECURITY = "security"
    AUDIT = "audit"


ALL_ROLES = frozenset(Role)


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    role: Role
    access_key: str
    created: datetime


def _check_name(name: str) -> None:
    if not (1 <= len(name) <= 64) or not all(c.isalnum() or c in "-_." for c in name):
        raise ValidationError("An operator name is 1 to 64 letters, digits, '-', '_' or '.'.")


class Operators:
    """Operator accounts in the metadata database, with a short-lived lookup cache (the admin
    API checks a key per request; other processes see a new or deleted operator within
    ``ttl`` seconds)."""

    def __init__(
        self,
        meta: SqliteMetadataStore,
        wrapper: KeyWrapper,
        *,
        ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._meta = meta
        self._wrapper = wrapper
        self._signers = Snapshot(self._read_signers, ttl=ttl, clock=clock)

    # --- administration (the ``onshore operator`` CLI) -------------------------------------------
    def create(self, name: str, role: Role) -> tuple[Operator, str]:
        """A new operator and its secret key (returned once, stored only wrapped)."""
        _check_name(name)
        access_key, secret = new_access_key_id(), new_secret_key()
        created = datetime.now(UTC)
        wrapped = self._wrapper.wrap(secret.encode(), context=access_key.encode())

        def work(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM operators WHERE name = ?", (name,)).fetchone():
                raise EntityAlreadyExists(f"An operator named {name} already exists.")
            conn.execute(
                "INSERT INTO operators (name, role, access_key, secret, created_us)"
                " VALUES (?, ?, ?, ?, ?)",
                (name, role.value, access_key, wrapped, to_us(created)),
            )

        self._meta.writer.submit(work)
        self.clear()
        return Operator(name, role, access_key, created), secret

    def list(self) -> list[Operator]:
        rows = self._meta.read_connection().execute(
            "SELECT name, role, access_key, created_us FROM operators ORDER BY name"
        )
        return [Operator(n, Role(r), ak, from_us(c)) for n, r, ak, c in rows]

    def delete(self, name: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            if conn.execute("DELETE FROM operators WHERE name = ?", (name,)).rowcount == 0:
                raise NoSuchEntity(f"No operator named {name}.")

        self._meta.writer.submit(work)
        self.clear()

    # --- lookups (the admin API) ----------------------------------------------------------------
    def clear(self) -> None:
        self._signers.clear()

    def _load(self) -> dict[str, tuple[Role, str, str]]:
        return self._signers.get()

    def _read_signers(self) -> dict[str, tuple[Role, str, str]]:
        """access key -> (role, secret, name), for every operator whose secret unwraps."""
        rows = self._meta.read_connection().execute(
            "SELECT role, access_key, secret, name FROM operators"
        )
        fresh: dict[str, tuple[Role, str, str]] = {}
        for role, access_key, wrapped, name in rows:
            try:
                secret = self._wrapper.unwrap(bytes(wrapped), context=access_key.encode())
            except UnwrapError:
                continue  # sealed by another root key: that operator cannot sign in
            fresh[access_key] = (Role(role), secret.decode(), name)
        return fresh

    def secret_for(self, access_key: str) -> str | None:
        found = self._load().get(access_key)
        return None if found is None else found[1]

    def role_of(self, access_key: str) -> Role | None:
        found = self._load().get(access_key)
        return None if found is None else found[0]

    def name_of(self, access_key: str) -> str | None:
        """The operator's name (for its audit records)."""
        found = self._load().get(access_key)
        return None if found is None else found[2]
