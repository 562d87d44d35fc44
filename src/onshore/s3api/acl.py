"""Access control lists, as far as onshore has them: *ACLs disabled*.

S3's object ownership setting ``BucketOwnerEnforced`` — the AWS default for new buckets since
April 2023, and onshore's only setting — turns ACLs off: the bucket owner owns every object,
access is decided by policies alone, and an ACL can only restate that (the canned ACLs
``private`` and ``bucket-owner-full-control``, or an XML ACL granting the owner
``FULL_CONTROL`` and nothing else). Any other ACL is refused with
``AccessControlListNotSupported`` (on CreateBucket: ``InvalidBucketAclWithObjectOwnership``), as
AWS refuses it.

Reference: https://docs.aws.amazon.com/AmazonS3/latest/userguide/about-object-ownership.html
"""

from __future__ import annotations

from collections.abc import Mapping

from onshore.domain.errors import (
    AccessControlListNotSupported,
    InvalidArgument,
    MalformedACLError,
    S3Error,
)
from onshore.s3api import xml

CANNED_ACLS = frozenset(
    {
        "private",
        "public-read",
        "public-read-write",
        "authenticated-read",
        "aws-exec-read",
        "bucket-owner-read",
        "bucket-owner-full-control",
        "log-delivery-write",
    }
)
#: Canned ACLs that only restate owner-only access, so they are accepted with ACLs disabled.
OWNER_ONLY = frozenset({"private", "bucket-owner-full-control"})
GRANT_HEADERS = (
    "x-amz-grant-full-control",
    "x-amz-grant-read",
    "x-amz-grant-read-acp",
    "x-amz-grant-write",
    "x-amz-grant-write-acp",
)
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def refuse_canned_acl(acl: str, error: type[S3Error] = AccessControlListNotSupported) -> None:
    """Raise unless ``acl`` (an ``x-amz-acl`` value) restates owner-only access."""
    acl = acl.strip()
    if acl not in CANNED_ACLS:
        raise InvalidArgument(ArgumentName="x-amz-acl", ArgumentValue=acl)
    if acl not in OWNER_ONLY:
        raise error()


def check_acl_request(headers: Mapping[str, str], body: bytes, owner_id: str) -> None:
    """A PutBucketAcl / PutObjectAcl request: accepted only if it grants the owner full
    control and nothing else."""
    if "x-amz-acl" in headers:
        refuse_canned_acl(headers["x-amz-acl"])
    if any(name in headers for name in GRANT_HEADERS):
        raise AccessControlListNotSupported()
    if not body.strip():
        if "x-amz-acl" not in headers:
            raise MalformedACLError()
        return
    root = xml.parse(body)
    if xml.local(root.tag) != "AccessControlPolicy":
        raise MalformedACLError()
    acl = xml.child(root, "AccessControlList")
    grants = xml.children(acl, "Grant") if acl is not None else []
    for grant in grants:
        grantee = xml.child(grant, "Grantee")
        permission = xml.text(grant, "Permission")
        if grantee is None or permission is None:
            raise MalformedACLError()
        kind = grantee.get(f"{{{XSI}}}type")
        if kind != "CanonicalUser" or xml.text(grantee, "ID") != owner_id:
            raise AccessControlListNotSupported()
        if permission != "FULL_CONTROL":
            raise AccessControlListNotSupported()


def acl_document(owner_id: str, display_name: str) -> bytes:
    """The ACL with ACLs disabled: the owner has FULL_CONTROL."""
    owner = xml.element("ID", owner_id) + xml.element("DisplayName", display_name)
    grant = (
        f'<Grant><Grantee xmlns:xsi="{XSI}" xsi:type="CanonicalUser">{owner}</Grantee>'
        "<Permission>FULL_CONTROL</Permission></Grant>"
    )
    return xml.document(
        "AccessControlPolicy",
        [f"<Owner>{owner}</Owner>", f"<AccessControlList>{grant}</AccessControlList>"],
    )
