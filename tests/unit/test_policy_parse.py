"""Policy parsing and validation: each malformed case is refused with a message saying why."""

from __future__ import annotations

import json

import pytest

from onshore.domain.errors import MalformedPolicy
from onshore.service.policy import (
    BUCKET_POLICY_MAX_BYTES,
    Effect,
    PolicyKind,
    SetOperator,
    parse_policy,
)

B = "arn:onshore:s3:::bkt"


def bucket_policy(*statements: dict[str, object], **top: object) -> str:
    doc: dict[str, object] = {"Version": "2012-10-17", "Statement": list(statements)}
    doc.update(top)
    return json.dumps(doc)


def stmt(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": B + "/*",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def parse_bucket(text: str, partition: str = "onshore"):  # type: ignore[no-untyped-def]
    return parse_policy(text, kind=PolicyKind.BUCKET, partition=partition, bucket="bkt")


def test_full_policy_parses() -> None:
    policy = parse_bucket(
        bucket_policy(
            stmt(
                Sid="One",
                Principal={"AWS": ["111122223333", "arn:onshore:iam::444455556666:user/ann"]},
                Action=["s3:Get*", "s3:List?ucket"],
                Resource=[B, B + "/home/${aws:username}/*"],
                Condition={
                    "ForAnyValue:StringLikeIfExists": {"s3:prefix": ["a*", "b"]},
                    "NumericLessThan": {"s3:max-keys": 10},
                    "Bool": {"aws:SecureTransport": False},
                },
            ),
            stmt(
                Sid="Two",
                Effect="Deny",
                Principal=None,
                NotPrincipal={"AWS": "*"},
                Action=None,
                NotAction="s3:*",
            ),
            Id="my-policy",
        )
    )
    assert policy.id == "my-policy" and policy.variables
    one, two = policy.statements
    assert one.effect is Effect.ALLOW and one.sid == "One"
    assert one.principals is not None
    assert one.principals.accounts == {"111122223333"}
    assert one.principals.arns == {"arn:onshore:iam::444455556666:user/ann"}
    cond = {c.operator: c for c in one.conditions}
    assert cond["StringLike"].if_exists and cond["StringLike"].set_operator is SetOperator.ANY
    assert cond["NumericLessThan"].values == ("10",)
    assert cond["Bool"].values == ("false",) and cond["Bool"].key == "aws:securetransport"
    assert two.not_principal and two.not_action and two.effect is Effect.DENY


def test_statement_may_be_a_single_object_and_version_defaults_to_2008() -> None:
    policy = parse_bucket(json.dumps({"Statement": stmt()}))
    assert policy.version == "2008-10-17" and not policy.variables
    assert len(policy.statements) == 1


def test_root_arn_principal_is_the_account() -> None:
    policy = parse_bucket(
        bucket_policy(stmt(Principal={"AWS": "arn:onshore:iam::111122223333:root"}))
    )
    principals = policy.statements[0].principals
    assert principals is not None and principals.accounts == {"111122223333"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "valid JSON"),
        ("[1, 2]", "valid JSON"),
        (bucket_policy(stmt(), Version="2020-01-01"), "valid version string"),
        (bucket_policy(stmt(), Extra=1), "Unknown field Extra"),
        (json.dumps({"Version": "2012-10-17"}), "Missing required field Statement"),
        (bucket_policy(), "Statement must not be empty"),
        (json.dumps({"Statement": ["x"]}), "Each Statement must be a JSON object"),
        (bucket_policy(stmt(Effect=None)), "Missing required field Effect"),
        (bucket_policy(stmt(Effect="Maybe")), "Invalid effect: Maybe"),
        (bucket_policy(stmt(Action=None)), "Missing required field Action"),
        (bucket_policy(stmt(NotAction="s3:GetObject")), "both Action and NotAction"),
        (bucket_policy(stmt(Resource=None)), "Missing required field Resource"),
        (bucket_policy(stmt(Principal=None)), "Missing required field Principal"),
        (bucket_policy(stmt(NotPrincipal="*")), "both Principal and NotPrincipal"),
        (bucket_policy(stmt(Action="s3:FlyToTheMoon")), "Policy has invalid action"),
        (bucket_policy(stmt(Action="iam:CreateUser")), "Policy has invalid action"),
        (bucket_policy(stmt(Action="GetObject")), "Policy has invalid action"),
        (bucket_policy(stmt(Action=[])), "Action must be a non-empty string"),
        (bucket_policy(stmt(Action=[1])), "Action must be a non-empty string"),
        (bucket_policy(stmt(Resource="arn:aws:s3:::bkt/*")), "partition 'onshore', not 'aws'"),
        (bucket_policy(stmt(Resource="arn:onshore:s3:::other/*")), "invalid resource"),
        (bucket_policy(stmt(Resource="arn:onshore:s3:::bktx/*")), "invalid resource"),
        (bucket_policy(stmt(Resource="*")), "invalid resource"),
        (bucket_policy(stmt(Resource="bkt/*")), "invalid resource"),
        (bucket_policy(stmt(Principal={"AWS": "12345"})), "Invalid principal"),
        (bucket_policy(stmt(Principal={"Service": "x.amazonaws.com"})), "Invalid principal"),
        (bucket_policy(stmt(Principal={"AWS": "arn:aws:iam::111122223333:root"})), "partition"),
        (bucket_policy(stmt(Principal="everyone")), "Invalid principal"),
        (
            bucket_policy(stmt(Condition={"StringEqualz": {"aws:username": "a"}})),
            "Invalid Condition type : StringEqualz",
        ),
        (
            bucket_policy(stmt(Condition={"ForSomeValues:StringEquals": {"aws:username": "a"}})),
            "Invalid Condition type",
        ),
        (
            bucket_policy(stmt(Condition={"NullIfExists": {"aws:username": "true"}})),
            "Invalid Condition type",
        ),
        (
            bucket_policy(stmt(Condition={"StringEquals": {"s3:nonsense": "a"}})),
            "invalid condition key: s3:nonsense",
        ),
        (
            bucket_policy(stmt(Condition={"StringEquals": {"ec2:Region": "a"}})),
            "invalid condition key",
        ),
        (
            bucket_policy(stmt(Condition={"NumericEquals": {"s3:max-keys": "ten"}})),
            "'ten' is not a number",
        ),
        (
            bucket_policy(stmt(Condition={"DateLessThan": {"aws:CurrentTime": "soon"}})),
            "not an ISO 8601 date",
        ),
        (
            bucket_policy(stmt(Condition={"Bool": {"aws:SecureTransport": "yes"}})),
            "not true or false",
        ),
        (
            bucket_policy(stmt(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}})),
            "not an IP address",
        ),
        (bucket_policy(stmt(Condition={"BinaryEquals": {"aws:UserAgent": "!!"}})), "not base64"),
        (
            bucket_policy(stmt(Condition={"ArnEquals": {"aws:PrincipalArn": "user/x"}})),
            "not an ARN",
        ),
        (
            bucket_policy(
                stmt(Condition={"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::1:user/x"}})
            ),
            "partition",
        ),
        (bucket_policy(stmt(Condition={"StringEquals": {"aws:username": []}})), "empty list"),
        (
            bucket_policy(stmt(Condition={"StringEquals": {"aws:username": {"a": 1}}})),
            "strings, numbers or booleans",
        ),
        (bucket_policy(stmt(Condition={"StringEquals": {}})), "must map condition keys"),
        (bucket_policy(stmt(Condition="x")), "Condition must be a JSON object"),
        (bucket_policy(stmt(Sid="a"), stmt(Sid="a")), "must be unique"),
        (bucket_policy(stmt(Sid=3)), "Sid must be a string"),
        (bucket_policy(stmt(), Id=3), "Id must be a string"),
        (bucket_policy(stmt(Foo=1)), "Unknown field Foo"),
    ],
)
def test_malformed_bucket_policies(text: str, message: str) -> None:
    with pytest.raises(MalformedPolicy) as caught:
        parse_bucket(text)
    assert message in caught.value.message
    assert caught.value.status == 400 and caught.value.code == "MalformedPolicy"


def test_bucket_policy_size_limit() -> None:
    pad = " " * BUCKET_POLICY_MAX_BYTES
    with pytest.raises(MalformedPolicy, match="maximum allowed document size"):
        parse_bucket(bucket_policy(stmt()) + pad)


def test_identity_policy_rules() -> None:
    ok = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Action": ["s3:*", "iam:Get*"], "Resource": "*"},
        }
    )
    assert parse_policy(ok, kind=PolicyKind.IDENTITY, partition="onshore").statements
    with pytest.raises(MalformedPolicy, match="must not specify a Principal"):
        parse_policy(bucket_policy(stmt()), kind=PolicyKind.IDENTITY, partition="onshore")
    # whitespace does not count towards the 2,048 characters
    padded = ok[:-1] + " " * 5000 + "}"
    parse_policy(padded, kind=PolicyKind.IDENTITY, partition="onshore")
    long = json.dumps(
        {
            "Statement": {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": [f"arn:onshore:s3:::b/{i:04}" for i in range(100)],
            }
        }
    )
    with pytest.raises(MalformedPolicy, match="2048 characters"):
        parse_policy(long, kind=PolicyKind.IDENTITY, partition="onshore")


def test_another_partition_is_configurable() -> None:
    text = bucket_policy(stmt(Resource="arn:onshore-cn:s3:::bkt/*"))
    assert parse_bucket(text, partition="onshore-cn").statements
    with pytest.raises(MalformedPolicy, match="partition"):
        parse_bucket(text)
