"""Builds the offboarding service and the S3 write gate of a server process."""

from __future__ import annotations

import threading
from collections.abc import Callable

from onshore.config import Config
from onshore.service.audit.integrity import AuditKey
from onshore.service.audit.trail import load_key
from onshore.service.blocking import Blocking
from onshore.service.kms.tenant_keys import TenantKeys
from onshore.service.offboarding.gate import OffboardingGate
from onshore.service.offboarding.lifecycle import DeploymentFacts, Offboarding
from onshore.service.rootkey import KeyWrapper
from onshore.storage.filesystem import FilesystemBlobStore
from onshore.storage.sqlite import SqliteMetadataStore
from onshore.storage.sqlite.iam import SqliteIamStore


def offboarding_for(
    config: Config,
    meta: SqliteMetadataStore,
    blobs: FilesystemBlobStore,
    iam_store: SqliteIamStore,
    tenant_keys: TenantKeys,
    root: KeyWrapper,
    blocking: Blocking,
    on_change: Callable[[], None],
) -> tuple[Offboarding, OffboardingGate]:
    gate = OffboardingGate(meta, blocking, ttl=config.iam_cache_seconds)
    audit_key: list[AuditKey] = []
    lock = threading.Lock()

    def signing_key() -> AuditKey:
        """The deployment's audit key (the one ``onshore audit public-key`` prints), loaded
        once; created if the audit trail never ran."""
        with lock:
            if not audit_key:
                audit_key.append(load_key(meta.writer, root))
            return audit_key[0]

    def changed() -> None:
        gate.clear()
        on_change()

    service = Offboarding(
        meta,
        blobs,
        iam_store,
        tenant_keys,
        root,
        signing_key,
        DeploymentFacts(
            partition=config.partition,
            region=config.region,
            jurisdiction=config.jurisdiction or "",
            audit=config.audit,
            audit_hash=config.audit_hash,
        ),
        default_notice_days=config.offboarding_notice_days,
        on_change=changed,
    )
    return service, gate
