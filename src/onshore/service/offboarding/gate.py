"""The write gate: no new data or state for a tenant that is being offboarded.

During the notice period (and while the deletion runs) the tenant may read and export only:

* **S3** (:meth:`OffboardingGate.check_write`): a write — any operation in
  :data:`onshore.s3api.routing.WRITES` — is refused with 403 ``AccountProblem`` when the
  caller's account, or the owner of the bucket written to, is being offboarded. Reads, listings
  and deletes are not refused: the tenant exports (and may clean up) its data.
* **IAM and KMS** (:meth:`OffboardingGate.check_account`): every state-changing call of the
  account (creating users, keys, policies, KMS keys and aliases; KMS ``Encrypt`` and
  ``GenerateDataKey``, which make new ciphertext) is refused with the same code and message in
  the protocol's own error shape; ``Get*``, ``List*``, ``Describe*`` and KMS ``Decrypt`` stay
  allowed.

The message says until when reads remain available.

The hot path is an in-memory check: the accounts being offboarded (normally none) are loaded
from the database at most once per ``ttl`` seconds per process, so a request made through
another process takes effect here within that delay (``clear()`` drops the cache at once in
this process).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from onshore.domain.errors import AccountProblem
from onshore.service.blocking import Blocking
from onshore.storage.sqlite import SqliteMetadataStore
from onshore.storage.sqlite import offboarding as sql


class _HasOwner(Protocol):
    @property
    def owner(self) -> str: ...


OwnerLookup = Callable[[str], Awaitable[_HasOwner | None]]

#: account id -> when reads stop being available (the end of the notice period)
Entries = dict[str, datetime]


class OffboardingGate:
    def __init__(self, meta: SqliteMetadataStore, blocking: Blocking, *, ttl: float) -> None:
        self.meta = meta
        self.blocking = blocking
        self.ttl = ttl
        self._entries: Entries = {}
        self._expires = 0.0

    def clear(self) -> None:
        self._expires = 0.0

    def load(self) -> Entries:
        """The accounts in notice or being deleted (blocking: a worker thread calls this)."""
        entries: Entries = {}
        for row in sql.all_rows(self.meta.read_connection()):
            if row.state in ("notice", "executing"):
                requested = datetime.fromtimestamp(row.requested_us / 1_000_000, UTC)
                entries[row.account_id] = requested + timedelta(days=row.notice_days)
        return entries

    async def entries(self) -> Entries:
        now = time.monotonic()
        if now >= self._expires:
            self._entries = await self.blocking.batched(self.load)
            self._expires = now + self.ttl
        return self._entries

    async def check_account(self, account_id: str) -> None:
        """Raise AccountProblem if ``account_id`` is being offboarded (its IAM and KMS writes)."""
        entries = await self.entries()
        if account_id in entries:
            raise _refusal(entries[account_id])

    async def check_write(self, account_id: str, bucket: str | None, owner: OwnerLookup) -> None:
        """Raise AccountProblem if this write would add data for an account being offboarded."""
        entries = await self.entries()
        if not entries:
            return
        if account_id in entries:
            raise _refusal(entries[account_id])
        if bucket:
            found = await owner(bucket)
            if found is not None and found.owner in entries:
                raise _refusal(entries[found.owner])


def _refusal(until: datetime) -> AccountProblem:
    when = until.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return AccountProblem(
        "The account is being offboarded: new writes are refused. Reads, listings and "
        f"exports remain available until {when}, when its data is deleted."
    )
