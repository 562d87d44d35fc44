"""Usage metering: per-day request and byte counters, kept in memory by each server process.

The S3 app calls :meth:`UsageMeter.record` once per request with the operation's name and the
bytes received and sent — a dictionary lookup and five integer additions under a lock, with the
day's key cached. The licensing monitor drains the counters into the database periodically and
at shutdown with *additive* upserts, so any number of worker processes add up correctly.

Requests are counted in the classes storage is priced by:

* **class A** — PUT, COPY, POST and LIST requests (and the other writes: multipart create,
  upload, complete; ``Put*`` configuration);
* **class B** — GET, HEAD and every other read;
* **free** — DELETE and multipart aborts.

Nothing identifying is kept: no bucket, key, principal or address, only counts per UTC day.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from onshore.storage.sqlite.licensing import DayUsage

_CLASS_A = ("Put", "Copy", "Post", "List", "Create", "Upload", "Complete", "Restore")
_FREE = ("Delete", "Abort")
CLASS_A, CLASS_B, FREE = 0, 1, 2
_UNMETERED = frozenset({"-", "Internal"})


def request_class(op: str) -> int:
    if op.startswith(_CLASS_A):
        return CLASS_A
    if op.startswith(_FREE):
        return FREE
    return CLASS_B


class UsageMeter:
    """In-memory counters of one process (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._days: dict[str, list[int]] = {}
        self._classes: dict[str, int] = {}
        self._day_key = ""
        self._day_end = 0.0

    def _day(self, now: float) -> str:
        if now >= self._day_end or now < self._day_end - 86400:
            start = now - now % 86400
            self._day_key = time.strftime("%Y-%m-%d", time.gmtime(start))
            self._day_end = start + 86400
        return self._day_key

    def record(self, op: str, bytes_in: int, bytes_out: int) -> None:
        if op in _UNMETERED:
            return
        cls = self._classes.get(op)
        if cls is None:
            cls = self._classes[op] = request_class(op)
        now = self._clock()
        with self._lock:
            day = self._day(now)
            counters = self._days.get(day)
            if counters is None:
                counters = self._days[day] = [0, 0, 0, 0, 0]
            counters[cls] += 1
            counters[3] += bytes_in
            counters[4] += bytes_out

    def drain(self) -> list[DayUsage]:
        """Take the counters accumulated so far (the meter starts again from zero)."""
        with self._lock:
            days, self._days = self._days, {}
        return [DayUsage(day, *counters) for day, counters in sorted(days.items())]

    def restore(self, days: list[DayUsage]) -> None:
        """Put back counters a failed flush could not store (they are retried next time)."""
        with self._lock:
            for d in days:
                counters = self._days.setdefault(d.day, [0, 0, 0, 0, 0])
                for i, value in enumerate(
                    (d.requests_a, d.requests_b, d.requests_free, d.bytes_in, d.bytes_out)
                ):
                    counters[i] += value
