"""The S3 request path of the audit trail, in process: signed requests go straight into the ASGI
application, and the trail's database is read directly.

* a change's record is chained (rendered, hashed, indexed) in the change's own commit; a read's
  waits for the next flush;
* pending rows (how earlier versions wrote changes' records) that a crash left behind are
  chained at the next start, in commit order;
* records rendered from a group's template say exactly what each request did.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]

from onshore.app import build
from onshore.config import load
from onshore.service.audit.reader import Filters, reading, search
from onshore.service.audit.trail import AuditTrail
from onshore.service.rootkey import load_root_key
from onshore.storage.sqlite import SqliteMetadataStore
from onshore.storage.sqlite import audit as sql
from tests.unit import legacy_audit

AK, SK, REGION = "audit-test", "audit-test-secret", "local-1"


def scope(method: str, path: str, body: bytes = b"", query: str = "") -> dict[str, object]:
    url = f"http://127.0.0.1:9000{path}" + (f"?{query}" if query else "")
    req = AWSRequest(
        method=method, url=url, data=body, headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}
    )
    S3SigV4Auth(Credentials(AK, SK), "s3", REGION).add_auth(req)
    headers = [(b"host", b"127.0.0.1:9000"), (b"user-agent", b"test-agent/1.0 %s")]
    headers += [(k.lower().encode(), v.encode()) for k, v in req.headers.items()]
    if body:
        headers.append((b"content-length", str(len(body)).encode()))
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": headers,
        "client": ("10.1.2.3", 5000),
    }


class App:
    def __init__(self, data_dir: Path) -> None:
        config = load(
            {
                "data_dir": str(data_dir),
                "access_log": False,
                "encryption": False,
                "audit_flush_interval": 3600,
                "region": REGION,
            },
            environ={"ONSHORE_ROOT_ACCESS_KEY": AK, "ONSHORE_ROOT_SECRET_KEY": SK},
        )
        self.built = build(config)
        self.app = self.built.app
        self.data_dir = data_dir

    @property
    def trail(self) -> AuditTrail:
        audit = self.app.audit  # type: ignore[attr-defined]
        assert audit is not None
        trail: AuditTrail = audit.trail
        return trail

    def call(self, method: str, path: str, body: bytes = b"", query: str = "") -> int:
        status = 0

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])

        async def run() -> None:
            await self.app(scope(method, path, body, query), receive, send)  # type: ignore[arg-type]

        asyncio.run(run())
        return status

    def records(self) -> list[dict[str, Any]]:
        with reading(self.data_dir) as conn:
            head, _ = sql.head(conn)
            return [json.loads(e.event) for e in sql.events(conn, 1, head)]

    def pending(self) -> int:
        with reading(self.data_dir) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM audit_pending").fetchone()[0])

    def close(self) -> None:
        shutdown = self.app.on_shutdown
        assert shutdown is not None
        shutdown()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    made = App(tmp_path / "data")
    yield made
    made.close()


def test_a_change_is_chained_with_its_commit_and_reads_by_the_flush(app: App) -> None:
    assert app.call("PUT", "/bucket") == 200
    app.trail.flush()
    before = len(app.records())
    assert app.call("PUT", "/bucket/k1", b"hello") == 200
    assert len(app.records()) == before + 1  # chained in the change's own commit
    assert app.call("GET", "/bucket/k1") == 200
    assert app.call("GET", "/bucket/missing") == 404
    assert len(app.records()) == before + 1 and app.pending() == 0  # reads wait for the flush
    app.trail.flush()
    found = app.records()[before:]
    assert [(e["eventName"], e.get("errorCode")) for e in found] == [
        ("PutObject", None),
        ("GetObject", None),
        ("GetObject", "NoSuchKey"),
    ]
    put, got, missing = found
    assert put["responseElements"] == {"ETag": "5d41402abc4b2a76b9719d911017c592"}
    assert put["additionalEventData"] == {"bytesTransferredIn": 5, "bytesTransferredOut": 0}
    assert put["readOnly"] is False and got["readOnly"] is True
    assert got["additionalEventData"]["bytesTransferredOut"] == 5
    assert missing["additionalEventData"]["status"] == 404
    for event in found:
        assert event["userAgent"] == "test-agent/1.0 %s"
        assert event["sourceIPAddress"] == "10.1.2.3"
        assert event["userIdentity"]["accessKeyId"] == AK
        assert event["awsRegion"] == REGION
    with reading(app.data_dir) as conn:
        assert [e.seq for e in search(conn, Filters(key_prefix="k1"))] == [before + 1, before + 2]


def test_pending_changes_left_by_a_crash_are_chained_at_the_next_start(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An earlier version wrote each change's record as a pending row, for the flusher to
    chain: a crash left such rows behind, and the next start chains them in commit order."""
    staged: list[tuple[Any, str, int]] = []
    # the changes commit, but their records are taken aside, then written as pending rows
    monkeypatch.setattr(app.app.audit, "stage", staged.append)  # type: ignore[attr-defined]
    assert app.call("PUT", "/bucket") == 200
    for n in range(3):
        assert app.call("PUT", f"/bucket/k{n}", b"x" * n) == 200
    assert app.call("DELETE", "/bucket/k0") == 204

    def pend(conn: Any) -> None:
        for change, response, index in staged:
            legacy_audit.pend(conn, legacy_audit.captured(change), response, index)

    app.trail._writer.submit(pend)
    assert app.pending() == 5  # the process "dies" here: nothing flushed
    store = SqliteMetadataStore(app.data_dir / "metadata.db")  # the next start
    restarted = AuditTrail(
        store.writer,
        load_root_key(app.data_dir),
        partition="onshore",
        region=REGION,
        flush_interval=3600,
    )
    try:
        assert app.pending() == 0
        names = [(e["eventName"], e["requestParameters"].get("key")) for e in app.records()]
        assert names[-5:] == [
            ("CreateBucket", None),
            ("PutObject", "k0"),
            ("PutObject", "k1"),
            ("PutObject", "k2"),
            ("DeleteObject", "k0"),
        ]  # in the order the changes committed
    finally:
        restarted.close()
        store.close()


