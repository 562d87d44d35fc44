"""What one audit record says, in the shape of an AWS CloudTrail event.

A record is a JSON object with CloudTrail's field names (``eventVersion``, ``eventTime``,
``eventSource``, ``eventName``, ``awsRegion``, ``sourceIPAddress``, ``userAgent``,
``userIdentity``, ``requestParameters``, ``responseElements``, ``errorCode``, ``errorMessage``,
``requestID``, ``eventID``, ``readOnly``, ``resources``, ``eventType``, ``recipientAccountId``)
plus CloudTrail's data-event extras ``additionalEventData.bytesTransferredIn/Out`` and our own
``durationMs``. Tools that read CloudTrail read these.

What is never in a record: secrets (the ``Authorization`` header, signatures, the credential
part of presigned URLs, security tokens: request parameters are taken from an allow-list, not
copied wholesale) and object bodies.

**Canonical form.** A record is hashed as its canonical JSON: UTF-8, keys sorted, no
whitespace (``separators=(",", ":")``), non-ASCII characters as themselves. Records hold only
strings, integers, booleans, null, objects and arrays — no floats — so any JSON library that
sorts keys reproduces the same bytes (for ASCII keys, as all of ours are, this is also RFC 8785
JCS).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from onshore.domain.times import iso_ms
from onshore.service.audit.render import EVENT_VERSION, _event_id, object_json, render
from onshore.storage.sqlite.audit import AuditRow

__all__ = [
    "EVENT_VERSION",
    "Facts",
    "accounts_of",
    "canonical",
    "event_of",
    "event_time_ms",
    "fill",
    "row_from_event",
    "row_of",
    "template",
]


# Query parameters worth keeping (none of them is a credential). Everything else of the query
# string — X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token, ... — is dropped.
QUERY_ALLOWED = frozenset(
    {
        "versionId",
        "uploadId",
        "partNumber",
        "prefix",
        "delimiter",
        "marker",
        "max-keys",
        "list-type",
        "start-after",
        "continuation-token",
        "key-marker",
        "version-id-marker",
        "upload-id-marker",
        "part-number-marker",
        "max-uploads",
        "max-parts",
        "encoding-type",
        "fetch-owner",
    }
)
HEADERS_ALLOWED = {
    "range": "range",
    "x-amz-copy-source": "x-amz-copy-source",
    "x-amz-copy-source-range": "x-amz-copy-source-range",
    "x-amz-storage-class": "x-amz-storage-class",
    "x-amz-server-side-encryption": "x-amz-server-side-encryption",
    "x-amz-bypass-governance-retention": "x-amz-bypass-governance-retention",
}

# CloudTrail's userIdentity.type for each principal kind.
IDENTITY_TYPES = {
    "root": "Root",
    "tenant-admin": "Root",
    "user": "IAMUser",
    "anonymous": "AnonymousPrincipal",
}


def canonical(value: object) -> str:
    """The canonical JSON text of a record (see the module docstring)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(slots=True)
class Facts:
    """Everything known about one request when its record is written (gathered by the API
    layer, turned into the CloudTrail shape by :func:`event_of`, off the hot path)."""

    time_ms: int
    event_name: str
    request_id: str
    source_ip: str
    user_agent: str
    read_only: bool
    bucket: str | None = None
    key: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    identity_type: str = "Unknown"
    account_id: str = ""
    arn: str = ""
    access_key: str = ""
    user_name: str = ""
    role: str = ""  # an operator's role (admin API and CLI records): userIdentity.operatorRole
    recipient: str = ""  # the account acted on, when not the caller's (an operator's action)
    error_code: str | None = None
    error_message: str | None = None
    response: dict[str, str] | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    duration_ms: int = 0
    event_source: str = "s3"
    extra: dict[str, object] | None = None
    # What the service did on its own (a KMS key deleted or rotated when due): CloudTrail's
    # ``eventType`` ``AwsServiceEvent`` and ``userIdentity.invokedBy``.
    event_type: str = "AwsApiCall"
    invoked_by: str = ""


