"""Object operations through boto3 against a real server process."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.test_buckets import code_of, status_of


def test_put_get_round_trip_with_headers(s3: Any, bucket: str) -> None:
    body = os.urandom(10_000)
    put = s3.put_object(
        Bucket=bucket,
        Key="dir/file.bin",
        Body=body,
        ContentType="application/x-test",
        ContentEncoding="identity",
        ContentDisposition="attachment",
        ContentLanguage="fr",
        CacheControl="no-cache",
        Metadata={"color": "blue", "Mixed-Case": "Value"},
    )
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="dir/file.bin")
    assert got["Body"].read() == body
    assert got["ContentType"] == "application/x-test"
    assert got["ContentEncoding"] == "identity"
    assert got["ContentDisposition"] == "attachment"
    assert got["ContentLanguage"] == "fr"
    assert got["CacheControl"] == "no-cache"
    assert got["Metadata"] == {"color": "blue", "mixed-case": "Value"}
    assert got["ContentLength"] == len(body)
    head = s3.head_object(Bucket=bucket, Key="dir/file.bin")
    assert head["ETag"] == put["ETag"]
    assert head["ContentLength"] == len(body)


@pytest.mark.parametrize("size", [0, 1, 65_536, 65_537, 3 * 1024 * 1024 + 7])
def test_sizes_round_trip(s3: Any, bucket: str, size: int) -> None:
    body = os.urandom(size)
    s3.put_object(Bucket=bucket, Key=f"size-{size}", Body=body)
    assert s3.get_object(Bucket=bucket, Key=f"size-{size}")["Body"].read() == body


def test_default_content_type(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert s3.head_object(Bucket=bucket, Key="k")["ContentType"] == "binary/octet-stream"


def test_bad_content_md5(s3: Any, bucket: str) -> None:
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="k", Body=b"data", ContentMD5=wrong)
    assert code_of(err) == "BadDigest"
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="k")
    assert status_of(err) == 404


def test_missing_key(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="nope")
    assert code_of(err) == "NoSuchKey"
    assert status_of(err) == 404


@pytest.mark.parametrize(
    ("header", "status", "expected"),
    [
        ("bytes=0-9", 206, slice(0, 10)),
        ("bytes=10-", 206, slice(10, None)),
        ("bytes=-5", 206, slice(-5, None)),
        ("bytes=90-200", 206, slice(90, None)),
        ("bytes=5-2", 200, slice(None)),
        ("items=0-1", 200, slice(None)),
        ("bytes=0-1,4-5", 200, slice(None)),
    ],
)
def test_ranges(s3: Any, bucket: str, header: str, status: int, expected: slice) -> None:
    body = bytes(range(100))
    s3.put_object(Bucket=bucket, Key="r", Body=body)
    got = s3.get_object(Bucket=bucket, Key="r", Range=header)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == status
    assert got["Body"].read() == body[expected]
    if status == 206:
        assert got["ContentRange"].endswith("/100")


def test_unsatisfiable_range(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="r", Body=b"0123456789")
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="r", Range="bytes=10-20")
    assert code_of(err) == "InvalidRange"
    assert status_of(err) == 416


def test_ranged_read_of_large_object(s3: Any, bucket: str) -> None:
    body = os.urandom(3 * 1024 * 1024)
    s3.put_object(Bucket=bucket, Key="big", Body=body)
    got = s3.get_object(Bucket=bucket, Key="big", Range="bytes=1048000-2097999")
    assert got["Body"].read() == body[1048000:2098000]


def test_conditional_get(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"abc")["ETag"]
    past = datetime.now(UTC) - timedelta(days=1)
    future = datetime.now(UTC) + timedelta(days=1)
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"abc"
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"0000"')
    assert status_of(err) == 412
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert status_of(err) == 304
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=future)
    assert status_of(err) == 304
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="c", IfUnmodifiedSince=past)
    assert status_of(err) == 412
    # If-Match true wins over If-Unmodified-Since false, as S3 documents.
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag, IfUnmodifiedSince=past)
    # A present If-None-Match that does not match makes If-Modified-Since irrelevant.
    got = s3.get_object(Bucket=bucket, Key="c", IfNoneMatch='"zzz"', IfModifiedSince=future)
    assert got["Body"].read() == b"abc"
    # If-None-Match matching wins over If-Modified-Since: 304.
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag, IfModifiedSince=past)
    assert status_of(err) == 304


def test_conditional_writes(s3: Any, bucket: str) -> None:
    first = s3.put_object(Bucket=bucket, Key="w", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="w", Body=b"2", IfNoneMatch="*")
    assert status_of(err) == 412
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="w", Body=b"2", IfMatch='"deadbeef"')
    assert status_of(err) == 412
    s3.put_object(Bucket=bucket, Key="w", Body=b"3", IfMatch=first["ETag"])
    assert s3.get_object(Bucket=bucket, Key="w")["Body"].read() == b"3"
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="absent", Body=b"2", IfMatch=first["ETag"])
    assert status_of(err) == 404


def test_response_overrides(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="o", Body=b"x")
    got = s3.get_object(
        Bucket=bucket,
        Key="o",
        ResponseContentType="text/plain",
        ResponseContentDisposition="inline",
        ResponseCacheControl="max-age=5",
    )
    assert got["ContentType"] == "text/plain"
    assert got["ContentDisposition"] == "inline"
    assert got["CacheControl"] == "max-age=5"


def test_delete_object_and_missing_is_204(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="d", Body=b"x")
    assert s3.delete_object(Bucket=bucket, Key="d")["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.delete_object(Bucket=bucket, Key="d")["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="d")


def test_delete_objects(s3: Any, bucket: str) -> None:
    keys = [f"k{i}" for i in range(20)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[:10]]})
    assert sorted(d["Key"] for d in result["Deleted"]) == sorted(keys[:10])
    quiet = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[10:]], "Quiet": True}
    )
    assert "Deleted" not in quiet
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_delete_objects_limit(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": f"k{i}"} for i in range(1001)]}
        )
    assert code_of(err) == "MalformedXML"


def test_copy_object(s3: Any, bucket: str) -> None:
    body = os.urandom(200_000)
    src = s3.put_object(Bucket=bucket, Key="src", Body=body, Metadata={"a": "1"}, ContentType="x/y")
    copied = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert copied["CopyObjectResult"]["ETag"] == src["ETag"]
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == body
    assert got["Metadata"] == {"a": "1"}
    assert got["ContentType"] == "x/y"
    s3.copy_object(
        Bucket=bucket,
        Key="dst2",
        CopySource=f"{bucket}/src",
        MetadataDirective="REPLACE",
        Metadata={"b": "2"},
        ContentType="text/plain",
    )
    head = s3.head_object(Bucket=bucket, Key="dst2")
    assert head["Metadata"] == {"b": "2"}
    assert head["ContentType"] == "text/plain"


def test_copy_onto_itself_needs_a_change(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="self", Body=b"x", Metadata={"a": "1"})
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"})
    assert code_of(err) == "InvalidRequest"
    s3.copy_object(
        Bucket=bucket,
        Key="self",
        CopySource={"Bucket": bucket, "Key": "self"},
        MetadataDirective="REPLACE",
        Metadata={"a": "2"},
    )
    assert s3.head_object(Bucket=bucket, Key="self")["Metadata"] == {"a": "2"}


def test_copy_source_conditions_and_missing(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="s", Body=b"x")["ETag"]
    s3.copy_object(Bucket=bucket, Key="t", CopySource=f"{bucket}/s", CopySourceIfMatch=etag)
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="t", CopySource=f"{bucket}/s", CopySourceIfMatch='"0"')
    assert status_of(err) == 412
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="t", CopySource=f"{bucket}/nope")
    assert code_of(err) == "NoSuchKey"


WEIRD_KEYS = [
    "../escape",
    "a//b",
    "trailing/",
    "with space",
    "plus+sign",
    "percent%20literal",
    "unicode-ключ-鍵-🔑",
    "/leading-slash",
    "question?mark",
    "hash#tag",
    "amp&er=sand",
    "tab\there",
    "~tilde",
]


@pytest.mark.parametrize("key", WEIRD_KEYS)
def test_weird_keys_round_trip(s3: Any, bucket: str, key: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    listed = s3.list_objects_v2(Bucket=bucket)
    assert [c["Key"] for c in listed["Contents"]] == [key]
    s3.delete_object(Bucket=bucket, Key=key)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_key_length_limit(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k" * 1024, Body=b"x")
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")
    assert code_of(err) == "KeyTooLongError"
    assert status_of(err) == 400


def test_get_object_attributes(s3: Any, bucket: str) -> None:
    body = b"hello attributes"
    put = s3.put_object(Bucket=bucket, Key="a", Body=body, ChecksumAlgorithm="SHA256")
    attrs = s3.get_object_attributes(
        Bucket=bucket, Key="a", ObjectAttributes=["ETag", "ObjectSize", "StorageClass", "Checksum"]
    )
    assert attrs["ETag"] == put["ETag"].strip('"')
    assert attrs["ObjectSize"] == len(body)
    assert attrs["StorageClass"] == "STANDARD"
    assert (
        attrs["Checksum"]["ChecksumSHA256"]
        == base64.b64encode(hashlib.sha256(body).digest()).decode()
    )


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_checksums_stored_and_returned(s3: Any, bucket: str, algorithm: str) -> None:
    body = os.urandom(100_000)
    put = s3.put_object(Bucket=bucket, Key="c", Body=body, ChecksumAlgorithm=algorithm)
    field = f"Checksum{algorithm}"
    assert put[field]
    got = s3.get_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    assert got[field] == put[field]
    head = s3.head_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert head[field] == put[field]


def test_wrong_checksum_is_bad_digest(s3: Any, bucket: str) -> None:
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="c", Body=b"data", ChecksumSHA256=wrong)
    assert code_of(err) == "BadDigest"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="c")


def test_default_crc64nvme_checksum(server: Any, bucket: str) -> None:
    """Objects uploaded without a checksum get a CRC64NVME one, as on AWS: single PUT,
    CopyObject and multipart (combined from the parts' CRCs)."""
    from awscrt import checksums as crt

    from tests.api.conftest import make_client

    client = make_client(server.endpoint, request_checksum_calculation="when_required")

    def crc64(data: bytes) -> str:
        return base64.b64encode(crt.crc64nvme(data).to_bytes(8, "big")).decode()

    for size in (10, 200_000):
        body = os.urandom(size)
        client.put_object(Bucket=bucket, Key=f"plain-{size}", Body=body)
        head = client.head_object(Bucket=bucket, Key=f"plain-{size}", ChecksumMode="ENABLED")
        assert head["ChecksumCRC64NVME"] == crc64(body)
        client.copy_object(Bucket=bucket, Key=f"copy-{size}", CopySource=f"{bucket}/plain-{size}")
        head = client.head_object(Bucket=bucket, Key=f"copy-{size}", ChecksumMode="ENABLED")
        assert head["ChecksumCRC64NVME"] == crc64(body)
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(1234)]
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    done = [
        {
            "PartNumber": n,
            "ETag": client.upload_part(
                Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=n, Body=data
            )["ETag"],
        }
        for n, data in enumerate(parts, start=1)
    ]
    client.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    head = client.head_object(Bucket=bucket, Key="mp", ChecksumMode="ENABLED")
    assert head["ChecksumCRC64NVME"] == crc64(b"".join(parts))
    assert head["ChecksumType"] == "FULL_OBJECT"
    got = client.get_object(Bucket=bucket, Key="mp", ChecksumMode="ENABLED")
    assert got["Body"].read() == b"".join(parts)


def test_conditional_delete(s3: Any, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="cd", Body=b"1")
    with pytest.raises(ClientError) as err:
        s3.delete_object(Bucket=bucket, Key="cd", IfMatch='"deadbeef"')
    assert status_of(err) == 412
    assert err.value.response["Error"]["Code"] == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key="cd")["Body"].read() == b"1"
    with pytest.raises(ClientError) as err:
        s3.delete_object(Bucket=bucket, Key="cd-absent", IfMatch=put["ETag"])
    assert status_of(err) == 404
    s3.delete_object(Bucket=bucket, Key="cd", IfMatch=put["ETag"])
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="cd")
    assert status_of(err) == 404
