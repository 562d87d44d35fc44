"""The names a bucket policy may use: S3's IAM actions and condition keys.

A bucket policy is S3's own document, so AWS refuses an action S3 does not define ("Policy has
invalid action") or a condition key it does not know ("Policy has an invalid condition key").
Identity policies can name any service's actions (IAM's own ``iam:CreateUser``...), so only
their shape is checked there.
"""

from __future__ import annotations

#: S3 actions (the ``s3:`` prefix left off), from the AWS Service Authorization Reference.
S3_ACTIONS: frozenset[str] = frozenset(
    {
        "AbortMultipartUpload",
        "BypassGovernanceRetention",
        "CreateBucket",
        "DeleteBucket",
        "DeleteBucketOwnershipControls",
        "DeleteBucketPolicy",
        "DeleteBucketWebsite",
        "DeleteObject",
        "DeleteObjectTagging",
        "DeleteObjectVersion",
        "DeleteObjectVersionTagging",
        "GetAccelerateConfiguration",
        "GetAnalyticsConfiguration",
        "GetBucketAcl",
        "GetBucketCORS",
        "GetBucketLocation",
        "GetBucketLogging",
        "GetBucketNotification",
        "GetBucketObjectLockConfiguration",
        "GetBucketOwnershipControls",
        "GetBucketPolicy",
        "GetBucketPolicyStatus",
        "GetBucketPublicAccessBlock",
        "GetBucketRequestPayment",
        "GetBucketTagging",
        "GetBucketVersioning",
        "GetBucketWebsite",
        "GetEncryptionConfiguration",
        "GetIntelligentTieringConfiguration",
        "GetInventoryConfiguration",
        "GetLifecycleConfiguration",
        "GetMetricsConfiguration",
        "GetObject",
        "GetObjectAcl",
        "GetObjectAttributes",
        "GetObjectLegalHold",
        "GetObjectRetention",
        "GetObjectTagging",
        "GetObjectTorrent",
        "GetObjectVersion",
        "GetObjectVersionAcl",
        "GetObjectVersionAttributes",
        "GetObjectVersionTagging",
        "GetObjectVersionTorrent",
        "GetReplicationConfiguration",
        "ListAllMyBuckets",
        "ListBucket",
        "ListBucketMultipartUploads",
        "ListBucketVersions",
        "ListMultipartUploadParts",
        "PutAccelerateConfiguration",
        "PutAnalyticsConfiguration",
        "PutBucketAcl",
        "PutBucketCORS",
        "PutBucketLogging",
        "PutBucketNotification",
        "PutBucketObjectLockConfiguration",
        "PutBucketOwnershipControls",
        "PutBucketPolicy",
        "PutBucketPublicAccessBlock",
        "PutBucketRequestPayment",
        "PutBucketTagging",
        "PutBucketVersioning",
        "PutBucketWebsite",
        "PutEncryptionConfiguration",
        "PutIntelligentTieringConfiguration",
        "PutInventoryConfiguration",
        "PutLifecycleConfiguration",
        "PutMetricsConfiguration",
        "PutObject",
        "PutObjectAcl",
        "PutObjectLegalHold",
        "PutObjectRetention",
        "PutObjectTagging",
        "PutObjectVersionAcl",
        "PutObjectVersionTagging",
        "PutReplicationConfiguration",
        "ReplicateDelete",
        "ReplicateObject",
        "ReplicateTags",
        "RestoreObject",
    }
)

#: S3's own condition keys (lower-case); tag keys are the prefixes below plus a tag name.
S3_CONDITION_KEYS: frozenset[str] = frozenset(
    {
        "s3:authtype",
        "s3:delimiter",
        "s3:locationconstraint",
        "s3:max-keys",
        "s3:object-lock-legal-hold",
        "s3:object-lock-mode",
        "s3:object-lock-remaining-retention-days",
        "s3:object-lock-retain-until-date",
        "s3:prefix",
        "s3:requestobjecttagkeys",
        "s3:resourceaccount",
        "s3:signatureage",
        "s3:signatureversion",
        "s3:tlsversion",
        "s3:versionid",
        "s3:x-amz-acl",
        "s3:x-amz-content-sha256",
        "s3:x-amz-copy-source",
        "s3:x-amz-grant-full-control",
        "s3:x-amz-grant-read",
        "s3:x-amz-grant-read-acp",
        "s3:x-amz-grant-write",
        "s3:x-amz-grant-write-acp",
        "s3:x-amz-metadata-directive",
        "s3:x-amz-server-side-encryption",
        "s3:x-amz-server-side-encryption-aws-kms-key-id",
        "s3:x-amz-storage-class",
        "s3:x-amz-website-redirect-location",
        "s3:objectownership",
    }
)
S3_TAG_KEY_PREFIXES = ("s3:existingobjecttag/", "s3:requestobjecttag/")


def valid_condition_key(key: str) -> bool:
    """``key`` is lower-cased (but for the tag name). Global ``aws:`` keys are all accepted."""
    if key.startswith("aws:") and len(key) > 4:
        return True
    if key in S3_CONDITION_KEYS:
        return True
    return any(key.startswith(p) and len(key) > len(p) for p in S3_TAG_KEY_PREFIXES)
