"""CreateBucket's ``x-amz-object-ownership`` and ACL headers.

Without ``x-amz-object-ownership`` a new bucket is ``BucketOwnerEnforced`` (ACLs disabled), so
an ACL header other than an owner-only one is refused with
``InvalidBucketAclWithObjectOwnership``, as AWS refuses it. With ``ObjectWriter`` or
``BucketOwnerPreferred`` the canned ACL or grant headers become the bucket's ACL; a public one
is refused (403 AccessDenied) while the deployment-wide Block Public Access is on, since the
new bucket would be born with BlockPublicAcls. Both are committed with the bucket, in the
transaction that creates it.
"""

from __future__ import annotations

from onshore.domain.acl import Acl, Ownership
from onshore.domain.errors import AccessDenied, InvalidArgument, InvalidBucketAclWithObjectOwnership
from onshore.s3api.acl import GRANT_HEADERS, acl_from_request, refuse_canned_acl
from onshore.s3api.http import Request
from onshore.s3api.operations import Services
from onshore.service.access import ACL, OWNERSHIP

HEADER = "x-amz-object-ownership"


async def create_bucket_acl(
    req: Request, services: Services, owner: str
) -> tuple[Ownership | None, Acl | None]:
    """Validate the request's ownership and ACL headers, before the bucket is created."""
    ownership = None
    if HEADER in req.headers:
        raw = req.headers[HEADER].strip()
        if raw not in {o.value for o in Ownership}:
            raise InvalidArgument(ArgumentName=HEADER, ArgumentValue=raw)
        ownership = Ownership(raw)
    if ownership is None or not ownership.acls_enabled:
        if "x-amz-acl" in req.headers:
            refuse_canned_acl(req.headers["x-amz-acl"], InvalidBucketAclWithObjectOwnership)
        if any(name in req.headers for name in GRANT_HEADERS):
            raise InvalidBucketAclWithObjectOwnership()
        return ownership, None
    acl = acl_from_request(req.headers, b"", owner)
    if acl is not None and acl.is_public and services.access.deployment_block.block_public_acls:
        raise AccessDenied(
            "Access Denied: Block Public Access (BlockPublicAcls) forbids a public ACL"
        )
    return ownership, acl


def bucket_configs(ownership: Ownership | None, acl: Acl | None) -> dict[str, str]:
    """The documents a new bucket is created with (in the transaction that creates it) for what
    :func:`create_bucket_acl` accepted: its object ownership and its ACL."""
    configs: dict[str, str] = {}
    if ownership is not None:
        configs[OWNERSHIP] = ownership.value
    if acl is not None:
        configs[ACL] = acl.to_json()
    return configs
