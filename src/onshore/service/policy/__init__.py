"""The AWS policy language: parse, validate and evaluate bucket and identity policies.

Pure: no I/O. :func:`parse_policy` turns a JSON document into a :class:`Policy` (or raises
``MalformedPolicy`` saying what is wrong); :func:`evaluate` decides one request. See
``docs/iam.md`` for the language as onshore supports it.
"""

from onshore.service.policy.document import (
    Condition,
    Effect,
    Policy,
    PolicyKind,
    Principals,
    SetOperator,
    Statement,
)
from onshore.service.policy.evaluate import Decision, evaluate
from onshore.service.policy.parse import (
    BUCKET_POLICY_MAX_BYTES,
    IDENTITY_POLICY_MAX_CHARS,
    parse_policy,
)
from onshore.service.policy.public import is_public

__all__ = [
    "BUCKET_POLICY_MAX_BYTES",
    "IDENTITY_POLICY_MAX_CHARS",
    "Condition",
    "Decision",
    "Effect",
    "Policy",
    "PolicyKind",
    "Principals",
    "SetOperator",
    "Statement",
    "evaluate",
    "is_public",
    "parse_policy",
]
