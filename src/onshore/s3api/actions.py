"""Every S3 operation → the IAM action it needs and the resource it acts on: the one table
authorization keys off.

Most operations need one action on one resource: the bucket (``arn:P:s3:::bucket``), an object
(``arn:P:s3:::bucket/key``) or, for ListBuckets, all buckets (``arn:P:s3:::*``). A few differ,
as on AWS:

- reading a *specific version* is a separate action: GetObject with ``versionId`` needs
  ``s3:GetObjectVersion``, DeleteObject with one ``s3:DeleteObjectVersion`` (also the Acl and
  Tagging variants);
- CopyObject and UploadPartCopy need ``s3:PutObject`` on the target **and** ``s3:GetObject``
  (or ``GetObjectVersion``) on the source;
- DeleteObjects needs ``s3:DeleteObject`` on each key, checked key by key by its handler
  (:data:`PER_KEY`);
- the multipart operations that build an object need ``s3:PutObject``; HeadObject needs
  ``s3:GetObject``, HeadBucket ``s3:ListBucket``; a Delete* of a bucket sub-resource that has
  no action of its own needs the matching Put* (DeleteBucketCors → ``s3:PutBucketCORS``).

Reference: https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from onshore.s3api.routing import Op, Route


class Level(str, Enum):
    SERVICE = "service"
    BUCKET = "bucket"
    OBJECT = "object"


B, OBJ = Level.BUCKET, Level.OBJECT

#: Op → (action, level, action when the request names a versionId).
ACTIONS: Mapping[Op, tuple[str, Level, str | None]] = {
    Op.ListBuckets: ("s3:ListAllMyBuckets", Level.SERVICE, None),
    Op.CreateBucket: ("s3:CreateBucket", B, None),
    Op.HeadBucket: ("s3:ListBucket", B, None),
    Op.DeleteBucket: ("s3:DeleteBucket", B, None),
    Op.GetBucketLocation: ("s3:GetBucketLocation", B, None),
    Op.GetBucketVersioning: ("s3:GetBucketVersioning", B, None),
    Op.PutBucketVersioning: ("s3:PutBucketVersioning", B, None),
    Op.ListObjects: ("s3:ListBucket", B, None),
    Op.ListObjectsV2: ("s3:ListBucket", B, None),
    Op.ListObjectVersions: ("s3:ListBucketVersions", B, None),
    Op.ListMultipartUploads: ("s3:ListBucketMultipartUploads", B, None),
    Op.DeleteObjects: ("s3:DeleteObject", OBJ, "s3:DeleteObjectVersion"),
    Op.GetBucketAcl: ("s3:GetBucketAcl", B, None),
    Op.PutBucketAcl: ("s3:PutBucketAcl", B, None),
    Op.GetBucketPolicy: ("s3:GetBucketPolicy", B, None),
    Op.PutBucketPolicy: ("s3:PutBucketPolicy", B, None),
    Op.DeleteBucketPolicy: ("s3:DeleteBucketPolicy", B, None),
    Op.GetBucketPolicyStatus: ("s3:GetBucketPolicyStatus", B, None),
    Op.GetBucketCors: ("s3:GetBucketCORS", B, None),
    Op.PutBucketCors: ("s3:PutBucketCORS", B, None),
    Op.DeleteBucketCors: ("s3:PutBucketCORS", B, None),
    Op.GetBucketLifecycleConfiguration: ("s3:GetLifecycleConfiguration", B, None),
    Op.PutBucketLifecycleConfiguration: ("s3:PutLifecycleConfiguration", B, None),
    Op.DeleteBucketLifecycle: ("s3:PutLifecycleConfiguration", B, None),
    Op.GetBucketTagging: ("s3:GetBucketTagging", B, None),
    Op.PutBucketTagging: ("s3:PutBucketTagging", B, None),
    Op.DeleteBucketTagging: ("s3:PutBucketTagging", B, None),
    Op.GetBucketEncryption: ("s3:GetEncryptionConfiguration", B, None),
    Op.PutBucketEncryption: ("s3:PutEncryptionConfiguration", B, None),
    Op.DeleteBucketEncryption: ("s3:PutEncryptionConfiguration", B, None),
    Op.GetBucketWebsite: ("s3:GetBucketWebsite", B, None),
    Op.PutBucketWebsite: ("s3:PutBucketWebsite", B, None),
    Op.DeleteBucketWebsite: ("s3:DeleteBucketWebsite", B, None),
    Op.GetBucketLogging: ("s3:GetBucketLogging", B, None),
    Op.PutBucketLogging: ("s3:PutBucketLogging", B, None),
    Op.GetBucketNotificationConfiguration: ("s3:GetBucketNotification", B, None),
    Op.PutBucketNotificationConfiguration: ("s3:PutBucketNotification", B, None),
    Op.GetBucketReplication: ("s3:GetReplicationConfiguration", B, None),
    Op.PutBucketReplication: ("s3:PutReplicationConfiguration", B, None),
    Op.DeleteBucketReplication: ("s3:PutReplicationConfiguration", B, None),
    Op.GetObjectLockConfiguration: ("s3:GetBucketObjectLockConfiguration", B, None),
    Op.PutObjectLockConfiguration: ("s3:PutBucketObjectLockConfiguration", B, None),
    Op.GetBucketOwnershipControls: ("s3:GetBucketOwnershipControls", B, None),
    Op.PutBucketOwnershipControls: ("s3:PutBucketOwnershipControls", B, None),
    Op.DeleteBucketOwnershipControls: ("s3:PutBucketOwnershipControls", B, None),
    Op.GetPublicAccessBlock: ("s3:GetBucketPublicAccessBlock", B, None),
    Op.PutPublicAccessBlock: ("s3:PutBucketPublicAccessBlock", B, None),
    Op.DeletePublicAccessBlock: ("s3:PutBucketPublicAccessBlock", B, None),
    Op.GetBucketRequestPayment: ("s3:GetBucketRequestPayment", B, None),
    Op.PutBucketRequestPayment: ("s3:PutBucketRequestPayment", B, None),
    Op.GetBucketAccelerateConfiguration: ("s3:GetAccelerateConfiguration", B, None),
    Op.PutBucketAccelerateConfiguration: ("s3:PutAccelerateConfiguration", B, None),
    Op.GetBucketAnalyticsConfiguration: ("s3:GetAnalyticsConfiguration", B, None),
    Op.GetBucketInventoryConfiguration: ("s3:GetInventoryConfiguration", B, None),
    Op.GetBucketMetricsConfiguration: ("s3:GetMetricsConfiguration", B, None),
    Op.GetBucketIntelligentTieringConfiguration: (
        "s3:GetIntelligentTieringConfiguration",
        B,
        None,
    ),
    Op.PostObject: ("s3:PutObject", B, None),
    Op.GetObject: ("s3:GetObject", OBJ, "s3:GetObjectVersion"),
    Op.HeadObject: ("s3:GetObject", OBJ, "s3:GetObjectVersion"),
    Op.PutObject: ("s3:PutObject", OBJ, None),
    Op.CopyObject: ("s3:PutObject", OBJ, None),
    Op.DeleteObject: ("s3:DeleteObject", OBJ, "s3:DeleteObjectVersion"),
    Op.GetObjectAttributes: ("s3:GetObjectAttributes", OBJ, "s3:GetObjectVersionAttributes"),
    Op.CreateMultipartUpload: ("s3:PutObject", OBJ, None),
    Op.UploadPart: ("s3:PutObject", OBJ, None),
    Op.UploadPartCopy: ("s3:PutObject", OBJ, None),
    Op.CompleteMultipartUpload: ("s3:PutObject", OBJ, None),
    Op.AbortMultipartUpload: ("s3:AbortMultipartUpload", OBJ, None),
    Op.ListParts: ("s3:ListMultipartUploadParts", OBJ, None),
    Op.GetObjectTagging: ("s3:GetObjectTagging", OBJ, "s3:GetObjectVersionTagging"),
    Op.PutObjectTagging: ("s3:PutObjectTagging", OBJ, "s3:PutObjectVersionTagging"),
    Op.DeleteObjectTagging: ("s3:DeleteObjectTagging", OBJ, "s3:DeleteObjectVersionTagging"),
    Op.GetObjectAcl: ("s3:GetObjectAcl", OBJ, "s3:GetObjectVersionAcl"),
    Op.PutObjectAcl: ("s3:PutObjectAcl", OBJ, "s3:PutObjectVersionAcl"),
    Op.GetObjectRetention: ("s3:GetObjectRetention", OBJ, None),
    Op.PutObjectRetention: ("s3:PutObjectRetention", OBJ, None),
    Op.GetObjectLegalHold: ("s3:GetObjectLegalHold", OBJ, None),
    Op.PutObjectLegalHold: ("s3:PutObjectLegalHold", OBJ, None),
    Op.GetObjectTorrent: ("s3:GetObjectTorrent", OBJ, "s3:GetObjectVersionTorrent"),
    Op.RestoreObject: ("s3:RestoreObject", OBJ, None),
    Op.SelectObjectContent: ("s3:GetObject", OBJ, None),
}

#: Operations whose handler authorizes each key it touches (see :func:`check_for_key`).
PER_KEY = frozenset({Op.DeleteObjects})
#: Operations that also read a source object named by ``x-amz-copy-source``.
COPIES = frozenset({Op.CopyObject, Op.UploadPartCopy})


@dataclass(frozen=True, slots=True)
class Check:
    """One permission a request needs: ``action`` on ``bucket`` (None: all buckets) / ``key``."""

    action: str
    bucket: str | None
    key: str | None = None
    version_id: str | None = None  # the object version an object ACL is read from

    def resource(self, partition: str) -> str:
        if self.bucket is None:
            return f"arn:{partition}:s3:::*"
        if self.key is None:
            return f"arn:{partition}:s3:::{self.bucket}"
        return f"arn:{partition}:s3:::{self.bucket}/{self.key}"


def checks(
    route: Route, query: Mapping[str, str], copy_source: tuple[str, str, str | None] | None
) -> tuple[Check, ...]:
    """The permissions ``route`` needs (``copy_source``: the parsed ``x-amz-copy-source``)."""
    action, level, versioned = ACTIONS[route.op]
    if versioned and query.get("versionId"):
        action = versioned
    if level is Level.SERVICE:
        found = [Check(action, None)]
    elif level is Level.BUCKET or route.key is None:
        found = [Check(action, route.bucket)]
    else:
        found = [Check(action, route.bucket, route.key, query.get("versionId") or None)]
    if route.op in COPIES and copy_source is not None:
        bucket, key, version_id = copy_source
        action = "s3:GetObjectVersion" if version_id else "s3:GetObject"
        found.append(Check(action, bucket, key, version_id))
    return tuple(found)


def check_for_key(op: Op, bucket: str, key: str, version_id: str | None) -> Check:
    """The permission one key of a :data:`PER_KEY` operation needs."""
    action, _, versioned = ACTIONS[op]
    return Check(versioned if version_id and versioned else action, bucket, key, version_id)
