"""The admin API's ASGI application.

Every request but ``GET /openapi.json`` must be signed (SigV4, service ``onshore-admin``, the
deployment's region) by an operator: the root credentials or a named operator account
(:mod:`onshore.service.operators`). Each endpoint requires one operator role (system,
security or audit); a caller without it, and any tenant's key, is refused with 403
``AccessDenied``. Bodies are small JSON documents (at most
:data:`MAX_BODY` bytes), read in full before the signature is checked. Errors are JSON:
``{"error": {"code": "NoSuchEntity", "message": "..."}}`` with the matching HTTP status.
"""

from __future__ import annotations

import json
import logging
import time
from urllib.parse import unquote

from onshore.adminapi import openapi
from onshore.adminapi.audit import AdminAudit, AdminRecord
from onshore.adminapi.audit_access import AuditAccess
from onshore.adminapi.routes import Call, Route, match
from onshore.domain.errors import AccessDenied, S3Error
from onshore.domain.iam import IamError
from onshore.domain.ids import new_request_id
from onshore.s3api.auth.keyhint import claimed_access_key
from onshore.s3api.auth.small import authenticate_buffered, read_small_body
from onshore.s3api.http import Receive, Request, Scope, Send
from onshore.service.iam import IamService
from onshore.service.identity import Identities, PrincipalKind
from onshore.service.offboarding import Offboarding
from onshore.service.operators import ALL_ROLES, Operators, Role
from onshore.service.rootkey import KEY_SERVICE_DOWN, KeyServiceUnavailable
from onshore.service.support import SupportAccess

log = logging.getLogger("onshore.admin")
access_log = logging.getLogger("onshore.access")

SERVICE = "onshore-admin"
MAX_BODY = 64 * 1024


