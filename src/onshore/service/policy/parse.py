"""Policy text → :class:`~.document.Policy`, or :class:`MalformedPolicy` saying what is wrong.

Validation is done once, when the policy is stored, so that everything accepted is enforced
exactly as written: an unknown operator, a key S3 does not define, a number that is not a
number or an ARN in another partition is refused rather than silently never matching.

Size limits are AWS's: a bucket policy is at most 20 KiB; an inline user (identity) policy at
most 2,048 characters, whitespace not counted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import cast

from onshore.domain.errors import MalformedPolicy
from onshore.service.policy.conditions import OPERATORS, check_value
from onshore.service.policy.document import (
    Condition,
    Effect,
    Policy,
    PolicyKind,
    Principals,
    SetOperator,
    Statement,
)
from onshore.service.policy.patterns import matches, normalize_key
from onshore.service.policy.vocabulary import S3_ACTIONS, valid_condition_key

BUCKET_POLICY_MAX_BYTES = 20 * 1024
IDENTITY_POLICY_MAX_CHARS = 2048
VERSIONS = ("2012-10-17", "2008-10-17")
_TOP = frozenset({"Version", "Id", "Statement"})
_STATEMENT = frozenset(
    {
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    }
)
_ACTION = re.compile(r"^[A-Za-z0-9*?-]+:[A-Za-z0-9*?]+$")
_ACCOUNT = re.compile(r"^[0-9]{12}$")
_PRINCIPAL_RESOURCE = re.compile(r"^(root|(user|role)/([\w+=,.@-]+/)*[\w+=,.@-]+)$")

JsonValue = object


def parse_policy(
    text: str, *, kind: PolicyKind, partition: str, bucket: str | None = None
) -> Policy:
    """Parse and validate ``text``. A bucket policy's resources must lie in ``bucket``."""
    _check_size(text, kind)
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        raise MalformedPolicy(
            "Policies must be valid JSON and the first byte must be '{'"
        ) from None
    if not isinstance(raw, dict):
        raise MalformedPolicy("Policies must be valid JSON and the first byte must be '{'")
    return _Parser(kind, partition, bucket).policy(cast(dict[str, JsonValue], raw))


def _check_size(text: str, kind: PolicyKind) -> None:
    if kind is PolicyKind.BUCKET:
        if len(text.encode("utf-8", "surrogatepass")) > BUCKET_POLICY_MAX_BYTES:
            raise MalformedPolicy(
                f"Policy exceeds the maximum allowed document size "
                f"({BUCKET_POLICY_MAX_BYTES} bytes)."
            )
    elif sum(1 for c in text if not c.isspace()) > IDENTITY_POLICY_MAX_CHARS:
        raise MalformedPolicy(
            f"Maximum policy size of {IDENTITY_POLICY_MAX_CHARS} characters exceeded "
            "(whitespace not counted)."
        )


