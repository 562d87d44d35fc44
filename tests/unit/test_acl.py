"""ACLs as data and in evaluation: canned ACL expansion, grant headers and XML parsing, who a
grant reaches (with IgnorePublicAcls), and how an ACL grant combines with policies."""

from __future__ import annotations

import pytest

from onshore.domain.acl import (
    ALL_USERS,
    AUTHENTICATED_USERS,
    LOG_DELIVERY,
    Acl,
    Grant,
    GranteeType,
    GrantReach,
    Ownership,
    Permission,
    canned,
)
from onshore.domain.errors import (
    InvalidArgument,
    InvalidRequest,
    MalformedACLError,
    UnexpectedContent,
    UnresolvableGrantByEmailAddress,
)
from onshore.s3api.acl import acl_from_request, render
from onshore.service.identity import ANONYMOUS
from onshore.service.policy import Decision, evaluate
from onshore.service.policy.evaluate import Reach
from tests.unit.test_policy_evaluate import OBJ, admin, bucket, grant, ident, identity, user

A, B = "111111111111", "222222222222"
CU, GROUP = GranteeType.CANONICAL_USER, GranteeType.GROUP


def test_canned_acls() -> None:
    owner_fc = Grant(CU, A, Permission.FULL_CONTROL)
    assert canned("private", A).grants == (owner_fc,)
    assert canned("aws-exec-read", A).grants == (owner_fc,)
    assert canned("public-read-write", A).grants == (
        owner_fc,
        Grant(GROUP, ALL_USERS, Permission.READ),
        Grant(GROUP, ALL_USERS, Permission.WRITE),
    )
    assert canned("authenticated-read", A).grants[1] == Grant(
        GROUP, AUTHENTICATED_USERS, Permission.READ
    )
    assert canned("log-delivery-write", A).grants[1:] == (
        Grant(GROUP, LOG_DELIVERY, Permission.WRITE),
        Grant(GROUP, LOG_DELIVERY, Permission.READ_ACP),
    )
    assert canned("bucket-owner-read", B, A).grants == (
        Grant(CU, B, Permission.FULL_CONTROL),
        Grant(CU, A, Permission.READ),
    )
    assert canned("bucket-owner-full-control", A, A).grants == (owner_fc,)
    assert canned("public-read", A).is_public and canned("authenticated-read", A).is_public
    assert not canned("log-delivery-write", A).is_public


def test_json_round_trip() -> None:
    acl = canned("bucket-owner-read", B, A)
    assert Acl.from_json(acl.to_json()) == acl


def test_grants_to() -> None:
    acl = Acl(
        A,
        (
            Grant(CU, B, Permission.READ),
            Grant(GROUP, AUTHENTICATED_USERS, Permission.READ_ACP),
            Grant(GROUP, ALL_USERS, Permission.FULL_CONTROL),
        ),
    )
    assert acl.grants_to(B, True, Permission.READ, ignore_public=True) is GrantReach.ACCOUNT
    assert acl.grants_to(B, True, Permission.READ, ignore_public=False) is GrantReach.GROUP
    assert acl.grants_to(None, False, Permission.WRITE, ignore_public=False) is GrantReach.GROUP
    assert acl.grants_to(None, False, Permission.WRITE, ignore_public=True) is GrantReach.NONE
    private = Acl(A, (Grant(GROUP, AUTHENTICATED_USERS, Permission.READ),))
    assert private.grants_to(None, False, Permission.READ, False) is GrantReach.NONE
    assert private.grants_to(B, True, Permission.READ, False) is GrantReach.GROUP
    assert private.grants_to(B, True, Permission.WRITE, False) is GrantReach.NONE


def test_grant_headers() -> None:
    headers = {
        "x-amz-grant-read": f'id="{B}", uri="{ALL_USERS}"',
        "x-amz-grant-write-acp": f"id={B}",
    }
    acl = acl_from_request(headers, b"", A)
    assert acl is not None and acl.owner == A
    assert set(acl.grants) == {
        Grant(CU, B, Permission.READ),
        Grant(GROUP, ALL_USERS, Permission.READ),
        Grant(CU, B, Permission.WRITE_ACP),
    }
    assert acl_from_request({}, b"", A) is None


