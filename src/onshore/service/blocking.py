"""Running blocking work (files, SQLite) off the event loop.

The event loop only parses, hashes small buffers and schedules; every call that can block —
``open``, ``read``, ``fsync``, a database query — runs on this bounded pool of threads.

It is a purpose-built pool rather than ``loop.run_in_executor``: a job is a tuple on a
``SimpleQueue`` and its result goes straight to an asyncio future through
``call_soon_threadsafe``, which costs a fraction of concurrent.futures' bookkeeping. That
matters on the hot path, where a small GET makes exactly one blocking call.

Even so, a hop to a thread and back costs far more CPU than the SQLite point read it carries
(the GIL changes hands twice and the loop is woken through its self-pipe): measured here, about
a quarter of a millisecond per request. :meth:`Blocking.batched` therefore gathers the short
calls made during one turn of the event loop and sends them to a thread as *one* job whose
results come back in *one* wake-up, so under load the hop is shared by every request of that
turn — the read-side counterpart of the metadata writer's group commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")
log = logging.getLogger("onshore.blocking")

_Job = tuple[
    Callable[..., Any],
    tuple[Any, ...],
    dict[str, Any],
    "asyncio.Future[Any] | None",
    "asyncio.AbstractEventLoop | None",
]


def _deliver(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


_Call = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any]"]


def _run_calls(calls: list[_Call], loop: asyncio.AbstractEventLoop) -> None:
    """Run a batch of short calls on a pool thread; deliver all results in one loop wake-up."""
    outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
    for fn, args, future in calls:
        try:
            outcomes.append((future, fn(*args), None))
        except BaseException as exc:  # noqa: BLE001 - delivered to the awaiting coroutine
            outcomes.append((future, None, exc))
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
        loop.call_soon_threadsafe(_deliver_all, outcomes)


def _deliver_all(outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, error in outcomes:
        _deliver(future, result, error)


def _run_job(job: _Job) -> None:
    """Run one queued job and deliver its outcome; nothing of it is referenced once this
    returns."""
    fn, args, kwargs, future, loop = job
    result: Any = None
    error: BaseException | None = None
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - delivered to the awaiting coroutine
        error = exc
    if future is None or loop is None:
        if error is not None:
            log.error("background task %s failed: %r", getattr(fn, "__name__", fn), error)
        return
    # A closed loop (RuntimeError) means nobody is waiting any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_deliver, future, result, error)


class Blocking:
    """``await blocking(fn, *args)`` runs ``fn(*args)`` on the I/O thread pool;
    ``await blocking.batched(fn, *args)`` does the same for short calls, batched per loop turn."""

    def __init__(self, threads: int) -> None:
        self._batch: list[_Call] = []
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"onshore-io-{i}", daemon=True)
            for i in range(max(1, threads))
        ]
        for thread in self._threads:
            thread.start()

    async def __call__(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        # The caller's context variables (the audit trail's per-request hook) go with the job.
        context = contextvars.copy_context()
        self._jobs.put((context.run, (fn, *args), kwargs, future, loop))
        return await future

    async def batched(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Like ``await blocking(fn, *args)``, for short calls (point reads): the calls made in
        one turn of the event loop run together on one thread, back to back."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        call = (lambda: fn(*args, **kwargs)) if kwargs else fn
        if not self._batch:
            loop.call_soon(self._flush, loop)
        self._batch.append((call, () if kwargs else args, future))
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        calls, self._batch = self._batch, []
        self._jobs.put((_run_calls, (calls, loop), {}, None, None))

    async def write(
        self, store: object, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await a metadata write method of ``store``. A store that can deliver its commits
        to the event loop (``awrite``, the SQLite store's group-commit writer) is awaited
        directly; any other runs on the pool like every blocking call."""
        awrite = getattr(store, "awrite", None)
        if awrite is not None:
            result: T = await awrite(method, *args, **kwargs)
            return result
        return await self(method, *args, **kwargs)

    def submit(self, fn: Callable[..., object], *args: object) -> None:
        """Fire and forget (used for deleting freed blobs after a commit)."""
        self._jobs.put((fn, args, {}, None, None))

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            _run_job(job)
            # An idle thread must not pin its last job (arguments, result) while it waits: that
            # would keep a megabyte read or write buffer, or a listing page, alive per thread.
            del job

    def shutdown(self) -> None:
        """Finish queued work, then stop the threads."""
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()
