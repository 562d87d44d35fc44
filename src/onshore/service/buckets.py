"""Bucket use cases: create, delete, list, versioning and location.

Bucket names are global in a deployment, as in an AWS partition: creating a name that exists is
``BucketAlreadyOwnedByYou`` for its owner and ``BucketAlreadyExists`` for anyone else. A bucket
lives in the region of the endpoint that created it. A LocationConstraint naming a region the
deployment does not serve at all is ``InvalidLocationConstraint``; one naming another region of
the deployment, sent to this region's endpoint, is ``IllegalLocationConstraintException``, as
AWS answers a regional endpoint asked for another region.
"""

from __future__ import annotations

from collections.abc import Mapping

from onshore.domain.errors import (
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    IllegalLocationConstraintException,
    InvalidLocationConstraint,
    NoSuchBucket,
)
from onshore.domain.models import Bucket, Versioning
from onshore.domain.names import check_bucket_name
from onshore.service import faults
from onshore.service.blocking import Blocking
from onshore.service.objects import now
from onshore.service.quotas import QuotaGuard
from onshore.storage.ports import BlobStore, MetadataStore


class BucketService:
    def __init__(
        self,
        meta: MetadataStore,
        blobs: BlobStore,
        blocking: Blocking,
        *,
        region: str,
        regions: tuple[str, ...] = (),
        quota: QuotaGuard | None = None,
    ) -> None:
        self.meta = meta
        self.blobs = blobs
        self.blocking = blocking
        self.region = region
        self.regions = regions or (region,)
        self.quota = quota

    async def create(
        self,
        name: str,
        *,
        owner_id: str,
        location: str | None,
        configs: Mapping[str, str] | None = None,
    ) -> Bucket:
        """Create a bucket; ``configs`` (its object ownership and ACL documents) are committed
        with it, in the same transaction."""
        check_bucket_name(name)
        if location is not None and location not in self.regions:
            raise InvalidLocationConstraint(
                f"The specified location-constraint is not valid. This deployment serves "
                f"{', '.join(repr(r) for r in self.regions)}.",
                LocationConstraint=location,
            )
        if location is not None and location != self.region:
            raise IllegalLocationConstraintException(
                f"The {location} location constraint is incompatible for the region specific "
                f"endpoint this request was sent to ({self.region}).",
                LocationConstraint=location,
            )
        if self.quota is not None:
            existing = await self.blocking.batched(self.meta.get_bucket, name)
            if existing is None:
                await self.quota.check(owner_id, add_buckets=1)
        wanted = Bucket(name=name, owner_id=owner_id, region=self.region, created=now())
        stored = await self.blocking(self.meta.create_bucket, wanted, configs=configs)
        if stored.created != wanted.created:
            if stored.owner_id == owner_id:
                raise BucketAlreadyOwnedByYou(BucketName=name)
            raise BucketAlreadyExists(BucketName=name)
        return stored

    async def get(self, name: str) -> Bucket:
        bucket = await self.blocking.batched(self.meta.get_bucket, name)
        if bucket is None:
            raise NoSuchBucket(BucketName=name)
        return bucket

    async def delete(self, name: str) -> None:
        freed = await self.blocking(self.meta.delete_bucket, name)
        faults.point("delete_bucket.committed")
        if freed:
            self.blocking.submit(self.blobs.delete, freed)

    async def list(
        self, *, owner_id: str | None, prefix: str, start_after: str, limit: int
    ) -> list[Bucket]:
        return await self.blocking(
            self.meta.list_buckets,
            owner_id=owner_id,
            prefix=prefix,
            start_after=start_after,
            limit=limit,
        )

    async def set_versioning(self, name: str, state: Versioning) -> None:
        await self.blocking(self.meta.set_versioning, name, state)
        faults.point("set_versioning.committed")
