"""The S3 API's side of the audit trail: what a request's record says.

:class:`RequestAudit` is called twice per request by :class:`onshore.s3api.app.S3App`:
``begin`` before routing (so every metadata write the request makes carries its record, see
:mod:`onshore.service.audit.trail`) and ``finish`` after the response is sent (the outcome:
status, error code, bytes out, duration). Only allow-listed query parameters and headers go
into a record (:mod:`onshore.service.audit.events`): never the ``Authorization`` header, a
signature, a presigned URL's credential or a body.

**What the request path pays.** A request's values are *captured* (:func:`_capture`): a tuple
of strings and numbers taken from the request, nothing rendered. A read's capture is buffered
as it is and rendered by the flusher thread; a change's is rendered by the writer thread once
the change has run, with its outcome. Both render from the template of the request's group
(:func:`~onshore.service.audit.render.record_template`: records alike but for their
per-request values), made once per group and kept.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from onshore.domain.errors import S3Error
from onshore.s3api.http import Request
from onshore.service.audit.events import HEADERS_ALLOWED, IDENTITY_TYPES, QUERY_ALLOWED
from onshore.service.audit.render import (
    Template,
    from_template,
    object_json,
    record_template,
    render_values,
)
from onshore.service.audit.trail import (
    CAPTURES,
    AuditTrail,
    Capture,
    Captured,
    Pending,
    Recorder,
    response_elements,
)
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
        """Buffer the request's record, unless its changes carry theirs (the flusher renders
        it: :func:`_captured_row`)."""
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
    """An S3 request being handled: the record of a change it makes is rendered from its
    capture (not from :class:`~onshore.service.audit.events.Facts`)."""

    __slots__ = ("req", "started")

    def __init__(self, trail: AuditTrail, req: Request, started: float) -> None:
        self._trail = trail  # Pending's, set here (one call less per request)
        self._facts = None
        self.changes = 0
        self.token = None
        self.req = req
        self.started = started

    def recorder(self) -> Recorder:
        req = self.req
        route = req.route
        name = route.op.value if route is not None else "Unknown"
        captured = _capture(req, self.started, name, 200, None, None, 0)
        key = captured[_KEY]
        partition, region = self._trail.partition, self._trail.region

        def record(result: object, index: int) -> AuditRow:
            response = object_json(response_elements(result, key))
            return _captured_row(captured, partition, region, response, index)

        return record


def _capture(
    req: Request,
    started: float,
    name: str,
    status: int,
    error_code: str | None,
    error_message: str | None,
    bytes_out: int,
) -> Captured:
    """The values of ``req`` a record needs, as known now (see :func:`_captured_row` for the
    layout): strings, numbers, None and tuples of those only."""
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
    )


# The layout of a capture: its kind, then the values of this request (time, duration, request
# id, key, bytes in, bytes out), then those it may share with other requests: its group, whose
# template renders it (source, operation, read-only, client address, user agent, bucket, whether
# there is a key, parameters, principal kind, account, ARN, access key, user name, status, error
# code and message).
_KEY = 4
_SHARED = 7
_MISSING = object()
_templates: dict[tuple[str, str], dict[tuple[Any, ...], Template | None]] = {}
_TEMPLATES_MAX = 4096


def _captured_row(
    values: Sequence[Any], partition: str, region: str, response: str = "null", index: int = 0
) -> AuditRow:
    """The row of a captured request (``response``: its change's response elements as JSON,
    ``index``: the change's index among the request's changes), from its group's template,
    made for the first request of a group and kept for the next ones."""
    shared = tuple(values[_SHARED:])
    _, time_ms, duration_ms, request_id, key, bytes_in, bytes_out = values[:_SHARED]
    (_, name, _, _, _, bucket, _, _, _, account_id, arn, _, user_name, _, error_code, _) = shared
    template: Any = None
    if not index:  # a request's second and later changes (rare) have their own records
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
    if template is None:  # no template: rendered whole
        static = _static(shared)
        del static["has_key"]
        if index:
            static["extra"] = {**(static["extra"] or {}), "changeIndex": index}
        text = render_values(
            time_ms=time_ms,
            request_id=request_id,
            key=key,
            bytes_in=bytes_in,
            bytes_out=bytes_out,
            duration_ms=duration_ms,
            response=response,
            partition=partition,
            region=region,
            **static,
        )
    else:
        text = from_template(
            template, time_ms, request_id, key, bytes_in, bytes_out, duration_ms, response
        )
    return AuditRow(time_ms, account_id, user_name or arn, name, bucket, key, error_code, text)


def _static(shared: tuple[Any, ...]) -> dict[str, Any]:
    """The values :func:`record_template` takes, from the shared values of a capture."""
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
        "source": source,
        "extra": {"status": status} if status >= 300 else None,
    }


CAPTURE = "s3"
CAPTURES[CAPTURE] = Capture(23, _captured_row)

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
