"""ACL and object ownership operations: GetBucketAcl, PutBucketAcl, GetObjectAcl,
PutObjectAcl, Get/Put/DeleteBucketOwnershipControls.

With ACLs disabled (``BucketOwnerEnforced``, the default, see :mod:`onshore.s3api.acl`) the
ACLs read as "the owner has FULL_CONTROL" and only that can be written; with ACLs enabled
(``ObjectWriter`` / ``BucketOwnerPreferred``) they are stored (:mod:`onshore.service.acls`)
and enforced (:mod:`onshore.service.access`)."""

from __future__ import annotations

from onshore.domain.acl import Acl, Ownership
from onshore.domain.errors import MalformedXML
from onshore.s3api import xml
from onshore.s3api.acl import acl_from_request, check_acl_request, render
from onshore.s3api.http import Request, Response
from onshore.s3api.operations import Services, operation
from onshore.s3api.operations.buckets import read_xml_body
from onshore.s3api.routing import Op
from onshore.service.acls import AclService


def _names(req: Request) -> dict[str, str]:
    principal = req.principal
    if principal is None or principal.is_anonymous:
        return {}
    return {principal.account_id: principal.display_name}


def _version_headers(req: Request, version_id: str) -> dict[str, str]:
    return {"x-amz-version-id": version_id} if "versionId" in req.query else {}


async def _new_acl(req: Request, services: Services, current: Acl, acls: AclService) -> Acl | None:
    """The ACL a Put*Acl request sets (None with ACLs disabled, after checking it is
    owner-only); the owner stays ``current.owner``."""
    body = await read_xml_body(req, services, required=False)
    ownership = await acls.ownership(req.bucket)
    if not ownership.acls_enabled:
        check_acl_request(req.headers, body, current.owner)
        return None
    bucket_owner = (await services.buckets.get(req.bucket)).owner_id
    acl = acl_from_request(req.headers, body, current.owner, bucket_owner, body_allowed=True)
    assert acl is not None  # body_allowed: no ACL at all is MalformedACLError
    return acl


@operation(Op.GetBucketAcl)
async def get_bucket_acl(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketAcl.html"""
    acl = await AclService(services.access).bucket_acl(req.bucket)
    return Response.xml(render(acl, _names(req)))


@operation(Op.PutBucketAcl)
async def put_bucket_acl(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketAcl.html"""
    acls = AclService(services.access)
    acl = await _new_acl(req, services, await acls.bucket_acl(req.bucket), acls)
    if acl is not None:
        await acls.put_bucket_acl(req.bucket, acl)
    return Response(200)


@operation(Op.GetObjectAcl)
async def get_object_acl(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObjectAcl.html"""
    version = await services.objects.get_version(req.bucket, req.key, req.query.get("versionId"))
    acl = await AclService(services.access).object_acl(req.bucket, req.key, version.version_id)
    return Response.xml(render(acl, _names(req)), headers=_version_headers(req, version.version_id))


@operation(Op.PutObjectAcl)
async def put_object_acl(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObjectAcl.html"""
    version = await services.objects.get_version(req.bucket, req.key, req.query.get("versionId"))
    acls = AclService(services.access)
    current = await acls.object_acl(req.bucket, req.key, version.version_id)
    acl = await _new_acl(req, services, current, acls)
    if acl is not None:
        await acls.put_object_acl(req.bucket, req.key, version.version_id, acl)
    return Response(200, _version_headers(req, version.version_id))


@operation(Op.GetBucketOwnershipControls)
async def get_bucket_ownership_controls(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketOwnershipControls.html"""
    ownership = await AclService(services.access).ownership_controls(req.bucket)
    rule = f"<Rule>{xml.element('ObjectOwnership', ownership.value)}</Rule>"
    return Response.xml(xml.document("OwnershipControls", [rule]))


@operation(Op.PutBucketOwnershipControls)
async def put_bucket_ownership_controls(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketOwnershipControls.html"""
    root = xml.parse(await read_xml_body(req, services))
    if xml.local(root.tag) != "OwnershipControls":
        raise MalformedXML()
    rules = xml.children(root, "Rule")
    if len(rules) != 1:
        raise MalformedXML()
    wanted = xml.text(rules[0], "ObjectOwnership")
    if wanted not in {o.value for o in Ownership}:
        raise MalformedXML()
    await AclService(services.access).set_ownership(req.bucket, Ownership(wanted))
    return Response(200)


@operation(Op.DeleteBucketOwnershipControls)
async def delete_bucket_ownership_controls(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucketOwnershipControls.html"""
    await AclService(services.access).delete_ownership(req.bucket)
    return Response(204)
