"""Tenant isolation basics that need no policy engine, and access key states, with boto3
against a real server: each tenant lists only its own buckets, bucket names are global, and a
disabled or deleted key is refused as an unknown one."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from onshore.cli.adminclient import AdminClient
from tests.api.iam_support import (
    admin_client,
    allow,
    client,
    error_code,
    iam_server,
    new_tenant,
    new_user_key,
)
from tests.api.server import ACCESS_KEY, SECRET_KEY, ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from iam_server(tmp_path_factory, "tenants")


def name() -> str:
    return f"iso-{uuid.uuid4().hex[:12]}"


def test_list_buckets_shows_only_the_callers_account(
    server: ServerProcess, admin: AdminClient
) -> None:
    a, b = new_tenant(admin, "a"), new_tenant(admin, "b")
    s3a = client("s3", server.endpoint, a.access_key, a.secret_key)
    s3b = client("s3", server.endpoint, b.access_key, b.secret_key)
    root = client("s3", server.endpoint, ACCESS_KEY, SECRET_KEY)
    bucket_a, bucket_b, bucket_root = name(), name(), name()
    s3a.create_bucket(Bucket=bucket_a)
    s3b.create_bucket(Bucket=bucket_b)
    root.create_bucket(Bucket=bucket_root)
    listed_a = s3a.list_buckets()
    assert [x["Name"] for x in listed_a["Buckets"]] == [bucket_a]
    assert listed_a["Owner"]["ID"] == a.account_id
    assert [x["Name"] for x in s3b.list_buckets()["Buckets"]] == [bucket_b]
    root_names = [x["Name"] for x in root.list_buckets()["Buckets"]]
    assert bucket_root in root_names and bucket_a not in root_names and bucket_b not in root_names
    # An IAM user lists its account's buckets too.
    user_key = new_user_key(admin, a, "reader")
    s3_user = client("s3", server.endpoint, *user_key)
    with pytest.raises(ClientError) as info:  # a user may do only what its policies allow
        s3_user.list_buckets()
    assert error_code(info.value) == ("AccessDenied", 403)
    allow(admin, a, "reader", "s3:ListAllMyBuckets")
    assert [x["Name"] for x in s3_user.list_buckets()["Buckets"]] == [bucket_a]


def test_bucket_names_are_global(server: ServerProcess, admin: AdminClient) -> None:
    a, b = new_tenant(admin, "a"), new_tenant(admin, "b")
    s3a = client("s3", server.endpoint, a.access_key, a.secret_key)
    s3b = client("s3", server.endpoint, b.access_key, b.secret_key)
    taken = name()
    s3a.create_bucket(Bucket=taken)
    with pytest.raises(ClientError) as info:
        s3b.create_bucket(Bucket=taken)
    assert error_code(info.value) == ("BucketAlreadyExists", 409)
    with pytest.raises(ClientError) as info:
        s3a.create_bucket(Bucket=taken)
    assert error_code(info.value) == ("BucketAlreadyOwnedByYou", 409)


def test_disabled_and_deleted_keys_are_refused(server: ServerProcess, admin: AdminClient) -> None:
    tenant = new_tenant(admin, "keys")
    ak, sk = new_user_key(admin, tenant, "alice")
    allow(admin, tenant, "alice", "s3:ListAllMyBuckets")
    s3 = client("s3", server.endpoint, ak, sk)
    s3.list_buckets()
    admin.request("PATCH", f"/keys/{ak}", {"status": "Inactive"})
    with pytest.raises(ClientError) as info:
        s3.list_buckets()
    assert error_code(info.value) == ("InvalidAccessKeyId", 403)
    admin.request("PATCH", f"/keys/{ak}", {"status": "Active"})
    s3.list_buckets()
    admin.request("DELETE", f"/keys/{ak}")
    with pytest.raises(ClientError) as info:
        s3.list_buckets()
    assert error_code(info.value) == ("InvalidAccessKeyId", 403)


def test_a_wrong_secret_for_a_tenant_key_is_refused(
    server: ServerProcess, admin: AdminClient
) -> None:
    tenant = new_tenant(admin, "sig")
    s3 = client("s3", server.endpoint, tenant.access_key, "wrong" + tenant.secret_key[5:])
    with pytest.raises(ClientError) as info:
        s3.list_buckets()
    assert error_code(info.value) == ("SignatureDoesNotMatch", 403)


def test_an_imported_key_signs_s3_requests(server: ServerProcess, admin: AdminClient) -> None:
    tenant = new_tenant(admin, "import")
    admin.request(
        "POST",
        f"/tenants/{tenant.name}/users/admin/keys",
        {"access_key_id": f"MIGR{uuid.uuid4().hex[:12].upper()}", "secret_access_key": "s" * 40},
    )
    keys = admin.request("GET", f"/tenants/{tenant.name}/users/admin/keys")
    assert isinstance(keys, dict)
    imported = next(k for k in keys["access_keys"] if k["access_key_id"].startswith("MIGR"))
    s3 = client("s3", server.endpoint, imported["access_key_id"], "s" * 40)
    bucket = name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"moved in")
    as_admin = client("s3", server.endpoint, tenant.access_key, tenant.secret_key)
    assert as_admin.get_object(Bucket=bucket, Key="k")["Body"].read() == b"moved in"


def test_changes_reach_other_server_processes_within_the_cache_ttl(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Two worker processes, a 1-second cache: a key disabled through one worker is refused
    by every worker within the TTL (the admin request and the S3 requests may land anywhere)."""
    proc = ServerProcess(
        tmp_path_factory.mktemp("ttl") / "data",
        extra_args=("--workers", "2"),
        env={"ONSHORE_IAM_CACHE_SECONDS": "1"},
    ).start()
    try:
        admin = admin_client(proc)
        tenant = new_tenant(admin, "ttl")
        s3 = client("s3", proc.endpoint, tenant.access_key, tenant.secret_key)
        for _ in range(4):  # warm both workers' caches
            s3.list_buckets()
        admin.request("PATCH", f"/keys/{tenant.access_key}", {"status": "Inactive"})
        disabled_at = time.monotonic()
        time.sleep(1.2)
        for _ in range(6):
            with pytest.raises(ClientError) as info:
                s3.list_buckets()
            assert error_code(info.value) == ("InvalidAccessKeyId", 403)
        assert time.monotonic() - disabled_at < 10
    finally:
        proc.cleanup()
