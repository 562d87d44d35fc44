"""SQL of the audit trail: appending to the hash chain, digests, keys, and reading them back.

Every function here that writes takes the *write* connection and must run inside the writer's
transaction (a job of :class:`~onshore.storage.sqlite.writer.GroupCommitWriter`): the chain head
is read and extended in the same transaction, while the writer holds the cross-process lock, so
two server processes can never both append after the same head. The readers take any connection
(the CLI opens the database read-only while the server runs: WAL lets it).

**Blocks.** Records are stored in blocks of consecutive records (``audit_blocks``): the
records of the state changes one writer batch commits share a block, inserted in the batch's
own transaction (a lone change's record is a block of one, stored as it is); the records the
flusher appends together (reads, failures) share blocks of up to :data:`BLOCK_RECORDS`. A
block of several stores what its records share once: a record rendered from its group's
template is stored as the template's number and the record's own values (time, ids, key,
bytes), the template once per block (:func:`_packed`); the result is compressed (zlib) unless
the block is small (:data:`COMPRESS_FROM`). One row per block,
not per record, is what keeps the trail's storage cost per request small, and a block a few
bytes a record is what keeps its CPU small (compressing reads every byte it is given). A block
gives back each record's canonical JSON exactly as hashed, and keeps each record's hash, so a
reader sees records one by one (:func:`events`) as if they were rows.

**Search rows** (``audit_index``) each name a group of records alike in account, user,
operation, bucket and error code within one minute: the filters select groups through indexes,
and the search then checks each record of the groups (:mod:`onshore.service.audit.search`).

The tables are described in ``migrations/0003_audit.sql`` (digests, keys) and
``migrations/0012_audit_blocks.sql`` (blocks, search rows).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import operator
import sqlite3
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = [
    "BLOCK_RECORDS",
    "GENESIS",
    "GROUP_SPAN_MS",
    "FIELD",
    "About",
    "AuditRow",
    "Blocks",
    "DigestRow",
    "Filters",
    "Group",
    "Head",
    "StoredEvent",
    "append",
    "digests",
    "events",
    "extend",
    "groups",
    "hash_at",
    "head",
    "index",
    "insert_digest",
    "insert_key",
    "keys",
    "last_digest",
    "records",
    "take_pending",
    "times_since",
    "unindexed",
]

GENESIS = bytes(32)
"""The ``prev_hash`` of the first record of a deployment."""

BLOCK_RECORDS = 256
"""Most records in one block (a search or an export reads a block whole to find one record)."""

COMPRESS_FROM = 16
"""Blocks of fewer records are stored uncompressed: a writer batch's few changes make such
blocks, and setting up a zlib stream costs more than the few hundred bytes it would save."""

GROUP_SPAN_MS = 60_000
"""The times of a search row's records fall in one window of this length (aligned on it), so a
search by time reads only the rows that start at most this much before its range."""

HASH_SIZE = 32

Link = Callable[[bytes, bytes], bytes]


About = tuple[str, str, str, "str | None", "str | None"]
"""What search filters a record by, but its time and key: account, user name (or ARN), operation,
bucket, error code. Records alike share one such tuple."""


class AuditRow(NamedTuple):
    """One record to append: its canonical JSON and the copies of its fields that are indexed
    (a named tuple: one is made per request, and a tuple is the cheapest to make).

    ``template`` and ``line``, when given, are the record cut into the pieces it shares with
    records alike and its own values between them, each a JSON fragment (so without a raw
    control character), joined by :data:`FIELD`: ``event`` is ``template[0] + values[0] +
    template[1] + ... + template[-1]``. A block stores such a record as its line and a reference
    to the template (see :func:`append`).

    ``about`` is filed under the account the record is about (a bucket's owner); ``also``, when
    given, under the caller's account too (a request to another account's bucket)."""

    time_ms: int
    key: str | None
    event: str
    about: About
    template: tuple[str, ...] | None = None
    line: str | None = None
    also: About | None = None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    alg: str
    event: str
    prev_hash: bytes
    hash: bytes


@dataclass(frozen=True, slots=True)
class DigestRow:
    seq: int
    time_ms: int
    first_seq: int
    last_seq: int
    payload: str
    signature: str
    hash: str


_INSERT = (
    "INSERT INTO audit_blocks (first_seq, last_seq, start_ms, end_ms, alg, head_hash, prev_hash,"
    " hashes, events) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_HEAD = "SELECT last_seq, head_hash FROM audit_blocks ORDER BY first_seq DESC LIMIT 1"
_BLOCK_AT = (
    "SELECT first_seq, last_seq, alg, prev_hash, hashes, events FROM audit_blocks"
    " WHERE first_seq <= ? ORDER BY first_seq DESC LIMIT 1"
)
_INDEX = (
    "INSERT INTO audit_index (first_seq, last_seq, start_ms, end_ms, account, user_name,"
    " event_name, bucket, error_code, seqs, object_keys) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


Head = tuple[int, bytes]
"""A chain head: the last record's sequence number and hash."""


