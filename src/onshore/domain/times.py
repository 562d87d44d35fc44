"""Instants as integer microseconds since the Unix epoch (UTC).

The metadata store keeps every time in this form, and listings carry it unconverted: a page of
a thousand entries would otherwise build a thousand ``datetime`` objects only to format them
again. A naive ``datetime`` is taken as UTC.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of ``moment`` (naive: UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // _MICROSECOND


def from_us(micros: int) -> datetime:
    """The UTC-aware ``datetime`` of ``micros`` microseconds since the epoch."""
    return EPOCH + timedelta(microseconds=micros)


# iso_ms's cache and table, also read inline by a hot loop (the audit trail's rendering):
ISO_SECONDS: dict[int, str] = {}  # second since the epoch -> "YYYY-MM-DDTHH:MM:SS" (a cache)
ISO_MILLIS = tuple(f".{millis:03d}Z" for millis in range(1000))


def iso_ms(time_ms: int) -> str:
    """``2026-11-29T20:58:48.113Z``: ISO 8601 in UTC with milliseconds, as S3 writes times in
    XML and CloudTrail in its records, from milliseconds since the epoch.

    Callers format many times of few distinct seconds (a listing page of objects written
    together, a second's audit records), so the date is worked out once per second seen and the
    milliseconds come from a table; the cache is emptied when it holds 4,096 seconds (dictionary
    reads and writes are atomic, so threads may share it)."""
    second, millis = divmod(time_ms, 1000)
    text = ISO_SECONDS.get(second)
    if text is None:
        if len(ISO_SECONDS) >= 4096:
            ISO_SECONDS.clear()
        t = time.gmtime(second)
        text = ISO_SECONDS[second] = (
            f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
            f"T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
        )
    return text + ISO_MILLIS[millis]
