"""KMS key deletion and key-material rotation carried out, with an injected clock, against the
real SQLite store: the service's rotation operations and their errors, the ciphertext naming
its material (the old format still read), the key sweep (due deletions and automatic
rotations, audited, race-free across processes) and root key rotation re-sealing every
material."""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from onshore.service.audit.trail import AuditTrail
from onshore.service.kms import ciphertext
from onshore.service.kms.keys import (
    CONFLICT_WINDOW,
    ON_DEMAND_LIMIT,
    KmsError,
    KmsService,
    key_material_id,
    material_context,
)
from onshore.service.kms.rotation import rotate_root
from onshore.service.kms.sweep import INVOKED_BY, KeySweeper, trail_recorder
from onshore.service.rootkey import LocalRootKey, load_root_key
from onshore.storage.ports import KmsNotChanged
from onshore.storage.sqlite import SqliteMetadataStore
from onshore.storage.sqlite import audit as audit_sql
from onshore.storage.sqlite import offboarding as offboarding_sql
from onshore.storage.sqlite.schema import connect, migrate, migrations
from tests.licensing_kit import Clock

ACCOUNT = "111122223333"
OTHER = "444455556666"
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@dataclass
class Deployment:
    """A data directory with its root key, one store and KMS service per simulated process."""

    data_dir: Path
    clock: Clock = field(default_factory=lambda: Clock(T0))
    stores: list[SqliteMetadataStore] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = load_root_key(self.data_dir, environ={})
        self.kms = self.process()

    def process(self) -> KmsService:
        store = SqliteMetadataStore(self.data_dir / "metadata.db")
        self.stores.append(store)
        return KmsService(store, self.root, partition="onshore", region="local-1", clock=self.clock)

    @property
    def store(self) -> SqliteMetadataStore:
        return self.stores[0]

    def close(self) -> None:
        for store in self.stores:
            store.close()


