"""Running blocking work (files, SQLite) off the event loop.

The event loop only parses, hashes small buffers and schedules; every call that can block —
``open``, ``read``, ``fsync``, a database query — runs on this bounded thread pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class Blocking:
    """``await blocking(fn, *args)`` runs ``fn(*args)`` on the I/O thread pool."""

    def __init__(self, threads: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="onshore-io")

    async def __call__(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        if kwargs:
            return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))
        return await loop.run_in_executor(self._pool, fn, *args)

    def submit(self, fn: Callable[..., object], *args: object) -> None:
        """Fire and forget (used for deleting freed blobs after a commit)."""
        self._pool.submit(fn, *args)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
