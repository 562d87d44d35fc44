"""The IAM seam: ``IamStore`` holds tenants, users, access keys, inline policies and quotas.

Contracts (``tests/contract/test_iam_store.py`` checks them):

* **Atomicity.** Each write method is one durable transaction, like ``MetadataStore`` writes;
  checks that span rows (name uniqueness, at most ``MAX_KEYS_PER_USER`` keys per user, "a
  tenant with buckets cannot be deleted") run inside that transaction.
* **Errors.** Methods raise :mod:`onshore.domain.iam` errors: ``NoSuchEntity`` for a missing
  tenant, user, key or policy; ``EntityAlreadyExists``; ``LimitExceeded``; ``DeleteConflict``.
* **Secrets.** The store receives and returns secrets only wrapped (by the root key, with the
  access key id as context); it never sees plain text.
* **Names.** Tenant names are unique in the deployment; user names are unique per tenant,
  compared case-insensitively. Users are addressed by (account id, name).
* **Usage** is the bucket owner's stored bytes (versions and uploaded parts), objects (versions
  that are not delete markers) and buckets, maintained in the transactions of the metadata writes
  themselves, so reading it costs one seek.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from onshore.domain.iam import AccessKey, KeyRecord, KeyStatus, Quota, Tenant, Usage, User


class IamStore(Protocol):
    # --- tenants --------------------------------------------------------------------------------
    def create_tenant(self, tenant: Tenant, admin: User) -> None:
        """Create the tenant and its admin user. EntityAlreadyExists if the name or id is
        taken."""

    def get_tenant(self, ref: str) -> Tenant | None:
        """By account id (12 digits) or by name."""

    def list_tenants(self) -> list[Tenant]:
        """All tenants, by name."""

    def delete_tenant(self, account_id: str) -> None:
        """Delete the tenant with its users, keys, policies and quota. OffboardingError (409
        ``OffboardingConflict``) once an offboarding was requested for it (in notice, executing
        or offboarded: the row is the tombstone), checked in the same transaction;
        DeleteConflict while it owns buckets; NoSuchEntity if missing."""

    # --- users ----------------------------------------------------------------------------------
    def create_user(self, user: User) -> None:
        """NoSuchEntity (tenant), EntityAlreadyExists (name)."""

    def get_user(self, account_id: str, name: str) -> User | None: ...

    def list_users(self, account_id: str) -> list[User]:
        """The tenant's users by name. NoSuchEntity if the tenant is missing."""

    def delete_user(self, account_id: str, name: str) -> None:
        """DeleteConflict while the user has access keys or policies, or is the tenant's admin
        user."""

    # --- access keys ----------------------------------------------------------------------------
    def create_key(self, key: AccessKey, wrapped_secret: bytes) -> None:
        """NoSuchEntity (user), EntityAlreadyExists (key id), LimitExceeded (keys per user)."""

    def get_key(self, access_key: str) -> KeyRecord | None:
        """The key with its user and wrapped secret (whatever its status)."""

    def list_keys(self, account_id: str, user_name: str) -> list[AccessKey]:
        """NoSuchEntity if the user is missing."""

    def set_key_status(self, account_id: str, access_key: str, status: KeyStatus) -> None:
        """NoSuchEntity unless the key exists in that tenant."""

    def delete_key(self, account_id: str, access_key: str) -> None:
        """NoSuchEntity unless the key exists in that tenant."""

    # --- inline user policies -------------------------------------------------------------------
    def put_policy(self, account_id: str, user_name: str, name: str, document: str) -> None:
        """Create or replace. NoSuchEntity if the user is missing."""

    def get_policy(self, account_id: str, user_name: str, name: str) -> str | None: ...

    def list_policies(self, account_id: str, user_name: str) -> list[str]:
        """Policy names, sorted. NoSuchEntity if the user is missing."""

    def delete_policy(self, account_id: str, user_name: str, name: str) -> None:
        """NoSuchEntity if the user or the policy is missing."""

    def policies_of(self, user_id: str) -> Sequence[str]:
        """The documents attached to the user with this id (hot path: one index range)."""

    # --- quotas and usage -----------------------------------------------------------------------
    def set_quota(self, account_id: str, quota: Quota) -> None:
        """NoSuchEntity if the tenant is missing."""

    def get_quota(self, account_id: str) -> Quota:
        """Unlimited when none was set."""

    def usage(self, account_id: str) -> Usage: ...
