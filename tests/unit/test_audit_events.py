"""Records: the fast renderer agrees with the readable definition, byte for byte, over many
shapes of record; nothing outside the allow-lists gets in."""

from __future__ import annotations

import itertools
import json
import re

from onshore.service.audit.events import Facts, canonical, event_of
from onshore.service.audit.render import render

_ID = re.compile(r'"eventID":"[0-9a-f-]{36}"')


def variants() -> list[Facts]:
    found = []
    strings = ["", "plain", 'quo"te\\back', "ünïcödé 文件", "ctl\x00\x1f\n\t", "😀 emoji"]
    for n, (bucket, key, error, account, response, extra) in enumerate(
        itertools.product(
            [None, "bucket-a"],
            [None, *strings[1:]],
            [None, "AccessDenied"],
            ["", "123456789012"],
            [None, {"ETag": "abc", "x-amz-version-id": "v1"}, {"key": strings[2]}],
            [None, {"status": 404}, {"changeIndex": 3}],
        )
    ):
        found.append(
            Facts(
                time_ms=1_790_000_000_000 + n * 997,
                event_name="PutObject",
                request_id=f"R{n}",
                source_ip="::1",
                user_agent=strings[n % len(strings)],
                read_only=bool(n % 2),
                bucket=bucket,
                key=key if bucket else None,
                parameters={"versionId": strings[n % 3], "range": "bytes=0-1"} if n % 3 else {},
                identity_type="IAMUser",
                account_id=account,
                arn="arn:p:iam::1:user/x" if n % 4 else "",
                access_key="AKID" if n % 5 else "",
                user_name=strings[n % 6],
                role=["", "audit", "security,system"][n % 3],
                recipient=["", "", "", "", "", "", "210987654321"][n % 7],
                error_code=error,
                error_message=strings[n % 4] if n % 2 else None,
                response=response,
                bytes_in=n,
                bytes_out=n * 2,
                duration_ms=n % 50,
                extra=extra,
                event_source=["s3", "iam", "kms", "admin", "cli"][n % 5],
                event_type=["AwsApiCall", "AwsServiceEvent"][n % 2],
                invoked_by=["", "onshore internal", strings[2]][n % 3],
            )
        )
    return found


def test_render_is_the_canonical_json_of_event_of() -> None:
    for facts in variants():
        fast = render(facts, partition="onshore-cn", region="cn-north-1")
        slow = canonical(event_of(facts, partition="onshore-cn", region="cn-north-1"))
        assert _ID.sub("", fast) == _ID.sub("", slow), facts
        assert fast == canonical(json.loads(fast))


def test_event_ids_are_version_4_uuids_and_differ() -> None:
    facts = variants()[0]
    ids = {json.loads(render(facts, partition="p", region="r"))["eventID"] for _ in range(100)}
    assert len(ids) == 100
    assert all(i[14] == "4" and i[19] in "89ab" for i in ids)


def test_a_record_keeps_only_allow_listed_parameters() -> None:
    from onshore.service.audit.events import QUERY_ALLOWED

    assert not {p for p in QUERY_ALLOWED if p.lower().startswith("x-amz")}


def test_a_record_from_its_groups_template_is_the_record_rendered_whole() -> None:
    """Records rendered from a template (the S3 path: a group's record with the per-request
    values cut out) are byte for byte those :func:`render` makes, whatever the values hold."""
    from onshore.service.audit.render import from_template, object_json, record_template

    odd = ["%s %d %%", "{}", '"\\', "\u2028 ünï", "ctl\x01\n", "/"]
    for n, facts in enumerate(variants()):
        facts.user_agent += odd[n % len(odd)]
        if facts.key is not None:
            facts.key += odd[(n + 1) % len(odd)]
        made = record_template(
            facts.event_name,
            facts.source_ip,
            facts.user_agent,
            facts.read_only,
            facts.bucket,
            facts.key is not None,
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
            facts.event_source,
            facts.extra,
            "onshore-cn",
            "cn-north-1",
            event_type=facts.event_type,
            invoked_by=facts.invoked_by,
        )
        assert made is not None
        response = object_json(facts.response)
        head, line = from_template(
            made[:-1],  # up to the response elements, which a change's outcome gives
            facts.time_ms,
            facts.request_id,
            facts.key,
            facts.bytes_in,
            facts.bytes_out,
            facts.duration_ms,
        )
        text = head + response + made[-1]
        values = (*line.split("\x1f"), response)
        whole = render(facts, partition="onshore-cn", region="cn-north-1")
        assert _ID.sub("", text) == _ID.sub("", whole), facts
        assert text == canonical(json.loads(text))
        # the pieces with the values between them (how a block stores it) are the record
        assert len(values) == len(made) - 1
        assert "".join(p + v for p, v in zip(made, values, strict=False)) + made[-1] == text


def test_response_elements_written_directly_match_the_definition() -> None:
    from datetime import UTC, datetime

    from onshore.domain.models import ObjectVersion, WriteResult
    from onshore.service.audit.render import object_json
    from onshore.service.audit.trail import response_elements, response_json

    now = datetime(2026, 11, 29, tzinfo=UTC)
    results: list[object] = [None, WriteResult(None), object()]
    for key, version_id, etag, marker in itertools.product(
        ["k", 'o"ther\\'], ["", "null", "v1"], ["", "abc"], [False, True]
    ):
        version = ObjectVersion("b", key, version_id, now, etag=etag, is_delete_marker=marker)
        results += [WriteResult(version), WriteResult(None, removed=version.as_removed())]
    for result in results:
        assert response_json(result, "k") == object_json(response_elements(result, "k"))
