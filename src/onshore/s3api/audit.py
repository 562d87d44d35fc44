"""The S3 API's side of the audit trail: what a request's record says.

:class:`RequestAudit` is called twice per request by :class:`onshore.s3api.app.S3App`:
``begin`` before routing (so every metadata write the request makes carries its record, see
:mod:`onshore.service.audit.trail`) and ``finish`` after the response is sent (the outcome:
status, error code, bytes out, duration). Only allow-listed query parameters and headers go
into a record (:mod:`onshore.service.audit.events`): never the ``Authorization`` header, a
signature, a presigned URL's credential or a body.
"""

from __future__ import annotations

import time

from onshore.domain.errors import S3Error
from onshore.s3api.http import Request
from onshore.service.audit.events import HEADERS_ALLOWED, IDENTITY_TYPES, QUERY_ALLOWED, Facts
from onshore.service.audit.trail import AuditTrail, Pending

__all__ = ["RequestAudit"]

_USER_AGENT_MAX = 512
_READ_PREFIXES = ("Get", "Head", "List")


class RequestAudit:
    __slots__ = ("trail",)

    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail

    def begin(self, req: Request) -> Pending:
        started_ms = time.time_ns() // 1_000_000
        started = time.perf_counter()
        return self.trail.begin(lambda: facts_of(req, started_ms, started))

    def finish(
        self,
        pending: Pending,
        req: Request,
        op_name: str,
        started: float,
        status: int,
        failure: S3Error | None,
        bytes_out: int,
    ) -> None:
        answered_error = req.plane is not None and req.plane.error_code is not None
        if pending.changes and failure is None and not answered_error:  # changes carry records
            self.trail.finish(pending, None)
            return
        facts = facts_of(req, _started_ms(started), started, op_name)
        facts.bytes_out = bytes_out
        plane = req.plane
        if failure is not None:
            facts.error_code = failure.code
            facts.error_message = failure.message
        elif plane is not None and plane.error_code is not None:  # answered by the plane
            facts.error_code = plane.error_code
            facts.error_message = plane.error_message
        facts.extra = {"status": status} if status >= 300 else None
        self.trail.finish(pending, facts)


def _started_ms(started: float) -> int:
    return time.time_ns() // 1_000_000 - int((time.perf_counter() - started) * 1000)


def facts_of(req: Request, time_ms: int, started: float, op_name: str | None = None) -> Facts:
    """The facts of ``req`` as known now (identity once authenticated, bytes so far)."""
    route = req.route
    plane = req.plane
    if plane is not None:  # the IAM or KMS API (see onshore.service.audit.planes)
        name = plane.name
        parameters = dict(plane.parameters)
        read_only = plane.read_only
    else:
        name = op_name or (route.op.value if route is not None else "Unknown")
        if name == "-":
            name = "Unknown"
        parameters = {k: v for k, v in req.query.items() if k in QUERY_ALLOWED}
        for header, label in HEADERS_ALLOWED.items():
            value = req.headers.get(header)
            if value is not None:
                parameters[label] = value
        read_only = name.startswith(_READ_PREFIXES)
    facts = Facts(
        time_ms=time_ms,
        event_name=name,
        request_id=req.request_id,
        source_ip=req.client,
        user_agent=req.headers.get("user-agent", "")[:_USER_AGENT_MAX],
        read_only=read_only,
        bucket=route.bucket if route is not None else None,
        key=route.key if route is not None else None,
        parameters=parameters,
        bytes_in=req.body.bytes_received if req.body is not None else 0,
        duration_ms=int((time.perf_counter() - started) * 1000),
        event_source=plane.source if plane is not None else "s3",
    )
    principal = req.principal
    if principal is not None:
        facts.identity_type = IDENTITY_TYPES.get(principal.kind.value, "Unknown")
        facts.account_id = principal.account_id
        facts.arn = principal.arn
        facts.access_key = principal.access_key
        facts.user_name = principal.user_name
    else:  # not (yet) authenticated: the access key id it claims (an id, not a secret)
        facts.access_key = _claimed_key(req)
    return facts


def _claimed_key(req: Request) -> str:
    if req.auth is not None and req.auth.access_key:
        return req.auth.access_key
    credential = req.query.get("X-Amz-Credential", "")
    if not credential:
        header = req.headers.get("authorization", "")
        start = header.find("Credential=")
        credential = header[start + 11 :] if start >= 0 else ""
    key = credential.partition("/")[0]
    return key[:128] if key.isalnum() else ""
