"""Giving the memory that freed buffers leave in the C heap back to the operating system.

CPython allocates every object above 512 bytes (request bodies, the 1 MiB read and write
batches of :mod:`onshore.service.data`, SQLite's pages) with the C library's ``malloc``. glibc
serves them from its heaps (the main one and at most ``MALLOC_ARENA_MAX`` per-thread arenas),
and a freed block stays in its heap for reuse: only a free run at the very top of the main heap
is ever returned by itself. Megabyte buffers freed between long-lived small objects fragment
the heaps, so a server process's resident memory ratchets up workload after workload although
its live data does not grow (measured: 10 to 20 MiB of free-but-resident heap per worker after
the medium and large benchmark workloads, on a live heap of about 15 MiB).

``malloc_trim(0)`` hands every free page inside every arena back to the kernel
(``madvise(MADV_DONTNEED)``); a page is mapped again, zero-filled, when the heap next uses it.
It walks the arenas, locking each in turn (about a millisecond per tens of MiB released), so
the :class:`HeapTrimmer` thread trims only when it is worth it: every ``interval`` seconds it
asks ``mallinfo2()`` how many bytes lie free in the heaps, and trims when they exceed ``slack``
and the heaps have changed by more than ``slack / 4`` since the last trim. (``mallinfo2`` still
counts trimmed pages as free, so the free figure alone would have an idle process trim again
every second for nothing.)
Both calls are made through :mod:`ctypes`, which releases the GIL around them, so the event loop
keeps running meanwhile.

The alternative of a fixed, low ``M_MMAP_THRESHOLD`` (every large buffer its own ``mmap``,
returned on ``free``) was measured 2-3x slower on large objects: it pays the page faults on
every request, where trimming pays them once per trim. Without glibc (musl, macOS) the two
functions are missing and :func:`start_trimming` does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import threading

__all__ = ["HeapTrimmer", "heap_usage", "start_trimming"]

log = logging.getLogger("onshore.heap")

INTERVAL = 1.0  # seconds between looks at the heap
SLACK = 4 * 1024 * 1024  # free heap bytes tolerated before trimming


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (2.33 and later): every field a ``size_t``."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",  # bytes the heaps hold from the kernel (sbrk and arena mmaps)
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",  # bytes in blocks mmapped on their own (freed straight to the kernel)
            "usmblks",
            "fsmblks",
            "uordblks",  # bytes in use
            "fordblks",  # bytes free inside the heaps
            "keepcost",  # of which at the top of the main heap
        )
    ]


class _Libc:
    """The two glibc entry points, or ``None`` where the C library lacks them."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None)
        self.mallinfo2 = getattr(libc, "mallinfo2", None)
        self.malloc_trim = getattr(libc, "malloc_trim", None)
        if self.mallinfo2 is not None:
            self.mallinfo2.restype = _MallInfo2
            self.mallinfo2.argtypes = []
        if self.malloc_trim is not None:
            self.malloc_trim.restype = ctypes.c_int
            self.malloc_trim.argtypes = [ctypes.c_size_t]

    @property
    def available(self) -> bool:
        return self.mallinfo2 is not None and self.malloc_trim is not None


_libc = _Libc()


def heap_usage() -> tuple[int, int] | None:
    """Bytes free inside this process's malloc heaps (whether still resident or trimmed) and
    bytes in use there, or ``None`` without glibc."""
    if _libc.mallinfo2 is None:
        return None
    info: _MallInfo2 = _libc.mallinfo2()
    return int(info.fordblks), int(info.uordblks)


class HeapTrimmer:
    """A daemon thread that trims the heaps when more than ``slack`` bytes lie free in them."""

    def __init__(self, *, interval: float = INTERVAL, slack: int = SLACK) -> None:
        self.interval = interval
        self.slack = slack
        self.trims = 0
        self._after_trim = (0, 0)  # (free, in use) bytes right after the last trim
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="onshore-heap-trim", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def trim_if_worth_it(self) -> bool:
        """One look at the heap; whether it was trimmed."""
        usage = heap_usage()
        if usage is None or _libc.malloc_trim is None:
            return False
        free, used = usage
        last_free, last_used = self._after_trim
        changed = abs(free - last_free) + abs(used - last_used)
        if free <= self.slack or changed <= self.slack // 4:
            return False
        _libc.malloc_trim(0)
        self.trims += 1
        self._after_trim = heap_usage() or usage
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.trim_if_worth_it()
            except Exception:  # noqa: BLE001 - a failed trim costs memory, never the server
                log.exception("trimming the heap failed; not trying again")
                return


_trimmer: HeapTrimmer | None = None
_trimmer_lock = threading.Lock()


def start_trimming() -> HeapTrimmer | None:
    """Start this process's one :class:`HeapTrimmer` (again: the running one); ``None``
    where the C library cannot trim."""
    global _trimmer
    if not _libc.available:
        return None
    with _trimmer_lock:
        if _trimmer is None:
            _trimmer = HeapTrimmer()
            _trimmer.start()
        return _trimmer
