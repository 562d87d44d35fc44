"""A reserve of free space on the data disk, kept for deletes.

Both stores need free space to *delete*: SQLite appends the change to its write-ahead log before
it can free pages, and a delete marker is a new row. A disk filled to the last byte by writes
could then not be emptied through the API. So new writes are refused, with 507
``InsufficientStorage``, once the free space of the filesystem holding the data directory falls
below ``min_free_space`` (or would, counting the request's declared size); deletes, reads and
listings go on, and once space is freed writes resume. Space freed *inside* the metadata database
counts too (``reusable``: deleted rows leave free pages that new rows fill first, while the file
never shrinks), so deleting small objects makes room for new ones. A write that still meets a
full disk (a race, or another program filling it) fails with the same error, leaving nothing
behind.

The free space is read with ``statvfs`` at most every ``interval`` seconds (a cheap system call;
the cache keeps it off the per-request cost).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from onshore.domain.errors import InsufficientStorage


class DiskSpace:
    def __init__(
        self,
        path: Path,
        *,
        reserve: int,
        reusable: Callable[[], int] = lambda: 0,
        interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = path
        self._reserve = reserve
        self._reusable = reusable
        self._interval = interval
        self._clock = clock
        self._free = 0
        self._read_at = float("-inf")

    def free(self) -> int:
        """Bytes available for new data: free on the data directory's filesystem plus reusable
        inside the metadata database (cached)."""
        now = self._clock()
        if now - self._read_at >= self._interval:
            stat = os.statvfs(self._path)
            self._free = stat.f_bavail * stat.f_frsize + self._reusable()
            self._read_at = now
        return self._free

    def check(self, incoming: int = 0) -> None:
        """Refuse a write of ``incoming`` bytes that would eat into the reserve."""
        if self._reserve > 0 and self.free() - incoming < self._reserve:
            raise InsufficientStorage()
