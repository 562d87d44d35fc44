"""A parsed policy document: what each element of the AWS policy language means.

A policy is a list of statements. Each statement says *who* (``Principal`` /
``NotPrincipal``, bucket policies only), *may or may not* (``Effect``), *do what*
(``Action`` / ``NotAction``), *to what* (``Resource`` / ``NotResource``), *when*
(``Condition``). A statement *applies* to a request when every one of those parts matches;
the evaluator (:mod:`.evaluate`) then combines the applying statements: an explicit Deny
wins, otherwise an Allow, otherwise the request is implicitly denied.

The ``Not*`` forms invert the match: ``NotAction: s3:DeleteObject`` applies to every action
except DeleteObject. Everything here is immutable and pure data; parsing and validation live in
:mod:`.parse`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class PolicyKind(str, Enum):
    """A *resource* policy is attached to a bucket and names principals; an *identity* policy is
    attached to a user and must not (the user is the principal)."""

    BUCKET = "bucket"
    IDENTITY = "identity"


class Effect(str, Enum):
    ALLOW = "Allow"
    DENY = "Deny"


class SetOperator(str, Enum):
    """How a condition treats a multi-valued key (``aws:TagKeys``...): ``NONE`` (plain: any
    request value may match), ``ANY`` (``ForAnyValue:``: at least one request value matches;
    false when the key is absent) and ``ALL`` (``ForAllValues:``: every request value matches;
    true when the key is absent or empty)."""

    NONE = ""
    ANY = "ForAnyValue"
    ALL = "ForAllValues"


@dataclass(frozen=True, slots=True)
class Condition:
    """One ``"Operator": {"key": [values]}`` entry. ``operator`` is the base operator
    (``StringLike``), without ``IfExists`` or a set prefix; ``key`` is lower-cased except for a
    tag name after ``/``; the values are OR-ed."""

    operator: str
    key: str
    values: tuple[str, ...]
    if_exists: bool = False
    set_operator: SetOperator = SetOperator.NONE


@dataclass(frozen=True, slots=True)
class Principals:
    """``Principal`` or ``NotPrincipal``: ``anyone`` for ``"*"`` / ``{"AWS": "*"}``; otherwise
    account ids (an account means every principal of that account, through its own IAM) and
    exact principal ARNs (``arn:P:iam::ACCOUNT:root`` is stored as the account)."""

    anyone: bool = False
    accounts: frozenset[str] = frozenset()
    arns: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Statement:
    sid: str
    effect: Effect
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...]
    not_resource: bool
    conditions: tuple[Condition, ...] = ()
    principals: Principals | None = None
    not_principal: bool = False


@dataclass(frozen=True, slots=True)
class Policy:
    """``version`` is ``2012-10-17`` or ``2008-10-17``; policy variables (``${aws:username}``)
    are substituted only under 2012-10-17, as AWS does — under 2008-10-17 they are literal."""

    version: str
    statements: tuple[Statement, ...]
    id: str = ""
    kind: PolicyKind = PolicyKind.BUCKET

    @property
    def variables(self) -> bool:
        return self.version == "2012-10-17"
