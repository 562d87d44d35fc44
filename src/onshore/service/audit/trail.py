"""The running audit trail of one server process: how records reach the chain.

Two paths, chosen by what a record is about:

* **State changes commit with their record.** While a request is handled, the API layer marks
  it as audited (:meth:`AuditTrail.begin`); every metadata write the request makes is then
  wrapped (through :data:`onshore.storage.sqlite.writer.JOB_WRAPPER`) so that, in the writer's
  transaction and in the write's own savepoint, the change is applied and *then* its record is
  written. If the change fails, the savepoint is rolled back and no record exists; if the record
  cannot be written, the change is rolled back too. Either both are durable or neither: there is
  no change without its record and no record without its change. A request that changes several
  things (``DeleteObjects``) writes one record per change (``additionalEventData.changeIndex``).
  An S3 change's record is *staged* by the change's job (:attr:`AuditTrail.stage`: its
  capture, rendered ahead but for the change's outcome, with that outcome; see
  :mod:`.capture`) and the writer appends the records its batch staged to the chain just before
  the batch's ``COMMIT`` (:attr:`GroupCommitWriter.stage`): finished and hashed in one loop for
  the batch, in the same transaction, under the cross-process writer lock, so the chain keeps
  the changes' commit order. Other planes' changes (admin API, CLI)
  are rendered and appended whole, in their savepoint. (Versions before staging wrote each
  change's record as a *pending* row for the flusher to chain; the flusher and digests still
  take such rows first, and a start chains what a crash left of them.)
* **Everything else is buffered.** Reads, and requests that changed nothing (refused, failed,
  or no-ops), are recorded after the response: their group and own values are appended to an
  in-memory list (:attr:`AuditTrail.captured`; the only work on the request path) and a flusher
  thread appends them to the chain every
  ``audit_flush_interval`` seconds, as one write job (one fsync for all of them). A clean
  shutdown flushes what is left. A crash (``kill -9``, power cut) loses at most the records of
  reads answered in the last flush interval — the crash window, stated in ``docs/audit.md``.

Each flush renders, hashes, stores (:mod:`onshore.storage.sqlite.audit`: blocks of records)
and indexes its records in one loop: work done once per second for many requests rather than on
each request's path. The flusher thread also writes the periodic signed digests
(:mod:`.integrity`), and a final one at shutdown. Several server processes share one chain: each
appends in its writer's transaction, which holds the cross-process writer lock, reading the
chain head inside it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from contextvars import Token
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

from onshore.domain.models import WriteResult
from onshore.service.audit import capture
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
from onshore.service.audit.render import object_json
from onshore.service.rootkey import KeyWrapper
from onshore.storage.sqlite import audit as sql
from onshore.storage.sqlite.writer import JOB_WRAPPER, GroupCommitWriter, JobWrapper, WriterClosed

__all__ = [
    "AuditTrail",
    "Pending",
    "Work",
    "append",
    "load_key",
    "response_elements",
    "response_json",
]

log = logging.getLogger("onshore.audit")

Work = Callable[[sqlite3.Connection], Any]


class Pending:
    """One request being handled: writes the record of each change it commits. It is the
    request's :data:`JOB_WRAPPER` (see :meth:`__call__`)."""

    __slots__ = ("_trail", "_facts", "changes", "token")

    def __init__(self, trail: AuditTrail, facts: Callable[[], Facts] | None = None) -> None:
        self._trail = trail
        self._facts = facts
        self.changes = 0
        self.token: Token[JobWrapper | None] | None = None

    def facts(self) -> Facts:
        """The facts of the request as known now (a subclass may record without them)."""
        assert self._facts is not None
        return self._facts()

    def __call__(self, work: Work) -> Work:
        """``work`` followed by the append of its record to the chain, rendered whole, in the
        same savepoint. The record is rendered here, on the caller's thread, with a placeholder
        for the change's outcome that the writer thread fills in."""
        trail = self._trail
        facts = self.facts()
        row = template(facts, partition=trail.partition, region=trail.region)

        def audited(conn: sqlite3.Connection) -> Any:
            result = work(conn)
            done = fill(row, facts, response_elements(result, facts.key), self.changes)
            trail.append(conn, [done])
            self.changes += 1
            return result

        return audited


