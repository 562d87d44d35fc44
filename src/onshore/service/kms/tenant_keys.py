"""Tenant keys: the middle of the key hierarchy.

::

    operator root key (service/rootkey.py; held by the operator, never in the database)
      └─ tenant key, one per account (created on first use; stored only wrapped by the root key)
           └─ data key, one per object or multipart upload (random; stored only wrapped by the
              tenant key, in the object's metadata row)

A tenant key wraps data keys with the deployment's cipher (AES-256-GCM or SM4-GCM), binding
the purpose in the associated data. Destroying a tenant key (offboarding) makes every data key
it wrapped, and so every object of the tenant, unreadable at once: crypto-shredding.

Unwrapped tenant keys are cached in process memory (they are needed on every read and write)
for ``CACHE_SECONDS``, after which the store is asked again: a key destroyed by another process
stops working in every server process within that time (``forget()`` drops one at once in this
process). A destroyed key is never recreated by a read: opening its objects fails instead.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from datetime import UTC, datetime

from onshore.domain.models import TenantKey
from onshore.service.encryption.segments import Aead, CipherName, IntegrityError
from onshore.service.rootkey import KeyWrapper, UnwrapError
from onshore.storage.ports import KeyStore

_NONCE = 12
CACHE_SECONDS = 30.0


class KeyUnavailable(Exception):
    """The key a sealed object names is missing (destroyed) or cannot be unwrapped."""


def root_context(account_id: str, cipher: str) -> bytes:
    return f"onshore tenant key\0{account_id}\0{cipher}".encode()


def data_key_context(key_id: str, cipher: str) -> bytes:
    return f"onshore data key\0{key_id}\0{cipher}".encode()


def wrap_with(aead: Aead, secret: bytes, context: bytes) -> bytes:
    """Seal a small secret under ``aead`` with a random nonce: ``nonce | ciphertext+tag``."""
    nonce = secrets.token_bytes(_NONCE)
    return nonce + aead.seal(nonce, secret, context)


def unwrap_with(aead: Aead, blob: bytes, context: bytes) -> bytes:
    try:
        return aead.open(blob[:_NONCE], blob[_NONCE:], context)
    except IntegrityError:
        raise KeyUnavailable("a wrapped key failed authentication") from None


class TenantKeys:
    """Create-on-first-use, cached tenant keys. Blocking: call from worker threads."""

    def __init__(self, store: KeyStore, root: KeyWrapper, cipher: CipherName) -> None:
        self._store = store
        self._root = root
        self._cipher = cipher
        self._cache: dict[str, tuple[Aead, float]] = {}
        self._lock = threading.Lock()

    @property
    def cipher(self) -> CipherName:
        return self._cipher

    def cached(self, account_id: str) -> Aead | None:
        """The account's key if this process already has it unwrapped (no I/O: safe to call
        on the event loop, saving a worker-thread round trip on most requests)."""
        entry = self._cache.get(account_id)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def get_or_create(self, account_id: str) -> Aead:
        """The account's key, created (and durably stored, wrapped) if it has none yet."""
        cached = self.cached(account_id)
        if cached is not None:
            return cached
        stored = self._store.get_tenant_key(account_id)
        if stored is None:
            aead, secret = Aead.generate(self._cipher)
            context = root_context(account_id, self._cipher.value)
            stored = self._store.add_tenant_key(
                TenantKey(
                    account_id=account_id,
                    cipher=self._cipher.value,
                    wrapped=self._root.wrap(secret, context=context),
                    root_fingerprint=self._root.fingerprint,
                    created=datetime.now(UTC),
                )
            )
        return self._remember(stored)

    def existing(self, account_id: str) -> Aead:
        """The account's key for reading; KeyUnavailable if it was destroyed."""
        cached = self.cached(account_id)
        if cached is not None:
            return cached
        stored = self._store.get_tenant_key(account_id)
        if stored is None:
            self.forget(account_id)
            raise KeyUnavailable("the tenant key does not exist (destroyed?)")
        return self._remember(stored)

    def destroy(self, account_id: str) -> str | None:
        """Crypto-shred the account's key: delete it from the store and this process's cache.
        Returns the destroyed key's fingerprint (for a deletion certificate), None if the
        account had no key. Objects sealed under it can never be opened again."""
        stored = self._store.get_tenant_key(account_id)
        if stored is None:
            return None
        fingerprint = self.fingerprint(stored)
        self._store.delete_tenant_key(account_id)
        self.forget(account_id)
        return fingerprint

    def fingerprint(self, stored: TenantKey) -> str:
        """A public id of a tenant key (SHA-256 of the key under a fixed label, 16 bytes hex):
        stable across root key rotations, safe to print in certificates and logs."""
        try:
            secret = self._root.unwrap(
                stored.wrapped, context=root_context(stored.account_id, stored.cipher)
            )
        except UnwrapError:
            raise KeyUnavailable("the tenant key cannot be unwrapped by this root key") from None
        return hashlib.sha256(b"onshore tenant key fingerprint\0" + secret).hexdigest()[:32]

    def forget(self, account_id: str) -> None:
        with self._lock:
            self._cache.pop(account_id, None)

    def _remember(self, stored: TenantKey) -> Aead:
        try:
            cipher = CipherName(stored.cipher)
            secret = self._root.unwrap(
                stored.wrapped, context=root_context(stored.account_id, stored.cipher)
            )
        except (ValueError, UnwrapError):
            raise KeyUnavailable("the tenant key cannot be unwrapped by this root key") from None
        aead = Aead(cipher, secret)
        with self._lock:
            self._cache[stored.account_id] = (aead, time.monotonic() + CACHE_SECONDS)
        return aead
