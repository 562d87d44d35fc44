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
from collections.abc import Sequence
from typing import Any

from onshore.domain.errors import S3Error
from onshore.s3api.http import Request
from onshore.service.audit.events import HEADERS_ALLOWED, IDENTITY_TYPES, QUERY_ALLOWED, Facts
from onshore.service.audit.render import (
    Template,
    from_template,
    record_template,
    render_values,
)
from onshore.service.audit.trail import CAPTURES, AuditTrail, Capture, Pending
from onshore.service.identity import Principal
from onshore.storage.sqlite.audit import AuditRow
from onshore.storage.sqlite.writer import JOB_WRAPPER

__all__ = ["RequestAudit"]

_USER_AGENT_MAX = 512
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
        """Buffer the request's record, unless its changes carry theirs. Only raw values are
        captured here (:func:`_captured_row` renders the record in the flusher thread)."""
        plane = req.plane
        error_code = error_message = None
        if failure is not None:
            error_code, error_message = failure.code, failure.message
        elif plane is not None and plane.error_code is not None:  # answered by the plane
            error_code, error_message = plane.error_code, plane.error_message
        if pending.changes and error_code is None:  # its changes carry its records
            self.trail.finish(pending, None)
            return
        elapsed = time.perf_counter() - started
        headers = req.headers
        if plane is not None:  # the IAM or KMS API (see onshore.service.audit.planes)
            source, name, read_only = plane.source, plane.name, plane.read_only
            parameters = tuple(plane.parameters.items()) or None
        else:
            source, name = "s3", op_name if op_name != "-" else "Unknown"
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
        # See _captured_row for the layout: the values of this request, then those it may share
        # with others (its group's template).
        self.trail.capture(
            pending,
            (
                CAPTURE,
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
            ),
        )


class _RequestPending(Pending):
    """An S3 request being handled (its facts are built only if it changes something)."""

    __slots__ = ("req", "started")

    def __init__(self, trail: AuditTrail, req: Request, started: float) -> None:
        self._trail = trail  # Pending's, set here (one call less per request)
        self._facts = None
        self.changes = 0
        self.token = None
        self.req = req
        self.started = started

    def facts(self) -> Facts:
        return facts_of(self.req, _started_ms(self.started), self.started)


def _started_ms(started: float) -> int:
    return time.time_ns() // 1_000_000 - int((time.perf_counter() - started) * 1000)


_HEADERS = frozenset(HEADERS_ALLOWED)


def _parameters(query: dict[str, str], headers: dict[str, str]) -> dict[str, str]:
    """The allow-listed query parameters and headers of a request (never a credential)."""
    if not query and _HEADERS.isdisjoint(headers):
        return {}
    parameters = {k: v for k, v in query.items() if k in QUERY_ALLOWED}
    for header, label in HEADERS_ALLOWED.items():
        value = headers.get(header)
        if value is not None:
            parameters[label] = value
    return parameters


_SHARED = 7  # where the values a request may share with others start, in a captured record
_MISSING = object()
_templates: dict[tuple[str, str], dict[tuple[Any, ...], Template | None]] = {}
_TEMPLATES_MAX = 4096


def _captured_row(values: Sequence[Any], partition: str, region: str) -> AuditRow:
    """The row of a request captured by :meth:`RequestAudit.finish` (in the flusher): from its
    group's template (:func:`~onshore.service.audit.render.record_template`), made for the
    first request of a group and kept for the next ones."""
    shared = tuple(values[_SHARED:])
    cache = _templates.get((partition, region))
    if cache is None:
        cache = _templates.setdefault((partition, region), {})
    template = cache.get(shared, _MISSING)
    if template is _MISSING:
        if len(cache) >= _TEMPLATES_MAX:
            cache.clear()
        template = cache[shared] = record_template(
            **_static(shared), partition=partition, region=region
        )
    _, time_ms, duration_ms, request_id, key, bytes_in, bytes_out = values[:_SHARED]
    (_, name, _, _, _, bucket, _, _, _, account_id, arn, _, user_name, _, error_code, _) = shared
    if template is None:  # no template could be made: render it whole
        static = _static(shared)
        del static["has_key"]
        text = render_values(
            time_ms=time_ms,
            request_id=request_id,
            key=key,
            bytes_in=bytes_in,
            bytes_out=bytes_out,
            duration_ms=duration_ms,
            partition=partition,
            region=region,
            **static,
        )
    else:
        assert isinstance(template, tuple)
        text = from_template(template, time_ms, request_id, key, bytes_in, bytes_out, duration_ms)
    return AuditRow(time_ms, account_id, user_name or arn, name, bucket, key, error_code, text)


def _static(shared: tuple[Any, ...]) -> dict[str, Any]:
    """The values :func:`record_template` takes, from the shared values of a captured record."""
    (
        source,
        name,
        read_only,
        client,
        user_agent,
        bucket,
        has_key,
        parameters,
        kind,
        account_id,
        arn,
        access_key,
        user_name,
        status,
        error_code,
        error_message,
    ) = shared
    return {
        "event_name": name,
        "source_ip": client,
        "user_agent": user_agent[:_USER_AGENT_MAX],
        "read_only": read_only,
        "bucket": bucket,
        "has_key": has_key,
        "parameters": dict(parameters) if parameters else None,
        "identity_type": "Unknown" if kind is None else IDENTITY_TYPES.get(kind, "Unknown"),
        "account": account_id,
        "arn": arn,
        "access_key": access_key,
        "user_name": user_name,
        "role": "",
        "recipient": "",
        "error_code": error_code,
        "error_message": error_message,
        "response": "null",
        "source": source,
        "extra": {"status": status} if status >= 300 else None,
    }


CAPTURE = "s3"
CAPTURES[CAPTURE] = Capture(23, _captured_row)


def _identify(facts: Facts, principal: Principal) -> None:
    facts.identity_type = IDENTITY_TYPES.get(principal.kind._value_, "Unknown")
    facts.account_id = principal.account_id
    facts.arn = principal.arn
    facts.access_key = principal.access_key
    facts.user_name = principal.user_name


def facts_of(req: Request, time_ms: int, started: float, op_name: str | None = None) -> Facts:
    """The facts of ``req`` as known now (identity once authenticated, bytes so far): those of
    a change's record, built when the change is submitted."""
    route = req.route
    plane = req.plane
    headers = req.headers
    if plane is not None:  # the IAM or KMS API (see onshore.service.audit.planes)
        name = plane.name
        parameters = dict(plane.parameters)
        read_only = plane.read_only
        source = plane.source
    else:
        name = op_name or (route.op.value if route is not None else "Unknown")
        if name == "-":
            name = "Unknown"
        parameters = _parameters(req.query, headers)
        read_only = name.startswith(_READ_PREFIXES)
        source = "s3"
    body = req.body
    facts = Facts(
        time_ms,
        name,
        req.request_id,
        req.client,
        headers.get("user-agent", "")[:_USER_AGENT_MAX],
        read_only,
        route.bucket if route is not None else None,
        route.key if route is not None else None,
        parameters,
        bytes_in=body.bytes_received if body is not None else 0,
        duration_ms=int((time.perf_counter() - started) * 1000),
        event_source=source,
    )
    principal = req.principal
    if principal is not None:
        _identify(facts, principal)
    else:
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