def head(conn: sqlite3.Connection) -> Head:
    """The last record's sequence number and hash; ``(0, GENESIS)`` for an empty trail."""
    row = conn.execute(_HEAD).fetchone()
    return (0, GENESIS) if row is None else (int(row[0]), bytes(row[1]))


def append(conn: sqlite3.Connection, rows: Sequence[AuditRow], alg: str, link: Link) -> int:
    """Append ``rows`` to the chain (inside the caller's write transaction), in blocks of at most
    :data:`BLOCK_RECORDS`; return the seq of the first (the others follow it). Their search
    rows are the caller's to write (:func:`index`), in the same job or a later one."""
    return extend(conn, rows, alg, link)[0] - len(rows) + 1


def extend(
    conn: sqlite3.Connection,
    rows: Sequence[AuditRow],
    alg: str,
    link: Link,
    known: Head | None = None,
) -> Head:
    """:func:`append`, returning the chain's new head, after the head ``known`` to be (as this
    process last committed it) rather than read: one statement fewer in a writer's batch.

    A head known in one process is stale once another process (or another path of this one)
    has appended: then a block already starts where this one would, and its primary key
    refuses the insert; the head is read and the rows appended after it. (Blocks are
    consecutive, so the block after a stale head always starts at the very seq this append
    would take. A ``known`` head must have been committed: a head of a transaction rolled back
    would make a gap, which nothing here would catch.)"""
    if known is not None:
        try:
            return _extend(conn, rows, alg, link, known)
        except _Stale:
            pass
    return _extend(conn, rows, alg, link, head(conn))


class _Stale(sqlite3.IntegrityError):
    """The first block's insert was refused: the head it follows is not the chain's head."""


def _extend(
    conn: sqlite3.Connection, rows: Sequence[AuditRow], alg: str, link: Link, after: Head
) -> Head:
    seq, prev = after
    # BLOBs bound as bytearray: the sqlite3 module binds a bytearray as is, but looks up
    # adapters for bytes (a few thousand instructions a parameter, more than the hashing).
    if len(rows) == 1:  # a change's record: a block of one, stored as it is
        row = rows[0]
        event = row.event.encode("utf-8")
        digest = _sha256(prev + event).digest() if alg == "sha256" else link(prev, event)
        blob = bytearray(digest)
        at = row.time_ms
        seq += 1
        _insert(conn, (seq, seq, at, at, alg, blob, bytearray(prev), blob, row.event))
        return seq, digest
    for start in range(0, len(rows), BLOCK_RECORDS):
        block = rows[start : start + BLOCK_RECORDS]
        block_prev = prev
        hashes: list[bytes] = []
        add = hashes.append
        if alg == "sha256":  # the default, inlined: no Python frame per record
            for row in block:
                prev = _sha256(prev + row.event.encode()).digest()
                add(prev)
        else:
            for row in block:
                prev = link(prev, row.event.encode())
                add(prev)
        times = list(map(_time_of, block))
        values = (
            seq + 1,
            seq + len(block),
            min(times),
            max(times),
            alg,
            bytearray(prev),
            bytearray(block_prev),
            bytearray().join(hashes),
            _stored_text(block),
        )
        if start:
            conn.execute(_INSERT, values)
        else:
            _insert(conn, values)
        seq += len(block)
    return seq, prev


