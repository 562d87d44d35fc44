"""ACL and object ownership operations with ACLs disabled (``BucketOwnerEnforced``, see
:mod:`onshore.s3api.acl`): GetBucketAcl, PutBucketAcl, GetObjectAcl, PutObjectAcl,
GetBucketOwnershipControls, PutBucketOwnershipControls."""

from __future__ import annotations

from onshore.domain.errors import MalformedXML, S3NotImplemented
from onshore.s3api import xml
from onshore.s3api.acl import acl_document, check_acl_request
from onshore.s3api.http import Request, Response
from onshore.s3api.operations import Services, operation
from onshore.s3api.operations.buckets import read_xml_body
from onshore.s3api.routing import Op

OWNERSHIP = "BucketOwnerEnforced"


async def _owner(req: Request, services: Services) -> str:
    return (await services.buckets.get(req.bucket)).owner_id


def _display_name(req: Request, owner_id: str) -> str:
    principal = req.principal
    return principal.display_name if principal and principal.account_id == owner_id else ""


@operation(Op.GetBucketAcl)
async def get_bucket_acl(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketAcl.html"""
    owner = await _owner(req, services)
    return Response.xml(acl_document(owner, _display_name(req, owner)))


@operation(Op.PutBucketAcl)
async def put_bucket_acl(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketAcl.html"""
    owner = await _owner(req, services)
    body = await read_xml_body(req, services, required=False)
    check_acl_request(req.headers, body, owner)
    return Response(200)


@operation(Op.GetObjectAcl)
async def get_object_acl(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObjectAcl.html"""
    owner = await _owner(req, services)
    version = await services.objects.get_version(req.bucket, req.key, req.query.get("versionId"))
    headers = {"x-amz-version-id": version.version_id} if "versionId" in req.query else {}
    return Response.xml(acl_document(owner, _display_name(req, owner)), headers=headers)


@operation(Op.PutObjectAcl)
async def put_object_acl(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObjectAcl.html"""
    owner = await _owner(req, services)
    await services.objects.get_version(req.bucket, req.key, req.query.get("versionId"))
    body = await read_xml_body(req, services, required=False)
    check_acl_request(req.headers, body, owner)
    return Response(200)


@operation(Op.GetBucketOwnershipControls)
async def get_bucket_ownership_controls(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketOwnershipControls.html"""
    await services.buckets.get(req.bucket)
    rule = f"<Rule>{xml.element('ObjectOwnership', OWNERSHIP)}</Rule>"
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
    if wanted not in ("BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter"):
        raise MalformedXML()
    await services.buckets.get(req.bucket)
    if wanted != OWNERSHIP:
        raise S3NotImplemented(
            f"ObjectOwnership {wanted} (ACLs enabled) is not implemented by onshore; "
            "only BucketOwnerEnforced is."
        )
    return Response(200)
