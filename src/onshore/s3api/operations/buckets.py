"""Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation,
GetBucketVersioning, PutBucketVersioning."""

from __future__ import annotations

import base64
import binascii

from onshore.domain.errors import (
    IllegalVersioningConfigurationException,
    InvalidArgument,
    MalformedXML,
)
from onshore.domain.models import Versioning
from onshore.s3api import xml
from onshore.s3api.bucket_acl import bucket_configs, create_bucket_acl
from onshore.s3api.http import Request, Response
from onshore.s3api.operations import Services, operation
from onshore.s3api.routing import Op


async def read_xml_body(req: Request, services: Services, *, required: bool = True) -> bytes:
    assert req.body is not None
    body = await req.body.read_all(services.config.max_xml_body)
    if required and not body.strip():
        raise MalformedXML()
    return body


def owner_xml(services: Services, req: Request) -> str:
    principal = req.principal
    owner_id = principal.account_id if principal else ""
    name = principal.display_name if principal else ""
    return f"<Owner>{xml.element('ID', owner_id)}{xml.element('DisplayName', name)}</Owner>"


@operation(Op.ListBuckets)
async def list_buckets(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListBuckets.html"""
    limit = req.int_query("max-buckets", 10000)
    if not 1 <= limit <= 10000:
        raise InvalidArgument(
            "Argument max-buckets must be an integer between 1 and 10000",
            ArgumentName="max-buckets",
            ArgumentValue=str(limit),
        )
    prefix = req.query.get("prefix", "")
    token = req.query.get("continuation-token")
    start_after = _decode_token(token) if token else ""
    assert req.principal is not None
    # Only the caller's own account's buckets, as on AWS (tenants never learn others' names).
    found = await services.buckets.list(
        owner_id=req.principal.account_id, prefix=prefix, start_after=start_after, limit=limit + 1
    )
    page, truncated = found[:limit], len(found) > limit
    items = "".join(
        "<Bucket>"
        + xml.element("Name", b.name)
        + xml.element("CreationDate", xml.timestamp(b.created))
        + xml.element("BucketRegion", b.region)
        + "</Bucket>"
        for b in page
    )
    parts = [owner_xml(services, req), f"<Buckets>{items}</Buckets>"]
    if truncated:
        parts.append(xml.element("ContinuationToken", _encode_token(page[-1].name)))
    if prefix:
        parts.append(xml.element("Prefix", prefix))
    return Response.xml(xml.document("ListAllMyBucketsResult", parts))


def _encode_token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode()


def _decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgument(
            "The continuation token provided is incorrect",
            ArgumentName="continuation-token",
        ) from None


@operation(Op.CreateBucket)
async def create_bucket(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateBucket.html"""
    body = await read_xml_body(req, services, required=False)
    location: str | None = None
    if body.strip():
        root = xml.parse(body)
        if xml.local(root.tag) != "CreateBucketConfiguration":
            raise MalformedXML()
        location = xml.text(root, "LocationConstraint") or None
    assert req.principal is not None
    ownership, acl = await create_bucket_acl(req, services, req.principal.account_id)
    if req.headers.get("x-amz-bucket-object-lock-enabled", "").lower() == "true":
        from onshore.domain.errors import S3NotImplemented

        raise S3NotImplemented("Object Lock is not implemented by onshore yet.")
    await services.buckets.create(
        req.bucket,
        owner_id=req.principal.account_id,
        location=location,
        configs=bucket_configs(ownership, acl),
    )
    services.access.invalidate(req.bucket)  # authorize() looked the bucket up before it existed
    return Response(200, {"Location": f"/{req.bucket}"})


@operation(Op.HeadBucket)
async def head_bucket(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html"""
    bucket = await services.buckets.get(req.bucket)
    return Response(
        200,
        {"x-amz-bucket-region": bucket.region, "x-amz-access-point-alias": "false"},
    )


@operation(Op.DeleteBucket)
async def delete_bucket(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucket.html"""
    await services.buckets.delete(req.bucket)
    return Response(204)


@operation(Op.GetBucketLocation)
async def get_bucket_location(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketLocation.html"""
    bucket = await services.buckets.get(req.bucket)
    body = (
        f'{xml.DECLARATION}<LocationConstraint xmlns="{xml.S3_NS}">'
        f"{xml.escape(bucket.region)}</LocationConstraint>"
    )
    return Response.xml(body.encode())


@operation(Op.GetBucketVersioning)
async def get_bucket_versioning(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketVersioning.html"""
    bucket = await services.buckets.get(req.bucket)
    status = xml.element("Status", bucket.versioning.value) if bucket.versioning.value else ""
    return Response.xml(xml.document("VersioningConfiguration", [status]))


@operation(Op.PutBucketVersioning)
async def put_bucket_versioning(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketVersioning.html"""
    root = xml.parse(await read_xml_body(req, services))
    if xml.local(root.tag) != "VersioningConfiguration":
        raise MalformedXML()
    status = xml.text(root, "Status")
    if xml.text(root, "MfaDelete") == "Enabled":
        from onshore.domain.errors import S3NotImplemented

        raise S3NotImplemented("MFA delete is not implemented by onshore.")
    if status not in ("Enabled", "Suspended"):
        raise IllegalVersioningConfigurationException(
            "The Versioning element must be specified" if status is None else MalformedXML.message
        )
    await services.buckets.get(req.bucket)
    await services.buckets.set_versioning(req.bucket, Versioning(status))
    return Response(200)
