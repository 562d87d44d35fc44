"""Multipart uploads through boto3 against a real server process."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.test_buckets import code_of

MiB = 1024 * 1024


def upload(s3: Any, bucket: str, key: str, parts: list[bytes]) -> tuple[str, list[dict[str, Any]]]:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    done = []
    for number, data in enumerate(parts, start=1):
        etag = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
        )["ETag"]
        done.append({"PartNumber": number, "ETag": etag})
    return upload_id, done


def test_complete_round_trip(s3: Any, bucket: str) -> None:
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(1234)]
    upload_id, done = upload(s3, bucket, "mp", parts)
    result = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    assert result["ETag"] == f'"{digest}-3"'
    body = b"".join(parts)
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["Body"].read() == body
    part2 = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert part2["Body"].read() == parts[1]
    assert part2["PartsCount"] == 3
    ranged = s3.get_object(Bucket=bucket, Key="mp", Range=f"bytes={5 * MiB - 10}-{5 * MiB + 9}")
    assert ranged["Body"].read() == body[5 * MiB - 10 : 5 * MiB + 10]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_entity_too_small(s3: Any, bucket: str) -> None:
    upload_id, done = upload(s3, bucket, "small", [b"a" * 100, b"b" * 100])
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="small", UploadId=upload_id, MultipartUpload={"Parts": done}
        )
    assert code_of(err) == "EntityTooSmall"
    s3.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=upload_id)


def test_invalid_part_and_order(s3: Any, bucket: str) -> None:
    upload_id, done = upload(s3, bucket, "bad", [os.urandom(5 * MiB), b"tail"])
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="bad",
            UploadId=upload_id,
            MultipartUpload={"Parts": [done[1], done[0]]},
        )
    assert code_of(err) == "InvalidPartOrder"
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="bad",
            UploadId=upload_id,
            MultipartUpload={"Parts": [done[0], {"PartNumber": 2, "ETag": '"0000"'}]},
        )
    assert code_of(err) == "InvalidPart"
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="bad",
            UploadId=upload_id,
            MultipartUpload={"Parts": [done[0], {"PartNumber": 7, "ETag": done[1]["ETag"]}]},
        )
    assert code_of(err) == "InvalidPart"
    # Completing with only the first part is allowed; the unused part is discarded.
    s3.complete_multipart_upload(
        Bucket=bucket, Key="bad", UploadId=upload_id, MultipartUpload={"Parts": [done[0]]}
    )
    assert s3.head_object(Bucket=bucket, Key="bad")["ContentLength"] == 5 * MiB


def test_no_such_upload(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.upload_part(Bucket=bucket, Key="k", UploadId="nope", PartNumber=1, Body=b"x")
    assert code_of(err) == "NoSuchUpload"
    with pytest.raises(ClientError) as err:
        s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId="nope")
    assert code_of(err) == "NoSuchUpload"


def test_bad_part_number(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    with pytest.raises(ClientError) as err:
        s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=10001, Body=b"x")
    assert code_of(err) == "InvalidArgument"
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id)


def test_list_parts_and_uploads_pagination(s3: Any, bucket: str) -> None:
    upload_id, _ = upload(s3, bucket, "lp", [b"x" * 10 for _ in range(5)])
    pages = s3.get_paginator("list_parts").paginate(
        Bucket=bucket, Key="lp", UploadId=upload_id, PaginationConfig={"PageSize": 2}
    )
    assert [p["PartNumber"] for page in pages for p in page.get("Parts", [])] == [1, 2, 3, 4, 5]
    other = [s3.create_multipart_upload(Bucket=bucket, Key=f"u{i}")["UploadId"] for i in range(3)]
    pages = s3.get_paginator("list_multipart_uploads").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 2}
    )
    listed = [u["Key"] for page in pages for u in page.get("Uploads", [])]
    assert listed == ["lp", "u0", "u1", "u2"]
    for i, uid in enumerate(other):
        s3.abort_multipart_upload(Bucket=bucket, Key=f"u{i}", UploadId=uid)
    s3.abort_multipart_upload(Bucket=bucket, Key="lp", UploadId=upload_id)
    with pytest.raises(ClientError) as err:
        s3.list_parts(Bucket=bucket, Key="lp", UploadId=upload_id)
    assert code_of(err) == "NoSuchUpload"


def test_upload_part_copy_with_range(s3: Any, bucket: str) -> None:
    source = os.urandom(6 * MiB)
    s3.put_object(Bucket=bucket, Key="source", Body=source)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    first = s3.upload_part_copy(
        Bucket=bucket,
        Key="assembled",
        UploadId=upload_id,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "source"},
        CopySourceRange=f"bytes=0-{5 * MiB - 1}",
    )["CopyPartResult"]["ETag"]
    second = s3.upload_part(
        Bucket=bucket, Key="assembled", UploadId=upload_id, PartNumber=2, Body=b"tail"
    )["ETag"]
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="assembled",
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": first}, {"PartNumber": 2, "ETag": second}]
        },
    )
    assert (
        s3.get_object(Bucket=bucket, Key="assembled")["Body"].read() == source[: 5 * MiB] + b"tail"
    )


def test_boto3_managed_transfer(s3: Any, bucket: str, tmp_path: Any) -> None:
    from boto3.s3.transfer import TransferConfig

    path = tmp_path / "big.bin"
    data = os.urandom(20 * MiB + 3)
    path.write_bytes(data)
    config = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB)
    s3.upload_file(str(path), bucket, "managed", Config=config)
    out = tmp_path / "out.bin"
    s3.download_file(bucket, "managed", str(out), Config=config)
    assert out.read_bytes() == data
    assert s3.head_object(Bucket=bucket, Key="managed")["ETag"].endswith('-3"')


@pytest.mark.parametrize(
    ("algorithm", "kind"),
    [
        ("CRC32", "COMPOSITE"),
        ("CRC32C", "FULL_OBJECT"),
        ("CRC64NVME", "FULL_OBJECT"),
        ("SHA256", "COMPOSITE"),
        ("SHA1", "COMPOSITE"),
    ],
)
def test_multipart_checksums(s3: Any, bucket: str, algorithm: str, kind: str) -> None:
    import base64

    from awscrt import checksums as crt

    parts = [os.urandom(5 * MiB), os.urandom(1000)]
    upload_id = s3.create_multipart_upload(
        Bucket=bucket, Key="ck", ChecksumAlgorithm=algorithm, ChecksumType=kind
    )["UploadId"]
    done = []
    for number, data in enumerate(parts, start=1):
        result = s3.upload_part(
            Bucket=bucket,
            Key="ck",
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            ChecksumAlgorithm=algorithm,
        )
        done.append(
            {
                "PartNumber": number,
                "ETag": result["ETag"],
                f"Checksum{algorithm}": result[f"Checksum{algorithm}"],
            }
        )
    completed = s3.complete_multipart_upload(
        Bucket=bucket, Key="ck", UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    value = completed[f"Checksum{algorithm}"]
    assert completed["ChecksumType"] == kind
    whole = b"".join(parts)
    if kind == "FULL_OBJECT":
        if algorithm == "CRC32C":
            expected = crt.crc32c(whole).to_bytes(4, "big")
        else:
            expected = crt.crc64nvme(whole).to_bytes(8, "big")
        assert value == base64.b64encode(expected).decode()
    else:
        assert value.endswith("-2")
    head = s3.head_object(Bucket=bucket, Key="ck", ChecksumMode="ENABLED")
    assert head[f"Checksum{algorithm}"] == value
    assert s3.get_object(Bucket=bucket, Key="ck")["Body"].read() == whole
