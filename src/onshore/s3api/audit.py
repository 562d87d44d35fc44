"""The S3 API's side of the audit trail: what a request's record says.

:class:`RequestAudit` is called twice per request by :class:`onshore.s3api.app.S3App`:
``begin`` before routing (so every metadata write the request makes carries its record, see
:mod:`onshore.service.audit.trail`) and ``finish`` after the response is sent (the outcome:
status, error code, bytes out, duration). Only allow-listed query parameters and headers go
into a record (:mod:`onshore.service.audit.events`): never the ``Authorization`` header, a
signature, a presigned URL's credential or a body.

**What the request path pays.** A request's shared values (who, from where, which operation
on which bucket, with what outcome) select its group (:mod:`onshore.service.audit.capture`),
made the first time it is seen; a read's group and own values (time, ids, bytes) are added to
the trail's buffer as they are, for the flusher to render; a change's record is rendered ahead
as the change is submitted, but for the change's outcome, which the change's job adds before
staging it, and it is appended to the chain when the writer's batch commits.
"""

from __future__ import annotations

import sqlite3
from time import perf_counter, time_ns
from typing import Any, cast

from onshore.domain.errors import S3Error
from onshore.s3api.http import Request
from onshore.service.audit.capture import Change, Shared, change
from onshore.service.audit.events import HEADERS_ALLOWED, QUERY_ALLOWED
from onshore.service.audit.trail import AuditTrail, Pending, Work, response_json
from onshore.storage.sqlite.writer import JOB_WRAPPER

__all__ = ["RequestAudit"]

_READ_PREFIXES = ("Get", "Head", "List")


class RequestAudit:
    __slots__ = ("trail", "groups", "reads", "changes", "captured", "stage")

    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail
        self.groups = trail.groups
        self.reads = trail.groups.reads  # looked up directly: one call fewer per request
        self.changes = trail.groups.changes
        self.captured = trail.captured
        self.stage = trail.stage

    def begin(self, req: Request, started: float) -> Pending:
        """Mark the request as audited (``started``: its ``perf_counter()``): the metadata
        writes it makes carry their records (see :class:`_RequestPending`)."""
        pending = _RequestPending(self, req, started)
        pending.token = JOB_WRAPPER.set(pending)  # as AuditTrail.begin does
        return pending

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
        """Buffer the request's record, unless its changes carry theirs."""
        token = pending.token
        if token is not None:
            JOB_WRAPPER.reset(token)
            pending.token = None
        error_code: str | None
        error_message: str | None
        if failure is not None:
            error_code, error_message = failure.code, failure.message
        else:
            plane = req.plane
            if plane is not None and plane.error_code is not None:  # answered by the plane
                error_code, error_message = plane.error_code, plane.error_message
            elif pending.changes:  # its changes carry its records
                return
            else:
                error_code = error_message = None
        name = op_name if op_name != "-" else "Unknown"
        shared = _shared(req, name, status, error_code, error_message)
        group = self.reads.get(shared) or self.groups.read(shared)
        duration_ms = int((perf_counter() - started) * 1000)
        route = req.route
        body = req.body
        self.captured.extend(  # one call: atomic (see AuditTrail.captured)
            (
                group,
                time_ns() // 1_000_000 - duration_ms,
                duration_ms,
                req.request_id,
                None if route is None else route.key,
                0 if body is None else body.bytes_received,
                bytes_out,
            )
        )


class _RequestPending(Pending):
    """An S3 request being handled: the record of a change it makes is captured when the change
    is submitted, staged with the change and chained when the change's batch commits."""

    __slots__ = ("audit", "req", "started", "submitted")

    def __init__(self, audit: RequestAudit, req: Request, started: float) -> None:
        self.audit = audit  # (Pending's _trail and _facts are not used; begin sets token)
        self.changes = 0
        self.req = req
        self.started = started
        self.submitted = 0

    def __call__(self, work: Work) -> Work:
        req = self.req
        route = req.route
        audit = self.audit
        shared = _shared(req, route.op._value_ if route is not None else "Unknown", 200, None, None)
        group = audit.changes.get(shared) or audit.groups.change(shared)
        duration_ms = int((perf_counter() - self.started) * 1000)
        body = req.body
        # Only a request's first change is recorded from a record rendered ahead; the others
        # (DeleteObjects' keys) carry a changeIndex and are rendered whole at commit.
        made = change(
            group,
            time_ns() // 1_000_000 - duration_ms,
            duration_ms,
            req.request_id,
            None if route is None else route.key,
            0 if body is None else body.bytes_received,
            not self.submitted,
            work,
            self,
        )
        self.submitted += 1
        return cast(Work, made)  # a capture is the job the writer runs (Change.__call__)

    def commit(self, captured: Change, conn: sqlite3.Connection) -> Any:
        """A change's job (``captured`` is its capture, which the writer calls), on the writer
        thread, in the change's savepoint: the change, then its record staged for the end of
        the batch with its outcome."""
        result = captured.work(conn)
        self.audit.stage((captured, response_json(result, captured.key), self.changes))
        self.changes += 1
        return result


def _shared(
    req: Request, name: str, status: int, error_code: str | None, error_message: str | None
) -> Shared:
    """The values of ``req`` its record may share with other requests' (see
    :data:`~onshore.service.audit.capture.Shared`), as known now."""
    plane = req.plane
    headers = req.headers
    if plane is not None:  # the IAM or KMS API (see onshore.service.audit.planes)
        source, name, read_only = plane.source, plane.name, plane.read_only
        parameters = tuple(plane.parameters.items()) or None
    else:
        source = "s3"
        read_only = name.startswith(_READ_PREFIXES)
        parameters = None
        if req.query or not _HEADERS.isdisjoint(headers):
            parameters = tuple(_parameters(req.query, headers).items()) or None
    route = req.route
    if route is not None:
        bucket, has_key = route.bucket, route.key is not None
    else:
        bucket, has_key = None, False
    principal = req.principal
    if principal is not None:
        kind, account, arn = principal.kind._value_, principal.account_id, principal.arn
        access_key, user_name = principal.access_key, principal.user_name
    else:  # not (yet) authenticated: the access key id it claims (an id, not a secret)
        kind, account, arn, access_key, user_name = None, "", "", _claimed_key(req), ""
    return (
        source,
        name,
        read_only,
        req.client,
        headers.get("user-agent", ""),
        bucket,
        has_key,
        parameters,
        kind,
        account,
        arn,
        access_key,
        user_name,
        status,
        error_code,
        error_message,
        req.recipient or "",
    )


_HEADERS = frozenset(HEADERS_ALLOWED)


def _parameters(query: dict[str, str], headers: dict[str, str]) -> dict[str, str]:
    """The allow-listed query parameters and headers of a request (never a credential)."""
    parameters = {k: v for k, v in query.items() if k in QUERY_ALLOWED}
    for header, label in HEADERS_ALLOWED.items():
        value = headers.get(header)
        if value is not None:
            parameters[label] = value
    return parameters


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
