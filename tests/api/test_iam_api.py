"""The IAM query API on the S3 port: the AWS CLI's ``aws iam`` commands run for real, and boto3
for the refusals (wrong caller, wrong tenant, bad input)."""

from __future__ import annotations

import json
import subprocess
import sys
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
    new_user_key,
)
from tests.api.server import ACCESS_KEY, SECRET_KEY, ServerProcess, client_env

POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from iam_server(tmp_path_factory, "iam")


@pytest.fixture
def tenant(admin: AdminClient) -> TenantKeys:
    return new_tenant(admin, "iam")


def aws(server: ServerProcess, tenant: TenantKeys, *args: str) -> Any:
    env = client_env(AWS_ACCESS_KEY_ID=tenant.access_key, AWS_SECRET_ACCESS_KEY=tenant.secret_key)
    done = subprocess.run(
        [sys.executable, "-m", "awscli", "iam", *args, "--endpoint-url", server.endpoint,
         "--output", "json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None


def aws_fails(server: ServerProcess, tenant: TenantKeys, *args: str) -> str:
    env = client_env(AWS_ACCESS_KEY_ID=tenant.access_key, AWS_SECRET_ACCESS_KEY=tenant.secret_key)
    done = subprocess.run(
        [sys.executable, "-m", "awscli", "iam", *args, "--endpoint-url", server.endpoint],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    return done.stderr


def test_aws_cli_iam_commands(server: ServerProcess, tenant: TenantKeys) -> None:
    created = aws(server, tenant, "create-user", "--user-name", "bob")["User"]
    assert created["UserName"] == "bob" and created["UserId"].startswith("AIDA")
    assert created["Arn"] == f"arn:onshore:iam::{tenant.account_id}:user/bob"
    users = aws(server, tenant, "list-users")["Users"]
    assert [u["UserName"] for u in users] == ["admin", "bob"]

    key = aws(server, tenant, "create-access-key", "--user-name", "bob")["AccessKey"]
    assert key["Status"] == "Active" and len(key["SecretAccessKey"]) == 40
    listed = aws(server, tenant, "list-access-keys", "--user-name", "bob")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in listed] == [key["AccessKeyId"]]
    assert "SecretAccessKey" not in listed[0]
    aws(server, tenant, "update-access-key", "--user-name", "bob",
        "--access-key-id", key["AccessKeyId"], "--status", "Inactive")  # fmt: skip
    listed = aws(server, tenant, "list-access-keys", "--user-name", "bob")["AccessKeyMetadata"]
    assert listed[0]["Status"] == "Inactive"

    aws(server, tenant, "put-user-policy", "--user-name", "bob", "--policy-name", "read",
        "--policy-document", json.dumps(POLICY))  # fmt: skip
    got = aws(server, tenant, "get-user-policy", "--user-name", "bob", "--policy-name", "read")
    assert got["PolicyDocument"] == POLICY and got["PolicyName"] == "read"
    names = aws(server, tenant, "list-user-policies", "--user-name", "bob")["PolicyNames"]
    assert names == ["read"]

    assert "DeleteConflict" in aws_fails(server, tenant, "delete-user", "--user-name", "bob")
    aws(server, tenant, "delete-user-policy", "--user-name", "bob", "--policy-name", "read")
    aws(server, tenant, "delete-access-key", "--user-name", "bob",
        "--access-key-id", key["AccessKeyId"])  # fmt: skip
    aws(server, tenant, "delete-user", "--user-name", "bob")
    assert [u["UserName"] for u in aws(server, tenant, "list-users")["Users"]] == ["admin"]
    assert "NoSuchEntity" in aws_fails(server, tenant, "delete-user", "--user-name", "bob")


def test_a_key_created_over_iam_signs_s3_requests(
    server: ServerProcess, tenant: TenantKeys
) -> None:
    iam = client("iam", server.endpoint, tenant.access_key, tenant.secret_key)
    key = iam.create_access_key()["AccessKey"]  # no UserName: the caller's own user
    assert key["UserName"] == "admin"
    s3 = client("s3", server.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    assert s3.list_buckets()["Owner"]["ID"] == tenant.account_id
    iam.update_access_key(AccessKeyId=key["AccessKeyId"], Status="Inactive")
    with pytest.raises(ClientError) as info:
        s3.list_buckets()
    assert error_code(info.value) == ("InvalidAccessKeyId", 403)


def test_only_a_tenant_admin_may_call_it(
    server: ServerProcess, admin: AdminClient, tenant: TenantKeys
) -> None:
    user_iam = client("iam", server.endpoint, *new_user_key(admin, tenant, "plain"))
    with pytest.raises(ClientError) as info:
        user_iam.list_users()
    assert error_code(info.value) == ("AccessDenied", 403)
    root_iam = client("iam", server.endpoint, ACCESS_KEY, SECRET_KEY)
    with pytest.raises(ClientError) as info:
        root_iam.create_user(UserName="x")
    assert error_code(info.value) == ("AccessDenied", 403)
    unknown = client("iam", server.endpoint, "NOSUCHKEY123", "secret")
    with pytest.raises(ClientError) as info:
        unknown.list_users()
    assert error_code(info.value) == ("InvalidClientTokenId", 403)
    forged = client("iam", server.endpoint, tenant.access_key, "not-the-secret")
    with pytest.raises(ClientError) as info:
        forged.list_users()
    assert error_code(info.value) == ("SignatureDoesNotMatch", 403)


def test_a_tenant_admin_sees_only_its_own_tenant(
    server: ServerProcess, admin: AdminClient, tenant: TenantKeys
) -> None:
    other = new_tenant(admin, "other")
    other_key, _ = new_user_key(admin, other, "carol")
    iam = client("iam", server.endpoint, tenant.access_key, tenant.secret_key)
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["admin"]
    for call, kwargs in (
        (iam.delete_user, {"UserName": "carol"}),
        (iam.list_access_keys, {"UserName": "carol"}),
        (iam.delete_access_key, {"AccessKeyId": other_key}),
        (iam.update_access_key, {"AccessKeyId": other_key, "Status": "Inactive"}),
        (iam.delete_access_key, {"AccessKeyId": other.access_key, "UserName": "admin"}),
    ):
        with pytest.raises(ClientError) as info:
            call(**kwargs)
        assert error_code(info.value) == ("NoSuchEntity", 404)
    assert admin.request("GET", f"/keys/{other_key}") is not None  # untouched


def test_bad_input(server: ServerProcess, tenant: TenantKeys) -> None:
    iam = client("iam", server.endpoint, tenant.access_key, tenant.secret_key)
    iam.create_user(UserName="dave")
    cases: list[tuple[Any, dict[str, Any], str, int]] = [
        (iam.create_user, {"UserName": "DAVE"}, "EntityAlreadyExists", 409),
        (iam.create_user, {"UserName": "bad name!"}, "ValidationError", 400),
        (iam.get_user_policy, {"UserName": "dave", "PolicyName": "x"}, "NoSuchEntity", 404),
        (iam.put_user_policy, {"UserName": "dave", "PolicyName": "x", "PolicyDocument": "{"},
         "MalformedPolicyDocument", 400),
        (iam.put_user_policy, {"UserName": "dave", "PolicyName": "x",
                               "PolicyDocument": json.dumps({"Sid": "x" * 3000})},
         "LimitExceeded", 409),
        (iam.put_user_policy, {"UserName": "nobody", "PolicyName": "x",
                               "PolicyDocument": json.dumps(POLICY)},
         "NoSuchEntity", 404),
        (iam.delete_user, {"UserName": "admin"}, "DeleteConflict", 409),
    ]  # fmt: skip
    for call, kwargs, code, status in cases:
        with pytest.raises(ClientError) as info:
            call(**kwargs)
        assert error_code(info.value) == (code, status), kwargs
    iam.create_access_key(UserName="dave")
    iam.create_access_key(UserName="dave")
    with pytest.raises(ClientError) as info:
        iam.create_access_key(UserName="dave")
    assert error_code(info.value) == ("LimitExceeded", 409)


def test_unknown_action_is_an_iam_error(server: ServerProcess, tenant: TenantKeys) -> None:
    iam = client("iam", server.endpoint, tenant.access_key, tenant.secret_key)
    with pytest.raises(ClientError) as info:
        iam.list_groups()
    assert error_code(info.value) == ("InvalidAction", 400)


def test_clients_signing_for_the_global_region_are_accepted(
    server: ServerProcess, tenant: TenantKeys
) -> None:
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=tenant.access_key,
        aws_secret_access_key=tenant.secret_key,
        region_name="us-east-1",
    )
    iam = session.client("iam", endpoint_url=server.endpoint)
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["admin"]


def test_an_oversized_body_is_refused_cleanly(server: ServerProcess, tenant: TenantKeys) -> None:
    iam = client("iam", server.endpoint, tenant.access_key, tenant.secret_key)
    with pytest.raises(ClientError) as info:
        iam.put_user_policy(UserName="admin", PolicyName="x", PolicyDocument="{" + " " * 70_000)
    assert error_code(info.value) == ("MaxMessageLengthExceeded", 400)