def append(
    conn: sqlite3.Connection,
    rows: list[sql.AuditRow],
    alg: str,
    link: sql.Link,
    partition: str,
    region: str,
) -> int:
    """Append the pending changes' records, then ``rows``, to the chain, with their search
    rows, in the caller's write transaction; return how many records that made."""
    pending = sql.take_pending(conn)
    if pending:
        rows = capture.pending_rows(pending, partition, region) + rows
    if rows:
        sql.index(conn, list(enumerate(rows, sql.append(conn, rows, alg, link))))
    return len(rows)


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
        self.groups = capture.Groups(partition, region)
        # The values of buffered captures, end to end (see capture.SIZE). Never replaced: the
        # request path extends it with one call, which the GIL makes atomic, and the flusher
        # takes a prefix of it (whole captures), so neither needs a lock.
        self.captured: list[Any] = []
        # From a change's job: stage its record, (change, response elements, index among its
        # request's changes), to be chained when the job's batch commits (see capture.Change).
        self.stage: Callable[[tuple[capture.Change, str, int]], None] = writer.stage
        self._unsent: list[sql.AuditRow] = []  # rendered, but their append failed: retried
        # (seq, row) of changes' records chained as they committed, whose search rows are due
        self._unindexed: list[tuple[int, sql.AuditRow]] = []
        self._swap = threading.Lock()
        # The chain head as this process's last batch of changes committed it, for the next
        # batch to append after without reading it (writer thread only; see sql.extend).
        self._head: sql.Head | None = None
        self.key = load_key(writer, wrapper)
        writer.before_commit = self._append_staged
        writer.submit(self._recover)
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

    def _append_staged(self, conn: sqlite3.Connection, staged: list[Any]) -> Callable[[], None]:
        """The writer's ``before_commit`` hook: chain the records its batch's changes staged.
        Their search rows wait for the next flush (with the reads', one row per group for a
        second of records rather than one per batch: a search row is an insert into seven
        B-trees); a crash before it leaves them to the repair at the next start. (Pending rows
        of an earlier version are not looked for here, which would cost every batch a query:
        the start chains those a crash left, and each flush those of an earlier version's
        process still sharing the database.)"""
        rows = self.groups.staged_rows(staged)
        known, self._head = self._head, None  # known again only once this batch commits
        after = sql.extend(conn, rows, self.alg, self.link, known)
        entries = list(enumerate(rows, after[0] - len(rows) + 1))

        def committed() -> None:
            self._head = after
            with self._swap:
                self._unindexed += entries

        return committed

    def append(self, conn: sqlite3.Connection, rows: list[sql.AuditRow]) -> int:
        """:func:`append`, from a job of this trail other than a batch's changes (a flush, a
        digest, another plane's change): the head it leaves is not known to the next batch."""
        self._head = None
        return append(conn, rows, self.alg, self.link, self.partition, self.region)

    def later(self, facts: Facts) -> None:
        """Buffer a record; the flusher appends it within ``audit_flush_interval``."""
        with self._swap:  # not lost to a flush that swaps the list between lookup and append
            self._buffer.append(facts)

    def row(self, facts: Facts) -> sql.AuditRow:
        return row_of(facts, partition=self.partition, region=self.region)

    # --- the flusher ----------------------------------------------------------------------------
    def flush(self) -> int:
        """Append every buffered record now, with the search rows of the changes' records
        chained since the last flush; return how many records that made."""
        with self._swap:
            taken, self._buffer = self._buffer, []
            due, self._unindexed = self._unindexed, []
        buffered = self.captured
        count = len(buffered)  # whole captures: each was added by one atomic extend
        captured = buffered[:count]
        del buffered[:count]
        if not taken and not captured and not self._unsent and not due:
            return 0
        rows, self._unsent = self._unsent, []
        step = capture.SIZE * _YIELD_EVERY
        for at in range(0, count, step):
            if at:
                time.sleep(0)  # let the event loop have the GIL between pieces of this work
            rows += self.groups.captured_rows(captured, at, min(at + step, count))
        rows += [self.row(facts) for facts in taken]
        # Appended in chunks, each its own write job: one job for a busy second's records would
        # hold the writer, and every request's write queued behind it, for tens of milliseconds.
        appended = start = 0
        try:
            while start < len(rows) or due:
                chunk = rows[start : start + _APPEND_CHUNK]

                def job(
                    conn: sqlite3.Connection,
                    chunk: list[sql.AuditRow] = chunk,
                    due: list[tuple[int, sql.AuditRow]] = due,
                ) -> int:
                    sql.index(conn, due)
                    return self.append(conn, chunk)

                appended += self._writer.submit(job)
                due = []
                start += _APPEND_CHUNK
            return appended
        except Exception:  # the failed chunk was not committed: it and the rest wait for the next
            with self._swap:
                self._unsent = rows[start:] + self._unsent
                self._unindexed = due + self._unindexed
                del self._unindexed[_UNSENT_MAX:]  # search rows dropped here, a start rebuilds
                lost = len(self._unsent) - _UNSENT_MAX
                if lost > 0:  # the database refuses writes for long: memory is not unbounded
                    del self._unsent[_UNSENT_MAX:]
                    log.error("audit: %d buffered records dropped (appending them fails)", lost)
            raise

    def digest(self, *, final: bool = False) -> sql.DigestRow | None:
        """Sign a digest of the records since the previous one. A periodic digest is skipped if
        another process wrote one less than an interval ago; a final one if nothing is new."""
        return self._writer.submit(lambda conn: self._digest_job(conn, final))

    def _digest_job(self, conn: sqlite3.Connection, final: bool) -> sql.DigestRow | None:
        self.append(conn, [])  # pending changes
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

    def _recover(self, conn: sqlite3.Connection) -> None:
        """At start: chain the changes a crash left pending, and write any search row missing
        among the last records (records are now indexed in the job that appends them; this
        repairs trails written before that)."""
        self.append(conn, [])
        missing = sql.unindexed(conn, _REINDEX_WINDOW)
        if missing:
            sql.index(conn, [(seq, _stored_row(text)) for seq, text in missing])

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


