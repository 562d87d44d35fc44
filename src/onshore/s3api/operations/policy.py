"""Bucket policy and Block Public Access operations: PutBucketPolicy, GetBucketPolicy,
DeleteBucketPolicy, GetBucketPolicyStatus, PutPublicAccessBlock, GetPublicAccessBlock,
DeletePublicAccessBlock.

A bucket policy travels as JSON (not XML) in both directions; it is validated when stored
(``MalformedPolicy`` says what is wrong) and enforced on every request from then on. See
``docs/iam.md``.
"""

from __future__ import annotations

from onshore.domain.errors import MalformedPolicy, MalformedXML
from onshore.s3api import xml
from onshore.s3api.http import Request, Response
from onshore.s3api.operations import Services, operation
from onshore.s3api.operations.buckets import read_xml_body
from onshore.s3api.routing import Op
from onshore.service.access import PAB_FLAGS, PublicAccessBlock
from onshore.service.policy import BUCKET_POLICY_MAX_BYTES


@operation(Op.PutBucketPolicy)
async def put_bucket_policy(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketPolicy.html"""
    assert req.body is not None
    body = await req.body.read_all(max(services.config.max_xml_body, BUCKET_POLICY_MAX_BYTES + 1))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPolicy("Policies must be valid UTF-8 JSON") from None
    await services.access.put_policy(req.bucket, text)
    return Response(204)


@operation(Op.GetBucketPolicy)
async def get_bucket_policy(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketPolicy.html"""
    text = await services.access.get_policy(req.bucket)
    return Response(200, {"Content-Type": "application/json"}, text.encode("utf-8"))


@operation(Op.DeleteBucketPolicy)
async def delete_bucket_policy(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucketPolicy.html"""
    await services.access.delete_policy(req.bucket)
    return Response(204)


@operation(Op.GetBucketPolicyStatus)
async def get_bucket_policy_status(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketPolicyStatus.html"""
    public = await services.access.policy_is_public(req.bucket)
    return Response.xml(xml.document("PolicyStatus", [xml.element("IsPublic", public)]))


@operation(Op.PutPublicAccessBlock)
async def put_public_access_block(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutPublicAccessBlock.html"""
    root = xml.parse(await read_xml_body(req, services))
    if xml.local(root.tag) != "PublicAccessBlockConfiguration":
        raise MalformedXML()
    flags: list[bool] = []
    for name in PAB_FLAGS:
        value = (xml.text(root, name) or "false").strip().lower()
        if value not in ("true", "false"):
            raise MalformedXML()
        flags.append(value == "true")
    await services.access.put_public_access_block(req.bucket, PublicAccessBlock(*flags))
    return Response(200)


@operation(Op.GetPublicAccessBlock)
async def get_public_access_block(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetPublicAccessBlock.html"""
    block = await services.access.get_public_access_block(req.bucket)
    parts = [xml.element(name, value) for name, value in block.flags().items()]
    return Response.xml(xml.document("PublicAccessBlockConfiguration", parts))


@operation(Op.DeletePublicAccessBlock)
async def delete_public_access_block(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeletePublicAccessBlock.html"""
    await services.access.delete_public_access_block(req.bucket)
    return Response(204)
