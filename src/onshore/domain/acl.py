"""Access control lists (ACLs), S3's oldest access mechanism, and object ownership.

An ACL is an owner plus up to 100 *grants*; a grant gives one *grantee* one *permission*:

* grantees: a **canonical user** (in onshore the account id, as the ``Owner`` ID the server
  returns everywhere), or a predefined **group** — ``AllUsers`` (anyone, signed or not),
  ``AuthenticatedUsers`` (any signed caller of any account) and ``LogDelivery``;
* permissions: ``READ``, ``WRITE``, ``READ_ACP``, ``WRITE_ACP``, ``FULL_CONTROL`` (all four).

A bucket's *object ownership* decides whether ACLs count at all: ``BucketOwnerEnforced`` (the
AWS default since 2023, onshore's default) disables them; ``BucketOwnerPreferred`` and
``ObjectWriter`` enable them. A grant to ``AllUsers`` or ``AuthenticatedUsers`` makes the ACL
*public* (what Block Public Access's ``BlockPublicAcls`` / ``IgnorePublicAcls`` act on).

References: https://docs.aws.amazon.com/AmazonS3/latest/userguide/acl-overview.html,
https://docs.aws.amazon.com/AmazonS3/latest/userguide/about-object-ownership.html
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

GROUPS = "http://acs.amazonaws.com/groups/"
ALL_USERS = GROUPS + "global/AllUsers"
AUTHENTICATED_USERS = GROUPS + "global/AuthenticatedUsers"
LOG_DELIVERY = GROUPS + "s3/LogDelivery"
KNOWN_GROUPS = frozenset({ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY})
PUBLIC_GROUPS = frozenset({ALL_USERS, AUTHENTICATED_USERS})
MAX_GRANTS = 100


class Ownership(str, Enum):
    BUCKET_OWNER_ENFORCED = "BucketOwnerEnforced"
    BUCKET_OWNER_PREFERRED = "BucketOwnerPreferred"
    OBJECT_WRITER = "ObjectWriter"

    @property
    def acls_enabled(self) -> bool:
        return self is not Ownership.BUCKET_OWNER_ENFORCED

    @classmethod
    def stored(cls, text: str | None) -> Ownership:
        """The ownership in force for a stored config: none stored means
        ``BucketOwnerEnforced`` (every new bucket's default); :data:`NO_CONTROLS` (the controls
        were deleted) behaves as ``ObjectWriter``, as on AWS."""
        if text is None:
            return cls.BUCKET_OWNER_ENFORCED
        return cls.OBJECT_WRITER if text == NO_CONTROLS else cls(text)


#: The stored ownership config of a bucket whose ownership controls were deleted.
NO_CONTROLS = "none"


class Permission(str, Enum):
    FULL_CONTROL = "FULL_CONTROL"
    READ = "READ"
    WRITE = "WRITE"
    READ_ACP = "READ_ACP"
    WRITE_ACP = "WRITE_ACP"


class GranteeType(str, Enum):
    CANONICAL_USER = "CanonicalUser"
    GROUP = "Group"


@dataclass(frozen=True, slots=True)
class Grant:
    """``value`` is the account id of a canonical user or the URI of a group."""

    type: GranteeType
    value: str
    permission: Permission

    @property
    def is_public(self) -> bool:
        return self.type is GranteeType.GROUP and self.value in PUBLIC_GROUPS


@dataclass(frozen=True, slots=True)
class Acl:
    owner: str
    grants: tuple[Grant, ...]

    @property
    def is_public(self) -> bool:
        return any(grant.is_public for grant in self.grants)

    def to_json(self) -> str:
        return json.dumps(
            {
                "owner": self.owner,
                "grants": [[g.type.value, g.value, g.permission.value] for g in self.grants],
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Acl:
        raw = json.loads(text)
        grants = tuple(
            Grant(GranteeType(kind), value, Permission(permission))
            for kind, value, permission in raw["grants"]
        )
        return cls(str(raw["owner"]), grants)

    def grants_to(
        self, account: str | None, signed: bool, wanted: Permission, ignore_public: bool
    ) -> GrantReach:
        """How this ACL reaches a caller for ``wanted``: through a group (``GROUP``), through
        the caller's account (``ACCOUNT``), or not at all (``NONE``). ``account`` is None for
        an anonymous caller."""
        found = GrantReach.NONE
        for grant in self.grants:
            if grant.permission is not wanted and grant.permission is not Permission.FULL_CONTROL:
                continue
            if grant.type is GranteeType.CANONICAL_USER:
                if account is not None and grant.value == account:
                    found = max(found, GrantReach.ACCOUNT)
            elif ignore_public and grant.is_public:
                continue
            elif grant.value == ALL_USERS or (grant.value == AUTHENTICATED_USERS and signed):
                found = max(found, GrantReach.GROUP)
        return found


class GrantReach(int, Enum):
    NONE = 0
    ACCOUNT = 1  # a grant to the caller's account
    GROUP = 2  # a grant to AllUsers / AuthenticatedUsers that includes the caller


def _owner(owner: str) -> Grant:
    return Grant(GranteeType.CANONICAL_USER, owner, Permission.FULL_CONTROL)


def canned(name: str, owner: str, bucket_owner: str | None = None) -> Acl:
    """The ACL a canned ACL name stands for (``owner``: the resource's owner; ``bucket_owner``:
    for an object, its bucket's owner). The name must be one of :data:`CANNED`."""
    grants = [_owner(owner)]
    if name == "public-read":
        grants.append(Grant(GranteeType.GROUP, ALL_USERS, Permission.READ))
    elif name == "public-read-write":
        grants.append(Grant(GranteeType.GROUP, ALL_USERS, Permission.READ))
        grants.append(Grant(GranteeType.GROUP, ALL_USERS, Permission.WRITE))
    elif name == "authenticated-read":
        grants.append(Grant(GranteeType.GROUP, AUTHENTICATED_USERS, Permission.READ))
    elif name == "log-delivery-write":
        grants.append(Grant(GranteeType.GROUP, LOG_DELIVERY, Permission.WRITE))
        grants.append(Grant(GranteeType.GROUP, LOG_DELIVERY, Permission.READ_ACP))
    elif name.startswith("bucket-owner-") and bucket_owner not in (None, owner):
        assert bucket_owner is not None
        full = name == "bucket-owner-full-control"
        permission = Permission.FULL_CONTROL if full else Permission.READ
        grants.append(Grant(GranteeType.CANONICAL_USER, bucket_owner, permission))
    # private, and aws-exec-read (its extra grant is to Amazon EC2, which onshore has not got)
    return Acl(owner, tuple(grants))


CANNED = frozenset(
    {
        "private",
        "public-read",
        "public-read-write",
        "authenticated-read",
        "aws-exec-read",
        "bucket-owner-read",
        "bucket-owner-full-control",
        "log-delivery-write",
    }
)

#: Which ACL permission grants which S3 action, on a bucket's ACL and on an object's ACL.
#: FULL_CONTROL grants every action of both tables.
BUCKET_ACTIONS: dict[str, Permission] = {
    "s3:listbucket": Permission.READ,
    "s3:listbucketversions": Permission.READ,
    "s3:listbucketmultipartuploads": Permission.READ,
    "s3:putobject": Permission.WRITE,
    "s3:deleteobject": Permission.WRITE,
    "s3:getbucketacl": Permission.READ_ACP,
    "s3:putbucketacl": Permission.WRITE_ACP,
}
OBJECT_ACTIONS: dict[str, Permission] = {
    "s3:getobject": Permission.READ,
    "s3:getobjectversion": Permission.READ,
    "s3:getobjectacl": Permission.READ_ACP,
    "s3:getobjectversionacl": Permission.READ_ACP,
    "s3:putobjectacl": Permission.WRITE_ACP,
    "s3:putobjectversionacl": Permission.WRITE_ACP,
}