def test_a_change_is_searchable_after_the_flush_or_a_restart(app: App) -> None:
    """A change's record is chained with the change; its search row comes with the next flush
    (one per group of records), or, if the process dies first, with the next start."""
    assert app.call("PUT", "/bucket") == 200
    assert app.call("PUT", "/bucket/k1", b"one") == 200
    assert app.call("PUT", "/bucket/k2", b"two") == 200
    with reading(app.data_dir) as conn:
        assert list(search(conn, Filters(key_prefix="k"))) == []  # chained, not yet indexed
    app.trail.flush()
    with reading(app.data_dir) as conn:
        assert [e.seq for e in search(conn, Filters(key_prefix="k"))] == [2, 3]
    assert app.call("PUT", "/bucket/k3", b"three") == 200  # the process "dies" after this
    store = SqliteMetadataStore(app.data_dir / "metadata.db")  # the next start
    restarted = AuditTrail(
        store.writer, load_root_key(app.data_dir), partition="onshore", region=REGION
    )
    try:
        store.writer.submit(lambda conn: None)  # after the start's repair job
        with reading(app.data_dir) as conn:
            assert [e.seq for e in search(conn, Filters(key_prefix="k"))] == [2, 3, 4]
    finally:
        restarted.close()
        store.close()


def test_a_failed_change_is_recorded_with_its_error(app: App) -> None:
    assert app.call("PUT", "/bucket") == 200
    assert app.call("PUT", "/bucket") == 409  # BucketAlreadyOwnedByYou: nothing changed
    app.trail.flush()
    last = app.records()[-1]
    assert last["eventName"] == "CreateBucket" and last["errorCode"] == "BucketAlreadyOwnedByYou"
    assert app.pending() == 0


