"""Serving the IAM query API on the S3 port.

A request is an IAM request when it is a ``POST /`` whose SigV4 credential scope names the
service ``iam`` (:func:`is_iam_request`); the S3 application hands those here before routing.
The form body (at most :data:`MAX_BODY` bytes) is read, hashed and verified with the signature.
The scope's region must be the deployment's, or ``us-east-1`` (IAM is a global service, and
some clients sign it there whatever the endpoint).

Only a tenant's admin user (``TENANT_ADMIN``) may call it, and only inside its own tenant; IAM
users and the operator's root (which administers tenants through the admin API) are refused
with ``AccessDenied``. While the tenant is being offboarded only the reads
(:data:`~onshore.iamapi.actions.READS`) are served; any other action gets 403
``AccountProblem`` (:mod:`onshore.service.offboarding.gate`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import parse_qsl

from onshore.domain.errors import AccessDenied, InvalidAccessKeyId, S3Error
from onshore.domain.iam import IamError
from onshore.iamapi import wire
from onshore.iamapi.actions import ACTIONS, READS, Caller
from onshore.s3api.auth.keyhint import claimed_access_key
from onshore.s3api.auth.small import authenticate_buffered, read_small_body
from onshore.s3api.http import Request, Response
from onshore.service.audit.planes import IAM_PARAMETERS, Plane, pick
from onshore.service.iam import IamService
from onshore.service.identity import Identities, PrincipalKind
from onshore.service.offboarding.gate import OffboardingGate

log = logging.getLogger("onshore.iam")

MAX_BODY = 64 * 1024
_GLOBAL_REGION = "us-east-1"


def is_iam_request(method: str, raw_path: str, headers: Mapping[str, str]) -> bool:
    return (
        method == "POST"
        and raw_path == "/"
        and "/iam/aws4_request" in headers.get("authorization", "")
    )


class IamApi:
    def __init__(
        self,
        iam: IamService,
        identities: Identities,
        *,
        region: str,
        offboarding: OffboardingGate | None = None,
    ) -> None:
        self.iam = iam
        self.identities = identities
        self.region = region
        self.offboarding = offboarding

    async def __call__(self, req: Request) -> tuple[str, Response]:
        """The action's name (for the access log) and its response."""
        action = "-"
        req.plane = Plane("iam")
        try:
            body = await read_small_body(req.receive, MAX_BODY)
            req.body_done = True
            params = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
            action = params.get("Action", "")
            # named before authentication, so a refused call's record says what was tried
            req.plane = Plane("iam", action[:64] or "Unknown", pick(params, IAM_PARAMETERS))
            claimed = claimed_access_key(req.headers, req.query)
            if claimed is not None and not self.identities.is_cached(claimed):
                await self.iam.blocking.batched(self.identities.warm, claimed)
            region = self.region
            if f"/{_GLOBAL_REGION}/iam/" in req.headers.get("authorization", ""):
                region = _GLOBAL_REGION
            auth = authenticate_buffered(
                req.method,
                req.raw_path,
                req.query_string,
                req.headers,
                body,
                lookup=self.identities.secret_for,
                region=region,
                service="iam",
            )
            assert auth.access_key is not None  # is_iam_request saw an Authorization header
            principal = self.identities.principal(auth.access_key)
            if principal is None:
                raise InvalidAccessKeyId()
            req.principal = principal
            handler = ACTIONS.get(action)
            if handler is None:
                return action or "-", _error(
                    400, "InvalidAction", f"The action {action!r} is not valid.", req
                )
            if principal.kind is not PrincipalKind.TENANT_ADMIN:
                raise AccessDenied(
                    f"User: {principal.arn} is not authorized to perform: iam:{action} "
                    "(only a tenant's admin user may use the IAM API here)"
                )
            if self.offboarding is not None and action not in READS:
                await self.offboarding.check_account(principal.account_id)
            caller = Caller(principal.account_id, principal.user_name)
            result = await handler(self.iam, caller, params)
            out = wire.response(action, req.request_id, result)
            return action, Response.xml(out, headers={"Content-Type": "text/xml"})
        except IamError as error:
            return action, _error(error.status, error.code, error.message, req)
        except InvalidAccessKeyId:
            return action, _error(
                403, "InvalidClientTokenId", "The security token included in the request is "
                "invalid.", req
            )  # fmt: skip
        except S3Error as error:
            return action, _error(error.status, error.code, error.message, req)


def _error(status: int, code: str, message: str, req: Request) -> Response:
    if req.plane is not None:
        req.plane.failed(code, message)
    body = wire.error(code, message, req.request_id, sender=status < 500)
    return Response.xml(body, status, {"Content-Type": "text/xml"})
