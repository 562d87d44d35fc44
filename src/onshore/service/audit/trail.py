"""The running audit trail of one server process: how records reach the chain.

Two paths, chosen by what a record is about:

* **State changes commit with their record.** While a request is handled, the API layer marks
  it as audited (:meth:`AuditTrail.begin`); every metadata write the request makes is then
  wrapped (through :data:`onshore.storage.sqlite.writer.JOB_WRAPPER`) so that, in the writer's
  transaction and in the write's own savepoint, the change is applied and *then* its record is
  appended to the chain. If the change fails, the savepoint is rolled back and no record exists;
  if the record cannot be appended, the change is rolled back too. Either both are durable or
  neither: there is no change without its record. A request that changes several things
  (``DeleteObjects``) writes one record per change (``additionalEventData.changeIndex``).
* **Everything else is buffered.** Reads, and requests that changed nothing (refused, failed,
  or no-ops), are recorded after the response: their facts are appended to an in-memory list
  (the only work on the request path) and a flusher thread appends them to the chain every
  ``audit_flush_interval`` seconds, as one write job (one fsync for all of them). A clean
  shutdown flushes what is left. A crash (``kill -9``, power cut) loses at most the records of
  reads answered in the last flush interval — the crash window, stated in ``docs/audit.md``.

The flusher thread also writes the periodic signed digests (:mod:`.integrity`), and a final one
at shutdown. Several server processes share one chain: each appends in its writer's
transaction, which holds the cross-process writer lock, reading the chain head inside it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from contextvars import Token
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from onshore.service.audit.events import (
    Facts,
    canonical,
    event_time_ms,
    fill,
    row_from_event,
    row_of,
    template,
)
from onshore.service.audit.integrity import (
    KEY_CONTEXT,
    AuditKey,
    digest_of,
    link_function,
)
from onshore.service.rootkey import KeyWrapper
from onshore.storage.sqlite import audit as sql
from onshore.storage.sqlite.writer import JOB_WRAPPER, GroupCommitWriter, JobWrapper, WriterClosed

__all__ = [
    "CAPTURES",
    "AuditTrail",
    "Capture",
    "Captured",
    "Pending",
    "Recorder",
    "load_key",
    "response_elements",
]

log = logging.getLogger("onshore.audit")

Work = Callable[[sqlite3.Connection], Any]
Recorder = Callable[[Any, int], sql.AuditRow]

Captured = tuple[Any, ...]
"""A buffered record in its cheapest form, as the request path captured it: a tuple of raw
values (strings, numbers, None, tuples of those) whose first item names its :class:`Capture`
in :data:`CAPTURES`, which renders it in the flusher, off the request path. The trail keeps
the values of all captured records in one flat list: a tuple kept for a second is one more
object for the garbage collector to count and visit, a value in a list of strings and numbers
is not (with tens of thousands of requests a second, that difference is measurable)."""


@dataclass(frozen=True, slots=True)
class Capture:
    """One kind of :data:`Captured` record: how many values it has (its name included), and
    how its values become a row (``row(values, partition, region)``)."""

    size: int
    row: Callable[[Sequence[Any], str, str], sql.AuditRow]


CAPTURES: dict[str, Capture] = {}
"""The kinds of :data:`Captured` records, by name; registered by the API layer capturing them."""


class Pending:
    """One request being handled: builds the record of each change it commits. It is the
    request's :data:`JOB_WRAPPER` (see :meth:`__call__`)."""

    __slots__ = ("_trail", "_facts", "changes", "token")

    def __init__(self, trail: AuditTrail, facts: Callable[[], Facts] | None = None) -> None:
        self._trail = trail
        self._facts = facts
        self.changes = 0
        self.token: Token[JobWrapper | None] | None = None

    def facts(self) -> Facts:
        """The facts of the request as known now (a subclass may build them itself)."""
        assert self._facts is not None
        return self._facts()

    def __call__(self, work: Work) -> Work:
        """``work`` followed by the append of its record, in the same savepoint, as a block of
        one record. What is known before the change (who, what) is gathered here, on the
        caller's thread (:meth:`recorder`); the writer thread adds the change's outcome,
        renders, hashes and inserts."""
        trail = self._trail
        record = self.recorder()

        def audited(conn: sqlite3.Connection) -> Any:
            result = work(conn)
            row = record(result, self.changes)
            seq = sql.append(conn, (row,), trail.alg, trail.link)
            # Its search row is written by the flusher's next job. No lock: that job runs on
            # this same writer thread, so it sees this append even if the flusher swapped the
            # list in between.
            trail.backlog.extend((seq, *row[:7]))
            self.changes += 1
            return result

        return audited

    def recorder(self) -> Recorder:
        """How to make the row of a change of this request from the change's result and its
        index among the request's changes (a subclass may do it its own way)."""
        trail = self._trail
        facts = self.facts()
        row = template(facts, partition=trail.partition, region=trail.region)
        return lambda result, index: fill(row, facts, response_elements(result, facts.key), index)

    wrap = __call__


