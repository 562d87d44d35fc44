"""The sealed format of object bytes at rest: fixed-size segments, each its own AEAD message.

A sealed body (a blob file, or the inline bytes of a small object) is::

    header (16 bytes) | segment 0 | segment 1 | ... | segment n-1

    header   = magic "OSE1" (4) | cipher id (1) | reserved (3) | nonce prefix (8, random)
    segment  = AEAD(plaintext[i*64 KiB : (i+1)*64 KiB]) = ciphertext | 16-byte tag

Every segment holds ``SEGMENT`` (64 KiB) of plaintext except the last, which holds 1..64 KiB (or
nothing, for an empty body: there is always at least one segment, so an empty body is
authenticated too). Segment ``i`` is sealed with:

* nonce = nonce prefix (8 bytes, random per blob) | ``i`` (4 bytes, big endian): never reused
  under one data key, since each object or part gets a fresh random prefix;
* associated data = header | part number (4) | ``i`` (4) | final flag (1): the header binds the
  cipher and the prefix; the part number binds a multipart part to its place (swapping two part
  blobs fails); the index stops reordering segments; the final flag stops truncation at a
  segment boundary (the last segment read must be the one sealed as final).

Because plaintext offsets map to segment offsets arithmetically, a ranged read decrypts only the
segments it overlaps. Any failed tag raises :class:`IntegrityError`; nothing decrypted from a
failing segment is ever returned.

Ciphers: AES-256-GCM (default) and SM4-GCM (GB/T 32907, China's commercial cryptography
standard; 128-bit key), both with 96-bit nonces and 128-bit tags.
"""

from __future__ import annotations

import io
import secrets
import struct
from collections.abc import Iterator
from enum import Enum
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SEGMENT = 64 * 1024
TAG = 16
HEADER = 16
MAGIC = b"OSE1"
_SEALED_SEGMENT = SEGMENT + TAG
Buffer = bytes | bytearray | memoryview  # what the AEADs read from


class IntegrityError(Exception):
    """Sealed bytes failed authentication: corrupt, tampered with, truncated or wrong key."""


class CipherName(str, Enum):
    AES_256_GCM = "aes-256-gcm"
    SM4_GCM = "sm4-gcm"

    @property
    def key_bytes(self) -> int:
        return 32 if self is CipherName.AES_256_GCM else 16

    @property
    def ident(self) -> int:
        return 1 if self is CipherName.AES_256_GCM else 2


_BY_IDENT = {c.ident: c for c in CipherName}


