"""Bucket default encryption (PutBucketEncryption / GetBucketEncryption / DeleteBucketEncryption).

Stored as the bucket config document of kind ``encryption``: ``{"algorithm": "AES256",
"bucket_key": false}``. As on AWS since January 2023, every bucket without a configuration
behaves as SSE-S3 (``AES256``) when the deployment's ``encryption`` setting is on, and
DeleteBucketEncryption returns a bucket to that default. With the setting off, a bucket without
a configuration stores new objects in plain text, and GetBucketEncryption answers
``ServerSideEncryptionConfigurationNotFoundError``, as AWS did before 2023.

Each server process caches a bucket's configuration for ``CACHE_SECONDS`` (every PUT needs it):
a change made through one process reaches the others within that time, as AWS also documents
bucket encryption changes taking a moment to apply.

``aws:kms`` with a ``KMSMasterKeyID`` (id, ARN or alias; none: the account's ``alias/aws/s3``)
makes SSE-KMS the bucket's default, whatever the ``encryption`` setting.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from onshore.domain.models import SseMode
from onshore.service.blocking import Blocking
from onshore.storage.ports import MetadataStore

KIND = "encryption"
CACHE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class DefaultEncryption:
    mode: SseMode
    bucket_key: bool = False
    kms_key_id: str | None = None


class BucketDefaults:
    def __init__(self, meta: MetadataStore, blocking: Blocking, *, enabled: bool) -> None:
        self.meta = meta
        self.blocking = blocking
        self.enabled = enabled
        self._cache: dict[str, tuple[DefaultEncryption | None, float]] = {}

    async def get(self, bucket: str, *, fresh: bool = False) -> DefaultEncryption | None:
        """The bucket's configuration, or the deployment's default (None: plain text);
        ``fresh`` reads past the cache (GetBucketEncryption)."""
        cached = self._cache.get(bucket)
        if not fresh and cached is not None and cached[1] >= time.monotonic():
            return cached[0]
        document = await self.blocking.batched(self.meta.get_bucket_config, bucket, KIND)
        config = self._decode(document)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[bucket] = (config, time.monotonic() + CACHE_SECONDS)
        return config

    def _decode(self, document: str | None) -> DefaultEncryption | None:
        if document is None:
            return DefaultEncryption(SseMode.S3) if self.enabled else None
        doc = json.loads(document)
        return DefaultEncryption(
            SseMode(doc["algorithm"]), bool(doc.get("bucket_key", False)), doc.get("kms_key_id")
        )

    async def put(self, bucket: str, config: DefaultEncryption) -> None:
        document = json.dumps(
            {
                "algorithm": config.mode.value,
                "bucket_key": config.bucket_key,
                "kms_key_id": config.kms_key_id,
            }
        )
        await self.blocking.write(self.meta, self.meta.put_bucket_config, bucket, KIND, document)
        self._cache.pop(bucket, None)

    async def delete(self, bucket: str) -> None:
        await self.blocking.write(self.meta, self.meta.put_bucket_config, bucket, KIND, None)
        self._cache.pop(bucket, None)
