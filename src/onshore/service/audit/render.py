"""The canonical JSON of a record, written directly: :func:`render` produces exactly
``canonical(event_of(facts, ...))`` (see :mod:`.events`) in a fraction of the time.

``json.dumps`` with sorted keys spends most of its time on the record's fixed structure; here
the structure is a template whose keys are already in sorted (code point) order, and only the
values go through the JSON string escaper. ``tests/unit/test_audit_events.py`` checks the two
agree over many shapes of record; :func:`~.events.event_of` stays the readable definition.
"""

from __future__ import annotations

from json.encoder import encode_basestring
from typing import Any

from onshore.service.audit.events import EVENT_VERSION, Facts, _event_id, _iso_ms

__all__ = ["render"]

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


def _object(items: dict[str, Any] | None) -> str:
    if not items:
        return "null" if items is None else "{}"
    return "{" + ",".join(f"{_q(k)}:{_value(items[k])}" for k in sorted(items)) + "}"


def render(facts: Facts, *, partition: str, region: str, response_json: str | None = None) -> str:
    """The canonical JSON of the record of ``facts``; ``response_json``, when given, is put
    verbatim as ``responseElements`` (a placeholder for a change's outcome)."""
    extra = {"bytesTransferredIn": facts.bytes_in, "bytesTransferredOut": facts.bytes_out}
    if facts.extra:
        extra.update(facts.extra)  # type: ignore[arg-type]
    params: dict[str, Any] = dict(facts.parameters)
    bucket, key, account = facts.bucket, facts.key, facts.account_id
    if bucket is not None:
        params["bucketName"] = bucket
    if key is not None:
        params["key"] = key
    error = ""
    if facts.error_code is not None:
        error = (
            f'"errorCode":{_q(facts.error_code)},"errorMessage":{_q(facts.error_message or "")},'
        )
    identity = f'"accessKeyId":{_q(facts.access_key)},' if facts.access_key else ""
    if account:
        identity += f'"accountId":{_q(account)},'
    if facts.arn:
        identity += f'"arn":{_q(facts.arn)},'
    if facts.invoked_by:
        identity += f'"invokedBy":{_q(facts.invoked_by)},'
    if facts.role:
        identity += f'"operatorRole":{_q(facts.role)},'
    if account:
        identity += f'"principalId":{_q(account)},'
    identity += f'"type":{_q(facts.identity_type)}'
    if facts.user_name:
        identity += f',"userName":{_q(facts.user_name)}'
    resources = ""
    if bucket is not None:
        owner = f'"accountId":{_q(account)},' if account else ""
        bucket_arn = f"arn:{partition}:s3:::{bucket}"
        resources = f'{{"ARN":{_q(bucket_arn)},{owner}"type":"AWS::S3::Bucket"}}'
        if key is not None:
            resources += f',{{"ARN":{_q(bucket_arn + "/" + key)},{owner}"type":"AWS::S3::Object"}}'
    source = f"{facts.event_source}.{partition}"
    recipient = facts.recipient or account or None
    response = response_json if response_json is not None else _object(facts.response)
    return (
        f'{{"additionalEventData":{_object(extra)},"awsRegion":{_q(region)},'
        f'"durationMs":{int(facts.duration_ms)},{error}"eventID":"{_event_id()}",'
        f'"eventName":{_q(facts.event_name)},"eventSource":{_q(source)},'
        f'"eventTime":"{_iso_ms(facts.time_ms)}","eventType":{_q(facts.event_type)},'
        f'"eventVersion":"{EVENT_VERSION}","managementEvent":{_value(key is None)},'
        f'"readOnly":{_value(facts.read_only)},"recipientAccountId":{_value(recipient)},'
        f'"requestID":{_q(facts.request_id)},"requestParameters":{_object(params or None)},'
        f'"resources":[{resources}],"responseElements":{response},'
        f'"sourceIPAddress":{_q(facts.source_ip)},"userAgent":{_q(facts.user_agent)},'
        f'"userIdentity":{{{identity}}}}}'
    )
