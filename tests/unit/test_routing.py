"""The router is a pure function: table-test it."""

from __future__ import annotations

import pytest

from onshore.domain.errors import InvalidURI, MethodNotAllowed
from onshore.s3api.routing import Op, resolve, split_host

CASES = [
    ("GET", "/", {}, {}, Op.ListBuckets, None, None),
    ("PUT", "/b", {}, {}, Op.CreateBucket, "b", None),
    ("HEAD", "/b", {}, {}, Op.HeadBucket, "b", None),
    ("DELETE", "/b/", {}, {}, Op.DeleteBucket, "b", None),
    ("GET", "/b", {}, {}, Op.ListObjects, "b", None),
    ("GET", "/b", {"list-type": "2"}, {}, Op.ListObjectsV2, "b", None),
    ("GET", "/b", {"versions": ""}, {}, Op.ListObjectVersions, "b", None),
    ("GET", "/b", {"uploads": ""}, {}, Op.ListMultipartUploads, "b", None),
    ("GET", "/b", {"location": ""}, {}, Op.GetBucketLocation, "b", None),
    ("PUT", "/b", {"versioning": ""}, {}, Op.PutBucketVersioning, "b", None),
    ("POST", "/b", {"delete": ""}, {}, Op.DeleteObjects, "b", None),
    ("GET", "/b/k", {}, {}, Op.GetObject, "b", "k"),
    ("HEAD", "/b/k", {}, {}, Op.HeadObject, "b", "k"),
    ("PUT", "/b/k", {}, {}, Op.PutObject, "b", "k"),
    ("PUT", "/b/k", {}, {"x-amz-copy-source": "/b/o"}, Op.CopyObject, "b", "k"),
    ("PUT", "/b/k", {"partNumber": "1", "uploadId": "u"}, {}, Op.UploadPart, "b", "k"),
    (
        "PUT",
        "/b/k",
        {"partNumber": "1", "uploadId": "u"},
        {"x-amz-copy-source": "b/o"},
        Op.UploadPartCopy,
        "b",
        "k",
    ),
    ("POST", "/b/k", {"uploads": ""}, {}, Op.CreateMultipartUpload, "b", "k"),
    ("POST", "/b/k", {"uploadId": "u"}, {}, Op.CompleteMultipartUpload, "b", "k"),
    ("DELETE", "/b/k", {"uploadId": "u"}, {}, Op.AbortMultipartUpload, "b", "k"),
    ("GET", "/b/k", {"uploadId": "u"}, {}, Op.ListParts, "b", "k"),
    ("GET", "/b/k", {"attributes": ""}, {}, Op.GetObjectAttributes, "b", "k"),
    ("DELETE", "/b/k", {"versionId": "v"}, {}, Op.DeleteObject, "b", "k"),
    ("GET", "/b/a%2Fb%20c", {}, {}, Op.GetObject, "b", "a/b c"),
    ("GET", "/b/..%2F..%2Fetc", {}, {}, Op.GetObject, "b", "../../etc"),
    ("GET", "/b//double//slash/", {}, {}, Op.GetObject, "b", "/double//slash/"),
    ("GET", "/b/plus+sign", {}, {}, Op.GetObject, "b", "plus+sign"),
    ("GET", "/b/%E9%8D%B5", {}, {}, Op.GetObject, "b", "鍵"),
]


@pytest.mark.parametrize(("method", "path", "query", "headers", "op", "bucket", "key"), CASES)
def test_resolve(
    method: str,
    path: str,
    query: dict[str, str],
    headers: dict[str, str],
    op: Op,
    bucket: str | None,
    key: str | None,
) -> None:
    route = resolve(method, path, query, headers)
    assert route.op is op
    assert route.bucket == bucket
    assert (route.key or None) == key


def test_virtual_hosted_style() -> None:
    route = resolve(
        "GET", "/k/x", {}, {"host": "my-bucket.s3.example.com:9000"}, domain="s3.example.com"
    )
    assert (route.op, route.bucket, route.key) == (Op.GetObject, "my-bucket", "k/x")
    route = resolve("GET", "/", {}, {"host": "my-bucket.s3.example.com"}, domain="s3.example.com")
    assert (route.op, route.bucket) == (Op.ListObjects, "my-bucket")
    route = resolve("GET", "/b/k", {}, {"host": "s3.example.com"}, domain="s3.example.com")
    assert (route.op, route.bucket, route.key) == (Op.GetObject, "b", "k")
    assert split_host("127.0.0.1:9000", "s3.example.com") is None


def test_errors() -> None:
    with pytest.raises(MethodNotAllowed):
        resolve("PUT", "/", {}, {})
    with pytest.raises(MethodNotAllowed):
        resolve("POST", "/b/k", {}, {})
    with pytest.raises(InvalidURI):
        resolve("GET", "/b/%FF%FE", {}, {})


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("DELETE", "/b", {"analytics": "", "id": "x"}),
        ("DELETE", "/b", {"metadataTable": ""}),
        ("PUT", "/b", {"abac": ""}),
        ("PUT", "/b/k", {"encryption": ""}),
        ("PUT", "/b/k", {"renameObject": ""}),
        ("DELETE", "/b/k", {"annotation": ""}),
        ("GET", "/b/k", {"annotation": ""}),
        ("PUT", "/b/k", {"uploadId": "u"}),
        ("HEAD", "/b/k", {"uploadId": "u"}),
        ("GET", "/b", {"session": ""}),
    ],
)
def test_unrouted_subresources_are_refused(method: str, path: str, query: dict[str, str]) -> None:
    from onshore.domain.errors import NotImplemented

    with pytest.raises(NotImplemented):
        resolve(method, path, query, {})


def test_ordinary_parameters_are_ignored() -> None:
    assert resolve("GET", "/b/k", {"x-id": "GetObject", "partNumber": "2"}, {}).op is Op.GetObject
    assert resolve("GET", "/b", {"prefix": "", "foo": "bar"}, {}).op is Op.ListObjects


def test_writes_are_the_operations_that_add_data() -> None:
    from onshore.s3api.routing import WRITES

    for op in (
        Op.PutObject,
        Op.CopyObject,
        Op.UploadPart,
        Op.UploadPartCopy,
        Op.CreateBucket,
        Op.CreateMultipartUpload,
        Op.CompleteMultipartUpload,
        Op.PutBucketVersioning,
        Op.PostObject,
    ):
        assert op in WRITES, op
    for op in Op:
        if op.value.startswith(("Get", "Head", "List", "Delete", "Abort")):
            assert op not in WRITES, op
