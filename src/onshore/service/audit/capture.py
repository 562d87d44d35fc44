"""Captured requests: the cheapest form of a record on the request path, and how it is rendered.

A request's record is not rendered where the request is handled. Most of a record is the same
from one request to the next of a client: who it is, from which address, with which user agent,
which operation on which bucket, with what outcome. Those *shared* values (a tuple, see
:data:`Shared`) make the request's :class:`Group`, looked up in a dictionary
(:class:`Groups`) and made the first time it is seen, with its template
(:func:`~.render.record_template`): its record cut where each request has values of its own.
What the request path keeps of a request is then its group and those values: time, duration,
request id, object key, bytes in and out.

* A read's (and any request's that changed nothing) waits in the trail's buffer as these seven
  values (:data:`SIZE`), and the flusher renders it (:meth:`Groups.captured_rows`): the
  template's pieces with the values between them, one string join.
* A change's is rendered ahead, when the change is submitted, but for the change's outcome
  (:class:`Change`); the change's job stages it with its response elements, and the writer
  finishes it at the end of its batch (:meth:`Groups.staged_rows`), just before the batch
  commits, with a few string concatenations under the writers' lock.

A record whose group has no template (:func:`~.render.record_template` refuses one if a value
holds its placeholders), and a request's second and later changes (``DeleteObjects``: they
carry a ``changeIndex``), are rendered whole. Either way a row (:class:`AuditRow`) carries the
record's line (its values as a block stores them) and its group's ``about`` (what search filters
on): a block and the search rows are made from those without looking at the record again.

Before changes' records were staged, each was written in the change's transaction as a
*pending* row (the group's values as JSON, the request's own values as columns) for the flusher
to render later; :func:`pending_rows` still renders the rows a crash of such a version left.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from onshore.service.audit.events import IDENTITY_TYPES
from onshore.service.audit.render import Template, from_template, record_template, render_values
from onshore.storage.sqlite.audit import FIELD, About, AuditRow

__all__ = [
    "KIND",
    "SIZE",
    "Change",
    "Group",
    "Groups",
    "Shared",
    "change",
    "pending_rows",
]

KIND = "s3"  # the kind of a pending row (see pending_rows)

SIZE = 7
"""Values per buffered capture: group, time (ms), duration (ms), request id, key, bytes in,
bytes out. The trail keeps the values of all buffered captures in one flat list: a tuple kept
for a second is one more object for the garbage collector to count and visit, a string or a
number in a list is not (with thousands of requests a second, the difference is measurable)."""

Shared = tuple[Any, ...]
"""A request's shared values, in this order: event source, operation, read-only, client
address, user agent, bucket, whether there is a key, parameters (a tuple of name/value pairs,
or None), principal kind, account, ARN, access key, user name, status, error code, error
message, recipient (the bucket owner's account when not the caller's, else ""). Strings,
numbers, None and tuples of those only (hashable, and JSON for a pending row)."""

_RECIPIENT = 16  # the recipient's place in Shared (pending rows of earlier versions lack it)

_USER_AGENT_MAX = 512
_GROUPS_MAX = 4096
_READ_RESPONSE = "null"  # a read's response elements (it has none)

_new_row: Any = functools.partial(tuple.__new__, AuditRow)  # AuditRow(*values), minus a frame


class Group:
    """Requests alike in their shared values (:data:`Shared`), and what their records share.

    ``template`` is the group's template, as a block stores it, None if it has none; ``cut``
    its pieces up to the response elements (a read's template has them written in: ``cut`` is
    the whole template; a change's has them cut out, and ``tail`` is the piece after them);
    ``about`` what search filters its records on, under the account they are about (the
    bucket owner's); ``also`` the same under the caller's account, when it is another one (a
    request to another account's bucket is about both), else None."""

    __slots__ = ("shared", "template", "cut", "tail", "about", "also")

    def __init__(self, shared: Shared, template: Template | None, change: bool) -> None:
        self.shared = shared
        self.template = template
        self.cut = template[:-1] if change and template is not None else template
        self.tail = template[-1] if change and template is not None else ""
        name, bucket, account, arn, user_name, error_code, recipient = (
            shared[i] for i in (1, 5, 9, 10, 12, 14, _RECIPIENT)
        )
        self.about: About = (recipient or account, user_name or arn, name, bucket, error_code)
        self.also: About | None = (
            (account, user_name or arn, name, bucket, error_code) if recipient and account else None
        )


class Change(NamedTuple):
    """A change's record as captured when the change is submitted: its request's time so far,
    its group and own values and, for a request's first change whose group has a template, the
    record rendered ahead but for its response elements (``head``: the record up to them,
    ``line``: the values up to them; see :func:`change`).

    It is also the job the writer runs for the change (one tuple per change, rather than a
    closure and its cells): ``work`` is the change itself and ``request`` the request's state,
    whose ``commit(change, conn)`` runs the work and stages the record (the API layer's)."""

    group: Group
    time_ms: int
    duration_ms: int
    request_id: str
    key: str | None
    bytes_in: int
    head: str | None = None
    line: str | None = None
    work: Any = None
    request: Any = None

    def __call__(self, conn: Any) -> Any:
        return self.request.commit(self, conn)


_new_change: Any = functools.partial(tuple.__new__, Change)  # Change(*values), minus a frame


def change(
    group: Group,
    time_ms: int,
    duration_ms: int,
    request_id: str,
    key: str | None,
    bytes_in: int,
    ahead: bool,
    work: Any = None,
    request: Any = None,
) -> Change:
    """A change's capture, rendered ahead if ``ahead`` (a request's first change) and its group
    has a template."""
    cut = group.cut
    head = line = None
    if ahead and cut is not None:
        head, line = from_template(cut, time_ms, request_id, key, bytes_in, 0, duration_ms)
    made: Change = _new_change(
        (group, time_ms, duration_ms, request_id, key, bytes_in, head, line, work, request)
    )
    return made


class Groups:
    """The groups seen by one trail (of one partition and region), made on first sight and kept
    (a cache: emptied when it holds :data:`_GROUPS_MAX`). ``reads`` and ``changes`` are looked
    up by the request path directly (``groups.reads.get(shared) or groups.read(shared)``); a
    group of changes differs from one of reads in its template only."""

    def __init__(self, partition: str, region: str) -> None:
        self.partition = partition
        self.region = region
        self.reads: dict[Shared, Group] = {}
        self.changes: dict[Shared, Group] = {}

    def read(self, shared: Shared) -> Group:
        """Make, keep and return the group of a new read (a request that changed nothing)."""
        return self._made(self.reads, shared, False)

    def change(self, shared: Shared) -> Group:
        """Make, keep and return the group of a new change."""
        return self._made(self.changes, shared, True)

    def _made(self, cache: dict[Shared, Group], shared: Shared, change: bool) -> Group:
        if len(cache) >= _GROUPS_MAX:
            cache.clear()
        response = None if change else _READ_RESPONSE
        template = record_template(
            **_static(shared), partition=self.partition, region=self.region, response=response
        )
        made = cache[shared] = Group(shared, template, change)
        return made

    def captured_rows(self, captured: Sequence[Any], start: int, stop: int) -> list[AuditRow]:
        """The rows of the captures laid end to end in ``captured[start:stop]`` (as the trail
        buffers them; ``start`` and ``stop`` are multiples of :data:`SIZE`). One loop for many
        records: this is most of the flusher's work on a busy server."""
        made: list[AuditRow] = []
        add = made.append
        for at in range(start, stop, SIZE):
            group, time_ms, duration_ms, request_id, key, bytes_in, bytes_out = captured[
                at : at + SIZE
            ]
            cut = group.cut
            if cut is None:  # rare: rendered whole
                add(
                    _whole(group, self.partition, self.region, _READ_RESPONSE, 0, time_ms,
                           duration_ms, request_id, key, bytes_in, bytes_out)
                )  # fmt: skip
                continue
            text, line = from_template(
                cut, time_ms, request_id, key, bytes_in, bytes_out, duration_ms
            )
            add(_new_row((time_ms, key, text, group.about, cut, line, group.also)))
        return made

    def staged_rows(self, staged: Sequence[tuple[Change, str, int]]) -> list[AuditRow]:
        """The rows of changes' records as their jobs staged them: the change, its response
        elements (JSON) and its index among its request's changes."""
        made: list[AuditRow] = []
        add = made.append
        for change, response, index in staged:
            group = change.group
            head = change.head
            if index or head is None:
                add(
                    _whole(group, self.partition, self.region, response, index, change.time_ms,
                           change.duration_ms, change.request_id, change.key, change.bytes_in, 0)
                )  # fmt: skip
                continue
            add(
                _new_row(
                    (
                        change.time_ms,
                        change.key,
                        head + response + group.tail,
                        group.about,
                        group.template,
                        f"{change.line}{FIELD}{response}",
                        group.also,
                    )
                )
            )
        return made


def pending_rows(rows: Sequence[Sequence[Any]], partition: str, region: str) -> list[AuditRow]:
    """The rows of pending changes (``audit_pending``, as read back: kind, the group's values
    as JSON, the request's own values, response, index), rendered whole."""
    made = []
    decoded: dict[str, Shared] = {}
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
            if len(values) == _RECIPIENT:  # captured before the recipient was
                values.append("")
            shared = decoded[text] = tuple(values)
        made.append(_whole(Group(shared, None, True), partition, region, response, index,
                           time_ms, duration_ms, request_id, key, bytes_in, bytes_out))  # fmt: skip
    return made


def _whole(
    group: Group,
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
    """A record rendered whole from its group's shared values and its own, without a template
    (its group has none, or it is a request's second or later change, which says its index
    among the request's changes: ``additionalEventData.changeIndex``)."""
    static = _static(group.shared)
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
    return AuditRow(time_ms, key, text, group.about, also=group.also)


def _static(shared: Shared) -> dict[str, Any]:
    """The values :func:`record_template` takes, from a request's shared values."""
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
        recipient,
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
        "recipient": recipient,
        "error_code": error_code,
        "error_message": error_message,
        "source": source,
        "extra": {"status": status} if status >= 300 else None,
    }
