"""Multipart operations: CreateMultipartUpload, UploadPart, UploadPartCopy,
CompleteMultipartUpload, AbortMultipartUpload, ListParts."""

from __future__ import annotations

from onshore.domain import etag as etags
from onshore.domain import preconditions
from onshore.domain.errors import InvalidArgument, InvalidRequest, MalformedXML, NoSuchUpload
from onshore.domain.models import Checksum, ChecksumAlgorithm, ChecksumType
from onshore.domain.numbers import decimal
from onshore.s3api import headers as hdr
from onshore.s3api import sse, xml
from onshore.s3api.http import Request, Response
from onshore.s3api.operations import Services, operation
from onshore.s3api.operations.buckets import read_xml_body
from onshore.s3api.operations.objects import copy_source
from onshore.s3api.routing import Op
from onshore.s3api.write_acl import write_acl
from onshore.service.multipart import CompletedPart, check_part_number
from onshore.service.objects import copy_source_range


def _upload_id(req: Request) -> str:
    upload_id = req.query.get("uploadId", "")
    if not upload_id:
        raise NoSuchUpload(UploadId=upload_id)
    return upload_id


def _checksum_algorithm(req: Request) -> ChecksumAlgorithm | None:
    raw = req.headers.get("x-amz-checksum-algorithm")
    if raw is None:
        return None
    try:
        return ChecksumAlgorithm(raw.upper())
    except ValueError:
        raise InvalidRequest(
            "Checksum algorithm provided is unsupported. Please try again with any of the valid "
            "types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]"
        ) from None


def _checksum_type(req: Request, algorithm: ChecksumAlgorithm | None) -> ChecksumType | None:
    raw = req.headers.get("x-amz-checksum-type")
    if raw is None:
        if algorithm is None:
            return None
        full = algorithm is ChecksumAlgorithm.CRC64NVME
        return ChecksumType.FULL_OBJECT if full else ChecksumType.COMPOSITE
    try:
        kind = ChecksumType(raw.upper())
    except ValueError:
        raise InvalidRequest("Value for x-amz-checksum-type header is invalid.") from None
    if algorithm is None:
        raise InvalidRequest(
            "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm "
            "header."
        )
    sha = algorithm in (ChecksumAlgorithm.SHA1, ChecksumAlgorithm.SHA256)
    if (kind is ChecksumType.FULL_OBJECT and sha) or (
        kind is ChecksumType.COMPOSITE and algorithm is ChecksumAlgorithm.CRC64NVME
    ):
        raise InvalidRequest(
            f"The {kind.value} checksum type cannot be used with the "
            f"{algorithm.value.lower()} checksum algorithm."
        )
    return kind


