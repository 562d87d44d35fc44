"""Listing use cases: the metadata store pages; this layer only moves them off the loop and
checks that the bucket exists (an empty page and a missing bucket must not look alike)."""

from __future__ import annotations

from onshore.domain.models import ListPage, PartPage, UploadPage, VersionPage
from onshore.service.blocking import Blocking
from onshore.storage.ports import MetadataStore


class ListingService:
    def __init__(self, meta: MetadataStore, blocking: Blocking) -> None:
        self.meta = meta
        self.blocking = blocking

    async def objects(
        self, bucket: str, *, prefix: str, delimiter: str, start_after: str, limit: int
    ) -> ListPage:
        return await self.blocking(
            self.meta.list_objects,
            bucket,
            prefix=prefix,
            delimiter=delimiter,
            start_after=start_after,
            limit=limit,
        )

    async def versions(
        self,
        bucket: str,
        *,
        prefix: str,
        delimiter: str,
        key_marker: str,
        version_id_marker: str,
        limit: int,
    ) -> VersionPage:
        return await self.blocking(
            self.meta.list_versions,
            bucket,
            prefix=prefix,
            delimiter=delimiter,
            key_marker=key_marker,
            version_id_marker=version_id_marker,
            limit=limit,
        )

    async def uploads(
        self,
        bucket: str,
        *,
        prefix: str,
        delimiter: str,
        key_marker: str,
        upload_id_marker: str,
        limit: int,
    ) -> UploadPage:
        return await self.blocking(
            self.meta.list_uploads,
            bucket,
            prefix=prefix,
            delimiter=delimiter,
            key_marker=key_marker,
            upload_id_marker=upload_id_marker,
            limit=limit,
        )

    async def parts(self, bucket: str, upload_id: str, *, marker: int, limit: int) -> PartPage:
        return await self.blocking(
            self.meta.list_parts, bucket, upload_id, part_number_marker=marker, limit=limit
        )
