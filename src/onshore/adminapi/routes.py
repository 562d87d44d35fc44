"""The admin API's endpoints: one function each, and ``ROUTES``, the one table that routes
requests and describes them in the OpenAPI document.

Tenants are addressed by account id or by name (``{tenant}``); users by name inside a tenant;
access keys by id alone (ids are unique in the deployment). Creating a tenant also creates its
admin user and that user's first access key; creating any key returns its secret, the only time
it is ever shown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from onshore import __version__
from onshore.adminapi import offboarding
from onshore.adminapi.audit_access import AuditAccess, AuditUnavailable, filters_of
from onshore.domain.iam import (
    AccessKey,
    KeyStatus,
    NewAccessKey,
    Quota,
    Tenant,
    Usage,
    User,
    ValidationError,
    check_quota_value,
)
from onshore.service.iam import IamService
from onshore.service.offboarding import Offboarding
from onshore.service.operators import ALL_ROLES, Role
from onshore.service.support import Record, SupportAccess

JsonObject = dict[str, object]


@dataclass(frozen=True, slots=True)
class Call:
    """A routed request: path parameters and the raw body."""

    params: Mapping[str, str]
    body: bytes
    roles: frozenset[Role] = ALL_ROLES  # the caller's operator roles
    caller: str = ""  # who is calling (access key id), for the records of decisions
    support: SupportAccess | None = None  # the licensor's support access, when licensing is on
    offboarding: Offboarding | None = None  # the offboarding service (adminapi/offboarding.py)
    query: Mapping[str, str] = field(default_factory=dict)
    audit: AuditAccess | None = None  # the audit trail, read-only (the /audit routes)
    account: str | None = None  # the calling tenant's account (tenant_self routes only)

    def json(self) -> Mapping[str, object]:
        if not self.body.strip():
            return {}
        try:
            value = json.loads(self.body)
        except ValueError:
            raise ValidationError("The request body is not valid JSON.") from None
        if not isinstance(value, dict):
            raise ValidationError("The request body must be a JSON object.")
        return value

    def text(self, name: str, *, required: bool = True) -> str | None:
        value = self.json().get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value:
            raise ValidationError(f"'{name}' must be a non-empty string.")
        return value


Result = tuple[int, object]
Handler = Callable[[IamService, Call], Awaitable[Result]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str  # template, e.g. /tenants/{tenant}/users
    handler: Handler
    summary: str
    body: str = ""  # what the request body holds, for the OpenAPI document
    status: int = 200
    role: Role = Role.SYSTEM  # the operator role the endpoint requires
    tenant_self: bool = False  # called by a tenant's admin user about itself, not an operator
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path)
        object.__setattr__(self, "pattern", re.compile(f"^{regex}$"))


# --- JSON shapes --------------------------------------------------------------------------------
def tenant_json(tenant: Tenant) -> JsonObject:
    return {
        "account_id": tenant.account_id,
        "name": tenant.name,
        "created": tenant.created.isoformat(),
    }


def user_json(iam: IamService, user: User) -> JsonObject:
    return {
        "account_id": user.account_id,
        "name": user.name,
        "user_id": user.user_id,
        "arn": iam.user_arn(user),
        "admin": user.is_admin,
        "created": user.created.isoformat(),
    }


def key_json(key: AccessKey) -> JsonObject:
    return {
        "access_key_id": key.access_key,
        "account_id": key.account_id,
        "user_name": key.user_name,
        "status": key.status.value,
        "created": key.created.isoformat(),
    }


def new_key_json(new: NewAccessKey) -> JsonObject:
    return {**key_json(new.key), "secret_access_key": new.secret_key}


def quota_json(quota: Quota, usage: Usage) -> JsonObject:
    return {
        "max_bytes": quota.max_bytes,
        "max_objects": quota.max_objects,
        "max_buckets": quota.max_buckets,
        "usage": {"bytes": usage.bytes, "objects": usage.objects, "buckets": usage.buckets},
    }


# --- handlers -----------------------------------------------------------------------------------
async def _account(iam: IamService, call: Call) -> str:
    return (await iam.tenant(call.params["tenant"])).account_id


async def create_tenant(iam: IamService, call: Call) -> Result:
    """A tenant, its admin user and — when the caller also holds the security role — that
    user's first access key (otherwise a security administrator creates it)."""
    with_key = Role.SECURITY in call.roles
    tenant, admin, key = await iam.create_tenant(str(call.text("name")), with_key=with_key)
    return 201, {
        **tenant_json(tenant),
        "admin_user": user_json(iam, admin),
        "access_key": None if key is None else new_key_json(key),
    }


