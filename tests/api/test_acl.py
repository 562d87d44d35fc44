"""ACLs through boto3 against a real server.

The first part uses the session server (Block Public Access on deployment-wide) and buckets
with the default object ownership BucketOwnerEnforced: ACLs can be read (the owner has
FULL_CONTROL) and can only be set to what restates that. The second part enables ACLs
(ObjectWriter / BucketOwnerPreferred) on a server with Block Public Access off and checks each
canned ACL and grant, allowed and denied, for the owner, another tenant's admin and anonymous
callers. The last part kills the server just after a write with an ACL commits and checks
that the object came back with that ACL (it is committed in the version's transaction)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore import UNSIGNED
from botocore.exceptions import BotoCoreError, ClientError

from tests.api.conftest import empty_bucket, make_client
from tests.api.iam_support import (
    TenantKeys,
    admin_client,
    allow,
    client,
    new_tenant,
    new_user_key,
)
from tests.api.raw import request
from tests.api.server import ServerProcess

OWNER = "000000000000"


def code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def owner_grant(owner: str = OWNER) -> dict[str, Any]:
    return {
        "Grants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": owner}, "Permission": "FULL_CONTROL"}
        ],
        "Owner": {"ID": owner},
    }


def test_get_bucket_and_object_acl(s3: Any, bucket: str) -> None:
    acl = s3.get_bucket_acl(Bucket=bucket)
    assert acl["Owner"]["ID"] == OWNER
    assert acl["Grants"] == [
        {
            "Grantee": {"ID": OWNER, "DisplayName": "root", "Type": "CanonicalUser"},
            "Permission": "FULL_CONTROL",
        }
    ]
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert s3.get_object_acl(Bucket=bucket, Key="k")["Grants"] == acl["Grants"]
    with pytest.raises(ClientError) as err:
        s3.get_object_acl(Bucket=bucket, Key="missing")
    assert code(err) == "NoSuchKey"


def test_owner_only_acls_are_accepted(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy=owner_grant())
    s3.put_object_acl(Bucket=bucket, Key="k", ACL="bucket-owner-full-control")
    s3.put_object_acl(Bucket=bucket, Key="k", AccessControlPolicy=owner_grant())
    s3.put_object(Bucket=bucket, Key="k2", Body=b"x", ACL="bucket-owner-full-control")


@pytest.mark.parametrize("acl", ["public-read", "public-read-write", "authenticated-read"])
def test_other_canned_acls_are_refused(s3: Any, bucket: str, acl: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    for call in (
        lambda: s3.put_bucket_acl(Bucket=bucket, ACL=acl),
        lambda: s3.put_object_acl(Bucket=bucket, Key="k", ACL=acl),
        lambda: s3.put_object(Bucket=bucket, Key="k3", Body=b"x", ACL=acl),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert code(err) == "AccessControlListNotSupported"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as err:
        s3.create_bucket(Bucket=bucket + "-acl", ACL=acl)
    assert code(err) == "InvalidBucketAclWithObjectOwnership"


def test_grants_to_others_are_refused(s3: Any, bucket: str) -> None:
    public = owner_grant()
    public["Grants"].append(
        {
            "Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
            "Permission": "READ",
        }
    )
    with pytest.raises(ClientError) as err:
        s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy=public)
    assert code(err) == "AccessControlListNotSupported"
    with pytest.raises(ClientError) as err:
        s3.put_bucket_acl(Bucket=bucket, GrantRead="id=111122223333")
    assert code(err) == "AccessControlListNotSupported"
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="g", Body=b"x", GrantRead="id=111122223333")
    assert code(err) == "AccessControlListNotSupported"


def test_ownership_controls(s3: Any, bucket: str) -> None:
    rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    s3.put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    )
    for value in ("ObjectWriter", "BucketOwnerPreferred", "BucketOwnerEnforced"):
        s3.put_bucket_ownership_controls(
            Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": value}]}
        )
        rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
        assert rules == [{"ObjectOwnership": value}]
    s3.delete_bucket_ownership_controls(Bucket=bucket)
    with pytest.raises(ClientError) as err:
        s3.get_bucket_ownership_controls(Bucket=bucket)
    assert code(err) == "OwnershipControlsNotFoundError"
    with pytest.raises(ClientError) as err:
        s3.put_bucket_ownership_controls(
            Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "Nobody"}]}
        )
    assert code(err) == "MalformedXML"


def test_malformed_acl_body(server: ServerProcess, bucket: str) -> None:
    response = request(server.endpoint, "PUT", f"/{bucket}?acl", body=b"<AccessControlPolicy><Acc")
    assert response.status == 400 and response.code == "MalformedXML"
    response = request(server.endpoint, "PUT", f"/{bucket}?acl", body=b"<Other/>")
    assert response.status == 400 and response.code == "MalformedACLError"
    response = request(server.endpoint, "PUT", f"/{bucket}?acl")
    assert response.status == 400 and response.code == "MalformedACLError"


def test_create_bucket_object_ownership_header(server: ServerProcess, s3: Any) -> None:
    name = f"own-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, ObjectOwnership="BucketOwnerPreferred", ACL="private")
    try:
        rules = s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"]
        assert rules == [{"ObjectOwnership": "BucketOwnerPreferred"}]
    finally:
        s3.delete_bucket(Bucket=name)
    response = request(
        server.endpoint, "PUT", f"/{name}-x", headers={"x-amz-object-ownership": "Mine"}
    )
    assert response.status == 400 and response.code == "InvalidArgument"


# --- Block Public Access on deployment-wide (the session server) -------------------------------
@pytest.mark.parametrize("acl", ["public-read", "public-read-write", "authenticated-read"])
def test_deployment_block_public_access_refuses_public_acls(s3: Any, acl: str) -> None:
    name = f"bpa-{uuid.uuid4().hex[:12]}"
    with pytest.raises(ClientError) as err:
        s3.create_bucket(Bucket=name, ObjectOwnership="ObjectWriter", ACL=acl)
    assert code(err) == "AccessDenied"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    s3.create_bucket(Bucket=name, ObjectOwnership="ObjectWriter")
    try:
        s3.put_object(Bucket=name, Key="k", Body=b"x")
        for call in (
            lambda: s3.put_bucket_acl(Bucket=name, ACL=acl),
            lambda: s3.put_object_acl(Bucket=name, Key="k", ACL=acl),
            lambda: s3.put_object(Bucket=name, Key="k2", Body=b"x", ACL=acl),
        ):
            with pytest.raises(ClientError) as err:
                call()
            assert code(err) == "AccessDenied"
        # not public: a grant to one account
        s3.put_object_acl(Bucket=name, Key="k", GrantRead="id=111122223333")
    finally:
        empty_bucket(s3, name)
        s3.delete_bucket(Bucket=name)


# --- ACLs enabled, Block Public Access off ------------------------------------------------------
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("onshore-acl") / "data",
        extra_args=("--workers", "1"),
        env={"ONSHORE_BLOCK_PUBLIC_ACCESS": "false"},
    ).start()
    yield proc
    proc.cleanup()


@pytest.fixture(scope="module")
def root(open_server: ServerProcess) -> Any:
    return make_client(open_server.endpoint)


@pytest.fixture(scope="module")
def anon(open_server: ServerProcess) -> Any:
    return make_client(open_server.endpoint, signature_version=UNSIGNED)


@pytest.fixture(scope="module")
def other(open_server: ServerProcess) -> tuple[TenantKeys, Any]:
    """Another tenant (another account) and an S3 client signed by its admin key."""
    tenant = new_tenant(admin_client(open_server), "acl")
    return tenant, client("s3", open_server.endpoint, tenant.access_key, tenant.secret_key)


@pytest.fixture
def wbkt(root: Any) -> Iterator[str]:
    """A bucket with ACLs enabled (ObjectWriter) holding the private object ``obj``."""
    name = f"acl-{uuid.uuid4().hex[:16]}"
    root.create_bucket(Bucket=name, ObjectOwnership="ObjectWriter")
    root.put_object(Bucket=name, Key="obj", Body=b"hello")
    yield name
    root.delete_bucket_policy(Bucket=name)
    root.delete_public_access_block(Bucket=name)
    empty_bucket(root, name)
    root.delete_bucket(Bucket=name)


def allowed(call: Any) -> bool:
    try:
        call()
    except ClientError as exc:
        # (a HEAD response has no body: botocore reports its status as the code)
        assert exc.response["Error"]["Code"] in ("AccessDenied", "403"), exc.response["Error"]
        assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        return False
    return True


def grants(acl: dict[str, Any]) -> set[tuple[str, str]]:
    found = set()
    for grant in acl["Grants"]:
        grantee = grant["Grantee"]
        found.add((grantee.get("ID") or grantee["URI"], grant["Permission"]))
    return found


BUCKET_CASES = {
    #  canned ACL: (anonymous may list, another account may list, anonymous may write,
    #               another account may write)
    "private": (False, False, False, False),
    "public-read": (True, True, False, False),
    "public-read-write": (True, True, True, True),
    "authenticated-read": (False, True, False, False),
}


@pytest.mark.parametrize("acl", sorted(BUCKET_CASES))
def test_canned_bucket_acls(
    root: Any, anon: Any, other: tuple[TenantKeys, Any], wbkt: str, acl: str
) -> None:
    tenant, them = other
    root.put_bucket_acl(Bucket=wbkt, ACL=acl)
    anon_list, other_list, anon_write, other_write = BUCKET_CASES[acl]
    assert allowed(lambda: anon.list_objects_v2(Bucket=wbkt)) is anon_list
    assert allowed(lambda: them.list_objects_v2(Bucket=wbkt)) is other_list
    assert allowed(lambda: them.list_object_versions(Bucket=wbkt)) is other_list
    assert allowed(lambda: anon.put_object(Bucket=wbkt, Key="a", Body=b"1")) is anon_write
    assert allowed(lambda: them.put_object(Bucket=wbkt, Key="t", Body=b"2")) is other_write
    assert allowed(lambda: them.delete_object(Bucket=wbkt, Key="t")) is other_write
    # READ on the bucket is not READ on its objects, nor READ_ACP
    assert not allowed(lambda: anon.get_object(Bucket=wbkt, Key="obj"))
    assert not allowed(lambda: them.get_bucket_acl(Bucket=wbkt))
    assert not allowed(lambda: them.put_bucket_acl(Bucket=wbkt, ACL="private"))
    # the owner may do everything whatever the ACL says
    root.list_objects_v2(Bucket=wbkt)
    root.get_object(Bucket=wbkt, Key="obj")
    expected = {("000000000000", "FULL_CONTROL")}
    if acl != "private":
        group = AUTHENTICATED if acl == "authenticated-read" else ALL_USERS
        expected.add((group, "READ"))
        if acl == "public-read-write":
            expected.add((ALL_USERS, "WRITE"))
    assert grants(root.get_bucket_acl(Bucket=wbkt)) == expected


OBJECT_CASES = {
    #  canned ACL: (anonymous may read, another account may read)
    "private": (False, False),
    "public-read": (True, True),
    "public-read-write": (True, True),
    "authenticated-read": (False, True),
    "aws-exec-read": (False, False),
    "bucket-owner-read": (False, False),
    "bucket-owner-full-control": (False, False),
}


@pytest.mark.parametrize("acl", sorted(OBJECT_CASES))
def test_canned_object_acls(
    root: Any, anon: Any, other: tuple[TenantKeys, Any], wbkt: str, acl: str
) -> None:
    _, them = other
    root.put_object(Bucket=wbkt, Key="put", Body=b"x", ACL=acl)
    root.put_object_acl(Bucket=wbkt, Key="obj", ACL=acl)
    anon_read, other_read = OBJECT_CASES[acl]
    for key in ("put", "obj"):
        assert allowed(lambda k=key: anon.get_object(Bucket=wbkt, Key=k)) is anon_read
        assert allowed(lambda k=key: anon.head_object(Bucket=wbkt, Key=k)) is anon_read
        assert allowed(lambda k=key: them.get_object(Bucket=wbkt, Key=k)) is other_read
        assert not allowed(lambda k=key: them.get_object_acl(Bucket=wbkt, Key=k))
        assert not allowed(lambda k=key: anon.put_object(Bucket=wbkt, Key=k, Body=b"y"))
        root.get_object(Bucket=wbkt, Key=key)
    # an object's ACL is not its bucket's: nobody else may list
    assert not allowed(lambda: anon.list_objects_v2(Bucket=wbkt))


def test_log_delivery_write_and_shapes(root: Any, wbkt: str) -> None:
    root.put_bucket_acl(Bucket=wbkt, ACL="log-delivery-write")
    acl = root.get_bucket_acl(Bucket=wbkt)
    group = "http://acs.amazonaws.com/groups/s3/LogDelivery"
    assert grants(acl) == {
        ("000000000000", "FULL_CONTROL"),
        (group, "WRITE"),
        (group, "READ_ACP"),
    }
    assert acl["Owner"]["ID"] == "000000000000"
    assert {"Type": "Group", "URI": group} in [g["Grantee"] for g in acl["Grants"]]
    owner_grant = [g for g in acl["Grants"] if g["Grantee"]["Type"] == "CanonicalUser"]
    assert owner_grant[0]["Grantee"]["ID"] == "000000000000"


def test_grants_to_another_account(
    root: Any, anon: Any, other: tuple[TenantKeys, Any], wbkt: str
) -> None:
    tenant, them = other
    grant = f'id="{tenant.account_id}"'
    assert not allowed(lambda: them.get_object(Bucket=wbkt, Key="obj"))
    root.put_object_acl(Bucket=wbkt, Key="obj", GrantRead=grant)
    assert them.get_object(Bucket=wbkt, Key="obj")["Body"].read() == b"hello"
    assert not allowed(lambda: anon.get_object(Bucket=wbkt, Key="obj"))
    assert not allowed(lambda: them.get_object_acl(Bucket=wbkt, Key="obj"))
    root.put_object_acl(
        Bucket=wbkt, Key="obj", GrantReadACP=grant, GrantWriteACP=grant, GrantRead=grant
    )
    assert grants(them.get_object_acl(Bucket=wbkt, Key="obj")) == {
        (tenant.account_id, "READ"),
        (tenant.account_id, "READ_ACP"),
        (tenant.account_id, "WRITE_ACP"),
    }
    # WRITE_ACP lets it rewrite the ACL; the object's owner stays the same
    them.put_object_acl(Bucket=wbkt, Key="obj", ACL="private")
    acl = root.get_object_acl(Bucket=wbkt, Key="obj")
    assert acl["Owner"]["ID"] == "000000000000"
    assert grants(acl) == {("000000000000", "FULL_CONTROL")}
    assert not allowed(lambda: them.get_object(Bucket=wbkt, Key="obj"))
    # FULL_CONTROL on the bucket, through the XML body
    policy = {
        "Owner": {"ID": "000000000000"},
        "Grants": [
            {
                "Grantee": {"Type": "CanonicalUser", "ID": "000000000000"},
                "Permission": "FULL_CONTROL",
            },
            {
                "Grantee": {"Type": "CanonicalUser", "ID": tenant.account_id},
                "Permission": "FULL_CONTROL",
            },
        ],
    }
    root.put_bucket_acl(Bucket=wbkt, AccessControlPolicy=policy)
    them.list_objects_v2(Bucket=wbkt)
    them.get_bucket_acl(Bucket=wbkt)
    them.put_object(Bucket=wbkt, Key="theirs", Body=b"t")
    assert not allowed(lambda: anon.list_objects_v2(Bucket=wbkt))


def test_object_writer_owns_what_it_writes(
    root: Any, other: tuple[TenantKeys, Any], wbkt: str
) -> None:
    tenant, them = other
    root.put_bucket_acl(Bucket=wbkt, GrantWrite=f"id={tenant.account_id}")
    them.put_object(Bucket=wbkt, Key="w", Body=b"w", ACL="bucket-owner-read")
    acl = root.get_object_acl(Bucket=wbkt, Key="w")
    assert acl["Owner"]["ID"] == tenant.account_id
    assert grants(acl) == {(tenant.account_id, "FULL_CONTROL"), ("000000000000", "READ")}
    # the writer owns it: it may read it and its ACL, though the bucket's ACL gives no READ
    assert them.get_object(Bucket=wbkt, Key="w")["Body"].read() == b"w"
    them.get_object_acl(Bucket=wbkt, Key="w")
    assert not allowed(lambda: them.list_objects_v2(Bucket=wbkt))
    # BucketOwnerPreferred + bucket-owner-full-control: the bucket owner owns the object
    root.put_bucket_ownership_controls(
        Bucket=wbkt, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]}
    )
    them.put_object(Bucket=wbkt, Key="p", Body=b"p", ACL="bucket-owner-full-control")
    acl = root.get_object_acl(Bucket=wbkt, Key="p")
    assert acl["Owner"]["ID"] == "000000000000"
    assert not allowed(lambda: them.get_object(Bucket=wbkt, Key="p"))
    # ... and without it, the writer does
    them.put_object(Bucket=wbkt, Key="q", Body=b"q")
    assert root.get_object_acl(Bucket=wbkt, Key="q")["Owner"]["ID"] == tenant.account_id


def test_explicit_deny_beats_an_acl(root: Any, anon: Any, wbkt: str) -> None:
    root.put_object_acl(Bucket=wbkt, Key="obj", ACL="public-read")
    root.put_bucket_acl(Bucket=wbkt, ACL="public-read")
    anon.get_object(Bucket=wbkt, Key="obj")
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": [f"arn:onshore:s3:::{wbkt}", f"arn:onshore:s3:::{wbkt}/*"],
            }
        ],
    }
    root.put_bucket_policy(Bucket=wbkt, Policy=json.dumps(deny))
    assert not allowed(lambda: anon.get_object(Bucket=wbkt, Key="obj"))
    assert not allowed(lambda: anon.list_objects_v2(Bucket=wbkt))


def test_bucket_owner_enforced_ignores_acls(root: Any, anon: Any, wbkt: str) -> None:
    root.put_object_acl(Bucket=wbkt, Key="obj", ACL="public-read")
    root.put_bucket_acl(Bucket=wbkt, ACL="public-read")
    anon.get_object(Bucket=wbkt, Key="obj")
    enforced = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    with pytest.raises(ClientError) as err:
        root.put_bucket_ownership_controls(Bucket=wbkt, OwnershipControls=enforced)
    assert code(err) == "InvalidBucketAclWithObjectOwnership"
    root.put_bucket_acl(Bucket=wbkt, ACL="private")
    root.put_bucket_ownership_controls(Bucket=wbkt, OwnershipControls=enforced)
    # the object's stored public-read ACL no longer counts, nor can a new one be set
    assert not allowed(lambda: anon.get_object(Bucket=wbkt, Key="obj"))
    with pytest.raises(ClientError) as err:
        root.put_object_acl(Bucket=wbkt, Key="obj", ACL="public-read")
    assert code(err) == "AccessControlListNotSupported"
    assert grants(root.get_bucket_acl(Bucket=wbkt)) == {("000000000000", "FULL_CONTROL")}
    assert grants(root.get_object_acl(Bucket=wbkt, Key="obj")) == {("000000000000", "FULL_CONTROL")}
    # enabling ACLs again restores the object's stored ACL, as on AWS
    root.put_bucket_ownership_controls(
        Bucket=wbkt, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
    )
    anon.get_object(Bucket=wbkt, Key="obj")


def test_bucket_block_public_access(
    root: Any, anon: Any, other: tuple[TenantKeys, Any], wbkt: str
) -> None:
    tenant, them = other
    root.put_object_acl(Bucket=wbkt, Key="obj", ACL="public-read")
    anon.get_object(Bucket=wbkt, Key="obj")
    root.put_public_access_block(
        Bucket=wbkt, PublicAccessBlockConfiguration={"IgnorePublicAcls": True}
    )
    assert not allowed(lambda: anon.get_object(Bucket=wbkt, Key="obj"))
    assert not allowed(lambda: them.get_object(Bucket=wbkt, Key="obj"))
    root.put_object_acl(Bucket=wbkt, Key="obj", ACL="public-read")  # storing is not blocked
    root.put_object_acl(Bucket=wbkt, Key="obj", GrantRead=f"id={tenant.account_id}")
    them.get_object(Bucket=wbkt, Key="obj")  # a grant to an account is not public
    root.put_public_access_block(
        Bucket=wbkt, PublicAccessBlockConfiguration={"BlockPublicAcls": True}
    )
    for call in (
        lambda: root.put_bucket_acl(Bucket=wbkt, ACL="public-read"),
        lambda: root.put_object_acl(Bucket=wbkt, Key="obj", ACL="authenticated-read"),
        lambda: root.put_object(Bucket=wbkt, Key="n", Body=b"n", ACL="public-read"),
        lambda: root.create_multipart_upload(Bucket=wbkt, Key="m", ACL="public-read"),
        lambda: root.put_object_acl(Bucket=wbkt, Key="obj", GrantRead=f'uri="{ALL_USERS}"'),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert code(err) == "AccessDenied"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_acl_on_copy_and_multipart(root: Any, anon: Any, wbkt: str) -> None:
    root.put_object_acl(Bucket=wbkt, Key="obj", ACL="public-read")
    # a copy does not copy the ACL; it gets the one its request names
    root.copy_object(Bucket=wbkt, Key="copy", CopySource={"Bucket": wbkt, "Key": "obj"})
    assert not allowed(lambda: anon.get_object(Bucket=wbkt, Key="copy"))
    root.copy_object(
        Bucket=wbkt, Key="copy2", CopySource={"Bucket": wbkt, "Key": "obj"}, ACL="public-read"
    )
    anon.get_object(Bucket=wbkt, Key="copy2")
    upload = root.create_multipart_upload(Bucket=wbkt, Key="mp", ACL="public-read")["UploadId"]
    etag = root.upload_part(Bucket=wbkt, Key="mp", UploadId=upload, PartNumber=1, Body=b"m")["ETag"]
    root.complete_multipart_upload(
        Bucket=wbkt,
        Key="mp",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    assert anon.get_object(Bucket=wbkt, Key="mp")["Body"].read() == b"m"
    assert grants(root.get_object_acl(Bucket=wbkt, Key="mp")) == {
        ("000000000000", "FULL_CONTROL"),
        (ALL_USERS, "READ"),
    }


def test_object_acl_goes_with_its_version(root: Any, anon: Any, wbkt: str) -> None:
    # unversioned: overwriting the object replaces its ACL with the new request's (private)
    root.put_object(Bucket=wbkt, Key="o", Body=b"1", ACL="public-read")
    anon.get_object(Bucket=wbkt, Key="o")
    root.put_object(Bucket=wbkt, Key="o", Body=b"2")
    assert not allowed(lambda: anon.get_object(Bucket=wbkt, Key="o"))
    # versioned: each version has its own ACL, deleted with it
    root.put_bucket_versioning(Bucket=wbkt, VersioningConfiguration={"Status": "Enabled"})
    v1 = root.put_object(Bucket=wbkt, Key="v", Body=b"1", ACL="public-read")["VersionId"]
    v2 = root.put_object(Bucket=wbkt, Key="v", Body=b"2")["VersionId"]
    assert not allowed(lambda: anon.get_object(Bucket=wbkt, Key="v"))
    assert anon.get_object(Bucket=wbkt, Key="v", VersionId=v1)["Body"].read() == b"1"
    acl = root.get_object_acl(Bucket=wbkt, Key="v", VersionId=v1)
    assert (ALL_USERS, "READ") in grants(acl)
    root.delete_object(Bucket=wbkt, Key="v", VersionId=v2)
    anon.get_object(Bucket=wbkt, Key="v")  # v1 is the latest again, with its ACL
    root.delete_object(Bucket=wbkt, Key="v", VersionId=v1)
    assert not allowed(lambda: anon.get_object(Bucket=wbkt, Key="v", VersionId=v1))
    with pytest.raises(ClientError) as err:
        root.get_object_acl(Bucket=wbkt, Key="v", VersionId=v1)
    assert code(err) == "NoSuchVersion"


def test_bad_acl_requests(open_server: ServerProcess, root: Any, wbkt: str) -> None:
    cases = [
        ({"x-amz-grant-read": "id=12"}, "InvalidArgument"),
        ({"x-amz-grant-read": 'uri="http://example.com/group"'}, "InvalidArgument"),
        ({"x-amz-grant-read": "emailAddress=a@example.com"}, "UnresolvableGrantByEmailAddress"),
        ({"x-amz-grant-read": "nonsense"}, "InvalidArgument"),
        ({"x-amz-acl": "public-read", "x-amz-grant-read": "id=111122223333"}, "InvalidRequest"),
        ({"x-amz-acl": "everyone"}, "InvalidArgument"),
    ]
    for headers, expected in cases:
        response = request(open_server.endpoint, "PUT", f"/{wbkt}?acl", headers=headers)
        assert (response.status, response.code) == (400, expected), headers
        response = request(open_server.endpoint, "PUT", f"/{wbkt}/new", headers=headers, body=b"x")
        assert (response.status, response.code) == (400, expected), headers
    response = request(open_server.endpoint, "PUT", f"/{wbkt}?acl", body=b"<AccessControlPolicy")
    assert (response.status, response.code) == (400, "MalformedXML")
    response = request(open_server.endpoint, "PUT", f"/{wbkt}?acl")
    assert (response.status, response.code) == (400, "MalformedACLError")
    bad = (
        b'<AccessControlPolicy><AccessControlList><Grant><Grantee xmlns:xsi="'
        b'http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>000000000000'
        b"</ID></Grantee><Permission>EVERYTHING</Permission></Grant></AccessControlList>"
        b"</AccessControlPolicy>"
    )
    response = request(open_server.endpoint, "PUT", f"/{wbkt}?acl", body=bad)
    assert (response.status, response.code) == (400, "MalformedACLError")


def test_a_grant_to_an_account_reaches_its_users_through_their_policies(
    open_server: ServerProcess, root: Any, other: tuple[TenantKeys, Any], wbkt: str
) -> None:
    tenant, _ = other
    admin = admin_client(open_server)
    name = f"u{uuid.uuid4().hex[:8]}"
    access_key, secret_key = new_user_key(admin, tenant, name)
    them = client("s3", open_server.endpoint, access_key, secret_key)
    root.put_object_acl(Bucket=wbkt, Key="obj", GrantRead=f"id={tenant.account_id}")
    assert not allowed(lambda: them.get_object(Bucket=wbkt, Key="obj"))  # its account: no
    allow(admin, tenant, name, "s3:GetObject")
    assert them.get_object(Bucket=wbkt, Key="obj")["Body"].read() == b"hello"
    # its identity policy alone is not enough where no ACL grants anything
    root.put_object(Bucket=wbkt, Key="other", Body=b"o")
    assert not allowed(lambda: them.get_object(Bucket=wbkt, Key="other"))


# --- the ACL is committed with its version ------------------------------------------------------
GRANTEE = "111122223333"


def _put(s3: Any, bucket: str, key: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=b"put", GrantRead=f"id={GRANTEE}")


def _copy(s3: Any, bucket: str, key: str) -> None:
    s3.copy_object(
        Bucket=bucket,
        Key=key,
        CopySource={"Bucket": bucket, "Key": "src"},
        GrantRead=f"id={GRANTEE}",
    )


def _complete(s3: Any, bucket: str, key: str) -> None:
    upload = s3.list_multipart_uploads(Bucket=bucket)["Uploads"][0]
    parts = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload["UploadId"])["Parts"]
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": parts[0]["ETag"]}]},
    )


@pytest.mark.parametrize(
    ("point", "write"),
    [
        ("put_object.committed", _put),
        ("copy_object.committed", _copy),
        ("complete_upload.committed", _complete),
    ],
    ids=["PutObject", "CopyObject", "CompleteMultipartUpload"],
)
def test_a_crash_just_after_the_commit_keeps_the_acl(
    tmp_path: Path, point: str, write: Callable[[Any, str, str], None]
) -> None:
    """The server dies right after the metadata commit of a write with an ACL (before it
    answers): after a restart the object is there with the ACL its request asked for, never
    with the default one."""
    from onshore.service import faults

    server = ServerProcess(tmp_path / "data", extra_args=("--workers", "1"))
    try:
        server.start()
        s3 = make_client(server.endpoint)
        bucket = "acl-crash"
        s3.create_bucket(Bucket=bucket, ObjectOwnership="ObjectWriter")
        s3.put_object(Bucket=bucket, Key="src", Body=b"source")
        upload = s3.create_multipart_upload(Bucket=bucket, Key="new", GrantRead=f"id={GRANTEE}")
        s3.upload_part(
            Bucket=bucket, Key="new", UploadId=upload["UploadId"], PartNumber=1, Body=b"part"
        )
        assert server.stop() == 0

        server.env = {faults.ENV: point}
        server.start()
        process = server.process
        assert process is not None
        with pytest.raises((BotoCoreError, ClientError)):
            write(make_client(server.endpoint), bucket, "new")
        assert process.wait(timeout=30) == faults.EXIT_STATUS, "the server did not die there"

        server.env = {}
        server.start()
        s3 = make_client(server.endpoint)
        s3.head_object(Bucket=bucket, Key="new")  # committed before the crash
        # the request's grants replace the whole ACL (the default would be the owner's alone)
        assert grants(s3.get_object_acl(Bucket=bucket, Key="new")) == {(GRANTEE, "READ")}
    finally:
        server.cleanup()