def test_a_change_record_rendered_ahead_is_the_one_rendered_at_commit() -> None:
    """The record of a change, rendered on the request path but for its outcome
    (:class:`capture.Change`), is byte for byte the one rendered whole at the end of the batch,
    whatever its key, caller or outcome, and a block stores it as its template's pieces with
    its line's values between them; a request's later changes have records of their own (with
    their ``changeIndex``). A read's record, made from its group's template with its response
    elements written in, is the one rendered whole too."""
    from onshore.service.audit import capture
    from onshore.service.audit.events import row_from_event
    from onshore.storage.sqlite.audit import FIELD

    groups = capture.Groups("onshore-cn", "cn-north-1")
    base = (
        "s3", "PutObject", False, "10.0.0.1", "agent %s", "bucket", True, None,
        "user", "111111111111", "arn:p:iam::111111111111:user/alice", "AKID", "alice",
        200, None, None, "",
    )  # fmt: skip
    keys = ["k", 'quo"te\\ ünï \u2028 /x', None]
    for key, user_name, error, response, recipient in (
        (key, user, error, response, recipient)
        for key in keys
        for user in ("alice", "")
        for error in (None, "AccessDenied")
        for response in ("null", '{"ETag":"\\"abc\\"","x-amz-version-id":"v1"}')
        for recipient in ("", "222222222222")  # the caller's own bucket, another account's
    ):
        shared = list(base)
        shared[5], shared[6] = None if key is None else "bucket", key is not None
        shared[12], shared[14], shared[16] = user_name, error, recipient
        group = groups.change(tuple(shared))
        assert group.template is not None

        def change(ahead: bool, group: capture.Group = group, key: str | None = key) -> Any:
            return capture.change(group, 1_790_000_000_123, 7, "REQ1", key, 5, ahead)

        ahead, at_commit = (
            groups.staged_rows([(change(made), response, 0)])[0] for made in (True, False)
        )
        assert at_commit.template is None  # rendered whole
        event_id = json.loads(ahead.event)["eventID"]
        assert ahead.event == at_commit.event.replace(
            json.loads(at_commit.event)["eventID"], event_id
        )
        assert (ahead.time_ms, ahead.key, ahead.about) == (
            at_commit.time_ms, at_commit.key, at_commit.about
        )  # fmt: skip
        about = (user_name or shared[10], "PutObject", shared[5], error)
        assert ahead.about == (recipient or "111111111111", *about)
        assert ahead.also == (("111111111111", *about) if recipient else None)
        assert at_commit.also == ahead.also
        read_back = row_from_event(ahead.time_ms, ahead.event)  # what search checks it by
        assert (read_back.about, read_back.also) == (ahead.about, ahead.also)
        record = json.loads(ahead.event)
        assert record["recipientAccountId"] == (recipient or "111111111111")
        assert record["userIdentity"]["accountId"] == "111111111111"
        assert {r.get("accountId") for r in record["resources"]} <= {recipient or "111111111111"}
        assert ahead.template is group.template and ahead.line is not None
        values = ahead.line.split(FIELD)
        assert len(values) == len(ahead.template) - 1
        joined = "".join(p + v for p, v in zip(ahead.template, values, strict=False))
        assert joined + ahead.template[-1] == ahead.event
        later = groups.staged_rows([(change(True), response, 1)])
        assert json.loads(later[0].event)["additionalEventData"]["changeIndex"] == 1

        read = list(shared)
        read[1], read[2] = "GetObject", True
        read_group = groups.read(tuple(read))
        assert read_group.template is read_group.cut is not None
        captured = [read_group, 1_790_000_000_123, 7, "REQ2", key, 0, 11]
        made = groups.captured_rows(captured, 0, capture.SIZE)[0]
        whole = capture._whole(read_group, "onshore-cn", "cn-north-1", "null", 0,
                               1_790_000_000_123, 7, "REQ2", key, 0, 11)  # fmt: skip
        assert made.event == whole.event.replace(
            json.loads(whole.event)["eventID"], json.loads(made.event)["eventID"]
        )
        assert json.loads(made.event)["responseElements"] is None
        assert made.line is not None
        pieces, values = read_group.cut, made.line.split(FIELD)
        assert "".join(p + v for p, v in zip(pieces, values, strict=False)) + pieces[-1] == (
            made.event
        )
