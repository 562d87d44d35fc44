"""Bucket and key naming rules.

Bucket names follow the AWS general-purpose bucket rules: 3 to 63 characters of lower-case
letters, digits, dots and hyphens, beginning and ending with a letter or digit, no two adjacent
dots, not shaped like an IPv4 address, and none of the prefixes and suffixes AWS reserves. The
name ``onshore`` is reserved for the server's own endpoints (``/onshore/health/...``), as MinIO
reserves ``minio``.

Keys are any non-empty UTF-8 string of at most 1,024 bytes. A key is only ever a value in the
metadata store: it never becomes a filesystem path, so ``../`` or ``//`` in a key is harmless.

Reference: https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
"""

from __future__ import annotations

import re

from onshore.domain.errors import InvalidArgument, InvalidBucketName, KeyTooLongError

RESERVED_BUCKET = "onshore"
MAX_KEY_BYTES = 1024

_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_IPV4_RE = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def bucket_name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid bucket name, or None if it is."""
    # fullmatch, not match with "$": "$" also matches before a trailing newline.
    if not _BUCKET_RE.fullmatch(name):
        return (
            "Bucket names must be 3-63 characters of lower-case letters, digits, dots and "
            "hyphens, and begin and end with a letter or digit"
        )
    if ".." in name:
        return "Bucket names must not contain two adjacent periods"
    if _IPV4_RE.fullmatch(name):
        return "Bucket names must not be formatted as an IP address"
    if name.startswith(_RESERVED_PREFIXES) or name.endswith(_RESERVED_SUFFIXES):
        return "Bucket names must not use a reserved prefix or suffix"
    if name == RESERVED_BUCKET:
        return f"The bucket name '{RESERVED_BUCKET}' is reserved by this server"
    return None


def check_bucket_name(name: str) -> None:
    """Raise InvalidBucketName unless ``name`` may be used to create a bucket."""
    problem = bucket_name_problem(name)
    if problem:
        raise InvalidBucketName(f"The specified bucket is not valid. {problem}.", BucketName=name)


def check_key(key: str) -> None:
    """Raise unless ``key`` is a valid object key (non-empty, at most 1,024 UTF-8 bytes)."""
    if not key:
        raise InvalidArgument("Object key must not be empty.")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidArgument("Object key is not valid UTF-8.") from None
    if size > MAX_KEY_BYTES:
        raise KeyTooLongError(Size=str(size), MaxSizeAllowed=str(MAX_KEY_BYTES))
