"""A value loaded from the metadata database and kept for a few seconds.

Several server processes share the database, so what one changes another sees only when it
reads again: a :class:`Snapshot` reads at most once per ``ttl`` seconds (the propagation delay
the settings document) and at once after :meth:`clear` (a change made in this process).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Snapshot(Generic[T]):
    def __init__(
        self, load: Callable[[], T], *, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._load = load
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._value: T | None = None
        self._loaded_at = float("-inf")

    def get(self) -> T:
        """The value, read again (blocking) when older than ``ttl``."""
        with self._lock:
            if self._value is not None and self._clock() - self._loaded_at < self._ttl:
                return self._value
        fresh = self._load()
        with self._lock:
            self._value, self._loaded_at = fresh, self._clock()
        return fresh

    def clear(self) -> None:
        with self._lock:
            self._loaded_at = float("-inf")