def _insert(conn: sqlite3.Connection, values: tuple[Any, ...]) -> None:
    """Insert a first block (see :func:`extend`): :class:`_Stale` if one starts there."""
    try:
        conn.execute(_INSERT, values)
    except sqlite3.IntegrityError as error:
        raise _Stale from error


_sha256 = hashlib.sha256

# Fields of rows and entries, read in C by map() rather than by a comprehension's bytecode.
_time_of = operator.attrgetter("time_ms")
_key_of = operator.attrgetter("key")
_first = operator.itemgetter(0)
_second = operator.itemgetter(1)


def _stored_text(block: Sequence[AuditRow]) -> str | bytes:
    """A block's ``events`` column: its packed text, compressed unless the block is small."""
    text = _packed(block)
    return text if len(block) < COMPRESS_FROM else zlib.compress(text.encode("utf-8"), 1)


# The text of a block of several records, before compression. Canonical JSON has no raw control
# character (JSON escapes them), so these separators cannot occur inside a record:
_COMPACT = "\x1e"  # the first line of a block written as below (an older block starts with "{")
_TEMPLATE = "\x1d"  # starts a line that defines the block's next template: its pieces
FIELD = "\x1f"  # separates a template's pieces, and a record's template number and values


def _packed(block: Sequence[AuditRow]) -> str:
    """A block's records, one line each, after a first line ``_COMPACT``: a record made from a
    template (:attr:`AuditRow.template`) is its template's number and its line (the first
    record of a template is preceded by a line defining it); any other is its JSON as is.

    Storing what records share once per block, rather than once per record, makes a block
    several times smaller *before* compression, and compressing is most of a block's cost:
    zlib reads every byte it is given. Reading a block back joins each record again
    (:meth:`_Block.record`): exactly the text that was hashed. A record's values are JSON
    fragments, which hold no raw control character; should one hold a separator all the same,
    the count of separators in its line says so, and the record is kept whole. (A record's
    JSON, canonical, holds no raw newline; a template's pieces are checked once, by
    :func:`_definition`.)"""
    lines = [_COMPACT]
    add = lines.append
    numbers: dict[int, tuple[str, int]] = {}  # by id(template): the rows keep them alive
    for row in block:
        template = row.template
        if template is None:
            add(row.event)
            continue
        known = numbers.get(id(template))
        if known is None:
            definition = _definition(template)
            if definition:  # (else a separator inside a piece: its records are kept whole)
                known = (f"{len(lines)}{FIELD}", len(template) - 2)
                add(definition)
            else:
                known = ("", 0)
            numbers[id(template)] = known
        number, separators = known
        line: str = row.line  # type: ignore[assignment]  # given with a template
        if number and line.count(FIELD) == separators and "\n" not in line:
            add(number + line)
        else:
            add(row.event)
    return "\n".join(lines)


_definitions: dict[tuple[str, ...], str] = {}
_DEFINITIONS_MAX = 1024


def _definition(template: tuple[str, ...]) -> str:
    """A template's definition line in a block (``""`` if a piece holds a separator, so that
    its records are stored whole), made once per template rather than once per block: a
    writer batch's changes make a block each, most with a template seen in the last one."""
    line = _definitions.get(template)
    if line is None:
        pieces = FIELD.join(template)
        unusable = "\n" in pieces or pieces.count(FIELD) != len(template) - 1
        line = "" if unusable else _TEMPLATE + pieces
        if len(_definitions) >= _DEFINITIONS_MAX:
            _definitions.clear()
        _definitions[template] = line
    return line


_NOT_RECORDS = (_COMPACT, _TEMPLATE)  # the first characters of a block's other lines


