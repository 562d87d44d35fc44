"""The SSE-KMS encryption context: what KMS binds an object's key to.

An encryption context is a map of strings that KMS authenticates as associated data: a key
sealed under one context opens only with the same context, exactly
(:mod:`onshore.service.kms.ciphertext`). As on AWS, S3 always puts ``aws:s3:arn`` in it: the
object's ARN (``arn:<partition>:s3:::<bucket>/<key>``), or the bucket's ARN
(``arn:<partition>:s3:::<bucket>``) when the object uses an S3 Bucket Key, whose one KMS data
key serves many objects (:mod:`.bucket_keys`). A client adds pairs of its own with
``x-amz-server-side-encryption-context`` on PutObject, CopyObject and CreateMultipartUpload;
an ``aws:s3:arn`` of its own must be that same ARN.

The context is not secret (AWS shows it in CloudTrail): it is stored with the object, in the
canonical form the KMS ciphertext authenticates (keys sorted, no spaces), so that reads can
give it back to KMS. A copy gets its own context — the copy request's, or the default for the
target — never its source's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from onshore.domain.errors import InvalidArgument

ARN_KEY = "aws:s3:arn"
HEADER = "x-amz-server-side-encryption-context"


def object_arn(partition: str, bucket: str, key: str) -> str:
    return f"arn:{partition}:s3:::{bucket}/{key}"


def bucket_arn(partition: str, bucket: str) -> str:
    return f"arn:{partition}:s3:::{bucket}"


def with_arn(client: Mapping[str, str] | None, arn: str) -> dict[str, str]:
    """The full context of a new key: the client's pairs and ``aws:s3:arn`` = ``arn``
    (InvalidArgument if the client gave another ``aws:s3:arn``)."""
    context = dict(client or {})
    given = context.get(ARN_KEY)
    if given is not None and given != arn:
        raise InvalidArgument(
            f"The encryption context's {ARN_KEY} must be the ARN of the object, or of its "
            "bucket when an S3 Bucket Key is used.",
            ArgumentName=HEADER,
        )
    context[ARN_KEY] = arn
    return context


def canonical(context: Mapping[str, str]) -> str:
    """The stored form: the JSON the KMS ciphertext authenticates (keys sorted, no spaces)."""
    return json.dumps(dict(context), sort_keys=True, separators=(",", ":"))


def stored(text: str | None) -> dict[str, str] | None:
    """A stored context back as a map (None: a key sealed before contexts were recorded)."""
    if text is None:
        return None
    return {str(k): str(v) for k, v in json.loads(text).items()}
