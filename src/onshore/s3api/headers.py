"""Object headers in both directions.

In: the representation headers S3 stores with an object (``Content-Type``, ``Content-Encoding``,
``Content-Disposition``, ``Content-Language``, ``Cache-Control``, ``Expires``), user metadata
(``x-amz-meta-*``, at most 2 KB in all, names lower-cased), the storage class, ``Content-MD5``
and the conditional-write headers.

Out: the same headers on GET and HEAD, plus ETag, Last-Modified, version id and, when the client
asks with ``x-amz-checksum-mode: ENABLED``, the stored additional checksum.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from onshore.domain import etag as etags
from onshore.domain.errors import (
    InvalidArgument,
    InvalidDigest,
    InvalidStorageClass,
    MetadataTooLarge,
    S3NotImplemented,
)
from onshore.domain.models import NULL_VERSION, ObjectVersion, WriteCondition
from onshore.s3api import sse
from onshore.service.objects import NewObject, http_date

STORED_HEADERS = (
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
)
_CANONICAL = {
    "content-type": "Content-Type",
    "content-encoding": "Content-Encoding",
    "content-disposition": "Content-Disposition",
    "content-language": "Content-Language",
    "cache-control": "Cache-Control",
    "expires": "Expires",
}
STORAGE_CLASSES = frozenset(
    {
        "STANDARD",
        "REDUCED_REDUNDANCY",
        "STANDARD_IA",
        "ONEZONE_IA",
        "INTELLIGENT_TIERING",
        "GLACIER",
        "DEEP_ARCHIVE",
        "GLACIER_IR",
        "EXPRESS_ONEZONE",
    }
)
MAX_METADATA_BYTES = 2048
DEFAULT_CONTENT_TYPE = "binary/octet-stream"
META_PREFIX = "x-amz-meta-"


#: Request headers that ask for a feature this server does not have yet. Accepting them
#: silently would be a lie (an object stored unencrypted although SSE-C was asked for), so a
#: request carrying one is refused with 501 S3NotImplemented.
UNSUPPORTED_HEADERS = {
    "x-amz-tagging": "Object tagging",
    "x-amz-object-lock-mode": "Object Lock",
    "x-amz-object-lock-retain-until-date": "Object Lock",
    "x-amz-object-lock-legal-hold": "Object Lock",
    "x-amz-website-redirect-location": "Website redirects",
}


def refuse_unsupported(headers: Mapping[str, str]) -> None:
    """Raise S3NotImplemented if the request asks for a feature onshore does not have yet."""
    for name, feature in UNSUPPORTED_HEADERS.items():
        if name in headers:
            raise S3NotImplemented(
                f"{feature} ({name}) is not implemented by onshore yet.", Header=name
            )
    # ACL headers are judged by onshore.s3api.write_acl, which knows the bucket's ownership.


def content_md5(headers: Mapping[str, str]) -> bytes | None:
    raw = headers.get("content-md5")
    if raw is None:
        return None
    try:
        digest = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidDigest() from None
    if len(digest) != 16:
        raise InvalidDigest()
    return digest


def storage_class(headers: Mapping[str, str]) -> str:
    value = headers.get("x-amz-storage-class", "STANDARD")
    if value not in STORAGE_CLASSES:
        raise InvalidStorageClass(StorageClassRequested=value)
    return value


def user_metadata(headers: Mapping[str, str]) -> dict[str, str]:
    meta = {
        name[len(META_PREFIX) :]: value
        for name, value in headers.items()
        if name.startswith(META_PREFIX)
    }
    size = sum(len(k.encode()) + len(v.encode()) for k, v in meta.items())
    if size > MAX_METADATA_BYTES:
        raise MetadataTooLarge(Size=str(size), MaxSizeAllowed=str(MAX_METADATA_BYTES))
    return meta


def write_condition(headers: Mapping[str, str]) -> WriteCondition | None:
    """``If-None-Match: *`` (create only) and ``If-Match: "etag"`` on writes."""
    none_match = headers.get("if-none-match")
    match = headers.get("if-match")
    if none_match is None and match is None:
        return None
    if none_match is not None and none_match.strip() != "*":
        raise S3NotImplemented(
            "A header you provided implies functionality that is not implemented",
            Header="If-None-Match",
        )
    if none_match is not None and match is not None:
        raise InvalidArgument(
            "Only one of If-Match and If-None-Match may be specified",
            ArgumentName="If-Match",
        )
    return WriteCondition(
        if_none_match_any=none_match is not None,
        if_match=etags.unquote(match) if match is not None else None,
    )


def new_object(headers: Mapping[str, str], *, with_condition: bool = True) -> NewObject:
    refuse_unsupported(headers)
    stored = {name: headers[name] for name in STORED_HEADERS if name in headers}
    return NewObject(
        headers=stored,
        user_metadata=user_metadata(headers),
        storage_class=storage_class(headers),
        content_md5=content_md5(headers),
        condition=write_condition(headers) if with_condition else None,
        sse=sse.check_write(headers),
    )


def version_headers(version: ObjectVersion) -> dict[str, str]:
    """``x-amz-version-id`` when the version has a real id."""
    if version.version_id != NULL_VERSION:
        return {"x-amz-version-id": version.version_id}
    return {}


def object_headers(version: ObjectVersion, *, checksum_mode: bool) -> dict[str, str]:
    out = {
        "ETag": etags.quote(version.etag),
        "Last-Modified": http_date(version.last_modified),
        "Accept-Ranges": "bytes",
        "Content-Type": version.headers.get("content-type") or DEFAULT_CONTENT_TYPE,
    }
    for name, value in version.headers.items():
        if name != "content-type" and name in _CANONICAL:
            out[_CANONICAL[name]] = value
    for name, value in version.user_metadata.items():
        out[META_PREFIX + name] = value
    out.update(sse.response_headers(version.encryption))
    if version.version_id != NULL_VERSION:
        out["x-amz-version-id"] = version.version_id
    if version.storage_class != "STANDARD":
        out["x-amz-storage-class"] = version.storage_class
    if checksum_mode and version.checksum is not None:
        name = "x-amz-checksum-" + version.checksum.algorithm.value.lower()
        out[name] = version.checksum.value
        out["x-amz-checksum-type"] = version.checksum.type.value
    return out


RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


def apply_overrides(headers: dict[str, str], query: Mapping[str, str]) -> None:
    """The ``response-*`` query parameters of GetObject replace these response headers. Their
    values come from the URL, percent-decoded, so they could hold line breaks or other control
    characters that would end the header early (response splitting): those are refused."""
    for param, header in RESPONSE_OVERRIDES.items():
        if param in query:
            value = query[param]
            if any(c < " " and c != "\t" or c == "\x7f" for c in value):
                raise InvalidArgument(
                    f"The value of {param} contains a control character.",
                    ArgumentName=param,
                    ArgumentValue=value.encode("unicode_escape").decode("ascii"),
                )
            headers[header] = value
