"""Object operations: PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects,
CopyObject, GetObjectAttributes."""

from __future__ import annotations

import asyncio
from urllib.parse import unquote

from onshore.domain import etag as etags
from onshore.domain import preconditions
from onshore.domain.errors import (
    AccessDenied,
    InvalidArgument,
    InvalidPartNumber,
    InvalidRequest,
    MalformedXML,
    NoSuchBucket,
    S3Error,
)
from onshore.domain.models import ObjectVersion
from onshore.domain.numbers import decimal
from onshore.domain.ranges import ByteRange, parse_range
from onshore.s3api import headers as hdr
from onshore.s3api import sse, xml
from onshore.s3api.http import Request, Response
from onshore.s3api.operations import Services, operation
from onshore.s3api.operations.buckets import read_xml_body
from onshore.s3api.routing import Op
from onshore.s3api.write_acl import write_acl
from onshore.service.multipart import check_part_number
from onshore.service.objects import NewObject, http_date

MAX_COPY_SOURCE = 5 * 1024**3
MAX_DELETE_KEYS = 1000


def _version_id(req: Request) -> str | None:
    value = req.query.get("versionId")
    if value == "":
        raise InvalidArgument("Version id cannot be the empty string", ArgumentName="versionId")
    return value


def _checksum_headers(version: ObjectVersion, req: Request) -> dict[str, str]:
    mode = req.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED"
    return hdr.object_headers(version, checksum_mode=mode)


