"""Opening SQLite connections and bringing the schema up to date.

**Connections.** Every connection runs in autocommit mode (``isolation_level=None``): the store
issues ``BEGIN``/``SAVEPOINT``/``COMMIT`` itself, and Python's sqlite3 module never opens a
transaction behind its back. The database is in WAL mode with ``synchronous=FULL``: a commit
appends to the write-ahead log and fsyncs it, so an acknowledged write survives a power cut, and
readers keep reading the last committed snapshot while the writer appends.

**Migrations.** ``migrations/NNNN_name.sql`` files are applied in number order when the store
opens, in one ``BEGIN IMMEDIATE … COMMIT`` with their rows in ``schema_version`` (SQLite DDL is
transactional: a failed migration leaves the database as it was).
A database written by a newer onshore (a version this code does not know) is refused rather than
guessed at. Files are never edited once released; a change to the schema is a new file.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from dataclasses import dataclass
from importlib import resources
from urllib.parse import quote

__all__ = ["Migration", "connect", "in_use", "migrate", "migrations"]

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

#: Bytes of memory SQLite may use in one process, all its connections together, before it
#: recycles cached pages rather than allocating more (see :func:`connect`).
SOFT_HEAP_LIMIT = 8 * 1024 * 1024

#: Bytes the write-ahead log is cut back to when it starts over after a checkpoint. It grows as
#: large as the most written between two checkpoints (a big ``DeleteObjects``, a migration) and
#: SQLite would otherwise keep the file at that size for good.
WAL_SIZE_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def connect(path: str, *, writer: bool) -> sqlite3.Connection:
    """A connection with the store's pragmas. Reader connections are ``query_only``.

    ``check_same_thread`` is off because the store hands the writer connection to its writer
    thread and closes reader connections from ``close()``; each connection is still *used* by
    one thread at a time.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA foreign_keys = ON")
    # Page cache per connection (KiB). Every reader thread of every server process has its own
    # connection, so this multiplies; the OS page cache below SQLite is shared and does the
    # heavy lifting, and these sizes keep a server's memory bounded.
    conn.execute(f"PRAGMA cache_size = {-16384 if writer else -4096}")
    # ... and they add up: ten connections per process could hold 50 MiB of pages. The soft
    # heap limit is process-wide: once SQLite's memory reaches it, a connection reuses its own
    # least recently used pages instead of allocating more.
    conn.execute(f"PRAGMA soft_heap_limit = {SOFT_HEAP_LIMIT}")
    if writer:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        # SQLite as Debian builds it overwrites every freed page with zeros, so deleting a
        # 16 KiB inline object logs 16 KiB of zeros to the WAL and fsyncs them: a batch of
        # deletes on a full disk could need more than the reserve kept for it, and every delete
        # paid its object's size in log writes. FAST still zeroes deleted rows on the pages the
        # delete writes anyway; the freed overflow pages of an inline body keep their (encrypted)
        # bytes until reused, as a deleted blob file's blocks do in the filesystem.
        conn.execute("PRAGMA secure_delete = FAST")
        # Each job of a batch runs in a savepoint, so SQLite keeps the original of every page a
        # job changes in a statement journal, to roll the job back alone. As Debian builds it,
        # that journal spills to a temporary file past 64 KiB: a new file in /var/tmp for every
        # batch of more than a few writes, and some 20 write system calls (76 KiB) per PUT. In
        # memory, it holds one job's pages at a time (it is emptied as each savepoint is
        # released) and costs no system call.
        conn.execute("PRAGMA temp_store = MEMORY")
    else:
        conn.execute("PRAGMA query_only = ON")
    return conn


def in_use(path: str) -> bool:
    """Whether another connection — in practice a running server — has the database open.

    In WAL mode every connection that has read the database keeps a shared lock on the file for
    as long as it stays open, and a connection in ``EXCLUSIVE`` locking mode must take an
    exclusive lock to begin. So a probe that cannot begin at once is not alone. The probe opens
    the file read-write without creating it, and closes again at once (releasing its lock).
    """
    uri = f"file:{quote(os.path.abspath(path))}?mode=rw"
    probe = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=0)
    try:
        probe.execute("PRAGMA locking_mode = EXCLUSIVE")
        probe.execute("BEGIN EXCLUSIVE")
        probe.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return True
        raise
    finally:
        probe.close()
    return False


def migrations() -> list[Migration]:
    """Every migration shipped with the package, in version order."""
    found: list[Migration] = []
    folder = resources.files(__package__).joinpath("migrations")
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    return found


def migrate(conn: sqlite3.Connection, available: list[Migration] | None = None) -> int:
    """Apply the migrations the database lacks; return the resulting schema version.

    Reading the version and applying what is missing happen in one ``BEGIN IMMEDIATE``
    transaction, so processes opening a new database at the same moment (several server workers)
    apply each migration exactly once: the others wait for the lock, then find nothing to do.
    """
    steps = migrations() if available is None else available
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_us BIGINT NOT NULL)"
        )
        current = _current_version(conn)
        known = steps[-1].version if steps else 0
        if current > known:
            raise RuntimeError(
                f"database schema version {current} is newer than this onshore ({known})"
            )
        for step in steps:
            if step.version > current:
                _apply(conn, step)
                current = step.version
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return current


def _current_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def statements(script: str) -> list[str]:
    """Split a migration file into statements (``sqlite3.complete_statement`` knows about
    comments and string literals), so it can run inside the caller's transaction."""
    found: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            found.append(pending.strip())
            pending = ""
    if pending.strip() and not _only_comments(pending):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {pending!r}")
    return found


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in text.splitlines())


def _apply(conn: sqlite3.Connection, step: Migration) -> None:
    for statement in statements(step.sql):
        conn.execute(statement)
    conn.execute(
        "INSERT INTO schema_version (version, name, applied_us) VALUES (?, ?, ?)",
        (step.version, step.name, time.time_ns() // 1000),
    )
