"""Pending rows as versions before staged audit records wrote them (``audit_pending``): a
change's capture, its group's values as JSON, the change's response and index. Today's code
only reads and chains such rows; the tests write them to show it still does."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from onshore.service.audit.capture import KIND, Change

SHARED = 7  # where a capture's shared values started, in the layout of those versions


def pend(conn: sqlite3.Connection, captured: Sequence[Any], response: str, index: int) -> None:
    """Write ``captured``'s record as an earlier version did, in the caller's transaction."""
    conn.execute(
        "INSERT INTO audit_pending (kind, shared, time_ms, duration_ms, request_id, object_key,"
        " bytes_in, bytes_out, response, change_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (captured[0], json.dumps(captured[SHARED:]), *captured[1:SHARED], response, index),
    )


def captured(change: Change) -> tuple[Any, ...]:
    """A change's capture in the layout of those versions: kind, time, duration, request id,
    key, bytes in, bytes out, then its shared values."""
    return (
        KIND,
        change.time_ms,
        change.duration_ms,
        change.request_id,
        change.key,
        change.bytes_in,
        0,
        *change.group.shared,
    )
