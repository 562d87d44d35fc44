"""The offboarding life cycle: request, cancel, status, execute (see the package docstring).

All methods block (SQLite, file deletions, signing): call them from worker threads.

**Execution order and resumption.** ``execute`` runs these steps, recording the step reached
in the tenant's offboarding row after each, and adding what each deletion removed to the row's
counters in the same transaction as the deletion:

1. ``keys`` — record each key's fingerprint, *then* destroy it: the tenant key
   (:meth:`TenantKeys.destroy`, crypto-shredding) and the tenant's KMS keys. A run killed
   between the two records the same fingerprint again and destroys the key then.
2. ``buckets`` — one transaction per bucket deletes its versions, uploads, parts,
   configurations and the bucket itself; the blobs no row names any more are then deleted from
   disk. A run killed in between leaves unreferenced blobs, which the start-up orphan sweep
   (:mod:`onshore.service.maintenance`) deletes before the server accepts requests again.
3. ``identities`` — users, access keys, inline policies, quota and usage counters, KMS
   aliases. The tenant row stays (the tombstone: the account id is never reused).
4. ``certificate`` — in one transaction: read the audit chain head, build and sign the
   certificate, mark the tenant OFFBOARDED.

Running ``execute`` again on an OFFBOARDED tenant returns its certificate; on an EXECUTING one
it resumes where the last run stopped.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from onshore.domain.iam import NoSuchEntity, OffboardingError, Tenant, ValidationError
from onshore.service import faults
from onshore.service.audit.integrity import AuditKey
from onshore.service.kms.keys import material_context
from onshore.service.kms.tenant_keys import TenantKeys
from onshore.service.offboarding import certificate
from onshore.service.offboarding.models import OffboardingState, Status
from onshore.service.rootkey import KeyWrapper
from onshore.storage.filesystem import FilesystemBlobStore
from onshore.storage.sqlite import SqliteMetadataStore
from onshore.storage.sqlite import audit as audit_sql
from onshore.storage.sqlite import offboarding as sql
from onshore.storage.sqlite.codec import to_us
from onshore.storage.sqlite.iam import SqliteIamStore

#: Longest notice period accepted (ten years).
MAX_NOTICE_DAYS = 3650


class NoticePeriodNotOver(OffboardingError):
    code = "NoticePeriodNotOver"


@dataclass(frozen=True, slots=True)
class DeploymentFacts:
    """What the certificate says about where the deletion happened."""

    partition: str
    region: str
    jurisdiction: str
    audit: bool
    audit_hash: str


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(us: int | None) -> str | None:
    if us is None:
        return None
    return datetime.fromtimestamp(us / 1_000_000, UTC).isoformat().replace("+00:00", "Z")


class Offboarding:
    def __init__(
        self,
        meta: SqliteMetadataStore,
        blobs: FilesystemBlobStore,
        iam_store: SqliteIamStore,
        tenant_keys: TenantKeys,
        root: KeyWrapper,
        audit_key: Callable[[], AuditKey],
        deployment: DeploymentFacts,
        *,
        default_notice_days: int = 21,
        clock: Callable[[], datetime] = _now,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.meta = meta
        self.blobs = blobs
        self.iam_store = iam_store
        self.tenant_keys = tenant_keys
        self.root = root
        self._audit_key = audit_key
        self.deployment = deployment
        self.default_notice_days = default_notice_days
        self.clock = clock
        self.on_change = on_change
        self._running = threading.Lock()

    # --- queries --------------------------------------------------------------------------------
    def tenant(self, ref: str) -> Tenant:
        found = self.iam_store.get_tenant(ref)
        if found is None:
            raise NoSuchEntity(f"The tenant {ref} does not exist.")
        return found

    def status(self, ref: str) -> Status:
        tenant = self.tenant(ref)
        row = sql.get(self.meta.read_connection(), tenant.account_id)
        if row is None:
            return Status(tenant.account_id, tenant.name, OffboardingState.ACTIVE)
        return Status.of(row)

    # --- notice ---------------------------------------------------------------------------------
    def request(self, ref: str, notice_days: int | None = None) -> Status:
        """Start the notice period (writes refused from now on). Asking again while in notice
        is refused: cancel first to change the period."""
        days = self.default_notice_days if notice_days is None else notice_days
        if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= MAX_NOTICE_DAYS:
            raise ValidationError(
                f"'notice_days' must be a whole number of days from 0 to {MAX_NOTICE_DAYS}."
            )
        tenant = self.tenant(ref)
        now_us = to_us(self.clock())

        def job(conn: sqlite3.Connection) -> tuple[bool, sql.OffboardingRow]:
            existing = sql.get(conn, tenant.account_id)
            if existing is not None:
                return False, existing
            return True, sql.insert(conn, tenant.account_id, tenant.name, now_us, days)

        created, row = self.meta.writer.submit(job)
        if not created:
            raise OffboardingError(
                f"The tenant {tenant.name} is already {row.state} (offboarding requested "
                f"{_iso(row.requested_us)})."
            )
        self.on_change()
        return Status.of(row)

    def cancel(self, ref: str) -> Status:
        """Back to normal; only during the notice period (nothing has been deleted yet)."""
        tenant = self.tenant(ref)
        if not self.meta.writer.submit(lambda c: sql.delete_notice(c, tenant.account_id)):
            current = self.status(ref)
            raise OffboardingError(
                f"The tenant {tenant.name} is {current.state.value}: only an offboarding in its "
                "notice period can be cancelled."
            )
        self.on_change()
        return Status(tenant.account_id, tenant.name, OffboardingState.ACTIVE)

    # --- execution ------------------------------------------------------------------------------
    def execute(self, ref: str, *, force: bool = False) -> Status:
        """Delete everything of the tenant and return its final status with the certificate.
        Before the notice period ends this is refused unless ``force``."""
        tenant = self.tenant(ref)
        with self._running:  # one run at a time in this process
            row = sql.get(self.meta.read_connection(), tenant.account_id)
            if row is None:
                raise OffboardingError(
                    f"No offboarding was requested for the tenant {tenant.name}: request it "
                    "first (the notice period starts then)."
                )
            if row.state == OffboardingState.NOTICE.value:
                now = self.clock()
                ends = Status.of(row).notice_ends
                assert ends is not None
                if now < ends and not force:
                    raise NoticePeriodNotOver(
                        f"The notice period of the tenant {tenant.name} ends at "
                        f"{ends.isoformat()}; execution is refused before then (force it "
                        "explicitly to cut the notice short)."
                    )
                started_us = to_us(now)
                row = self.meta.writer.submit(
                    lambda c: sql.start(c, tenant.account_id, started_us, force and now < ends)
                )
                self.on_change()
            if row.state == OffboardingState.EXECUTING.value:
                self._run(tenant, row.step)
            return self.status(tenant.account_id)

    def _run(self, tenant: Tenant, step: str) -> None:
        account = tenant.account_id
        steps = ("keys", "buckets", "identities", "certificate")
        first = steps.index(step) if step in steps else 0
        for name in steps[first:]:
            getattr(self, f"_step_{name}")(account)
            if name != "certificate":
                following = steps[steps.index(name) + 1]
                self._set_step(account, following)

    def _set_step(self, account: str, step: str) -> None:
        def job(conn: sqlite3.Connection) -> None:
            sql.set_step(conn, account, step)

        self.meta.writer.submit(job)

    def _step_keys(self, account: str) -> None:
        stored = self.meta.get_tenant_key(account)
        if stored is not None:
            fingerprint = f"tenant:{self.tenant_keys.fingerprint(stored)}"
            self.meta.writer.submit(lambda c: sql.add_fingerprint(c, account, fingerprint))
            faults.point("offboard.key_fingerprint_recorded")
            self.tenant_keys.destroy(account)
        for key_id in sql.kms_key_ids(self.meta.read_connection(), account):
            kms_key = self.meta.get_kms_key(key_id)
            if kms_key is None:
                continue
            # Every key material the key ever had (version 1 and each rotation's) is named.
            sealed = [(1, kms_key.wrapped)] + [
                (m.version, m.wrapped) for m in self.meta.list_kms_materials(key_id)
            ]
            fingerprints = []
            for version, wrapped in sealed:
                material = self.root.unwrap(wrapped, context=material_context(key_id, version))
                digest = hashlib.sha256(b"onshore kms key fingerprint\0" + material).hexdigest()
                suffix = "" if version == 1 else f":v{version}"
                fingerprints.append(f"kms:{key_id}{suffix}:{digest[:32]}")

            def destroy(
                c: sqlite3.Connection, k: str = key_id, names: tuple[str, ...] = tuple(fingerprints)
            ) -> None:
                for name in names:
                    sql.add_fingerprint(c, account, name)
                sql.delete_kms_key(c, k)

            self.meta.writer.submit(destroy)
        faults.point("offboard.keys_destroyed")

    def _step_buckets(self, account: str) -> None:
        for bucket_id, _name in sql.bucket_ids(self.meta.read_connection(), account):

            def purge(conn: sqlite3.Connection, b: int = bucket_id) -> tuple[str, ...]:
                return sql.purge_bucket(conn, account, b)

            freed = self.meta.writer.submit(purge)
            faults.point("offboard.bucket_deleted")
            self.blobs.delete(freed)
        self.on_change()

    def _step_identities(self, account: str) -> None:
        self.meta.writer.submit(lambda c: sql.purge_identities(c, account))
        self.on_change()

    def _step_certificate(self, account: str) -> None:
        key = self._audit_key()  # loaded (or created) before the transaction below
        executed_us = to_us(self.clock())
        facts = self.deployment

        def job(conn: sqlite3.Connection) -> None:
            row = sql.get(conn, account)
            assert row is not None
            if row.state == OffboardingState.OFFBOARDED.value:
                return  # another process's run finished first: keep its certificate
            head = None
            if facts.audit:
                seq, digest = audit_sql.head(conn)
                head = {"alg": facts.audit_hash, "seq": seq, "hash": digest.hex()}
            ends_us = row.requested_us + int(timedelta(days=row.notice_days).total_seconds()) * (
                1_000_000
            )
            text = certificate.sign(
                {
                    "tenant": {"account_id": row.account_id, "name": row.tenant_name},
                    "requested": _iso(row.requested_us),
                    "notice_days": row.notice_days,
                    "notice_ends": _iso(ends_us),
                    "execution_started": _iso(row.started_us),
                    "executed": _iso(executed_us),
                    "notice_cut_short": row.forced,
                    "deleted": dict(sorted(row.counts.items())),
                    "destroyed_keys": list(row.fingerprints),
                    "deployment": {
                        "partition": facts.partition,
                        "region": facts.region,
                        "jurisdiction": facts.jurisdiction,
                    },
                    "audit_chain_head": head,
                },
                key,
            )
            sql.finish(conn, account, executed_us, text)

        self.meta.writer.submit(job)
        self.on_change()
