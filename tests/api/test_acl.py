"""ACLs disabled (object ownership BucketOwnerEnforced, the AWS default) through boto3: ACLs can
be read (the owner has FULL_CONTROL) and can only be set to what restates that; anything else
is refused as AWS refuses it."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

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
    with pytest.raises(ClientError) as err:
        s3.put_bucket_ownership_controls(
            Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
        )
    assert code(err) == "NotImplemented"


def test_malformed_acl_body(server: ServerProcess, bucket: str) -> None:
    response = request(server.endpoint, "PUT", f"/{bucket}?acl", body=b"<AccessControlPolicy><Acc")
    assert response.status == 400 and response.code == "MalformedXML"
    response = request(server.endpoint, "PUT", f"/{bucket}?acl", body=b"<Other/>")
    assert response.status == 400 and response.code == "MalformedACLError"
    response = request(server.endpoint, "PUT", f"/{bucket}?acl")
    assert response.status == 400 and response.code == "MalformedACLError"
