"""Condition operators: does a request's value for a key satisfy a policy's values?

Every operator is a *positive* test (``StringEquals``, ``NumericLessThan``, ``IpAddress``...)
or the negation of one (``StringNotEquals``, ``NotIpAddress``...). The rules, as AWS applies
them:

- The policy's values for a key are OR-ed: the condition holds if any one matches. For a
  negated operator, it holds if *none* matches.
- A key the request does not carry: the condition is false for a positive operator and true
  for a negated one. ``...IfExists`` makes it true either way; ``Null`` tests exactly that
  (``"true"``: the key is absent).
- ``ForAnyValue:`` — at least one of the request's values passes (false if it has none);
  ``ForAllValues:`` — every one of them passes (true if it has none).
- Values that do not parse as the operator's type (a date that is not a date) never match.

Policy values are checked when the policy is stored (:func:`check_value`), so a typo in a
number or a CIDR is a ``MalformedPolicy``, not a condition that silently never matches.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from onshore.service.policy.document import Condition, SetOperator
from onshore.service.policy.patterns import Context, matches, substitute


@dataclass(frozen=True, slots=True)
class Operator:
    family: str  # string, numeric, date, bool, binary, ip, arn, null
    negated: bool
    test: Callable[[str, str, Context | None], bool]  # (request value, policy value, variables)


def _number(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def parse_date(text: str) -> datetime | None:
    """ISO 8601 (``2026-01-01``, ``2026-01-01T00:00:00Z``) or seconds since the epoch."""
    text = text.strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text), UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def _date_number(text: str) -> Decimal | None:
    moment = parse_date(text)
    return None if moment is None else Decimal(str(moment.timestamp()))


def _compare(
    parse: Callable[[str], Decimal | None], check: Callable[[Decimal, Decimal], bool]
) -> Callable[[str, str, Context | None], bool]:
    def test(value: str, wanted: str, _: Context | None) -> bool:
        a, b = parse(value), parse(wanted)
        return a is not None and b is not None and check(a, b)

    return test


def _string_equals(value: str, wanted: str, ctx: Context | None) -> bool:
    return substitute(wanted, ctx) == value


def _string_equals_ignore_case(value: str, wanted: str, ctx: Context | None) -> bool:
    resolved = substitute(wanted, ctx)
    return resolved is not None and resolved.casefold() == value.casefold()


def _string_like(value: str, wanted: str, ctx: Context | None) -> bool:
    return matches(wanted, value, ctx)


def _bool(value: str, wanted: str, _: Context | None) -> bool:
    return value.lower() == wanted.lower()


def _binary(value: str, wanted: str, _: Context | None) -> bool:
    try:
        return base64.b64decode(value, validate=True) == base64.b64decode(wanted, validate=True)
    except (binascii.Error, ValueError):
        return False


def _ip(value: str, wanted: str, _: Context | None) -> bool:
    network = _network(wanted)
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack socket's view of an IPv4 client
    return network is not None and address.version == network.version and address in network


def _arn(value: str, wanted: str, ctx: Context | None) -> bool:
    """ARNs match component by component (``arn:partition:service:region:account:resource``),
    each with wildcards; ArnEquals and ArnLike behave the same, as in AWS."""
    got = value.split(":", 5)
    want = wanted.split(":", 5)
    if len(got) != 6 or len(want) != 6:
        return False
    return all(matches(w, g, ctx) for w, g in zip(want, got, strict=True))


_COMPARISONS: dict[str, tuple[Callable[[Decimal, Decimal], bool], bool]] = {
    "Equals": (lambda a, b: a == b, False),
    "NotEquals": (lambda a, b: a == b, True),
    "LessThan": (lambda a, b: a < b, False),
    "LessThanEquals": (lambda a, b: a <= b, False),
    "GreaterThan": (lambda a, b: a > b, False),
    "GreaterThanEquals": (lambda a, b: a >= b, False),
}


def _never(value: str, wanted: str, _: Context | None) -> bool:
    return False


def _table() -> dict[str, Operator]:
    ops: dict[str, Operator] = {
        "StringEquals": Operator("string", False, _string_equals),
        "StringNotEquals": Operator("string", True, _string_equals),
        "StringEqualsIgnoreCase": Operator("string", False, _string_equals_ignore_case),
        "StringNotEqualsIgnoreCase": Operator("string", True, _string_equals_ignore_case),
        "StringLike": Operator("string", False, _string_like),
        "StringNotLike": Operator("string", True, _string_like),
        "Bool": Operator("bool", False, _bool),
        "BinaryEquals": Operator("binary", False, _binary),
        "IpAddress": Operator("ip", False, _ip),
        "NotIpAddress": Operator("ip", True, _ip),
        "ArnEquals": Operator("arn", False, _arn),
        "ArnLike": Operator("arn", False, _arn),
        "ArnNotEquals": Operator("arn", True, _arn),
        "ArnNotLike": Operator("arn", True, _arn),
        "Null": Operator("null", False, _never),
    }
    for suffix, (check, negated) in _COMPARISONS.items():
        ops["Numeric" + suffix] = Operator("numeric", negated, _compare(_number, check))
        ops["Date" + suffix] = Operator("date", negated, _compare(_date_number, check))
    return ops


#: Every base operator, by its name in a policy.
OPERATORS: dict[str, Operator] = _table()


def check_value(operator: str, value: str) -> str | None:
    """Why ``value`` is not a valid policy value for ``operator``, or None if it is."""
    family = OPERATORS[operator].family
    if family == "numeric" and _number(value) is None:
        return f"'{value}' is not a number (condition {operator})"
    if family == "date" and parse_date(value) is None:
        return f"'{value}' is not an ISO 8601 date or epoch time (condition {operator})"
    if family in ("bool", "null") and value.lower() not in ("true", "false"):
        return f"'{value}' is not true or false (condition {operator})"
    if family == "ip" and _network(value) is None:
        return f"'{value}' is not an IP address or CIDR block (condition {operator})"
    if family == "binary":
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return f"'{value}' is not base64 (condition {operator})"
    if family == "arn" and value != "*" and len(value.split(":", 5)) != 6:
        return f"'{value}' is not an ARN (condition {operator})"
    return None


def holds(condition: Condition, context: Context, variables: bool) -> bool:
    """Whether ``condition`` holds for a request whose condition keys are ``context``."""
    present = context.get(condition.key)
    if condition.operator == "Null":
        absent = not present
        return any((v.lower() == "true") == absent for v in condition.values)
    op = OPERATORS[condition.operator]
    ctx = context if variables else None

    def passes(value: str) -> bool:
        hit = any(op.test(value, wanted, ctx) for wanted in condition.values)
        return hit != op.negated

    if not present:
        if condition.if_exists:
            return True
        if condition.set_operator is SetOperator.ALL:
            return True
        if condition.set_operator is SetOperator.ANY:
            return False
        return op.negated
    if condition.set_operator is SetOperator.ALL:
        return all(passes(v) for v in present)
    if op.negated and condition.set_operator is SetOperator.NONE:
        return all(passes(v) for v in present)
    return any(passes(v) for v in present)
