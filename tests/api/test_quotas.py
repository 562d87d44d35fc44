"""Per-tenant quotas with boto3 against a real server: every write family is refused with
QuotaExceeded (403) past a limit, reads and deletes never are, and freeing space lets writes in
again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from onshore.cli.adminclient import AdminClient
from tests.api.iam_support import (
    TenantKeys,
    client,
    error_code,
    iam_server,
    new_tenant,
)
from tests.api.server import ServerProcess

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from iam_server(tmp_path_factory, "quotas")


@pytest.fixture
def tenant(admin: AdminClient) -> TenantKeys:
    return new_tenant(admin, "q")


@pytest.fixture
def s3(server: ServerProcess, tenant: TenantKeys) -> Any:
    return client("s3", server.endpoint, tenant.access_key, tenant.secret_key)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"q-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def set_quota(admin: AdminClient, tenant: TenantKeys, **limits: int | None) -> None:
    admin.request("PUT", f"/tenants/{tenant.account_id}/quota", limits)


def refused(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    assert error_code(info.value) == ("QuotaExceeded", 403)
    message: str = info.value.response["Error"]["Message"]
    return message


def usage(admin: AdminClient, tenant: TenantKeys) -> dict[str, int]:
    got = admin.request("GET", f"/tenants/{tenant.account_id}/quota")
    assert isinstance(got, dict)
    result: dict[str, int] = got["usage"]
    return result


def test_bytes_quota_on_put_then_delete_frees_it(
    admin: AdminClient, tenant: TenantKeys, s3: Any, bucket: str
) -> None:
    set_quota(admin, tenant, max_bytes=100_000)
    s3.put_object(Bucket=bucket, Key="a", Body=b"x" * 60_000)
    message = refused(s3.put_object, Bucket=bucket, Key="b", Body=b"x" * 60_000)
    assert "stored bytes" in message and "100000" in message
    assert s3.get_object(Bucket=bucket, Key="a")["Body"].read() == b"x" * 60_000  # reads work
    assert usage(admin, tenant) == {"bytes": 60_000, "objects": 1, "buckets": 1}
    s3.delete_object(Bucket=bucket, Key="a")
    s3.put_object(Bucket=bucket, Key="b", Body=b"x" * 60_000)  # back under: allowed
    assert usage(admin, tenant)["bytes"] == 60_000


def test_reads_listings_and_deletes_work_over_quota(
    admin: AdminClient, tenant: TenantKeys, s3: Any, bucket: str
) -> None:
    for key in ("a", "b", "c"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"12345")
    set_quota(admin, tenant, max_bytes=1, max_objects=1, max_buckets=0)  # far below usage
    refused(s3.put_object, Bucket=bucket, Key="d", Body=b"1")
    assert s3.head_object(Bucket=bucket, Key="a")["ContentLength"] == 5
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["a", "b", "c"]
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]})
    s3.delete_object(Bucket=bucket, Key="c")
    s3.delete_bucket(Bucket=bucket)
    assert usage(admin, tenant) == {"bytes": 0, "objects": 0, "buckets": 0}


def test_objects_quota(admin: AdminClient, tenant: TenantKeys, s3: Any, bucket: str) -> None:
    set_quota(admin, tenant, max_objects=2)
    s3.put_object(Bucket=bucket, Key="1", Body=b"")
    s3.put_object(Bucket=bucket, Key="2", Body=b"")
    assert "objects quota (2)" in refused(s3.put_object, Bucket=bucket, Key="3", Body=b"")
    refused(s3.copy_object, Bucket=bucket, Key="3", CopySource={"Bucket": bucket, "Key": "1"})
    s3.delete_object(Bucket=bucket, Key="1")
    s3.copy_object(Bucket=bucket, Key="3", CopySource={"Bucket": bucket, "Key": "2"})


def test_copy_object_counts_the_copied_bytes(
    admin: AdminClient, tenant: TenantKeys, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"x" * 40_000)
    set_quota(admin, tenant, max_bytes=70_000)
    refused(s3.copy_object, Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    set_quota(admin, tenant, max_bytes=80_000)
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})


def test_buckets_quota(admin: AdminClient, tenant: TenantKeys, s3: Any, bucket: str) -> None:
    set_quota(admin, tenant, max_buckets=1)
    extra = f"q-{uuid.uuid4().hex[:12]}"
    assert "buckets quota (1)" in refused(s3.create_bucket, Bucket=extra)
    with pytest.raises(ClientError) as info:  # an existing own name still says so
        s3.create_bucket(Bucket=bucket)
    assert error_code(info.value) == ("BucketAlreadyOwnedByYou", 409)
    s3.delete_bucket(Bucket=bucket)
    s3.create_bucket(Bucket=extra)


def test_multipart_parts_and_completion(
    admin: AdminClient, tenant: TenantKeys, s3: Any, bucket: str
) -> None:
    set_quota(admin, tenant, max_bytes=12 * MiB, max_objects=1)
    s3.put_object(Bucket=bucket, Key="existing", Body=b"")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    part1 = s3.upload_part(
        Bucket=bucket, Key="big", UploadId=upload, PartNumber=1, Body=b"a" * (5 * MiB)
    )
    part2 = s3.upload_part(
        Bucket=bucket, Key="big", UploadId=upload, PartNumber=2, Body=b"b" * (5 * MiB)
    )
    assert usage(admin, tenant)["bytes"] == 10 * MiB  # parts count while the upload is open
    refused(
        s3.upload_part, Bucket=bucket, Key="big", UploadId=upload, PartNumber=3,
        Body=b"c" * (5 * MiB),
    )  # fmt: skip
    parts = {
        "Parts": [
            {"PartNumber": 1, "ETag": part1["ETag"]},
            {"PartNumber": 2, "ETag": part2["ETag"]},
        ]
    }
    assert "objects quota" in refused(
        s3.complete_multipart_upload,
        Bucket=bucket,
        Key="big",
        UploadId=upload,
        MultipartUpload=parts,
    )
    s3.delete_object(Bucket=bucket, Key="existing")
    s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=upload, MultipartUpload=parts)
    assert usage(admin, tenant) == {"bytes": 10 * MiB, "objects": 1, "buckets": 1}
    refused(
        s3.upload_part_copy, Bucket=bucket, Key="big2", PartNumber=1,
        UploadId=s3.create_multipart_upload(Bucket=bucket, Key="big2")["UploadId"],
        CopySource={"Bucket": bucket, "Key": "big"},
    )  # fmt: skip


def test_an_aborted_upload_gives_its_bytes_back(
    admin: AdminClient, tenant: TenantKeys, s3: Any, bucket: str
) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="k", UploadId=upload, PartNumber=1, Body=b"z" * 1000)
    assert usage(admin, tenant)["bytes"] == 1000
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload)
    assert usage(admin, tenant)["bytes"] == 0


def test_unlimited_tenants_and_root_are_not_checked(server: ServerProcess, s3: Any) -> None:
    name = f"q-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"x" * 100_000)


def test_an_undeclared_size_is_checked_after_the_upload(
    server: ServerProcess, admin: AdminClient, tenant: TenantKeys, s3: Any, bucket: str
) -> None:
    """HTTP chunked transfer with no length anywhere: the size is known only once the body is
    read, and the write is refused before it is committed (nothing stored, nothing counted)."""
    import http.client

    from botocore.awsrequest import AWSRequest

    from tests.api.raw import sign_request

    set_quota(admin, tenant, max_bytes=50_000)
    aws = AWSRequest(
        method="PUT",
        url=f"{server.endpoint}/{bucket}/chunked",
        headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD", "Transfer-Encoding": "chunked"},
    )
    sign_request(
        aws,
        payload_hash="UNSIGNED-PAYLOAD",
        access_key=tenant.access_key,
        secret=tenant.secret_key,
    )
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(
            "PUT",
            f"/{bucket}/chunked",
            body=iter([b"a" * 40_000, b"b" * 40_000]),
            headers=dict(aws.headers.items()),
            encode_chunked=True,
        )
        resp = conn.getresponse()
        answer = resp.read()
    finally:
        conn.close()
    assert resp.status == 403 and b"<Code>QuotaExceeded</Code>" in answer
    assert usage(admin, tenant) == {"bytes": 0, "objects": 0, "buckets": 1}
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