class AuditTrail:
    """Appends records to the chain and signs digests (see the module docstring)."""

    def __init__(
        self,
        writer: GroupCommitWriter,
        wrapper: KeyWrapper,
        *,
        partition: str,
        region: str,
        alg: str = "sha256",
        flush_interval: float = 1.0,
        digest_minutes: float = 60.0,
    ) -> None:
        self._writer = writer
        self.partition = partition
        self.region = region
        self.alg = alg
        self.link = link_function(alg)
        self._flush_interval = max(0.01, flush_interval)
        self._digest_ms = max(1, int(digest_minutes * 60_000))
        self._buffer: list[Facts] = []
        self._captured: list[Any] = []  # the values of captured records, end to end
        self._unsent: list[sql.AuditRow] = []  # rendered, but their append failed: retried
        # The search fields of changes' records appended since the last flush (see Pending),
        # end to end: seq, then AuditRow's fields but the text (only strings and numbers, kept
        # for up to a second: no objects for the garbage collector to visit).
        self.backlog: list[Any] = []
        self._swap = threading.Lock()
        self.key = load_key(writer, wrapper)
        writer.submit(_reindex)
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="onshore-audit", daemon=True)
        self._thread.start()

    # --- the request path -----------------------------------------------------------------------
    def begin(self, facts: Callable[[], Facts]) -> Pending:
        """Mark the current request as audited: its metadata writes carry their records."""
        return self.enter(Pending(self, facts))

    def enter(self, pending: Pending) -> Pending:
        """:meth:`begin` with a :class:`Pending` made by the caller."""
        pending.token = JOB_WRAPPER.set(pending)
        return pending

    def finish(self, pending: Pending, facts: Facts | None) -> None:
        """The request is answered: unless its change already carries its record (and it
        succeeded), buffer a record of the outcome (``facts``; None when there is none to
        add)."""
        if pending.token is not None:
            JOB_WRAPPER.reset(pending.token)
            pending.token = None
        if facts is not None and (pending.changes == 0 or facts.error_code is not None):
            self.later(facts)

    def capture(self, pending: Pending, captured: Captured) -> None:
        """The request is answered and its record is due: buffer it as ``captured`` (see
        :data:`Captured`; the caller decides that the record is due, as :meth:`finish`
        would)."""
        if pending.token is not None:
            JOB_WRAPPER.reset(pending.token)
            pending.token = None
        with self._swap:  # not lost to a flush that swaps the list between lookup and append
            self._captured += captured

    def later(self, facts: Facts) -> None:
        """Buffer a record; the flusher appends it within ``audit_flush_interval``."""
        with self._swap:  # not lost to a flush that swaps the list between lookup and append
            self._buffer.append(facts)

    def row(self, facts: Facts) -> sql.AuditRow:
        return row_of(facts, partition=self.partition, region=self.region)

    def _captured_rows(self, values: list[Any]) -> list[sql.AuditRow]:
        rows = []
        partition, region = self.partition, self.region
        at, end = 0, len(values)
        while at < end:
            kind = CAPTURES[values[at]]
            rows.append(kind.row(values[at : at + kind.size], partition, region))
            at += kind.size
        return rows

    # --- the flusher ----------------------------------------------------------------------------
    def flush(self) -> int:
        """Append every buffered record now (one write job); return how many."""
        with self._swap:
            taken, self._buffer = self._buffer, []
            captured, self._captured = self._captured, []
            changed, self.backlog = self.backlog, []
        if not taken and not captured and not changed and not self._unsent:
            return 0
        rows, self._unsent = self._unsent, []
        rows += self._captured_rows(captured)
        rows += [self.row(facts) for facts in taken]

        def job(conn: sqlite3.Connection) -> None:
            appended = [_changed(changed, at) for at in range(0, len(changed), 8)]
            if rows:
                appended += enumerate(rows, sql.append(conn, rows, self.alg, self.link))
            sql.index(conn, appended)

        try:
            self._writer.submit(job)
        except Exception:  # nothing of the job was committed: try again at the next flush
            with self._swap:
                self._unsent = rows + self._unsent
                self.backlog[:0] = changed
            raise
        return len(rows)

    def digest(self, *, final: bool = False) -> sql.DigestRow | None:
        """Sign a digest of the records since the previous one. A periodic digest is skipped if
        another process wrote one less than an interval ago; a final one if nothing is new."""
        return self._writer.submit(lambda conn: self._digest_job(conn, final))

    def _digest_job(self, conn: sqlite3.Connection, final: bool) -> sql.DigestRow | None:
        now = time.time_ns() // 1_000_000
        last = sql.last_digest(conn)
        head_seq, head_hash = sql.head(conn)
        first = 1 if last is None else last.last_seq + 1
        if final and head_seq < first:
            return None
        if not final and last is not None and now - last.time_ms < self._digest_ms * 9 // 10:
            return None
        start_prev = sql.hash_at(conn, first - 1)
        times = sql.times_since(conn, first)
        payload = {
            "digestSeq": 1 if last is None else last.seq + 1,
            "digestTime": iso_ms(now),
            "firstSeq": first,
            "lastSeq": head_seq,
            "count": head_seq - first + 1,
            "startTime": None if times[0] is None else iso_ms(int(times[0])),
            "endTime": None if times[1] is None else iso_ms(int(times[1])),
            "startPrevHash": start_prev.hex(),
            "headHash": (head_hash if head_seq >= first else start_prev).hex(),
            "previousDigestHash": None if last is None else last.hash,
            "hashAlgorithm": self.alg,
            "keyFingerprint": self.key.fingerprint,
            "partition": self.partition,
            "region": self.region,
        }
        text = canonical(payload)
        digest = sql.DigestRow(
            seq=int(payload["digestSeq"]),  # type: ignore[call-overload]
            time_ms=now,
            first_seq=first,
            last_seq=head_seq,
            payload=text,
            signature=self.key.sign(text.encode("utf-8")),
            hash=digest_of(self.alg, text.encode("utf-8")).hex(),
        )
        sql.insert_digest(conn, digest)
        return digest

    def _run(self) -> None:
        next_digest = time.monotonic() + self._digest_ms / 1000
        while not self._stop.wait(self._flush_interval):
            try:
                self.flush()
                if time.monotonic() >= next_digest:
                    next_digest = time.monotonic() + self._digest_ms / 1000
                    self.digest()
            except WriterClosed:
                return
            except Exception:  # keep flushing; the records stay in the buffer only if unflushed
                log.exception("audit flush failed")

    def close(self) -> None:
        """Stop the flusher, append what is buffered, sign a final digest. Call before the
        metadata store closes. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._thread.join()
        try:
            self.flush()
            self.digest(final=True)
        except WriterClosed:
            log.error("audit trail closed after the metadata store: buffered records lost")


def _changed(backlog: list[Any], at: int) -> tuple[int, sql.AuditRow]:
    """The search fields of the change's record at ``at`` in a backlog (see AuditTrail)."""
    seq, time_ms, account, user_name, event_name, bucket, key, error_code = backlog[at : at + 8]
    return seq, sql.AuditRow(time_ms, account, user_name, event_name, bucket, key, error_code, "")


