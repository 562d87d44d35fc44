"""SQLite tables of the licensor plane (``migrations/0004_licensing.sql``).

Licensing touches the database rarely (start-up, a periodic refresh, metering flushes, CLI
commands), so every access — reads included — is one closure submitted to the metadata store's
group-commit writer: it runs in the same transactions as every other write, across processes
serialised by the writer lock, and needs no connection of its own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from onshore.storage.sqlite.store import SqliteMetadataStore

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DayUsage:
    day: str
    requests_a: int = 0
    requests_b: int = 0
    requests_free: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


@dataclass(frozen=True, slots=True)
class Sample:
    hour_us: int
    stored_bytes: int
    object_count: int
    tenant_count: int
    peak_bytes: int = 0


@dataclass(frozen=True, slots=True)
class StoredReport:
    month: str
    seq: int
    hash: str
    document: str


class SqliteLicensingStore:
    def __init__(self, meta: SqliteMetadataStore) -> None:
        self._meta = meta

    def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return self._meta.writer.submit(work)

    # --- deployment key -------------------------------------------------------------------------
    def deployment_key(self) -> tuple[str, bytes] | None:
        def work(c: sqlite3.Connection) -> tuple[str, bytes] | None:
            row = c.execute("SELECT public_key, wrapped_key FROM license_deployment").fetchone()
            return None if row is None else (str(row[0]), bytes(row[1]))

        return self._run(work)

    def create_deployment_key(self, public: str, wrapped: bytes, now_us: int) -> tuple[str, bytes]:
        """Store a new key unless one exists; return the key in force (first writer wins)."""

        def work(c: sqlite3.Connection) -> tuple[str, bytes]:
            c.execute(
                "INSERT OR IGNORE INTO license_deployment (id, public_key, wrapped_key,"
                " created_us) VALUES (1, ?, ?, ?)",
                (public, wrapped, now_us),
            )
            row = c.execute("SELECT public_key, wrapped_key FROM license_deployment").fetchone()
            return str(row[0]), bytes(row[1])

        return self._run(work)

    # --- licenses -------------------------------------------------------------------------------
    def install_license(self, license_id: str, document: str, now_us: int) -> None:
        self._run(
            lambda c: c.execute(
                "INSERT INTO license_files (license_id, document, installed_us) VALUES (?, ?, ?)",
                (license_id, document, now_us),
            )
        )

    def current_license(self) -> str | None:
        def work(c: sqlite3.Connection) -> str | None:
            row = c.execute(
                "SELECT document FROM license_files ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            return None if row is None else str(row[0])

        return self._run(work)

    # --- clock ----------------------------------------------------------------------------------
    def advance_clock(
        self, now_us: int, sign: Callable[[int], bytes], valid: Callable[[int, bytes], bool]
    ) -> tuple[int, bytes] | None:
        """Raise the high-water mark to ``now_us`` if it is higher and the stored mark is
        ``valid``; return the mark as it was."""

        def work(c: sqlite3.Connection) -> tuple[int, bytes] | None:
            row = c.execute("SELECT high_water_us, signature FROM license_clock").fetchone()
            before = None if row is None else (int(row[0]), bytes(row[1]))
            if before is None or (now_us > before[0] and valid(*before)):
                c.execute(
                    "INSERT INTO license_clock (id, high_water_us, signature) VALUES (1, ?, ?)"
                    " ON CONFLICT (id) DO UPDATE SET high_water_us = excluded.high_water_us,"
                    " signature = excluded.signature",
                    (now_us, sign(now_us)),
                )
            return before

        return self._run(work)

    # --- usage ----------------------------------------------------------------------------------
    def add_usage(self, days: list[DayUsage]) -> None:
        def work(c: sqlite3.Connection) -> None:
            for d in days:
                c.execute(
                    "INSERT INTO usage_days (day, requests_a, requests_b, requests_free,"
                    " bytes_in, bytes_out) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (day) DO UPDATE"
                    " SET requests_a = requests_a + excluded.requests_a,"
                    " requests_b = requests_b + excluded.requests_b,"
                    " requests_free = requests_free + excluded.requests_free,"
                    " bytes_in = bytes_in + excluded.bytes_in,"
                    " bytes_out = bytes_out + excluded.bytes_out",
                    (d.day, d.requests_a, d.requests_b, d.requests_free, d.bytes_in, d.bytes_out),
                )

        if days:
            self._run(work)

    def totals(self) -> tuple[int, int, int]:
        """Stored bytes (versions and uploaded parts), object versions, distinct bucket owners."""

        def work(c: sqlite3.Connection) -> tuple[int, int, int]:
            size, count = c.execute(
                "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM versions WHERE is_delete_marker = 0"
            ).fetchone()
            parts = c.execute("SELECT COALESCE(SUM(size), 0) FROM parts").fetchone()[0]
            owners = c.execute("SELECT COUNT(DISTINCT owner_id) FROM buckets").fetchone()[0]
            return int(size) + int(parts), int(count), int(owners)

        return self._run(work)

    def active_tenants(self) -> int:
        """Tenants that exist and are not offboarded (what ``max_tenants`` counts)."""
        row = (
            self._meta.read_connection()
            .execute(
                "SELECT COUNT(*) FROM tenants WHERE account_id NOT IN"
                " (SELECT account_id FROM offboarding WHERE state = 'offboarded')"
            )
            .fetchone()
        )
        return int(row[0])

    def record_sample(self, sample: Sample) -> None:
        """The hour's latest totals; the hour's peak only grows."""
        self._run(
            lambda c: c.execute(
                "INSERT INTO usage_samples (hour_us, stored_bytes, peak_bytes, object_count,"
                " tenant_count) VALUES (?, ?, ?, ?, ?) ON CONFLICT (hour_us) DO UPDATE SET"
                " stored_bytes = excluded.stored_bytes, object_count = excluded.object_count,"
                " tenant_count = excluded.tenant_count,"
                " peak_bytes = MAX(peak_bytes, excluded.peak_bytes)",
                (
                    sample.hour_us,
                    sample.stored_bytes,
                    sample.stored_bytes,
                    sample.object_count,
                    sample.tenant_count,
                ),
            )
        )

    def usage(
        self, first_day: str, last_day: str, start_us: int, end_us: int
    ) -> tuple[list[DayUsage], list[Sample]]:
        """Counters of the days ``first_day``..``last_day`` (inclusive) and the samples of
        the hours in ``[start_us, end_us)``."""

        def work(c: sqlite3.Connection) -> tuple[list[DayUsage], list[Sample]]:
            days = [
                DayUsage(str(r[0]), *map(int, r[1:]))
                for r in c.execute(
                    "SELECT day, requests_a, requests_b, requests_free, bytes_in, bytes_out"
                    " FROM usage_days WHERE day BETWEEN ? AND ? ORDER BY day",
                    (first_day, last_day),
                )
            ]
            samples = [
                Sample(*map(int, r))
                for r in c.execute(
                    "SELECT hour_us, stored_bytes, object_count, tenant_count, peak_bytes"
                    " FROM usage_samples"
                    " WHERE hour_us >= ? AND hour_us < ? ORDER BY hour_us",
                    (start_us, end_us),
                )
            ]
            return days, samples

        return self._run(work)

    def prune(self, before_day: str, before_us: int) -> None:
        """Forget counters older than the retention period."""

        def work(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM usage_days WHERE day < ?", (before_day,))
            c.execute("DELETE FROM usage_samples WHERE hour_us < ?", (before_us,))

        self._run(work)

    # --- reports --------------------------------------------------------------------------------
    def last_report(self) -> StoredReport | None:
        def work(c: sqlite3.Connection) -> StoredReport | None:
            row = c.execute(
                "SELECT month, seq, hash, document FROM usage_reports ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            return None if row is None else StoredReport(str(row[0]), int(row[1]), *row[2:])

        return self._run(work)

    def report(self, month: str) -> StoredReport | None:
        def work(c: sqlite3.Connection) -> StoredReport | None:
            row = c.execute(
                "SELECT month, seq, hash, document FROM usage_reports WHERE month = ?", (month,)
            ).fetchone()
            return None if row is None else StoredReport(str(row[0]), int(row[1]), *row[2:])

        return self._run(work)

    def save_report(self, report: StoredReport, now_us: int) -> None:
        self._run(
            lambda c: c.execute(
                "INSERT INTO usage_reports (month, seq, hash, document, created_us)"
                " VALUES (?, ?, ?, ?, ?)",
                (report.month, report.seq, report.hash, report.document, now_us),
            )
        )
