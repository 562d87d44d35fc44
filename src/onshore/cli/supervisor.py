"""The supervisor of multi-process servers: uvicorn's, with a prompt refusal on shutdown."""

from __future__ import annotations

from uvicorn.supervisors import Multiprocess


class Supervisor(Multiprocess):
    """uvicorn's worker supervisor, except that on shutdown it closes its own copy of the
    listening socket before signalling the workers. Once the workers stop accepting too (the
    first step of their graceful shutdown), the kernel refuses new connections at once instead
    of queueing them in the backlog until the process exits and then resetting them."""

    def terminate_all(self) -> None:
        for sock in self.sockets:
            sock.close()
        super().terminate_all()