@pytest.mark.parametrize(
    ("headers", "body", "error"),
    [
        ({"x-amz-grant-read": "id=1"}, b"", InvalidArgument),
        ({"x-amz-grant-read": "id="}, b"", InvalidArgument),
        ({"x-amz-grant-read": 'uri="http://x/y"'}, b"", InvalidArgument),
        ({"x-amz-grant-read": "emailAddress=a@b.c"}, b"", UnresolvableGrantByEmailAddress),
        ({"x-amz-acl": "private", "x-amz-grant-read": f"id={B}"}, b"", InvalidRequest),
        ({"x-amz-acl": "nope"}, b"", InvalidArgument),
        ({"x-amz-acl": "private"}, b"<AccessControlPolicy/>", UnexpectedContent),
        ({}, b"", MalformedACLError),
        ({}, b"<Other/>", MalformedACLError),
    ],
)
def test_bad_acl_requests(headers: dict[str, str], body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        acl_from_request(headers, body, A, body_allowed=True)


def test_xml_round_trip() -> None:
    acl = Acl(
        A,
        (
            Grant(CU, A, Permission.FULL_CONTROL),
            Grant(GROUP, ALL_USERS, Permission.READ),
            Grant(CU, B, Permission.WRITE_ACP),
        ),
    )
    body = render(acl, {A: "alice"})
    assert b"<DisplayName>alice</DisplayName>" in body
    assert acl_from_request({}, body, A, body_allowed=True) == acl
    email = body.replace(b'xsi:type="Group"', b'xsi:type="AmazonCustomerByEmail"')
    with pytest.raises(UnresolvableGrantByEmailAddress):
        acl_from_request({}, email, A, body_allowed=True)


def test_ownership() -> None:
    assert Ownership.stored(None) is Ownership.BUCKET_OWNER_ENFORCED
    assert Ownership.stored("none") is Ownership.OBJECT_WRITER
    assert not Ownership.BUCKET_OWNER_ENFORCED.acls_enabled
    assert Ownership.BUCKET_OWNER_PREFERRED.acls_enabled


# --- evaluation ---------------------------------------------------------------------------------
def decide(principal: object, reach: Reach, **kw: object) -> Decision:
    args: dict[str, object] = {
        "principal": principal,
        "action": "s3:GetObject",
        "resource": OBJ,
        "context": {},
        "owner": A,
        "acl_reach": reach,
    }
    args.update(kw)
    return evaluate(**args)  # type: ignore[arg-type]


def test_acl_reach_allows_like_a_bucket_policy() -> None:
    assert decide(ANONYMOUS, Reach.DIRECT) is Decision.ALLOW
    assert decide(ANONYMOUS, Reach.NONE) is Decision.IMPLICIT_DENY
    assert decide(admin(B), Reach.ACCOUNT) is Decision.ALLOW
    # another account's user: its own identity policy must allow too
    assert decide(user(B, "bob"), Reach.ACCOUNT) is Decision.IMPLICIT_DENY
    assert decide(user(B, "bob"), Reach.DIRECT) is Decision.IMPLICIT_DENY
    allow = (identity(ident()),)
    assert decide(user(B, "bob"), Reach.ACCOUNT, identity=allow) is Decision.ALLOW
    # the owner's own users: a group grant is enough
    assert decide(user(A, "ann"), Reach.DIRECT) is Decision.ALLOW


def test_explicit_deny_beats_an_acl_grant() -> None:
    deny = bucket(grant("*", "Deny"))
    assert decide(ANONYMOUS, Reach.DIRECT, bucket_policy=deny) is Decision.EXPLICIT_DENY
    assert decide(admin(B), Reach.ACCOUNT, bucket_policy=deny) is Decision.EXPLICIT_DENY
    denied = (identity(ident("Deny")),)
    assert decide(user(B, "bob"), Reach.DIRECT, identity=denied) is Decision.EXPLICIT_DENY