class _Parser:
    def __init__(self, kind: PolicyKind, partition: str, bucket: str | None) -> None:
        self.kind = kind
        self.partition = partition
        self.bucket = bucket

    def policy(self, raw: dict[str, JsonValue]) -> Policy:
        for name in raw:
            if name not in _TOP:
                raise MalformedPolicy(f"Unknown field {name}")
        version = raw.get("Version", "2008-10-17")
        if version not in VERSIONS:
            raise MalformedPolicy(
                "The policy must contain a valid version string: 2012-10-17 or 2008-10-17"
            )
        policy_id = raw.get("Id", "")
        if not isinstance(policy_id, str):
            raise MalformedPolicy("Id must be a string")
        if "Statement" not in raw:
            raise MalformedPolicy("Missing required field Statement")
        body = raw["Statement"]
        items = body if isinstance(body, list) else [body]
        if not items:
            raise MalformedPolicy("Statement must not be empty")
        statements: list[Statement] = []
        sids: set[str] = set()
        for item in items:
            if not isinstance(item, dict):
                raise MalformedPolicy("Each Statement must be a JSON object")
            statement = self.statement(cast(dict[str, JsonValue], item))
            if statement.sid:
                if statement.sid in sids:
                    raise MalformedPolicy(
                        f"Statement IDs (SID) in a single policy must be unique: {statement.sid}"
                    )
                sids.add(statement.sid)
            statements.append(statement)
        return Policy(str(version), tuple(statements), policy_id, self.kind)

    def statement(self, raw: dict[str, JsonValue]) -> Statement:
        for name in raw:
            if name not in _STATEMENT:
                raise MalformedPolicy(f"Unknown field {name}")
        sid = raw.get("Sid", "")
        if not isinstance(sid, str):
            raise MalformedPolicy("Sid must be a string")
        effect = raw.get("Effect")
        if effect is None:
            raise MalformedPolicy("Missing required field Effect")
        if effect not in ("Allow", "Deny"):
            raise MalformedPolicy(f"Invalid effect: {effect}")
        actions, not_action = self.pair(raw, "Action")
        for action in actions:
            self.check_action(action)
        resources, not_resource = self.pair(raw, "Resource")
        for resource in resources:
            self.check_resource(resource)
        principals, not_principal = self.principal(raw)
        conditions = self.conditions(raw.get("Condition", {}))
        return Statement(
            sid=sid,
            effect=Effect(effect),
            actions=actions,
            not_action=not_action,
            resources=resources,
            not_resource=not_resource,
            conditions=conditions,
            principals=principals,
            not_principal=not_principal,
        )

    def pair(self, raw: Mapping[str, JsonValue], name: str) -> tuple[tuple[str, ...], bool]:
        negated = "Not" + name
        if name in raw and negated in raw:
            raise MalformedPolicy(f"A statement cannot have both {name} and {negated}")
        if name not in raw and negated not in raw:
            raise MalformedPolicy(f"Missing required field {name}")
        field = name if name in raw else negated
        return _strings(raw[field], field), field == negated

    def check_action(self, action: str) -> None:
        if action == "*":
            return
        if not _ACTION.match(action):
            raise MalformedPolicy(f"Policy has invalid action: {action}")
        if self.kind is PolicyKind.BUCKET:
            service, _, name = action.partition(":")
            if not matches(service, "s3", ignore_case=True) or not any(
                matches(name, known, ignore_case=True) for known in S3_ACTIONS
            ):
                raise MalformedPolicy(f"Policy has invalid action: {action}")

    def check_resource(self, resource: str) -> None:
        if resource == "*" and self.kind is PolicyKind.IDENTITY:
            return
        parts = resource.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn" or not parts[2]:
            raise MalformedPolicy(f"Policy has invalid resource: {resource}")
        if parts[1] != self.partition:
            raise MalformedPolicy(
                f"Policy has invalid resource: {resource} (ARNs in this deployment use the "
                f"partition '{self.partition}', not '{parts[1]}')"
            )
        if self.kind is PolicyKind.BUCKET:
            path = parts[5]
            if (
                parts[2] != "s3"
                or parts[3]
                or parts[4]
                or self.bucket is None
                or not (path == self.bucket or path.startswith(self.bucket + "/"))
            ):
                raise MalformedPolicy(
                    f"Policy has invalid resource: {resource} (a bucket policy may only name "
                    f"arn:{self.partition}:s3:::{self.bucket} and objects in it)"
                )

    def principal(self, raw: Mapping[str, JsonValue]) -> tuple[Principals | None, bool]:
        present = [n for n in ("Principal", "NotPrincipal") if n in raw]
        if self.kind is PolicyKind.IDENTITY:
            if present:
                raise MalformedPolicy(f"Identity policies must not specify a {present[0]}")
            return None, False
        if not present:
            raise MalformedPolicy("Missing required field Principal")
        if len(present) == 2:
            raise MalformedPolicy("A statement cannot have both Principal and NotPrincipal")
        value = raw[present[0]]
        if value == "*":
            return Principals(anyone=True), present[0] == "NotPrincipal"
        if not isinstance(value, dict) or not value:
            raise MalformedPolicy(f"Invalid principal in policy: {json.dumps(value)}")
        anyone = False
        accounts: set[str] = set()
        arns: set[str] = set()
        for family, names in value.items():
            if family != "AWS":
                raise MalformedPolicy(
                    f"Invalid principal in policy: {family} principals are not supported (use AWS)"
                )
            for name in _strings(names, "Principal"):
                if name == "*":
                    anyone = True
                elif _ACCOUNT.match(name):
                    accounts.add(name)
                else:
                    account, arn = self.principal_arn(name)
                    if arn is None:
                        accounts.add(account)
                    else:
                        arns.add(arn)
        principals = Principals(anyone, frozenset(accounts), frozenset(arns))
        return principals, present[0] == "NotPrincipal"

    def principal_arn(self, name: str) -> tuple[str, str | None]:
        parts = name.split(":", 5)
        if (
            len(parts) != 6
            or parts[0] != "arn"
            or parts[2] != "iam"
            or parts[3]
            or not _ACCOUNT.match(parts[4])
            or not _PRINCIPAL_RESOURCE.match(parts[5])
        ):
            raise MalformedPolicy(f"Invalid principal in policy: {name}")
        if parts[1] != self.partition:
            raise MalformedPolicy(
                f"Invalid principal in policy: {name} (ARNs in this deployment use the "
                f"partition '{self.partition}', not '{parts[1]}')"
            )
        return parts[4], None if parts[5] == "root" else name

    def conditions(self, raw: JsonValue) -> tuple[Condition, ...]:
        if not isinstance(raw, dict):
            raise MalformedPolicy("Condition must be a JSON object")
        found: list[Condition] = []
        for name, block in raw.items():
            operator, if_exists, set_operator = _operator(name)
            if not isinstance(block, dict) or not block:
                raise MalformedPolicy(f"Condition {name} must map condition keys to values")
            for key_name, values in block.items():
                key = normalize_key(key_name)
                if self.kind is PolicyKind.BUCKET and not valid_condition_key(key):
                    raise MalformedPolicy(f"Policy has an invalid condition key: {key_name}")
                if ":" not in key:
                    raise MalformedPolicy(f"Policy has an invalid condition key: {key_name}")
                texts = _condition_values(values, name)
                for text in texts:
                    problem = check_value(operator, text)
                    if problem:
                        raise MalformedPolicy(f"Invalid Condition value: {problem}")
                    if operator.startswith("Arn") and text != "*":
                        self.check_arn_partition(text)
                found.append(Condition(operator, key, texts, if_exists, set_operator))
        return tuple(found)

    def check_arn_partition(self, arn: str) -> None:
        partition = arn.split(":", 5)[1]
        if partition != self.partition and "*" not in partition and "?" not in partition:
            raise MalformedPolicy(
                f"Invalid Condition value: {arn} (ARNs in this deployment use the partition "
                f"'{self.partition}', not '{partition}')"
            )


def _operator(name: str) -> tuple[str, bool, SetOperator]:
    set_operator = SetOperator.NONE
    base = name
    prefix, colon, rest = name.partition(":")
    if colon:
        if prefix not in ("ForAnyValue", "ForAllValues"):
            raise MalformedPolicy(f"Invalid Condition type : {name}")
        set_operator = SetOperator(prefix)
        base = rest
    if_exists = base.endswith("IfExists") and base != "IfExists"
    if if_exists:
        base = base[: -len("IfExists")]
    if base not in OPERATORS or (if_exists and base == "Null"):
        raise MalformedPolicy(f"Invalid Condition type : {name}")
    return base, if_exists, set_operator


def _strings(value: JsonValue, field: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) and v for v in items):
        raise MalformedPolicy(f"{field} must be a non-empty string or a list of them")
    return tuple(cast(list[str], items))


def _condition_values(value: JsonValue, operator: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise MalformedPolicy(f"Condition {operator} has an empty list of values")
    out: list[str] = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, int | float | str):
            out.append(str(item))
        else:
            raise MalformedPolicy(
                f"Condition {operator} values must be strings, numbers or booleans"
            )
    return tuple(out)
