"""Bucket default encryption (PutBucketEncryption / GetBucketEncryption / DeleteBucketEncryption).

Stored as the bucket config document of kind ``encryption``: ``{"algorithm": "AES256",
"bucket_key": false}``. As on AWS since January 2023, every bucket without a configuration
behaves as SSE-S3 (``AES256``) when the deployment's ``encryption`` setting is on, and
DeleteBucketEncryption returns a bucket to that default. With the setting off, a bucket without
a configuration stores new objects in plain text, and GetBucketEncryption answers
``ServerSideEncryptionConfigurationNotFoundError``, as AWS did before 2023.

Only ``AES256`` can be configured today; ``aws:kms`` is refused as not implemented.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from onshore.domain.models import SseMode
from onshore.service.blocking import Blocking
from onshore.storage.ports import MetadataStore

KIND = "encryption"


@dataclass(frozen=True, slots=True)
class DefaultEncryption:
    mode: SseMode
    bucket_key: bool = False


class BucketDefaults:
    def __init__(self, meta: MetadataStore, blocking: Blocking, *, enabled: bool) -> None:
        self.meta = meta
        self.blocking = blocking
        self.enabled = enabled

    async def get(self, bucket: str) -> DefaultEncryption | None:
        """The bucket's configuration, or the deployment's default (None: plain text)."""
        document = await self.blocking.batched(self.meta.get_bucket_config, bucket, KIND)
        if document is None:
            return DefaultEncryption(SseMode.S3) if self.enabled else None
        doc = json.loads(document)
        return DefaultEncryption(SseMode(doc["algorithm"]), bool(doc.get("bucket_key", False)))

    async def put(self, bucket: str, config: DefaultEncryption) -> None:
        document = json.dumps({"algorithm": config.mode.value, "bucket_key": config.bucket_key})
        await self.blocking.write(self.meta, self.meta.put_bucket_config, bucket, KIND, document)

    async def delete(self, bucket: str) -> None:
        await self.blocking.write(self.meta, self.meta.put_bucket_config, bucket, KIND, None)
