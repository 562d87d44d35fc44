"""Object use cases: put, get, head, delete, copy.

This is the only layer that touches metadata and blobs together. The order of every write is
the durability rule of DESIGN.md: data first (fsynced blob, or inline bytes), then one metadata
commit that makes the object exist, then — only after the commit — deletion of the blobs the
commit stopped referencing. A failure before the commit removes the new blob; a crash in
between leaves at worst an orphan blob that the start-up sweep deletes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from onshore.domain import preconditions
from onshore.domain.acl import Acl
from onshore.domain.errors import (
    BadDigest,
    InvalidRange,
    InvalidRequest,
    MethodNotAllowed,
    NoSuchBucket,
    NoSuchKey,
    NoSuchVersion,
)
from onshore.domain.ids import new_version_id
from onshore.domain.models import (
    Encryption,
    ObjectVersion,
    Segment,
    WriteCondition,
    WriteResult,
)
from onshore.domain.names import check_key
from onshore.domain.numbers import decimal
from onshore.domain.ranges import ByteRange
from onshore.service import faults
from onshore.service.blocking import Blocking
from onshore.service.data import (
    ByteSource,
    StoredData,
    copy_stream,
    open_inline,
    store_stream,
    stream_version,
)
from onshore.service.encryption.keys import CustomerKey, DataKey, ObjectKeys, SseRequest
from onshore.service.quotas import QuotaGuard
from onshore.storage.ports import BlobStore, MetadataStore

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(moment: datetime) -> str:
    """RFC 7231 IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``), in English whatever the locale
    (``strftime``'s ``%a``/``%b`` follow it), and a few times faster than ``strftime``."""
    t = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    return (
        f"{_DAYS[t.weekday()]}, {t.day:02d} {_MONTHS[t.month - 1]} {t.year:04d} "
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} GMT"
    )


@dataclass(frozen=True, slots=True)
class NewObject:
    """What a client sets on a new object besides its bytes."""

    headers: Mapping[str, str] = field(default_factory=dict)
    user_metadata: Mapping[str, str] = field(default_factory=dict)
    storage_class: str = "STANDARD"
    content_md5: bytes | None = None
    condition: WriteCondition | None = None
    sse: SseRequest = SseRequest()


@dataclass(frozen=True, slots=True)
class DeleteOutcome:
    version_id: str | None
    delete_marker: bool


def now() -> datetime:
    return datetime.now(UTC)


def delete_marker_error(version: ObjectVersion, *, by_version: bool) -> Exception:
    """GET/HEAD of a delete marker: 404 NoSuchKey for the latest, 405 when asked by version."""
    headers = {"x-amz-delete-marker": "true", "x-amz-version-id": version.version_id}
    if by_version:
        headers["Last-Modified"] = http_date(version.last_modified)
        return MethodNotAllowed(
            "The specified method is not allowed against this resource.", headers=headers
        )
    return NoSuchKey(headers=headers)