@operation(Op.CreateMultipartUpload)
async def create_multipart_upload(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateMultipartUpload.html"""
    assert req.principal is not None
    algorithm = _checksum_algorithm(req)
    kind = _checksum_type(req, algorithm)
    new = hdr.new_object(req.headers, with_condition=False)
    acl = await write_acl(req, services)
    upload = await services.multipart.create(
        req.bucket,
        req.key,
        new,
        owner_id=req.principal.account_id,
        checksum_algorithm=algorithm,
        checksum_type=kind,
        acl=acl,
    )
    headers = sse.response_headers(upload.encryption, context=new.sse.kms_context is not None)
    if algorithm is not None and kind is not None:
        headers["x-amz-checksum-algorithm"] = algorithm.value
        headers["x-amz-checksum-type"] = kind.value
    body = [
        xml.element("Bucket", req.bucket),
        xml.element("Key", req.key),
        xml.element("UploadId", upload.upload_id),
    ]
    return Response.xml(xml.document("InitiateMultipartUploadResult", body), headers=headers)


@operation(Op.UploadPart)
async def upload_part(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_UploadPart.html"""
    assert req.body is not None
    hdr.refuse_unsupported(req.headers)
    number = check_part_number(req.query.get("partNumber"))
    part = await services.multipart.upload_part(
        req.bucket,
        req.key,
        _upload_id(req),
        number,
        req.body,
        content_md5=hdr.content_md5(req.headers),
        expected_size=req.body.decoded_length,
        customer=sse.customer_key(req.headers),
    )
    upload = await services.multipart.get_upload(req.bucket, req.key, _upload_id(req))
    headers = {"ETag": etags.quote(part.etag), **sse.response_headers(upload.encryption)}
    if part.checksum is not None:
        headers["x-amz-checksum-" + part.checksum.algorithm.value.lower()] = part.checksum.value
    return Response(200, headers)


@operation(Op.UploadPartCopy)
async def upload_part_copy(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_UploadPartCopy.html"""
    number = check_part_number(req.query.get("partNumber"))
    upload_id = _upload_id(req)
    upload = await services.multipart.get_upload(req.bucket, req.key, upload_id)
    source = await copy_source(req, services)
    preconditions.check(
        req.headers, source.etag, source.last_modified, prefix="x-amz-copy-source-if-"
    )
    byte_range = copy_source_range(req.headers.get("x-amz-copy-source-range"), source.size)
    part = await services.multipart.upload_part_copy(
        req.bucket,
        req.key,
        upload_id,
        number,
        source,
        byte_range,
        customer=sse.customer_key(req.headers),
        source_customer=sse.customer_key(req.headers, sse.COPY_SOURCE_CUSTOMER),
    )
    body = [
        xml.element("ETag", etags.quote(part.etag)),
        xml.element("LastModified", xml.timestamp(part.last_modified)),
    ]
    headers = sse.response_headers(upload.encryption)
    if source.version_id != "null":
        headers["x-amz-copy-source-version-id"] = source.version_id
    return Response.xml(xml.document("CopyPartResult", body), headers=headers)


@operation(Op.CompleteMultipartUpload)
async def complete_multipart_upload(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_CompleteMultipartUpload.html"""
    upload_id = _upload_id(req)
    root = xml.parse(await read_xml_body(req, services))
    if xml.local(root.tag) != "CompleteMultipartUpload":
        raise MalformedXML()
    requested: list[CompletedPart] = []
    for node in xml.children(root, "Part"):
        number = decimal(xml.text(node, "PartNumber") or "")
        etag = xml.text(node, "ETag")
        if number is None or etag is None:
            raise MalformedXML()
        checksum = None
        for algorithm in ChecksumAlgorithm:
            value = xml.text(node, "Checksum" + algorithm.value)
            if value:
                checksum = Checksum(algorithm, value)
        requested.append(CompletedPart(number, etag, checksum))
    version = await services.multipart.complete(
        req.bucket, req.key, upload_id, requested, condition=hdr.write_condition(req.headers)
    )
    body = [
        xml.element("Location", f"/{req.bucket}/{req.key}"),
        xml.element("Bucket", req.bucket),
        xml.element("Key", req.key),
        xml.element("ETag", etags.quote(version.etag)),
    ]
    if version.checksum is not None:
        body.append(
            xml.element("Checksum" + version.checksum.algorithm.value, version.checksum.value)
        )
        body.append(xml.element("ChecksumType", version.checksum.type.value))
    headers = {**hdr.version_headers(version), **sse.response_headers(version.encryption)}
    return Response.xml(xml.document("CompleteMultipartUploadResult", body), headers=headers)


@operation(Op.AbortMultipartUpload)
async def abort_multipart_upload(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_AbortMultipartUpload.html"""
    await services.multipart.abort(req.bucket, req.key, _upload_id(req))
    return Response(204)


@operation(Op.ListParts)
async def list_parts(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListParts.html"""
    upload_id = _upload_id(req)
    upload = await services.multipart.get_upload(req.bucket, req.key, upload_id)
    limit = req.int_query("max-parts", 1000, maximum=1000)
    marker = req.int_query("part-number-marker", 0)
    if marker > 10000:
        raise InvalidArgument(
            "Part number marker must be at most 10000", ArgumentName="part-number-marker"
        )
    page = await services.listing.parts(req.bucket, upload_id, marker=marker, limit=max(limit, 1))
    parts = page.parts if limit else ()
    who = f"{xml.element('ID', upload.owner_id)}{xml.element('DisplayName', upload.owner_id)}"
    out = [
        xml.element("Bucket", req.bucket),
        xml.element("Key", req.key),
        xml.element("UploadId", upload_id),
        f"<Initiator>{who}</Initiator><Owner>{who}</Owner>",
        xml.element("StorageClass", upload.storage_class),
        xml.element("PartNumberMarker", marker),
        xml.element("NextPartNumberMarker", parts[-1].part_number if parts else 0),
        xml.element("MaxParts", limit),
        xml.element("IsTruncated", page.is_truncated if limit else False),
    ]
    if upload.checksum_algorithm is not None:
        out.append(xml.element("ChecksumAlgorithm", upload.checksum_algorithm.value))
    if upload.checksum_type is not None:
        out.append(xml.element("ChecksumType", upload.checksum_type.value))
    for part in parts:
        checksum = ""
        if part.checksum is not None:
            checksum = xml.element("Checksum" + part.checksum.algorithm.value, part.checksum.value)
        out.append(
            f"<Part>{xml.element('PartNumber', part.part_number)}"
            f"{xml.element('LastModified', xml.timestamp(part.last_modified))}"
            f"{xml.element('ETag', etags.quote(part.etag))}{xml.element('Size', part.size)}"
            f"{checksum}</Part>"
        )
    return Response.xml(xml.document("ListPartsResult", out))
