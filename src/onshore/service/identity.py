"""Who is calling: access keys → principals, and the identity policies attached to them.

Three calls sit on every request's path and keep their meaning whatever backs them:
``secret_for`` (SigV4 needs the secret to recompute the signature), ``principal`` and
``policies_for`` (the identity policy documents the policy engine evaluates).

The operator's root credentials (see :mod:`onshore.service.credentials`) are the ``ROOT``
principal. Every other key lives in the IAM store (:mod:`onshore.service.iam`), its secret
wrapped by the root key. Lookups are answered from a small in-process cache whose entries live
``ttl`` seconds (default 5, setting ``iam_cache_seconds``): a change made through this process
(the admin API or the IAM API) is seen at once, because the service clears the cache; a change
made through *another* server process — a key disabled or deleted, a policy replaced — takes
effect here within ``ttl`` seconds. Unknown and inactive keys are cached too, so a flood of
requests with a bad key costs one database read per key per ``ttl``.

SigV4 verification asks for the secret synchronously, so the request paths first call
:meth:`Identities.warm` on a worker thread when :meth:`Identities.is_cached` says the claimed key
is not cached: the database read (one primary-key seek), the unwrap and the user's policy
documents are then loaded off the event loop, and the synchronous calls are served from memory.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from onshore.domain.iam import KeyStatus
from onshore.service.credentials import ROOT_ACCOUNT_ID, RootCredentials
from onshore.service.rootkey import KeyWrapper, UnwrapError
from onshore.storage.iam_port import IamStore

_MAX_ENTRIES = 10_000
log = logging.getLogger("onshore.identity")


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
    ``arn:<partition>:iam::<account>:root`` (the operator's root and a tenant's admin user) or
    ``...:user/<name>``; ``user_id`` is the stable unique id (``aws:userid``); ``access_key`` is
    empty for anonymous requests."""

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


@dataclass(frozen=True, slots=True)
class _Entry:
    expires: float
    secret: str | None = None  # None: unknown or inactive key
    principal: Principal | None = None


class Identities:
    def __init__(
        self,
        root: RootCredentials,
        *,
        partition: str,
        store: IamStore | None = None,
        wrapper: KeyWrapper | None = None,
        ttl: float = 5.0,
    ) -> None:
        self._root = root
        self._partition = partition
        self._store = store
        self._wrapper = wrapper
        self._ttl = ttl
        self._keys: dict[str, _Entry] = {}
        self._policies: dict[str, tuple[float, Sequence[str]]] = {}
        self._lock = threading.Lock()
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
        return self._entry(access_key).secret

    def principal(self, access_key: str) -> Principal | None:
        if access_key == self._root.access_key:
            return self._root_principal
        return self._entry(access_key).principal

    def policies_for(self, principal: Principal) -> Sequence[str]:
        """The identity policy documents (JSON text) attached to ``principal``'s user."""
        if self._store is None or principal.kind is not PrincipalKind.USER:
            return ()
        now = time.monotonic()
        cached = self._policies.get(principal.user_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        documents = tuple(self._store.policies_of(principal.user_id))
        with self._lock:
            if len(self._policies) >= _MAX_ENTRIES:
                self._policies.clear()
            self._policies[principal.user_id] = (now + self._ttl, documents)
        return documents

    def is_cached(self, access_key: str) -> bool:
        """Whether ``secret_for``/``principal`` can answer without reading the store."""
        if self._store is None or access_key == self._root.access_key:
            return True
        cached = self._keys.get(access_key)
        return cached is not None and cached.expires > time.monotonic()

    def warm(self, access_key: str) -> None:
        """Load the key (and its user's policies) into the cache; blocking, for a worker thread."""
        principal = self._entry(access_key).principal
        if principal is not None:
            self.policies_for(principal)

    def clear(self) -> None:
        """Forget every cached key and policy (after a change made through this process)."""
        with self._lock:
            self._keys.clear()
            self._policies.clear()

    def _entry(self, access_key: str) -> _Entry:
        now = time.monotonic()
        cached = self._keys.get(access_key)
        if cached is not None and cached.expires > now:
            return cached
        entry = self._load(access_key, now + self._ttl)
        with self._lock:
            if len(self._keys) >= _MAX_ENTRIES:
                self._keys.clear()
            self._keys[access_key] = entry
        return entry

    def _load(self, access_key: str, expires: float) -> _Entry:
        if self._store is None or self._wrapper is None:
            return _Entry(expires)
        record = self._store.get_key(access_key)
        if record is None or record.key.status is not KeyStatus.ACTIVE:
            return _Entry(expires)
        try:
            secret = self._wrapper.unwrap(record.wrapped_secret, context=access_key.encode())
        except UnwrapError as error:  # sealed by another root key, or tampered with: unusable
            log.warning("access key %s cannot be used: its secret does not unwrap (%s)",
                        access_key, error)  # fmt: skip
            return _Entry(expires)
        user = record.user
        kind = PrincipalKind.TENANT_ADMIN if user.is_admin else PrincipalKind.USER
        resource = "root" if user.is_admin else f"user/{user.name}"
        principal = Principal(
            access_key=access_key,
            account_id=user.account_id,
            arn=f"arn:{self._partition}:iam::{user.account_id}:{resource}",
            display_name=user.name,
            kind=kind,
            user_name=user.name,
            user_id=user.user_id,
        )
        return _Entry(expires, secret.decode(), principal)
