"""Bucket operations through boto3 against a real server process."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.server import REGION


def code_of(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def status_of(err: pytest.ExceptionInfo[ClientError]) -> int:
    return int(err.value.response["ResponseMetadata"]["HTTPStatusCode"])


def test_create_head_list_delete(s3: Any) -> None:
    name = f"b-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    head = s3.head_bucket(Bucket=name)
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == REGION
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] == REGION
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as err:
        s3.head_bucket(Bucket=name)
    assert status_of(err) == 404


def test_create_twice_is_already_owned(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.create_bucket(Bucket=bucket)
    assert code_of(err) == "BucketAlreadyOwnedByYou"
    assert status_of(err) == 409


def test_location_constraint_must_be_served_region(s3: Any) -> None:
    name = f"b-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as err:
        s3.create_bucket(
            Bucket=f"b-{uuid.uuid4().hex[:12]}",
            CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
        )
    assert code_of(err) == "InvalidLocationConstraint"


@pytest.mark.parametrize(
    "name",
    [
        "ab",
        "a" * 64,
        "Upper-case",
        "has_underscore",
        "-leading",
        "trailing-",
        "a..b",
        "192.168.1.1",
        "xn--punycode",
        "onshore",
    ],
)
def test_invalid_bucket_names(s3: Any, name: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.create_bucket(Bucket=name)
    assert code_of(err) in ("InvalidBucketName",)
    assert status_of(err) == 400


def test_delete_non_empty_bucket(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as err:
        s3.delete_bucket(Bucket=bucket)
    assert code_of(err) == "BucketNotEmpty"
    assert status_of(err) == 409


def test_missing_bucket_errors(s3: Any) -> None:
    with pytest.raises(ClientError) as err:
        s3.list_objects_v2(Bucket="no-such-bucket-here")
    assert code_of(err) == "NoSuchBucket"
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket="no-such-bucket-here", Key="k", Body=b"x")
    assert code_of(err) == "NoSuchBucket"
    with pytest.raises(ClientError) as err:
        s3.delete_bucket(Bucket="no-such-bucket-here")
    assert code_of(err) == "NoSuchBucket"


def test_list_buckets_pagination(s3: Any) -> None:
    prefix = f"pg-{uuid.uuid4().hex[:8]}-"
    names = [f"{prefix}{i:02d}" for i in range(5)]
    for name in names:
        s3.create_bucket(Bucket=name)
    try:
        seen: list[str] = []
        kwargs: dict[str, Any] = {"Prefix": prefix, "MaxBuckets": 2}
        while True:
            page = s3.list_buckets(**kwargs)
            seen += [b["Name"] for b in page["Buckets"]]
            token = page.get("ContinuationToken")
            if not token:
                break
            kwargs["ContinuationToken"] = token
        assert seen == names
    finally:
        for name in names:
            s3.delete_bucket(Bucket=name)


def test_versioning_configuration(s3: Any, bucket: str) -> None:
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
