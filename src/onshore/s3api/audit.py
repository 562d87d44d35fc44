"""The S3 API's side of the audit trail: what a request's record says.

:class:`RequestAudit` is called twice per request by :class:`onshore.s3api.app.S3App`:
``begin`` before routing (so every metadata write the request makes carries its record, see
:mod:`onshore.service.audit.trail`) and ``finish`` after the response is sent (the outcome:
status, error code, bytes out, duration). Only allow-listed query parameters and headers go
into a record (:mod:`onshore.service.audit.events`): never the ``Authorization`` header, a
signature, a presigned URL's credential or a body.

**What the request path pays.** A request's values are *captured* (:func:`_capture`): a tuple
of strings and numbers taken from the request, nothing rendered. A read's capture is buffered
as it is, for the flusher; a change's is staged by the change's job, with the change's outcome,
and appended to the chain when the writer's batch commits
(:mod:`onshore.service.audit.capture`).
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from onshore.domain.errors import S3Error
from onshore.s3api.http import Request
from onshore.service.audit import capture
from onshore.service.audit.events import HEADERS_ALLOWED, QUERY_ALLOWED
from onshore.service.audit.trail import AuditTrail, Captured, Pending, Work, response_json
from onshore.storage.sqlite.writer import JOB_WRAPPER

__all__ = ["RequestAudit"]

_READ_PREFIXES = ("Get", "Head", "List")


class RequestAudit:
    __slots__ = ("trail",)

    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail

    def begin(self, req: Request) -> Pending:
        pending = _RequestPending(self.trail, req, time.perf_counter())
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
        plane = req.plane
        error_code = error_message = None
        if failure is not None:
            error_code, error_message = failure.code, failure.message
        elif plane is not None and plane.error_code is not None:  # answered by the plane
            error_code, error_message = plane.error_code, plane.error_message
        if pending.changes and error_code is None:  # its changes carry its records
            self.trail.finish(pending, None)
            return
        name = op_name if op_name != "-" else "Unknown"
        captured = _capture(req, started, name, status, error_code, error_message, bytes_out)
        self.trail.capture(pending, captured)


class _RequestPending(Pending):
    """An S3 request being handled: the record of a change it makes (its capture and the
    change's outcome) is staged with the change and chained when the change's batch commits."""

    __slots__ = ("req", "started", "submitted")

    def __init__(self, trail: AuditTrail, req: Request, started: float) -> None:
        self._trail = trail  # Pending's, set here (one call less per request)
        self._facts = None
        self.changes = 0
        self.token = None
        self.req = req
        self.started = started
        self.submitted = 0

    def __call__(self, work: Work) -> Work:
        req = self.req
        route = req.route
        name = route.op.value if route is not None else "Unknown"
        captured = _capture(req, self.started, name, 200, None, None, 0)
        # Only a request's first change is recorded from a record rendered ahead; the others
        # (DeleteObjects' keys) carry a changeIndex and are rendered whole at commit.
        prepared = None
        if not self.submitted:
            prepared = capture.prepare(captured, self._trail.partition, self._trail.region)
        self.submitted += 1
        return _Change(work, self, captured, prepared)


class _Change:
    """A change an S3 request submits to the writer, wrapped: the change, then its record
    staged for the end of the batch, in the change's savepoint (one object rather than a
    closure and its cells: fewer for the garbage collector on every write). The record is
    rendered ahead, as the change is submitted, but for the change's outcome."""

    __slots__ = ("work", "pending", "captured", "prepared")

    def __init__(
        self,
        work: Work,
        pending: _RequestPending,
        captured: Captured,
        prepared: capture.Prepared | None,
    ) -> None:
        self.work = work
        self.pending = pending
        self.captured = captured
        self.prepared = prepared

    def __call__(self, conn: sqlite3.Connection) -> Any:
        result = self.work(conn)
        captured = self.captured
        response = response_json(result, captured[capture.KEY])
        self.pending.stage(captured, response, self.prepared)
        return result


def _capture(
    req: Request,
    started: float,
    name: str,
    status: int,
    error_code: str | None,
    error_message: str | None,
    bytes_out: int,
) -> Captured:
    """The values of ``req`` a record needs, as known now (see :mod:`~onshore.service.audit.
    capture` for the layout): strings, numbers, None and tuples of those only."""
    elapsed = time.perf_counter() - started
    headers = req.headers
    plane = req.plane
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
        bucket, key = route.bucket, route.key
    else:
        bucket = key = None
    principal = req.principal
    if principal is not None:
        kind, account, arn = principal.kind._value_, principal.account_id, principal.arn
        access_key, user_name = principal.access_key, principal.user_name
    else:  # not (yet) authenticated: the access key id it claims (an id, not a secret)
        kind, account, arn, access_key, user_name = None, "", "", _claimed_key(req), ""
    body = req.body
    return (
        capture.KIND,
        time.time_ns() // 1_000_000 - int(elapsed * 1000),
        int(elapsed * 1000),
        req.request_id,
        key,
        body.bytes_received if body is not None else 0,
        bytes_out,
        source,
        name,
        read_only,
        req.client,
        headers.get("user-agent", ""),
        bucket,
        key is not None,
        parameters,
        kind,
        account,
        arn,
        access_key,
        user_name,
        status,
        error_code,
        error_message,
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
