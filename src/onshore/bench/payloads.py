"""Object bodies, pre-generated once per process and handed out as zero-copy views.

Each process makes one pool of random bytes (8 MiB by default) at start-up. An object's body is a
``memoryview`` slice of the pool at an offset derived from the object's index, so objects differ
from each other (a server cannot answer a GET with the wrong object and pass the checksum) and no
byte is generated or copied per request. Bodies larger than the pool are *streams*: an iterator of
1 MiB views taken at varying offsets, produced while the request is sent, so a 512 MiB PUT holds
nothing but the pool in memory.

The checksum is CRC-32 (``zlib.crc32``, about 2 GB/s on one core): it detects corrupt or swapped
objects, and costs the client far less than MD5 (about 0.6 GB/s) would.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator

POOL_SIZE = 8 * 1024 * 1024
CHUNK = 1024 * 1024
_GOLDEN = 2654435761  # Knuth's multiplicative hash: spreads consecutive indices over the pool


class PayloadPool:
    """Random bytes from which every body of this process is sliced."""

    def __init__(self, seed: int = 0, size: int = POOL_SIZE) -> None:
        if size < 2 * CHUNK:
            raise ValueError("pool must hold at least two chunks")
        self.data = random.Random(seed).randbytes(size)
        self._view = memoryview(self.data)

    def offset(self, index: int, size: int) -> int:
        return (index * _GOLDEN) % (len(self.data) - size + 1)

    def body(self, index: int, size: int) -> memoryview:
        """The body of object ``index``: ``size`` bytes, at most the pool's size minus one chunk."""
        if size > len(self.data) - CHUNK:
            raise ValueError(f"{size} bytes is too large for a single view; use stream()")
        start = self.offset(index, size)
        return self._view[start : start + size]

    def stream(self, salt: int, size: int, chunk: int = CHUNK) -> Iterator[memoryview]:
        """A body of ``size`` bytes produced ``chunk`` bytes at a time; same salt, same bytes."""
        remaining = size
        n = 0
        while remaining > 0:
            take = min(chunk, remaining)
            start = self.offset(salt * 1_000_003 + n, take)
            yield self._view[start : start + take]
            remaining -= take
            n += 1

    def stream_crc(self, salt: int, size: int) -> int:
        """The CRC-32 of ``stream(salt, size)``, computed without holding the stream."""
        crc = 0
        for chunk in self.stream(salt, size):
            crc = zlib.crc32(chunk, crc)
        return crc


class CrcStream:
    """Wraps a chunk iterator and accumulates the CRC-32 of what actually went out."""

    def __init__(self, chunks: Iterator[memoryview]) -> None:
        self._chunks = chunks
        self.crc = 0
        self.length = 0

    def __iter__(self) -> Iterator[memoryview]:
        for chunk in self._chunks:
            self.crc = zlib.crc32(chunk, self.crc)
            self.length += len(chunk)
            yield chunk
