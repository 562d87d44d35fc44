"""Per-tenant quotas on writes: stored bytes, objects, buckets.

A write is refused with ``QuotaExceeded`` (403) when the bucket owner's usage plus what the write
adds would go over a limit; reads, deletes and aborts are never checked, so a tenant over quota
can always get back under it. Usage comes from counters the metadata store keeps in the same
transactions as the writes (one seek). Limits and bucket owners are cached for ``ttl`` seconds
like identities, so a write by a tenant without quotas costs no database read at all. A size
declared by the request is checked before the body is read; an undeclared one (aws-chunked
without ``x-amz-decoded-content-length``) after the upload, before the commit.

The check is made before the write and is not atomic with it: concurrent writes of one tenant
can each pass and together go over a limit by up to their own sizes. Replacing an object counts
the new size without crediting the one it replaces, so a tenant exactly at its limit must delete
before it overwrites.
"""

from __future__ import annotations

import threading
import time

from onshore.domain.errors import QuotaExceeded
from onshore.domain.iam import Quota
from onshore.service.blocking import Blocking
from onshore.storage.iam_port import IamStore
from onshore.storage.ports import MetadataStore

_MAX_ENTRIES = 10_000


class QuotaGuard:
    def __init__(
        self, store: IamStore, meta: MetadataStore, blocking: Blocking, *, ttl: float = 5.0
    ) -> None:
        self._store = store
        self._meta = meta
        self._blocking = blocking
        self._ttl = ttl
        self._limits: dict[str, tuple[float, Quota]] = {}
        self._owners: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._limits.clear()
            self._owners.clear()

    async def check_bucket_write(
        self, bucket: str, *, add_bytes: int = 0, add_objects: int = 0
    ) -> None:
        """Before a write into ``bucket``; a missing bucket is left to the write to report."""
        now = time.monotonic()
        cached = self._owners.get(bucket)
        if cached is not None and cached[0] > now:
            owner = cached[1]
        else:
            found = await self._blocking.batched(self._meta.get_bucket, bucket)
            if found is None:
                return
            owner = found.owner_id
            with self._lock:
                if len(self._owners) >= _MAX_ENTRIES:
                    self._owners.clear()
                self._owners[bucket] = (now + self._ttl, owner)
        await self.check(owner, add_bytes=add_bytes, add_objects=add_objects)

    async def check(
        self, account_id: str, *, add_bytes: int = 0, add_objects: int = 0, add_buckets: int = 0
    ) -> None:
        quota = await self._quota(account_id)
        if quota.unlimited:
            return
        usage = await self._blocking.batched(self._store.usage, account_id)
        for name, limit, used, adding in (
            ("stored bytes", quota.max_bytes, usage.bytes, add_bytes),
            ("objects", quota.max_objects, usage.objects, add_objects),
            ("buckets", quota.max_buckets, usage.buckets, add_buckets),
        ):
            if limit is not None and adding > 0 and used + adding > limit:
                raise QuotaExceeded(
                    f"The tenant's {name} quota ({limit}) would be exceeded: it holds {used} "
                    f"and this request adds {adding}. Delete data or ask the operator for more.",
                    Quota=name,
                    Limit=str(limit),
                )

    async def _quota(self, account_id: str) -> Quota:
        now = time.monotonic()
        cached = self._limits.get(account_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        quota = await self._blocking.batched(self._store.get_quota, account_id)
        with self._lock:
            if len(self._limits) >= _MAX_ENTRIES:
                self._limits.clear()
            self._limits[account_id] = (now + self._ttl, quota)
        return quota
