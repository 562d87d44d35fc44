"""The ``KeyStore`` contract (tenant keys for encryption at rest) over every backend, and the
encryption record's round trip through versions and uploads."""

from __future__ import annotations

from dataclasses import replace
from typing import cast

from onshore.domain.models import Encryption, SseMode, TenantKey
from onshore.storage.ports import KeyStore, MetadataStore
from tests.contract.conftest import T0, bucket, obj, upload


def _keys(store: MetadataStore) -> KeyStore:
    return cast(KeyStore, store)


def _tenant(account: str, wrapped: bytes = b"w1", fingerprint: str = "f1") -> TenantKey:
    return TenantKey(account, "aes-256-gcm", wrapped, fingerprint, T0)


def test_first_key_wins(store: MetadataStore) -> None:
    keys = _keys(store)
    assert keys.get_tenant_key("111111111111") is None
    first = keys.add_tenant_key(_tenant("111111111111", b"first"))
    second = keys.add_tenant_key(_tenant("111111111111", b"second"))
    assert first.wrapped == second.wrapped == b"first"
    got = keys.get_tenant_key("111111111111")
    assert got is not None and got.wrapped == b"first" and got.created == T0


def test_replace_is_compare_and_set_on_the_fingerprint(store: MetadataStore) -> None:
    keys = _keys(store)
    keys.add_tenant_key(_tenant("1", b"old", "f1"))
    rewrapped = _tenant("1", b"new", "f2")
    assert not keys.replace_tenant_key(rewrapped, expected_fingerprint="zz")
    assert keys.replace_tenant_key(rewrapped, expected_fingerprint="f1")
    assert not keys.replace_tenant_key(rewrapped, expected_fingerprint="f1")  # already done
    got = keys.get_tenant_key("1")
    assert got is not None and (got.wrapped, got.root_fingerprint) == (b"new", "f2")
    assert not keys.replace_tenant_key(_tenant("2"), expected_fingerprint="f1")


def test_list_and_delete(store: MetadataStore) -> None:
    keys = _keys(store)
    for account in ("3", "1", "2"):
        keys.add_tenant_key(_tenant(account))
    assert [k.account_id for k in keys.list_tenant_keys()] == ["1", "2", "3"]
    assert keys.delete_tenant_key("2")
    assert not keys.delete_tenant_key("2")
    assert keys.get_tenant_key("2") is None


ENCRYPTION = Encryption(
    mode=SseMode.CUSTOMER,
    cipher="sm4-gcm",
    key_id="customer",
    wrapped_key=b"\x00\x01wrapped",
    sealed_metadata=b"\xffsealed",
    customer_key_hmac="salt:hmac",
    customer_key_md5="md5==",
)


def test_encryption_record_round_trips(store: MetadataStore) -> None:
    name = bucket(store)
    store.put_object(replace(obj(name, "k", "v1"), encryption=ENCRYPTION))
    got = store.get_object(name, "k")
    assert got is not None and got.encryption == ENCRYPTION
    store.put_object(obj(name, "plain", "v2"))
    plain = store.get_object(name, "plain")
    assert plain is not None and plain.encryption is None
    store.create_upload(replace(upload(name, "u", "up1"), encryption=ENCRYPTION))
    stored = store.get_upload(name, "up1")
    assert stored is not None and stored.encryption == ENCRYPTION
