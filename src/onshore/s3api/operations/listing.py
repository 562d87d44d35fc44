"""Listing operations: ListObjects (v1), ListObjectsV2, ListObjectVersions,
ListMultipartUploads.

Pagination state is always "the last key (or common prefix) returned": ``NextMarker`` in v1,
an opaque ``NextContinuationToken`` in v2 (base64 of that key), ``NextKeyMarker`` and
``NextVersionIdMarker`` for versions. With ``encoding-type=url`` every key, prefix and delimiter
in the response is percent-encoded, which is the only way to carry keys XML 1.0 cannot.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Callable, Iterable
from urllib.parse import quote

from onshore.domain import etag as etags
from onshore.domain.errors import InvalidArgument
from onshore.domain.models import ListedVersion, ListPage
from onshore.s3api import xml
from onshore.s3api.http import Request, Response
from onshore.s3api.operations import Services, operation
from onshore.s3api.routing import Op

MAX_KEYS = 1000


def _encoder(req: Request) -> Callable[[str], str]:
    encoding = req.query.get("encoding-type")
    if encoding is None:
        return lambda value: value
    if encoding != "url":
        raise InvalidArgument(
            "Invalid Encoding Method specified in Request",
            ArgumentName="encoding-type",
            ArgumentValue=encoding,
        )
    return lambda value: quote(value, safe="/")


def _max_keys(req: Request, name: str = "max-keys") -> int:
    raw = req.query.get(name)
    if raw is None or raw == "":
        return MAX_KEYS
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise InvalidArgument(
            f"Provided {name} not an integer or within integer range",
            ArgumentName=name,
            ArgumentValue=raw,
        )
    return min(value, MAX_KEYS)


@functools.lru_cache(maxsize=256)
def _owner(owner_id: str) -> str:
    """``<Owner>`` of an account; cached, since a page repeats a few owners a thousand times."""
    return f"<Owner>{xml.element('ID', owner_id)}{xml.element('DisplayName', owner_id)}</Owner>"


def _contents(
    objects: Iterable[ListedVersion], enc: Callable[[str], str], *, owner: bool
) -> list[str]:
    """The ``<Contents>`` entries of a page: the hottest loop of a listing, so one f-string per
    entry straight from the tuple's fields, and times formatted from their microseconds."""
    escape, stamp = xml.escape, xml.timestamp_us
    out: list[str] = []
    for key, _, _, _, size, etag, modified, owner_id, storage_class, algorithm, kind in objects:
        checksum = ""
        if algorithm is not None:
            checksum = (
                f"<ChecksumAlgorithm>{algorithm}</ChecksumAlgorithm>"
                f"<ChecksumType>{kind}</ChecksumType>"
            )
        out.append(
            f"<Contents><Key>{escape(enc(key))}</Key><LastModified>{stamp(modified)}</LastModified>"
            f"<ETag>&quot;{etag}&quot;</ETag><Size>{size}</Size>"
            f"<StorageClass>{storage_class}</StorageClass>{checksum}"
            f"{_owner(owner_id) if owner else ''}</Contents>"
        )
    return out


def _prefixes(prefixes: tuple[str, ...], enc: Callable[[str], str]) -> str:
    return "".join(
        f"<CommonPrefixes>{xml.element('Prefix', enc(p))}</CommonPrefixes>" for p in prefixes
    )


def encode_token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii")


def decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidArgument(
            "The continuation token provided is incorrect",
            ArgumentName="continuation-token",
            ArgumentValue=token,
        ) from None


async def _objects_page(
    req: Request, services: Services, prefix: str, delimiter: str, after: str, limit: int
) -> ListPage:
    """The page a ListObjects v1/v2 request asks for (``max-keys=0``: an empty page, after
    checking that the bucket exists)."""
    if limit == 0:
        await services.buckets.get(req.bucket)
        return ListPage((), (), False)
    return await services.listing.objects(
        req.bucket, prefix=prefix, delimiter=delimiter, start_after=after, limit=limit
    )