class AdminApp:
    def __init__(
        self,
        iam: IamService,
        identities: Identities,
        operators: Operators,
        *,
        region: str,
        separate_roles: bool = False,
        log_requests: bool = True,
        audit: AdminAudit | None = None,
        audit_access: AuditAccess | None = None,
        support: SupportAccess | None = None,
        offboarding: Offboarding | None = None,
    ) -> None:
        self.support = support  # the licensor's support access (None: no licensor pinned)
        self.offboarding = offboarding
        self.audit = audit  # records of admin requests (None: the trail is off)
        self.audit_access = audit_access  # the /audit routes' read access
        self.iam = iam
        self.identities = identities
        self.operators = operators
        self.region = region
        self.root_roles = frozenset({Role.SYSTEM}) if separate_roles else ALL_ROLES
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        request_id = new_request_id()
        req = Request(scope, receive, request_id)
        record = AdminRecord(req, time.time_ns() // 1_000_000, started)
        audit = self.audit
        pending = audit.begin(record) if audit is not None else None
        error: tuple[str, str] | None = None
        try:
            status, payload = await self.handle(req, record)
        except IamError as exc:
            error = exc.code, exc.message
            status, payload = exc.status, _error(*error)
        except S3Error as exc:
            error = exc.code, exc.message
            status, payload = exc.status, _error(*error)
        except KeyServiceUnavailable as exc:
            log.error("admin request %s failed: %s", request_id, exc)
            error = "ServiceUnavailable", KEY_SERVICE_DOWN
            status, payload = 503, _error(*error)
        except Exception:
            log.exception("admin request %s failed", request_id)
            error = "InternalError", "Internal error; see the server log."
            status, payload = 500, _error(*error)
        if error is None and status >= 300 and isinstance(payload, dict):  # 404, 405
            detail = payload.get("error") or {}
            error = str(detail.get("code", "")), str(detail.get("message", ""))
        body = b"" if payload is None else json.dumps(payload, indent=1).encode()
        if pending is not None and audit is not None:
            audit.finish(pending, record, status, error, record.bytes_in, len(body))
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-amz-request-id", request_id.encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
        if self.log_requests:
            entry = {
                "ts": round(time.time(), 3),
                "request_id": request_id,
                "op": "admin",
                "method": req.method,
                "path": req.raw_path,
                "status": status,
                "ms": round((time.perf_counter() - started) * 1000, 2),
                "remote": req.client,
                "access_key": req.auth.access_key if req.auth else None,
            }
            if req.support_request:
                entry["support_request"] = req.support_request
            access_log.info(json.dumps(entry, separators=(",", ":")))

    async def handle(self, req: Request, record: AdminRecord) -> tuple[int, object]:
        if req.method == "GET" and req.raw_path == "/openapi.json":
            record.name = "GetOpenApiDocument"
            return 200, openapi.document()
        body = await read_small_body(req.receive, MAX_BODY)
        record.bytes_in = len(body)
        claimed = claimed_access_key(req.headers, req.query)
        record.access_key = claimed or ""  # an id, not a secret: who it claims to be
        found = match(req.method, req.raw_path.rstrip("/") or "/")
        if isinstance(found, tuple):  # named before authentication: a refusal says what
            found = found[0], {k: unquote(v) for k, v in found[1].items()}
            record.routed(found[0].handler.__name__, found[1], body)
        if claimed is not None and not self.identities.is_cached(claimed):
            await self.iam.blocking.batched(self.identities.warm, claimed)
        if claimed is not None:  # warm the caches off the event loop
            await self.iam.blocking.batched(self.operators.role_of, claimed)
            if self.support is not None:
                await self.iam.blocking.batched(self.support.secret_for, claimed)
        auth = authenticate_buffered(
            req.method,
            req.raw_path,
            req.query_string,
            req.headers,
            body,
            lookup=self._secret_for,
            region=self.region,
            service=SERVICE,
        )
        req.auth = auth
        if auth.access_key is None:
            raise AccessDenied("The admin API requires requests signed by an operator.")
        if isinstance(found, tuple) and found[0].tenant_self:
            return await self._tenant_self(req, record, found[0], body, auth.access_key)
        roles = self._roles_of(auth.access_key)
        self._identify(record, auth.access_key, roles)
        grant = None
        if not roles and self.support is not None:
            grant = self.support.grant_for(auth.access_key)
            if grant is None and self.support.secret_for(auth.access_key) is not None:
                raise AccessDenied("This support access has expired or was revoked.")
        if not roles and grant is None:
            raise AccessDenied("Only operator credentials may use the admin API.")
        if grant is not None:
            req.support_request = grant.request_id
            record.support(auth.access_key, grant.request_id)
        if found is None:
            return 404, _error("NoSuchRoute", f"No admin endpoint {req.raw_path}.")
        if found is False:
            return 405, _error("MethodNotAllowed", f"{req.method} is not allowed here.")
        assert not isinstance(found, bool)
        route, params = found
        if grant is not None:
            if route.method != "GET" or route.handler.__name__ not in grant.operations:
                raise AccessDenied(
                    f"{req.method} {route.path} is outside the scope of support access "
                    f"{grant.request_id}."
                )
        elif route.role not in roles:
            raise AccessDenied(
                f"{req.method} {route.path} requires the {route.role.value} administrator role."
            )
        record.recipient = await self._subject_account(params)
        call = Call(
            params,
            body,
            roles,
            query=req.query,
            audit=self.audit_access,
            caller=auth.access_key,
            support=self.support,
            offboarding=self.offboarding,
        )
        return await route.handler(self.iam, call)

    async def _tenant_self(
        self, req: Request, record: AdminRecord, route: Route, body: bytes, access_key: str
    ) -> tuple[int, object]:
        """A route a tenant's admin user calls about its own account (and no operator does)."""
        principal = self.identities.principal(access_key)
        if principal is not None:
            record.principal(principal)
        else:
            self._identify(record, access_key, self._roles_of(access_key))
        if principal is None or principal.kind is not PrincipalKind.TENANT_ADMIN:
            raise AccessDenied(
                f"{req.method} {route.path} is for a tenant's admin user, about its own account."
            )
        call = Call(
            {},
            body,
            frozenset(),
            query=req.query,
            audit=self.audit_access,
            account=principal.account_id,
        )
        return await route.handler(self.iam, call)

    async def _subject_account(self, params: dict[str, str]) -> str:
        """The tenant (account id) a call is about, for its record; "" if none or not found."""
        try:
            if "tenant" in params:
                return (await self.iam.tenant(params["tenant"])).account_id
            if "key" in params:
                return (await self.iam.key(params["key"])).account_id
        except IamError:
            pass
        return ""

    def _identify(self, record: AdminRecord, access_key: str, roles: frozenset[Role]) -> None:
        """Who the caller is, for its audit record."""
        principal = self.identities.principal(access_key)
        if principal is not None and not principal.is_root:
            record.principal(principal)  # a tenant's key: refused, but recorded as who it is
            return
        name = None if principal is not None else self.operators.name_of(access_key)
        record.operator(access_key, name, frozenset(r.value for r in roles))
        if principal is not None:
            record.account_id, record.arn = principal.account_id, principal.arn

    def _secret_for(self, access_key: str) -> str | None:
        """Operators' secrets, support grants', then the identities' (root, and tenants' keys: a
        tenant's valid signature is then refused with AccessDenied, like any caller without a
        role)."""
        return (
            self.operators.secret_for(access_key)
            or (self.support.secret_for(access_key) if self.support is not None else None)
            or self.identities.secret_for(access_key)
        )

    def _roles_of(self, access_key: str) -> frozenset[Role]:
        principal = self.identities.principal(access_key)
        if principal is not None and principal.is_root:
            return self.root_roles
        role = self.operators.role_of(access_key)
        return frozenset() if role is None else frozenset({role})


def _error(code: str, message: str) -> dict[str, object]:
    return {"error": {"code": code, "message": message}}
