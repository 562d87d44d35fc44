"""The supervisor of multi-process servers: uvicorn's, with a listening socket per worker, a
prompt refusal on shutdown and no idle resource-tracker process.

**A listening socket per worker.** Workers that share one listening socket do not take turns:
the one awake when connections arrive accepts every connection queued, so a burst of them (a
client's connection pool opening, a benchmark starting) all lands on one worker and, kept
alive, stays there while the others idle. Instead, the S3 port is bound once per worker with
``SO_REUSEPORT`` (:func:`spread_sockets`), and the kernel spreads new connections over those
sockets by a hash of each connection's addresses, evenly on average; worker *i* accepts on
socket *i* only. The supervisor makes every socket listen before any worker starts and keeps
them all open, so the connections hashed to a worker still starting, or to one that died, wait
in its socket's queue until it serves (a replacement starts within a second) instead of going
to a worker already up or being refused. The admin and KMS ports, little used, stay shared.
Elsewhere than on Linux (where ``SO_REUSEPORT`` does not spread connections, or does not exist)
the S3 socket is shared as before.

**The resource tracker.** uvicorn starts its workers through :mod:`multiprocessing`'s *spawn*
context, which first launches a helper, the resource tracker (a whole Python interpreter, about
13 MiB resident), to unlink named semaphores and shared memory a crashed process would leak.
onshore's workers create neither: they share only the listening sockets and a pipe for health
checks. So the supervisor hands the spawn machinery an "already running" tracker whose channel
is ``/dev/null`` (:func:`skip_resource_tracker`), and the helper process is never started.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Sequence
from multiprocessing import resource_tracker
from typing import Any

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


def spread_sockets(host: str, port: int, count: int, backlog: int = 4096) -> list[socket.socket]:
    """``count`` sockets bound to ``host:port`` with ``SO_REUSEPORT`` (the first one binds a
    free port if ``port`` is 0, the others the same), listening at once; empty where the
    platform has no ``SO_REUSEPORT``.

    The kernel spreads connections only over sockets that listen. If each worker began to
    listen when it started serving, every connection opened while the other workers were still
    starting would go to the first one up and, kept alive, stay there (a client pool opened
    against a server just started: 32 of 32 on one worker). Listening from the start, a
    connection hashed to a worker still starting waits in its socket's backlog until that
    worker serves, as one hashed to a worker being replaced does."""
    reuse_port = getattr(socket, "SO_REUSEPORT", None)
    if reuse_port is None or count < 2 or not sys.platform.startswith("linux"):
        return []
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    made: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family=family)
            made.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, reuse_port, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.listen(backlog)
            sock.set_inheritable(True)
    except OSError:
        for sock in made:
            sock.close()
        raise
    return made


class Supervisor(Multiprocess):
    """uvicorn's worker supervisor, except that each worker gets a listening socket of its own
    for the S3 port (see the module docstring), and that on shutdown it closes its own copies
    of the listening sockets before signalling the workers: once the workers stop accepting
    too (the first step of their graceful shutdown), the kernel refuses new connections at
    once instead of queueing them in the backlog until the process exits and then resetting
    them.

    uvicorn creates each worker with the sockets it reads from ``self.sockets`` and keeps
    worker *i* at ``self.processes[i]``, replacing it there when it dies or on a restart
    (SIGHUP); so ``sockets`` answers with the socket of the slot being filled."""

    def __init__(
        self, config: Any, sockets: Sequence[socket.socket], spread: Sequence[socket.socket] = ()
    ) -> None:
        self._spread = list(spread)
        self._restarting: list[Any] | None = None
        super().__init__(config, sockets=list(sockets))

    @property
    def sockets(self) -> list[socket.socket]:
        """The sockets of the worker being created: its own S3 socket, then the shared ones."""
        if not self._spread:
            return self._shared
        slot = self._slot_being_filled()
        own = self._spread if slot is None else [self._spread[slot % len(self._spread)]]
        return [*own, *self._shared]

    @sockets.setter
    def sockets(self, value: list[socket.socket]) -> None:
        self._shared = list(value)

    def _slot_being_filled(self) -> int | None:
        processes: list[Any] = self.processes
        if self._restarting is not None:  # a restart replaces the workers in order
            for slot, process in enumerate(processes):
                if any(process is old for old in self._restarting):
                    return slot
            return None
        if len(processes) < self.processes_num:  # the first start, in order
            return len(processes)
        for slot, process in enumerate(processes):  # a dead worker is replaced in its slot
            if process.exitcode is not None:
                return slot
        return None  # not a worker's creation: every S3 socket

    def run(self) -> None:
        skip_resource_tracker()
        super().run()

    def restart_all(self) -> None:
        self._restarting = list(self.processes)
        try:
            super().restart_all()
        finally:
            self._restarting = None

    def terminate_all(self) -> None:
        for sock in (*self._spread, *self._shared):
            sock.close()
        super().terminate_all()
