"""How long an audit search takes over a long trail: the issue's "a query over six months of a
busy deployment returns in seconds".

    python benchmarks/audit_search.py [--records 5000000] [--days 180] [--dir DIR]

Builds a synthetic trail in a new data directory: ``--records`` S3 records spread evenly over
``--days`` days, from 50 accounts (5 users and 3 buckets each), five operations, 1% refused
(``AccessDenied``) and 2% ``NoSuchKey``; rendered, hashed, stored in blocks and indexed in
search rows by the code the server uses (``capture.Groups.captured_rows``, ``sql.append``,
``sql.index``), an hour of records per transaction (the flusher commits a second's: the blocks
and search rows are the same, one search row per group of alike records per minute). Then runs
searches such as an auditor or a tenant makes, each three times on a read-only connection (the
CLI's), and prints the best and worst time of each, with the trail's size: records, search rows,
database bytes.

A search's cost is the search rows its filters select through their indexes, and the records of
those rows it reads back and checks: not the size of the trail. Run it with two sizes to see
that (``--records 500000`` and the default).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from onshore.service.audit.capture import Groups
from onshore.service.audit.integrity import link_function
from onshore.service.audit.search import search
from onshore.storage.sqlite import SqliteMetadataStore
from onshore.storage.sqlite import audit as sql

START_MS = 1_780_000_000_000  # 2026-05-28
MINUTE_MS = 60_000
OPERATIONS = ("GetObject", "PutObject", "HeadObject", "ListObjectsV2", "DeleteObject")


def account_id(n: int) -> str:
    return f"{100000000000 + n:012d}"


def shared_values(account: int, user: int, operation: str, bucket: int, error: str | None) -> Any:
    """A request's shared values (see ``capture.Shared``)."""
    acct = account_id(account)
    status = 200 if error is None else (403 if error == "AccessDenied" else 404)
    return (
        "s3", operation, operation.startswith(("Get", "Head", "List")), f"10.0.{account}.{user}",
        "aws-cli/2.15.0 Python/3.11.6 Linux/6.1.0 exe/x86_64.debian.12", f"b{account}-{bucket}",
        operation != "ListObjectsV2", None, "user", acct, f"arn:onshore:iam::{acct}:user/u{user}",
        f"AKIA{account:04d}{user:04d}EXAMPLE", f"u{user}", status, error,
        None if error is None else "message", "",
    )  # fmt: skip


def build(data_dir: Path, records: int, days: int, seed: int = 7) -> None:
    """Write the synthetic trail into ``data_dir``."""
    rng = random.Random(seed)
    store = SqliteMetadataStore(data_dir / "metadata.db")
    groups = Groups("onshore", "local-1")
    link = link_function("sha256")
    minutes = days * 24 * 60
    per_minute = records / minutes
    made = 0
    started = time.perf_counter()
    try:
        for hour in range(0, minutes, 60):
            captured: list[Any] = []
            for minute in range(hour, min(hour + 60, minutes)):
                count = int((minute + 1) * per_minute) - made
                at_ms = START_MS + minute * MINUTE_MS
                for i in range(count):
                    draw = rng.random()
                    error = "AccessDenied" if draw < 0.01 else "NoSuchKey" if draw < 0.03 else None
                    account, user, bucket = rng.randrange(50), rng.randrange(5), rng.randrange(3)
                    operation = OPERATIONS[rng.randrange(len(OPERATIONS))]
                    shared = shared_values(account, user, operation, bucket, error)
                    group = groups.reads.get(shared) or groups.read(shared)
                    key = None if operation == "ListObjectsV2" else f"logs/{minute // 1440}/{i}"
                    time_ms = at_ms + (i * MINUTE_MS) // count
                    captured += (group, time_ms, 3, f"REQ{made + i:016X}", key, 0, 1024)
                made += max(count, 0)
            rows = groups.captured_rows(captured, 0, len(captured))

            def job(conn: sqlite3.Connection, rows: list[sql.AuditRow] = rows) -> None:
                first = sql.append(conn, rows, "sha256", link)
                sql.index(conn, list(enumerate(rows, first)))

            store.writer.submit(job)  # an hour of records a transaction (the flusher: a second)
            if hour % (60 * 24 * 30) == 0:
                print(f"  {made:,} records, {time.perf_counter() - started:.0f} s", flush=True)
    finally:
        store.close()
    assert made == records


def measure(data_dir: Path, days: int) -> None:
    path = data_dir / "metadata.db"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        records = conn.execute("SELECT MAX(last_seq) FROM audit_blocks").fetchone()[0]
        rows = conn.execute("SELECT COUNT(*) FROM audit_index").fetchone()[0]
        size = sum(p.stat().st_size for p in data_dir.glob("metadata.db*"))
        print(f"trail: {records:,} records over {days} days, {rows:,} search rows, "
              f"{size / 2**20:,.0f} MiB")  # fmt: skip
        end = START_MS + days * 86_400_000
        middle = START_MS + days * 43_200_000
        day = 86_400_000
        queries = {
            "a tenant, everything (first 100)": sql.Filters(account=account_id(7)),
            "a tenant, everything (first 1,000)": sql.Filters(account=account_id(7), limit=1000),
            "a tenant, its last month": sql.Filters(
                account=account_id(7), start_ms=end - 30 * day, end_ms=end, limit=1000
            ),
            "a tenant's refusals, six months": sql.Filters(
                account=account_id(7), error_code="AccessDenied", limit=1000
            ),
            "every refusal, six months": sql.Filters(error_code="AccessDenied", limit=1000),
            "a user's deletes, six months": sql.Filters(
                account=account_id(9), user_name="u2", event_name="DeleteObject", limit=1000
            ),
            "a bucket's keys under a prefix, one day": sql.Filters(
                bucket="b3-1",
                key_prefix="logs/90/1",
                start_ms=middle,
                end_ms=middle + day,
                limit=1000,
            ),  # fmt: skip
            "everything in one hour": sql.Filters(
                start_ms=middle, end_ms=middle + 3_600_000, limit=1000
            ),
        }
        print("| search | results | best | worst |")
        print("| --- | --- | --- | --- |")
        for label, filters in queries.items():
            times = []
            found: list[sql.StoredEvent] = []
            for _ in range(3):
                started = time.perf_counter()
                found = search(conn, filters)
                times.append(time.perf_counter() - started)
            print(f"| {label} | {len(found):,} | {min(times) * 1000:,.0f} ms "
                  f"| {max(times) * 1000:,.0f} ms |")  # fmt: skip
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=5_000_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--dir", type=Path, default=None, help="keep the trail here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="onshore-audit-search-") as scratch:
        data_dir = args.dir or Path(scratch)
        data_dir.mkdir(parents=True, exist_ok=True)
        if not (data_dir / "metadata.db").exists():
            started = time.perf_counter()
            build(data_dir, args.records, args.days)
            print(f"built in {time.perf_counter() - started:.0f} s")
        measure(data_dir, args.days)


if __name__ == "__main__":
    main()
