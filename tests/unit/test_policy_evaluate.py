"""Policy evaluation: deny wins, allow, implicit deny; same-account vs cross-account; anonymous;
RestrictPublicBuckets; conditions and variables."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onshore.service.identity import ANONYMOUS, Principal, PrincipalKind
from onshore.service.policy import Decision, PolicyKind, evaluate, parse_policy
from onshore.service.policy.conditions import holds
from onshore.service.policy.document import Condition, SetOperator

A, B = "111111111111", "222222222222"
BUCKET = "arn:onshore:s3:::bkt"
OBJ = BUCKET + "/docs/a.txt"


def user(account: str, name: str) -> Principal:
    return Principal(
        access_key="AK" + name,
        account_id=account,
        arn=f"arn:onshore:iam::{account}:user/{name}",
        display_name=name,
        kind=PrincipalKind.USER,
        user_name=name,
        user_id="AIDA" + name.upper(),
    )


def admin(account: str) -> Principal:
    return Principal(
        access_key="AKADMIN" + account,
        account_id=account,
        arn=f"arn:onshore:iam::{account}:root",
        display_name="admin",
        kind=PrincipalKind.TENANT_ADMIN,
        user_id=account,
    )


def bucket(*statements: dict[str, object]):  # type: ignore[no-untyped-def]
    text = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    return parse_policy(text, kind=PolicyKind.BUCKET, partition="onshore", bucket="bkt")


def identity(*statements: dict[str, object]):  # type: ignore[no-untyped-def]
    text = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    return parse_policy(text, kind=PolicyKind.IDENTITY, partition="onshore")


def grant(principal: object, effect: str = "Allow", **extra: object) -> dict[str, object]:
    return {
        "Effect": effect,
        "Principal": principal,
        "Action": "s3:GetObject",
        "Resource": BUCKET + "/*",
        **extra,
    }


def ident(
    effect: str = "Allow", action: str = "s3:GetObject", resource: str = "*"
) -> dict[str, object]:
    return {"Effect": effect, "Action": action, "Resource": resource}


def decide(principal: Principal, **kw: object) -> Decision:
    args: dict[str, object] = {
        "principal": principal,
        "action": "s3:GetObject",
        "resource": OBJ,
        "context": {},
        "owner": A,
    }
    args.update(kw)
    return evaluate(**args)  # type: ignore[arg-type]


def test_owner_admin_has_full_rights_but_explicit_deny_wins() -> None:
    assert decide(admin(A)) is Decision.ALLOW
    deny = bucket(grant({"AWS": A}, "Deny"))
    assert decide(admin(A), bucket_policy=deny) is Decision.EXPLICIT_DENY


def test_same_account_user_needs_identity_or_bucket_policy() -> None:
    ann = user(A, "ann")
    assert decide(ann) is Decision.IMPLICIT_DENY
    assert decide(ann, identity=[identity(ident())]) is Decision.ALLOW
    by_arn = bucket(grant({"AWS": ann.arn}))
    assert decide(ann, bucket_policy=by_arn) is Decision.ALLOW
    # naming only the account delegates to the account's IAM: identity must allow
    by_account = bucket(grant({"AWS": A}))
    assert decide(ann, bucket_policy=by_account) is Decision.IMPLICIT_DENY
    assert decide(ann, identity=[identity(ident("Deny"))], bucket_policy=by_arn) is (
        Decision.EXPLICIT_DENY
    )


def test_cross_account_needs_both_sides() -> None:
    bob = user(B, "bob")
    to_bob = bucket(grant({"AWS": bob.arn}))
    to_b = bucket(grant({"AWS": B}))
    assert decide(bob, bucket_policy=to_bob) is Decision.IMPLICIT_DENY
    assert decide(bob, identity=[identity(ident())]) is Decision.IMPLICIT_DENY
    assert decide(bob, identity=[identity(ident())], bucket_policy=to_bob) is Decision.ALLOW
    assert decide(bob, identity=[identity(ident())], bucket_policy=to_b) is Decision.ALLOW
    # another account's admin acts as that account's root: the bucket policy is enough
    assert decide(admin(B)) is Decision.IMPLICIT_DENY
    assert decide(admin(B), bucket_policy=to_b) is Decision.ALLOW


def test_anonymous_only_through_star() -> None:
    assert decide(ANONYMOUS) is Decision.IMPLICIT_DENY
    assert decide(ANONYMOUS, bucket_policy=bucket(grant({"AWS": A}))) is Decision.IMPLICIT_DENY
    assert decide(ANONYMOUS, bucket_policy=bucket(grant("*"))) is Decision.ALLOW
    assert decide(ANONYMOUS, bucket_policy=bucket(grant({"AWS": "*"}))) is Decision.ALLOW
    # identity policies never apply to anonymous callers
    assert decide(ANONYMOUS, identity=[identity(ident())]) is Decision.IMPLICIT_DENY


def test_restrict_public_buckets_ignores_public_grants_for_outsiders() -> None:
    public = bucket(grant("*"))
    assert decide(ANONYMOUS, bucket_policy=public, restrict_public=True) is (Decision.IMPLICIT_DENY)
    assert decide(admin(B), bucket_policy=public, restrict_public=True) is (Decision.IMPLICIT_DENY)
    # ... but not for the owner's own users
    ann = user(A, "ann")
    assert decide(ann, bucket_policy=public, restrict_public=True) is Decision.ALLOW
    # a non-public grant (pinned to a source network) still works
    pinned = bucket(grant("*", Condition={"IpAddress": {"aws:SourceIp": "10.1.0.0/16"}}))
    ctx = {"aws:sourceip": ("10.1.2.3",)}
    assert decide(ANONYMOUS, bucket_policy=pinned, restrict_public=True, context=ctx) is (
        Decision.ALLOW
    )


def test_not_principal_not_action_not_resource() -> None:
    ann, bob = user(A, "ann"), user(B, "bob")
    deny_all_but_ann = bucket(
        {
            "Effect": "Deny",
            "NotPrincipal": {"AWS": ann.arn},
            "Action": "s3:*",
            "Resource": BUCKET + "/*",
        }
    )
    assert decide(admin(A), bucket_policy=deny_all_but_ann) is Decision.EXPLICIT_DENY
    assert decide(ann, bucket_policy=deny_all_but_ann, identity=[identity(ident())]) is (
        Decision.ALLOW
    )
    not_action = identity({"Effect": "Allow", "NotAction": "s3:Delete*", "Resource": "*"})
    assert decide(ann, identity=[not_action]) is Decision.ALLOW
    assert decide(ann, identity=[not_action], action="s3:DeleteObject") is Decision.IMPLICIT_DENY
    not_resource = identity(
        {"Effect": "Allow", "Action": "s3:*", "NotResource": BUCKET + "/secret/*"}
    )
    assert decide(ann, identity=[not_resource]) is Decision.ALLOW
    assert decide(ann, identity=[not_resource], resource=BUCKET + "/secret/x") is (
        Decision.IMPLICIT_DENY
    )
    assert decide(bob, identity=[not_resource]) is Decision.IMPLICIT_DENY


def test_action_wildcards_are_case_insensitive_resources_are_not() -> None:
    ann = user(A, "ann")
    pol = identity(ident(action="S3:get*", resource=BUCKET + "/docs/?.txt"))
    assert decide(ann, identity=[pol]) is Decision.ALLOW
    assert decide(ann, identity=[pol], resource=BUCKET + "/DOCS/a.txt") is Decision.IMPLICIT_DENY
    assert decide(ann, identity=[pol], resource=BUCKET + "/docs/ab.txt") is (Decision.IMPLICIT_DENY)


def test_policy_variables() -> None:
    ann = user(A, "ann")
    ctx = {"aws:username": ("ann",), "aws:userid": ("AIDAANN",)}
    home = identity(ident(resource=BUCKET + "/home/${aws:username}/*"))
    assert decide(ann, identity=[home], resource=BUCKET + "/home/ann/x", context=ctx) is (
        Decision.ALLOW
    )
    assert decide(ann, identity=[home], resource=BUCKET + "/home/bob/x", context=ctx) is (
        Decision.IMPLICIT_DENY
    )
    # a missing variable matches nothing
    assert decide(ann, identity=[home], resource=BUCKET + "/home/ann/x") is (Decision.IMPLICIT_DENY)
    literal = identity(ident(resource=BUCKET + "/${*}${?}${$}"))
    assert decide(ann, identity=[literal], resource=BUCKET + "/*?$", context=ctx) is (
        Decision.ALLOW
    )
    assert decide(ann, identity=[literal], resource=BUCKET + "/ab$", context=ctx) is (
        Decision.IMPLICIT_DENY
    )
    # under Version 2008-10-17 variables are literal text
    old = parse_policy(
        json.dumps(
            {"Version": "2008-10-17", "Statement": ident(resource=BUCKET + "/${aws:username}")}
        ),
        kind=PolicyKind.IDENTITY,
        partition="onshore",
    )
    assert decide(ann, identity=[old], resource=BUCKET + "/ann", context=ctx) is (
        Decision.IMPLICIT_DENY
    )
    assert decide(ann, identity=[old], resource=BUCKET + "/${aws:username}", context=ctx) is (
        Decision.ALLOW
    )


_PRINCIPALS = st.sampled_from([admin(A), admin(B), user(A, "ann"), user(B, "bob"), ANONYMOUS])
_WHO = st.sampled_from(["*", {"AWS": A}, {"AWS": B}, {"AWS": f"arn:onshore:iam::{A}:user/ann"}])


@given(principal=_PRINCIPALS, allow_who=_WHO, deny_who=_WHO, with_identity=st.booleans())
def test_deny_always_wins(
    principal: Principal, allow_who: object, deny_who: object, with_identity: bool
) -> None:
    policy = bucket(grant(allow_who), grant(deny_who, "Deny"))
    ids = [identity(ident())] if with_identity else []
    result = decide(principal, bucket_policy=policy, identity=ids)
    deny_reaches = deny_who == "*" or (
        principal.kind is not PrincipalKind.ANONYMOUS
        and (deny_who == {"AWS": principal.account_id} or deny_who == {"AWS": principal.arn})
    )
    if deny_reaches:
        assert result is Decision.EXPLICIT_DENY
    else:
        assert result is not Decision.EXPLICIT_DENY


@given(principal=_PRINCIPALS, with_identity=st.booleans(), owner=st.sampled_from([A, B]))
def test_identity_deny_always_wins(principal: Principal, with_identity: bool, owner: str) -> None:
    ids = [identity(ident("Deny"))] + ([identity(ident())] if with_identity else [])
    result = decide(principal, identity=ids, owner=owner, bucket_policy=bucket(grant("*")))
    if principal.kind is PrincipalKind.ANONYMOUS:
        assert result is Decision.ALLOW
    else:
        assert result is Decision.EXPLICIT_DENY


def test_missing_bucket_judges_the_caller_as_owner() -> None:
    assert decide(admin(B), owner=None) is Decision.ALLOW
    assert decide(user(B, "bob"), owner=None) is Decision.IMPLICIT_DENY
    assert decide(ANONYMOUS, owner=None) is Decision.IMPLICIT_DENY


# --- conditions -----------------------------------------------------------------------------------
def cond(op: str, key: str, *values: str, if_exists: bool = False, set_op: str = "") -> Condition:
    return Condition(op, key, values, if_exists, SetOperator(set_op))


NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CASES = [
    # (condition, context value(s), expected)
    (cond("StringEquals", "k:a", "x", "y"), ("y",), True),
    (cond("StringEquals", "k:a", "x"), ("X",), False),
    (cond("StringNotEquals", "k:a", "x", "y"), ("z",), True),
    (cond("StringNotEquals", "k:a", "x", "y"), ("y",), False),
    (cond("StringEqualsIgnoreCase", "k:a", "ABC"), ("abc",), True),
    (cond("StringEqualsIgnoreCase", "k:a", "ABC"), ("abd",), False),
    (cond("StringNotEqualsIgnoreCase", "k:a", "ABC"), ("abd",), True),
    (cond("StringNotEqualsIgnoreCase", "k:a", "ABC"), ("abc",), False),
    (cond("StringLike", "k:a", "home/*/x?"), ("home/a/b/xy",), True),
    (cond("StringLike", "k:a", "home/*/x?"), ("home/a/b/x",), False),
    (cond("StringNotLike", "k:a", "tmp/*"), ("home/x",), True),
    (cond("StringNotLike", "k:a", "tmp/*"), ("tmp/x",), False),
    (cond("NumericEquals", "k:a", "10"), ("10.0",), True),
    (cond("NumericEquals", "k:a", "10"), ("11",), False),
    (cond("NumericNotEquals", "k:a", "10"), ("11",), True),
    (cond("NumericNotEquals", "k:a", "10"), ("10",), False),
    (cond("NumericLessThan", "k:a", "10"), ("9",), True),
    (cond("NumericLessThan", "k:a", "10"), ("10",), False),
    (cond("NumericLessThanEquals", "k:a", "10"), ("10",), True),
    (cond("NumericLessThanEquals", "k:a", "10"), ("11",), False),
    (cond("NumericGreaterThan", "k:a", "10"), ("11",), True),
    (cond("NumericGreaterThan", "k:a", "10"), ("10",), False),
    (cond("NumericGreaterThanEquals", "k:a", "10"), ("10",), True),
    (cond("NumericGreaterThanEquals", "k:a", "10"), ("9",), False),
    (cond("NumericLessThan", "k:a", "10"), ("abc",), False),
    (cond("DateEquals", "k:a", "2026-06-01T12:00:00Z"), ("1780315200",), True),
    (cond("DateEquals", "k:a", "2026-06-01T12:00:00Z"), ("2026-06-01T12:00:01Z",), False),
    (cond("DateNotEquals", "k:a", "2026-06-01"), ("2026-06-02",), True),
    (cond("DateNotEquals", "k:a", "2026-06-01"), ("2026-06-01T00:00:00Z",), False),
    (cond("DateLessThan", "k:a", "2026-06-02"), ("2026-06-01T12:00:00Z",), True),
    (cond("DateLessThan", "k:a", "2026-06-01"), ("2026-06-01T12:00:00Z",), False),
    (cond("DateLessThanEquals", "k:a", "2026-06-01"), ("2026-06-01T00:00:00Z",), True),
    (cond("DateLessThanEquals", "k:a", "2026-06-01"), ("2026-06-01T00:00:01Z",), False),
    (cond("DateGreaterThan", "k:a", "2026-01-01"), ("2026-06-01T12:00:00Z",), True),
    (cond("DateGreaterThan", "k:a", "2027-01-01"), ("2026-06-01T12:00:00Z",), False),
    (cond("DateGreaterThanEquals", "k:a", "2026-06-01"), ("2026-06-01",), True),
    (cond("DateGreaterThanEquals", "k:a", "2026-06-02"), ("2026-06-01",), False),
    (cond("Bool", "k:a", "true"), ("true",), True),
    (cond("Bool", "k:a", "true"), ("false",), False),
    (cond("BinaryEquals", "k:a", "QUJD"), ("QUJD",), True),
    (cond("BinaryEquals", "k:a", "QUJD"), ("QUJE",), False),
    (cond("IpAddress", "k:a", "10.0.0.0/8", "2001:db8::/32"), ("2001:db8::1",), True),
    (cond("IpAddress", "k:a", "10.0.0.0/8"), ("11.0.0.1",), False),
    (cond("IpAddress", "k:a", "10.0.0.0/8"), ("::ffff:10.1.2.3",), True),
    (cond("NotIpAddress", "k:a", "10.0.0.0/8"), ("11.0.0.1",), True),
    (cond("NotIpAddress", "k:a", "10.0.0.0/8"), ("10.2.3.4",), False),
    (cond("ArnEquals", "k:a", "arn:onshore:iam::1:user/*"), ("arn:onshore:iam::1:user/a",), True),
    (cond("ArnEquals", "k:a", "arn:onshore:iam::1:user/*"), ("arn:onshore:iam::2:user/a",), False),
    (cond("ArnLike", "k:a", "arn:*:iam::1:*"), ("arn:onshore:iam::1:root",), True),
    (cond("ArnLike", "k:a", "arn:*:iam::1:*"), ("not-an-arn",), False),
    (cond("ArnNotEquals", "k:a", "arn:onshore:iam::1:root"), ("arn:onshore:iam::2:root",), True),
    (cond("ArnNotEquals", "k:a", "arn:onshore:iam::1:root"), ("arn:onshore:iam::1:root",), False),
    (cond("ArnNotLike", "k:a", "arn:onshore:iam::1:*"), ("arn:onshore:iam::2:root",), True),
    (cond("ArnNotLike", "k:a", "arn:onshore:iam::1:*"), ("arn:onshore:iam::1:root",), False),
    (cond("Null", "k:a", "true"), None, True),
    (cond("Null", "k:a", "true"), ("x",), False),
    (cond("Null", "k:a", "false"), ("x",), True),
    (cond("Null", "k:a", "false"), None, False),
    # absent keys: false for positive operators, true for negated ones and IfExists
    (cond("StringEquals", "k:a", "x"), None, False),
    (cond("StringNotEquals", "k:a", "x"), None, True),
    (cond("StringEquals", "k:a", "x", if_exists=True), None, True),
    (cond("StringEquals", "k:a", "x", if_exists=True), ("y",), False),
    (cond("NumericLessThan", "k:a", "5", if_exists=True), ("3",), True),
    # set operators
    (cond("StringEquals", "k:a", "x", "y", set_op="ForAllValues"), ("x", "y"), True),
    (cond("StringEquals", "k:a", "x", "y", set_op="ForAllValues"), ("x", "z"), False),
    (cond("StringEquals", "k:a", "x", set_op="ForAllValues"), None, True),
    (cond("StringEquals", "k:a", "x", set_op="ForAnyValue"), ("z", "x"), True),
    (cond("StringEquals", "k:a", "x", set_op="ForAnyValue"), ("z",), False),
    (cond("StringEquals", "k:a", "x", set_op="ForAnyValue"), None, False),
    (cond("StringNotEquals", "k:a", "x", set_op="ForAnyValue"), ("x", "z"), True),
    (cond("StringNotEquals", "k:a", "x", set_op="ForAllValues"), ("x", "z"), False),
    # variables inside condition values
    (cond("StringEquals", "k:a", "${aws:username}"), ("ann",), True),
    (cond("StringLike", "k:a", "home/${aws:username}/*"), ("home/bob/x",), False),
]


@pytest.mark.parametrize(("condition", "values", "expected"), CASES)
def test_condition_operators(
    condition: Condition, values: tuple[str, ...] | None, expected: bool
) -> None:
    ctx: dict[str, tuple[str, ...]] = {"aws:username": ("ann",)}
    if values is not None:
        ctx[condition.key] = values
    assert holds(condition, ctx, variables=True) is expected


def test_owner_root_cannot_be_locked_out_of_the_policy() -> None:
    deny_all = bucket(
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": [BUCKET, BUCKET + "/*"]}
    )
    for action in ("s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"):
        assert decide(admin(A), action=action, resource=BUCKET, bucket_policy=deny_all) is (
            Decision.ALLOW
        )
        assert decide(admin(B), action=action, resource=BUCKET, bucket_policy=deny_all) is (
            Decision.EXPLICIT_DENY
        )
    assert decide(admin(A), bucket_policy=deny_all) is Decision.EXPLICIT_DENY