async def list_tenants(iam: IamService, call: Call) -> Result:
    return 200, {"tenants": [tenant_json(t) for t in await iam.list_tenants()]}


async def get_tenant(iam: IamService, call: Call) -> Result:
    tenant = await iam.tenant(call.params["tenant"])
    quota, usage = await iam.quota(tenant.account_id)
    return 200, {**tenant_json(tenant), "quota": quota_json(quota, usage)}


async def delete_tenant(iam: IamService, call: Call) -> Result:
    await iam.delete_tenant(await _account(iam, call))
    return 204, None


async def create_user(iam: IamService, call: Call) -> Result:
    user = await iam.create_user(await _account(iam, call), str(call.text("name")))
    return 201, user_json(iam, user)


async def list_users(iam: IamService, call: Call) -> Result:
    users = await iam.list_users(await _account(iam, call))
    return 200, {"users": [user_json(iam, u) for u in users]}


async def get_user(iam: IamService, call: Call) -> Result:
    user = await iam.user(await _account(iam, call), call.params["user"])
    return 200, user_json(iam, user)


async def delete_user(iam: IamService, call: Call) -> Result:
    await iam.delete_user(await _account(iam, call), call.params["user"])
    return 204, None


async def create_key(iam: IamService, call: Call) -> Result:
    new = await iam.create_key(
        await _account(iam, call),
        call.params["user"],
        access_key=call.text("access_key_id", required=False),
        secret_key=call.text("secret_access_key", required=False),
    )
    return 201, new_key_json(new)


async def list_keys(iam: IamService, call: Call) -> Result:
    keys = await iam.list_keys(await _account(iam, call), call.params["user"])
    return 200, {"access_keys": [key_json(k) for k in keys]}


async def get_key(iam: IamService, call: Call) -> Result:
    return 200, key_json(await iam.key(call.params["key"]))


async def update_key(iam: IamService, call: Call) -> Result:
    status = call.text("status")
    if status not in (KeyStatus.ACTIVE.value, KeyStatus.INACTIVE.value):
        raise ValidationError("'status' must be 'Active' or 'Inactive'.")
    key = await iam.key(call.params["key"])
    await iam.set_key_status(key.account_id, key.access_key, KeyStatus(status))
    return 200, key_json(await iam.key(key.access_key))


async def delete_key(iam: IamService, call: Call) -> Result:
    key = await iam.key(call.params["key"])
    await iam.delete_key(key.account_id, key.access_key)
    return 204, None


async def put_policy(iam: IamService, call: Call) -> Result:
    document = call.body.decode("utf-8", errors="replace")
    account = await _account(iam, call)
    await iam.put_policy(account, call.params["user"], call.params["policy"], document)
    return 200, {"user_name": call.params["user"], "policy_name": call.params["policy"]}


async def list_policies(iam: IamService, call: Call) -> Result:
    names = await iam.list_policies(await _account(iam, call), call.params["user"])
    return 200, {"policies": names}


async def get_policy(iam: IamService, call: Call) -> Result:
    account = await _account(iam, call)
    document = await iam.get_policy(account, call.params["user"], call.params["policy"])
    return 200, {
        "user_name": call.params["user"],
        "policy_name": call.params["policy"],
        "document": json.loads(document),
    }


async def delete_policy(iam: IamService, call: Call) -> Result:
    account = await _account(iam, call)
    await iam.delete_policy(account, call.params["user"], call.params["policy"])
    return 204, None


async def set_quota(iam: IamService, call: Call) -> Result:
    body = call.json()
    unknown = set(body) - {"max_bytes", "max_objects", "max_buckets"}
    if unknown:
        raise ValidationError(f"Unknown quota field(s): {', '.join(sorted(unknown))}.")
    account = await _account(iam, call)
    current, _ = await iam.quota(account)
    quota = Quota(
        *(
            check_quota_value(name, body[name]) if name in body else getattr(current, name)
            for name in ("max_bytes", "max_objects", "max_buckets")
        )
    )
    await iam.set_quota(account, quota)
    return 200, quota_json(*await iam.quota(account))


async def get_quota(iam: IamService, call: Call) -> Result:
    return 200, quota_json(*await iam.quota(await _account(iam, call)))


