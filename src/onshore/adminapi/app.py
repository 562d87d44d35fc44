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
from onshore.adminapi.routes import Call, match
from onshore.domain.errors import AccessDenied, S3Error
from onshore.domain.iam import IamError
from onshore.domain.ids import new_request_id
from onshore.s3api.auth.keyhint import claimed_access_key
from onshore.s3api.auth.small import authenticate_buffered, read_small_body
from onshore.s3api.http import Receive, Request, Scope, Send
from onshore.service.iam import IamService
from onshore.service.identity import Identities
from onshore.service.offboarding import Offboarding
from onshore.service.operators import ALL_ROLES, Operators, Role
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
        support: SupportAccess | None = None,
        offboarding: Offboarding | None = None,
    ) -> None:
        self.iam = iam
        self.offboarding = offboarding
        self.identities = identities
        self.operators = operators
        self.support = support
        self.region = region
        self.root_roles = frozenset({Role.SYSTEM}) if separate_roles else ALL_ROLES
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        request_id = new_request_id()
        req = Request(scope, receive, request_id)
        try:
            status, payload = await self.handle(req)
        except IamError as error:
            status, payload = error.status, _error(error.code, error.message)
        except S3Error as error:
            status, payload = error.status, _error(error.code, error.message)
        except Exception:
            log.exception("admin request %s failed", request_id)
            status, payload = 500, _error("InternalError", "Internal error; see the server log.")
        body = b"" if payload is None else json.dumps(payload, indent=1).encode()
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

    async def handle(self, req: Request) -> tuple[int, object]:
        if req.method == "GET" and req.raw_path == "/openapi.json":
            return 200, openapi.document()
        body = await read_small_body(req.receive, MAX_BODY)
        claimed = claimed_access_key(req.headers, req.query)
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
        roles = self._roles_of(auth.access_key)
        grant = None
        if not roles and self.support is not None:
            grant = self.support.grant_for(auth.access_key)
            if grant is None and self.support.secret_for(auth.access_key) is not None:
                raise AccessDenied("This support access has expired or was revoked.")
        if not roles and grant is None:
            raise AccessDenied("Only operator credentials may use the admin API.")
        req.support_request = grant.request_id if grant is not None else None
        found = match(req.method, req.raw_path.rstrip("/") or "/")
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
        call = Call(
            {k: unquote(v) for k, v in params.items()},
            body,
            roles,
            caller=auth.access_key,
            support=self.support,
            offboarding=self.offboarding,
        )
        return await route.handler(self.iam, call)

    def _secret_for(self, access_key: str) -> str | None:
        """Operators' secrets, then the identities' (root, and tenants' keys: a tenant's valid
        signature is then refused with AccessDenied, like any caller without a role)."""
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
