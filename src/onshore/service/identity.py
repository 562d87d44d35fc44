"""Who is calling: access keys → principals.

Today there is one principal, the operator's root (see :mod:`onshore.service.credentials`);
tenants, users and their keys arrive with the IAM work and plug in behind the same two calls:
``secret_for`` (SigV4 needs the secret to recompute the signature) and ``principal``.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from onshore.service.credentials import ROOT_ACCOUNT_ID, RootCredentials


class PrincipalKind(str, Enum):
    """Who a request acts as. ``ROOT`` is the operator's root (account 000000000000);
    ``TENANT_ADMIN`` the admin user of a tenant, with full rights over the tenant's own
    resources (as an AWS account's root user); ``USER`` an IAM user, allowed only what its
    identity policies and the resource policies grant; ``ANONYMOUS`` an unsigned request,
    allowed only what a bucket policy grants to ``"*"``."""

    ROOT = "root"
    TENANT_ADMIN = "tenant-admin"
    USER = "user"
    ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller. ``account_id`` is the 12-digit tenant (account) id; ``arn`` is
    ``arn:<partition>:iam::<account>:root`` or ``...:user/<name>``; ``user_id`` is the stable
    unique id (``aws:userid``); ``access_key`` is empty for anonymous requests."""

    access_key: str
    account_id: str
    arn: str
    display_name: str
    kind: PrincipalKind = PrincipalKind.USER
    user_name: str = ""
    user_id: str = ""

    @property
    def is_root(self) -> bool:
        return self.kind is PrincipalKind.ROOT

    @property
    def is_anonymous(self) -> bool:
        return self.kind is PrincipalKind.ANONYMOUS


ANONYMOUS = Principal(
    access_key="", account_id="", arn="*", display_name="anonymous", kind=PrincipalKind.ANONYMOUS
)


class Identities:
    def __init__(self, root: RootCredentials, *, partition: str) -> None:
        self._root = root
        self._root_principal = Principal(
            access_key=root.access_key,
            account_id=ROOT_ACCOUNT_ID,
            arn=f"arn:{partition}:iam::{ROOT_ACCOUNT_ID}:root",
            display_name="root",
            kind=PrincipalKind.ROOT,
            user_id=ROOT_ACCOUNT_ID,
        )

    def secret_for(self, access_key: str) -> str | None:
        if hmac.compare_digest(access_key.encode(), self._root.access_key.encode()):
            return self._root.secret_key
        return None

    def principal(self, access_key: str) -> Principal | None:
        if access_key == self._root.access_key:
            return self._root_principal
        return None

    def policies_for(self, principal: Principal) -> Sequence[str]:
        """The identity policy documents (JSON text) attached to ``principal``'s user."""
        return ()
