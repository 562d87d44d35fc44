"""Request → ``Route``: which S3 operation a request is, before anything else happens.

S3 names an operation by the HTTP method, whether the path addresses the service, a bucket or
an object, and which *sub-resource* query parameter is present (``?versioning``, ``?uploads``,
``?uploadId=…``). Metrics, logs, authorization and dispatch all key off the operation name
resolved here, spelled as boto3 spells it (``ListObjectsV2``, ``UploadPartCopy``).

Addressing: path-style (``/bucket/key``) always; virtual-hosted-style (``bucket.DOMAIN/key``)
when the ``domain`` setting is set and the Host header is a sub-domain of it. The key is the
percent-decoded remainder of the path, byte for byte: ``//``, ``../`` and trailing slashes are
part of the key and are never normalized.

This module is pure (no I/O) and table-tested in ``tests/unit/test_routing.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from urllib.parse import unquote

from onshore.domain.errors import InvalidURI, MethodNotAllowed, S3NotImplemented


class Op(str, Enum):
    """Every S3 operation this server recognizes, named as boto3 names it."""

    ListBuckets = "ListBuckets"
    # buckets
    CreateBucket = "CreateBucket"
    HeadBucket = "HeadBucket"
    DeleteBucket = "DeleteBucket"
    GetBucketLocation = "GetBucketLocation"
    GetBucketVersioning = "GetBucketVersioning"
    PutBucketVersioning = "PutBucketVersioning"
    ListObjects = "ListObjects"
    ListObjectsV2 = "ListObjectsV2"
    ListObjectVersions = "ListObjectVersions"
    ListMultipartUploads = "ListMultipartUploads"
    DeleteObjects = "DeleteObjects"
    GetBucketAcl = "GetBucketAcl"
    PutBucketAcl = "PutBucketAcl"
    GetBucketPolicy = "GetBucketPolicy"
    PutBucketPolicy = "PutBucketPolicy"
    DeleteBucketPolicy = "DeleteBucketPolicy"
    GetBucketPolicyStatus = "GetBucketPolicyStatus"
    GetBucketCors = "GetBucketCors"
    PutBucketCors = "PutBucketCors"
    DeleteBucketCors = "DeleteBucketCors"
    GetBucketLifecycleConfiguration = "GetBucketLifecycleConfiguration"
    PutBucketLifecycleConfiguration = "PutBucketLifecycleConfiguration"
    DeleteBucketLifecycle = "DeleteBucketLifecycle"
    GetBucketTagging = "GetBucketTagging"
    PutBucketTagging = "PutBucketTagging"
    DeleteBucketTagging = "DeleteBucketTagging"
    GetBucketEncryption = "GetBucketEncryption"
    PutBucketEncryption = "PutBucketEncryption"
    DeleteBucketEncryption = "DeleteBucketEncryption"
    GetBucketWebsite = "GetBucketWebsite"
    PutBucketWebsite = "PutBucketWebsite"
    DeleteBucketWebsite = "DeleteBucketWebsite"
    GetBucketLogging = "GetBucketLogging"
    PutBucketLogging = "PutBucketLogging"
    GetBucketNotificationConfiguration = "GetBucketNotificationConfiguration"
    PutBucketNotificationConfiguration = "PutBucketNotificationConfiguration"
    GetBucketReplication = "GetBucketReplication"
    PutBucketReplication = "PutBucketReplication"
    DeleteBucketReplication = "DeleteBucketReplication"
    GetObjectLockConfiguration = "GetObjectLockConfiguration"
    PutObjectLockConfiguration = "PutObjectLockConfiguration"
    GetBucketOwnershipControls = "GetBucketOwnershipControls"
    PutBucketOwnershipControls = "PutBucketOwnershipControls"
    DeleteBucketOwnershipControls = "DeleteBucketOwnershipControls"
    GetPublicAccessBlock = "GetPublicAccessBlock"
    PutPublicAccessBlock = "PutPublicAccessBlock"
    DeletePublicAccessBlock = "DeletePublicAccessBlock"
    GetBucketRequestPayment = "GetBucketRequestPayment"
    PutBucketRequestPayment = "PutBucketRequestPayment"
    GetBucketAccelerateConfiguration = "GetBucketAccelerateConfiguration"
    PutBucketAccelerateConfiguration = "PutBucketAccelerateConfiguration"
    GetBucketAnalyticsConfiguration = "GetBucketAnalyticsConfiguration"
    GetBucketInventoryConfiguration = "GetBucketInventoryConfiguration"
    GetBucketMetricsConfiguration = "GetBucketMetricsConfiguration"
    GetBucketIntelligentTieringConfiguration = "GetBucketIntelligentTieringConfiguration"
    PostObject = "PostObject"
    # objects
    GetObject = "GetObject"
    HeadObject = "HeadObject"
    PutObject = "PutObject"
    CopyObject = "CopyObject"
    DeleteObject = "DeleteObject"
    GetObjectAttributes = "GetObjectAttributes"
    CreateMultipartUpload = "CreateMultipartUpload"
    UploadPart = "UploadPart"
    UploadPartCopy = "UploadPartCopy"
    CompleteMultipartUpload = "CompleteMultipartUpload"
    AbortMultipartUpload = "AbortMultipartUpload"
    ListParts = "ListParts"
    GetObjectTagging = "GetObjectTagging"
    PutObjectTagging = "PutObjectTagging"
    DeleteObjectTagging = "DeleteObjectTagging"
    GetObjectAcl = "GetObjectAcl"
    PutObjectAcl = "PutObjectAcl"
    GetObjectRetention = "GetObjectRetention"
    PutObjectRetention = "PutObjectRetention"
    GetObjectLegalHold = "GetObjectLegalHold"
    PutObjectLegalHold = "PutObjectLegalHold"
    GetObjectTorrent = "GetObjectTorrent"
    RestoreObject = "RestoreObject"
    SelectObjectContent = "SelectObjectContent"


#: Operations that add data or configuration to the store (every PUT and POST of a resource
#: except the deletes). They need disk space, and are what a full disk, a quota or a read-only
#: license refuses; reads, listings, deletes and aborts never are.
WRITES = frozenset(
    op
    for op in Op
    if op.value.startswith(("Put", "Create", "Copy", "Upload", "Complete", "Post", "Restore"))
)


#: Every query parameter that names an S3 sub-resource (from botocore's S3 model). A request
#: carrying one that the tables below do not route is refused with 501 S3NotImplemented: it must
#: never fall through to the plain operation on the bucket or key (``DELETE /b?analytics``
#: is not DeleteBucket). Other unknown query parameters are ignored, as S3 ignores them.
SUBRESOURCES = frozenset(
    {
        "abac",
        "accelerate",
        "acl",
        "analytics",
        "annotation",
        "attributes",
        "cors",
        "delete",
        "encryption",
        "intelligent-tiering",
        "inventory",
        "legal-hold",
        "lifecycle",
        "location",
        "logging",
        "metadataAnnotationTable",
        "metadataConfiguration",
        "metadataInventoryTable",
        "metadataJournalTable",
        "metadataTable",
        "metrics",
        "notification",
        "object-lock",
        "ownershipControls",
        "policy",
        "policyStatus",
        "publicAccessBlock",
        "renameObject",
        "replication",
        "requestPayment",
        "restore",
        "retention",
        "select",
        "select-type",
        "session",
        "tagging",
        "torrent",
        "uploads",
        "versioning",
        "versions",
        "website",
        "uploadId",
        "partNumber",
    }
)


def _refuse_unrouted(query: Mapping[str, str], allowed: frozenset[str] = frozenset()) -> None:
    for name in query:
        if name in SUBRESOURCES and name not in allowed:
            raise S3NotImplemented(
                f"The '{name}' sub-resource is not implemented by onshore for this request.",
                SubResource=name,
            )


_OBJECT_PARAMS = frozenset({"versionId", "partNumber"})


@dataclass(frozen=True, slots=True)
class Route:
    op: Op
    bucket: str | None = None
    key: str | None = None


# Sub-resource tables: for each (level, method), the first query parameter present wins.
_BUCKET: Mapping[str, tuple[tuple[str, Op], ...]] = {
    "GET": (
        ("versioning", Op.GetBucketVersioning),
        ("location", Op.GetBucketLocation),
        ("versions", Op.ListObjectVersions),
        ("uploads", Op.ListMultipartUploads),
        ("acl", Op.GetBucketAcl),
        ("policy", Op.GetBucketPolicy),
        ("policyStatus", Op.GetBucketPolicyStatus),
        ("cors", Op.GetBucketCors),
        ("lifecycle", Op.GetBucketLifecycleConfiguration),
        ("tagging", Op.GetBucketTagging),
        ("encryption", Op.GetBucketEncryption),
        ("website", Op.GetBucketWebsite),
        ("logging", Op.GetBucketLogging),
        ("notification", Op.GetBucketNotificationConfiguration),
        ("replication", Op.GetBucketReplication),
        ("object-lock", Op.GetObjectLockConfiguration),
        ("ownershipControls", Op.GetBucketOwnershipControls),
        ("publicAccessBlock", Op.GetPublicAccessBlock),
        ("requestPayment", Op.GetBucketRequestPayment),
        ("accelerate", Op.GetBucketAccelerateConfiguration),
        ("analytics", Op.GetBucketAnalyticsConfiguration),
        ("inventory", Op.GetBucketInventoryConfiguration),
        ("metrics", Op.GetBucketMetricsConfiguration),
        ("intelligent-tiering", Op.GetBucketIntelligentTieringConfiguration),
    ),
    "PUT": (
        ("versioning", Op.PutBucketVersioning),
        ("acl", Op.PutBucketAcl),
        ("policy", Op.PutBucketPolicy),
        ("cors", Op.PutBucketCors),
        ("lifecycle", Op.PutBucketLifecycleConfiguration),
        ("tagging", Op.PutBucketTagging),
        ("encryption", Op.PutBucketEncryption),
        ("website", Op.PutBucketWebsite),
        ("logging", Op.PutBucketLogging),
        ("notification", Op.PutBucketNotificationConfiguration),
        ("replication", Op.PutBucketReplication),
        ("object-lock", Op.PutObjectLockConfiguration),
        ("ownershipControls", Op.PutBucketOwnershipControls),
        ("publicAccessBlock", Op.PutPublicAccessBlock),
        ("requestPayment", Op.PutBucketRequestPayment),
        ("accelerate", Op.PutBucketAccelerateConfiguration),
    ),
    "DELETE": (
        ("policy", Op.DeleteBucketPolicy),
        ("cors", Op.DeleteBucketCors),
        ("lifecycle", Op.DeleteBucketLifecycle),
        ("tagging", Op.DeleteBucketTagging),
        ("encryption", Op.DeleteBucketEncryption),
        ("website", Op.DeleteBucketWebsite),
        ("replication", Op.DeleteBucketReplication),
        ("ownershipControls", Op.DeleteBucketOwnershipControls),
        ("publicAccessBlock", Op.DeletePublicAccessBlock),
    ),
    "POST": (("delete", Op.DeleteObjects),),
    "HEAD": (),
}
_BUCKET_DEFAULT: Mapping[str, Op] = {
    "GET": Op.ListObjects,
    "PUT": Op.CreateBucket,
    "DELETE": Op.DeleteBucket,
    "HEAD": Op.HeadBucket,
    "POST": Op.PostObject,
}
_OBJECT: Mapping[str, tuple[tuple[str, Op], ...]] = {
    "GET": (
        ("uploadId", Op.ListParts),
        ("attributes", Op.GetObjectAttributes),
        ("acl", Op.GetObjectAcl),
        ("tagging", Op.GetObjectTagging),
        ("retention", Op.GetObjectRetention),
        ("legal-hold", Op.GetObjectLegalHold),
        ("torrent", Op.GetObjectTorrent),
    ),
    "PUT": (
        ("acl", Op.PutObjectAcl),
        ("tagging", Op.PutObjectTagging),
        ("retention", Op.PutObjectRetention),
        ("legal-hold", Op.PutObjectLegalHold),
    ),
    "POST": (
        ("uploads", Op.CreateMultipartUpload),
        ("uploadId", Op.CompleteMultipartUpload),
        ("restore", Op.RestoreObject),
        ("select", Op.SelectObjectContent),
    ),
    "DELETE": (("uploadId", Op.AbortMultipartUpload), ("tagging", Op.DeleteObjectTagging)),
    "HEAD": (),
}
_OBJECT_DEFAULT: Mapping[str, Op] = {
    "GET": Op.GetObject,
    "HEAD": Op.HeadObject,
    "DELETE": Op.DeleteObject,
}


def split_host(host: str, domain: str | None) -> str | None:
    """The bucket named by a virtual-hosted-style Host header, or None for path-style."""
    if not domain or not host:
        return None
    name = host.rpartition(":")[0] if host.count(":") == 1 else host
    name = name.lower()
    suffix = "." + domain.lower()
    if name.endswith(suffix) and len(name) > len(suffix):
        return name[: -len(suffix)]
    return None


def _decode(segment: str) -> str:
    try:
        return unquote(segment, errors="strict")
    except UnicodeDecodeError:
        raise InvalidURI() from None


def resolve(
    method: str,
    raw_path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    *,
    domain: str | None = None,
) -> Route:
    """Name the operation a request asks for. Raises MethodNotAllowed or InvalidURI."""
    if not raw_path.startswith("/"):
        raise InvalidURI()
    named = query.get("x-id")
    if named is not None and named not in Op.__members__:
        # Recent SDKs name the operation in ``x-id``; one we do not know is not ours to guess.
        raise S3NotImplemented(f"{named} is not implemented by onshore.", Operation=named)
    host_bucket = split_host(headers.get("host", ""), domain)
    if host_bucket is not None:
        bucket: str | None = host_bucket
        key = _decode(raw_path[1:])
    else:
        bucket_part, _, key_part = raw_path[1:].partition("/")
        bucket = _decode(bucket_part) or None
        key = _decode(key_part)
    if bucket is None:
        if method in ("GET", "HEAD"):
            return Route(Op.ListBuckets)
        raise MethodNotAllowed()
    if not key:
        return Route(_pick(_BUCKET, _BUCKET_DEFAULT, method, query), bucket)
    if method == "PUT":
        copy = "x-amz-copy-source" in headers
        if "uploadId" in query and "partNumber" in query:
            return Route(Op.UploadPartCopy if copy else Op.UploadPart, bucket, key)
        for param, op in _OBJECT["PUT"]:
            if param in query:
                return Route(op, bucket, key)
        _refuse_unrouted(query)
        return Route(Op.CopyObject if copy else Op.PutObject, bucket, key)
    return Route(_pick(_OBJECT, _OBJECT_DEFAULT, method, query), bucket, key)


def _pick(
    table: Mapping[str, tuple[tuple[str, Op], ...]],
    defaults: Mapping[str, Op],
    method: str,
    query: Mapping[str, str],
) -> Op:
    for param, op in table.get(method, ()):
        if param in query:
            return op
    default = defaults.get(method)
    if default is None:
        raise MethodNotAllowed()
    op = default
    if defaults is _BUCKET_DEFAULT:
        _refuse_unrouted(query)
        if op is Op.ListObjects and query.get("list-type") == "2":
            return Op.ListObjectsV2
    else:
        # GET and HEAD of an object take partNumber (a part of the object, not a sub-resource).
        _refuse_unrouted(
            query, _OBJECT_PARAMS if op in (Op.GetObject, Op.HeadObject) else frozenset()
        )
    return op
