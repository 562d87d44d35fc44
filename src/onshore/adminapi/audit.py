"""The admin API's side of the audit trail: the record of each admin request.

Every admin request gets one record, ``eventSource`` ``admin.<partition>``, ``eventName`` the
endpoint's handler name in CamelCase (``create_tenant`` → ``CreateTenant``), ``userIdentity``
the operator (``type`` ``Root`` for the root credentials, ``Operator`` with ``userName`` and
``operatorRole`` for a named operator; a tenant admin on its one route is ``Root`` of its
account, as on the S3 port). ``requestParameters`` are the path parameters (``tenant``,
``userName``, ``accessKeyId``, ``policyName``), the audit search's query and the allow-listed
body fields ``name`` and ``status``: never a body's secret (an imported key's
``secret_access_key``) nor a policy document.

As on the S3 port (:mod:`onshore.s3api.audit`), a state-changing call's record is committed
with its change (:meth:`AuditTrail.begin` wraps the request's metadata writes); a read, a
refused call or a failed one is buffered and group-committed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from onshore.s3api.http import Request
from onshore.service.audit.events import IDENTITY_TYPES, Facts
from onshore.service.audit.planes import camel
from onshore.service.audit.trail import AuditTrail, Pending
from onshore.service.identity import Principal

__all__ = ["AdminAudit", "AdminRecord"]

_USER_AGENT_MAX = 512
_PATH_PARAMETERS = {
    "tenant": "tenant",
    "user": "userName",
    "key": "accessKeyId",
    "policy": "policyName",
}
_BODY_PARAMETERS = ("name", "status", "access_key_id")  # never secret_access_key
_QUERY_PARAMETERS = frozenset(
    {"from", "to", "tenant", "user", "event", "bucket", "key_prefix", "error_code", "limit"}
)


@dataclass(slots=True)
class AdminRecord:
    """What is known of one admin request so far (filled in as it is handled)."""

    req: Request
    time_ms: int
    started: float
    name: str = "Unknown"
    parameters: dict[str, str] = field(default_factory=dict)
    identity_type: str = "Unknown"
    account_id: str = ""
    arn: str = ""
    access_key: str = ""
    user_name: str = ""
    role: str = ""
    recipient: str = ""  # the tenant the call is about (indexed under it: its own events)
    bytes_in: int = 0

    def routed(self, handler_name: str, params: dict[str, str], body: bytes) -> None:
        """The request reached an endpoint: its name and parameters."""
        self.name = camel(handler_name)
        found = {_PATH_PARAMETERS.get(k, k): v[:256] for k, v in params.items()}
        for name, value in self.req.query.items():
            if name in _QUERY_PARAMETERS:
                found[f"query.{name}"] = value[:256]
        found.update(_body_fields(body))
        self.parameters = found

    def operator(self, access_key: str, name: str | None, roles: frozenset[str]) -> None:
        """The caller is a named operator (``name``) or the root credentials (``name`` None)."""
        self.access_key = access_key
        self.identity_type = "Operator" if name else "Root"
        self.user_name = name or ""
        self.role = ",".join(sorted(roles))

    def support(self, access_key: str, request_id: str) -> None:
        """The caller is the licensor's support engineer, under approved access ``request_id``
        (every use of such access is recorded with it)."""
        self.access_key = access_key
        self.identity_type = "LicensorSupport"
        self.user_name = request_id
        self.role = "support"
        self.parameters["supportAccessRequest"] = request_id

    def principal(self, principal: Principal) -> None:
        """The caller is a tenant's principal (the tenant-events route) or the root."""
        self.access_key = principal.access_key
        self.identity_type = IDENTITY_TYPES.get(principal.kind.value, "Unknown")
        self.account_id = principal.account_id
        self.arn = principal.arn
        self.user_name = principal.user_name

    def facts(self) -> Facts:
        req = self.req
        return Facts(
            time_ms=self.time_ms,
            event_name=self.name,
            request_id=req.request_id,
            source_ip=req.client,
            user_agent=req.headers.get("user-agent", "")[:_USER_AGENT_MAX],
            read_only=req.method in ("GET", "HEAD"),
            parameters=dict(self.parameters),
            identity_type=self.identity_type,
            account_id=self.account_id,
            arn=self.arn,
            access_key=self.access_key,
            user_name=self.user_name,
            role=self.role,
            recipient=self.recipient,
            duration_ms=int((time.perf_counter() - self.started) * 1000),
            event_source="admin",
        )


class AdminAudit:
    """Begins and finishes the records of admin requests on a server's audit trail."""

    __slots__ = ("trail",)

    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail

    def begin(self, record: AdminRecord) -> Pending:
        return self.trail.begin(record.facts)

    def finish(
        self,
        pending: Pending,
        record: AdminRecord,
        status: int,
        error: tuple[str, str] | None,
        bytes_in: int,
        bytes_out: int,
    ) -> None:
        if pending.changes and error is None:  # its changes carry its records
            self.trail.finish(pending, None)
            return
        facts = record.facts()
        facts.bytes_in, facts.bytes_out = bytes_in, bytes_out
        if error is not None:
            facts.error_code, facts.error_message = error
        facts.extra = {"status": status} if status >= 300 else None
        self.trail.finish(pending, facts)


def _body_fields(body: bytes) -> dict[str, str]:
    """The allow-listed fields of a JSON body (never a secret)."""
    if not body.strip() or len(body) > 64 * 1024:
        return {}
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(value, dict):
        return {}
    return {k: v[:256] for k in _BODY_PARAMETERS if isinstance(v := value.get(k), str)}