@operation(Op.ListObjectsV2)
async def list_objects_v2(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html"""
    enc = _encoder(req)
    limit = _max_keys(req)
    prefix = req.query.get("prefix", "")
    delimiter = req.query.get("delimiter", "")
    start_after = req.query.get("start-after", "")
    token = req.query.get("continuation-token")
    cursor = decode_token(token) if token is not None else start_after
    fetch_owner = req.query.get("fetch-owner", "").lower() == "true"
    page = await _objects_page(req, services, prefix, delimiter, cursor, limit)
    objects, prefixes = page.objects, page.common_prefixes
    truncated, next_marker = page.is_truncated, page.next_marker
    out = [
        xml.element("Name", req.bucket),
        xml.element("Prefix", enc(prefix)),
        xml.element("Delimiter", enc(delimiter)) if delimiter else "",
        xml.element("MaxKeys", limit),
        xml.element("KeyCount", len(objects) + len(prefixes)),
        xml.element("IsTruncated", truncated),
        xml.element("EncodingType", "url") if "encoding-type" in req.query else "",
        xml.element("ContinuationToken", token) if token is not None else "",
        xml.element("StartAfter", enc(start_after)) if start_after else "",
    ]
    if truncated and next_marker is not None:
        out.append(xml.element("NextContinuationToken", encode_token(next_marker)))
    out.extend(_contents(objects, enc, owner=fetch_owner))
    out.append(_prefixes(prefixes, enc))
    return Response.xml(xml.document("ListBucketResult", out))


@operation(Op.ListObjects)
async def list_objects(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjects.html"""
    enc = _encoder(req)
    limit = _max_keys(req)
    prefix = req.query.get("prefix", "")
    delimiter = req.query.get("delimiter", "")
    marker = req.query.get("marker", "")
    page = await _objects_page(req, services, prefix, delimiter, marker, limit)
    objects, prefixes = page.objects, page.common_prefixes
    truncated, next_marker = page.is_truncated, page.next_marker
    out = [
        xml.element("Name", req.bucket),
        xml.element("Prefix", enc(prefix)),
        xml.element("Marker", enc(marker)),
        xml.element("Delimiter", enc(delimiter)) if delimiter else "",
        xml.element("MaxKeys", limit),
        xml.element("IsTruncated", truncated),
        xml.element("EncodingType", "url") if "encoding-type" in req.query else "",
    ]
    if truncated and next_marker is not None:
        out.append(xml.element("NextMarker", enc(next_marker)))
    out.extend(_contents(objects, enc, owner=True))
    out.append(_prefixes(prefixes, enc))
    return Response.xml(xml.document("ListBucketResult", out))


@operation(Op.ListObjectVersions)
async def list_object_versions(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectVersions.html"""
    enc = _encoder(req)
    limit = _max_keys(req)
    prefix = req.query.get("prefix", "")
    delimiter = req.query.get("delimiter", "")
    key_marker = req.query.get("key-marker", "")
    version_marker = req.query.get("version-id-marker", "")
    if version_marker and not key_marker:
        raise InvalidArgument(
            "A version-id marker cannot be specified without a key marker.",
            ArgumentName="version-id-marker",
            ArgumentValue=version_marker,
        )
    page = await services.listing.versions(
        req.bucket,
        prefix=prefix,
        delimiter=delimiter,
        key_marker=key_marker,
        version_id_marker=version_marker,
        limit=max(limit, 1),
    )
    versions = page.versions if limit else ()
    truncated = page.is_truncated if limit else False
    out = [
        xml.element("Name", req.bucket),
        xml.element("Prefix", enc(prefix)),
        xml.element("KeyMarker", enc(key_marker)),
        xml.element("VersionIdMarker", version_marker),
        xml.element("Delimiter", enc(delimiter)) if delimiter else "",
        xml.element("MaxKeys", limit),
        xml.element("IsTruncated", truncated),
        xml.element("EncodingType", "url") if "encoding-type" in req.query else "",
    ]
    if truncated:
        out.append(xml.element("NextKeyMarker", enc(page.next_key_marker or "")))
        if page.next_version_id_marker:
            out.append(xml.element("NextVersionIdMarker", page.next_version_id_marker))
    for v in versions:
        common = (
            xml.element("Key", enc(v.key))
            + xml.element("VersionId", v.version_id)
            + xml.element("IsLatest", v.is_latest)
            + xml.element("LastModified", xml.timestamp_us(v.last_modified_us))
        )
        if v.is_delete_marker:
            out.append(f"<DeleteMarker>{common}{_owner(v.owner_id)}</DeleteMarker>")
        else:
            checksum = (
                xml.element("ChecksumAlgorithm", v.checksum_algorithm)
                + xml.element("ChecksumType", v.checksum_type)
                if v.checksum_algorithm
                else ""
            )
            out.append(
                f"<Version>{common}{xml.element('ETag', etags.quote(v.etag))}"
                f"{xml.element('Size', v.size)}{xml.element('StorageClass', v.storage_class)}"
                f"{_owner(v.owner_id)}{checksum}</Version>"
            )
    out.append(_prefixes(page.common_prefixes if limit else (), enc))
    return Response.xml(xml.document("ListVersionsResult", out))


@operation(Op.ListMultipartUploads)
async def list_multipart_uploads(req: Request, services: Services) -> Response:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListMultipartUploads.html"""
    enc = _encoder(req)
    limit = _max_keys(req, "max-uploads")
    prefix = req.query.get("prefix", "")
    delimiter = req.query.get("delimiter", "")
    key_marker = req.query.get("key-marker", "")
    upload_marker = req.query.get("upload-id-marker", "") if key_marker else ""
    page = await services.listing.uploads(
        req.bucket,
        prefix=prefix,
        delimiter=delimiter,
        key_marker=key_marker,
        upload_id_marker=upload_marker,
        limit=max(limit, 1),
    )
    uploads = page.uploads if limit else ()
    truncated = page.is_truncated if limit else False
    out = [
        xml.element("Bucket", req.bucket),
        xml.element("KeyMarker", enc(key_marker)),
        xml.element("UploadIdMarker", upload_marker),
        xml.element("Prefix", enc(prefix)),
        xml.element("Delimiter", enc(delimiter)) if delimiter else "",
        xml.element("MaxUploads", limit),
        xml.element("IsTruncated", truncated),
        xml.element("EncodingType", "url") if "encoding-type" in req.query else "",
    ]
    if truncated:
        out.append(xml.element("NextKeyMarker", enc(page.next_key_marker or "")))
        out.append(xml.element("NextUploadIdMarker", page.next_upload_id_marker or ""))
    for u in uploads:
        who = f"{xml.element('ID', u.owner_id)}{xml.element('DisplayName', u.owner_id)}"
        checksum = (
            xml.element("ChecksumAlgorithm", u.checksum_algorithm.value)
            if u.checksum_algorithm
            else ""
        )
        out.append(
            f"<Upload>{xml.element('Key', enc(u.key))}{xml.element('UploadId', u.upload_id)}"
            f"<Initiator>{who}</Initiator><Owner>{who}</Owner>"
            f"{xml.element('StorageClass', u.storage_class)}"
            f"{xml.element('Initiated', xml.timestamp(u.initiated))}{checksum}</Upload>"
        )
    out.append(_prefixes(page.common_prefixes if limit else (), enc))
    return Response.xml(xml.document("ListMultipartUploadsResult", out))
