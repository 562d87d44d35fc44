"""Entity tags as S3 computes them.

* An object uploaded in one request: the hex MD5 of its bytes.
* A multipart object: the hex MD5 of the concatenated *binary* MD5s of its parts, then ``-N``
  where N is the number of parts (so the ETag of a multipart object is not the MD5 of its data).

ETags travel in quotes on the wire (``"d41d8cd98f00b204e9800998ecf8427e"``); the store keeps
them unquoted. Conditional headers may carry lists, weak tags (``W/"..."``) or ``*``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def multipart_etag(part_etags: Iterable[str]) -> str:
    """The ETag of an object assembled from parts with these (unquoted hex) ETags."""
    md5 = hashlib.md5(usedforsecurity=False)
    count = 0
    for etag in part_etags:
        md5.update(bytes.fromhex(etag))
        count += 1
    return f"{md5.hexdigest()}-{count}"


def quote(etag: str) -> str:
    return f'"{etag}"'


def unquote(value: str) -> str:
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return value


def matches(header: str, etag: str) -> bool:
    """Whether an ``If-Match``/``If-None-Match`` header value matches ``etag`` (unquoted)."""
    return any(t == "*" or unquote(t) == etag for t in header.split(","))
