"""Multipart uploads: create, upload parts, complete, abort, list.

Each part is stored as its own blob. Completing an upload does not copy data: the new object
version lists the chosen parts' blobs as its segments, in order, and parts that were uploaded
but not named in the completion request are freed. S3's rules, enforced here:

* part numbers 1..10,000; each part at most 5 GiB;
* the completion list must be in strictly ascending part-number order (``InvalidPartOrder``),
  name uploaded parts with their current ETags (``InvalidPart``), and every part but the last
  must be at least 5 MiB (``EntityTooSmall``);
* the ETag of the result is ``md5(concat(binary part md5s))-N`` (see :mod:`onshore.domain.etag`);
* the ACL given to CreateMultipartUpload (ACLs enabled) is stored with the upload and
  becomes the object's in the transaction that completes it;
* when the upload was created with a checksum algorithm, every part carries that checksum
  (and a value given in the completion request must equal it), and the object's checksum is
  either COMPOSITE (the checksum of the parts' binary checksums, suffixed ``-N``) or
  FULL_OBJECT (the CRCs of the parts combined into the CRC of the whole object).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from onshore.domain import checksums
from onshore.domain import etag as etags
from onshore.domain.acl import Acl
from onshore.domain.errors import (
    BadDigest,
    EntityTooSmall,
    InvalidArgument,
    InvalidPart,
    InvalidPartOrder,
    InvalidRequest,
    NoSuchUpload,
)
from onshore.domain.ids import new_upload_id, new_version_id
from onshore.domain.models import (
    Checksum,
    ChecksumAlgorithm,
    ChecksumType,
    MultipartUpload,
    ObjectVersion,
    Part,
    Segment,
    WriteCondition,
)
from onshore.domain.names import check_key
from onshore.domain.numbers import decimal
from onshore.domain.ranges import ByteRange
from onshore.service import faults
from onshore.service.blocking import Blocking
from onshore.service.data import ByteSource, StoredData, copy_stream, store_stream
from onshore.service.encryption.keys import CustomerKey, DataKey, ObjectKeys
from onshore.service.objects import NewObject, acl_document, now
from onshore.service.quotas import QuotaGuard
from onshore.storage.ports import BlobStore, MetadataStore

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_SIZE = 5 * 1024**3
MAX_PART_NUMBER = 10_000


@dataclass(frozen=True, slots=True)
class CompletedPart:
    """One entry of a CompleteMultipartUpload request."""

    part_number: int
    etag: str
    checksum: Checksum | None = None


def check_part_number(value: str | None) -> int:
    number = None if value is None else decimal(value)
    if number is None or not 1 <= number <= MAX_PART_NUMBER:
        raise InvalidArgument(
            "Part number must be an integer between 1 and 10000, inclusive",
            ArgumentName="partNumber",
            ArgumentValue=str(value)[:64],
        )
    return number


class MultipartService:
    def __init__(
        self,
        meta: MetadataStore,
        blobs: BlobStore,
        blocking: Blocking,
        quota: QuotaGuard | None = None,
        keys: ObjectKeys | None = None,
    ) -> None:
        self.meta = meta
        self.blobs = blobs
        self.blocking = blocking
        self.quota = quota
        self.keys = keys

    async def _upload_key(
        self, upload: MultipartUpload, customer: CustomerKey | None
    ) -> DataKey | None:
        """The upload's data key: every part is sealed with it (SSE-C: the request must give
        the same customer key as CreateMultipartUpload did)."""
        if self.keys is None:
            return None
        return await self.keys.open(upload.encryption, customer)

    async def create(
        self,
        bucket: str,
        key: str,
        new: NewObject,
        *,
        owner_id: str,
        checksum_algorithm: ChecksumAlgorithm | None = None,
        checksum_type: ChecksumType | None = None,
        acl: Acl | None = None,
    ) -> MultipartUpload:
        """A new upload. ``acl`` (None with ACLs disabled) is stored with it in the same
        transaction, and :meth:`complete` commits it with the object version."""
        check_key(key)
        data_key = None
        if self.keys is not None:
            data_key = await self.keys.for_object(bucket, key, owner_id, new.sse)
        metadata = dict(new.user_metadata)
        encryption = None
        if data_key is not None:
            encryption = data_key.seal_metadata(metadata) if metadata else data_key.encryption
            metadata = {}
        upload = MultipartUpload(
            upload_id=new_upload_id(),
            bucket=bucket,
            key=key,
            initiated=now(),
            owner_id=owner_id,
            storage_class=new.storage_class,
            headers=dict(new.headers),
            user_metadata=metadata,
            checksum_algorithm=checksum_algorithm,
            checksum_type=checksum_type,
            encryption=encryption,
        )
        await self.blocking.write(self.meta, self.meta.create_upload, upload, acl=acl_document(acl))
        return upload

    async def get_upload(self, bucket: str, key: str, upload_id: str) -> MultipartUpload:
        upload = await self.blocking.batched(self.meta.get_upload, bucket, upload_id)
        if upload is None or upload.key != key:
            raise NoSuchUpload(UploadId=upload_id)
        return upload

    async def upload_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        source: ByteSource,
        *,
        content_md5: bytes | None = None,
        expected_size: int | None = None,
        customer: CustomerKey | None = None,
    ) -> Part:
        upload = await self.get_upload(bucket, key, upload_id)
        if self.quota is not None and expected_size is not None:
            await self.quota.check_bucket_write(bucket, add_bytes=expected_size)
        data_key = await self._upload_key(upload, customer)
        data = await store_stream(
            source,
            self.blobs,
            self.blocking,
            inline_threshold=-1,
            max_size=MAX_PART_SIZE,
            aead=None if data_key is None else data_key.aead,
            part_number=part_number,
        )
        faults.point("upload_part.blob_written")
        if content_md5 is not None and content_md5 != data.md5:
            self._discard(data)
            raise BadDigest(ExpectedDigest=content_md5.hex(), CalculatedDigest=data.md5.hex())
        if self.quota is not None and expected_size is None:
            try:
                await self.quota.check_bucket_write(bucket, add_bytes=data.size)
            except BaseException:
                self._discard(data)
                raise
        return await self._add_part(bucket, upload_id, part_number, data)

    async def upload_part_copy(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        source: ObjectVersion,
        byte_range: ByteRange | None,
        *,
        customer: CustomerKey | None = None,
        source_customer: CustomerKey | None = None,
    ) -> Part:
        upload = await self.get_upload(bucket, key, upload_id)
        if self.quota is not None:
            size = source.size if byte_range is None else byte_range.length
            await self.quota.check_bucket_write(bucket, add_bytes=size)
        data_key = await self._upload_key(upload, customer)
        source_key = None
        if self.keys is not None:
            source_key = await self.keys.open(source.encryption, source_customer)
        data = await copy_stream(
            source,
            self.blobs,
            self.blocking,
            inline_threshold=-1,
            byte_range=byte_range,
            source_aead=None if source_key is None else source_key.aead,
            aead=None if data_key is None else data_key.aead,
            part_number=part_number,
        )
        return await self._add_part(bucket, upload_id, part_number, data)

    async def _add_part(
        self, bucket: str, upload_id: str, part_number: int, data: StoredData
    ) -> Part:
        assert data.blob_id is not None
        part = Part(
            part_number=part_number,
            size=data.size,
            etag=data.etag,
            last_modified=now(),
            blob_id=data.blob_id,
            checksum=data.checksum,
        )
        try:
            freed = await self.blocking.write(
                self.meta, self.meta.put_part, bucket, upload_id, part
            )
        except BaseException:
            self._discard(data)
            raise
        faults.point("upload_part.committed")
        if freed:
            self.blocking.submit(self.blobs.delete, freed)
        return part

    async def complete(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        requested: Sequence[CompletedPart],
        *,
        condition: WriteCondition | None = None,
    ) -> ObjectVersion:
        upload = await self.get_upload(bucket, key, upload_id)
        if not requested:
            raise InvalidRequest("You must specify at least one part")
        if self.quota is not None:
            await self.quota.check_bucket_write(bucket, add_objects=1)
        uploaded = {
            p.part_number: p for p in await self.blocking(self.meta.get_parts, bucket, upload_id)
        }
        chosen: list[Part] = []
        previous = 0
        for entry in requested:
            if entry.part_number <= previous:
                raise InvalidPartOrder()
            previous = entry.part_number
            part = uploaded.get(entry.part_number)
            if part is None or etags.unquote(entry.etag) != part.etag:
                raise InvalidPart(PartNumber=str(entry.part_number), ETag=entry.etag)
            chosen.append(part)
        for part in chosen[:-1]:
            if part.size < MIN_PART_SIZE:
                raise EntityTooSmall(
                    ProposedSize=str(part.size),
                    MinSizeAllowed=str(MIN_PART_SIZE),
                    PartNumber=str(part.part_number),
                    ETag=etags.quote(part.etag),
                )
        version = ObjectVersion(
            bucket=bucket,
            key=key,
            version_id=new_version_id(),
            last_modified=now(),
            size=sum(p.size for p in chosen),
            etag=etags.multipart_etag(p.etag for p in chosen),
            owner_id=upload.owner_id,
            storage_class=upload.storage_class,
            headers=upload.headers,
            user_metadata=upload.user_metadata,
            checksum=_object_checksum(upload, requested, chosen),
            segments=tuple(
                Segment(p.blob_id, p.size, p.part_number, p.etag, p.checksum) for p in chosen
            ),
            encryption=upload.encryption,
        )
        faults.point("complete_upload.before_commit")
        result = await self.blocking.write(
            self.meta, self.meta.complete_upload, bucket, upload_id, version, condition=condition
        )
        faults.point("complete_upload.committed")
        if result.freed_blobs:
            self.blocking.submit(self.blobs.delete, result.freed_blobs)
        assert result.version is not None
        return result.version

    async def abort(self, bucket: str, key: str, upload_id: str) -> None:
        await self.get_upload(bucket, key, upload_id)
        freed = await self.blocking.write(self.meta, self.meta.abort_upload, bucket, upload_id)
        faults.point("abort_upload.committed")
        if freed:
            self.blocking.submit(self.blobs.delete, freed)

    def _discard(self, data: StoredData) -> None:
        if data.blob_id:
            self.blocking.submit(self.blobs.delete, (data.blob_id,))


def _object_checksum(
    upload: MultipartUpload, requested: Sequence[CompletedPart], chosen: Sequence[Part]
) -> Checksum | None:
    algorithm = upload.checksum_algorithm
    if algorithm is None:
        # No algorithm was asked for: as AWS does, record a full-object CRC64NVME, which the
        # parts' default checksums combine into, when every part has one.
        crc64 = ChecksumAlgorithm.CRC64NVME
        if all(p.checksum is not None and p.checksum.algorithm is crc64 for p in chosen):
            pairs = [(p.checksum.value, p.size) for p in chosen if p.checksum is not None]
            return checksums.full_object(crc64, pairs)
        return None
    for entry, part in zip(requested, chosen, strict=True):
        stored = part.checksum
        if stored is None or stored.algorithm is not algorithm:
            raise InvalidRequest(
                f"The upload was created using a {algorithm.value.lower()} checksum. The "
                f"complete request referenced part {part.part_number} which has no "
                f"{algorithm.value.lower()} checksum."
            )
        if entry.checksum is not None and entry.checksum.value != stored.value:
            raise InvalidPart(PartNumber=str(part.part_number))
    values = [p.checksum.value for p in chosen if p.checksum is not None]
    if upload.checksum_type is ChecksumType.FULL_OBJECT:
        return checksums.full_object(algorithm, zip(values, (p.size for p in chosen), strict=True))
    return checksums.composite(algorithm, values)
