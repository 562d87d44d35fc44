"""Random bytes for keys, nonces and ids, drawn from the kernel a page at a time.

``os.urandom`` (and ``secrets``, which calls it) releases the GIL around its ``getrandom`` system
call. On the event loop that is a hand-over: the I/O or writer thread waiting for the GIL takes it,
and the loop gets it back only when that thread lets go, up to a switch interval (5 ms) later. An
encrypted PUT drew randomness four or five times (a data key, a nonce prefix, a wrapping nonce, a
version id), so each small PUT paid several such hand-overs: under cProfile they showed as
100 µs per 32-byte call instead of the 1.4 µs the call itself costs.

So each thread keeps a 4 KiB pool filled by one ``os.urandom`` call and hands out slices of it;
the kernel is asked again when the pool runs out. The bytes are the kernel's CSPRNG output either
way, each handed out once. Pools are per thread (no lock), and a forked child starts afresh, so
two processes never share a pool. Unused pool bytes sit in the process's memory, next to the keys
they become: a process whose memory can be read has lost its keys already.
"""

from __future__ import annotations

import os
import threading

__all__ = ["random_bytes", "random_hex"]

POOL_BYTES = 4096
_generation = 0  # bumped in a forked child: every pool inherited from the parent is discarded


def _forked() -> None:
    global _generation
    _generation += 1


os.register_at_fork(after_in_child=_forked)


class _Pool(threading.local):
    def __init__(self) -> None:
        self.data = b""
        self.offset = 0
        self.generation = -1


_POOL = _Pool()


def random_bytes(n: int) -> bytes:
    """``n`` bytes from the kernel's CSPRNG (like ``secrets.token_bytes``), without a system
    call each time."""
    pool = _POOL
    end = pool.offset + n
    if end > len(pool.data) or pool.generation != _generation:
        if n > POOL_BYTES // 4:
            return os.urandom(n)
        pool.data = os.urandom(POOL_BYTES)
        pool.generation = _generation
        pool.offset, end = 0, n
    out = pool.data[pool.offset : end]
    pool.offset = end
    return out


def random_hex(n: int) -> str:
    """``2 * n`` lower-case hex digits of ``n`` random bytes (like ``secrets.token_hex``)."""
    return random_bytes(n).hex()