@operation(Op.PutObject)
async def put_object(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html"""
    assert req.body is not None and req.principal is not None
    new = hdr.new_object(req.headers)
    acl = await write_acl(req, services)
    version = await services.objects.put_object(
        req.bucket,
        req.key,
        req.body,
        new,
        owner_id=req.principal.account_id,
        expected_size=req.body.decoded_length,
        acl=acl,
    )
    out = {"ETag": etags.quote(version.etag), **hdr.version_headers(version)}
    out.update(sse.response_headers(version.encryption, context=new.sse.kms_context is not None))
    if version.checksum is not None:
        out["x-amz-checksum-" + version.checksum.algorithm.value.lower()] = version.checksum.value
        out["x-amz-checksum-type"] = version.checksum.type.value
    return Response(200, out)


async def _read_target(
    req: Request, services: Services
) -> tuple[ObjectVersion, ByteRange | None, dict[str, str]]:
    """Resolve the version, conditions, range and partNumber shared by GET and HEAD."""
    version = await services.objects.get_version(
        req.bucket, req.key, _version_id(req), customer=sse.customer_key(req.headers)
    )
    preconditions.check(req.headers, version.etag, version.last_modified)
    headers = _checksum_headers(version, req)
    part = req.query.get("partNumber")
    range_header = req.headers.get("range")
    if part is not None:
        if range_header:
            raise InvalidRequest("Cannot specify both Range header and partNumber query parameter")
        return version, _part_range(version, part, headers), headers
    byte_range = parse_range(range_header, version.size)
    if byte_range is not None:
        headers.pop("x-amz-checksum-type", None)
        for name in [h for h in headers if h.startswith("x-amz-checksum-")]:
            del headers[name]
    return version, byte_range, headers


def _part_range(version: ObjectVersion, raw: str, headers: dict[str, str]) -> ByteRange | None:
    number = check_part_number(raw)
    count = version.parts_count
    if count == 0:
        if number != 1:
            raise InvalidPartNumber()
        return None
    if number > count:
        raise InvalidPartNumber()
    headers["x-amz-mp-parts-count"] = str(count)
    start = sum(s.size for s in version.segments[: number - 1])
    size = version.segments[number - 1].size
    if size == 0:
        return None
    return ByteRange(start, start + size - 1, version.size)


def _length_headers(
    version: ObjectVersion, byte_range: ByteRange | None, headers: dict[str, str]
) -> int:
    """Set Content-Length (and Content-Range for a part); return the status, 200 or 206."""
    if byte_range is None:
        headers["Content-Length"] = str(version.size)
        return 200
    headers["Content-Range"] = byte_range.content_range()
    headers["Content-Length"] = str(byte_range.length)
    return 206


@operation(Op.GetObject)
async def get_object(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html"""
    version, byte_range, headers = await _read_target(req, services)
    hdr.apply_overrides(headers, req.query)
    status = _length_headers(version, byte_range, headers)
    body = await services.objects.read(version, byte_range, customer=sse.customer_key(req.headers))
    if isinstance(body, bytes):
        return Response(status, headers, body)
    return Response(status, headers, stream=body)


@operation(Op.HeadObject)
async def head_object(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html"""
    version, byte_range, headers = await _read_target(req, services)
    return Response(_length_headers(version, byte_range, headers), headers)


@operation(Op.DeleteObject)
async def delete_object(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObject.html"""
    assert req.principal is not None
    outcome = await services.objects.delete_object(
        req.bucket,
        req.key,
        _version_id(req),
        owner_id=req.principal.account_id,
        if_match=req.headers.get("if-match"),
    )
    headers: dict[str, str] = {}
    if outcome.version_id is not None:
        headers["x-amz-version-id"] = outcome.version_id
    if outcome.delete_marker:
        headers["x-amz-delete-marker"] = "true"
    return Response(204, headers)


@operation(Op.DeleteObjects)
async def delete_objects(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html"""
    assert req.principal is not None
    root = xml.parse(await read_xml_body(req, services))
    if xml.local(root.tag) != "Delete":
        raise MalformedXML()
    quiet = (xml.text(root, "Quiet") or "").lower() == "true"
    entries = xml.children(root, "Object")
    if not entries or len(entries) > MAX_DELETE_KEYS:
        raise MalformedXML()
    targets: list[tuple[str, str | None]] = []
    for entry in entries:
        key = xml.text(entry, "Key")
        if key is None:
            raise MalformedXML()
        targets.append((key, xml.text(entry, "VersionId")))
    denied = await _denied_keys(req, services, targets)
    if len(denied) == len(targets):
        raise AccessDenied()
    await services.buckets.get(req.bucket)
    owner = req.principal.account_id

    async def one(key: str, version_id: str | None) -> str:
        try:
            if (key, version_id) in denied:
                raise AccessDenied()
            outcome = await services.objects.delete_object(
                req.bucket, key, version_id, owner_id=owner
            )
        except NoSuchBucket:
            raise
        except S3Error as err:
            return (
                f"<Error>{xml.element('Key', key)}{xml.element('VersionId', version_id)}"
                f"{xml.element('Code', err.code)}{xml.element('Message', err.message)}</Error>"
            )
        if quiet:
            return ""
        body = xml.element("Key", key) + xml.element("VersionId", version_id)
        if outcome.delete_marker:
            body += xml.element("DeleteMarker", True)
            if version_id is None:
                body += xml.element("DeleteMarkerVersionId", outcome.version_id)
        return f"<Deleted>{body}</Deleted>"

    results: list[str] = []
    for start in range(0, len(targets), 64):
        batch = targets[start : start + 64]
        results.extend(await asyncio.gather(*(one(k, v) for k, v in batch)))
    return Response.xml(xml.document("DeleteResult", results))


async def _denied_keys(
    req: Request, services: Services, targets: list[tuple[str, str | None]]
) -> set[tuple[str, str | None]]:
    """DeleteObjects needs s3:DeleteObject (or DeleteObjectVersion) on each key, as on AWS:
    the keys refused get an AccessDenied entry in the result; if every key is refused, the
    whole request is (so a caller with no rights learns nothing about the bucket)."""
    from onshore.s3api.authorize import authorize_key

    denied: set[tuple[str, str | None]] = set()
    for key, version_id in targets:
        try:
            await authorize_key(req, services, Op.DeleteObjects, key, version_id)
        except AccessDenied:
            denied.add((key, version_id))
    return denied


def parse_copy_source(header: str) -> tuple[str, str, str | None]:
    """``x-amz-copy-source``: ``[/]bucket/key[?versionId=id]``, URL-encoded."""
    path, _, query = header.partition("?")
    version_id: str | None = None
    if query:
        name, _, value = query.partition("=")
        if name != "versionId" or not value:
            raise InvalidArgument(
                "Invalid copy source version id", ArgumentName="x-amz-copy-source"
            )
        version_id = unquote(value)
    try:
        decoded = unquote(path, errors="strict")
    except UnicodeDecodeError:
        decoded = ""
    bucket, _, key = decoded.lstrip("/").partition("/")
    if not bucket or not key:
        raise InvalidArgument(
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            ArgumentName="x-amz-copy-source",
            ArgumentValue=header,
        )
    return bucket, key, version_id


async def copy_source(req: Request, services: Services) -> ObjectVersion:
    bucket, key, version_id = parse_copy_source(req.headers["x-amz-copy-source"])
    customer = sse.customer_key(req.headers, sse.COPY_SOURCE_CUSTOMER)
    version = await services.objects.get_version(bucket, key, version_id, customer=customer)
    if version.size > MAX_COPY_SOURCE and req.route is not None and req.route.op == Op.CopyObject:
        raise InvalidRequest(
            "The specified copy source is larger than the maximum allowable size for a copy "
            f"source: {MAX_COPY_SOURCE}"
        )
    return version


@operation(Op.CopyObject)
async def copy_object(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html"""
    assert req.principal is not None
    directive = req.headers.get("x-amz-metadata-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise InvalidArgument(
            "Unknown metadata directive.",
            ArgumentName="x-amz-metadata-directive",
            ArgumentValue=directive,
        )
    hdr.refuse_unsupported(req.headers)
    if req.headers.get("x-amz-tagging-directive", "COPY").upper() == "REPLACE":
        hdr.refuse_unsupported({"x-amz-tagging": ""})
    new = hdr.new_object(req.headers) if directive == "REPLACE" else None
    acl = await write_acl(req, services)
    target_sse = sse.check_write(req.headers)
    source = await copy_source(req, services)
    storage_class = source.storage_class
    if new is None and "x-amz-storage-class" in req.headers:
        storage_class = hdr.storage_class(req.headers)
    # COPY keeps the source's metadata; a new storage class alone is still a change, and so is
    # naming the encryption (as on AWS, a copy onto itself may only re-encrypt the object).
    if new is None and (storage_class != source.storage_class or sse.names_encryption(target_sse)):
        new = NewObject(
            headers=source.headers,
            user_metadata=source.user_metadata,
            storage_class=storage_class,
        )
    version = await services.objects.copy_object(
        source,
        req.bucket,
        req.key,
        new,
        owner_id=req.principal.account_id,
        source_headers=req.headers,
        condition=hdr.write_condition(req.headers),
        source_customer=sse.customer_key(req.headers, sse.COPY_SOURCE_CUSTOMER),
        target_sse=target_sse,
        acl=acl,
    )
    body = [
        xml.element("ETag", etags.quote(version.etag)),
        xml.element("LastModified", xml.timestamp(version.last_modified)),
    ]
    if version.checksum is not None:
        body.append(
            xml.element("Checksum" + version.checksum.algorithm.value, version.checksum.value)
        )
        body.append(xml.element("ChecksumType", version.checksum.type.value))
    echo = target_sse.kms_context is not None
    headers = {
        **hdr.version_headers(version),
        **sse.response_headers(version.encryption, context=echo),
    }
    if source.version_id != "null":
        headers["x-amz-copy-source-version-id"] = source.version_id
    return Response.xml(xml.document("CopyObjectResult", body), headers=headers)


ATTRIBUTES = frozenset({"ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"})


@operation(Op.GetObjectAttributes)
async def get_object_attributes(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObjectAttributes.html"""
    wanted = {
        a.strip() for a in req.headers.get("x-amz-object-attributes", "").split(",") if a.strip()
    }
    if not wanted or not wanted <= ATTRIBUTES:
        raise InvalidArgument(
            "Invalid attribute name specified.", ArgumentName="x-amz-object-attributes"
        )
    version = await services.objects.get_version(
        req.bucket, req.key, _version_id(req), customer=sse.customer_key(req.headers)
    )
    out: list[str] = []
    if "ETag" in wanted:
        out.append(xml.element("ETag", version.etag))
    if "Checksum" in wanted and version.checksum is not None:
        out.append(
            "<Checksum>"
            + xml.element("Checksum" + version.checksum.algorithm.value, version.checksum.value)
            + xml.element("ChecksumType", version.checksum.type.value)
            + "</Checksum>"
        )
    if "ObjectParts" in wanted and version.parts_count:
        out.append(_object_parts(req, version))
    if "StorageClass" in wanted:
        out.append(xml.element("StorageClass", version.storage_class))
    if "ObjectSize" in wanted:
        out.append(xml.element("ObjectSize", version.size))
    headers = {"Last-Modified": http_date(version.last_modified), **hdr.version_headers(version)}
    return Response.xml(xml.document("GetObjectAttributesResponse", out), headers=headers)


def _object_parts(req: Request, version: ObjectVersion) -> str:
    limit = 1000
    raw_limit = decimal(req.headers.get("x-amz-max-parts", ""))
    if raw_limit is not None:
        limit = min(raw_limit, 1000)
    marker = decimal(req.headers.get("x-amz-part-number-marker", "0")) or 0
    after = [s for s in version.segments if s.part_number > marker]
    page, truncated = after[:limit], len(after) > limit
    parts = []
    for segment in page:
        checksum = ""
        if segment.checksum is not None:
            checksum = xml.element(
                "Checksum" + segment.checksum.algorithm.value, segment.checksum.value
            )
        parts.append(
            f"<Part>{xml.element('PartNumber', segment.part_number)}"
            f"{xml.element('Size', segment.size)}{checksum}</Part>"
        )
    return (
        "<ObjectParts>"
        + xml.element("TotalPartsCount", version.parts_count)
        + xml.element("PartNumberMarker", marker)
        + (xml.element("NextPartNumberMarker", page[-1].part_number) if truncated and page else "")
        + xml.element("MaxParts", limit)
        + xml.element("IsTruncated", truncated)
        + "".join(parts)
        + "</ObjectParts>"
    )


__all__ = ["copy_source", "parse_copy_source", "http_date"]
