"""The supervisor of multi-process servers: uvicorn's, with a prompt refusal on shutdown and
no idle resource-tracker process.

**The resource tracker.** uvicorn starts its workers through :mod:`multiprocessing`'s *spawn*
context, which first launches a helper, the resource tracker (a whole Python interpreter, about
13 MiB resident), to unlink named semaphores and shared memory a crashed process would leak.
onshore's workers create neither: they share only the listening sockets and a pipe for health
checks. So the supervisor hands the spawn machinery an "already running" tracker whose channel
is ``/dev/null`` (:func:`skip_resource_tracker`), and the helper process is never started.
"""

from __future__ import annotations

import os
from multiprocessing import resource_tracker

from uvicorn.supervisors import Multiprocess


def skip_resource_tracker() -> None:
    """Make :mod:`multiprocessing` believe its resource tracker runs, without starting it.

    The tracker object keeps the write end of its pipe in ``_fd`` and calls it alive while a
    write to it succeeds; every spawned worker inherits that descriptor. Writes to ``/dev/null``
    always succeed, so nothing is launched, and a registration (which onshore never makes)
    would be dropped. Call it before the first worker is spawned; a tracker already running is
    left alone."""
    tracker = resource_tracker._resource_tracker  # noqa: SLF001 - the module's own singleton
    if getattr(tracker, "_fd", None) is None:
        tracker._fd = os.open(os.devnull, os.O_WRONLY)  # type: ignore[attr-defined]  # noqa: SLF001


class Supervisor(Multiprocess):
    """uvicorn's worker supervisor, except that on shutdown it closes its own copy of the
    listening socket before signalling the workers. Once the workers stop accepting too (the
    first step of their graceful shutdown), the kernel refuses new connections at once instead
    of queueing them in the backlog until the process exits and then resetting them."""

    def run(self) -> None:
        skip_resource_tracker()
        super().run()

    def terminate_all(self) -> None:
        for sock in self.sockets:
            sock.close()
        super().terminate_all()
