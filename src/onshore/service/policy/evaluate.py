"""Policy evaluation, as AWS evaluates a request to S3.

For a request (principal, action, resource ARN, condition keys) and the policies in force —
the caller's identity policies and the bucket's policy — the answer is:

1. **Explicit deny wins.** Any applying ``Deny`` statement, in either kind of policy, denies.
2. **Allow.** Otherwise the request is allowed if:

   - the caller acts as the *root user of the account that owns the bucket* (the operator's
     root for its own buckets, a tenant's admin for the tenant's buckets): always;
   - the caller is a user *of the owning account*: its identity policy **or** the bucket policy
     allows (the bucket policy naming the user itself, or ``*``; a bucket policy that names only
     the account delegates to the account's own IAM, so then the identity policy must allow);
   - the caller belongs to *another account*: the bucket policy allows it (naming the account,
     the user, or ``*``) **and** its own side allows too — its identity policy for a user,
     implicitly for that account's root or admin;
   - the caller is anonymous: the bucket policy allows ``*``.
3. **Implicit deny** otherwise.

One exception, as on AWS: the owning account's root (or tenant admin) may always get, put and
delete the bucket policy, so a policy that denies everyone cannot lock the owner out.

ACLs (when the bucket's object ownership allows them, see :mod:`onshore.domain.acl`): a grant
counts as an Allow of a bucket policy would — a grant to ``AllUsers`` / ``AuthenticatedUsers``
like ``"Principal": "*"``, a grant to an account like naming the account — and never beats an
explicit Deny.

Block Public Access's *RestrictPublicBuckets*: when the bucket policy is public
(:func:`~onshore.service.policy.public.is_public`), its Allow statements count only for
principals of the owning account — anonymous and cross-account grants are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from onshore.service.identity import Principal, PrincipalKind
from onshore.service.policy.conditions import holds
from onshore.service.policy.document import Effect, Policy, Principals, Statement
from onshore.service.policy.patterns import Context, matches
from onshore.service.policy.public import is_public

#: What the owning account's root may always do, whatever its bucket policy says — so that a
#: policy denying everyone cannot lock the owner out of fixing it (as on AWS).
_LOCKOUT_PROOF = frozenset({"s3:getbucketpolicy", "s3:putbucketpolicy", "s3:deletebucketpolicy"})


class Decision(str, Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit-deny"
    IMPLICIT_DENY = "implicit-deny"

    @property
    def allowed(self) -> bool:
        return self is Decision.ALLOW


class Reach(int, Enum):
    """How a bucket policy statement's Principal reaches the caller."""

    NONE = 0
    ACCOUNT = 1  # through the caller's account: the account's own IAM must allow too
    DIRECT = 2  # the caller itself, its account's root acting as itself, or "*"


def applies(
    statement: Statement, action: str, resource: str, context: Context, variables: bool
) -> bool:
    """Whether ``statement`` covers this action, resource and conditions (not the principal)."""
    hit = any(matches(a, action, ignore_case=True) for a in statement.actions)
    if hit == statement.not_action:
        return False
    ctx = context if variables else None
    hit = any(matches(r, resource, ctx) for r in statement.resources)
    if hit == statement.not_resource:
        return False
    return all(holds(c, context, variables) for c in statement.conditions)


def _reach(principals: Principals, caller: Principal) -> Reach:
    if principals.anyone:
        return Reach.DIRECT
    if caller.kind is PrincipalKind.ANONYMOUS:
        return Reach.NONE
    if caller.arn in principals.arns:
        return Reach.DIRECT
    if caller.account_id in principals.accounts:
        admin = caller.kind in (PrincipalKind.ROOT, PrincipalKind.TENANT_ADMIN)
        return Reach.DIRECT if admin else Reach.ACCOUNT
    return Reach.NONE


def _statement_reach(statement: Statement, caller: Principal) -> Reach:
    assert statement.principals is not None
    found = _reach(statement.principals, caller)
    if statement.not_principal:
        return Reach.NONE if found is not Reach.NONE else Reach.DIRECT
    return found


def evaluate(
    *,
    principal: Principal,
    action: str,
    resource: str,
    context: Context,
    identity: Sequence[Policy] = (),
    bucket_policy: Policy | None = None,
    owner: str | None = None,
    restrict_public: bool = False,
    acl_reach: Reach = Reach.NONE,
) -> Decision:
    """The decision for one (action, resource). ``owner`` is the bucket owner's account id, or
    None when the resource does not exist yet (CreateBucket, ListBuckets, a missing bucket):
    then the caller's own account is taken as the owner, so a caller with the right permission
    learns "no such bucket" and nobody else learns anything.

    ``acl_reach``: how an ACL grant reaches the caller (when the bucket allows ACLs): it counts
    as a bucket policy Allow of that reach would — after every Deny has been looked at."""
    anonymous = principal.kind is PrincipalKind.ANONYMOUS
    root_like = principal.kind in (PrincipalKind.ROOT, PrincipalKind.TENANT_ADMIN)
    if root_like and principal.account_id == owner and action.lower() in _LOCKOUT_PROOF:
        return Decision.ALLOW
    identity_allow = False
    for policy in () if anonymous else identity:
        for statement in policy.statements:
            if applies(statement, action, resource, context, policy.variables):
                if statement.effect is Effect.DENY:
                    return Decision.EXPLICIT_DENY
                identity_allow = True
    if owner is None:
        owner = None if anonymous else principal.account_id
    resource_reach = Reach.NONE
    if bucket_policy is not None:
        ignore_allows = (
            restrict_public and principal.account_id != owner and is_public(bucket_policy)
        )
        for statement in bucket_policy.statements:
            found = _statement_reach(statement, principal)
            if found is Reach.NONE:
                continue
            if statement.effect is Effect.ALLOW and (ignore_allows or found <= resource_reach):
                continue
            if not applies(statement, action, resource, context, bucket_policy.variables):
                continue
            if statement.effect is Effect.DENY:
                return Decision.EXPLICIT_DENY
            resource_reach = found
    resource_reach = max(resource_reach, acl_reach)
    if anonymous:
        allowed = resource_reach is Reach.DIRECT
    elif principal.account_id == owner:
        allowed = root_like or identity_allow or resource_reach is Reach.DIRECT
    else:
        allowed = resource_reach is not Reach.NONE and (root_like or identity_allow)
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY
