"""Access control for buckets: the bucket policy and Block Public Access settings, stored as
bucket sub-resources, cached, and applied to each request's decision; with them the bucket's
object ownership and ACL (:mod:`onshore.domain.acl`), consulted only when the bucket allows
ACLs and the policies alone would deny — then an object action also reads the object
version's ACL (one indexed SQLite read).

What a decision needs about a bucket — its owner, its parsed policy, its Block Public Access
flags — is read in one blocking call and cached per process for ``policy_cache_seconds``
(default 1 s). Changes made through this process invalidate its cache at once; other worker
processes sharing the database see them within that time, as AWS's own bucket policies are
eventually consistent.

Block Public Access (https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html):
``BlockPublicPolicy`` refuses to store a public policy (AccessDenied); ``RestrictPublicBuckets``
ignores the public grants of a stored one. The deployment-wide setting ``block_public_access``
(default on) turns all four flags on for every bucket, as an AWS account-level block does; a
bucket's own configuration can only add to it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from onshore.domain.acl import (
    BUCKET_ACTIONS,
    OBJECT_ACTIONS,
    Acl,
    GrantReach,
    Ownership,
    canned,
)
from onshore.domain.errors import (
    AccessDenied,
    MalformedPolicy,
    NoSuchBucket,
    NoSuchBucketPolicy,
    NoSuchPublicAccessBlockConfiguration,
)
from onshore.service.blocking import Blocking
from onshore.service.identity import Identities, Principal, PrincipalKind
from onshore.service.policy import (
    Decision,
    Effect,
    Policy,
    PolicyKind,
    Principals,
    Statement,
    evaluate,
    is_public,
    parse_policy,
)
from onshore.service.policy.evaluate import Reach
from onshore.service.policy.patterns import Context
from onshore.storage.ports import MetadataStore

POLICY = "policy"
ACL = "acl"
OWNERSHIP = "ownership"
PUBLIC_ACCESS_BLOCK = "public-access-block"
log = logging.getLogger("onshore.access")
PAB_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


#: What a stored policy that no longer parses is replaced with: deny everything to everyone.
FAIL_CLOSED = Policy(
    "2012-10-17",
    (
        Statement(
            sid="StoredPolicyNoLongerValid",
            effect=Effect.DENY,
            actions=("*",),
            not_action=False,
            resources=("*",),
            not_resource=False,
            principals=Principals(anyone=True),
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class PublicAccessBlock:
    block_public_acls: bool = False
    ignore_public_acls: bool = False
    block_public_policy: bool = False
    restrict_public_buckets: bool = False

    @classmethod
    def all_on(cls) -> PublicAccessBlock:
        return cls(True, True, True, True)

    def flags(self) -> dict[str, bool]:
        return dict(
            zip(
                PAB_FLAGS,
                (
                    self.block_public_acls,
                    self.ignore_public_acls,
                    self.block_public_policy,
                    self.restrict_public_buckets,
                ),
                strict=True,
            )
        )

    def merged(self, other: PublicAccessBlock) -> PublicAccessBlock:
        return PublicAccessBlock(
            self.block_public_acls or other.block_public_acls,
            self.ignore_public_acls or other.ignore_public_acls,
            self.block_public_policy or other.block_public_policy,
            self.restrict_public_buckets or other.restrict_public_buckets,
        )

    @classmethod
    def from_json(cls, text: str) -> PublicAccessBlock:
        raw = json.loads(text)
        return cls(*(bool(raw.get(name, False)) for name in PAB_FLAGS))


@dataclass(frozen=True, slots=True)
class BucketAccess:
    """What authorization needs to know about one existing bucket. ``block`` is the Block
    Public Access in force: the bucket's own flags merged with the deployment's."""

    owner: str
    policy: Policy | None
    block: PublicAccessBlock
    ownership: Ownership = Ownership.BUCKET_OWNER_ENFORCED
    acl: Acl | None = None  # the stored bucket ACL (None: the owner-only default)


class AccessControl:
    def __init__(
        self,
        meta: MetadataStore,
        blocking: Blocking,
        identities: Identities,
        *,
        partition: str,
        block_public_access: bool,
        cache_seconds: float,
    ) -> None:
        self.meta = meta
        self.blocking = blocking
        self.identities = identities
        self.partition = partition
        self.deployment_block = (
            PublicAccessBlock.all_on() if block_public_access else PublicAccessBlock()
        )
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, BucketAccess]] = {}

    # --- decisions ------------------------------------------------------------------------------
    async def bucket(self, name: str) -> BucketAccess | None:
        """The bucket's access facts (None if it does not exist), from the cache if fresh."""
        cached = self._cache.get(name)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        found = await self.blocking(self._load, name)
        if found is None:
            self._cache.pop(name, None)
        else:  # kept even with the cache off (stale at once): owner_of reads it
            if len(self._cache) > 10000:
                self._cache.clear()
            self._cache[name] = (now + self.cache_seconds, found)
        return found

    def _load(self, name: str) -> BucketAccess | None:
        bucket = self.meta.get_bucket(name)
        if bucket is None:
            return None
        text = self.meta.get_bucket_config(name, POLICY)
        policy = None if text is None else self._stored_policy(name, text)
        pab_text = self.meta.get_bucket_config(name, PUBLIC_ACCESS_BLOCK)
        pab = PublicAccessBlock() if pab_text is None else PublicAccessBlock.from_json(pab_text)
        ownership_text = self.meta.get_bucket_config(name, OWNERSHIP)
        ownership = Ownership.stored(ownership_text)
        acl_text = self.meta.get_bucket_config(name, ACL) if ownership.acls_enabled else None
        acl = None if acl_text is None else Acl.from_json(acl_text)
        block = self.deployment_block.merged(pab)
        return BucketAccess(bucket.owner_id, policy, block, ownership, acl)

    def _stored_policy(self, name: str, text: str) -> Policy:
        try:
            return _parse(text, PolicyKind.BUCKET, self.partition, name)
        except MalformedPolicy as error:
            # Valid when stored, invalid now (the partition setting changed). Ignoring it would
            # drop its Deny statements, so fail closed: everything on the bucket is denied but
            # the owner's right to replace the policy.
            log.warning(
                "bucket %s: stored policy no longer valid, denying: %s", name, error.message
            )
            return FAIL_CLOSED

    def invalidate(self, name: str) -> None:
        self._cache.pop(name, None)

    def owner_of(self, name: str) -> str | None:
        """The account that owns bucket ``name``, as the decision just made about it left it in
        the cache (no I/O, no coroutine; :meth:`bucket` keeps what it loads even with the cache
        off); None if it does not exist or no decision looked it up."""
        cached = self._cache.get(name)
        return None if cached is None else cached[1].owner

    async def decide(
        self,
        principal: Principal,
        action: str,
        resource: str,
        context: Callable[[], Context],
        bucket: str | None,
        *,
        use_bucket_policy: bool = True,
        key: str | None = None,
        version_id: str | None = None,
    ) -> Decision:
        """One decision. ``bucket`` None: a service-level action (ListBuckets). ``context``
        builds the request's condition keys, only if some policy could look at them. ``key``
        and ``version_id`` name the object whose ACL may count (when the bucket allows ACLs
        and no policy decided)."""
        access: BucketAccess | None = None
        if bucket is not None and use_bucket_policy:
            cached = self._cache.get(bucket)
            if cached is not None and cached[0] > time.monotonic():
                access = cached[1]  # the common case, without a coroutine round trip
            else:
                access = await self.bucket(bucket)
        identity: Sequence[Policy] = ()
        if principal.kind is PrincipalKind.USER:
            # Only users have identity policies that count: the root and tenant admins act as
            # their account's root user. The lookup may do I/O, so it runs off the event loop.
            identity = await self.blocking(self.identity_policies, principal)
        needs_context = bool(identity) or (access is not None and access.policy is not None)
        conditions = context() if needs_context else {}
        decision = evaluate(
            principal=principal,
            action=action,
            resource=resource,
            context=conditions,
            identity=identity,
            bucket_policy=access.policy if access else None,
            owner=access.owner if access else None,
            restrict_public=access.block.restrict_public_buckets if access else False,
        )
        if decision is not Decision.IMPLICIT_DENY or access is None:
            return decision
        if not access.ownership.acls_enabled:
            return decision
        reach = await self._acl_reach(access, principal, action, bucket, key, version_id)
        if reach is Reach.NONE:
            return decision
        return evaluate(
            principal=principal,
            action=action,
            resource=resource,
            context=conditions,
            identity=identity,
            bucket_policy=access.policy,
            owner=access.owner,
            restrict_public=access.block.restrict_public_buckets,
            acl_reach=reach,
        )

    async def _acl_reach(
        self,
        access: BucketAccess,
        principal: Principal,
        action: str,
        bucket: str | None,
        key: str | None,
        version_id: str | None,
    ) -> Reach:
        """How the bucket's or the object's ACL reaches ``principal`` for ``action``."""
        lowered = action.lower()
        if lowered in BUCKET_ACTIONS:
            acl = access.acl or canned("private", access.owner)
            wanted = BUCKET_ACTIONS[lowered]
        elif lowered in OBJECT_ACTIONS and bucket is not None and key is not None:
            found = await self.blocking(self.meta.get_object_acl, bucket, key, version_id)
            if found is None:
                return Reach.NONE
            acl = Acl.from_json(found)
            wanted = OBJECT_ACTIONS[lowered]
        else:
            return Reach.NONE
        anonymous = principal.is_anonymous
        reach = acl.grants_to(
            None if anonymous else principal.account_id,
            not anonymous,
            wanted,
            access.block.ignore_public_acls,
        )
        return {
            GrantReach.NONE: Reach.NONE,
            GrantReach.ACCOUNT: Reach.ACCOUNT,
            GrantReach.GROUP: Reach.DIRECT,
        }[reach]

    def identity_policies(self, principal: Principal) -> tuple[Policy, ...]:
        if principal.is_anonymous:
            return ()
        try:
            return tuple(
                _parse(text, PolicyKind.IDENTITY, self.partition, None)
                for text in self.identities.policies_for(principal)
            )
        except MalformedPolicy as error:
            log.warning("%s: identity policy no longer valid, denying: %s", principal.arn, error)
            return (FAIL_CLOSED,)

    # --- bucket policy --------------------------------------------------------------------------
    async def put_policy(self, bucket: str, text: str) -> None:
        """Validate and store a bucket policy. MalformedPolicy if invalid; AccessDenied if it
        is public while BlockPublicPolicy is on."""
        policy = parse_policy(text, kind=PolicyKind.BUCKET, partition=self.partition, bucket=bucket)
        access = await self.bucket(bucket)
        blocked = access is not None and access.block.block_public_policy
        if blocked and is_public(policy):
            raise AccessDenied(
                "Access Denied: Block Public Access (BlockPublicPolicy) forbids a public "
                "bucket policy"
            )
        await self.blocking(self.meta.put_bucket_config, bucket, POLICY, text)
        self.invalidate(bucket)

    async def get_policy(self, bucket: str) -> str:
        text = await self.blocking(self.meta.get_bucket_config, bucket, POLICY)
        if text is None:
            await self._require_bucket(bucket)
            raise NoSuchBucketPolicy(BucketName=bucket)
        return text

    async def delete_policy(self, bucket: str) -> None:
        """Remove the policy (NoSuchBucket if the bucket is missing; no error if it has none)."""
        await self.blocking(self.meta.put_bucket_config, bucket, POLICY, None)
        self.invalidate(bucket)

    async def policy_is_public(self, bucket: str) -> bool:
        text = await self.get_policy(bucket)
        return is_public(
            parse_policy(text, kind=PolicyKind.BUCKET, partition=self.partition, bucket=bucket)
        )

    # --- Block Public Access --------------------------------------------------------------------
    async def put_public_access_block(self, bucket: str, block: PublicAccessBlock) -> None:
        document = json.dumps(block.flags())
        await self.blocking(self.meta.put_bucket_config, bucket, PUBLIC_ACCESS_BLOCK, document)
        self.invalidate(bucket)

    async def get_public_access_block(self, bucket: str) -> PublicAccessBlock:
        text = await self.blocking(self.meta.get_bucket_config, bucket, PUBLIC_ACCESS_BLOCK)
        if text is None:
            await self._require_bucket(bucket)
            raise NoSuchPublicAccessBlockConfiguration(BucketName=bucket)
        return PublicAccessBlock.from_json(text)

    async def delete_public_access_block(self, bucket: str) -> None:
        await self.blocking(self.meta.put_bucket_config, bucket, PUBLIC_ACCESS_BLOCK, None)
        self.invalidate(bucket)

    async def _require_bucket(self, bucket: str) -> None:
        if await self.blocking(self.meta.get_bucket, bucket) is None:
            raise NoSuchBucket(BucketName=bucket)


@lru_cache(maxsize=1024)
def _parse(text: str, kind: PolicyKind, partition: str, bucket: str | None) -> Policy:
    return parse_policy(text, kind=kind, partition=partition, bucket=bucket)