class Aead:
    """One key of one cipher: ``seal``/``open`` with a 12-byte nonce and associated data."""

    __slots__ = ("_aes", "_key", "name")

    def __init__(self, name: CipherName, key: bytes) -> None:
        if len(key) != name.key_bytes:
            raise ValueError(f"{name.value} needs a {name.key_bytes}-byte key")
        self.name = name
        self._key = key
        self._aes = AESGCM(key) if name is CipherName.AES_256_GCM else None

    def __repr__(self) -> str:  # never show the key
        return f"Aead({self.name.value})"

    @classmethod
    def generate(cls, name: CipherName) -> tuple[Aead, bytes]:
        key = secrets.token_bytes(name.key_bytes)
        return cls(name, key), key

    def seal(self, nonce: bytes, data: Buffer, aad: bytes) -> bytes:
        if self._aes is not None:
            return self._aes.encrypt(nonce, data, aad)
        encryptor = Cipher(algorithms.SM4(self._key), modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(aad)
        body = encryptor.update(data) + encryptor.finalize()
        return body + encryptor.tag

    def open(self, nonce: bytes, sealed: Buffer, aad: bytes) -> bytes:
        if len(memoryview(sealed)) < TAG:
            raise IntegrityError("sealed data is shorter than its tag")
        try:
            if self._aes is not None:
                return self._aes.decrypt(nonce, sealed, aad)
            view = memoryview(sealed)
            decryptor = Cipher(
                algorithms.SM4(self._key), modes.GCM(nonce, bytes(view[-TAG:]))
            ).decryptor()
            decryptor.authenticate_additional_data(aad)
            return decryptor.update(view[:-TAG]) + decryptor.finalize()
        except InvalidTag:
            raise IntegrityError("sealed data failed authentication") from None

    def open_into(self, nonce: bytes, sealed: memoryview, aad: bytes, out: memoryview) -> None:
        """Like :meth:`open`, writing the plaintext into ``out`` (exactly its size): no
        intermediate copy for AES-GCM. ``out`` holds garbage if authentication fails."""
        if self._aes is None or len(sealed) < TAG:
            out[:] = self.open(nonce, sealed, aad)
            return
        try:
            self._aes.decrypt_into(nonce, sealed, aad, out)
        except InvalidTag:
            raise IntegrityError("sealed data failed authentication") from None


def segment_count(plain_size: int) -> int:
    return max(1, -(-plain_size // SEGMENT))


def sealed_size(plain_size: int) -> int:
    """Bytes at rest for ``plain_size`` bytes of plaintext."""
    return HEADER + plain_size + TAG * segment_count(plain_size)


def _aad(header: bytes, part_number: int, index: int, final: bool) -> bytes:
    return header + struct.pack(">IIB", part_number, index, 1 if final else 0)


def _nonce(header: bytes, index: int) -> bytes:
    return header[8:16] + struct.pack(">I", index)


class Sealer:
    """Seals a stream of any-sized pieces into the segment format.

    ``update()`` returns the sealed bytes ready so far (the header first); it holds back the
    last, possibly partial, segment, because only ``finish()`` knows which segment is final.
    ``pieces()`` does the same one sealed segment at a time, so that a caller writing them out
    never holds more than one. Memory held: at most one segment besides the piece being sealed,
    which is sealed straight from the caller's buffer (only the held-back tail is copied).
    """

    __slots__ = ("_aead", "_buffer", "_header", "_index", "_part", "_started")

    def __init__(self, aead: Aead, part_number: int = 0) -> None:
        self._aead = aead
        self._part = part_number
        self._header = MAGIC + bytes([aead.name.ident, 0, 0, 0]) + secrets.token_bytes(8)
        self._buffer = bytearray()
        self._index = 0
        self._started = False

    def update(self, data: Buffer) -> bytes:
        return b"".join(self.pieces(data))

    def pieces(self, data: Buffer) -> Iterator[bytes]:
        """The header (first call only) and each segment ``data`` completes, sealed in turn
        (consume the iterator entirely before the next call)."""
        if not self._started:
            self._started = True
            yield self._header
        with memoryview(data) as view:  # sealed from views: no slice copies
            offset = 0
            if self._buffer:
                if len(self._buffer) + len(view) <= SEGMENT:
                    self._buffer += view
                    return
                offset = SEGMENT - len(self._buffer)  # more follows: the held segment is full
                self._buffer += view[:offset]
                yield self._seal(self._buffer, final=False)
                self._buffer.clear()
            while len(view) - offset > SEGMENT:
                yield self._seal(view[offset : offset + SEGMENT], final=False)
                offset += SEGMENT
            self._buffer += view[offset:]

    def finish(self) -> bytes:
        head = b"" if self._started else self._header
        self._started = True
        last = self._seal(self._buffer, final=True)
        self._buffer.clear()
        return head + last

    def _seal(self, plain: Buffer, *, final: bool) -> bytes:
        index = self._index
        self._index += 1
        aad = _aad(self._header, self._part, index, final)
        return self._aead.seal(_nonce(self._header, index), plain, aad)


def seal(aead: Aead, plain: bytes, part_number: int = 0) -> bytes:
    """Seal a whole (small) body at once."""
    sealer = Sealer(aead, part_number)
    return sealer.update(plain) + sealer.finish()


def _check_header(header: bytes, aead: Aead) -> None:
    if len(header) != HEADER or header[:4] != MAGIC:
        raise IntegrityError("not a sealed body (bad header)")
    if _BY_IDENT.get(header[4]) is not aead.name:
        raise IntegrityError("sealed with another cipher")


def open_range(
    aead: Aead, source: BinaryIO, plain_size: int, start: int, end: int, part_number: int = 0
) -> bytes:
    """Plaintext bytes ``[start, end)`` of the sealed body in ``source`` (a seekable file).

    Reads and authenticates only the segments the range overlaps; raises IntegrityError if any
    of them (or the header) fails, or the file is shorter than ``plain_size`` implies. The
    segments are decrypted straight into one buffer, from a view of what was read (no copy of
    each segment, no join of the pieces).
    """
    source.seek(0)
    header = source.read(HEADER)
    _check_header(header, aead)
    if end <= start:
        end = start
    last = segment_count(plain_size) - 1
    first_index = min(start // SEGMENT, last)
    last_index = min(max(end - 1, start) // SEGMENT, last)
    source.seek(HEADER + first_index * _SEALED_SEGMENT)
    extra = 1 if last_index == last else 0  # one byte more: data past the end is damage too
    sealed = memoryview(source.read((last_index - first_index + 1) * _SEALED_SEGMENT + extra))
    base = first_index * SEGMENT
    plain = bytearray(min(plain_size, (last_index + 1) * SEGMENT) - base)
    out = memoryview(plain)
    offset = 0
    for index in range(first_index, last_index + 1):
        final = index == last
        expected = (plain_size - index * SEGMENT if final else SEGMENT) + TAG
        chunk = sealed[offset : offset + expected]
        offset += expected
        if len(chunk) != expected:
            raise IntegrityError("sealed data is truncated")
        aad = _aad(header, part_number, index, final)
        at = index * SEGMENT - base
        aead.open_into(_nonce(header, index), chunk, aad, out[at : at + expected - TAG])
    if last_index == last and len(sealed) != offset:
        raise IntegrityError("sealed data is longer than recorded")
    out.release()
    sealed.release()  # the ciphertext goes before the copy below: two buffers at once, not three
    del sealed
    if start == base and end - base == len(plain):
        return bytes(plain)
    return bytes(plain[start - base : end - base])


def open_all(aead: Aead, sealed: bytes, plain_size: int, part_number: int = 0) -> bytes:
    """Open a whole sealed body held in memory (inline objects)."""
    return open_range(aead, io.BytesIO(sealed), plain_size, 0, plain_size, part_number)
