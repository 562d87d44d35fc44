"""Access control lists on the wire: ``x-amz-acl``, the ``x-amz-grant-*`` headers and the
``AccessControlPolicy`` XML, parsed into a :class:`~onshore.domain.acl.Acl` and rendered back.

With ACLs enabled (object ownership ``ObjectWriter`` / ``BucketOwnerPreferred``) any ACL is
accepted (:func:`acl_from_request`). With *ACLs disabled*, S3's object ownership setting
``BucketOwnerEnforced`` — the AWS default for new buckets since April 2023, and onshore's
default — turns ACLs off: the bucket owner owns every object,
access is decided by policies alone, and an ACL can only restate that (the canned ACLs
``private`` and ``bucket-owner-full-control``, or an XML ACL granting the owner
``FULL_CONTROL`` and nothing else). Any other ACL is refused with
``AccessControlListNotSupported`` (on CreateBucket: ``InvalidBucketAclWithObjectOwnership``), as
AWS refuses it.

Reference: https://docs.aws.amazon.com/AmazonS3/latest/userguide/about-object-ownership.html
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from onshore.domain.acl import (
    KNOWN_GROUPS,
    MAX_GRANTS,
    Acl,
    Grant,
    GranteeType,
    Permission,
    canned,
)
from onshore.domain.errors import (
    AccessControlListNotSupported,
    InvalidArgument,
    InvalidRequest,
    MalformedACLError,
    S3Error,
    UnexpectedContent,
    UnresolvableGrantByEmailAddress,
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
    return render(canned("private", owner_id), {owner_id: display_name})


def render(acl: Acl, names: Mapping[str, str]) -> bytes:
    """The ``AccessControlPolicy`` document of ``acl``; ``names``: display names by account."""

    def user(account: str) -> str:
        return xml.element("ID", account) + xml.element("DisplayName", names.get(account, ""))

    grants = []
    for grant in acl.grants:
        if grant.type is GranteeType.CANONICAL_USER:
            inner = user(grant.value)
        else:
            inner = xml.element("URI", grant.value)
        grants.append(
            f'<Grant><Grantee xmlns:xsi="{XSI}" xsi:type="{grant.type.value}">{inner}</Grantee>'
            f"{xml.element('Permission', grant.permission.value)}</Grant>"
        )
    return xml.document(
        "AccessControlPolicy",
        [
            f"<Owner>{user(acl.owner)}</Owner>",
            f"<AccessControlList>{''.join(grants)}</AccessControlList>",
        ],
    )


# --- ACLs enabled: parse any ACL ----------------------------------------------------------------
_HEADER_PERMISSION = {
    "x-amz-grant-full-control": Permission.FULL_CONTROL,
    "x-amz-grant-read": Permission.READ,
    "x-amz-grant-read-acp": Permission.READ_ACP,
    "x-amz-grant-write": Permission.WRITE,
    "x-amz-grant-write-acp": Permission.WRITE_ACP,
}
_GRANTEE = re.compile(r'\s*(id|uri|emailAddress)\s*=\s*(?:"([^"]*)"|([^,"\s]+))\s*(?:,|$)')
_ACCOUNT = re.compile(r"^[0-9]{12}$")


def _grantee(kind: str, value: str, permission: Permission) -> Grant:
    if kind == "emailAddress":
        raise UnresolvableGrantByEmailAddress()
    if kind == "id":
        if not _ACCOUNT.match(value):
            raise InvalidArgument(
                "Invalid id", ArgumentName="CanonicalUser/ID", ArgumentValue=value
            )
        return Grant(GranteeType.CANONICAL_USER, value, permission)
    if value not in KNOWN_GROUPS:
        raise InvalidArgument("Invalid group uri", ArgumentName="Group/URI", ArgumentValue=value)
    return Grant(GranteeType.GROUP, value, permission)


def _header_grants(headers: Mapping[str, str]) -> list[Grant]:
    grants: list[Grant] = []
    for name, permission in _HEADER_PERMISSION.items():
        if name not in headers:
            continue
        text = headers[name].strip()
        position = 0
        while position < len(text):
            match = _GRANTEE.match(text, position)
            if match is None or match.end() == position:
                raise InvalidArgument(ArgumentName=name, ArgumentValue=headers[name])
            grants.append(_grantee(match[1], match[2] or match[3] or "", permission))
            position = match.end()
    return grants


def _xml_grants(body: bytes) -> list[Grant]:
    root = xml.parse(body)
    if xml.local(root.tag) != "AccessControlPolicy":
        raise MalformedACLError()
    acl = xml.child(root, "AccessControlList")
    grants: list[Grant] = []
    for grant in xml.children(acl, "Grant") if acl is not None else []:
        grantee = xml.child(grant, "Grantee")
        permission = xml.text(grant, "Permission")
        if grantee is None or permission not in Permission.__members__:
            raise MalformedACLError()
        kind = grantee.get(f"{{{XSI}}}type")
        if kind == "CanonicalUser":
            grants.append(_grantee("id", xml.text(grantee, "ID") or "", Permission(permission)))
        elif kind == "Group":
            grants.append(_grantee("uri", xml.text(grantee, "URI") or "", Permission(permission)))
        elif kind == "AmazonCustomerByEmail":
            raise UnresolvableGrantByEmailAddress()
        else:
            raise MalformedACLError()
    return grants


def acl_from_request(
    headers: Mapping[str, str],
    body: bytes,
    owner: str,
    bucket_owner: str | None = None,
    *,
    body_allowed: bool = False,
) -> Acl | None:
    """The ACL a request sets with ACLs enabled, None if it sets none. ``owner``: the owner of
    the bucket or object the ACL is for; ``bucket_owner``: an object's bucket owner (for the
    ``bucket-owner-*`` canned ACLs). ``body_allowed``: Put*Acl, where the XML body may carry
    the ACL. As on AWS, a canned ACL, grant headers and a body exclude each other."""
    grant_headers = any(name in headers for name in GRANT_HEADERS)
    has_body = body_allowed and bool(body.strip())
    if "x-amz-acl" in headers:
        if grant_headers:
            raise InvalidRequest("Specifying both Canned ACLs and Header Grants is not allowed")
        if has_body:
            raise UnexpectedContent("This request does not support content")
        name = headers["x-amz-acl"].strip()
        if name not in CANNED_ACLS:
            raise InvalidArgument(ArgumentName="x-amz-acl", ArgumentValue=name)
        return canned(name, owner, bucket_owner)
    if grant_headers:
        if has_body:
            raise UnexpectedContent("This request does not support content")
        grants = _header_grants(headers)
    elif has_body:
        grants = _xml_grants(body)
    elif body_allowed:
        raise MalformedACLError()
    else:
        return None
    if len(grants) > MAX_GRANTS:
        raise MalformedACLError("The request contains more than 100 grants")
    return Acl(owner, tuple(dict.fromkeys(grants)))
