"""Support access for the licensor, approved by the operator (like Azure's Customer Lockbox).

By default the licensor has no access at all to a deployment. When it needs to look (to
diagnose a problem the operator reported), the flow is:

1. The licensor signs an **access request** (``onshore licensor access-request``): who asks, why,
   for how long (at most 8 hours), and the scope — ``diagnostics`` (the deployment's health and
   aggregate figures, no names) or ``admin-read`` with the named read-only admin operations it
   needs (listing tenants, reading a quota...). The request names the deployment's partition and
   must be decided within its validity (at most 7 days).
2. The operator's **security administrator** submits it to the admin API, where its signature is
   checked against the pinned licensor keys (``licensor_public_keys``), then **approves** or
   **denies** it (``onshore admin access approve|deny``).
3. An approval issues **time-boxed credentials** for the admin API only, valid for the requested
   duration and limited to the scope: they can never read object data (the S3 API does not know
   them), never reach a key, policy or audit endpoint, and never write. They stop working at
   expiry or when the security administrator **revokes** them, whichever comes first.
4. Every use is recorded (the access log and the audit trail name the access request's id).
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from onshore.domain.iam import (
    EntityAlreadyExists,
    NoSuchEntity,
    ValidationError,
    new_access_key_id,
    new_secret_key,
)
from onshore.service.licensing import license, signing
from onshore.service.rootkey import KeyWrapper, UnwrapError
from onshore.service.snapshot import Snapshot
from onshore.storage.sqlite.codec import from_us, to_us
from onshore.storage.sqlite.store import SqliteMetadataStore

FORMAT = "onshore-access-request/1"
MAX_HOURS = 8
MAX_VALIDITY = timedelta(days=7)
#: What each scope may call on the admin API (route handler names, all read-only, none of them
#: about keys, policies or the audit trail).
DIAGNOSTICS = frozenset({"support_diagnostics"})
ADMIN_READ = frozenset(
    {"support_diagnostics", "list_tenants", "get_tenant", "list_users", "get_user", "get_quota"}
)
_FIELDS = {
    "request_id",
    "licensor",
    "partition",
    "scope",
    "operations",
    "reason",
    "duration_hours",
    "requested_at",
    "valid_until",
}
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class AccessRequestProblem(ValidationError):
    """An access request that cannot be accepted; the message says why."""


@dataclass(frozen=True, slots=True)
class AccessRequest:
    request_id: str
    licensor: str
    partition: str
    scope: str
    operations: frozenset[str]
    reason: str
    duration: timedelta
    requested_at: datetime
    valid_until: datetime


@dataclass(frozen=True, slots=True)
class Record:
    request: AccessRequest
    state: str  # pending, approved, denied, revoked
    submitted: datetime
    decided_by: str | None
    decided: datetime | None
    expires: datetime | None
    access_key: str | None

    def status(self, now: datetime) -> str:
        if self.state == "approved" and self.expires is not None and now >= self.expires:
            return "expired"
        return self.state


@dataclass(frozen=True, slots=True)
class Grant:
    """What a support credential may do, right now."""

    request_id: str
    operations: frozenset[str]
    expires: datetime


def _time(value: object, name: str) -> datetime:
    try:
        return license.parse_time(value, name)
    except license.LicenseProblem as exc:
        raise AccessRequestProblem(str(exc)) from None


def parse_request(payload: dict[str, object]) -> AccessRequest:
    """Check a signed request's payload field by field (unknown or missing fields refused)."""
    if set(payload) != _FIELDS:
        extra, missing = set(payload) - _FIELDS, _FIELDS - set(payload)
        raise AccessRequestProblem(
            "access request fields: "
            + ", ".join([*(f"unknown {f}" for f in sorted(extra)),
                         *(f"missing {f}" for f in sorted(missing))])
        )  # fmt: skip
    request_id = payload["request_id"]
    if not isinstance(request_id, str) or not _ID.fullmatch(request_id):
        raise AccessRequestProblem("'request_id' must be 1-64 letters, digits, '.', '_', '-'")
    for name in ("licensor", "partition", "reason"):
        value = payload[name]
        if not isinstance(value, str) or not value.strip() or len(value) > 1000:
            raise AccessRequestProblem(f"'{name}' must be a non-empty string")
    scope = payload["scope"]
    operations = payload["operations"]
    if not isinstance(operations, list) or not all(isinstance(o, str) for o in operations):
        raise AccessRequestProblem("'operations' must be a list of admin operation names")
    if scope == "diagnostics":
        allowed = DIAGNOSTICS
    elif scope == "admin-read":
        unknown = set(operations) - ADMIN_READ
        if unknown or not operations:
            raise AccessRequestProblem(
                f"admin-read operations must be among {', '.join(sorted(ADMIN_READ))}"
                + (f" (not {', '.join(sorted(unknown))})" if unknown else "")
            )
        allowed = frozenset(operations)
    else:
        raise AccessRequestProblem("'scope' must be 'diagnostics' or 'admin-read'")
    hours = payload["duration_hours"]
    if not isinstance(hours, int) or isinstance(hours, bool) or not 1 <= hours <= MAX_HOURS:
        raise AccessRequestProblem(f"'duration_hours' must be 1 to {MAX_HOURS}")
    requested_at = _time(payload["requested_at"], "requested_at")
    valid_until = _time(payload["valid_until"], "valid_until")
    if not requested_at < valid_until <= requested_at + MAX_VALIDITY:
        raise AccessRequestProblem("'valid_until' must be after 'requested_at', by 7 days at most")
    return AccessRequest(
        request_id=request_id,
        licensor=str(payload["licensor"]),
        partition=str(payload["partition"]),
        scope=str(scope),
        operations=allowed,
        reason=str(payload["reason"]),
        duration=timedelta(hours=hours),
        requested_at=requested_at,
        valid_until=valid_until,
    )


