"""Searching the trail: the index narrows, each record decides.

The search rows (:func:`onshore.storage.sqlite.audit.groups`) name groups of records alike in
account, user, operation, bucket and error code within one minute; a search reads the groups
its filters select, earliest first, and then reads and checks each of their records against
every filter (time, key prefix and the rest: a search row is a hint, never the answer, so a row
left behind by a rolled-back change or written twice after a crash cannot add a wrong or a
duplicate result). It stops as soon as no later group can hold a record earlier than the
``limit`` it has found.
"""

from __future__ import annotations

import bisect
import json
import sqlite3

from onshore.service.audit.events import event_time_ms, row_from_event
from onshore.storage.sqlite import audit as sql

__all__ = ["search"]


def search(conn: sqlite3.Connection, f: sql.Filters) -> list[sql.StoredEvent]:
    """Records matching ``f``, oldest first (by time, then seq), at most ``f.limit``."""
    limit = max(0, f.limit)
    found: list[tuple[int, int, sql.StoredEvent]] = []
    seen: set[int] = set()
    blocks = sql.Blocks()  # the groups of one minute mostly share their blocks
    if limit == 0:
        return []
    for group in sql.groups(conn, f):
        if len(found) >= limit and group.start_ms > found[limit - 1][0]:
            break  # every later group starts after the last result kept
        seqs = group.seqs
        if f.key_prefix:
            prefix = f.key_prefix
            keys = json.loads(group.object_keys)
            seqs = [s for s, k in zip(seqs, keys, strict=False) if k and k.startswith(prefix)]
        wanted = sorted(s for s in set(seqs) if s not in seen)
        for stored in sql.records(conn, wanted, blocks):
            time_ms = _matches(stored.event, f)
            if time_ms is None:
                continue
            seen.add(stored.seq)
            bisect.insort(found, (time_ms, stored.seq, stored))
        del found[limit:]
    return [stored for _, _, stored in found]


def _matches(text: str, f: sql.Filters) -> int | None:
    """The record's time if it matches every filter of ``f``, else None."""
    try:
        event = json.loads(text)
        time_ms = event_time_ms(str(event["eventTime"]))
    except (ValueError, KeyError, TypeError):
        return None
    row = row_from_event(time_ms, text, event)
    if f.start_ms is not None and time_ms < f.start_ms:
        return None
    if f.end_ms is not None and time_ms >= f.end_ms:
        return None
    account = f.account
    if account is not None and account != row.about[0] and (row.also or ("",))[0] != account:
        return None  # about neither the account acted on nor the caller's
    for wanted, value in zip(
        (f.user_name, f.event_name, f.bucket, f.error_code), row.about[1:], strict=True
    ):
        if wanted is not None and wanted != value:
            return None
    if f.key_prefix and not (row.key or "").startswith(f.key_prefix):
        return None
    return time_ms
