"""Fuzz the policy language: mutated policy documents and hostile condition values.

``parse_policy`` either returns a policy or raises ``MalformedPolicy`` (a 400 with a message),
nothing else; a policy that parses is then evaluated against hostile request contexts, which
must give a decision, never an exception, and never take long (wildcards match in linear time).
"""

from __future__ import annotations

import json

from hypothesis import example, given
from hypothesis import strategies as st

from onshore.domain.errors import MalformedPolicy
from onshore.service.identity import ANONYMOUS, Principal, PrincipalKind
from onshore.service.policy import Decision, PolicyKind, evaluate, parse_policy
from tests.fuzz.support import fuzz_settings, hostile_text, mutated_text

PARTITION = "onshore"
VALID = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Read",
                "Effect": "Allow",
                "Principal": {"AWS": ["arn:onshore:iam::111111111111:root", "*"]},
                "Action": ["s3:Get*", "s3:List?ucket"],
                "Resource": ["arn:onshore:s3:::fuzz/*", "arn:onshore:s3:::fuzz"],
                "Condition": {
                    "StringLike": {"s3:prefix": ["home/${aws:username}/*"]},
                    "IpAddress": {"aws:SourceIp": "10.0.0.0/8"},
                    "NumericLessThanEquals": {"s3:max-keys": "100"},
                    "DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"},
                    "ForAnyValue:StringEquals": {"aws:UserAgent": ["a", "b"]},
                    "BoolIfExists": {"aws:SecureTransport": "true"},
                    "Null": {"s3:x-amz-server-side-encryption": "true"},
                },
            },
            {"Effect": "Deny", "NotPrincipal": {"AWS": "111111111111"}, "NotAction": "s3:*",
             "NotResource": "arn:onshore:s3:::fuzz/private/*"},
        ],
    }
)  # fmt: skip
USER = Principal(
    access_key="AK",
    account_id="111111111111",
    arn="arn:onshore:iam::111111111111:user/alice",
    display_name="alice",
    kind=PrincipalKind.USER,
    user_name="alice",
    user_id="AIDAFUZZ",
)
CONTEXT_KEYS = ["s3:prefix", "aws:SourceIp", "s3:max-keys", "aws:CurrentTime", "aws:UserAgent",
                "aws:SecureTransport", "aws:username", "aws:EpochTime"]  # fmt: skip


def parsed_or_malformed(text: str) -> object:
    try:
        return parse_policy(text, kind=PolicyKind.BUCKET, partition=PARTITION, bucket="fuzz")
    except MalformedPolicy as error:
        assert error.status == 400 and error.message
        return error


@fuzz_settings(400)
@given(text=st.one_of(hostile_text(200), st.just(VALID).flatmap(mutated_text)))
@example(text=VALID)
@example(text='{"Statement": ' * 2000)
@example(
    text='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", '
    '"Action": "' + "*" * 3000 + 'a", "Resource": "arn:onshore:s3:::fuzz/*"}]}'
)
def test_mutated_policies_parse_or_are_malformed(text: str) -> None:
    parsed_or_malformed(text)


@fuzz_settings(300)
@given(
    values=st.dictionaries(st.sampled_from(CONTEXT_KEYS), st.lists(hostile_text(60), max_size=3)),
    resource=st.one_of(hostile_text(80), st.just("arn:onshore:s3:::fuzz/home/alice/x")),
    action=st.one_of(hostile_text(30), st.sampled_from(["s3:GetObject", "s3:ListBucket"])),
    anonymous=st.booleans(),
)
def test_hostile_contexts_always_get_a_decision(
    values: dict[str, list[str]], resource: str, action: str, anonymous: bool
) -> None:
    policy = parse_policy(VALID, kind=PolicyKind.BUCKET, partition=PARTITION, bucket="fuzz")
    decision = evaluate(
        principal=ANONYMOUS if anonymous else USER,
        action=action,
        resource=resource,
        context={k: tuple(v) for k, v in values.items()},
        bucket_policy=policy,
        owner="222222222222",
    )
    assert isinstance(decision, Decision)
