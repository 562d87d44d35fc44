"""Is a bucket policy *public*? — Block Public Access's definition.

A policy is public when one of its Allow statements reaches anyone: ``Principal: "*"`` (or
``{"AWS": "*"}``), or any ``NotPrincipal``, unless a condition pins the caller down to fixed
values of a key that identifies it or its network: ``aws:SourceIp`` (a CIDR narrower than
``/8`` for IPv4, ``/32`` for IPv6), ``aws:PrincipalAccount``, ``aws:PrincipalArn``,
``aws:PrincipalOrgID``, ``aws:SourceAccount``, ``aws:SourceArn``, ``aws:SourceVpc``,
``aws:SourceVpce``, ``aws:userid``, ``s3:x-amz-server-side-encryption-aws-kms-key-id``,
matched with an equality operator (no wildcards).

With ``BlockPublicPolicy`` on, PutBucketPolicy refuses a public policy; with
``RestrictPublicBuckets`` on, the public grants of a stored one are ignored.
"""

from __future__ import annotations

import ipaddress

from onshore.service.policy.document import Condition, Effect, Policy, Statement

_FIXING_KEYS = frozenset(
    {
        "aws:principalaccount",
        "aws:principalarn",
        "aws:principalorgid",
        "aws:sourceaccount",
        "aws:sourcearn",
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:userid",
        "s3:x-amz-server-side-encryption-aws-kms-key-id",
    }
)
_EQUALITY = frozenset(
    {"StringEquals", "StringEqualsIgnoreCase", "ArnEquals", "ArnLike", "StringLike"}
)


def _fixes_caller(condition: Condition) -> bool:
    if condition.if_exists:
        return False
    if condition.key == "aws:sourceip" and condition.operator == "IpAddress":
        for value in condition.values:
            network = ipaddress.ip_network(value, strict=False)
            if network.prefixlen < (8 if network.version == 4 else 32):
                return False
        return True
    if condition.key in _FIXING_KEYS and condition.operator in _EQUALITY:
        return not any("*" in v or "?" in v for v in condition.values)
    return False


def is_public_statement(statement: Statement) -> bool:
    if statement.effect is not Effect.ALLOW or statement.principals is None:
        return False
    if not (statement.principals.anyone or statement.not_principal):
        return False
    return not any(_fixes_caller(c) for c in statement.conditions)


def is_public(policy: Policy) -> bool:
    return any(is_public_statement(s) for s in policy.statements)
