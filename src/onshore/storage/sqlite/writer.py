"""The single writer: one thread, one write connection, group commit.

SQLite allows one writer at a time, and every durable commit costs an fsync of the write-ahead
log (a few hundred microseconds on a good SSD, milliseconds on others). Letting each request
thread open its own write transaction would serialise them on the database lock *and* pay one
fsync each. Instead:

1. A caller wraps its change in a closure ``work(conn) -> result`` and calls :meth:`submit`,
   which enqueues it and blocks on the job's completion.
2. The writer thread takes the first job, then drains whatever else is already queued (up to
   ``max_batch``), and opens one ``BEGIN IMMEDIATE`` transaction for the whole batch.
3. Each job runs inside its own ``SAVEPOINT``. A job that raises (an ``S3Error`` such as
   ``PreconditionFailed``, or any other exception) is rolled back to its savepoint, and only that
   job receives the error; the others are unaffected, exactly as if each had its own transaction.
4. One ``COMMIT`` — one fsync — makes the whole batch durable. Only then are the jobs resolved,
   so no caller hears "done" before its change is on disk, and a failed commit fails every job in
   the batch.

Under load the queue fills while the previous batch is being fsynced, so batches grow by
themselves and the fsync cost is shared by everyone who arrived in the meantime; with a single
client a batch is one job and latency is one commit. Jobs see each other's effects in batch order
(they share the transaction), which is the same order they would have had with separate
transactions.

Several server processes share one database, each with its own writer thread. SQLite lets only
one of them write at a time and makes the others *poll* for the lock with growing sleeps, which
turns contention into long stalls. So each writer first takes an exclusive ``flock`` on a lock
file beside the database: a blocked writer sleeps in the kernel and wakes the moment the other
releases it, and meanwhile its queue fills, so its next batch is larger.

A job may also *stage* values for the end of its batch (:meth:`GroupCommitWriter.stage`, from
the writer thread): just before ``COMMIT``, the writer hands every value staged by the batch's
successful jobs to its ``before_commit`` hook, in the same transaction. A job rolled back to its
savepoint takes its staged values with it. The audit trail uses this to append the records of a
batch's changes to its hash chain in one step, atomically with the changes; if the hook fails,
the whole batch fails, so there is never a change without its record. The hook may return a
callable, called once the batch has committed (and not if the commit fails).

If SQLite abandons the transaction itself (it does on some I/O errors, such as a full disk), the
jobs that had already run in it are failed with that error and the rest of the batch starts over
in a fresh transaction.

Callers on an event loop need not tie up a thread while they wait: inside
:func:`delivering_to` (see :meth:`SqliteMetadataStore.awrite`), :meth:`submit` only enqueues the
job and returns, and the writer thread hands the result to an asyncio future on that loop once the
batch is durable — one thread hop fewer per write.

:meth:`close` stops accepting work, lets the thread finish every job queued before it, and closes
the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["JOB_WRAPPER", "GroupCommitWriter", "WriterClosed"]

T = TypeVar("T")


class WriterClosed(RuntimeError):
    """Raised by :meth:`GroupCommitWriter.submit` after :meth:`GroupCommitWriter.close`."""


class _Runnable(Protocol):
    def run(self, conn: sqlite3.Connection) -> None: ...

    def fail(self, error: BaseException) -> None: ...

    def finish(self) -> None: ...

    def finished(self) -> bool: ...


class _Job(Generic[T]):
    """One submitted closure and the slot its caller waits on.

    The slot is a plain lock, taken at creation and released by :meth:`finish`: waiting is one
    ``acquire``, cheaper than an ``Event`` (a Condition plus a lock) at thousands of jobs a
    second.
    """

    __slots__ = ("_work", "_done", "_finished", "_result", "_error")

    def __init__(self, work: Callable[[sqlite3.Connection], T]) -> None:
        self._work = work
        self._done = threading.Lock()
        self._done.acquire()
        self._finished = False
        self._result: T | None = None
        self._error: BaseException | None = None

    def run(self, conn: sqlite3.Connection) -> None:
        self._result = self._work(conn)

    def fail(self, error: BaseException) -> None:
        self._error = error

    def finish(self) -> None:
        self._finished = True
        self._done.release()

    def finished(self) -> bool:
        return self._finished

    def wait(self) -> T:
        self._done.acquire()
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]  # set by run() when no error


_Delivery = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]"]
_DELIVERY: ContextVar[_Delivery | None] = ContextVar("onshore_writer_delivery", default=None)


@contextlib.contextmanager
def delivering_to(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]) -> Iterator[None]:
    """Within this block, :meth:`GroupCommitWriter.submit` does not wait: the job's outcome is
    set on ``future`` (on ``loop``) when its batch has committed."""
    token = _DELIVERY.set((loop, future))
    try:
        yield
    finally:
        _DELIVERY.reset(token)


BeforeCommit = Callable[[sqlite3.Connection, list[Any]], Callable[[], None] | None]
"""The hook a batch's staged values go to, in its transaction (see the module docstring)."""

JobWrapper = Callable[[Callable[[sqlite3.Connection], Any]], Callable[[sqlite3.Connection], Any]]
JOB_WRAPPER: ContextVar[JobWrapper | None] = ContextVar("onshore_writer_job_wrapper", default=None)
"""When set (per request, by the audit trail), :meth:`GroupCommitWriter.submit` passes each job
through it, so the wrapped job can write its audit record in the same savepoint as the change."""


