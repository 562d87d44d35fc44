"""How the trail is stored: blocks of records read back one by one, search rows per group of
alike records, the migration from one row per record, and a flush that fails losing nothing."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from onshore.service.audit import capture
from onshore.service.audit import trail as trail_module
from onshore.service.audit.events import Facts, canonical, event_of
from onshore.service.audit.export import export
from onshore.service.audit.integrity import chain_hash, link_function, load_public_key
from onshore.service.audit.reader import Filters, reading, search
from onshore.service.audit.trail import AuditTrail
from onshore.service.audit.verify import verify
from onshore.service.rootkey import LocalRootKey
from onshore.storage.sqlite import SqliteMetadataStore, schema
from onshore.storage.sqlite import audit as sql
from tests.unit import legacy_audit

BASE_MS = 1_790_000_000_000


def row(n: int, *, time_ms: int | None = None, key: str | None = None) -> sql.AuditRow:
    text = canonical({"n": n, "text": "x" * (n % 50), "unicode": "ünï\u2028"})
    return sql.AuditRow(
        BASE_MS + n if time_ms is None else time_ms,
        key if key is not None else f"k{n}",
        text,
        ("111111111111", "alice", "GetObject", "bucket", None),
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteMetadataStore]:
    made = SqliteMetadataStore(tmp_path / "metadata.db")
    yield made
    made.close()


def test_blocks_read_back_record_by_record(store: SqliteMetadataStore) -> None:
    link = link_function("sha256")
    rows = [row(n) for n in range(1, 601)]

    def append(conn: sqlite3.Connection) -> list[int]:
        firsts = [sql.append(conn, rows[:1], "sha256", link)]  # a change's: a block of one
        firsts.append(sql.append(conn, rows[1:600], "sha256", link))  # several blocks
        firsts.append(sql.append(conn, rows[600:], "sha256", link))  # nothing
        return firsts

    assert store.writer.submit(append)[:2] == [1, 2]
    conn = store._conn()  # noqa: SLF001
    assert sql.head(conn)[0] == 600
    blocks = conn.execute("SELECT first_seq, last_seq FROM audit_blocks").fetchall()
    assert len(blocks) == 1 + -(-599 // sql.BLOCK_RECORDS)  # of one, then as few as fit
    stored = list(sql.events(conn, 1, 600))
    assert [e.seq for e in stored] == list(range(1, 601))
    assert [e.event for e in stored] == [r.event for r in rows]
    prev = sql.GENESIS
    for event in stored:
        assert event.prev_hash == prev
        assert event.hash == chain_hash("sha256", prev, event.event.encode())
        prev = event.hash
    assert sql.head(conn) == (600, prev)
    middle = list(sql.events(conn, 255, 259))  # across a block boundary
    assert [e.seq for e in middle] == [255, 256, 257, 258, 259]
    picked = list(sql.records(conn, [1, 2, 300, 600, 601]))
    assert [e.seq for e in picked] == [1, 2, 300, 600]
    # a search's calls share the blocks they decoded: each block is read once
    reads: list[str] = []
    conn.set_trace_callback(reads.append)
    kept = sql.Blocks()
    again = [list(sql.records(conn, seqs, kept)) for seqs in ([2, 300], [3, 301, 590], [299])]
    conn.set_trace_callback(None)
    assert [[e.seq for e in found] for found in again] == [[2, 300], [3, 301, 590], [299]]
    assert [e.event for found in again for e in found] == [
        stored[n - 1].event for n in (2, 300, 3, 301, 590, 299)
    ]
    assert len(reads) == 3  # the blocks of 2, of 300 (and 301, 299) and of 590
    one = sql.Blocks()
    one.KEEP = 1  # keeps the last block decoded only
    conn.set_trace_callback(reads.append)
    assert [[e.seq for e in sql.records(conn, [s], one)] for s in (2, 300, 3)] == [[2], [300], [3]]
    conn.set_trace_callback(None)
    assert len(reads) == 6  # 2's block forgotten for 300's, read again
    assert sql.hash_at(conn, 0) == sql.GENESIS and sql.hash_at(conn, 601) == sql.GENESIS
    assert sql.hash_at(conn, 300) == stored[299].hash
    assert sql.times_since(conn, 590) == (BASE_MS + 514, BASE_MS + 600)  # whole blocks
    assert sql.times_since(conn, 601) == (None, None)


def test_records_made_from_templates_read_back_exactly(store: SqliteMetadataStore) -> None:
    """A block stores a templated record as its template's number and its values; whatever the
    mix (several templates, records kept whole, a template or values holding a separator, a
    block of one), each record reads back as exactly the text that was hashed."""
    link = link_function("sha256")
    t1 = ('{"a":', ',"b":"', '"}')
    t2 = ('{"c":"', '","d":', "}")
    odd = ('{"e":"\x1f', '"}')  # a separator inside a piece: its records are kept whole
    rows: list[sql.AuditRow] = []
    for n in range(BLOCK_SIZE := sql.BLOCK_RECORDS + 1):  # two blocks, the second of one
        template, values = [
            (t1, (str(n), f"x{n}\u00fc")),
            (t2, (f"y{n}", str(n))),
            (odd, (str(n),)),
            (t1, (str(n), "bad\x1fvalue")),  # a separator inside a value: its block kept whole
            (None, None),
        ][n % 5]
        if template is None or values is None:
            text = canonical({"whole": n})
        else:
            text = "".join(p + v for p, v in zip(template, values, strict=False)) + template[-1]
        line = None if values is None else sql.FIELD.join(values)
        rows.append(row(n)._replace(event=text, template=template, line=line))
    assert len(rows) == BLOCK_SIZE
    small = sql.COMPRESS_FROM - 1  # a writer batch's few changes: a block stored uncompressed
    store.writer.submit(lambda conn: sql.append(conn, rows[:small], "sha256", link))
    store.writer.submit(lambda conn: sql.append(conn, rows[small:], "sha256", link))
    conn = store._conn()  # noqa: SLF001
    kinds = [type(t) for (t,) in conn.execute("SELECT events FROM audit_blocks ORDER BY first_seq")]
    assert kinds[0] is str and kinds[1] is bytes
    stored = list(sql.events(conn, 1, len(rows)))
    assert [e.event for e in stored] == [r.event for r in rows]
    prev = sql.GENESIS
    for event in stored:
        assert event.hash == chain_hash("sha256", prev, event.event.encode())
        prev = event.hash
    assert [e.event for e in sql.records(conn, [len(rows)])] == [rows[-1].event]


def test_a_block_written_before_templates_reads_back(store: SqliteMetadataStore) -> None:
    """A block of several records as written before templates (their JSON a line each, with
    no first line marking the packed form) still reads back record by record."""
    import zlib

    texts = [row(n).event for n in (1, 2, 3)]
    hashes, prev = [], sql.GENESIS
    for text in texts:
        prev = chain_hash("sha256", prev, text.encode())
        hashes.append(prev)
    values = (1, 3, BASE_MS, BASE_MS + 2, "sha256", prev, sql.GENESIS, b"".join(hashes))
    packed = zlib.compress("\n".join(texts).encode())

    def insert(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO audit_blocks (first_seq, last_seq, start_ms, end_ms, alg, head_hash,"
            " prev_hash, hashes, events) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*values, packed),
        )

    store.writer.submit(insert)
    conn = store._conn()  # noqa: SLF001
    assert [e.event for e in sql.events(conn, 1, 3)] == texts
    assert [(e.seq, e.event, e.hash) for e in sql.records(conn, [2])] == [(2, texts[1], hashes[1])]


def test_search_reads_groups_then_checks_each_record(store: SqliteMetadataStore) -> None:
    link = link_function("sha256")
    facts = [
        Facts(
            time_ms=BASE_MS + t,
            event_name="GetObject",
            request_id=f"R{n}",
            source_ip="10.0.0.1",
            user_agent="test",
            read_only=True,
            bucket="bucket",
            key=f"dir/{n}",
            account_id="111111111111",
            arn="arn:onshore:iam::111111111111:user/alice",
            user_name="alice",
        )
        for n, t in enumerate([5, 1, 3, 90_000, 2, 4])  # times out of seq order, two minutes
    ]
    rows = []
    for f in facts:
        text = canonical(event_of(f, partition="onshore", region="r"))
        rows.append(
            sql.AuditRow(
                f.time_ms, f.key, text, (f.account_id, f.user_name, f.event_name, f.bucket, None)
            )
        )

    def append(conn: sqlite3.Connection) -> None:
        first = sql.append(conn, rows, "sha256", link)
        sql.index(conn, list(enumerate(rows, first)))
        sql.index(conn, list(enumerate(rows, first)))  # written twice (as after a crash)
        sql.index(conn, [(first, rows[3])])  # a stale row: seq 1 is not the 90 s record

    store.writer.submit(append)
    conn = store._conn()  # noqa: SLF001
    assert conn.execute("SELECT COUNT(*) FROM audit_index").fetchone()[0] == 5  # 2 + 2 + 1
    seqs = lambda f: [e.seq for e in search(conn, f)]  # noqa: E731
    assert seqs(Filters()) == [2, 5, 3, 6, 1, 4]  # by time, then seq; each once
    assert seqs(Filters(limit=2)) == [2, 5]
    assert seqs(Filters(start_ms=BASE_MS + 3, end_ms=BASE_MS + 90_000)) == [3, 6, 1]
    assert seqs(Filters(key_prefix="dir/3")) == [4]
    assert seqs(Filters(bucket="bucket", key_prefix="dir/", limit=3)) == [2, 5, 3]
    assert seqs(Filters(user_name="bob")) == []
    assert seqs(Filters(limit=0)) == []


def test_a_trail_stored_one_row_per_record_is_migrated(tmp_path: Path) -> None:
    """A database written before blocks (migration 0003's audit_events and audit_search)
    keeps its chain: the records move into blocks, stay searchable and verify."""
    path = tmp_path / "data" / "metadata.db"
    path.parent.mkdir()
    conn = schema.connect(str(path), writer=True)
    schema.migrate(conn, [m for m in schema.migrations() if m.version < 11])
    prev = sql.GENESIS
    for n in range(1, 4):
        old = Facts(
            time_ms=BASE_MS + n,
            event_name="PutObject",
            request_id=f"OLD{n}",
            source_ip="::1",
            user_agent="t",
            read_only=False,
            bucket="b",
            key=f"old/{n}",
            account_id="111111111111",
            user_name="alice",
        )
        text = canonical(event_of(old, partition="onshore", region="r"))
        digest = chain_hash("sha256", prev, text.encode())
        conn.execute(
            "INSERT INTO audit_events (seq, time_ms, alg, event, prev_hash, hash)"
            " VALUES (?, ?, 'sha256', ?, ?, ?)",
            (n, BASE_MS + n, text, prev, digest),
        )
        conn.execute(
            "INSERT INTO audit_search (seq, time_ms, account, user_name, event_name, bucket,"
            " object_key, error_code) VALUES (?, ?, '111111111111', 'alice', 'PutObject', 'b', ?,"
            " NULL)",
            (n, BASE_MS + n, f"old/{n}"),
        )
        prev = digest
    conn.close()
    store = SqliteMetadataStore(path)
    trail = AuditTrail(
        store.writer,
        LocalRootKey(bytes(range(32))),
        partition="onshore",
        region="r",
        flush_interval=3600,
    )
    try:
        trail.later(
            Facts(
                time_ms=BASE_MS + 10,
                event_name="GetObject",
                request_id="R",
                source_ip="::1",
                user_agent="t",
                read_only=True,
                bucket="b",
                key="new/1",
            )
        )
        trail.flush()
        trail.digest(final=True)
        with reading(path.parent) as read:
            assert sql.head(read)[0] == 4
            assert [e.seq for e in search(read, Filters(key_prefix="old/"))] == [1, 2, 3]
            export(read, tmp_path / "export")
        report = verify(tmp_path / "export", load_public_key(trail.key.public_pem().encode()))
        assert report.ok and report.records == 4, report.findings
    finally:
        trail.close()
        store.close()


def _read(n: int) -> Facts:
    return Facts(
        time_ms=BASE_MS + n,
        event_name="GetObject",
        request_id=f"R{n}",
        source_ip="::1",
        user_agent="t",
        read_only=True,
    )


def test_a_failed_flush_loses_no_record(
    store: SqliteMetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    trail = AuditTrail(
        store.writer, LocalRootKey(bytes(range(32))), partition="p", region="r", flush_interval=3600
    )
    try:
        for n in range(3):
            trail.later(_read(n))
        real = sql.append
        calls = []

        def failing(*args: object) -> int:
            calls.append(1)
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(sql, "append", failing)
        with pytest.raises(sqlite3.OperationalError):
            trail.flush()
        monkeypatch.setattr(sql, "append", real)
        assert calls and trail.flush() == 3
        conn = store._conn()  # noqa: SLF001
        assert [e.seq for e in sql.events(conn, 1, 10)] == [1, 2, 3]
        # While appending keeps failing, the records kept for a retry are bounded.
        monkeypatch.setattr(trail_module, "_UNSENT_MAX", 2)
        monkeypatch.setattr(sql, "append", failing)
        for n in range(3):
            trail.later(_read(n))
        with pytest.raises(sqlite3.OperationalError):
            trail.flush()
        monkeypatch.setattr(sql, "append", real)
        assert trail.flush() == 2
    finally:
        trail.close()


_SHARED = (
    "s3", "PutObject", False, "10.0.0.1", "agent", "bucket", True, None,
    "user", "111111111111", "arn:p:iam::111111111111:user/alice", "AKID", "alice",
    200, None, None, "",
)  # fmt: skip


def _processes(tmp_path: Path) -> tuple[list[SqliteMetadataStore], list[AuditTrail]]:
    """Two server processes' stores and trails on one database (closed by :func:`_close`)."""
    path = tmp_path / "data" / "metadata.db"
    path.parent.mkdir()
    stores = [SqliteMetadataStore(path), SqliteMetadataStore(path)]
    trails = [
        AuditTrail(s.writer, LocalRootKey(bytes(range(32))), partition="p", region="r",
                   flush_interval=3600)
        for s in stores
    ]  # fmt: skip
    return stores, trails


def _close(stores: list[SqliteMetadataStore], trails: list[AuditTrail]) -> None:
    for trail in trails:
        trail.close()
    for store in stores:
        store.close()


def _change(n: int, trail: AuditTrail) -> capture.Change:
    return capture.change(trail.groups.change(_SHARED), BASE_MS + n, 1, f"REQ{n}", f"k{n}", 3, True)


def _staged(n: int, trail: AuditTrail) -> Callable[[sqlite3.Connection], None]:
    """A change's job that stages its record (see AuditTrail.stage)."""
    return lambda c: trail.stage((_change(n, trail), '{"ETag":"abc"}', 0))


def _chain(path: Path, export_to: Path) -> list[str]:
    """The request ids of the chain's records, in order, after exporting it to ``export_to``."""
    with reading(path) as conn:
        found = list(sql.events(conn, 1, sql.head(conn)[0]))
        assert conn.execute("SELECT COUNT(*) FROM audit_pending").fetchone()[0] == 0
        export(conn, export_to)
    return [str(json.loads(e.event)["requestID"]) for e in found]


def test_processes_sharing_a_chain_keep_it_whole(tmp_path: Path) -> None:
    """Two server processes (two stores and trails on one database): each chains its changes'
    records as they commit; a change left as a pending row (by an earlier version) is chained
    by the next flush or digest, before their own records; the chain stays whole."""
    stores, trails = _processes(tmp_path)

    def pending(n: int) -> Callable[[sqlite3.Connection], None]:
        captured = legacy_audit.captured(_change(n, trails[0]))
        return lambda c: legacy_audit.pend(c, captured, '{"ETag":"abc"}', 0)

    def staged(n: int, trail: AuditTrail = trails[0]) -> Callable[[sqlite3.Connection], None]:
        return _staged(n, trail)

    try:
        stores[0].writer.submit(staged(1))  # chained as it commits
        stores[0].writer.submit(pending(2))
        trails[1].later(_read(3))
        assert trails[1].flush() == 2  # the other process's pending change, then its read
        stores[1].writer.submit(staged(4, trails[1]))
        stores[0].writer.submit(pending(5))
        trails[1].digest(final=True)  # a digest chains what is pending first
        found = _chain(tmp_path / "data", tmp_path / "export")
        assert found == ["REQ1", "REQ2", "R3", "REQ4", "REQ5"]
        report = verify(tmp_path / "export", load_public_key(trails[1].key.public_pem().encode()))
        assert report.ok and report.records == 5, report.findings
    finally:
        _close(stores, trails)


def test_a_batch_appends_after_the_head_its_process_last_committed(tmp_path: Path) -> None:
    """A batch of changes appends after the chain head as its process's previous batch
    committed it, without reading it; when that head is stale (another process, a flush or a
    digest appended since), the insert is refused and the batch appends after the head read;
    a batch that failed leaves no head to follow. The chain stays whole throughout."""
    stores, trails = _processes(tmp_path)
    statements: list[str] = []
    stores[0].writer._conn.set_trace_callback(statements.append)  # noqa: SLF001

    def heads_read() -> int:
        return sum(s.startswith("SELECT last_seq, head_hash") for s in statements)

    real_hook = stores[0].writer.before_commit
    assert real_hook is not None

    def failing_hook(conn: sqlite3.Connection, staged: list[Any]) -> Callable[[], None] | None:
        real_hook(conn, staged)  # the records appended, then the batch fails
        raise RuntimeError("the batch fails after its records were appended")

    try:
        stores[0].writer.submit(_staged(1, trails[0]))  # the head read: none known yet
        assert heads_read() == 1
        stores[0].writer.submit(_staged(2, trails[0]))
        stores[0].writer.submit(_staged(3, trails[0]))
        assert heads_read() == 1  # appended after the head it committed

        stores[1].writer.submit(_staged(4, trails[1]))  # the other process appends
        stores[0].writer.submit(_staged(5, trails[0]))  # refused after 3, appended after 4
        assert heads_read() == 2

        trails[0].later(_read(6))
        trails[0].flush()  # this process appends outside a batch of changes
        stores[0].writer.submit(_staged(7, trails[0]))

        stores[0].writer.before_commit = failing_hook
        with pytest.raises(RuntimeError):
            stores[0].writer.submit(_staged(8, trails[0]))
        stores[0].writer.before_commit = real_hook
        read = heads_read()
        stores[0].writer.submit(_staged(9, trails[0]))  # not after 8: it was rolled back
        assert heads_read() == read + 1
        stores[0].writer.submit(_staged(10, trails[0]))
        assert heads_read() == read + 1

        trails[0].digest(final=True)
        found = _chain(tmp_path / "data", tmp_path / "export")
        assert found == ["REQ1", "REQ2", "REQ3", "REQ4", "REQ5", "R6", "REQ7", "REQ9", "REQ10"]
        report = verify(tmp_path / "export", load_public_key(trails[0].key.public_pem().encode()))
        assert report.ok and report.records == 9, report.findings
    finally:
        _close(stores, trails)
