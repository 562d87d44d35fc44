"""Captured requests: the cheapest form of a record on the request path, and how it is rendered.

A request's record is not rendered where the request is handled. The API layer *captures* it
(:func:`onshore.s3api.audit.RequestAudit`): a tuple of the raw values the record needs, strings,
numbers, None and tuples of those, laid out as:

* ``"s3"`` (the kind of capture);
* the values of this request: time (ms), duration (ms), request id, object key, bytes in, bytes
  out;
* the values it may share with other requests, which make its *group*: event source,
  operation, read-only, client address, user agent, bucket, whether there is a key, parameters
  (a tuple of name/value pairs, or None), principal kind, account, ARN, access key, user name,
  status, error code, error message.

A read's capture waits in the trail's buffer (:meth:`~.trail.AuditTrail.capture`) and the
flusher renders it (:func:`captured_rows`); a change's is staged by the change's job, with the
change's outcome, and rendered at the end of the writer's batch (:func:`staged_rows`), just
before the batch commits. Either way a record is made from its group's template
(:func:`~.render.record_template`, made for the first record of a group and kept), hashed and
appended to the chain many records at a time: the per-record work is a few string joins, done
in one warm loop rather than scattered over the request path.

Before changes' records were staged, each was written in the change's transaction as a
*pending* row (the group's values as JSON, the request's own values as columns) for the flusher
to render later; :func:`pending_rows` still renders the rows a crash of such a version left.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

from onshore.service.audit.events import IDENTITY_TYPES
from onshore.service.audit.render import Template, from_template, record_template, render_values
from onshore.storage.sqlite.audit import AuditRow

__all__ = [
    "KIND",
    "SHARED",
    "SIZE",
    "captured_rows",
    "Prepared",
    "pending_rows",
    "prepare",
    "staged_rows",
]

KIND = "s3"
SIZE = 23  # values in a capture, its kind included
SHARED = 7  # where the values a request may share with others start
KEY = 4  # where its object key is

_USER_AGENT_MAX = 512
_TEMPLATES_MAX = 4096
_MISSING = object()

# Per (partition, region): each group's template (None: none could be made, rendered whole).
_templates: dict[tuple[str, str], dict[tuple[Any, ...], Template | None]] = {}


def captured_rows(
    captured: Sequence[Any], start: int, stop: int, partition: str, region: str
) -> list[AuditRow]:
    """The rows of the captures laid end to end in ``captured[start:stop]`` (as the trail
    buffers them; ``start`` and ``stop`` are multiples of :data:`SIZE`). One loop for many
    records: this is most of the flusher's work on a busy server."""
    cache = _templates.get((partition, region))
    if cache is None:
        cache = _templates.setdefault((partition, region), {})
    made: list[AuditRow] = []
    add = made.append
    for at in range(start, stop, SIZE):
        shared = tuple(captured[at + SHARED : at + SIZE])
        template: Any = cache.get(shared, _MISSING)
        if template is _MISSING:
            template = _template(cache, shared, partition, region)
        _, time_ms, duration_ms, request_id, key, bytes_in, bytes_out = captured[at : at + SHARED]
        if template is None:  # rare: rendered whole
            own = captured[at + 1 : at + SHARED]  # time, duration, request id, key, bytes in, out
            add(_row(shared, partition, region, "null", 0, *own))
            continue
        text, values = from_template(
            template, time_ms, request_id, key, bytes_in, bytes_out, duration_ms, "null"
        )
        add(
            _new_row(
                (
                    time_ms,
                    shared[9],
                    shared[12] or shared[10],
                    shared[1],
                    shared[5],
                    key,
                    shared[14],
                    text,
                    template,
                    values,
                )
            )
        )
    return made


_new_row: Any = functools.partial(tuple.__new__, AuditRow)  # AuditRow(*values), minus a frame


Prepared = tuple[Template, str, tuple[str, ...]]
"""A change's record rendered ahead of its change (:func:`prepare`): its group's template, its
text up to its response elements, and its values before them."""


