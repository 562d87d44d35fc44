"""Object ownership and ACL storage for buckets and object versions (see
:mod:`onshore.domain.acl` for the model).

* Object ownership is the bucket config ``ownership``. A bucket without one is
  ``BucketOwnerEnforced`` (the default for new buckets); DeleteBucketOwnershipControls stores
  ``none``: no controls, which on AWS behaves as ``ObjectWriter``.
* The bucket ACL is the bucket config ``acl`` (absent: the owner has FULL_CONTROL).
* An object version's ACL is a row of ``object_acls``, deleted with the version; a version
  without one (written while ACLs were disabled) has the bucket owner as its owner with
  FULL_CONTROL.

Block Public Access's ``BlockPublicAcls`` (bucket flag or the deployment-wide default) refuses
to store a public ACL with 403 AccessDenied, as AWS does.
"""

from __future__ import annotations

from onshore.domain.acl import NO_CONTROLS, Acl, Ownership, canned
from onshore.domain.errors import (
    AccessDenied,
    InvalidBucketAclWithObjectOwnership,
    NoSuchBucket,
    NoSuchKey,
    OwnershipControlsNotFoundError,
)
from onshore.service.access import ACL, OWNERSHIP, AccessControl, BucketAccess


class AclService:
    """ACL and ownership reads and writes; every write invalidates the access cache."""

    def __init__(self, access: AccessControl) -> None:
        self.access = access
        self.meta = access.meta
        self.blocking = access.blocking

    async def _bucket(self, bucket: str) -> BucketAccess:
        found = await self.access.bucket(bucket)
        if found is None:
            raise NoSuchBucket(BucketName=bucket)
        return found

    # --- object ownership -----------------------------------------------------------------------
    async def ownership(self, bucket: str) -> Ownership:
        return (await self._bucket(bucket)).ownership

    async def ownership_controls(self, bucket: str) -> Ownership:
        """The stored controls; OwnershipControlsNotFoundError after they were deleted."""
        await self._bucket(bucket)
        text = await self.blocking(self.meta.get_bucket_config, bucket, OWNERSHIP)
        if text == NO_CONTROLS:
            raise OwnershipControlsNotFoundError(BucketName=bucket)
        return Ownership.stored(text)

    async def set_ownership(self, bucket: str, ownership: Ownership) -> None:
        """Store object ownership. Going to BucketOwnerEnforced is refused while the bucket ACL
        grants anything to anyone but the owner (InvalidBucketAclWithObjectOwnership)."""
        access = await self._bucket(bucket)
        owner_only = canned("private", access.owner).grants
        if not ownership.acls_enabled and access.acl and access.acl.grants != owner_only:
            raise InvalidBucketAclWithObjectOwnership(
                "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced "
                "setting: reset the bucket ACL to private first"
            )
        await self._put_config(bucket, OWNERSHIP, ownership.value)
        if not ownership.acls_enabled:
            await self._put_config(bucket, ACL, None)

    async def delete_ownership(self, bucket: str) -> None:
        await self._bucket(bucket)
        await self._put_config(bucket, OWNERSHIP, NO_CONTROLS)

    async def _put_config(self, bucket: str, kind: str, document: str | None) -> None:
        await self.blocking(self.meta.put_bucket_config, bucket, kind, document)
        self.access.invalidate(bucket)

    # --- ACLs -----------------------------------------------------------------------------------
    def _refuse_public(self, access: BucketAccess, acl: Acl) -> None:
        if access.block.block_public_acls and acl.is_public:
            raise AccessDenied(
                "Access Denied: Block Public Access (BlockPublicAcls) forbids a public ACL"
            )

    async def check(self, bucket: str, acl: Acl) -> None:
        """AccessDenied if ``acl`` may not be stored on (an object of) ``bucket``."""
        self._refuse_public(await self._bucket(bucket), acl)

    async def bucket_acl(self, bucket: str) -> Acl:
        access = await self._bucket(bucket)
        return access.acl or canned("private", access.owner)

    async def put_bucket_acl(self, bucket: str, acl: Acl) -> None:
        self._refuse_public(await self._bucket(bucket), acl)
        await self._put_config(bucket, ACL, acl.to_json())

    async def object_acl(self, bucket: str, key: str, version_id: str | None) -> Acl:
        """The version's ACL. With ACLs disabled the bucket owner's FULL_CONTROL: a stored ACL
        is kept but counts for nothing until ACLs are enabled again (as on AWS)."""
        access = await self._bucket(bucket)
        if not access.ownership.acls_enabled:
            return canned("private", access.owner)
        text = await self.blocking(self.meta.get_object_acl, bucket, key, version_id)
        return canned("private", access.owner) if text is None else Acl.from_json(text)

    async def put_object_acl(self, bucket: str, key: str, version_id: str, acl: Acl) -> None:
        self._refuse_public(await self._bucket(bucket), acl)
        stored = await self.blocking(
            self.meta.put_object_acl, bucket, key, version_id, acl.to_json()
        )
        if not stored:
            raise NoSuchKey(Key=key)
