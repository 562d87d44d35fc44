"""Every S3 operation, asked by a caller without grants, is refused before anything is looked
up: the same ``403 AccessDenied`` whether the bucket and key exist or not.

The caller here is anonymous (unsigned requests), the one second principal that exists
without tenants; the request table is built from the router's own tables, so a new operation
is covered as soon as it is routed. Each request is sent twice — at an existing bucket and
key, and at a missing key — and the two answers must be indistinguishable but for the
request id.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from onshore.s3api import routing
from onshore.s3api.routing import Op
from tests.api.raw import request
from tests.api.server import ServerProcess


def _requests() -> list[tuple[Op, str, str, str, dict[str, str]]]:
    """(op, method, level, query, headers) for every routed operation."""
    found: dict[Op, tuple[Op, str, str, str, dict[str, str]]] = {}
    for method, entries in routing._BUCKET.items():
        for param, op in entries:
            found.setdefault(op, (op, method, "bucket", param, {}))
    for method, op in routing._BUCKET_DEFAULT.items():
        found.setdefault(op, (op, method, "bucket", "", {}))
    for method, entries in routing._OBJECT.items():
        for param, op in entries:
            query = "uploadId=u1" if param == "uploadId" else param
            found.setdefault(op, (op, method, "object", query, {}))
    for method, op in routing._OBJECT_DEFAULT.items():
        found.setdefault(op, (op, method, "object", "", {}))
    copy = {"x-amz-copy-source": "/{bucket}/obj"}
    extra = [
        (Op.ListBuckets, "GET", "service", "", {}),
        (Op.ListObjectsV2, "GET", "bucket", "list-type=2", {}),
        (Op.PutObject, "PUT", "object", "", {}),
        (Op.CopyObject, "PUT", "object", "", copy),
        (Op.UploadPart, "PUT", "object", "uploadId=u1&partNumber=1", {}),
        (Op.UploadPartCopy, "PUT", "object", "uploadId=u1&partNumber=1", copy),
    ]
    for entry in extra:
        found[entry[0]] = entry
    return sorted(found.values(), key=lambda e: e[0].value)


REQUESTS = _requests()


def test_every_operation_is_covered() -> None:
    assert {r[0] for r in REQUESTS} == set(Op)


@pytest.fixture(scope="module")
def target(s3: Any) -> Iterator[str]:
    name = "isolation-target"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="obj", Body=b"secret")
    yield name
    s3.delete_object(Bucket=name, Key="obj")
    s3.delete_bucket(Bucket=name)


def _scrub(body: bytes) -> bytes:
    return re.sub(rb"<(RequestId|HostId)>[^<]*</(RequestId|HostId)>", b"", body)


@pytest.fixture(params=["anonymous"])
def outsider(request: pytest.FixtureRequest) -> dict[str, Any]:
    """How the caller without grants signs (``tests.api.raw.request`` keyword arguments). With
    tenants, add a param for a user of another tenant: its access key and secret."""
    assert request.param == "anonymous"
    return {"sign": False}


def _ask(
    outsider: dict[str, Any],
    server: ServerProcess,
    op: Op,
    method: str,
    level: str,
    query: str,
    headers: dict[str, str],
    bucket: str,
    key: str,
) -> tuple[int, str | None, bytes]:
    path = {"service": "/", "bucket": f"/{bucket}", "object": f"/{bucket}/{key}"}[level]
    if query:
        path += "?" + query
    body = b"<Delete><Object><Key>obj</Key></Object></Delete>" if op is Op.DeleteObjects else b""
    hdrs = {k: v.format(bucket=bucket) for k, v in headers.items()}
    response = request(server.endpoint, method, path, body=body, headers=hdrs, **outsider)
    if method == "HEAD":
        return response.status, None, b""
    body_out = _scrub(response.body).replace(key.encode(), b"KEY")
    return response.status, response.code, body_out


@pytest.mark.parametrize(
    ("op", "method", "level", "query", "headers"), REQUESTS, ids=[r[0].value for r in REQUESTS]
)
def test_refused_alike_for_existing_and_missing(
    outsider: dict[str, Any],
    server: ServerProcess,
    target: str,
    op: Op,
    method: str,
    level: str,
    query: str,
    headers: dict[str, str],
) -> None:
    existing = _ask(outsider, server, op, method, level, query, headers, target, "obj")
    missing = _ask(outsider, server, op, method, level, query, headers, target, "no-such-key")
    assert existing[0] == 403, existing
    if method != "HEAD":
        assert existing[1] == "AccessDenied"
    assert existing == missing
    # and the object is untouched
    other_bucket = _ask(
        outsider, server, op, method, level, query, headers, "no-such-bucket-xyz", "obj"
    )
    assert other_bucket[0] == 403