# --- support access (service/support.py) --------------------------------------------------------
def _support(call: Call) -> SupportAccess:
    if call.support is None:
        raise ValidationError("Support access is off: no licensor public key is pinned.")
    return call.support


def access_json(record: Record, now: datetime) -> JsonObject:
    request = record.request
    return {
        "request_id": request.request_id,
        "licensor": request.licensor,
        "scope": request.scope,
        "operations": sorted(request.operations),
        "reason": request.reason,
        "duration_hours": int(request.duration.total_seconds() // 3600),
        "valid_until": request.valid_until.isoformat(),
        "state": record.status(now),
        "decided_by": record.decided_by,
        "expires": record.expires.isoformat() if record.expires else None,
        "access_key_id": record.access_key,
    }


async def submit_access_request(iam: IamService, call: Call) -> Result:
    support = _support(call)
    record = await iam.blocking(support.submit, call.body.decode("utf-8", "replace"))
    return 201, access_json(record, datetime.now(UTC))


async def list_access_requests(iam: IamService, call: Call) -> Result:
    records = await iam.blocking(_support(call).list)
    now = datetime.now(UTC)
    return 200, {"requests": [access_json(r, now) for r in records]}


async def approve_access_request(iam: IamService, call: Call) -> Result:
    support = _support(call)
    record, access_key, secret = await iam.blocking(
        lambda: support.approve(call.params["request"], by=call.caller)
    )
    return 200, {
        **access_json(record, datetime.now(UTC)),
        "secret_access_key": secret,
        "access_key_id": access_key,
    }


async def deny_access_request(iam: IamService, call: Call) -> Result:
    support = _support(call)
    record = await iam.blocking(lambda: support.deny(call.params["request"], by=call.caller))
    return 200, access_json(record, datetime.now(UTC))


async def revoke_access_request(iam: IamService, call: Call) -> Result:
    support = _support(call)
    record = await iam.blocking(lambda: support.revoke(call.params["request"], by=call.caller))
    return 200, access_json(record, datetime.now(UTC))


async def support_diagnostics(iam: IamService, call: Call) -> Result:
    """The deployment's health and aggregate figures: no tenant, user, bucket or key names."""
    tenants = await iam.list_tenants()
    totals = {"bytes": 0, "objects": 0, "buckets": 0}
    for tenant in tenants:
        _, usage = await iam.quota(tenant.account_id)
        totals["bytes"] += usage.bytes
        totals["objects"] += usage.objects
        totals["buckets"] += usage.buckets
    return 200, {
        "version": __version__,
        "partition": iam.partition,
        "tenants": len(tenants),
        "stored_bytes": totals["bytes"],
        "objects": totals["objects"],
        "buckets": totals["buckets"],
    }


# --- the audit trail (see onshore.adminapi.audit_access) -----------------------------------------
def _audit(call: Call) -> AuditAccess:
    if call.audit is None:
        raise AuditUnavailable("The audit trail is not available on this server.")
    return call.audit


async def search_audit_events(iam: IamService, call: Call) -> Result:
    found = await _audit(call).search(filters_of(call.query))
    return 200, {"events": found}


async def get_audit_public_key(iam: IamService, call: Call) -> Result:
    keys = await _audit(call).public_keys()
    if not keys:
        raise AuditUnavailable("The audit trail has no key yet.")
    fingerprint, pem = keys[-1]
    return 200, {
        "fingerprint": fingerprint,
        "public_key_pem": pem,
        "all": [{"fingerprint": f, "public_key_pem": p} for f, p in keys],
    }


async def list_tenant_audit_events(iam: IamService, call: Call) -> Result:
    assert call.account is not None  # the app only routes a tenant admin here
    found = await _audit(call).search(filters_of(call.query, account=call.account))
    return 200, {"account_id": call.account, "events": found}


_T = "/tenants/{tenant}"
_U = _T + "/users/{user}"
_SEC = Role.SECURITY
ROUTES: tuple[Route, ...] = (
    # system administrator: tenants, users, quotas
    Route("POST", "/tenants", create_tenant, "Create a tenant with its admin user and, when the "
          "caller also holds the security role, its first access key (the secret is returned "
          "once).", body='{"name": "acme"}', status=201),
    Route("GET", "/tenants", list_tenants, "List tenants."),
    Route("GET", _T, get_tenant, "Get a tenant (by account id or name) with its quota and usage."),
    Route("DELETE", _T, delete_tenant, "Delete a tenant that owns no buckets and was never "
          "offboarded (409 OffboardingConflict from the offboarding request on).", status=204),
    Route("POST", _T + "/users", create_user, "Create a user.", body='{"name": "alice"}',
          status=201),
    Route("GET", _T + "/users", list_users, "List the tenant's users."),
    Route("GET", _U, get_user, "Get a user."),
    Route("DELETE", _U, delete_user, "Delete a user that has no access keys or policies.",
          status=204),
    Route("PUT", _T + "/quota", set_quota, "Set quotas (null = unlimited; fields left out keep "
          "their value).", body='{"max_bytes": 1073741824, "max_objects": null, '
          '"max_buckets": 10}'),
    Route("GET", _T + "/quota", get_quota, "Get quotas and current usage."),
    # system administrator: offboarding (provable deletion at contract end)
    *(Route(*spec) for spec in offboarding.ROUTES),
    # security administrator: access keys and policies
    Route("POST", _U + "/keys", create_key, "Create an access key (the secret is returned "
          "once), or import one with access_key_id and secret_access_key.",
          body='{} or {"access_key_id": "...", "secret_access_key": "..."}', status=201,
          role=_SEC),
    Route("GET", _U + "/keys", list_keys, "List a user's access keys.", role=_SEC),
    Route("GET", "/keys/{key}", get_key, "Get an access key (never its secret).", role=_SEC),
    Route("PATCH", "/keys/{key}", update_key, "Enable or disable an access key.",
          body='{"status": "Active" | "Inactive"}', role=_SEC),
    Route("DELETE", "/keys/{key}", delete_key, "Delete an access key.", status=204, role=_SEC),
    Route("GET", _U + "/policies", list_policies, "List a user's inline policy names.",
          role=_SEC),
    Route("PUT", _U + "/policies/{policy}", put_policy, "Attach (create or replace) an inline "
          "policy; the body is the policy document.", body="a JSON policy document", role=_SEC),
    Route("GET", _U + "/policies/{policy}", get_policy, "Get an inline policy document.",
          role=_SEC),
    Route("DELETE", _U + "/policies/{policy}", delete_policy, "Delete an inline policy.",
          status=204, role=_SEC),
    # support access for the licensor (service/support.py): decided by the security role
    Route("POST", "/support/requests", submit_access_request, "Submit an access request the "
          "licensor signed (checked against the pinned licensor keys).",
          body="the signed access request document", status=201, role=_SEC),
    Route("GET", "/support/requests", list_access_requests, "List access requests and their "
          "state.", role=_SEC),
    Route("POST", "/support/requests/{request}/approve", approve_access_request, "Approve: "
          "issue time-boxed, scope-limited credentials (the secret is returned once).",
          role=_SEC),
    Route("POST", "/support/requests/{request}/deny", deny_access_request, "Deny a pending "
          "request.", role=_SEC),
    Route("POST", "/support/requests/{request}/revoke", revoke_access_request, "Revoke an "
          "approved access now.", role=_SEC),
    Route("GET", "/support/diagnostics", support_diagnostics, "Health and aggregate figures, "
          "no names (what a diagnostics support grant may read)."),
    # audit administrator: the audit trail
    Route("GET", "/audit/events", search_audit_events, "Search audit records (query: from, to, "
          "tenant, user, event, bucket, key_prefix, error_code, limit).", role=Role.AUDIT),
    Route("GET", "/audit/public-key", get_audit_public_key, "The audit public key (PEM) that "
          "verifies exported digests.", role=Role.AUDIT),
    # a tenant's admin user, about its own account only (signed with its own key)
    Route("GET", "/audit/tenant-events", list_tenant_audit_events, "A tenant's own audit "
          "records (same query as /audit/events, tenant forced to the caller's account); "
          "signed by the tenant's admin user, not an operator.", role=Role.AUDIT,
          tenant_self=True),
)  # fmt: skip


def match(method: str, path: str) -> tuple[Route, dict[str, str]] | None | bool:
    """The route and its parameters; False if the path exists for another method; None if
    no route has this path."""
    other_method = False
    for route in ROUTES:
        found = route.pattern.match(path)
        if found is None:
            continue
        if route.method != method:
            other_method = True
            continue
        return route, found.groupdict()
    return False if other_method else None