_REINDEX_WINDOW = 100_000


def _reindex(conn: sqlite3.Connection) -> None:
    """Write the search rows a crash left out: those of changes committed in the last moments
    before it (their rows wait in memory for the next flush)."""
    missing = sql.unindexed(conn, _REINDEX_WINDOW)
    if missing:
        sql.index(conn, [(seq, _stored_row(text)) for seq, text in missing])


def _stored_row(text: str) -> sql.AuditRow:
    event = json.loads(text)
    return row_from_event(event_time_ms(str(event.get("eventTime", ""))), text, event)


def load_key(writer: GroupCommitWriter, wrapper: KeyWrapper) -> AuditKey:
    """The deployment's audit key: the newest stored one, or a new one generated and stored
    (wrapped by the root key) in the same write transaction, so concurrent first starts agree."""

    def job(conn: sqlite3.Connection) -> tuple[str, bytes]:
        stored = sql.keys(conn)
        if stored:
            fingerprint, _, wrapped = stored[-1]
            return fingerprint, wrapped
        key = AuditKey.generate()
        wrapped = wrapper.wrap(key.raw_private(), context=_context(key.fingerprint))
        sql.insert_key(
            conn, time.time_ns() // 1_000_000, key.fingerprint, key.public_pem(), wrapped
        )
        return key.fingerprint, wrapped

    fingerprint, wrapped = writer.submit(job)
    key = AuditKey.from_raw(wrapper.unwrap(wrapped, context=_context(fingerprint)))
    if key.fingerprint != fingerprint:
        raise RuntimeError("the stored audit key does not match its fingerprint")
    return key


def _context(fingerprint: str) -> bytes:
    return KEY_CONTEXT + b"/" + fingerprint.encode("ascii")


def response_elements(result: object, key: str | None) -> dict[str, str] | None:
    """What a write's result says that a reader of the record wants: the version written or
    removed (and its key, when it is not the request's own, as in ``DeleteObjects``)."""
    version = getattr(result, "version", None) or getattr(result, "removed", None)
    if version is None:
        return None
    found: dict[str, str] = {}
    if getattr(version, "key", key) != key:
        found["key"] = str(version.key)
    version_id = getattr(version, "version_id", "")
    if version_id and version_id != "null":
        found["x-amz-version-id"] = str(version_id)
    if getattr(version, "is_delete_marker", False):
        found["x-amz-delete-marker"] = "true"
    elif getattr(version, "etag", ""):
        found["ETag"] = str(version.etag)
    return found or None


def iso_ms(time_ms: int) -> str:
    moment = datetime.fromtimestamp(time_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{time_ms % 1000:03d}Z"
