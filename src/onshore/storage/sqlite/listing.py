"""Listing pages with a skip-scan, so a page costs O(page) however large the bucket is.

S3 listings are a walk over keys in byte order, restricted to a ``prefix``, resuming after a
marker, where keys that contain the ``delimiter`` after the prefix are *rolled up* into one
common prefix (``photos/2024/``) that counts once toward the page size.

The naive way reads every key under a common prefix just to discard it: listing the top level of
a bucket with 100,000 "directories" of 10 keys each would read a million rows. Instead we walk
the index in **runs**:

1. Seek to the lower bound and read rows in key order (``LIMIT`` = room left on the page).
2. Each row whose key has no delimiter after the prefix is an entry.
3. At the first row that rolls up into a common prefix ``P``, emit ``P`` and stop the run. The
   next run seeks to ``P + b"\\xff"``. UTF-8 never contains the byte 0xFF, so every key starting
   with ``P`` sorts below ``P + b"\\xff"`` and every key that does not, and is above ``P``, sorts
   above it: one index seek skips the whole prefix, however many keys it holds.

A page with *c* common prefixes therefore costs *c + 1* index seeks plus the rows it returns.
The scans read the listing's own columns (``codec.LISTED_COLUMNS``), so the rows that make the
page come out of the scan itself. Reading a row costs a table lookup, which a rolled-up key must
not pay (a page of 1,000 common prefixes would read 2,000 rows: the one that stops each run and
the cursor's look-ahead), so with a delimiter each run starts with a *probe*: the first key at
the bound, from the index alone. When it rolls up, the prefix is emitted and skipped at once;
only a run that starts with a listed key reads rows. Rows become
:class:`~onshore.domain.models.ListedVersion` tuples in one tight loop
(``codec.decode_listed``): per key, the listing's cost is the row's fetch, that loop and the
XML.

The prefix restriction is a key range, ``prefix <= key < prefix + b"\\xff"``; "after marker ``m``"
is ``key >= m + b"\\x00"`` (the smallest byte string greater than ``m``).

A common prefix is emitted only if it sorts after the marker. So a marker that is a common
prefix returned by an earlier page (or any key inside one) skips that prefix, as S3 does, and
walking pages with ``next_marker`` visits every entry exactly once.

The same scan serves the three listings; they differ in their rows and in how they resume
*within* the marker key:

* ``ListObjects`` reads the ``versions_current`` partial index (latest, non-delete-marker rows).
* ``ListObjectVersions`` reads ``versions_by_key`` (key, then seq descending: newest first). With
  a version id marker it first finishes the marker key (versions older than the marked one) and
  then scans from the next key; an unknown version id marker skips the whole key.
* ``ListMultipartUploads`` reads ``uploads_by_key`` (key, initiation time, creation order) and
  resumes within the marker key after the marked upload id, likewise.

Every query is a plain range scan with ``ORDER BY`` and ``LIMIT``, portable to PostgreSQL (whose
``bytea`` compares bytewise too).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from onshore.domain.models import ListPage, UploadPage, VersionPage
from onshore.storage.sqlite import codec

__all__ = ["list_objects", "list_uploads", "list_versions"]

_TOP = b"\xff"  # sorts above every UTF-8 continuation: prefix + _TOP bounds all keys under prefix
_NEXT = b"\x00"  # m + _NEXT is the smallest byte string greater than m

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Rolled:
    """A common prefix in a page under construction."""

    prefix: bytes


Seek = Callable[[bytes, int], Generator[tuple[bytes, R], None, None]]
Probe = Callable[[bytes], bytes | None]


def rollup(key: bytes, prefix: bytes, delimiter: bytes) -> bytes | None:
    """The common prefix ``key`` rolls up into, or None when the key is listed itself."""
    if not delimiter:
        return None
    at = key.find(delimiter, len(prefix))
    return None if at < 0 else key[: at + len(delimiter)]


def skip_scan(
    seek: Seek[R],
    out: list[R | Rolled],
    *,
    prefix: bytes,
    delimiter: bytes,
    marker: bytes,
    lower: bytes,
    want: int,
    probe: Probe | None = None,
) -> None:
    """Append entries to ``out`` until it holds ``want`` or the range is exhausted.

    With a ``probe`` (the first key at or above a bound, read from the index alone), each run
    first looks at its first key: when it rolls up, the prefix is emitted and skipped without
    reading a row, so a page of common prefixes never touches the table."""
    while len(out) < want:
        if delimiter and probe is not None:
            first = probe(lower)
            if first is None:
                return
            common = rollup(first, prefix, delimiter)
            if common is not None:
                if common > marker:
                    out.append(Rolled(common))
                lower = common + _TOP
                continue
        resume: bytes | None = None
        rows = seek(lower, want - len(out))
        try:
            for key, row in rows:
                common = rollup(key, prefix, delimiter)
                if common is None:
                    out.append(row)
                    if len(out) >= want:
                        return
                    continue
                if common > marker:
                    out.append(Rolled(common))
                resume = common + _TOP
                break
        finally:
            rows.close()
        if resume is None:
            return
        lower = resume


def _rows(
    conn: sqlite3.Connection, sql: str, params: Sequence[object], at: int = 0
) -> Generator[tuple[bytes, R], None, None]:
    """Rows of ``sql`` as (key, row), fetched lazily; the key is column ``at``."""
    cursor = conn.execute(sql, params)
    try:
        for row in cursor:
            yield row[at], row
    finally:
        cursor.close()


def _prober(conn: sqlite3.Connection, sql: str, bucket_id: int, upper: bytes) -> Probe:
    """A :data:`Probe` running ``sql`` (the first key in ``[lower, upper)``, index only)."""

    def probe(lower: bytes) -> bytes | None:
        found = conn.execute(sql, (bucket_id, lower, upper)).fetchone()
        return None if found is None else bytes(found[0])

    return probe


def _lower_bound(prefix: bytes, marker: bytes) -> bytes:
    return max(prefix, marker + _NEXT) if marker else prefix


def _split(page: list[R | Rolled]) -> tuple[list[R], tuple[str, ...]]:
    rows = [entry for entry in page if not isinstance(entry, Rolled)]
    prefixes = tuple(codec.key_text(e.prefix) for e in page if isinstance(e, Rolled))
    return rows, prefixes


# --- ListObjects --------------------------------------------------------------------------------
_OBJECTS = (
    f"SELECT {codec.LISTED_COLUMNS} FROM versions"
    " WHERE bucket_id = ? AND object_key >= ? AND object_key < ?"
    " AND is_latest AND NOT is_delete_marker"
    " ORDER BY object_key LIMIT ?"
)
_FIRST_OBJECT = (
    "SELECT object_key FROM versions"
    " WHERE bucket_id = ? AND object_key >= ? AND object_key < ?"
    " AND is_latest AND NOT is_delete_marker"
    " ORDER BY object_key LIMIT 1"
)


def list_objects(
    conn: sqlite3.Connection,
    bucket_id: int,
    bucket: str,
    *,
    prefix: str,
    delimiter: str,
    start_after: str,
    limit: int,
) -> ListPage:
    if limit <= 0:
        return ListPage((), (), False)
    pre, marker = codec.key_bytes(prefix), codec.key_bytes(start_after)
    upper = pre + _TOP
    if not delimiter:
        # Nothing to roll up: one range query straight to the page's rows.
        found = conn.execute(
            _OBJECTS, (bucket_id, _lower_bound(pre, marker), upper, limit + 1)
        ).fetchall()
        objects = tuple(codec.decode_listed(found[:limit]))
        truncated = len(found) > limit
        return ListPage(objects, (), truncated, objects[-1].key if truncated else None)

    def seek(lower: bytes, room: int) -> Generator[tuple[bytes, codec.ListedRow], None, None]:
        return _rows(conn, _OBJECTS, (bucket_id, lower, upper, room))

    out: list[codec.ListedRow | Rolled] = []
    skip_scan(
        seek,
        out,
        prefix=pre,
        delimiter=codec.key_bytes(delimiter),
        marker=marker,
        lower=_lower_bound(pre, marker),
        want=limit + 1,
        probe=_prober(conn, _FIRST_OBJECT, bucket_id, upper),
    )
    page, truncated = out[:limit], len(out) > limit
    rows, prefixes = _split(page)
    next_marker = None
    if truncated and page:
        last = page[-1]
        next_marker = codec.key_text(last.prefix if isinstance(last, Rolled) else last[0])
    return ListPage(tuple(codec.decode_listed(rows)), prefixes, truncated, next_marker)


# --- ListObjectVersions -------------------------------------------------------------------------
_VERSIONS = (
    f"SELECT {codec.LISTED_COLUMNS} FROM versions"
    " WHERE bucket_id = ? AND object_key >= ? AND object_key < ?"
    " ORDER BY object_key, seq DESC LIMIT ?"
)
_FIRST_VERSION = (
    "SELECT object_key FROM versions"
    " WHERE bucket_id = ? AND object_key >= ? AND object_key < ?"
    " ORDER BY object_key, seq DESC LIMIT 1"
)
_MARKED_VERSION = (
    "SELECT seq FROM versions WHERE bucket_id = ? AND object_key = ? AND version_id = ?"
)
_OLDER_VERSIONS = (
    f"SELECT {codec.LISTED_COLUMNS} FROM versions"
    " WHERE bucket_id = ? AND object_key = ? AND seq < ?"
    " ORDER BY seq DESC LIMIT ?"
)


def list_versions(
    conn: sqlite3.Connection,
    bucket_id: int,
    bucket: str,
    *,
    prefix: str,
    delimiter: str,
    key_marker: str,
    version_id_marker: str,
    limit: int,
) -> VersionPage:
    if limit <= 0:
        return VersionPage((), (), False)
    pre, delim, marker = map(codec.key_bytes, (prefix, delimiter, key_marker))
    upper = pre + _TOP

    def seek(lower: bytes, room: int) -> Generator[tuple[bytes, codec.ListedRow], None, None]:
        return _rows(conn, _VERSIONS, (bucket_id, lower, upper, room))

    out: list[codec.ListedRow | Rolled] = []
    if marker and version_id_marker and _listed_itself(marker, pre, delim):
        found = conn.execute(_MARKED_VERSION, (bucket_id, marker, version_id_marker)).fetchone()
        if found is not None:
            older = conn.execute(_OLDER_VERSIONS, (bucket_id, marker, found[0], limit + 1))
            out.extend(older.fetchall())
    skip_scan(
        seek,
        out,
        prefix=pre,
        delimiter=delim,
        marker=marker,
        lower=_lower_bound(pre, marker),
        want=limit + 1,
        probe=_prober(conn, _FIRST_VERSION, bucket_id, upper),
    )
    page, truncated = out[:limit], len(out) > limit
    rows, prefixes = _split(page)
    versions = tuple(codec.decode_listed(rows))
    if not (truncated and page):
        return VersionPage(versions, prefixes, truncated)
    last = page[-1]
    if isinstance(last, Rolled):
        return VersionPage(versions, prefixes, True, codec.key_text(last.prefix), None)
    return VersionPage(versions, prefixes, True, codec.key_text(last[0]), last[1])


def _listed_itself(key: bytes, prefix: bytes, delimiter: bytes) -> bool:
    """Whether ``key`` is in the listing as itself (under the prefix, not rolled up)."""
    return key.startswith(prefix) and rollup(key, prefix, delimiter) is None


# --- ListMultipartUploads -----------------------------------------------------------------------
_UPLOADS = (
    f"SELECT {codec.UPLOAD_COLUMNS} FROM uploads"
    " WHERE bucket_id = ? AND object_key >= ? AND object_key < ?"
    " ORDER BY object_key, initiated_us, seq LIMIT ?"
)
_MARKED_UPLOAD = (
    "SELECT initiated_us, seq FROM uploads WHERE bucket_id = ? AND upload_id = ? AND object_key = ?"
)
_LATER_UPLOADS = (
    f"SELECT {codec.UPLOAD_COLUMNS} FROM uploads"
    " WHERE bucket_id = ? AND object_key = ?"
    " AND (initiated_us > ? OR (initiated_us = ? AND seq > ?))"
    " ORDER BY initiated_us, seq LIMIT ?"
)


def list_uploads(
    conn: sqlite3.Connection,
    bucket_id: int,
    bucket: str,
    *,
    prefix: str,
    delimiter: str,
    key_marker: str,
    upload_id_marker: str,
    limit: int,
) -> UploadPage:
    if limit <= 0:
        return UploadPage((), (), False)
    pre, delim, marker = map(codec.key_bytes, (prefix, delimiter, key_marker))
    upper = pre + _TOP

    def seek(lower: bytes, room: int) -> Generator[tuple[bytes, codec.UploadRow], None, None]:
        return _rows(conn, _UPLOADS, (bucket_id, lower, upper, room), at=1)

    out: list[codec.UploadRow | Rolled] = []
    if marker and upload_id_marker and _listed_itself(marker, pre, delim):
        found = conn.execute(_MARKED_UPLOAD, (bucket_id, upload_id_marker, marker)).fetchone()
        if found is not None:
            initiated, seq = found
            later = conn.execute(
                _LATER_UPLOADS, (bucket_id, marker, initiated, initiated, seq, limit + 1)
            )
            out.extend(later.fetchall())
    skip_scan(
        seek,
        out,
        prefix=pre,
        delimiter=delim,
        marker=marker,
        lower=_lower_bound(pre, marker),
        want=limit + 1,
    )
    page, truncated = out[:limit], len(out) > limit
    rows, prefixes = _split(page)
    uploads = tuple(codec.decode_upload(bucket, row) for row in rows)
    if not (truncated and page):
        return UploadPage(uploads, prefixes, truncated)
    last = page[-1]
    if isinstance(last, Rolled):
        return UploadPage(uploads, prefixes, True, codec.key_text(last.prefix), None)
    return UploadPage(uploads, prefixes, True, codec.key_text(last[1]), last[2])
