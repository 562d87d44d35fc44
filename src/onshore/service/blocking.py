"""Running blocking work (files, SQLite) off the event loop.

The event loop only parses, hashes small buffers and schedules; every call that can block —
``open``, ``read``, ``fsync``, a database query — runs on this bounded pool of threads.

It is a purpose-built pool rather than ``loop.run_in_executor``: a job is a tuple on a
``SimpleQueue`` and its result goes straight to an asyncio future through
``call_soon_threadsafe``, which costs a fraction of concurrent.futures' bookkeeping. That
matters on the hot path, where a small GET makes exactly one blocking call.
"""

from __future__ import annotations

import asyncio
import contextlib
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


class Blocking:
    """``await blocking(fn, *args)`` runs ``fn(*args)`` on the I/O thread pool."""

    def __init__(self, threads: int) -> None:
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
        self._jobs.put((fn, args, kwargs, future, loop))
        return await future

    def submit(self, fn: Callable[..., object], *args: object) -> None:
        """Fire and forget (used for deleting freed blobs after a commit)."""
        self._jobs.put((fn, args, {}, None, None))

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
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
                continue
            # A closed loop (RuntimeError) means nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_deliver, future, result, error)

    def shutdown(self) -> None:
        """Finish queued work, then stop the threads."""
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()
