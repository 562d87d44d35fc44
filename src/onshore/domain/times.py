"""Instants as integer microseconds since the Unix epoch (UTC).

The metadata store keeps every time in this form, and listings carry it unconverted: a page of
a thousand entries would otherwise build a thousand ``datetime`` objects only to format them
again. A naive ``datetime`` is taken as UTC.
"""

from __future__ import annotations

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