@pytest.fixture
def dep(tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(tmp_path / "data")
    yield d
    d.close()


def kind(err: pytest.ExceptionInfo[KmsError]) -> str:
    return err.value.kind


def version_of(blob: bytes) -> int:
    return ciphertext.parse(blob).material_version


# --- the ciphertext ---------------------------------------------------------------------------
def test_version_1_blobs_written_before_rotation_existed_still_decrypt(dep: Deployment) -> None:
    key = dep.kms.create_key(ACCOUNT)
    material = dep.root.unwrap(key.wrapped, context=material_context(key.key_id, 1))
    context = {"purpose": "legacy"}
    nonce = secrets.token_bytes(12)
    aad = key.key_id.encode() + b"\0" + json.dumps(context, separators=(",", ":")).encode()
    legacy = bytes([1]) + key.key_id.encode() + nonce + AESGCM(material).encrypt(nonce, b"old", aad)
    assert dep.kms.decrypt(ACCOUNT, legacy, context)[1] == b"old"
    dep.kms.rotate_on_demand(ACCOUNT, key.key_id)
    assert dep.kms.decrypt(ACCOUNT, legacy, context)[1] == b"old"  # first material still opens
    with pytest.raises(KmsError) as err:
        dep.kms.decrypt(ACCOUNT, legacy, {"purpose": "other"})
    assert kind(err) == "InvalidCiphertextException"


def test_malformed_and_tampered_blobs_are_invalid_ciphertext(dep: Deployment) -> None:
    key = dep.kms.create_key(ACCOUNT)
    good = dep.kms.encrypt(key, b"secret")
    assert good[0] == 2 and version_of(good) == 1
    tampered_version = good[:37] + (2).to_bytes(4, "big") + good[41:]
    claimed_zero = good[:37] + (0).to_bytes(4, "big") + good[41:]
    bad = [
        b"",
        b"\x02",
        b"\x03" + good[1:],
        good[:50],
        b"\x02" + "é".encode() * 18 + good[37:],
        claimed_zero,
        tampered_version,  # names a material the key does not have
        good[:-1] + bytes([good[-1] ^ 1]),
    ]
    for blob in bad:
        with pytest.raises(KmsError) as err:
            dep.kms.decrypt(ACCOUNT, blob)
        assert kind(err) == "InvalidCiphertextException", blob[:45]
    dep.kms.rotate_on_demand(ACCOUNT, key.key_id)
    with pytest.raises(KmsError) as err:  # version 2 exists now, but did not seal this blob
        dep.kms.decrypt(ACCOUNT, tampered_version)
    assert kind(err) == "InvalidCiphertextException"


# --- rotation ---------------------------------------------------------------------------------
def test_on_demand_rotation_keeps_every_ciphertext_readable(dep: Deployment) -> None:
    key = dep.kms.create_key(ACCOUNT)
    blobs = [dep.kms.encrypt(key, b"v1", {"n": "1"})]
    for n in (2, 3):
        dep.clock.advance(days=1)
        dep.kms.rotate_on_demand(ACCOUNT, key.key_id)
        key = dep.kms.resolve(ACCOUNT, key.key_id)
        assert key.material_version == n
        blobs.append(dep.kms.encrypt(key, f"v{n}".encode(), {"n": str(n)}))
    assert [version_of(b) for b in blobs] == [1, 2, 3]
    for n, blob in enumerate(blobs, 1):
        assert dep.kms.decrypt(ACCOUNT, blob, {"n": str(n)})[1] == f"v{n}".encode()
    plain, sealed = dep.kms.generate_data_key(key)
    assert version_of(sealed) == 3 and dep.kms.decrypt(ACCOUNT, sealed)[1] == plain
    _, materials = dep.kms.rotations(ACCOUNT, key.key_id)
    assert [(m.version, m.rotation_type, m.rotated) for m in materials] == [
        (2, "ON_DEMAND", T0 + timedelta(days=1)),
        (3, "ON_DEMAND", T0 + timedelta(days=2)),
    ]
    assert key_material_id(key.key_id, 2) != key_material_id(key.key_id, 3)
    assert len(key_material_id(key.key_id, 2)) == 64


def test_rotation_errors(dep: Deployment) -> None:
    key = dep.kms.create_key(ACCOUNT)
    dep.kms.create_alias(ACCOUNT, "alias/rot", key.key_id)
    with pytest.raises(KmsError) as err:  # rotation operations take a key id or ARN only
        dep.kms.rotate_on_demand(ACCOUNT, "alias/rot")
    assert kind(err) == "NotFoundException"
    with pytest.raises(KmsError) as err:
        dep.kms.rotate_on_demand(OTHER, key.key_id)
    assert kind(err) == "NotFoundException"
    for days in (0, 89, 2561, -1):
        with pytest.raises(KmsError) as err:
            dep.kms.enable_rotation(ACCOUNT, key.key_id, days)
        assert kind(err) == "ValidationException"
    dep.kms.set_enabled(ACCOUNT, key.key_id, False)
    calls: list[Callable[[], object]] = [
        lambda: dep.kms.rotate_on_demand(ACCOUNT, key.key_id),
        lambda: dep.kms.enable_rotation(ACCOUNT, key.key_id),
        lambda: dep.kms.disable_rotation(ACCOUNT, key.key_id),
    ]
    for call in calls:
        with pytest.raises(KmsError) as err:
            call()
        assert kind(err) == "DisabledException"
    dep.kms.set_enabled(ACCOUNT, key.key_id, True)
    dep.kms.schedule_deletion(ACCOUNT, key.key_id, 7)
    with pytest.raises(KmsError) as err:
        dep.kms.rotate_on_demand(ACCOUNT, key.key_id)
    assert kind(err) == "KMSInvalidStateException"
    assert dep.kms.resolve(ACCOUNT, key.key_id).material_version == 1


def test_on_demand_limit_and_conflict_with_a_scheduled_rotation(dep: Deployment) -> None:
    key = dep.kms.create_key(ACCOUNT)
    for _ in range(ON_DEMAND_LIMIT):
        dep.kms.rotate_on_demand(ACCOUNT, key.key_id)
    with pytest.raises(KmsError) as err:
        dep.kms.rotate_on_demand(ACCOUNT, key.key_id)
    assert kind(err) == "LimitExceededException"
    assert dep.kms.resolve(ACCOUNT, key.key_id).material_version == ON_DEMAND_LIMIT + 1

    other = dep.kms.create_key(ACCOUNT)
    dep.kms.enable_rotation(ACCOUNT, other.key_id, 90)
    dep.clock.advance(days=90)
    dep.clock.now -= CONFLICT_WINDOW
    with pytest.raises(KmsError) as err:
        dep.kms.rotate_on_demand(ACCOUNT, other.key_id)
    assert kind(err) == "ConflictException"
    dep.clock.now -= timedelta(seconds=1)
    dep.kms.rotate_on_demand(ACCOUNT, other.key_id)  # on-demand leaves the schedule alone
    status = dep.kms.rotation_status(ACCOUNT, other.key_id)
    assert status.next_rotation == T0 + timedelta(days=90)


def test_rotation_settings(dep: Deployment) -> None:
    key = dep.kms.create_key(ACCOUNT)
    status = dep.kms.rotation_status(ACCOUNT, key.key_id)
    assert not dep.kms.rotation_enabled(status) and status.next_rotation is None
    dep.kms.enable_rotation(ACCOUNT, key.key_id)
    status = dep.kms.rotation_status(ACCOUNT, key.key_id)
    assert status.rotation_period_days == 365
    assert status.next_rotation == T0 + timedelta(days=365)
    # A new period counts from the same start (the enable date, or the last rotation).
    dep.clock.advance(days=10)
    dep.kms.enable_rotation(ACCOUNT, key.key_id, 100)
    status = dep.kms.rotation_status(ACCOUNT, key.key_id)
    assert (status.rotation_period_days, status.next_rotation) == (100, T0 + timedelta(days=100))
    # Pending deletion reads as off; cancelling restores it.
    dep.kms.schedule_deletion(ACCOUNT, key.key_id, 30)
    assert not dep.kms.rotation_enabled(dep.kms.rotation_status(ACCOUNT, key.key_id))
    dep.kms.cancel_deletion(ACCOUNT, key.key_id)
    assert dep.kms.rotation_enabled(dep.kms.rotation_status(ACCOUNT, key.key_id))
    dep.kms.set_enabled(ACCOUNT, key.key_id, True)
    dep.kms.disable_rotation(ACCOUNT, key.key_id)
    status = dep.kms.rotation_status(ACCOUNT, key.key_id)
    assert not status.rotation_enabled and status.rotation_period_days is None
    assert status.next_rotation is None
    # Re-enabling starts a fresh schedule from now.
    dep.kms.enable_rotation(ACCOUNT, key.key_id, 90)
    status = dep.kms.rotation_status(ACCOUNT, key.key_id)
    assert status.next_rotation == dep.clock.now + timedelta(days=90)


# --- the sweep --------------------------------------------------------------------------------
class Records:
    """A real audit trail on the deployment's store, and its records read back."""

    def __init__(self, dep: Deployment) -> None:
        self.dep = dep
        self.trail = AuditTrail(
            dep.store.writer,
            LocalRootKey(bytes(range(32))),
            partition="onshore",
            region="local-1",
            flush_interval=3600,
        )

    def named(self, name: str) -> list[dict[str, Any]]:
        self.trail.flush()
        conn = sqlite3.connect(self.dep.data_dir / "metadata.db")
        try:
            head = conn.execute("SELECT MAX(last_seq) FROM audit_blocks").fetchone()[0] or 0
            events = [json.loads(stored.event) for stored in audit_sql.events(conn, 1, head)]
        finally:
            conn.close()
        return [e for e in events if e["eventName"] == name]

    def close(self) -> None:
        self.trail.close()


def test_automatic_rotation_when_due(dep: Deployment) -> None:
    records = Records(dep)
    sweeper = KeySweeper(dep.kms, recorder=trail_recorder(records.trail))
    key = dep.kms.create_key(ACCOUNT)
    dep.kms.enable_rotation(ACCOUNT, key.key_id, 90)
    before = dep.kms.encrypt(dep.kms.resolve(ACCOUNT, key.key_id), b"before")
    dep.clock.advance(days=90, seconds=-1)
    assert sweeper.sweep().rotated == ()
    dep.clock.advance(seconds=1)
    assert sweeper.sweep().rotated == (dep.kms.arn(key),)
    assert sweeper.sweep().rotated == ()  # done: the next one is a period later
    key = dep.kms.resolve(ACCOUNT, key.key_id)
    assert key.material_version == 2
    assert key.next_rotation == T0 + timedelta(days=180)
    after = dep.kms.encrypt(key, b"after")
    assert version_of(after) == 2
    assert dep.kms.decrypt(ACCOUNT, before)[1] == b"before"
    assert dep.kms.decrypt(ACCOUNT, after)[1] == b"after"
    _, materials = dep.kms.rotations(ACCOUNT, key.key_id)
    assert [(m.rotation_type, m.rotated) for m in materials] == [
        ("AUTOMATIC", T0 + timedelta(days=90))
    ]
    (record,) = records.named("RotateKey")
    assert record["eventType"] == "AwsServiceEvent"
    assert record["eventSource"] == "kms.onshore"
    assert record["userIdentity"]["invokedBy"] == INVOKED_BY
    assert record["recipientAccountId"] == ACCOUNT
    details = record["additionalEventData"]
    assert details["keyId"] == dep.kms.arn(key)
    assert details["rotationType"] == "AUTOMATIC"
    assert details["currentKeyMaterialId"] == key_material_id(key.key_id, 2)
    records.close()


def test_disabled_keys_rotate_when_enabled_again(dep: Deployment) -> None:
    sweeper = KeySweeper(dep.kms)
    key = dep.kms.create_key(ACCOUNT)
    dep.kms.enable_rotation(ACCOUNT, key.key_id, 90)
    dep.kms.set_enabled(ACCOUNT, key.key_id, False)
    dep.clock.advance(days=400)
    assert sweeper.sweep().rotated == ()
    dep.kms.set_enabled(ACCOUNT, key.key_id, True)
    assert sweeper.sweep().rotated == (dep.kms.arn(key),)
    key = dep.kms.resolve(ACCOUNT, key.key_id)
    # Overdue by more than a period: the next one is a period from now, not from the old date.
    assert key.next_rotation == dep.clock.now + timedelta(days=90)
    assert sweeper.sweep().rotated == ()
    # Pending deletion: not rotated either.
    dep.clock.advance(days=91)
    dep.kms.schedule_deletion(ACCOUNT, key.key_id, 30)
    assert sweeper.sweep().rotated == ()


def test_deletion_at_its_date(dep: Deployment) -> None:
    records = Records(dep)
    sweeper = KeySweeper(dep.kms, recorder=trail_recorder(records.trail))
    key = dep.kms.create_key(ACCOUNT)
    dep.kms.create_alias(ACCOUNT, "alias/doomed", key.key_id)
    dep.kms.rotate_on_demand(ACCOUNT, key.key_id)
    sealed = dep.kms.encrypt(dep.kms.resolve(ACCOUNT, key.key_id), b"data key")
    kept = dep.kms.create_key(ACCOUNT)
    dep.kms.schedule_deletion(ACCOUNT, key.key_id, 7)
    dep.kms.schedule_deletion(ACCOUNT, kept.key_id, 7)
    dep.clock.advance(days=6)
    dep.kms.cancel_deletion(ACCOUNT, kept.key_id)  # before the date: kept
    dep.clock.advance(days=1, seconds=-1)
    assert sweeper.sweep().deleted == ()
    dep.clock.advance(seconds=1)
    assert sweeper.sweep().deleted == (dep.kms.arn(key),)
    assert sweeper.sweep().deleted == ()

    for ref in (key.key_id, "alias/doomed"):
        with pytest.raises(KmsError) as err:
            dep.kms.resolve(ACCOUNT, ref)
        assert kind(err) == "NotFoundException"
    with pytest.raises(KmsError) as err:
        dep.kms.decrypt(ACCOUNT, sealed)
    assert kind(err) == "NotFoundException"
    assert dep.kms.list_aliases(ACCOUNT) == []
    assert [k.key_id for k in dep.kms.list_keys(ACCOUNT)] == [kept.key_id]
    assert dep.store.list_kms_materials(key.key_id) == []
    conn = sqlite3.connect(dep.data_dir / "metadata.db")
    try:  # the sealed material is gone from the database, not just unreferenced
        for table in ("kms_keys", "kms_key_materials", "kms_aliases"):
            (count,) = conn.execute(
                f"SELECT COUNT(*) FROM {table} WHERE key_id = ?", (key.key_id,)
            ).fetchone()
            assert count == 0, table
    finally:
        conn.close()
    assert dep.kms.resolve(ACCOUNT, kept.key_id).state == "Disabled"

    (record,) = records.named("DeleteKey")
    assert record["eventType"] == "AwsServiceEvent" and record["readOnly"] is False
    assert record["userIdentity"] == {  # the service acted, for the key's account
        "accountId": ACCOUNT,
        "invokedBy": INVOKED_BY,
        "principalId": ACCOUNT,
        "type": "AWSService",
    }
    assert record["additionalEventData"]["keyId"] == dep.kms.arn(key)
    assert record["eventTime"].startswith("2026-03-08T12:00:00")
    records.close()


def test_two_processes_sweeping_at_once_act_once(dep: Deployment) -> None:
    records = Records(dep)
    second = dep.process()  # another server process on the same database
    sweepers = [
        KeySweeper(dep.kms, recorder=trail_recorder(records.trail)),
        KeySweeper(second, recorder=trail_recorder(records.trail)),
    ]
    doomed = [dep.kms.create_key(ACCOUNT) for _ in range(3)]
    rotating = [dep.kms.create_key(ACCOUNT) for _ in range(3)]
    for key in doomed:
        dep.kms.schedule_deletion(ACCOUNT, key.key_id, 7)
    for key in rotating:
        dep.kms.enable_rotation(ACCOUNT, key.key_id, 90)
    dep.clock.advance(days=100)
    # Both read the same due lists before either acts: the second finds nothing left to do.
    due = [dep.store.due_kms_deletions(dep.clock()), dep.store.due_kms_rotations(dep.clock())]
    assert [len(d) for d in due] == [3, 3]
    results = [sweeper.sweep() for sweeper in sweepers]
    assert len(results[0].deleted) == 3 and len(results[0].rotated) == 3
    assert results[1].deleted == () and results[1].rotated == ()
    # The losing side of a race: stale key rows (the state read before the winner acted).
    for key in due[0]:
        with pytest.raises(KmsNotChanged, match=key.key_id):
            second.delete_due(key.key_id)
    for key in due[1]:
        with pytest.raises(KmsNotChanged, match=key.key_id):
            second.rotate_due(key)
    for key in rotating:
        assert dep.kms.resolve(ACCOUNT, key.key_id).material_version == 2
    assert len(records.named("DeleteKey")) == 3
    assert len(records.named("RotateKey")) == 3
    records.close()


def test_root_rotation_reseals_every_material(dep: Deployment) -> None:
    key = dep.kms.create_key(ACCOUNT)
    blobs = [dep.kms.encrypt(key, b"first")]
    for _ in range(2):
        dep.kms.rotate_on_demand(ACCOUNT, key.key_id)
        blobs.append(dep.kms.encrypt(dep.kms.resolve(ACCOUNT, key.key_id), b"later"))
    old = dep.root.fingerprint
    result = rotate_root(dep.data_dir, dep.store, environ={})
    assert result.old_fingerprint == old and result.rewrapped >= 3
    new_root = load_root_key(dep.data_dir, environ={})
    assert new_root.fingerprint != old
    stored = dep.store.get_kms_key(key.key_id)
    assert stored is not None and stored.root_fingerprint == new_root.fingerprint
    materials = dep.store.list_kms_materials(key.key_id)
    assert [m.root_fingerprint for m in materials] == [new_root.fingerprint] * 2
    fresh = KmsService(dep.store, new_root, partition="onshore", region="local-1")
    assert [fresh.decrypt(ACCOUNT, b)[1] for b in blobs] == [b"first", b"later", b"later"]
    again = rotate_root(dep.data_dir, dep.store, environ={})  # a rerun re-seals everything again
    assert again.rewrapped >= 3


def test_offboarding_takes_the_materials_with_the_keys(dep: Deployment) -> None:
    """Offboarding deletes key rows (and knows nothing of materials): the foreign key's cascade
    erases the materials with them, so no sealed material outlives its tenant."""
    keys = [dep.kms.create_key(ACCOUNT) for _ in range(2)]
    for key in keys:
        dep.kms.rotate_on_demand(ACCOUNT, key.key_id)
    assert len(dep.store.all_kms_materials()) == 2
    dep.store.writer.submit(lambda conn: offboarding_sql.delete_kms_key(conn, keys[0].key_id))
    assert [m.key_id for m in dep.store.all_kms_materials()] == [keys[1].key_id]
    dep.store.writer.submit(  # what the identities step runs for the whole account
        lambda conn: conn.execute("DELETE FROM kms_keys WHERE account_id = ?", (ACCOUNT,))
    )
    assert dep.store.all_kms_materials() == []


def test_migration_schedules_keys_enabled_before_it(tmp_path: Path) -> None:
    path = str(tmp_path / "metadata.db")
    conn = connect(path, writer=True)
    before = [m for m in migrations() if m.version < 11]
    migrate(conn, before)
    conn.execute(
        "INSERT INTO kms_keys (key_id, account_id, description, state, created_us, wrapped,"
        " root_fingerprint, rotation_enabled) VALUES ('k1', ?, '', 'Enabled', 0, x'00', 'f', 1),"
        " ('k2', ?, '', 'Enabled', 0, x'00', 'f', 0)",
        (ACCOUNT, ACCOUNT),
    )
    conn.close()
    store = SqliteMetadataStore(path)
    try:
        on, off = store.get_kms_key("k1"), store.get_kms_key("k2")
        assert on is not None and off is not None
        assert on.material_version == 1 and on.rotation_period_days == 365
        assert on.next_rotation is not None
        expected = datetime.now(UTC) + timedelta(days=365)
        assert abs((on.next_rotation - expected).total_seconds()) < 60
        assert off.rotation_period_days is None and off.next_rotation is None
    finally:
        store.close()
