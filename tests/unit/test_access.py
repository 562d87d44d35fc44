"""AccessControl: bucket policy storage with validation, Block Public Access, the per-process
cache and its invalidation, identity policies only for users."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from onshore.domain.errors import (
    AccessDenied,
    MalformedPolicy,
    NoSuchBucket,
    NoSuchBucketPolicy,
    NoSuchPublicAccessBlockConfiguration,
)
from onshore.domain.models import Bucket
from onshore.service.access import AccessControl, PublicAccessBlock
from onshore.service.blocking import Blocking
from onshore.service.credentials import RootCredentials
from onshore.service.identity import ANONYMOUS, Identities, Principal, PrincipalKind
from onshore.service.policy import Decision
from onshore.storage.memory import MemoryMetadataStore

OWNER = "000000000000"
ANN = Principal(
    "AKANN", OWNER, f"arn:onshore:iam::{OWNER}:user/ann", "ann", PrincipalKind.USER, "ann", "ID"
)


class UserPolicies(Identities):
    """Identities whose users carry the identity policies a test gives them."""

    def __init__(self) -> None:
        super().__init__(RootCredentials("AK", "SK", False), partition="onshore")
        self.documents: list[str] = []
        self.asked: list[Principal] = []

    def policies_for(self, principal: Principal) -> Sequence[str]:
        self.asked.append(principal)
        return self.documents


@pytest.fixture
def meta() -> MemoryMetadataStore:
    store = MemoryMetadataStore()
    store.create_bucket(Bucket("b", OWNER, "local-1", datetime.now(UTC)))
    return store


def control(
    meta: MemoryMetadataStore, blocking: Blocking, *, block: bool = False, ttl: float = 60.0
) -> tuple[AccessControl, UserPolicies]:
    ids = UserPolicies()
    access = AccessControl(
        meta, blocking, ids, partition="onshore", block_public_access=block, cache_seconds=ttl
    )
    return access, ids


def public_policy(effect: str = "Allow") -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": {
                "Effect": effect,
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": "arn:onshore:s3:::b/*",
            },
        }
    )


def decide(access: AccessControl, who: Principal) -> Decision:
    return asyncio.run(access.decide(who, "s3:GetObject", "arn:onshore:s3:::b/k", dict, "b"))


def test_policy_roundtrip_and_errors(meta: MemoryMetadataStore, blocking: Blocking) -> None:
    access, _ = control(meta, blocking)

    async def scenario() -> None:
        with pytest.raises(NoSuchBucketPolicy):
            await access.get_policy("b")
        with pytest.raises(MalformedPolicy):
            await access.put_policy("b", "{}")
        with pytest.raises(NoSuchBucket):
            await access.put_policy("missing", public_policy().replace(":::b/", ":::missing/"))
        await access.put_policy("b", public_policy())
        assert await access.get_policy("b") == public_policy()
        assert await access.policy_is_public("b")
        await access.delete_policy("b")
        with pytest.raises(NoSuchBucketPolicy):
            await access.policy_is_public("b")
        with pytest.raises(NoSuchBucket):
            await access.get_policy("missing")

    asyncio.run(scenario())


def test_changes_through_this_process_apply_at_once(
    meta: MemoryMetadataStore, blocking: Blocking
) -> None:
    access, _ = control(meta, blocking, ttl=3600)
    assert decide(access, ANONYMOUS) is Decision.IMPLICIT_DENY  # now cached
    asyncio.run(access.put_policy("b", public_policy()))
    assert decide(access, ANONYMOUS) is Decision.ALLOW
    asyncio.run(
        access.put_public_access_block("b", PublicAccessBlock(restrict_public_buckets=True))
    )
    assert decide(access, ANONYMOUS) is Decision.IMPLICIT_DENY
    asyncio.run(access.delete_public_access_block("b"))
    assert decide(access, ANONYMOUS) is Decision.ALLOW
    asyncio.run(access.delete_policy("b"))
    assert decide(access, ANONYMOUS) is Decision.IMPLICIT_DENY


def test_changes_by_other_processes_apply_after_the_ttl(
    meta: MemoryMetadataStore, blocking: Blocking
) -> None:
    cached, _ = control(meta, blocking, ttl=3600)
    uncached, _ = control(meta, blocking, ttl=0)
    assert decide(cached, ANONYMOUS) is Decision.IMPLICIT_DENY
    meta.put_bucket_config("b", "policy", public_policy())  # written by "another process"
    assert decide(uncached, ANONYMOUS) is Decision.ALLOW
    assert decide(cached, ANONYMOUS) is Decision.IMPLICIT_DENY  # until its entry expires
    cached.invalidate("b")
    assert decide(cached, ANONYMOUS) is Decision.ALLOW


def test_deployment_block_public_access(meta: MemoryMetadataStore, blocking: Blocking) -> None:
    access, _ = control(meta, blocking, block=True)
    with pytest.raises(AccessDenied):
        asyncio.run(access.put_policy("b", public_policy()))
    # stored anyway (by an operator with the block off): the public grant is ignored
    meta.put_bucket_config("b", "policy", public_policy())
    assert decide(access, ANONYMOUS) is Decision.IMPLICIT_DENY
    # a public Deny is not a grant: it can be stored
    asyncio.run(access.put_policy("b", public_policy("Deny")))


def test_public_access_block_storage(meta: MemoryMetadataStore, blocking: Blocking) -> None:
    access, _ = control(meta, blocking)

    async def scenario() -> None:
        with pytest.raises(NoSuchPublicAccessBlockConfiguration):
            await access.get_public_access_block("b")
        block = PublicAccessBlock(block_public_policy=True)
        await access.put_public_access_block("b", block)
        assert await access.get_public_access_block("b") == block
        with pytest.raises(AccessDenied):
            await access.put_policy("b", public_policy())
        with pytest.raises(NoSuchBucket):
            await access.put_public_access_block("missing", block)

    asyncio.run(scenario())


def test_identity_policies_are_asked_for_users_only(
    meta: MemoryMetadataStore, blocking: Blocking
) -> None:
    access, ids = control(meta, blocking)
    assert decide(access, ANN) is Decision.IMPLICIT_DENY
    ids.documents = [
        json.dumps({"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}})
    ]
    assert decide(access, ANN) is Decision.ALLOW
    assert decide(access, ANONYMOUS) is Decision.IMPLICIT_DENY
    assert ids.asked == [ANN, ANN]


ROOT = Principal("AK", OWNER, f"arn:onshore:iam::{OWNER}:root", "root", PrincipalKind.ROOT)


def test_a_stored_policy_that_no_longer_parses_fails_closed(
    meta: MemoryMetadataStore, blocking: Blocking
) -> None:
    access, ids = control(meta, blocking)
    assert decide(access, ROOT) is Decision.ALLOW
    meta.put_bucket_config("b", "policy", public_policy().replace("arn:onshore:", "arn:other:"))
    access.invalidate("b")  # written behind this process's back
    assert decide(access, ANONYMOUS) is Decision.EXPLICIT_DENY
    assert decide(access, ROOT) is Decision.EXPLICIT_DENY
    # ... but the owner can still replace it
    replace = access.decide(ROOT, "s3:PutBucketPolicy", "arn:onshore:s3:::b", dict, "b")
    assert asyncio.run(replace) is Decision.ALLOW
    ids.documents = [
        '{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "arn:x:s3:::b"}}'
    ]
    meta.put_bucket_config("b", "policy", None)
    access.invalidate("b")
    assert decide(access, ANN) is Decision.EXPLICIT_DENY
