"""S3 Bucket Keys: one KMS data key serving many SSE-KMS objects of a bucket.

Without a bucket key, every SSE-KMS object costs a KMS GenerateDataKey when it is written and a
KMS Decrypt each time it is read. With one (``x-amz-server-side-encryption-bucket-key-enabled:
true`` on the write, or ``BucketKeyEnabled`` in the bucket's default encryption), the object's
own random data key is sealed by a *bucket key* instead: a data key the KMS key generated for
the bucket, under the encryption context ``aws:s3:arn`` = the bucket's ARN plus the client's own
pairs (so each distinct context gets its own bucket key; :mod:`.context`). The object stores its
sealed data key, the bucket key's KMS ciphertext and the context
(:class:`onshore.domain.models.Encryption`).

**Lifetime.** Each server process uses a bucket key for new objects for :data:`LIFETIME_SECONDS`
(or until the KMS key is rotated), then asks KMS for a new one: objects written meanwhile cost
one GenerateDataKey per process, not one each. Bucket keys opened for reads are kept for the same
time, by ciphertext and context. At most :data:`MAX_KEYS` of each are kept, and expired ones
are dropped at the next use of a bucket key (so a plaintext bucket key stays in memory about
its lifetime, like every unwrapped key a process caches).

**Key state.** The KMS key's state is checked on every use, cached bucket key or not (one
indexed read of the key's row): disabling the key, scheduling its deletion or deleting it
makes every object under its bucket keys unreadable, and stops new ones, at once in every
process, with the errors a direct KMS use gives; enabling it again restores them. Only the
cryptography is saved, not the check.

Blocking: call from worker threads (several at once: the caches are locked).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from onshore.domain.models import KmsKey
from onshore.service.encryption.context import canonical
from onshore.service.encryption.segments import Aead, CipherName
from onshore.service.kms.keys import KmsService

#: How long a process seals new objects with the same bucket key (and keeps an opened one).
LIFETIME_SECONDS = 300.0
#: Bucket keys kept per process, for writes and for reads each.
MAX_KEYS = 1024

_Slot = TypeVar("_Slot")


@dataclass(frozen=True, slots=True)
class _Held:
    aead: Aead
    blob: bytes  # the bucket key's KMS ciphertext
    key_id: str  # the KMS key that sealed it
    material_version: int
    expires: float


class BucketKeys:
    """The bucket keys of one process (see the module docstring)."""

    def __init__(
        self,
        kms: KmsService,
        *,
        lifetime: float = LIFETIME_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kms = kms
        self.lifetime = lifetime
        self.clock = clock
        self._lock = threading.Lock()
        self._writing: dict[tuple[str, str, str], _Held] = {}
        self._opened: dict[tuple[bytes, str], _Held] = {}
        self._next_drop = 0.0

    def for_write(
        self, key: KmsKey, context: Mapping[str, str], cipher: CipherName
    ) -> tuple[Aead, bytes]:
        """The bucket key new objects sealed by ``key`` under ``context`` use now, and its KMS
        ciphertext; KmsError if the key cannot be used."""
        key = self.kms.usable(key)
        text = canonical(context)
        slot = (key.key_id, text, cipher.value)
        now = self.clock()
        with self._lock:
            self._drop_expired(now)
            held = self._writing.get(slot)
        current = held is not None and held.material_version == key.material_version
        if held is not None and current and held.expires > now:
            return held.aead, held.blob
        secret, blob = self.kms.generate_data_key(key, cipher.key_bytes, context)
        held = self._held(cipher, secret, blob, key, now)
        with self._lock:
            _keep(self._writing, slot, held, now)
            _keep(self._opened, (blob, text), held, now)  # read back without a Decrypt
        return held.aead, held.blob

    def open(
        self,
        account_id: str,
        blob: bytes,
        context: Mapping[str, str] | None,
        cipher: CipherName,
    ) -> Aead:
        """The bucket key sealed in ``blob`` (a KMS ciphertext of ``account_id``'s key, under
        ``context``); KmsError as a KMS Decrypt gives it, whether it was cached or not."""
        text = canonical(context or {})
        now = self.clock()
        with self._lock:
            self._drop_expired(now)
            held = self._opened.get((blob, text))
        if held is not None and held.expires > now:
            self.kms.usable(self.kms.resolve(account_id, held.key_id))
            return held.aead
        key, secret = self.kms.decrypt(account_id, blob, context)
        held = self._held(cipher, secret, blob, key, now)
        with self._lock:
            _keep(self._opened, (blob, text), held, now)
        return held.aead

    def _held(
        self, cipher: CipherName, secret: bytes, blob: bytes, key: KmsKey, now: float
    ) -> _Held:
        return _Held(
            Aead(cipher, secret), blob, key.key_id, key.material_version, now + self.lifetime
        )

    def _drop_expired(self, now: float) -> None:
        if now < self._next_drop:
            return
        self._next_drop = now + self.lifetime / 10
        _drop(self._writing, now)
        _drop(self._opened, now)

    def forget(self) -> None:
        """Drop every bucket key this process holds (the next use asks KMS again)."""
        with self._lock:
            self._writing.clear()
            self._opened.clear()


def _drop(cache: dict[_Slot, _Held], now: float) -> None:
    for stale in [s for s, h in cache.items() if h.expires <= now]:
        del cache[stale]


def _keep(cache: dict[_Slot, _Held], slot: _Slot, held: _Held, now: float) -> None:
    """Store ``held`` (when full, first dropping the expired entries, then the oldest)."""
    if len(cache) >= MAX_KEYS:
        _drop(cache, now)
    while len(cache) >= MAX_KEYS:
        del cache[next(iter(cache))]
    cache[slot] = held