class ObjectService:
    def __init__(
        self,
        meta: MetadataStore,
        blobs: BlobStore,
        blocking: Blocking,
        *,
        inline_threshold: int,
        quota: QuotaGuard | None = None,
        keys: ObjectKeys | None = None,
    ) -> None:
        self.meta = meta
        self.blobs = blobs
        self.blocking = blocking
        self.inline_threshold = inline_threshold
        self.quota = quota
        self.keys = keys

    # --- reads ----------------------------------------------------------------------------------
    async def get_version(
        self,
        bucket: str,
        key: str,
        version_id: str | None = None,
        *,
        customer: CustomerKey | None = None,
    ) -> ObjectVersion:
        """The version a GET/HEAD addresses, with S3's errors for missing and deleted keys.

        A sealed version comes back with its user metadata opened, once its key is known to be
        available (for SSE-C: ``customer`` is the right key).
        """
        version = await self.blocking.batched(self.meta.get_object, bucket, key, version_id)
        if version is None:
            if version_id is not None:
                raise NoSuchVersion(Key=key, VersionId=version_id)
            raise NoSuchKey(Key=key)
        if version.is_delete_marker:
            raise delete_marker_error(version, by_version=version_id is not None)
        data_key = await self._open_key(version.encryption, customer)
        if data_key is not None and data_key.encryption.sealed_metadata is not None:
            version = replace(version, user_metadata=data_key.open_metadata())
        return version

    async def read(
        self,
        version: ObjectVersion,
        byte_range: ByteRange | None = None,
        *,
        customer: CustomerKey | None = None,
    ) -> bytes | AsyncIterator[bytes | bytearray]:
        """The body (or a range of it) of a version from :meth:`get_version`: the bytes
        themselves for an inline version, else a stream."""
        data_key = await self._open_key(version.encryption, customer)
        aead = None if data_key is None else data_key.aead
        if version.inline is not None:
            body = open_inline(version, aead)
            if byte_range is not None:
                body = body[byte_range.start : byte_range.end + 1]
            return body
        return stream_version(version, self.blobs, self.blocking, byte_range, aead)

    async def _open_key(
        self, encryption: Encryption | None, customer: CustomerKey | None
    ) -> DataKey | None:
        if self.keys is None:
            return None
        return await self.keys.open(encryption, customer)

    async def new_key(
        self, bucket: str, key: str, owner_id: str, request: SseRequest
    ) -> DataKey | None:
        """The data key a new object (or upload) is sealed with, if any."""
        if self.keys is None:
            return None
        return await self.keys.for_object(bucket, key, owner_id, request)

    # --- writes ---------------------------------------------------------------------------------
    async def put_object(
        self,
        bucket: str,
        key: str,
        source: ByteSource,
        new: NewObject,
        *,
        owner_id: str,
        expected_size: int | None = None,
        acl: Acl | None = None,
    ) -> ObjectVersion:
        """Store a new version of bucket/key from ``source``. ``acl`` (None with ACLs disabled)
        is committed with the version, in the same metadata transaction."""
        check_key(key)
        if expected_size is None or expected_size > self.inline_threshold:
            await self._require_bucket(bucket)
        if self.quota is not None:
            await self.quota.check_bucket_write(bucket, add_bytes=expected_size or 0, add_objects=1)
        data_key = await self.new_key(bucket, key, owner_id, new.sse)
        data = await store_stream(
            source,
            self.blobs,
            self.blocking,
            inline_threshold=self.inline_threshold,
            aead=None if data_key is None else data_key.aead,
        )
        faults.point("put_object.blob_written")
        try:
            if self.quota is not None and expected_size is None:
                await self.quota.check_bucket_write(bucket, add_bytes=data.size)
            if new.content_md5 is not None and new.content_md5 != data.md5:
                raise BadDigest(
                    ExpectedDigest=new.content_md5.hex(), CalculatedDigest=data.md5.hex()
                )
            version = self._version(bucket, key, data, new, owner_id, data_key)
            result = await self.blocking.write(
                self.meta,
                self.meta.put_object,
                version,
                condition=new.condition,
                acl=acl_document(acl),
            )
        except BaseException:
            self._discard(data)
            raise
        faults.point("put_object.committed")
        self._free(result)
        assert result.version is not None
        return result.version

    def _version(
        self,
        bucket: str,
        key: str,
        data: StoredData,
        new: NewObject,
        owner_id: str,
        data_key: DataKey | None,
    ) -> ObjectVersion:
        segments = (Segment(data.blob_id, data.size),) if data.blob_id else ()
        metadata = dict(new.user_metadata)
        encryption = None
        if data_key is not None:
            encryption = data_key.seal_metadata(metadata) if metadata else data_key.encryption
            metadata = {}
        return ObjectVersion(
            bucket=bucket,
            key=key,
            version_id=new_version_id(),
            last_modified=now(),
            size=data.size,
            etag=data.etag,
            owner_id=owner_id,
            storage_class=new.storage_class,
            headers=dict(new.headers),
            user_metadata=metadata,
            checksum=data.checksum,
            inline=data.inline,
            segments=segments,
            encryption=encryption,
        )

    async def delete_object(
        self,
        bucket: str,
        key: str,
        version_id: str | None,
        *,
        owner_id: str,
        if_match: str | None = None,
    ) -> DeleteOutcome:
        marker = ObjectVersion(
            bucket=bucket,
            key=key,
            version_id=new_version_id(),
            last_modified=now(),
            is_delete_marker=True,
            owner_id=owner_id,
        )
        result = await self.blocking.write(
            self.meta,
            self.meta.delete_object,
            bucket,
            key,
            version_id=version_id,
            marker=marker,
            if_match=if_match,  # checked in the delete's own transaction
        )
        faults.point("delete_object.committed")
        self._free(result)
        if result.version is not None:
            return DeleteOutcome(result.version.version_id, True)
        if version_id is not None:
            removed = result.removed
            return DeleteOutcome(version_id, bool(removed and removed.is_delete_marker))
        return DeleteOutcome(None, False)

    async def copy_object(
        self,
        source: ObjectVersion,
        bucket: str,
        key: str,
        new: NewObject | None,
        *,
        owner_id: str,
        source_headers: Mapping[str, str],
        condition: WriteCondition | None = None,
        source_customer: CustomerKey | None = None,
        target_sse: SseRequest | None = None,
        acl: Acl | None = None,
    ) -> ObjectVersion:
        """Copy ``source`` (from :meth:`get_version`) to bucket/key. ``new`` None means
        metadata directive COPY; ``target_sse`` carries the encryption asked for the copy
        (as on AWS, a copy is sealed anew: SSE-C only if the request gives a key again).
        ``acl`` is the copy's own ACL (a copy never inherits its source's), committed with
        it."""
        check_key(key)
        preconditions.check(
            source_headers, source.etag, source.last_modified, prefix="x-amz-copy-source-if-"
        )
        if new is None and source.bucket == bucket and source.key == key:
            raise InvalidRequest(
                "This copy request is illegal because it is trying to copy an object to itself "
                "without changing the object's metadata, storage class, website redirect "
                "location or encryption attributes."
            )
        await self._require_bucket(bucket)
        if self.quota is not None:
            await self.quota.check_bucket_write(bucket, add_bytes=source.size, add_objects=1)
        source_key = await self._open_key(source.encryption, source_customer)
        request = target_sse if target_sse is not None else (new or NewObject()).sse
        data_key = await self.new_key(bucket, key, owner_id, request)
        data = await copy_stream(
            source,
            self.blobs,
            self.blocking,
            inline_threshold=self.inline_threshold,
            source_aead=None if source_key is None else source_key.aead,
            aead=None if data_key is None else data_key.aead,
        )
        faults.point("copy_object.blob_written")
        try:
            target = new or NewObject(
                headers=source.headers,
                user_metadata=source.user_metadata,
                storage_class=source.storage_class,
            )
            if condition is not None:
                target = replace(target, condition=condition)
            version = replace(
                self._version(bucket, key, data, target, owner_id, data_key),
                etag=source.etag if source.parts_count else data.etag,
                checksum=source.checksum or data.checksum,
            )
            result = await self.blocking.write(
                self.meta,
                self.meta.put_object,
                version,
                condition=target.condition,
                acl=acl_document(acl),
            )
        except BaseException:
            self._discard(data)
            raise
        faults.point("copy_object.committed")
        self._free(result)
        assert result.version is not None
        return result.version

    # --- helpers --------------------------------------------------------------------------------
    async def _require_bucket(self, bucket: str) -> None:
        if await self.blocking.batched(self.meta.get_bucket, bucket) is None:
            raise NoSuchBucket(BucketName=bucket)

    def _discard(self, data: StoredData) -> None:
        if data.blob_id:
            self.blocking.submit(self.blobs.delete, (data.blob_id,))

    def _free(self, result: WriteResult) -> None:
        if result.freed_blobs:
            self.blocking.submit(self.blobs.delete, result.freed_blobs)


def acl_document(acl: Acl | None) -> str | None:
    """The stored form of a new version's or upload's ACL (None: ACLs disabled)."""
    return None if acl is None else acl.to_json()


def copy_source_range(header: str | None, size: int) -> ByteRange | None:
    """Parse ``x-amz-copy-source-range`` (``bytes=first-last``, both required)."""
    if header is None:
        return None
    unit, _, spec = header.strip().partition("=")
    first, dash, last = spec.partition("-")
    start, end = decimal(first), decimal(last)
    if unit != "bytes" or not dash or start is None or end is None:
        raise InvalidRequest(
            "The x-amz-copy-source-range value must be of the form bytes=first-last where "
            "first and last are the zero-based offsets of the first and last bytes to copy"
        )
    if end < start or end >= size:
        raise InvalidRange(
            f"The requested range is not satisfiable: bytes={start}-{end} of {size}."
        )
    return ByteRange(start, end, size)
