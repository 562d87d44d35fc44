"""Server-side encryption headers: what a request asks for, and what a response says.

Request headers (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ServerSideEncryptionCustomerKeys.html):

* ``x-amz-server-side-encryption: AES256`` asks for SSE-S3 (what onshore does anyway when the
  ``encryption`` setting is on); ``aws:kms`` with ``x-amz-server-side-encryption-aws-kms-key-id``
  (id, ARN or alias; none: the account's ``alias/aws/s3`` key) for SSE-KMS;
* ``x-amz-server-side-encryption-customer-algorithm`` (``AES256``), ``-customer-key`` (base64 of
  32 bytes) and ``-customer-key-MD5`` (base64 MD5 of the key, verified) give an SSE-C key; the
  ``x-amz-copy-source-server-side-encryption-customer-*`` triple gives the key of a copy source.

* with ``aws:kms``, ``x-amz-server-side-encryption-context`` adds pairs of the client's own to
  the encryption context (base64 of a UTF-8 JSON object of strings), and
  ``x-amz-server-side-encryption-bucket-key-enabled: true``/``false`` chooses whether the object
  uses an S3 Bucket Key (absent: the bucket's setting).

Responses carry ``x-amz-server-side-encryption: AES256`` for SSE-S3 objects, and the algorithm
and key MD5 (never the key) for SSE-C objects, ``aws:kms`` and the key ARN for SSE-KMS, plus
``x-amz-server-side-encryption-bucket-key-enabled: true`` when the object uses a bucket key, as
AWS does. PutObject, CopyObject and CreateMultipartUpload also echo the encryption context
(the client's pairs and ``aws:s3:arn``) when the request gave one; other responses never carry
it (AWS's response syntax has it on those three only).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping

from onshore.domain.errors import (
    InvalidArgument,
    InvalidEncryptionAlgorithmError,
    S3NotImplemented,
)
from onshore.domain.models import Encryption, SseMode
from onshore.service.encryption.context import HEADER as CONTEXT
from onshore.service.encryption.keys import CustomerKey, SseRequest

SSE = "x-amz-server-side-encryption"
CUSTOMER = "x-amz-server-side-encryption-customer-"
COPY_SOURCE_CUSTOMER = "x-amz-copy-source-server-side-encryption-customer-"
KMS_KEY_ID = "x-amz-server-side-encryption-aws-kms-key-id"
BUCKET_KEY = "x-amz-server-side-encryption-bucket-key-enabled"
_KMS_REQUIRED = (
    "Server Side Encryption with AWS KMS managed key requires HTTP header "
    "x-amz-server-side-encryption : aws:kms"
)
_BAD_CONTEXT = (
    f"The header '{CONTEXT}' shall be Base64-encoded UTF-8 string holding JSON which "
    "represents a string-string map"
)


def requested_mode(headers: Mapping[str, str]) -> SseMode | None:
    """The ``x-amz-server-side-encryption`` a write asks for (None: the default)."""
    value = headers.get(SSE)
    if value is None:
        return None
    value = value.strip()
    if value == SseMode.S3.value:
        return SseMode.S3
    if value == SseMode.KMS.value:
        return SseMode.KMS
    if value == "aws:kms:dsse":
        raise S3NotImplemented(
            "DSSE-KMS (x-amz-server-side-encryption: aws:kms:dsse) is not implemented by onshore.",
            Header=SSE,
        )
    raise InvalidArgument(
        "The encryption method specified is not supported", ArgumentName=SSE, ArgumentValue=value
    )


def customer_key(headers: Mapping[str, str], prefix: str = CUSTOMER) -> CustomerKey | None:
    """The SSE-C key of a request (``prefix`` selects the copy-source triple), verified."""
    algorithm = headers.get(prefix + "algorithm")
    key_text = headers.get(prefix + "key")
    md5_text = headers.get(prefix + "key-md5")
    if algorithm is None and key_text is None and md5_text is None:
        return None
    if algorithm is None:
        raise InvalidArgument(
            "Requests specifying Server Side Encryption with Customer provided keys must provide "
            "a valid encryption algorithm.",
            ArgumentName=prefix + "algorithm",
        )
    if algorithm.strip() != "AES256":
        raise InvalidEncryptionAlgorithmError(
            "The Encryption request you specified is not valid. Supported value: AES256.",
            ArgumentName=prefix + "algorithm",
            ArgumentValue=algorithm[:64],
        )
    if key_text is None:
        raise InvalidArgument(
            "Requests specifying Server Side Encryption with Customer provided keys must provide "
            "an appropriate secret key.",
            ArgumentName=prefix + "key",
        )
    key = _b64(key_text)
    if key is None or len(key) != 32:
        raise InvalidArgument(
            "The secret key was invalid for the specified algorithm.",
            ArgumentName=prefix + "key",
        )
    if md5_text is None:
        raise InvalidArgument(
            "Requests specifying Server Side Encryption with Customer provided keys must provide "
            "the client calculated MD5 of the secret key.",
            ArgumentName=prefix + "key-MD5",
        )
    if _b64(md5_text) != hashlib.md5(key, usedforsecurity=False).digest():
        raise InvalidArgument(
            "The calculated MD5 hash of the key did not match the hash that was provided.",
            ArgumentName=prefix + "key-MD5",
        )
    return CustomerKey(key, md5_text.strip())


def encryption_context(headers: Mapping[str, str]) -> dict[str, str] | None:
    """The client's encryption context pairs (``x-amz-server-side-encryption-context``):
    base64 of UTF-8 JSON holding an object of strings, else InvalidArgument as AWS words it."""
    text = headers.get(CONTEXT)
    if text is None:
        return None
    raw = _b64(text)
    try:
        if raw is None:
            raise ValueError("not base64")
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidArgument(_BAD_CONTEXT, ArgumentName=CONTEXT) from None
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        raise InvalidArgument(_BAD_CONTEXT, ArgumentName=CONTEXT)
    return {str(k): v for k, v in doc.items()}


def bucket_key_enabled(headers: Mapping[str, str]) -> bool | None:
    """``x-amz-server-side-encryption-bucket-key-enabled`` (None: absent, the bucket's
    setting applies)."""
    value = headers.get(BUCKET_KEY)
    if value is None:
        return None
    text = value.strip().lower()
    if text not in ("true", "false"):
        raise InvalidArgument(
            f"Invalid value for header {BUCKET_KEY}: expected true or false.",
            ArgumentName=BUCKET_KEY,
            ArgumentValue=value[:64],
        )
    return text == "true"


def check_write(headers: Mapping[str, str]) -> SseRequest:
    """What a write asks for; SSE-S3/SSE-KMS and SSE-C at once is refused, and so are a KMS
    key id or an encryption context without ``aws:kms``, as AWS does."""
    mode = requested_mode(headers)
    customer = customer_key(headers)
    kms_key_id = headers.get(KMS_KEY_ID)
    context = encryption_context(headers)
    if (kms_key_id is not None or context is not None) and mode is not SseMode.KMS:
        raise InvalidArgument(_KMS_REQUIRED, ArgumentName=SSE)
    if mode is not None and customer is not None:
        raise InvalidArgument(
            "Server Side Encryption with Customer provided key is incompatible with the "
            "encryption method specified",
            ArgumentName=SSE,
            ArgumentValue=headers.get(SSE, ""),
        )
    return SseRequest(mode, customer, kms_key_id, context, bucket_key_enabled(headers))


def names_encryption(request: SseRequest) -> bool:
    """Whether a request names any server-side encryption header (which makes a copy of an
    object onto itself legal, as on AWS)."""
    return request != SseRequest()


def response_headers(encryption: Encryption | None, *, context: bool = False) -> dict[str, str]:
    """The encryption headers of a response about ``encryption``; ``context``: also the
    encryption context (PutObject, CopyObject, CreateMultipartUpload when the request gave one)."""
    if encryption is None:
        return {}
    if encryption.mode is SseMode.CUSTOMER:
        return {
            CUSTOMER + "algorithm": "AES256",
            CUSTOMER + "key-MD5": encryption.customer_key_md5,
        }
    if encryption.mode is SseMode.KMS:
        out = {SSE: encryption.mode.value, KMS_KEY_ID: encryption.key_id}
        if encryption.bucket_key is not None:
            out[BUCKET_KEY] = "true"
        if context and encryption.kms_context is not None:
            out[CONTEXT] = base64.b64encode(encryption.kms_context.encode()).decode("ascii")
        return out
    return {SSE: encryption.mode.value}


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