def take_pending(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """Every pending row, in commit order (without its id), deleted: the caller appends their
    records to the chain in the same transaction (which holds the writer lock: no row can be
    added between the read and the delete)."""
    rows = conn.execute(
        "SELECT kind, shared, time_ms, duration_ms, request_id, object_key, bytes_in,"
        " bytes_out, response, change_index FROM audit_pending ORDER BY id"
    ).fetchall()
    if rows:
        conn.execute("DELETE FROM audit_pending")
    return rows


def index(conn: sqlite3.Connection, entries: Iterable[tuple[int, AuditRow]]) -> None:
    """Write the search rows of records appended earlier (or just now): one row per group of
    records alike in everything search filters on but time and key (see the migration)."""
    groups: dict[tuple[About, int], list[tuple[int, AuditRow]]] = {}
    for entry in entries:
        row = entry[1]
        found = (row.about, row.time_ms // GROUP_SPAN_MS)
        members = groups.get(found)
        if members is None:
            groups[found] = [entry]
        else:
            members.append(entry)
        if row.also is not None:  # about another account too: found under either
            groups.setdefault((row.also, found[1]), []).append(entry)
    values = []
    for ((account, user_name, event_name, bucket, error_code), _), members in groups.items():
        rows = list(map(_second, members))
        times = list(map(_time_of, rows))
        seqs = list(map(_first, members))
        values.append(
            (
                min(seqs),
                max(seqs),
                min(times),
                max(times),
                account,
                user_name,
                event_name,
                bucket,
                error_code,
                json.dumps(seqs, separators=(",", ":")),
                json.dumps(list(map(_key_of, rows)), separators=(",", ":")),
            )
        )
    conn.executemany(_INDEX, values)


def unindexed(conn: sqlite3.Connection, window: int) -> list[tuple[int, str]]:
    """``(seq, event)`` of the records among the last ``window`` that no search row names
    (records are indexed in the job that appends them; a trail written before that, when a
    change's search row waited in memory for the next flush, may lack some after a crash)."""
    top, _ = head(conn)
    after = top - window
    covered: set[int] = set()
    for (seqs,) in conn.execute("SELECT seqs FROM audit_index WHERE last_seq > ?", (after,)):
        covered.update(json.loads(seqs))
    blocks = conn.execute(
        "SELECT first_seq, last_seq FROM audit_blocks WHERE last_seq > ? ORDER BY first_seq",
        (after,),
    ).fetchall()
    missing: list[tuple[int, str]] = []
    for first, last in blocks:
        wanted = [s for s in range(max(first, after + 1), last + 1) if s not in covered]
        if wanted:
            stored = {e.seq: e.event for e in events(conn, wanted[0], wanted[-1])}
            missing += [(seq, stored[seq]) for seq in wanted]
    return missing


def events(conn: sqlite3.Connection, first: int, last: int) -> Iterator[StoredEvent]:
    """Records ``first..last`` (inclusive) in chain order, read a block at a time."""
    seq = first
    while seq <= last:
        row = conn.execute(_BLOCK_AT, (seq,)).fetchone()
        if row is None or int(row[1]) < seq:
            row = conn.execute(
                "SELECT first_seq, last_seq, alg, prev_hash, hashes, events FROM audit_blocks"
                " WHERE first_seq > ? ORDER BY first_seq LIMIT 1",
                (seq,),
            ).fetchone()
            if row is None or int(row[0]) > last:
                return
        block = _Block(row)
        seq = max(seq, block.first)
        stop = min(last, block.last)
        while seq <= stop:
            yield block.record(seq)
            seq += 1


def records(
    conn: sqlite3.Connection, seqs: Iterable[int], blocks: Blocks | None = None
) -> Iterator[StoredEvent]:
    """The records with these ``seqs`` (in ascending order), reading each block once (once per
    ``blocks``, when given: blocks read by earlier calls are kept there)."""
    kept = Blocks() if blocks is None else blocks
    block: _Block | None = None
    for seq in seqs:
        if block is None or not block.first <= seq <= block.last:
            block = kept.find(seq)
            if block is None:
                row = conn.execute(_BLOCK_AT, (seq,)).fetchone()
                if row is None or int(row[1]) < seq:
                    continue
                block = kept.keep(_Block(row))
        yield block.record(seq)


class Blocks:
    """The last blocks one reader decoded (read, decompressed), for its next lookups: a
    search's groups come in time order, and the records of one minute's groups mostly share
    the blocks the flusher wrote that minute, so a block is decoded once per search rather
    than once per group."""

    KEEP = 32

    def __init__(self) -> None:
        self._firsts: list[int] = []  # sorted
        self._blocks: dict[int, _Block] = {}

    def find(self, seq: int) -> _Block | None:
        at = bisect.bisect_right(self._firsts, seq) - 1
        if at < 0:
            return None
        block = self._blocks[self._firsts[at]]
        return block if seq <= block.last else None

    def keep(self, block: _Block) -> _Block:
        if len(self._blocks) >= self.KEEP:  # forget the one decoded first (dicts keep order)
            oldest = next(iter(self._blocks))
            del self._blocks[oldest]
            self._firsts.remove(oldest)
        bisect.insort(self._firsts, block.first)
        self._blocks[block.first] = block
        return block


class _Block:
    """A stored block, its records split only when first asked for, and each record joined
    again from its template only when asked for (a search wants one or two of a block's
    records; joining all 256 cost it more than reading the block)."""

    __slots__ = ("first", "last", "alg", "prev", "hashes", "text", "lines", "at", "templates")

    def __init__(self, row: Sequence[Any]) -> None:
        self.first = int(row[0])
        self.last = int(row[1])
        self.alg = str(row[2])
        self.prev = bytes(row[3])
        self.hashes = bytes(row[4])
        events = row[5]
        self.text = zlib.decompress(events).decode("utf-8") if isinstance(events, bytes) else events
        self.lines: list[str] | None = None
        self.at: list[int] = []  # the line of each record (the others define templates)
        self.templates: dict[str, list[str]] = {}

    def record(self, seq: int) -> StoredEvent:
        i = seq - self.first
        if self.first == self.last and not self.text.startswith(_COMPACT):
            event = self.text  # a change's record, stored as it is
        else:
            event = self._event(i)
        hashes = self.hashes
        prev = self.prev if i == 0 else hashes[(i - 1) * HASH_SIZE : i * HASH_SIZE]
        return StoredEvent(seq, self.alg, event, prev, hashes[i * HASH_SIZE : (i + 1) * HASH_SIZE])

    def _event(self, i: int) -> str:
        """The ``i``-th record's text (see :func:`_packed` for the lines)."""
        lines = self.lines
        if lines is None:
            lines = self.lines = self.text.split("\n")
            if lines[0] != _COMPACT:  # a block written before templates: a record a line
                self.at = list(range(len(lines)))
            else:
                self.at = [n for n, line in enumerate(lines) if line[:1] not in _NOT_RECORDS]
        line = lines[self.at[i]]
        if line[:1] == "{":
            return line
        number, *values = line.split(FIELD)
        pieces = self.templates.get(number)
        if pieces is None:
            pieces = self.templates[number] = lines[int(number)][1:].split(FIELD)
        joined = [pieces[0]]
        for value, piece in zip(values, pieces[1:], strict=True):
            joined += (value, piece)
        return "".join(joined)


def hash_at(conn: sqlite3.Connection, seq: int) -> bytes:
    """The hash of record ``seq`` (GENESIS for 0 or a record that does not exist)."""
    row = conn.execute(
        "SELECT first_seq, last_seq, head_hash, hashes FROM audit_blocks"
        " WHERE first_seq <= ? ORDER BY first_seq DESC LIMIT 1",
        (seq,),
    ).fetchone()
    if seq < 1 or row is None or int(row[1]) < seq:
        return GENESIS
    if int(row[1]) == seq:
        return bytes(row[2])
    i = seq - int(row[0])
    return bytes(row[3])[i * HASH_SIZE : (i + 1) * HASH_SIZE]


def times_since(conn: sqlite3.Connection, first: int) -> tuple[int | None, int | None]:
    """The earliest and latest record time of the records from ``first`` on."""
    row = conn.execute(
        "SELECT MIN(start_ms), MAX(end_ms) FROM audit_blocks WHERE last_seq >= ?", (first,)
    ).fetchone()
    return (
        None if row[0] is None else int(row[0]),
        None if row[1] is None else int(row[1]),
    )


_DIGEST_COLUMNS = "seq, time_ms, first_seq, last_seq, payload, signature, hash"


def _digest(r: Sequence[object]) -> DigestRow:
    return DigestRow(
        int(r[0]),  # type: ignore[call-overload]
        int(r[1]),  # type: ignore[call-overload]
        int(r[2]),  # type: ignore[call-overload]
        int(r[3]),  # type: ignore[call-overload]
        str(r[4]),
        str(r[5]),
        str(r[6]),
    )


def last_digest(conn: sqlite3.Connection) -> DigestRow | None:
    row = conn.execute(
        f"SELECT {_DIGEST_COLUMNS} FROM audit_digests ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    return None if row is None else _digest(row)


def digests(conn: sqlite3.Connection) -> list[DigestRow]:
    """Every digest, in order (one per digest interval: a few thousand over retention)."""
    rows = conn.execute(f"SELECT {_DIGEST_COLUMNS} FROM audit_digests ORDER BY seq").fetchall()
    return [_digest(r) for r in rows]


def insert_digest(conn: sqlite3.Connection, digest: DigestRow) -> None:
    conn.execute(
        f"INSERT INTO audit_digests ({_DIGEST_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            digest.seq,
            digest.time_ms,
            digest.first_seq,
            digest.last_seq,
            digest.payload,
            digest.signature,
            digest.hash,
        ),
    )


def keys(conn: sqlite3.Connection) -> list[tuple[str, str, bytes]]:
    """Every audit key as ``(fingerprint, public PEM, wrapped private key)``, newest last."""
    rows = conn.execute(
        "SELECT fingerprint, public_pem, wrapped_private FROM audit_keys ORDER BY id"
    ).fetchall()
    return [(str(r[0]), str(r[1]), bytes(r[2])) for r in rows]


def insert_key(
    conn: sqlite3.Connection, created_ms: int, fingerprint: str, public_pem: str, wrapped: bytes
) -> None:
    conn.execute(
        "INSERT INTO audit_keys (created_ms, fingerprint, public_pem, wrapped_private)"
        " VALUES (?, ?, ?, ?)",
        (created_ms, fingerprint, public_pem, wrapped),
    )


@dataclass(frozen=True, slots=True)
class Filters:
    """Search filters; every one is optional and they combine with AND."""

    start_ms: int | None = None
    end_ms: int | None = None
    account: str | None = None
    user_name: str | None = None
    event_name: str | None = None
    bucket: str | None = None
    key_prefix: str | None = None
    error_code: str | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class Group:
    """A search row: records alike in account, user, operation, bucket and error code, whose
    times fall within one :data:`GROUP_SPAN_MS` window."""

    start_ms: int
    end_ms: int
    seqs: list[int]
    object_keys: str  # JSON array, parallel to seqs (decoded only by a key-prefix search)


def groups(conn: sqlite3.Connection, f: Filters) -> Iterator[Group]:
    """The search rows that may hold records matching ``f`` (every filter but the key prefix,
    which the caller applies to :attr:`Group.object_keys`), earliest ``start_ms`` first. Each
    filter is served by an index (see the migration); a time range is a range scan, since no
    group starts more than :data:`GROUP_SPAN_MS` before its records' earliest time."""
    where: list[str] = []
    params: list[object] = []
    if f.start_ms is not None:
        where.append("start_ms >= ? AND end_ms >= ?")
        params += [f.start_ms - GROUP_SPAN_MS, f.start_ms]
    if f.end_ms is not None:
        where.append("start_ms < ?")
        params.append(f.end_ms)
    for column, value in (
        ("account", f.account),
        ("user_name", f.user_name),
        ("event_name", f.event_name),
        ("bucket", f.bucket),
        ("error_code", f.error_code),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql = "SELECT start_ms, end_ms, seqs, object_keys FROM audit_index"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY start_ms, first_seq"
    for start_ms, end_ms, seqs, object_keys in conn.execute(sql, params):
        yield Group(int(start_ms), int(end_ms), json.loads(seqs), str(object_keys))
