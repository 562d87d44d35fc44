"""Server-side encryption headers: what a request asks for, and what a response says.

Request headers (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ServerSideEncryptionCustomerKeys.html):

* ``x-amz-server-side-encryption: AES256`` asks for SSE-S3 (what onshore does anyway when the
  ``encryption`` setting is on); ``aws:kms`` with ``x-amz-server-side-encryption-aws-kms-key-id``
  (id, ARN or alias; none: the account's ``alias/aws/s3`` key) for SSE-KMS;
* ``x-amz-server-side-encryption-customer-algorithm`` (``AES256``), ``-customer-key`` (base64 of
  32 bytes) and ``-customer-key-MD5`` (base64 MD5 of the key, verified) give an SSE-C key; the
  ``x-amz-copy-source-server-side-encryption-customer-*`` triple gives the key of a copy source.

Responses carry ``x-amz-server-side-encryption: AES256`` for SSE-S3 objects, and the algorithm
and key MD5 (never the key) for SSE-C objects, ``aws:kms`` and the key ARN for SSE-KMS, as AWS
does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping

from onshore.domain.errors import (
    InvalidArgument,
    InvalidEncryptionAlgorithmError,
    S3NotImplemented,
)
from onshore.domain.models import Encryption, SseMode
from onshore.service.encryption.keys import CustomerKey

SSE = "x-amz-server-side-encryption"
CUSTOMER = "x-amz-server-side-encryption-customer-"
COPY_SOURCE_CUSTOMER = "x-amz-copy-source-server-side-encryption-customer-"
KMS_KEY_ID = "x-amz-server-side-encryption-aws-kms-key-id"


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


def check_write(
    headers: Mapping[str, str],
) -> tuple[SseMode | None, CustomerKey | None, str | None]:
    """What a write asks for (mode, SSE-C key, KMS key id); SSE-S3/SSE-KMS and SSE-C at once
    is refused, and so is a KMS key id without ``aws:kms``, as AWS does."""
    mode = requested_mode(headers)
    customer = customer_key(headers)
    kms_key_id = headers.get(KMS_KEY_ID)
    if kms_key_id is not None and mode is not SseMode.KMS:
        raise InvalidArgument(
            "Server Side Encryption with AWS KMS managed key requires HTTP header "
            "x-amz-server-side-encryption : aws:kms",
            ArgumentName=SSE,
        )
    if mode is not None and customer is not None:
        raise InvalidArgument(
            "Server Side Encryption with Customer provided key is incompatible with the "
            "encryption method specified",
            ArgumentName=SSE,
            ArgumentValue=headers.get(SSE, ""),
        )
    return mode, customer, kms_key_id


def response_headers(encryption: Encryption | None) -> dict[str, str]:
    if encryption is None:
        return {}
    if encryption.mode is SseMode.CUSTOMER:
        return {
            CUSTOMER + "algorithm": "AES256",
            CUSTOMER + "key-MD5": encryption.customer_key_md5,
        }
    if encryption.mode is SseMode.KMS:
        return {SSE: encryption.mode.value, KMS_KEY_ID: encryption.key_id}
    return {SSE: encryption.mode.value}


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