_REINDEX_WINDOW = 100_000
_UNSENT_MAX = 100_000  # rendered records kept for a retry while appending fails
_APPEND_CHUNK = 512  # records per write job of a flush
_YIELD_EVERY = 128  # records rendered between two offers of the GIL to the event loop


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


_q: Callable[[str], str] = encode_basestring


def response_json(result: object, key: str | None) -> str:
    """``object_json(response_elements(result, key))``, written directly for the result of an
    object write (the common case, on the writer thread)."""
    if type(result) is not WriteResult:
        return object_json(response_elements(result, key))
    version = result.version or result.removed
    if version is None:
        return "null"
    version_id = version.version_id
    if (
        version.key == key
        and (not version_id or version_id == "null")
        and not version.is_delete_marker
    ):  # the common case: an unversioned write of the request's own key
        etag = version.etag
        return f'{{"ETag":{_q(str(etag))}}}' if etag else "null"
    items = []  # in canonical (code point) order
    marker = version.is_delete_marker
    if not marker and version.etag:
        items.append(f'"ETag":{_q(str(version.etag))}')
    if version.key != key:
        items.append(f'"key":{_q(str(version.key))}')
    if marker:
        items.append('"x-amz-delete-marker":"true"')
    if version_id and version_id != "null":
        items.append(f'"x-amz-version-id":{_q(str(version_id))}')
    return "{" + ",".join(items) + "}" if items else "null"


def iso_ms(time_ms: int) -> str:
    moment = datetime.fromtimestamp(time_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{time_ms % 1000:03d}Z"
