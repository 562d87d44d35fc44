"""The offboarding life cycle with an injected clock (the notice period is honoured without
``force``, and ends exactly when it should), the certificate's signature, and the write gate."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from onshore.domain.errors import AccountProblem
from onshore.domain.iam import Tenant, User, ValidationError
from onshore.domain.models import Bucket
from onshore.service.audit.integrity import AuditKey
from onshore.service.blocking import Blocking
from onshore.service.encryption.segments import CipherName
from onshore.service.kms.tenant_keys import TenantKeys
from onshore.service.offboarding import (
    CertificateError,
    Offboarding,
    OffboardingError,
    OffboardingGate,
    OffboardingState,
    verify_certificate,
)
from onshore.service.offboarding.certificate import sign
from onshore.service.offboarding.lifecycle import DeploymentFacts, NoticePeriodNotOver
from onshore.service.rootkey import LocalRootKey
from onshore.storage.filesystem import FilesystemBlobStore
from onshore.storage.sqlite import SqliteMetadataStore
from onshore.storage.sqlite.iam import SqliteIamStore

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ACCOUNT = "123456789012"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class World:
    def __init__(self, tmp: Path) -> None:
        self.meta = SqliteMetadataStore(tmp / "metadata.db")
        self.blobs = FilesystemBlobStore(tmp)
        self.iam = SqliteIamStore(self.meta)
        self.keys = TenantKeys(self.meta, LocalRootKey(os.urandom(32)), CipherName.AES_256_GCM)
        self.audit_key = AuditKey.generate()
        self.clock = Clock()
        self.changes = 0
        self.service = Offboarding(
            self.meta,
            self.blobs,
            self.iam,
            self.keys,
            LocalRootKey(os.urandom(32)),
            lambda: self.audit_key,
            DeploymentFacts("onshore-fr", "fr-par-1", "FR", audit=False, audit_hash="sha256"),
            clock=self.clock,
            on_change=self._changed,
        )
        self.iam.create_tenant(
            Tenant(ACCOUNT, "acme", T0), User(ACCOUNT, "admin", "AIDAADMIN", T0, is_admin=True)
        )

    def _changed(self) -> None:
        self.changes += 1


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.meta.close()


def test_the_notice_period_is_honoured_without_force(world: World) -> None:
    status = world.service.request("acme", 21)
    assert status.state is OffboardingState.NOTICE
    assert status.notice_ends == T0 + timedelta(days=21)
    world.clock.now = T0 + timedelta(days=21) - timedelta(seconds=1)
    with pytest.raises(NoticePeriodNotOver) as refused:
        world.service.execute("acme")
    assert "2026-01-26T09:00:00+00:00" in refused.value.message
    assert world.service.status(ACCOUNT).state is OffboardingState.NOTICE
    world.clock.now = T0 + timedelta(days=21)
    world.keys.get_or_create(ACCOUNT)
    done = world.service.execute("acme")
    assert done.state is OffboardingState.OFFBOARDED and not done.forced
    assert world.meta.get_tenant_key(ACCOUNT) is None
    assert done.certificate is not None
    facts = verify_certificate(done.certificate, world.audit_key.public).facts
    assert facts["notice_cut_short"] is False
    assert facts["executed"] == "2026-01-26T09:00:00Z"
    assert facts["deployment"] == {
        "partition": "onshore-fr",
        "region": "fr-par-1",
        "jurisdiction": "FR",
    }
    assert facts["audit_chain_head"] is None  # the audit trail is off here
    assert facts["deleted"] == {"access_keys": 0, "policies": 0, "users": 1}
    assert [f.split(":")[0] for f in facts["destroyed_keys"]] == ["tenant"]  # type: ignore[union-attr]
    assert world.iam.get_tenant(ACCOUNT) is not None  # the tombstone


def test_default_notice_and_forced_execution(world: World) -> None:
    assert world.service.request("acme").notice_days == 21
    world.meta.create_bucket(Bucket("gone-bucket", ACCOUNT, "fr-par-1", T0))
    world.clock.now = T0 + timedelta(days=2)
    done = world.service.execute(ACCOUNT, force=True)
    assert done.forced and done.counts is not None and done.counts["buckets"] == 1
    assert world.meta.get_bucket("gone-bucket") is None
    assert done.fingerprints == ()  # the tenant never wrote: it had no key


def test_cancel_and_conflicts(world: World) -> None:
    with pytest.raises(OffboardingError):
        world.service.execute("acme", force=True)  # nothing requested
    with pytest.raises(OffboardingError):
        world.service.cancel("acme")
    world.service.request("acme", 3)
    with pytest.raises(OffboardingError):
        world.service.request("acme", 3)
    assert world.service.cancel("acme").state is OffboardingState.ACTIVE
    assert world.service.status("acme").state is OffboardingState.ACTIVE
    for bad in (-1, 3651):
        with pytest.raises(ValidationError):
            world.service.request("acme", bad)
    assert world.changes == 2


def test_a_tenant_in_offboarding_or_offboarded_cannot_be_deleted(world: World) -> None:
    world.service.request("acme", 3)
    with pytest.raises(OffboardingError) as in_notice:
        world.iam.delete_tenant(ACCOUNT)
    assert in_notice.value.status == 409 and in_notice.value.code == "OffboardingConflict"
    assert "notice" in in_notice.value.message
    world.service.execute("acme", force=True)
    with pytest.raises(OffboardingError) as offboarded:
        world.iam.delete_tenant(ACCOUNT)
    assert "offboarded" in offboarded.value.message
    assert world.iam.get_tenant(ACCOUNT) is not None  # the tombstone stays


def test_a_tenant_whose_offboarding_was_cancelled_can_be_deleted(world: World) -> None:
    world.service.request("acme", 3)
    world.service.cancel("acme")
    world.iam.delete_tenant(ACCOUNT)
    assert world.iam.get_tenant(ACCOUNT) is None


def test_the_gate_refuses_writes_only_for_accounts_being_offboarded(world: World) -> None:
    blocking = Blocking(2)
    gate = OffboardingGate(world.meta, blocking, ttl=60)

    async def no_owner(bucket: str) -> None:
        return None

    async def run() -> None:
        await gate.check_write(ACCOUNT, None, no_owner)
        world.service.request("acme", 10)
        await gate.check_write(ACCOUNT, None, no_owner)  # cached: not seen yet
        gate.clear()
        with pytest.raises(AccountProblem) as refused:
            await gate.check_write(ACCOUNT, "b", no_owner)
        assert "2026-01-15T09:00:00Z" in refused.value.message
        await gate.check_write("999999999999", "b", no_owner)

    try:
        asyncio.run(run())
    finally:
        blocking.shutdown()


def test_the_gate_refuses_account_writes_during_notice_and_after_cancel(world: World) -> None:
    blocking = Blocking(2)
    gate = OffboardingGate(world.meta, blocking, ttl=0)

    async def run() -> None:
        await gate.check_account(ACCOUNT)
        world.service.request("acme", 10)
        with pytest.raises(AccountProblem) as refused:
            await gate.check_account(ACCOUNT)
        assert "2026-01-15T09:00:00Z" in refused.value.message
        await gate.check_account("999999999999")  # another account: unaffected
        world.service.cancel("acme")
        await gate.check_account(ACCOUNT)

    try:
        asyncio.run(run())
    finally:
        blocking.shutdown()


def test_certificate_signature_covers_every_value() -> None:
    key = AuditKey.generate()
    text = sign({"tenant": {"account_id": ACCOUNT, "name": "acme"}, "deleted": {"objects": 3}}, key)
    assert verify_certificate(text, key.public).facts["deleted"] == {"objects": 3}
    reformatted = json.dumps(json.loads(text))  # layout is not signed, values are
    verify_certificate(reformatted, key.public)
    document = json.loads(text)
    document["certificate"]["deleted"]["objects"] = 2
    with pytest.raises(CertificateError, match="altered"):
        verify_certificate(json.dumps(document), key.public)
    with pytest.raises(CertificateError, match="not by the given key"):
        verify_certificate(text, AuditKey.generate().public)
    for broken in ("[]", "{}", "nope", json.dumps({"certificate": {"kind": "x"}, "signature": {}})):
        with pytest.raises(CertificateError):
            verify_certificate(broken, key.public)
