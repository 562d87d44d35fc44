"""IAM use cases: tenants, users, access keys, inline user policies and quotas.

Both operator surfaces (the admin API, for the operator's root) and the IAM query API (for a
tenant's admin, inside its own tenant) call this one service; it is where the rules live:

* a tenant is created with its admin user and that user's first access key;
* a new secret key is generated here, shown once (:class:`NewAccessKey`), and handed to the store
  only wrapped by the root key, with the access key id as the wrapping context (so a wrapped
  secret copied to another key's row does not unwrap);
* an imported key (``access_key`` + ``secret_key`` given, for tenants migrating from another S3
  server) must not collide with any key, including the operator's root key;
* every change drops this process's identity cache at once (other server processes notice
  within the cache TTL, see :mod:`onshore.service.identity`).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import UTC, datetime

from onshore.domain.errors import MalformedPolicy
from onshore.domain.iam import (
    ADMIN_USER,
    AccessKey,
    EntityAlreadyExists,
    KeyStatus,
    MalformedPolicyDocument,
    NewAccessKey,
    NoSuchEntity,
    Quota,
    Tenant,
    Usage,
    User,
    ValidationError,
    check_imported_key,
    check_policy_document,
    check_policy_name,
    check_tenant_name,
    check_user_name,
    new_access_key_id,
    new_account_id,
    new_secret_key,
    new_user_id,
)
from onshore.service.blocking import Blocking
from onshore.service.policy.document import PolicyKind
from onshore.service.policy.parse import parse_policy
from onshore.service.rootkey import KeyWrapper
from onshore.storage.iam_port import IamStore


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class IamService:
    def __init__(
        self,
        store: IamStore,
        wrapper: KeyWrapper,
        blocking: Blocking,
        *,
        partition: str,
        root_access_key: str,
        on_change: Callable[[], None] = lambda: None,
        tenant_gate: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.tenant_gate = tenant_gate  # raises when one more tenant is not allowed
        self.wrapper = wrapper
        self.blocking = blocking
        self.partition = partition
        self.root_access_key = root_access_key
        self.on_change = on_change

    def user_arn(self, user: User) -> str:
        if user.is_admin:
            return f"arn:{self.partition}:iam::{user.account_id}:root"
        return f"arn:{self.partition}:iam::{user.account_id}:user/{user.name}"

    async def _write(self, fn: Callable[[], None]) -> None:
        try:
            await self.blocking(fn)
        finally:
            self.on_change()

    # --- tenants --------------------------------------------------------------------------------
    async def create_tenant(
        self, name: str, *, with_key: bool = True
    ) -> tuple[Tenant, User, NewAccessKey | None]:
        """The tenant, its admin user, and (``with_key``) the admin user's first access key."""
        check_tenant_name(name)
        if self.tenant_gate is not None:  # the license's max_tenants
            await self.blocking(self.tenant_gate)
        for _ in range(5):  # a random 12-digit id collides about never; retry if it does
            tenant = Tenant(account_id=new_account_id(), name=name, created=_now())
            if await self.blocking(self.store.get_tenant, tenant.account_id) is None:
                break
        admin = User(tenant.account_id, ADMIN_USER, new_user_id(), tenant.created, is_admin=True)
        await self._write(lambda: self.store.create_tenant(tenant, admin))
        key = await self.create_key(tenant.account_id, ADMIN_USER) if with_key else None
        return tenant, admin, key

    async def tenant(self, ref: str) -> Tenant:
        found = await self.blocking(self.store.get_tenant, ref)
        if found is None:
            raise NoSuchEntity(f"The tenant {ref} does not exist.")
        return found

    async def list_tenants(self) -> list[Tenant]:
        return await self.blocking(self.store.list_tenants)

    async def delete_tenant(self, account_id: str) -> None:
        await self._write(lambda: self.store.delete_tenant(account_id))

    # --- users ----------------------------------------------------------------------------------
    async def create_user(self, account_id: str, name: str) -> User:
        user = User(account_id, check_user_name(name), new_user_id(), _now())
        await self._write(lambda: self.store.create_user(user))
        return user

    async def user(self, account_id: str, name: str) -> User:
        found = await self.blocking(self.store.get_user, account_id, name)
        if found is None:
            raise NoSuchEntity(f"The user with name {name} cannot be found.")
        return found

    async def list_users(self, account_id: str) -> list[User]:
        return await self.blocking(self.store.list_users, account_id)

    async def delete_user(self, account_id: str, name: str) -> None:
        await self._write(lambda: self.store.delete_user(account_id, name))

    # --- access keys ----------------------------------------------------------------------------
    async def create_key(
        self,
        account_id: str,
        user_name: str,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> NewAccessKey:
        """A new key for the user; with ``access_key`` and ``secret_key``, that pair imported."""
        if (access_key is None) != (secret_key is None):
            raise ValidationError("Import a key with both the access key id and the secret key.")
        if access_key is not None and secret_key is not None:
            check_imported_key(access_key, secret_key)
            if hmac.compare_digest(access_key.encode(), self.root_access_key.encode()):
                raise EntityAlreadyExists(f"The access key {access_key} already exists.")
        user = await self.user(account_id, user_name)
        key = AccessKey(
            access_key=access_key or new_access_key_id(),
            account_id=account_id,
            user_name=user.name,
            status=KeyStatus.ACTIVE,
            created=_now(),
        )
        secret = secret_key or new_secret_key()
        wrapped = self.wrapper.wrap(secret.encode(), context=key.access_key.encode())
        await self._write(lambda: self.store.create_key(key, wrapped))
        return NewAccessKey(key, secret)

    async def key(self, access_key: str) -> AccessKey:
        record = await self.blocking(self.store.get_key, access_key)
        if record is None:
            raise NoSuchEntity(f"The Access Key with id {access_key} cannot be found.")
        return record.key

    async def list_keys(self, account_id: str, user_name: str) -> list[AccessKey]:
        return await self.blocking(self.store.list_keys, account_id, user_name)

    async def set_key_status(self, account_id: str, access_key: str, status: KeyStatus) -> None:
        await self._write(lambda: self.store.set_key_status(account_id, access_key, status))

    async def delete_key(self, account_id: str, access_key: str) -> None:
        await self._write(lambda: self.store.delete_key(account_id, access_key))

    # --- inline user policies -------------------------------------------------------------------
    async def put_policy(self, account_id: str, user_name: str, name: str, document: str) -> None:
        check_policy_name(name)
        check_policy_document(document)
        try:  # the whole policy language, as it will be evaluated
            parse_policy(document, kind=PolicyKind.IDENTITY, partition=self.partition)
        except MalformedPolicy as error:
            raise MalformedPolicyDocument(error.message) from None
        await self._write(lambda: self.store.put_policy(account_id, user_name, name, document))

    async def get_policy(self, account_id: str, user_name: str, name: str) -> str:
        found = await self.blocking(self.store.get_policy, account_id, user_name, name)
        if found is None:
            raise NoSuchEntity(f"The user policy with name {name} cannot be found.")
        return found

    async def list_policies(self, account_id: str, user_name: str) -> list[str]:
        return await self.blocking(self.store.list_policies, account_id, user_name)

    async def delete_policy(self, account_id: str, user_name: str, name: str) -> None:
        await self._write(lambda: self.store.delete_policy(account_id, user_name, name))

    # --- quotas ---------------------------------------------------------------------------------
    async def set_quota(self, account_id: str, quota: Quota) -> None:
        await self._write(lambda: self.store.set_quota(account_id, quota))

    async def quota(self, account_id: str) -> tuple[Quota, Usage]:
        quota = await self.blocking(self.store.get_quota, account_id)
        return quota, await self.blocking(self.store.usage, account_id)
