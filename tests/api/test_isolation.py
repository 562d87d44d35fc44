"""Every S3 operation, asked by a caller without grants, is refused before anything is looked
up: the same ``403 AccessDenied`` whether the bucket and key exist or not.

The callers: anonymous (unsigned requests), the admin of another tenant (who has every right in
its own account and none in this one) and a user of another tenant whose identity policy
allows everything (``s3:*`` on ``*``: a grant in its own account is not one here, since across
accounts the bucket policy must allow too). The request table is built from the router's own
tables, so a new operation is covered as soon as it is routed. Each request is sent twice — at
an existing bucket and key, and at a missing key — and the two answers must be
indistinguishable but for the request id.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from onshore.s3api import routing
from onshore.s3api.routing import Op
from tests.api.iam_support import admin_client, allow, new_tenant, new_user_key
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


@pytest.fixture(scope="module")
def other_tenant(server: ServerProcess) -> dict[str, dict[str, Any]]:
    admin = admin_client(server)
    tenant = new_tenant(admin, "outsider")
    user_key, user_secret = new_user_key(admin, tenant, "everything")
    allow(admin, tenant, "everything", "s3:*")
    return {
        "other-tenant-admin": {"access_key": tenant.access_key, "secret": tenant.secret_key},
        "other-tenant-user": {"access_key": user_key, "secret": user_secret},
    }


@pytest.fixture(params=["anonymous", "other-tenant-admin", "other-tenant-user"])
def outsider(
    request: pytest.FixtureRequest, other_tenant: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """How the caller without grants signs (``tests.api.raw.request`` keyword arguments)."""
    if request.param == "anonymous":
        return {"sign": False}
    return other_tenant[request.param]


#: Operations a principal of another tenant may legitimately perform here: listing its own
#: buckets, and creating a bucket (names are global, as in an AWS partition: an existing name
#: is BucketAlreadyExists for everyone else, which is what AWS answers too).
OWN_ACCOUNT_OPS = {Op.ListBuckets, Op.CreateBucket}


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
    if op in OWN_ACCOUNT_OPS and outsider.get("sign", True):
        pytest.skip("another tenant's principal acts in its own account here")
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
    if outsider.get("sign", True):
        # A missing bucket is nobody's: a signed caller is judged as the owner it would be
        # (NoSuchBucket, as AWS answers, or the operation's own validation error); it learns
        # nothing about any tenant.
        assert other_bucket[0] in (400, 403, 404, 501), other_bucket
    else:
        assert other_bucket[0] == 403
