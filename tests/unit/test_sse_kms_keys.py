"""SSE-KMS data keys at the service level, against the real SQLite store: the encryption
context they are bound to (the object's ARN and the client's pairs, stored with the object, no
other context opens them, objects sealed before contexts still open) and S3 Bucket Keys (one
KMS GenerateDataKey per bucket key lifetime, the bucket's ARN as context, the KMS key's state
checked on every use, cached or not)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from onshore.domain.errors import (
    InternalError,
    InvalidArgument,
    KmsDisabledException,
    KmsInvalidStateException,
    KmsNotFoundException,
)
from onshore.domain.models import Bucket, Encryption, KmsKey, SseMode
from onshore.service.blocking import Blocking
from onshore.service.encryption import context as contexts
from onshore.service.encryption.bucket_keys import BucketKeys
from onshore.service.encryption.defaults import BucketDefaults, DefaultEncryption
from onshore.service.encryption.keys import DataKey, ObjectKeys, SseRequest
from onshore.service.encryption.segments import CipherName, IntegrityError
from onshore.service.kms.keys import KmsError, KmsService
from onshore.service.kms.tenant_keys import TenantKeys
from onshore.service.rootkey import LocalRootKey
from onshore.storage.sqlite import SqliteMetadataStore
from onshore.storage.sqlite.codec import dump_encryption, load_encryption

ACCOUNT = "111122223333"
BUCKET = "bucket"
T = TypeVar("T")


class CountingKms(KmsService):
    """The real KMS service, counting the data keys it generates."""

    generated = 0

    def generate_data_key(
        self, key: KmsKey, size: int = 32, context: Any = None
    ) -> tuple[bytes, bytes]:
        self.generated += 1
        return super().generate_data_key(key, size, context)


@dataclass
class Env:
    store: SqliteMetadataStore
    kms: CountingKms
    keys: ObjectKeys
    defaults: BucketDefaults
    blocking: Blocking

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run(coro)

    def new(self, key: str, request: SseRequest) -> DataKey:
        data_key = self.run(self.keys.for_object(BUCKET, key, ACCOUNT, request))
        assert data_key is not None
        return data_key

    def open(self, encryption: Encryption) -> DataKey:
        opened = self.run(self.keys.open(encryption))
        assert opened is not None
        return opened


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    root = LocalRootKey(os.urandom(32))
    store = SqliteMetadataStore(tmp_path / "metadata.db")
    store.create_bucket(Bucket(BUCKET, ACCOUNT, "local-1", datetime.now(UTC)))
    kms = CountingKms(store, root, partition="aws", region="local-1")
    blocking = Blocking(2)
    defaults = BucketDefaults(store, blocking, enabled=True)
    tenant_keys = TenantKeys(store, root, CipherName.AES_256_GCM)
    keys = ObjectKeys(tenant_keys, blocking, defaults=defaults, kms=kms)
    yield Env(store, kms, keys, defaults, blocking)
    store.close()


def _same_key(a: DataKey, b: DataKey) -> bool:
    nonce = b"\0" * 12
    try:
        return a.aead.open(nonce, b.aead.seal(nonce, b"probe", b""), b"") == b"probe"
    except IntegrityError:
        return False


def _kms_key(env: Env) -> KmsKey:
    return env.kms.create_key(ACCOUNT)


# --- encryption context ---------------------------------------------------------------------------
def test_context_is_the_object_arn_plus_the_clients(env: Env) -> None:
    key = _kms_key(env)
    request = SseRequest(SseMode.KMS, kms_key_id=key.key_id, kms_context={"project": "x"})
    data_key = env.new("dir/obj", request)
    record = data_key.encryption
    assert record.bucket_key is None
    assert contexts.stored(record.kms_context) == {
        "aws:s3:arn": "arn:aws:s3:::bucket/dir/obj",
        "project": "x",
    }
    assert _same_key(env.open(record), data_key)
    # The data key is KMS-sealed under that context: KMS opens it with it, and with no other.
    _, secret = env.kms.decrypt(ACCOUNT, record.wrapped_key, contexts.stored(record.kms_context))
    assert len(secret) == 32
    for other in (None, {"aws:s3:arn": "arn:aws:s3:::bucket/dir/obj"}, {"project": "x"}):
        with pytest.raises(KmsError) as err:
            env.kms.decrypt(ACCOUNT, record.wrapped_key, other)
        assert err.value.kind == "InvalidCiphertextException"


def test_a_stored_context_changed_no_longer_opens(env: Env) -> None:
    key = _kms_key(env)
    record = env.new("k", SseRequest(SseMode.KMS, kms_key_id=key.key_id)).encryption
    assert contexts.stored(record.kms_context) == {"aws:s3:arn": "arn:aws:s3:::bucket/k"}
    moved = replace(record, kms_context=contexts.canonical({"aws:s3:arn": "arn:aws:s3:::b/o"}))
    with pytest.raises(InternalError):
        env.open(moved)
    with pytest.raises(InternalError):
        env.open(replace(record, kms_context=None))


def test_objects_sealed_before_contexts_still_open(env: Env) -> None:
    key = _kms_key(env)
    secret, blob = env.kms.generate_data_key(key, 32)  # as SSE-KMS objects were sealed
    legacy = Encryption(SseMode.KMS, "aes-256-gcm", env.kms.arn(key), blob)
    assert load_encryption(dump_encryption(legacy)) == legacy
    opened = env.open(legacy)
    nonce = b"\1" * 12
    assert opened.aead.open(nonce, opened.aead.seal(nonce, b"p", b""), b"") == b"p"
    assert env.kms.decrypt(ACCOUNT, blob)[1] == secret


def test_the_clients_arn_must_be_the_objects(env: Env) -> None:
    key = _kms_key(env)
    good = {"aws:s3:arn": "arn:aws:s3:::bucket/k", "a": "b"}
    record = env.new("k", SseRequest(SseMode.KMS, kms_key_id=key.key_id, kms_context=good))
    assert contexts.stored(record.encryption.kms_context) == good
    for wrong in (
        {"aws:s3:arn": "arn:aws:s3:::bucket/other"},
        {"aws:s3:arn": "arn:aws:s3:::bucket"},
    ):
        with pytest.raises(InvalidArgument):
            env.new("k", SseRequest(SseMode.KMS, kms_key_id=key.key_id, kms_context=wrong))
    # With a bucket key, the bucket's ARN is the one.
    bucket_arn = {"aws:s3:arn": "arn:aws:s3:::bucket"}
    request = SseRequest(
        SseMode.KMS, kms_key_id=key.key_id, kms_context=bucket_arn, bucket_key=True
    )
    assert contexts.stored(env.new("k", request).encryption.kms_context) == bucket_arn


def test_records_round_trip_through_the_codec(env: Env) -> None:
    key = _kms_key(env)
    for bucket_key in (False, True):
        request = SseRequest(SseMode.KMS, kms_key_id=key.key_id, bucket_key=bucket_key)
        record = env.new("k", request).seal_metadata({"m": "v"})
        assert load_encryption(dump_encryption(record)) == record


# --- bucket keys ----------------------------------------------------------------------------------
def test_many_objects_one_data_key_generation(env: Env) -> None:
    key = _kms_key(env)
    request = SseRequest(SseMode.KMS, kms_key_id=key.key_id, bucket_key=True)
    records = [env.new(f"o{i}", request) for i in range(50)]
    assert env.kms.generated == 1
    blobs = {r.encryption.bucket_key for r in records}
    assert len(blobs) == 1
    # Every object still has its own data key, sealed by the bucket key.
    assert len({r.encryption.wrapped_key for r in records}) == 50
    assert not _same_key(records[0], records[1])
    for record in records[:5]:
        assert _same_key(env.open(record.encryption), record)
    # The bucket key is a KMS data key under the bucket's ARN.
    blob = records[0].encryption.bucket_key
    assert blob is not None
    env.kms.decrypt(ACCOUNT, blob, {"aws:s3:arn": "arn:aws:s3:::bucket"})
    assert contexts.stored(records[0].encryption.kms_context) == {
        "aws:s3:arn": "arn:aws:s3:::bucket"
    }
    # Without a bucket key, one generation per object.
    plain = SseRequest(SseMode.KMS, kms_key_id=key.key_id)
    for i in range(3):
        env.new(f"p{i}", plain)
    assert env.kms.generated == 4


def test_a_bucket_key_per_context_and_per_kms_key(env: Env) -> None:
    first, second = _kms_key(env), _kms_key(env)
    made = [
        env.new("a", SseRequest(SseMode.KMS, kms_key_id=first.key_id, bucket_key=True)),
        env.new("b", SseRequest(SseMode.KMS, kms_key_id=second.key_id, bucket_key=True)),
        env.new(
            "c",
            SseRequest(
                SseMode.KMS, kms_key_id=first.key_id, kms_context={"t": "1"}, bucket_key=True
            ),
        ),
        env.new("d", SseRequest(SseMode.KMS, kms_key_id=first.key_id, bucket_key=True)),
    ]
    assert env.kms.generated == 3
    assert made[0].encryption.bucket_key == made[3].encryption.bucket_key
    assert len({m.encryption.bucket_key for m in made}) == 3


def test_bucket_keys_expire_and_follow_rotations(env: Env) -> None:
    now = [0.0]
    env.keys.bucket_keys = BucketKeys(env.kms, lifetime=60.0, clock=lambda: now[0])
    key = _kms_key(env)
    request = SseRequest(SseMode.KMS, kms_key_id=key.key_id, bucket_key=True)
    first = env.new("a", request).encryption.bucket_key
    now[0] = 59.0
    assert env.new("b", request).encryption.bucket_key == first
    now[0] = 61.0
    second = env.new("c", request).encryption.bucket_key
    assert second != first and env.kms.generated == 2
    env.kms.rotate_on_demand(ACCOUNT, key.key_id)  # a new key material: a new bucket key
    third = env.new("d", request).encryption.bucket_key
    assert third not in (first, second) and env.kms.generated == 3


def test_key_state_gates_cached_bucket_keys(env: Env) -> None:
    key = _kms_key(env)
    request = SseRequest(SseMode.KMS, kms_key_id=key.key_id, bucket_key=True)
    record = env.new("a", request)
    env.open(record.encryption)  # cached now, for writes and reads
    env.kms.set_enabled(ACCOUNT, key.key_id, False)
    with pytest.raises(KmsDisabledException):
        env.open(record.encryption)
    with pytest.raises(KmsDisabledException):
        env.new("b", request)
    other_process = ObjectKeys(env.keys.tenant_keys, env.blocking, kms=env.kms)  # cold cache
    with pytest.raises(KmsDisabledException):
        env.run(other_process.open(record.encryption))
    env.kms.set_enabled(ACCOUNT, key.key_id, True)
    assert _same_key(env.open(record.encryption), record)
    env.kms.schedule_deletion(ACCOUNT, key.key_id, 7)
    with pytest.raises(KmsInvalidStateException):
        env.open(record.encryption)
    env.kms.cancel_deletion(ACCOUNT, key.key_id)
    env.kms.set_enabled(ACCOUNT, key.key_id, True)
    assert _same_key(env.open(record.encryption), record)
    # Deleted for good: never again, cached or not.
    env.kms.schedule_deletion(ACCOUNT, key.key_id, 7)
    env.store.delete_due_kms_key(key.key_id, datetime(2100, 1, 1, tzinfo=UTC))
    with pytest.raises(KmsNotFoundException):
        env.open(record.encryption)


def test_the_buckets_setting_and_the_requests_override(env: Env) -> None:
    key = _kms_key(env)
    config = DefaultEncryption(SseMode.KMS, bucket_key=True, kms_key_id=key.key_id)
    env.run(env.defaults.put(BUCKET, config))
    by_default = env.new("a", SseRequest()).encryption
    assert by_default.mode is SseMode.KMS and by_default.bucket_key is not None
    assert env.new("b", SseRequest(SseMode.KMS)).encryption.bucket_key is not None
    assert env.new("c", SseRequest(bucket_key=False)).encryption.bucket_key is None
    # A request's own aws:kms follows the bucket's BucketKeyEnabled, whatever its algorithm.
    env.run(env.defaults.put(BUCKET, DefaultEncryption(SseMode.S3, bucket_key=True)))
    assert env.new("d", SseRequest()).encryption.mode is SseMode.S3
    explicit = env.new("e", SseRequest(SseMode.KMS, kms_key_id=key.key_id)).encryption
    assert explicit.bucket_key is not None
    # Bucket keys are for SSE-KMS only.
    assert env.new("f", SseRequest(SseMode.S3, bucket_key=True)).encryption.bucket_key is None
