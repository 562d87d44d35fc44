"""The audit trail without a server: chain, digests, export, and verify naming each tampering.

A real SQLite store and its group-commit writer hold the trail; records are appended the way the
server appends them (buffered, and inside a metadata write's job), digests are signed, the trail
is exported, and the export is then tampered with in every way the issue lists.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from onshore.service.audit.events import Facts, canonical
from onshore.service.audit.export import export
from onshore.service.audit.integrity import AuditKey, digest_of, load_public_key
from onshore.service.audit.reader import Filters, parse_time, reading, search
from onshore.service.audit.trail import AuditTrail
from onshore.service.audit.verify import Kind, Report, verify
from onshore.service.rootkey import LocalRootKey
from onshore.storage.sqlite import SqliteMetadataStore
from onshore.storage.sqlite import audit as audit_sql

ACCOUNT_A, ACCOUNT_B = "111111111111", "222222222222"


def facts(n: int, account: str = ACCOUNT_A, error: str | None = None) -> Facts:
    return Facts(
        time_ms=1_790_000_000_000 + n,
        event_name="GetObject" if n % 2 else "PutObject",
        request_id=f"REQ{n}",
        source_ip="10.0.0.1",
        user_agent="test",
        read_only=bool(n % 2),
        bucket="bucket-a" if account == ACCOUNT_A else "bucket-b",
        key=f"dir/key-{n}",
        identity_type="IAMUser",
        account_id=account,
        arn=f"arn:onshore:iam::{account}:user/alice",
        access_key="AKIDEXAMPLE",
        user_name="alice",
        error_code=error,
        error_message="denied" if error else None,
    )


class Trail:
    def __init__(self, data_dir: Path, alg: str = "sha256") -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.store = SqliteMetadataStore(data_dir / "metadata.db")
        self.trail = AuditTrail(
            self.store.writer,
            LocalRootKey(bytes(range(32))),
            partition="onshore-cn",
            region="cn-north-1",
            alg=alg,
            flush_interval=3600,
            digest_minutes=60,
        )
        self.n = 0

    def add(self, count: int, account: str = ACCOUNT_A) -> None:
        for _ in range(count):
            self.n += 1
            self.trail.later(facts(self.n, account, "AccessDenied" if self.n % 7 == 0 else None))
        self.trail.flush()

    def digest(self) -> None:
        assert self.trail.digest(final=True) is not None

    def close(self) -> None:
        self.trail.close()
        self.store.close()

    def export(self, target: Path, tenant: str | None = None) -> Path:
        with reading(self.data_dir) as conn:
            export(conn, target, tenant=tenant)
        return target

    @property
    def public(self) -> Path:
        path = self.data_dir / "audit.pem"
        path.write_text(self.trail.key.public_pem())
        return path


@pytest.fixture
def trail(tmp_path: Path) -> Iterator[Trail]:
    made = Trail(tmp_path / "data")
    made.add(10)
    made.digest()
    made.add(10)
    made.digest()
    made.add(5)
    made.digest()
    yield made
    made.close()


@pytest.fixture
def exported(trail: Trail, tmp_path: Path) -> Path:
    return trail.export(tmp_path / "export")


def check(directory: Path, trail: Trail) -> Report:
    return verify(directory, load_public_key(trail.public.read_bytes()))


def kinds(report: Report) -> set[Kind]:
    return {finding.kind for finding in report.findings}


def segment_lines(directory: Path) -> list[tuple[Path, int, str]]:
    found = []
    for path in sorted((directory / "segments").glob("*.jsonl")):
        for number, line in enumerate(path.read_text().splitlines()):
            found.append((path, number, line))
    return found


def rewrite(path: Path, change: dict[int, str | None]) -> None:
    """Replace (or with None, delete) lines of ``path`` by index."""
    lines = path.read_text().splitlines()
    out = [change.get(i, line) for i, line in enumerate(lines)]
    path.write_text("".join(line + "\n" for line in out if line is not None))


def first_segment(directory: Path) -> Path:
    return sorted((directory / "segments").glob("*.jsonl"))[0]


# --- the intact trail ---------------------------------------------------------------------------
def test_an_intact_export_verifies(exported: Path, trail: Trail) -> None:
    report = check(exported, trail)
    assert report.ok, report.findings
    assert (report.records, report.digests, report.first_seq, report.last_seq) == (25, 3, 1, 25)


def test_each_record_hashes_its_canonical_json_after_the_previous_hash(exported: Path) -> None:
    import hashlib

    lines = [json.loads(line) for _, _, line in segment_lines(exported)]
    assert lines[0]["prevHash"] == "00" * 32
    for before, line in zip(lines, lines[1:], strict=False):
        assert line["prevHash"] == before["hash"]
    raw = bytes.fromhex(lines[3]["prevHash"]) + canonical(lines[3]["event"]).encode()
    assert hashlib.sha256(raw).hexdigest() == lines[3]["hash"]


def test_records_have_the_cloudtrail_shape_with_the_partition(exported: Path) -> None:
    event = json.loads(segment_lines(exported)[0][2])["event"]
    assert event["eventSource"] == "s3.onshore-cn"
    assert event["awsRegion"] == "cn-north-1"
    assert event["eventTime"].endswith("Z") and len(event["eventTime"]) == 24
    assert event["userIdentity"]["accountId"] == ACCOUNT_A
    assert {r["ARN"] for r in event["resources"]} == {
        "arn:onshore-cn:s3:::bucket-a",
        "arn:onshore-cn:s3:::bucket-a/dir/key-1",
    }


# --- records tampered with ----------------------------------------------------------------------
def test_a_changed_record_is_named(exported: Path, trail: Trail) -> None:
    path, number, line = segment_lines(exported)[4]
    rewrite(
        path, {number: line.replace('"sourceIPAddress":"10.0.0.1"', '"sourceIPAddress":"6.6.6.6"')}
    )
    report = check(exported, trail)
    assert kinds(report) == {Kind.CHANGED}
    assert "record 5 " in report.findings[0].message


def test_a_changed_and_rehashed_record_breaks_the_next_link(exported: Path, trail: Trail) -> None:
    from onshore.service.audit.integrity import chain_hash

    path, number, line = segment_lines(exported)[4]
    doc = json.loads(line)
    doc["event"]["eventName"] = "HeadObject"
    doc["hash"] = chain_hash(
        "sha256", bytes.fromhex(doc["prevHash"]), canonical(doc["event"]).encode()
    ).hex()
    rewrite(path, {number: canonical(doc)})
    report = check(exported, trail)
    assert Kind.CHANGED in kinds(report)
    assert any("record 5 " in f.message for f in report.findings)


def test_a_removed_record_is_named(exported: Path, trail: Trail) -> None:
    path, number, _ = segment_lines(exported)[6]
    rewrite(path, {number: None})
    report = check(exported, trail)
    assert Kind.REMOVED in kinds(report)
    assert any("record 7 is missing" in f.message for f in report.findings)


def test_an_inserted_record_is_named(exported: Path, trail: Trail) -> None:
    from onshore.service.audit.integrity import chain_hash

    path, number, line = segment_lines(exported)[3]
    forged = json.loads(line)
    forged["seq"] = 5  # squeezed in between records 4 and 5, properly hashed after record 4
    forged["event"]["eventName"] = "DeleteObject"
    forged["prevHash"] = json.loads(line)["hash"]
    forged["hash"] = chain_hash(
        "sha256", bytes.fromhex(forged["prevHash"]), canonical(forged["event"]).encode()
    ).hex()
    lines = path.read_text().splitlines()
    lines.insert(number + 1, canonical(forged))
    path.write_text("\n".join(lines) + "\n")
    report = check(exported, trail)
    assert Kind.INSERTED in kinds(report)


def test_a_record_appended_after_the_last_digest_is_unsigned(exported: Path, trail: Trail) -> None:
    from onshore.service.audit.integrity import chain_hash

    path, _, line = segment_lines(exported)[-1]
    last = json.loads(line)
    forged = dict(last, seq=last["seq"] + 1, prevHash=last["hash"])
    forged["hash"] = chain_hash(
        "sha256", bytes.fromhex(last["hash"]), canonical(last["event"]).encode()
    ).hex()
    with path.open("a") as out:
        out.write(canonical(forged) + "\n")
    assert kinds(check(exported, trail)) == {Kind.UNSIGNED}


def test_reordered_records_are_named(exported: Path, trail: Trail) -> None:
    path, number, line = segment_lines(exported)[2]
    _, _, following = segment_lines(exported)[3]
    rewrite(path, {number: following, number + 1: line})
    report = check(exported, trail)
    assert kinds(report) == {Kind.REORDERED}
    assert "record 3 " in report.findings[0].message


def test_truncated_records_are_named(exported: Path, trail: Trail) -> None:
    path = sorted((exported / "segments").glob("*.jsonl"))[-1]
    rewrite(path, {3: None, 4: None})
    report = check(exported, trail)
    assert kinds(report) == {Kind.TRUNCATED}
    assert "records 24..25" in report.findings[0].message


def test_a_removed_segment_file_is_named(exported: Path, trail: Trail) -> None:
    sorted((exported / "segments").glob("*.jsonl"))[1].unlink()
    report = check(exported, trail)
    assert Kind.REMOVED in kinds(report)
    assert any("records 11..20 are missing" in f.message for f in report.findings)


def test_records_missing_at_the_start_of_an_interval_are_named(
    exported: Path, trail: Trail
) -> None:
    rewrite(first_segment(exported), {0: None, 1: None})
    report = check(exported, trail)
    assert kinds(report) == {Kind.REMOVED}
    assert "records 1..2 signed by digest 1 are missing at the start" in report.findings[0].message


def test_a_record_reduced_to_its_hashes_is_caught_when_the_export_is_complete(
    exported: Path, trail: Trail
) -> None:
    """A full export's record replaced by a tenant export's hashes-only line still links: the
    auditor who expects the whole trail says so (``complete``), and the record is named."""
    path, number, line = segment_lines(exported)[2]
    doc = json.loads(line)
    reduced = {k: doc[k] for k in ("alg", "hash", "prevHash", "seq")} | {"omitted": True}
    rewrite(path, {number: json.dumps(reduced)})
    report = check(exported, trail)
    assert report.ok and report.omitted == 1  # as a tenant export would be
    report = verify(exported, load_public_key(trail.public.read_bytes()), complete=True)
    assert kinds(report) == {Kind.OMITTED}
    assert "(3, e.g." in report.findings[0].message


def test_an_export_without_its_first_intervals_is_caught_when_complete(
    exported: Path, trail: Trail
) -> None:
    first_segment(exported).unlink()
    digest_files(exported)[0].unlink()
    report = check(exported, trail)
    assert report.ok and report.first_digest == 2  # as an export --from would be
    report = verify(exported, load_public_key(trail.public.read_bytes()), complete=True)
    assert kinds(report) == {Kind.DIGEST_GAP}
    assert "digests 1..1 are missing" in report.findings[0].message
    intact = verify(
        trail.export(exported.parent / "again"),
        load_public_key(trail.public.read_bytes()),
        complete=True,
    )
    assert intact.ok and intact.first_digest == 1, intact.findings


# --- digests tampered with ----------------------------------------------------------------------
def digest_files(directory: Path) -> list[Path]:
    return sorted((directory / "digests").glob("*.json"))


def test_a_changed_digest_has_a_bad_signature(exported: Path, trail: Trail) -> None:
    path = digest_files(exported)[1]
    doc = json.loads(path.read_text())
    doc["payload"]["count"] = 9
    doc["payload"]["lastSeq"] = 19
    path.write_text(json.dumps(doc))
    assert Kind.BAD_SIGNATURE in kinds(check(exported, trail))


def test_a_removed_digest_is_a_gap(exported: Path, trail: Trail) -> None:
    digest_files(exported)[1].unlink()
    report = check(exported, trail)
    assert Kind.DIGEST_GAP in kinds(report)
    assert any("digests 2..2 are missing" in f.message for f in report.findings)
    assert Kind.UNSIGNED in kinds(report)  # its records are now covered by nothing


def test_a_truncated_digest_chain_leaves_records_unsigned(exported: Path, trail: Trail) -> None:
    digest_files(exported)[-1].unlink()
    assert kinds(check(exported, trail)) == {Kind.UNSIGNED}


def test_reordered_digests_are_named(exported: Path, trail: Trail) -> None:
    first, second = digest_files(exported)[:2]
    a, b = first.read_text(), second.read_text()
    first.write_text(b)
    second.write_text(a)
    assert Kind.DIGEST_GAP in kinds(check(exported, trail))


def test_an_inserted_digest_is_named(exported: Path, trail: Trail) -> None:
    second = digest_files(exported)[1]
    (second.parent / (second.stem + "-copy.json")).write_text(second.read_text())
    report = check(exported, trail)
    assert Kind.DIGEST_GAP in kinds(report)
    assert any("digests reordered" in f.message for f in report.findings)


def test_a_digest_signed_by_another_key_is_named(exported: Path, trail: Trail) -> None:
    path = digest_files(exported)[1]
    doc = json.loads(path.read_text())
    other = AuditKey.generate()
    doc["payload"]["keyFingerprint"] = other.fingerprint
    doc["signature"] = other.sign(canonical(doc["payload"]).encode())
    path.write_text(json.dumps(doc))
    report = check(exported, trail)
    assert Kind.OTHER_KEY in kinds(report)
    assert other.fingerprint in report.findings[0].message
    # and its payload, changed to name the other key, no longer chains to the next digest
    assert kinds(report) == {Kind.OTHER_KEY, Kind.DIGEST_GAP}


def test_a_forged_digest_over_forged_records_is_caught(exported: Path, trail: Trail) -> None:
    """The operator rewrites history and re-signs it with a key of its own: the auditor's
    public key rejects every digest."""
    other = AuditKey.generate()
    for path in digest_files(exported):
        doc = json.loads(path.read_text())
        doc["signature"] = other.sign(canonical(doc["payload"]).encode())
        path.write_text(json.dumps(doc))
    assert kinds(check(exported, trail)) == {Kind.BAD_SIGNATURE}


def test_verify_with_the_wrong_public_key_fails(
    exported: Path, trail: Trail, tmp_path: Path
) -> None:
    other = AuditKey.generate()
    report = verify(exported, load_public_key(other.public_pem().encode()))
    assert kinds(report) == {Kind.OTHER_KEY}


def test_a_garbled_line_is_malformed(exported: Path, trail: Trail) -> None:
    path, number, _ = segment_lines(exported)[0]
    rewrite(path, {number: "{not json"})
    assert Kind.MALFORMED in kinds(check(exported, trail))


# --- partial, tenant and SM3 exports --------------------------------------------------------------
def test_a_time_range_exports_whole_digest_intervals(trail: Trail, tmp_path: Path) -> None:
    with reading(trail.data_dir) as conn:
        summary = export(
            conn, tmp_path / "part", start_ms=1_790_000_000_000 + 12, end_ms=1_790_000_000_000 + 14
        )
    assert (summary.first_seq, summary.last_seq, summary.digests) == (11, 20, 1)
    assert check(tmp_path / "part", trail).ok


def test_records_newer_than_the_last_digest_are_not_exported(trail: Trail, tmp_path: Path) -> None:
    trail.add(3)
    with reading(trail.data_dir) as conn:
        summary = export(conn, tmp_path / "x")
    assert summary.unsigned_after == 3 and summary.last_seq == 25


def test_a_tenant_export_holds_only_its_events_and_verifies(tmp_path: Path) -> None:
    made = Trail(tmp_path / "data")
    try:
        for _ in range(4):
            made.add(3, ACCOUNT_A)
            made.add(2, ACCOUNT_B)
        made.digest()
        target = made.export(tmp_path / "tenant-b", tenant=ACCOUNT_B)
        report = check(target, made)
        assert report.ok, report.findings
        assert (report.records, report.omitted) == (8, 12)
        text = "".join(p.read_text() for p in (target / "segments").glob("*"))
        assert ACCOUNT_A not in text and "bucket-a" not in text
        # the tenant's own records are still protected: drop one of them
        path, number, _ = next(
            (p, n, line) for p, n, line in segment_lines(target) if '"omitted"' not in line
        )
        complete = verify(target, load_public_key(made.public.read_bytes()), complete=True)
        assert kinds(complete) == {Kind.OMITTED}  # not the whole trail's content
        rewrite(path, {number: None})
        assert Kind.REMOVED in kinds(check(target, made))
    finally:
        made.close()


def test_sm3_gives_the_standards_test_vectors() -> None:
    """GB/T 32905-2016 appendix A: "abc", and "abcd" sixteen times."""
    assert digest_of("sm3", b"abc").hex() == (
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    )
    assert digest_of("sm3", b"abcd" * 16).hex() == (
        "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    )


def test_an_sm3_chain_verifies_and_detects_changes(tmp_path: Path) -> None:
    made = Trail(tmp_path / "data", alg="sm3")
    try:
        made.add(6)
        made.digest()
        target = made.export(tmp_path / "sm3")
        assert check(target, made).ok
        line = json.loads(segment_lines(target)[0][2])
        assert line["alg"] == "sm3"
        path, number, text = segment_lines(target)[2]
        rewrite(path, {number: text.replace("alice", "mallory")})
        assert Kind.CHANGED in kinds(check(target, made))
    finally:
        made.close()


def test_a_trail_reopened_continues_the_chain_and_the_key(tmp_path: Path) -> None:
    made = Trail(tmp_path / "data")
    made.add(4)
    fingerprint = made.trail.key.fingerprint
    made.close()  # flushes and signs a final digest
    again = Trail(tmp_path / "data")
    try:
        assert again.trail.key.fingerprint == fingerprint
        again.add(4)
        again.digest()
        target = again.export(tmp_path / "both")
        report = check(target, again)
        assert report.ok and report.records == 8 and report.digests == 2
    finally:
        again.close()


def test_a_change_job_commits_its_record_or_nothing(tmp_path: Path) -> None:
    """A write made while a request is being audited carries its record in its savepoint: a
    failing write leaves neither the change nor the record."""
    made = Trail(tmp_path / "data")
    try:
        writer = made.store.writer
        writer.submit(lambda c: c.execute("CREATE TABLE t (x INTEGER)"))
        pending = made.trail.begin(lambda: facts(100))
        try:
            writer.submit(lambda c: c.execute("INSERT INTO t VALUES (1)"))

            def failing(c: object) -> None:
                c.execute("INSERT INTO t VALUES (2)")  # type: ignore[attr-defined]
                raise RuntimeError("refused")

            with pytest.raises(RuntimeError):
                writer.submit(failing)
        finally:
            made.trail.finish(pending, facts(100))
        assert pending.changes == 1
        with reading(made.data_dir) as conn:
            assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]
            assert [e.seq for e in audit_sql.events(conn, 1, 10)] == [1]
            assert [e.seq for e in search(conn, Filters(bucket="bucket-a"))] == [1]
    finally:
        made.close()


def test_search_filters(trail: Trail) -> None:
    with reading(trail.data_dir) as conn:
        assert len(search(conn, Filters(limit=1000))) == 25
        denied = search(conn, Filters(error_code="AccessDenied"))
        assert [e.seq for e in denied] == [7, 14, 21]
        assert len(search(conn, Filters(event_name="PutObject", limit=1000))) == 12
        assert [
            e.seq for e in search(conn, Filters(bucket="bucket-a", key_prefix="dir/key-1"))
        ] == [
            1,
            10,
            11,
            12,
            13,
            14,
            15,
            16,
            17,
            18,
            19,
        ]
        assert search(conn, Filters(account=ACCOUNT_B)) == []
        assert len(search(conn, Filters(user_name="alice", limit=1000))) == 25
        assert search(conn, Filters(user_name="bob")) == []
        both = Filters(user_name="alice", error_code="AccessDenied", event_name="GetObject")
        assert [e.seq for e in search(conn, both)] == [7, 21]
        start = 1_790_000_000_000 + 5
        assert [e.seq for e in search(conn, Filters(start_ms=start, end_ms=start + 2))] == [5, 6]


def test_parse_time_accepts_dates_and_offsets() -> None:
    assert parse_time("1970-01-02") == 86_400_000
    assert parse_time("1970-01-01T01:00:00+01:00") == 0
    with pytest.raises(ValueError):
        parse_time("yesterday")


def test_retention_below_the_minimum_is_refused() -> None:
    from onshore.config import load
    from onshore.service.audit import check_retention

    with pytest.raises(ValueError, match="180-day minimum"):
        check_retention(load({"audit_retention_days": 30}, environ={}))
    check_retention(
        load({"audit_retention_days": 30, "audit_retention_override": True}, environ={})
    )
    with pytest.raises(ValueError, match="sha256 or sm3"):
        check_retention(load({"audit_hash": "md5"}, environ={}))


def test_export_copy_is_independent(exported: Path, tmp_path: Path, trail: Trail) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(exported, copy)
    assert check(copy, trail).ok


def test_a_change_record_built_ahead_equals_the_record_built_at_once() -> None:
    from onshore.service.audit.events import fill, row_of, template

    one = facts(3)
    ahead = fill(template(one, partition="p", region="r"), one, {"ETag": "abc"}, 2)
    one.response, one.extra = {"ETag": "abc"}, {"changeIndex": 2}
    direct = row_of(one, partition="p", region="r")
    strip = lambda text: {k: v for k, v in json.loads(text).items() if k != "eventID"}  # noqa: E731
    assert strip(ahead.event) == strip(direct.event)
    assert ahead.event == canonical(json.loads(ahead.event))


def test_search_rows_lost_in_a_crash_are_rebuilt_at_start(tmp_path: Path) -> None:
    made = Trail(tmp_path / "data")
    made.add(5)
    made.store.writer.submit(lambda c: c.execute("DELETE FROM audit_index WHERE last_seq > 2"))
    made.close()
    again = Trail(tmp_path / "data")
    try:
        with reading(again.data_dir) as conn:
            assert [e.seq for e in search(conn, Filters())] == [1, 2, 3, 4, 5]
            assert [e.seq for e in search(conn, Filters(key_prefix="dir/key-4"))] == [4]
    finally:
        again.close()


# --- the command line -----------------------------------------------------------------------------
def test_cli_verify_exit_codes_and_findings(
    exported: Path, trail: Trail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from onshore.cli.main import main

    key = str(trail.public)
    assert main(["audit", "verify", str(exported), "--public-key", key]) == 0
    assert "OK: the export is intact" in capsys.readouterr().out
    assert main(["audit", "verify", str(exported), "--public-key", key, "--complete"]) == 0
    assert "OK: the export is intact" in capsys.readouterr().out
    path, number, _ = segment_lines(exported)[6]
    rewrite(path, {number: None})
    assert main(["audit", "verify", str(exported), "--public-key", key, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["findings"][0]["kind"] == "removed"
    bad_key = tmp_path / "bad.pem"
    bad_key.write_text("not a key")
    assert main(["audit", "verify", str(exported), "--public-key", str(bad_key)]) == 2
    assert main(["audit", "verify", str(tmp_path / "nowhere"), "--public-key", key]) == 2


def test_cli_public_key_export_and_search(
    trail: Trail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from onshore.cli.main import main

    data = str(trail.data_dir)
    assert main(["audit", "public-key", "--data-dir", data]) == 0
    assert capsys.readouterr().out == trail.trail.key.public_pem()
    target = tmp_path / "cli-export"
    assert main(["audit", "export", "--data-dir", data, str(target)]) == 0
    assert "exported 25 records" in capsys.readouterr().out
    assert main(["audit", "export", "--data-dir", data, str(target)]) == 2  # not empty
    assert main(["audit", "search", "--data-dir", data, "--error-code", "AccessDenied"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 4 and "AccessDenied" in table[1]
    assert main(["audit", "public-key", "--data-dir", str(tmp_path / "none")]) == 2