def prepare(captured: Sequence[Any], partition: str, region: str) -> Prepared | None:
    """Render a change's record, but for its response elements, from its capture: on the
    request path, when the change is submitted, so that the writer, which holds the lock every
    server process's writes wait for, only appends the change's outcome (:func:`staged_rows`).
    None if its group has no template (its record is then rendered whole, at the end of the
    batch)."""
    template = _template_of(tuple(captured[SHARED:]), partition, region)
    if template is None:
        return None
    _, time_ms, duration_ms, request_id, key, bytes_in, bytes_out = captured[:SHARED]
    text, values = from_template(
        template, time_ms, request_id, key, bytes_in, bytes_out, duration_ms, ""
    )
    return template, text[: len(text) - len(template[-1])], values[:-1]


def staged_rows(
    staged: Sequence[tuple[Sequence[Any], str, int, Prepared | None]], partition: str, region: str
) -> list[AuditRow]:
    """The rows of changes' records as their jobs staged them: each change's capture, its
    response elements (JSON), its index among the request's changes and its record as
    :func:`prepare` rendered it ahead (used for a request's first change; a later one, rare,
    has a record of its own, rendered whole)."""
    made: list[AuditRow] = []
    add = made.append
    for captured, response, index, prepared in staged:
        if index or prepared is None:
            add(_row(tuple(captured[SHARED:]), partition, region, response, index,
                     *captured[1:SHARED]))  # fmt: skip
            continue
        template, head, values = prepared
        add(
            _new_row(
                (
                    captured[1],  # time
                    captured[16],  # account
                    captured[19] or captured[17],  # user name, or ARN
                    captured[8],  # operation
                    captured[12],  # bucket
                    captured[KEY],
                    captured[21],  # error code
                    head + response + template[-1],
                    template,
                    (*values, response),
                )
            )
        )
    return made


def pending_rows(rows: Sequence[Sequence[Any]], partition: str, region: str) -> list[AuditRow]:
    """The rows of pending changes (``audit_pending``, as read back: kind, the group's values
    as JSON, the request's own values, response, index)."""
    made = []
    decoded: dict[str, tuple[Any, ...]] = {}
    for row in rows:
        kind, text, time_ms, duration_ms, request_id, key, bytes_in, bytes_out, response, index = (
            row
        )
        shared = decoded.get(text)
        if shared is None:
            if kind != KIND:
                raise ValueError(f"unknown kind of pending audit record: {kind!r}")
            values = json.loads(text)
            if values[7] is not None:  # parameters: pairs, as captured
                values[7] = tuple(tuple(pair) for pair in values[7])
            shared = decoded[text] = tuple(values)
        own = (time_ms, duration_ms, request_id, key, bytes_in, bytes_out)
        made.append(_row(shared, partition, region, response, index, *own))
    return made


def _row(
    shared: tuple[Any, ...],
    partition: str,
    region: str,
    response: str,
    index: int,
    time_ms: int,
    duration_ms: int,
    request_id: str,
    key: str | None,
    bytes_in: int,
    bytes_out: int,
) -> AuditRow:
    (_, name, _, _, _, bucket, _, _, _, account_id, arn, _, user_name, _, error_code, _) = shared
    # a request's second and later changes (rare) have records of their own
    template = None if index else _template_of(shared, partition, region)
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
        return AuditRow(time_ms, account_id, user_name or arn, name, bucket, key, error_code, text)
    text, values = from_template(
        template, time_ms, request_id, key, bytes_in, bytes_out, duration_ms, response
    )
    return AuditRow(
        time_ms, account_id, user_name or arn, name, bucket, key, error_code, text, template, values
    )


def _template_of(shared: tuple[Any, ...], partition: str, region: str) -> Template | None:
    """The template of a group (made and kept the first time; None if it has none)."""
    cache = _templates.get((partition, region))
    if cache is None:
        cache = _templates.setdefault((partition, region), {})
    template: Any = cache.get(shared, _MISSING)
    if template is _MISSING:
        template = _template(cache, shared, partition, region)
    return template  # type: ignore[no-any-return]


def _template(
    cache: dict[tuple[Any, ...], Template | None],
    shared: tuple[Any, ...],
    partition: str,
    region: str,
) -> Template | None:
    """Make, keep (in ``cache``, bounded) and return the template of a new group."""
    if len(cache) >= _TEMPLATES_MAX:
        cache.clear()
    made = cache[shared] = record_template(**_static(shared), partition=partition, region=region)
    return made


def _static(shared: tuple[Any, ...]) -> dict[str, Any]:
    """The values :func:`record_template` takes, from a capture's shared values."""
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