@contextlib.contextmanager
def unwrapped() -> Iterator[None]:
    """Within this block, jobs are submitted without the request's :data:`JOB_WRAPPER`: for
    housekeeping writes a request triggers but that are not its change (creating a tenant's key
    on its first write), which must not be recorded as the request's own."""
    token = JOB_WRAPPER.set(None)
    try:
        yield
    finally:
        JOB_WRAPPER.reset(token)


def _settle_future(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class _LoopJob(_Job[T]):
    """A job whose caller awaits an asyncio future instead of blocking a thread."""

    __slots__ = ("_loop", "_future")

    def __init__(
        self,
        work: Callable[[sqlite3.Connection], T],
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any],
    ) -> None:
        super().__init__(work)
        self._loop = loop
        self._future = future

    def finish(self) -> None:
        super().finish()
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
            self._loop.call_soon_threadsafe(_settle_future, self._future, self._result, self._error)


class GroupCommitWriter:
    """Runs write closures on one thread, committing each batch of them with one fsync."""

    def __init__(
        self, conn: sqlite3.Connection, *, max_batch: int = 256, lock_path: str | None = None
    ) -> None:
        self._conn = conn
        self._lock_fd = (
            os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            if lock_path is not None
            else None
        )
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Runnable | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._staged: list[Any] = []  # values staged by the current batch's jobs (never replaced)
        # From a job, on the writer thread: hand a value to before_commit at the end of this
        # batch, unless the job fails (see the module docstring). The list's own append: no
        # Python frame for a call made once per audited change.
        self.stage: Callable[[Any], None] = self._staged.append
        self.before_commit: BeforeCommit | None = None
        self.batches = 0  # commits so far (for tests and metrics)
        self.jobs = 0
        self._thread = threading.Thread(target=self._loop, name="onshore-sqlite-writer")
        self._thread.daemon = True
        self._thread.start()

    def submit(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in the next batch; return its result once the batch is durable.

        Inside :func:`delivering_to`, return at once instead (the value returned is not the
        result: the result goes to the future)."""
        delivery = _DELIVERY.get()
        wrapper = JOB_WRAPPER.get()
        if wrapper is not None:
            work = wrapper(work)
        job = _Job(work) if delivery is None else _LoopJob(work, *delivery)
        with self._lock:
            if self._closed:
                raise WriterClosed("the metadata store is closed")
            self._queue.put(job)
        if delivery is not None:
            return None  # type: ignore[return-value]  # the outcome is delivered to the future
        return job.wait()

    def close(self) -> None:
        """Finish every queued job, stop the thread, close the connection. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()
        self._conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # --- the writer thread ----------------------------------------------------------------------
    def _loop(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = self._next_batch()
            if not batch:
                continue
            try:
                if self._lock_fd is not None:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
                    if not stopping:  # what arrived while we waited joins this batch
                        stopping = self._drain_into(batch)
                try:
                    self._commit_batch(batch)
                finally:
                    if self._lock_fd is not None:
                        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            except BaseException as error:  # never leave a caller waiting forever
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                _settle([job for job in batch if not job.finished()], error)
            # Waiting for the next batch must not pin this one (its closures hold the rows and
            # inline bodies they wrote).
            del batch

    def _next_batch(self) -> tuple[list[_Runnable], bool]:
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        return batch, self._drain_into(batch)

    def _drain_into(self, batch: list[_Runnable]) -> bool:
        """Add already-queued jobs to ``batch``; True if the stop marker was among them."""
        while len(batch) < self._max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return False
            if job is None:
                return True
            batch.append(job)
        return False

    def _commit_batch(self, batch: Sequence[_Runnable]) -> None:
        if not batch:
            return
        conn = self._conn
        self._staged.clear()  # what jobs of an abandoned transaction staged went with it
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            _settle(batch, error)
            return
        ran: list[_Runnable] = []
        for index, job in enumerate(batch):
            failure = self._run_in_savepoint(job)
            if failure is None:
                ran.append(job)
            elif not conn.in_transaction:  # SQLite abandoned the whole transaction
                _settle([*ran, job], failure)
                self._commit_batch(batch[index + 1 :])
                return
        committed = None
        if self._staged:
            staged = self._staged[:]
            self._staged.clear()
            if self.before_commit is not None:
                committed = self.before_commit(conn, staged)  # raising fails the batch
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for job in ran:
                job.fail(error)
        else:
            if committed is not None:
                committed()
        self.batches += 1
        self.jobs += len(batch)
        for job in batch:
            job.finish()

    def _run_in_savepoint(self, job: _Runnable) -> BaseException | None:
        """Run one job in its own savepoint; on failure roll back to it and fail the job."""
        conn = self._conn
        staged = len(self._staged)
        conn.execute("SAVEPOINT job")
        try:
            job.run(conn)
        except Exception as error:
            job.fail(error)
            del self._staged[staged:]
            if conn.in_transaction:
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
            return error
        conn.execute("RELEASE job")
        return None


def _settle(jobs: Sequence[_Runnable], error: BaseException) -> None:
    for job in jobs:
        job.fail(error)
        job.finish()
