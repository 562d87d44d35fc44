"""Tenant keys: created once, stored only wrapped, cached briefly, unusable once destroyed."""

from __future__ import annotations

import os

import pytest

from onshore.service.encryption.segments import CipherName, open_all, seal
from onshore.service.kms import tenant_keys as module
from onshore.service.kms.tenant_keys import KeyUnavailable, TenantKeys
from onshore.service.rootkey import LocalRootKey
from onshore.storage.memory import MemoryMetadataStore


def test_created_once_wrapped_and_shared() -> None:
    store, root = MemoryMetadataStore(), LocalRootKey(os.urandom(32))
    first = TenantKeys(store, root, CipherName.AES_256_GCM).get_or_create("111111111111")
    other_process = TenantKeys(store, root, CipherName.AES_256_GCM)
    again = other_process.get_or_create("111111111111")
    assert open_all(again, seal(first, b"data"), 4) == b"data"
    stored = store.get_tenant_key("111111111111")
    assert stored is not None and stored.root_fingerprint == root.fingerprint
    assert len(stored.wrapped) > 32  # sealed, never the bare key


def test_destroyed_key_stops_working_after_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    store, root = MemoryMetadataStore(), LocalRootKey(os.urandom(32))
    keys = TenantKeys(store, root, CipherName.SM4_GCM)
    keys.get_or_create("1")
    assert store.delete_tenant_key("1")
    keys.existing("1")  # still cached in this process
    monkeypatch.setattr(module, "CACHE_SECONDS", -1.0)
    keys.forget("1")
    with pytest.raises(KeyUnavailable):
        keys.existing("1")


def test_another_root_key_cannot_unwrap() -> None:
    store = MemoryMetadataStore()
    TenantKeys(store, LocalRootKey(os.urandom(32)), CipherName.AES_256_GCM).get_or_create("1")
    stranger = TenantKeys(store, LocalRootKey(os.urandom(32)), CipherName.AES_256_GCM)
    with pytest.raises(KeyUnavailable):
        stranger.existing("1")


def test_destroy_returns_a_fingerprint_once() -> None:
    store, root = MemoryMetadataStore(), LocalRootKey(os.urandom(32))
    keys = TenantKeys(store, root, CipherName.AES_256_GCM)
    keys.get_or_create("1")
    fingerprint = keys.destroy("1")
    assert fingerprint is not None and len(fingerprint) == 32
    assert keys.destroy("1") is None
    with pytest.raises(KeyUnavailable):
        keys.existing("1")
