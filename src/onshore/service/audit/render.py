"""The canonical JSON of a record, written directly: :func:`render` produces exactly
``canonical(event_of(facts, ...))`` (see :mod:`.events`) in a fraction of the time.

``json.dumps`` with sorted keys spends most of its time on the record's fixed structure; here
the structure is a template whose keys are already in sorted (code point) order, and only the
values go through the JSON string escaper. ``tests/unit/test_audit_events.py`` checks the two
agree over many shapes of record; :func:`~.events.event_of` stays the readable definition.
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Mapping
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any

from onshore.domain.times import ISO_MILLIS, ISO_SECONDS, iso_ms

if TYPE_CHECKING:
    from onshore.service.audit.events import Facts

__all__ = [
    "EVENT_VERSION",
    "Template",
    "from_template",
    "object_json",
    "record_template",
    "render",
    "render_values",
]

EVENT_VERSION = "1.09"

_q: Any = encode_basestring  # str -> its JSON string literal (quotes included), non-ASCII kept


def _value(value: object) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    return str(_q(str(value)))


def object_json(items: Mapping[str, Any] | None) -> str:
    """The canonical JSON of a flat object of strings, integers, booleans and nulls."""
    if not items:
        return "null" if items is None else "{}"
    return "{" + ",".join(f"{_q(k)}:{_value(items[k])}" for k in sorted(items)) + "}"


# Fragments that repeat from record to record, rendered once: a caller's userIdentity, a bucket's
# resource entry. Bounded: cleared when full (they are a cache).
_CACHE_MAX = 4096
_identities: dict[tuple[str, str, str, str, str, str, str], str] = {}
_buckets: dict[tuple[str, str, str], tuple[str, str, str]] = {}


def _identity(
    kind: str, account: str, arn: str, access_key: str, role: str, user: str, invoked_by: str
) -> str:
    found = f'"accessKeyId":{_q(access_key)},' if access_key else ""
    if account:
        found += f'"accountId":{_q(account)},'
    if arn:
        found += f'"arn":{_q(arn)},'
    if invoked_by:
        found += f'"invokedBy":{_q(invoked_by)},'
    if role:
        found += f'"operatorRole":{_q(role)},'
    if account:
        found += f'"principalId":{_q(account)},'
    found += f'"type":{_q(kind)}'
    if user:
        found += f',"userName":{_q(user)}'
    return "{" + found + "}"


def _bucket(partition: str, bucket: str, account: str) -> tuple[str, str, str]:
    """The bucket's resource entry, the object ARN's prefix, and the owner part of an entry."""
    owner = f'"accountId":{_q(account)},' if account else ""
    arn = f"arn:{partition}:s3:::{bucket}"
    return f'{{"ARN":{_q(arn)},{owner}"type":"AWS::S3::Bucket"}}', arn + "/", owner


def render(facts: Facts, *, partition: str, region: str, response_json: str | None = None) -> str:
    """The canonical JSON of the record of ``facts``; ``response_json``, when given, is put
    verbatim as ``responseElements`` (a placeholder for a change's outcome)."""
    return render_values(
        facts.time_ms,
        facts.event_name,
        facts.request_id,
        facts.source_ip,
        facts.user_agent,
        facts.read_only,
        facts.bucket,
        facts.key,
        facts.parameters,
        facts.identity_type,
        facts.account_id,
        facts.arn,
        facts.access_key,
        facts.user_name,
        facts.role,
        facts.recipient,
        facts.error_code,
        facts.error_message,
        object_json(facts.response) if response_json is None else response_json,
        facts.bytes_in,
        facts.bytes_out,
        facts.duration_ms,
        facts.event_source,
        facts.extra,
        partition,
        region,
        event_type=facts.event_type,
        invoked_by=facts.invoked_by,
    )


def render_values(
    time_ms: int,
    event_name: str,
    request_id: str,
    source_ip: str,
    user_agent: str,
    read_only: bool,
    bucket: str | None,
    key: str | None,
    parameters: Mapping[str, str] | None,
    identity_type: str,
    account: str,
    arn: str,
    access_key: str,
    user_name: str,
    role: str,
    recipient: str,
    error_code: str | None,
    error_message: str | None,
    response: str,
    bytes_in: int,
    bytes_out: int,
    duration_ms: int,
    source: str,
    extra: Mapping[str, object] | None,
    partition: str,
    region: str,
    *,
    event_id: str | None = None,
    event_time: str | None = None,
    event_type: str = "AwsApiCall",
    invoked_by: str = "",
) -> str:
    """:func:`render` from the values of the facts, in their order (``response`` already JSON):
    for a caller that has the values at hand, without building :class:`Facts`. ``event_id``
    and ``event_time`` replace the new event id and the formatted ``time_ms``; ``event_type``
    and ``invoked_by`` are those of a service event (``AwsServiceEvent``, e.g. the KMS sweep)."""
    if extra:
        added = object_json(
            {"bytesTransferredIn": bytes_in, "bytesTransferredOut": bytes_out, **extra}
        )
    else:
        added = f'{{"bytesTransferredIn":{int(bytes_in)},"bytesTransferredOut":{int(bytes_out)}}}'
    if parameters:
        params: dict[str, Any] = dict(parameters)
        if bucket is not None:
            params["bucketName"] = bucket
        if key is not None:
            params["key"] = key
        requested = object_json(params)
    elif bucket is None:
        requested = "null" if key is None else f'{{"key":{_q(key)}}}'
    elif key is None:
        requested = f'{{"bucketName":{_q(bucket)}}}'
    else:
        requested = f'{{"bucketName":{_q(bucket)},"key":{_q(key)}}}'
    error = ""
    if error_code is not None:
        error = f'"errorCode":{_q(error_code)},"errorMessage":{_q(error_message or "")},'
    who = (identity_type, account, arn, access_key, role, user_name, invoked_by)
    identity = _identities.get(who)
    if identity is None:
        if len(_identities) >= _CACHE_MAX:
            _identities.clear()
        identity = _identities[who] = _identity(*who)
    recipient = recipient or account  # the account acted on: a bucket's owner
    resources = ""
    if bucket is not None:
        where = (partition, bucket, recipient)
        known = _buckets.get(where)
        if known is None:
            if len(_buckets) >= _CACHE_MAX:
                _buckets.clear()
            known = _buckets[where] = _bucket(*where)
        resources, prefix, owner = known
        if key is not None:
            resources += f',{{"ARN":{_q(prefix + key)},{owner}"type":"AWS::S3::Object"}}'
    return (
        f'{{"additionalEventData":{added},"awsRegion":{_q(region)},'
        f'"durationMs":{int(duration_ms)},{error}"eventID":"{event_id or _event_id()}",'
        f'"eventName":{_q(event_name)},"eventSource":{_q(f"{source}.{partition}")},'
        f'"eventTime":"{event_time or iso_ms(time_ms)}","eventType":{_q(event_type)},'
        f'"eventVersion":"{EVENT_VERSION}","managementEvent":{"true" if key is None else "false"},'
        f'"readOnly":{"true" if read_only else "false"},'
        f'"recipientAccountId":{_q(recipient) if recipient else "null"},'
        f'"requestID":{_q(request_id)},"requestParameters":{requested},'
        f'"resources":[{resources}],"responseElements":{response},'
        f'"sourceIPAddress":{_q(source_ip)},"userAgent":{_q(user_agent)},'
        f'"userIdentity":{identity}}}'
    )


# --- records alike ----------------------------------------------------------------------------
# Most of a record is the same from one request to the next of a client: who it is (identity,
# address, user agent), the operation, the bucket, the outcome. A template is the record of such
# a group cut where each request has values of its own (bytes, duration, event id, time, request
# id, object key): a record is then one string built of the pieces and those values, a fraction
# of rendering it whole. The cuts are found by rendering with placeholders, random per process
# so that no request value can collide with them; a template whose placeholders are not all
# found exactly where expected is refused (None), and its records are rendered whole.
_TOKEN = secrets.token_hex(8)
_ID, _TIME, _REQUEST, _KEY, _RESPONSE = (f"{name}{_TOKEN}" for name in ("i", "t", "r", "k", "o"))
_IN, _OUT, _DURATION = (10**17 + secrets.randbelow(10**17) for _ in range(3))

Template = tuple[str, ...]
"""The pieces of a record between its per-request values (see :func:`record_template`)."""


def record_template(
    event_name: str,
    source_ip: str,
    user_agent: str,
    read_only: bool,
    bucket: str | None,
    has_key: bool,
    parameters: Mapping[str, str] | None,
    identity_type: str,
    account: str,
    arn: str,
    access_key: str,
    user_name: str,
    role: str,
    recipient: str,
    error_code: str | None,
    error_message: str | None,
    source: str,
    extra: Mapping[str, object] | None,
    partition: str,
    region: str,
    *,
    event_type: str = "AwsApiCall",
    invoked_by: str = "",
    response: str | None = None,
) -> Template | None:
    """The template of the records with these values (those of :func:`render_values` but the
    per-request ones: time, request id, key, bytes, duration and, unless ``response`` gives
    the response elements every record of the group has, such as a read's ``null``, the
    response), for :func:`from_template`; None if it cannot be made."""
    text = render_values(
        0,
        event_name,
        _REQUEST,
        source_ip,
        user_agent,
        read_only,
        bucket,
        _KEY if has_key else None,
        parameters,
        identity_type,
        account,
        arn,
        access_key,
        user_name,
        role,
        recipient,
        error_code,
        error_message,
        _RESPONSE if response is None else response,
        _IN,
        _OUT,
        _DURATION,
        source,
        extra,
        partition,
        region,
        event_id=_ID,
        event_time=_TIME,
        event_type=event_type,
        invoked_by=invoked_by,
    )
    cuts = [  # (what is before the value, the value's placeholder), in record order
        ('"bytesTransferredIn":', str(_IN)),
        (',"bytesTransferredOut":', str(_OUT)),
        ('"durationMs":', str(_DURATION)),
        ('"eventID":"', _ID),
        ('"eventTime":"', _TIME),
        ('"requestID":', f'"{_REQUEST}"'),
    ]
    if has_key:
        cuts += [('"key":"', _KEY), ("/", _KEY)]
    if response is None:
        cuts.append(('"responseElements":', _RESPONSE))
    pieces: list[str] = []
    at = 0
    for before, placeholder in cuts:
        found = text.find(before + placeholder, at)
        if found < 0 or text.count(placeholder) != (2 if placeholder == _KEY else 1):
            return None
        found += len(before)
        pieces.append(text[at:found])
        at = found + len(placeholder)
    pieces.append(text[at:])
    if any(_TOKEN in piece for piece in pieces):
        return None
    return tuple(pieces)


def from_template(
    pieces: Template,
    time_ms: int,
    request_id: str,
    key: str | None,
    bytes_in: int,
    bytes_out: int,
    duration_ms: int,
) -> tuple[str, str]:
    """A request's record from its group's template (see :func:`record_template`), and its
    *line*: its own values, each a JSON fragment, joined by ``"\x1f"``, which is how a block
    stores it (:mod:`onshore.storage.sqlite.audit`). The record is the pieces with the values
    between them, in order (``pieces[0] + values[0] + pieces[1] + ... + pieces[-1]``).

    ``pieces`` are a template's up to its response, if it has one cut out (a change's: the
    caller appends the response elements and the last piece, to the record and the line, once
    the change's outcome is known); a template's whole otherwise (a read's)."""
    n = next(_ids)  # the eventID, as _event_id() makes it (inline: one per request)
    event_id = f"{_prefix}{n:012x}" if n < _ID_COUNT else _event_id()
    second, millis = divmod(time_ms, 1000)  # iso_ms(time_ms), its cache read inline
    date = ISO_SECONDS.get(second)
    when = iso_ms(time_ms) if date is None else date + ISO_MILLIS[millis]
    rid = _q(request_id)
    if key is None:
        p0, p1, p2, p3, p4, p5, p6 = pieces
        return (
            f"{p0}{bytes_in}{p1}{bytes_out}{p2}{duration_ms}{p3}{event_id}{p4}{when}{p5}{rid}{p6}",
            f"{bytes_in}\x1f{bytes_out}\x1f{duration_ms}\x1f{event_id}\x1f{when}\x1f{rid}",
        )
    p0, p1, p2, p3, p4, p5, p6, p7, p8 = pieces
    escaped = _q(key)[1:-1]  # JSON escaping is per character: the key inside a longer string
    return (
        f"{p0}{bytes_in}{p1}{bytes_out}{p2}{duration_ms}{p3}{event_id}{p4}{when}{p5}{rid}{p6}"
        f"{escaped}{p7}{escaped}{p8}",
        f"{bytes_in}\x1f{bytes_out}\x1f{duration_ms}\x1f{event_id}\x1f{when}\x1f{rid}"
        f"\x1f{escaped}\x1f{escaped}",
    )


# eventIDs need to be unique, not secret or unpredictable: each is shaped as a version 4 UUID
# whose first 20 hex digits are drawn at random once per process (version and variant bits set)
# and whose last 12 count this process's records. Two processes share a prefix with odds of
# one in 2**74; one process wraps its counter after 2**48 records (decades at 100,000 a
# second), and draws a new prefix when it does.
_ids = itertools.count()
_ID_COUNT = 1 << 48


def _new_prefix() -> str:
    h = f"{secrets.randbits(80) & _PREFIX_MASK | _PREFIX_BITS:020x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-"


# The prefix is the UUID's first 80 bits: its 13th hex digit is the version (4), the top two
# bits of its 17th the variant (10).
_PREFIX_MASK = ~((0xF << 28) | (0xC << 12)) & ((1 << 80) - 1)
_PREFIX_BITS = (0x4 << 28) | (0x8 << 12)
_prefix = _new_prefix()


def _reseed() -> None:
    """A forked server process draws a prefix of its own (it inherited its parent's)."""
    global _prefix, _ids
    _prefix, _ids = _new_prefix(), itertools.count()


os.register_at_fork(after_in_child=_reseed)


def _event_id() -> str:
    """A unique id shaped as a version 4 UUID (see above): one counter step and one format,
    no syscall and no random draw per record."""
    n = next(_ids)  # atomic under the GIL: records are rendered on several threads
    if n >= _ID_COUNT:
        _reseed()
        return _event_id()
    return f"{_prefix}{n:012x}"