def new_request(
    *,
    licensor: str,
    partition: str,
    scope: str,
    reason: str,
    hours: int,
    operations: Iterable[str] = (),
    now: datetime | None = None,
    valid_days: int = 2,
) -> dict[str, object]:
    """The payload of a new access request (the licensor signs it with :func:`signing.seal`)."""
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    payload: dict[str, object] = {
        "request_id": "ar-" + uuid.uuid4().hex[:16],
        "licensor": licensor,
        "partition": partition,
        "scope": scope,
        "operations": sorted(set(operations) | ({"support_diagnostics"} if scope else set())),
        "reason": reason,
        "duration_hours": hours,
        "requested_at": license.format_time(moment),
        "valid_until": license.format_time(moment + timedelta(days=valid_days)),
    }
    parse_request(payload)  # refuse to sign what a deployment would refuse
    return payload


class SupportAccess:
    """Access requests and the credentials approvals issue, in the metadata database."""

    def __init__(
        self,
        meta: SqliteMetadataStore,
        wrapper: KeyWrapper,
        trusted: tuple[Ed25519PublicKey, ...],
        *,
        partition: str,
        ttl: float = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._meta = meta
        self._wrapper = wrapper
        self._trusted = trusted
        self._partition = partition
        self._clock = clock
        self._grants = Snapshot(self._read_grants, ttl=ttl)

    # --- the security administrator's side ------------------------------------------------------
    def submit(self, document: str) -> Record:
        """Verify a signed request and record it as pending (idempotent for the same request)."""
        if not self._trusted:
            raise AccessRequestProblem(
                "no licensor public key is pinned (licensor_public_keys): support access is off"
            )
        try:
            opened = signing.open_envelope(document, FORMAT, self._trusted)
        except signing.SignatureProblem as exc:
            raise AccessRequestProblem(f"access request refused: {exc}") from None
        request = parse_request(opened.payload)
        if request.partition != self._partition:
            raise AccessRequestProblem(
                f"the request is for partition {request.partition!r}, this deployment is "
                f"{self._partition!r}"
            )
        now = self._clock()
        if now > request.valid_until:
            raise AccessRequestProblem("the request expired before it was submitted")

        def work(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "SELECT document FROM support_access WHERE request_id = ?", (request.request_id,)
            ).fetchone()
            if row is not None:
                if json.loads(row[0]) != json.loads(document):
                    raise EntityAlreadyExists(
                        f"another request with id {request.request_id} was already submitted"
                    )
                return
            conn.execute(
                "INSERT INTO support_access (request_id, document, scope, state, submitted_us)"
                " VALUES (?, ?, ?, 'pending', ?)",
                (
                    request.request_id,
                    document,
                    json.dumps({"kind": request.scope, "operations": sorted(request.operations)}),
                    to_us(now),
                ),
            )

        self._meta.writer.submit(work)
        return self.get(request.request_id)

    def approve(self, request_id: str, *, by: str) -> tuple[Record, str, str]:
        """Issue the time-boxed credentials: the record, the access key and its secret (shown
        once)."""
        record = self.get(request_id)
        now = self._clock()
        if record.state != "pending":
            raise AccessRequestProblem(f"request {request_id} is {record.state}, not pending")
        if now > record.request.valid_until:
            raise AccessRequestProblem(f"request {request_id} expired before it was approved")
        access_key, secret = new_access_key_id(), new_secret_key()
        wrapped = self._wrapper.wrap(secret.encode(), context=access_key.encode())
        expires = now + record.request.duration
        self._decide(
            request_id,
            "approved",
            by,
            now,
            "expires_us = ?, access_key = ?, secret = ?",
            (to_us(expires), access_key, wrapped),
        )
        return self.get(request_id), access_key, secret

    def deny(self, request_id: str, *, by: str) -> Record:
        self._decide(request_id, "denied", by, self._clock(), "", ())
        return self.get(request_id)

    def revoke(self, request_id: str, *, by: str) -> Record:
        """End an approved access now (its credentials stop working at once in this process,
        within the cache delay in others)."""
        now = self._clock()

        def work(conn: sqlite3.Connection) -> None:
            changed = conn.execute(
                "UPDATE support_access SET state = 'revoked', decided_by = ?, decided_us = ?,"
                " secret = NULL WHERE request_id = ? AND state = 'approved'",
                (by, to_us(now), request_id),
            ).rowcount
            if not changed:
                raise AccessRequestProblem(f"request {request_id} is not an approved access")

        self.get(request_id)
        self._meta.writer.submit(work)
        self.clear()
        return self.get(request_id)

    def _decide(
        self,
        request_id: str,
        state: str,
        by: str,
        now: datetime,
        extra: str,
        values: tuple[object, ...],
    ) -> None:
        sets = "state = ?, decided_by = ?, decided_us = ?" + (", " + extra if extra else "")

        def work(conn: sqlite3.Connection) -> None:
            changed = conn.execute(
                f"UPDATE support_access SET {sets} WHERE request_id = ? AND state = 'pending'",
                (state, by, to_us(now), *values, request_id),
            ).rowcount
            if not changed:
                raise AccessRequestProblem(f"request {request_id} is no longer pending")

        self._meta.writer.submit(work)
        self.clear()

    def get(self, request_id: str) -> Record:
        row = (
            self._meta.read_connection()
            .execute(
                "SELECT document, state, submitted_us, decided_by, decided_us, expires_us,"
                " access_key FROM support_access WHERE request_id = ?",
                (request_id,),
            )
            .fetchone()
        )
        if row is None:
            raise NoSuchEntity(f"No access request {request_id}.")
        return _record(row)

    def list(self) -> list[Record]:
        rows = self._meta.read_connection().execute(
            "SELECT document, state, submitted_us, decided_by, decided_us, expires_us,"
            " access_key FROM support_access ORDER BY submitted_us"
        )
        return [_record(row) for row in rows]

    # --- the admin API's lookups ----------------------------------------------------------------
    def clear(self) -> None:
        self._grants.clear()

    def _load(self) -> dict[str, tuple[str, Grant]]:
        return self._grants.get()

    def _read_grants(self) -> dict[str, tuple[str, Grant]]:
        """access key -> (secret, grant), for every approved access (expired ones too: the
        grant's expiry is checked on each use)."""
        rows = self._meta.read_connection().execute(
            "SELECT request_id, scope, expires_us, access_key, secret FROM support_access"
            " WHERE state = 'approved'"
        )
        fresh: dict[str, tuple[str, Grant]] = {}
        for request_id, scope, expires_us, access_key, wrapped in rows:
            try:
                secret = self._wrapper.unwrap(bytes(wrapped), context=access_key.encode())
            except UnwrapError:
                continue
            operations = frozenset(json.loads(scope)["operations"])
            grant = Grant(request_id, operations, from_us(expires_us))
            fresh[access_key] = (secret.decode(), grant)
        return fresh

    def secret_for(self, access_key: str) -> str | None:
        found = self._load().get(access_key)
        return None if found is None else found[0]

    def grant_for(self, access_key: str) -> Grant | None:
        """The credential's grant while it is valid; None once expired or revoked."""
        found = self._load().get(access_key)
        if found is None or self._clock() >= found[1].expires:
            return None
        return found[1]


def _record(row: tuple[str, str, int, str | None, int | None, int | None, str | None]) -> Record:
    document, state, submitted_us, decided_by, decided_us, expires_us, access_key = row
    payload, _ = signing.parse_envelope(document, FORMAT)
    return Record(
        request=parse_request(payload),
        state=state,
        submitted=from_us(submitted_us),
        decided_by=decided_by,
        decided=None if decided_us is None else from_us(decided_us),
        expires=None if expires_us is None else from_us(expires_us),
        access_key=access_key,
    )
