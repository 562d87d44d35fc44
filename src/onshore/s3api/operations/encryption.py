"""Bucket default encryption: PutBucketEncryption, GetBucketEncryption, DeleteBucketEncryption
(see :mod:`onshore.service.encryption.defaults`)."""

from __future__ import annotations

from onshore.domain.errors import (
    InvalidArgument,
    MalformedXML,
    S3NotImplemented,
    ServerSideEncryptionConfigurationNotFoundError,
)
from onshore.domain.models import SseMode
from onshore.s3api import xml
from onshore.s3api.http import Request, Response
from onshore.s3api.operations import Services, operation
from onshore.s3api.operations.buckets import read_xml_body
from onshore.s3api.routing import Op
from onshore.service.encryption.defaults import BucketDefaults, DefaultEncryption


def _defaults(services: Services) -> BucketDefaults:
    keys = services.objects.keys
    if keys is None or keys.defaults is None:
        raise S3NotImplemented("Encryption at rest is not configured on this server.")
    return keys.defaults


@operation(Op.PutBucketEncryption)
async def put_bucket_encryption(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketEncryption.html"""
    root = xml.parse(await read_xml_body(req, services))
    if xml.local(root.tag) != "ServerSideEncryptionConfiguration":
        raise MalformedXML()
    rules = xml.children(root, "Rule")
    if len(rules) != 1:
        raise MalformedXML()
    applied = xml.children(rules[0], "ApplyServerSideEncryptionByDefault")
    if len(applied) != 1:
        raise MalformedXML()
    algorithm = xml.text(applied[0], "SSEAlgorithm")
    if algorithm is None:
        raise MalformedXML()
    kms_key_id = xml.text(applied[0], "KMSMasterKeyID")
    if algorithm == "aws:kms:dsse":
        raise S3NotImplemented("DSSE-KMS bucket defaults are not implemented by onshore.")
    if algorithm not in (SseMode.S3.value, SseMode.KMS.value) or (
        kms_key_id is not None and algorithm != SseMode.KMS.value
    ):
        raise InvalidArgument(
            "The server side encryption configuration is not valid.",
            ArgumentName="SSEAlgorithm",
            ArgumentValue=algorithm[:64],
        )
    bucket_key = (xml.text(rules[0], "BucketKeyEnabled") or "false").lower() == "true"
    await services.buckets.get(req.bucket)
    config = DefaultEncryption(SseMode(algorithm), bucket_key, kms_key_id or None)
    await _defaults(services).put(req.bucket, config)
    return Response(200)


@operation(Op.GetBucketEncryption)
async def get_bucket_encryption(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketEncryption.html"""
    await services.buckets.get(req.bucket)
    config = await _defaults(services).get(req.bucket, fresh=True)
    if config is None:
        raise ServerSideEncryptionConfigurationNotFoundError(BucketName=req.bucket)
    rule = (
        "<Rule><ApplyServerSideEncryptionByDefault>"
        + xml.element("SSEAlgorithm", config.mode.value)
        + (xml.element("KMSMasterKeyID", config.kms_key_id) if config.kms_key_id else "")
        + "</ApplyServerSideEncryptionByDefault>"
        + xml.element("BucketKeyEnabled", config.bucket_key)
        + "</Rule>"
    )
    return Response.xml(xml.document("ServerSideEncryptionConfiguration", [rule]))


@operation(Op.DeleteBucketEncryption)
async def delete_bucket_encryption(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucketEncryption.html"""
    await services.buckets.get(req.bucket)
    await _defaults(services).delete(req.bucket)
    return Response(204)
