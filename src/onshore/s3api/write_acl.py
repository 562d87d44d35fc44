"""The ACL an object write gives its new version (PutObject, CopyObject, and
CreateMultipartUpload for the object CompleteMultipartUpload creates).

With ACLs disabled (``BucketOwnerEnforced``) only owner-only ACL headers are accepted and
nothing is stored: the bucket owner owns every object. With ACLs enabled the object gets an
owner and an ACL, as on AWS:

* ``ObjectWriter``: the writing account owns the object;
* ``BucketOwnerPreferred``: the bucket owner owns it when it is written with the canned ACL
  ``bucket-owner-full-control``, else the writer does;

and its ACL is the one the request asks for (``x-amz-acl`` or ``x-amz-grant-*``), by default
``private`` (the object owner has FULL_CONTROL). A copy does not copy its source's ACL. The ACL
is handed to the service call that writes the version (or creates the upload), which commits it
in the same metadata transaction.
An unsigned writer (allowed by a public-read-write bucket) does not own what it writes: the
bucket owner does.
"""

from __future__ import annotations

from onshore.domain.acl import Acl, Ownership, canned
from onshore.domain.errors import AccessControlListNotSupported, NoSuchBucket
from onshore.s3api.acl import GRANT_HEADERS, acl_from_request, refuse_canned_acl
from onshore.s3api.http import Request
from onshore.s3api.operations import Services
from onshore.service.acls import AclService


async def write_acl(req: Request, services: Services) -> Acl | None:
    """The ACL the write in ``req`` stores with its version; None with ACLs disabled (after
    refusing any ACL that is not owner-only). Raises AccessDenied for a public ACL under
    Block Public Access's BlockPublicAcls."""
    access = await services.access.bucket(req.bucket)
    if access is None:
        raise NoSuchBucket(BucketName=req.bucket)
    headers = req.headers
    if not access.ownership.acls_enabled:
        if any(name in headers for name in GRANT_HEADERS):
            raise AccessControlListNotSupported()
        if "x-amz-acl" in headers:
            refuse_canned_acl(headers["x-amz-acl"])
        return None
    principal = req.principal
    owner = access.owner
    if principal is not None and not principal.is_anonymous:
        owner = principal.account_id
    preferred = access.ownership is Ownership.BUCKET_OWNER_PREFERRED
    if preferred and headers.get("x-amz-acl", "").strip() == "bucket-owner-full-control":
        owner = access.owner
    acl = acl_from_request(headers, b"", owner, access.owner) or canned("private", owner)
    await AclService(services.access).check(req.bucket, acl)
    return acl
