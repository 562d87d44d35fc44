"""SigV4 for small, fully buffered request bodies (the admin API's JSON, the IAM query API's
forms), whatever the signing service.

Clients of services other than S3 usually send no ``x-amz-content-sha256`` header: the payload
hash in their canonical request is simply the SHA-256 of the body. The body is read first (it is
small and bounded), hashed, and that hash is what the signature is verified against, so a
verified request has a verified body. A declared ``x-amz-content-sha256`` must equal it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from onshore.domain.errors import MaxMessageLengthExceeded, XAmzContentSHA256Mismatch
from onshore.s3api.auth.sigv4 import AuthResult, SecretLookup, authenticate
from onshore.s3api.http import Receive


async def read_small_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; MaxMessageLengthExceeded past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        piece = message.get("body", b"")
        assert isinstance(piece, bytes)
        size += len(piece)
        if size > limit:
            raise MaxMessageLengthExceeded(f"The request body exceeds {limit} bytes.")
        chunks.append(piece)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def authenticate_buffered(
    method: str,
    raw_path: str,
    query_string: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    lookup: SecretLookup,
    region: str,
    service: str,
) -> AuthResult:
    digest = hashlib.sha256(body).hexdigest()
    declared = headers.get("x-amz-content-sha256")
    if declared is not None and declared.strip().lower() != digest:
        raise XAmzContentSHA256Mismatch(ClientComputedContentSHA256=declared[:64])
    with_hash = dict(headers)
    with_hash["x-amz-content-sha256"] = digest
    return authenticate(
        method, raw_path, query_string, with_hash, lookup=lookup, region=region, service=service
    )