def event_of(facts: Facts, *, partition: str, region: str) -> dict[str, object]:
    """The CloudTrail-shaped record of ``facts``."""
    params: dict[str, object] = dict(facts.parameters)
    if facts.bucket is not None:
        params["bucketName"] = facts.bucket
    if facts.key is not None:
        params["key"] = facts.key
    identity: dict[str, object] = {"type": facts.identity_type}
    if facts.account_id:
        identity["accountId"] = facts.account_id
        identity["principalId"] = facts.account_id
    if facts.arn:
        identity["arn"] = facts.arn
    if facts.access_key:
        identity["accessKeyId"] = facts.access_key
    if facts.invoked_by:
        identity["invokedBy"] = facts.invoked_by
    if facts.role:
        identity["operatorRole"] = facts.role
    if facts.user_name:
        identity["userName"] = facts.user_name
    event: dict[str, object] = {
        "eventVersion": EVENT_VERSION,
        "eventTime": iso_ms(facts.time_ms),
        "eventSource": f"{facts.event_source}.{partition}",
        "eventName": facts.event_name,
        "awsRegion": region,
        "sourceIPAddress": facts.source_ip,
        "userAgent": facts.user_agent,
        "userIdentity": identity,
        "requestParameters": params or None,
        "responseElements": facts.response,
        "requestID": facts.request_id,
        "eventID": _event_id(),
        "readOnly": facts.read_only,
        "eventType": facts.event_type,
        "managementEvent": facts.key is None,
        "recipientAccountId": facts.recipient or facts.account_id or None,
        "resources": _resources(facts, partition),
        "additionalEventData": {
            "bytesTransferredIn": facts.bytes_in,
            "bytesTransferredOut": facts.bytes_out,
            **(facts.extra or {}),
        },
        "durationMs": facts.duration_ms,
    }
    if facts.error_code is not None:
        event["errorCode"] = facts.error_code
        event["errorMessage"] = facts.error_message or ""
    return event


# Placeholders for the parts of a change's record only known once the change is applied. They
# are random per process, so no request content can collide with them.
_TOKEN = secrets.token_hex(8)
_RESPONSE = f"\x00response-{_TOKEN}\x00"
_RESPONSE_JSON = json.dumps(_RESPONSE)


def template(facts: Facts, *, partition: str, region: str) -> AuditRow:
    """The row of a change's record, built before the change runs (off the writer thread), with
    a placeholder for ``responseElements``; see :func:`fill`."""
    text = render(facts, partition=partition, region=region, response_json=_RESPONSE_JSON)
    return row_of_event(facts, text)


def fill(row: AuditRow, facts: Facts, response: dict[str, str] | None, index: int) -> AuditRow:
    """``row`` (from :func:`template`) with the change's response elements and its index among
    the request's changes (a request's second and later changes are rare: their record is
    rebuilt whole): the same bytes :func:`row_of` would have produced."""
    if index:
        facts.response = response
        facts.extra = {**(facts.extra or {}), "changeIndex": index}
        event = json.loads(row.event)
        event["responseElements"] = response
        event["additionalEventData"] = {**event["additionalEventData"], "changeIndex": index}
        text = canonical(event)
    else:
        text = row.event.replace(_RESPONSE_JSON, object_json(response), 1)
    return row._replace(event=text)


def row_of_event(facts: Facts, event: str) -> AuditRow:
    user = facts.user_name or facts.arn
    about = (facts.recipient or facts.account_id, user, facts.event_name, facts.bucket)
    also = None
    if facts.recipient and facts.account_id and facts.recipient != facts.account_id:
        also = (facts.account_id, user, facts.event_name, facts.bucket, facts.error_code)
    return AuditRow(facts.time_ms, facts.key, event, (*about, facts.error_code), also=also)


def row_from_event(time_ms: int, text: str, event: dict[str, Any] | None = None) -> AuditRow:
    """The row of a stored record, its searchable fields read back from its JSON (``event``:
    the JSON already parsed)."""
    if event is None:
        event = json.loads(text)
    identity = event.get("userIdentity") or {}
    params = event.get("requestParameters") or {}
    caller = str(identity.get("accountId", ""))
    recipient = str(event.get("recipientAccountId") or caller)
    rest = (
        str(identity.get("userName") or identity.get("arn") or ""),
        str(event.get("eventName", "")),
        params.get("bucketName"),
        event.get("errorCode"),
    )
    also = (caller, *rest) if caller and caller != recipient else None
    return AuditRow(time_ms, params.get("key"), text, (recipient, *rest), also=also)


def event_time_ms(text: str) -> int:
    """An ``eventTime`` (``2026-11-29T20:58:48.124Z``) as milliseconds since the epoch."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return round(moment.timestamp() * 1000)


def accounts_of(text: str) -> set[str]:
    """The accounts (tenants) a stored record is about: ``recipientAccountId`` (the owner of
    the bucket acted on, or the tenant an operator acted on) and the caller's account."""
    event = json.loads(text)
    identity = event.get("userIdentity") or {}
    found = {str(event.get("recipientAccountId") or ""), str(identity.get("accountId") or "")}
    found.discard("")
    return found


def row_of(facts: Facts, *, partition: str, region: str) -> AuditRow:
    """The row to append for ``facts``: its canonical record and the indexed columns."""
    return row_of_event(facts, render(facts, partition=partition, region=region))


def _resources(facts: Facts, partition: str) -> list[dict[str, str]]:
    if facts.bucket is None:
        return []
    found = [{"type": "AWS::S3::Bucket", "ARN": f"arn:{partition}:s3:::{facts.bucket}"}]
    if facts.key is not None:
        found.append(
            {"type": "AWS::S3::Object", "ARN": f"arn:{partition}:s3:::{facts.bucket}/{facts.key}"}
        )
    owner = facts.recipient or facts.account_id  # the bucket's owner
    if owner:
        for resource in found:
            resource["accountId"] = owner
    return found
