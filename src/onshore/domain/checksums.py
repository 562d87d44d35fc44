"""S3 additional checksums: CRC32, CRC32C, CRC64NVME, SHA1 and SHA256.

A client may send, besides the body, a checksum of it in ``x-amz-checksum-<algorithm>`` (as a
header, or as an aws-chunked *trailer* named by ``x-amz-trailer``). The value is always the
**base64 of the big-endian digest**: 4 bytes for the CRC32 family, 8 for CRC64NVME, 20 for SHA1,
32 for SHA256. S3 recomputes it over the received bytes and answers ``BadDigest`` on a mismatch,
then stores it with the object and returns it on ``GetObject``/``HeadObject`` when asked
(``x-amz-checksum-mode: ENABLED``).

Multipart uploads carry one checksum per part, and the object's checksum comes in two types:

* ``COMPOSITE`` ("checksum of checksums"): the algorithm applied to the concatenation of the
  parts' *binary* digests, in part order, shown with a ``-N`` suffix (N = number of parts), e.g.
  ``Vz1yEQ==-3``. Any algorithm; this is the default for SHA1/SHA256.
* ``FULL_OBJECT``: the checksum of the whole object's bytes, as if uploaded in one piece. Only
  the CRC algorithms allow it, because a CRC of ``A || B`` can be computed from ``crc(A)``,
  ``crc(B)`` and ``len(B)`` alone (:func:`combine_crc`) without reading the data again.

The three CRCs are the reflected variants with all-ones initial value and final XOR: CRC32 is
zlib's (polynomial 0x04C11DB7), CRC32C is Castagnoli's (0x1EDC6F41), CRC64NVME is the NVMe CRC-64
(0xAD93D23594C93659). ``awscrt`` computes CRC32C and CRC64NVME in hardware-accelerated C.

Reference: https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Protocol

from awscrt import checksums as _crt

from onshore.domain.errors import InvalidRequest
from onshore.domain.models import Checksum, ChecksumAlgorithm, ChecksumType

Buffer = bytes | bytearray | memoryview

#: Prefix of the header (or trailer) carrying a checksum value.
HEADER_PREFIX = "x-amz-checksum-"

#: Digest size in bytes of each algorithm.
DIGEST_SIZE: dict[ChecksumAlgorithm, int] = {
    ChecksumAlgorithm.CRC32: 4,
    ChecksumAlgorithm.CRC32C: 4,
    ChecksumAlgorithm.CRC64NVME: 8,
    ChecksumAlgorithm.SHA1: 20,
    ChecksumAlgorithm.SHA256: 32,
}

#: Algorithms whose multipart checksum may be of type ``FULL_OBJECT``.
CRC_ALGORITHMS = frozenset(
    {ChecksumAlgorithm.CRC32, ChecksumAlgorithm.CRC32C, ChecksumAlgorithm.CRC64NVME}
)

_HEADER_FOR: dict[ChecksumAlgorithm, str] = {
    alg: HEADER_PREFIX + alg.value.lower() for alg in ChecksumAlgorithm
}
_ALGORITHM_FOR_HEADER: dict[str, ChecksumAlgorithm] = {v: k for k, v in _HEADER_FOR.items()}

#: ``x-amz-checksum-*`` headers that are not checksum values.
NON_VALUE_HEADERS = frozenset(
    {"x-amz-checksum-type", "x-amz-checksum-algorithm", "x-amz-checksum-mode"}
)


def header_name(algorithm: ChecksumAlgorithm) -> str:
    """``x-amz-checksum-crc32`` for CRC32, and so on."""
    return _HEADER_FOR[algorithm]


def algorithm_for_header(name: str) -> ChecksumAlgorithm | None:
    """The algorithm a (lower-case) ``x-amz-checksum-*`` header or trailer name carries, if any."""
    return _ALGORITHM_FOR_HEADER.get(name)


_BY_NAME: dict[str, ChecksumAlgorithm] = {alg.value: alg for alg in ChecksumAlgorithm}


def algorithm_from_name(value: str) -> ChecksumAlgorithm | None:
    """Parse an algorithm name as clients send it (``crc32``, ``CRC32``...); None if unknown."""
    return _BY_NAME.get(value.strip().upper())


# --- incremental hashers ------------------------------------------------------------------------
class Hasher(Protocol):
    """An incremental checksum: feed it with :meth:`update`, read the big-endian :meth:`digest`."""

    def update(self, data: Buffer, /) -> None: ...

    def digest(self) -> bytes: ...


#: hashlib lets go of the GIL while it hashes a buffer of 2 KiB or more (HASHLIB_GIL_MINSIZE).
_GIL_KEPT = 2047
#: Above this, letting go of the GIL is worth it: the hash takes longer than getting it back.
_SMALL = 64 * 1024


def update_on_loop(hashers: Sequence[Hasher], data: Buffer) -> None:
    """Feed ``data`` to every hasher, from the event loop's thread.

    On a 4 KiB body hashlib would release the GIL for the ~5 µs an MD5 takes; a busy writer or
    I/O thread then takes it, and the event loop waits for it back, measured at up to ~100 µs
    under load. A small buffer is therefore fed in pieces under 2 KiB, which keep the GIL; a
    large one is fed whole (its hashing outlasts the hand-over).
    """
    if len(data) <= _GIL_KEPT or len(data) > _SMALL:
        for hasher in hashers:
            hasher.update(data)
        return
    view = memoryview(data)
    for start in range(0, len(view), _GIL_KEPT):
        piece = view[start : start + _GIL_KEPT]
        for hasher in hashers:
            hasher.update(piece)


class _Crc:
    __slots__ = ("_fn", "_size", "_value")

    def __init__(self, fn: Callable[[Buffer, int], int], size: int) -> None:
        self._fn = fn
        self._size = size
        self._value = 0

    def update(self, data: Buffer, /) -> None:
        self._value = self._fn(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(self._size, "big")


def _crc32(data: Buffer, value: int) -> int:
    return zlib.crc32(data, value)


def _crc32c(data: Buffer, value: int) -> int:
    return int(_crt.crc32c(data, value))


def _crc64nvme(data: Buffer, value: int) -> int:
    return int(_crt.crc64nvme(data, value))


def new_hasher(algorithm: ChecksumAlgorithm) -> Hasher:
    """A fresh incremental hasher for ``algorithm``."""
    if algorithm is ChecksumAlgorithm.CRC32:
        return _Crc(_crc32, 4)
    if algorithm is ChecksumAlgorithm.CRC32C:
        return _Crc(_crc32c, 4)
    if algorithm is ChecksumAlgorithm.CRC64NVME:
        return _Crc(_crc64nvme, 8)
    if algorithm is ChecksumAlgorithm.SHA1:
        return hashlib.sha1(usedforsecurity=False)
    return hashlib.sha256()


# --- encoding -----------------------------------------------------------------------------------
def encode(digest: bytes) -> str:
    """The wire form of a digest: standard base64 with padding."""
    return base64.b64encode(digest).decode("ascii")


def decode(algorithm: ChecksumAlgorithm, value: str) -> bytes | None:
    """The digest a wire value carries, or None if it is not valid base64 of the right size."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == DIGEST_SIZE[algorithm] else None


def compute(algorithm: ChecksumAlgorithm, data: Buffer) -> str:
    """The base64 checksum of ``data`` in one call."""
    h = new_hasher(algorithm)
    h.update(data)
    return encode(h.digest())


# --- multipart ----------------------------------------------------------------------------------
def _part_count_suffix(value: str) -> tuple[str, int | None]:
    base, dash, count = value.rpartition("-")
    if dash and count.isdigit():
        return base, int(count)
    return value, None


def composite(algorithm: ChecksumAlgorithm, part_values: Iterable[str]) -> Checksum:
    """The ``COMPOSITE`` checksum of a multipart object from its parts' base64 checksums, in order.

    Raises :class:`InvalidRequest` if a part value is not a valid checksum for ``algorithm``.
    """
    h = new_hasher(algorithm)
    n = 0
    for value in part_values:
        raw = decode(algorithm, value)
        if raw is None:
            raise InvalidRequest(f"The {algorithm.value} checksum of part {n + 1} is not valid.")
        h.update(raw)
        n += 1
    return Checksum(algorithm, f"{encode(h.digest())}-{n}", ChecksumType.COMPOSITE)


def full_object(algorithm: ChecksumAlgorithm, parts: Iterable[tuple[str, int]]) -> Checksum:
    """The ``FULL_OBJECT`` checksum of a multipart object from ``(part checksum, part size)`` pairs.

    Only CRC algorithms can be combined; for SHA1/SHA256 this raises :class:`InvalidRequest`, as
    it does for a malformed part checksum.
    """
    if algorithm not in CRC_ALGORITHMS:
        raise InvalidRequest(
            f"The FULL_OBJECT checksum type cannot be used with the {algorithm.value} algorithm."
        )
    size = DIGEST_SIZE[algorithm]
    crc = 0  # the CRC of zero bytes
    for i, (value, length) in enumerate(parts):
        raw = decode(algorithm, value)
        if raw is None:
            raise InvalidRequest(f"The {algorithm.value} checksum of part {i + 1} is not valid.")
        crc = combine_crc(algorithm, crc, int.from_bytes(raw, "big"), length)
    return Checksum(algorithm, encode(crc.to_bytes(size, "big")), ChecksumType.FULL_OBJECT)


# --- CRC combination ----------------------------------------------------------------------------
# For a reflected CRC with all-ones init and xor-out, crc(A || B) = crc(A) * x^(8*len(B)) + crc(B)
# in GF(2)[x] modulo the polynomial (zlib's crc32_combine). Polynomials are held bit-reversed, as
# the CRC registers are: the top bit is x^0.
_REFLECTED_POLY: dict[ChecksumAlgorithm, tuple[int, int]] = {
    ChecksumAlgorithm.CRC32: (0xEDB88320, 32),
    ChecksumAlgorithm.CRC32C: (0x82F63B78, 32),
    ChecksumAlgorithm.CRC64NVME: (0x9A6C9329AC4BC9B5, 64),
}


def _multmodp(a: int, b: int, poly: int, width: int) -> int:
    """``a * b mod p`` for bit-reversed polynomials ``a`` and ``b``."""
    m = 1 << (width - 1)
    p = 0
    while m:
        if a & m:
            p ^= b
            if not a & (m - 1):
                break
        m >>= 1
        b = (b >> 1) ^ poly if b & 1 else b >> 1
    return p


@lru_cache(maxsize=512)
def _xpow8n(algorithm: ChecksumAlgorithm, n: int) -> int:
    """``x^(8n) mod p`` (bit-reversed), by repeated squaring."""
    poly, width = _REFLECTED_POLY[algorithm]
    result = 1 << (width - 1)  # x^0: bit (width - 1 - k) holds the coefficient of x^k
    square = 1 << (width - 9)  # x^8, squared at each step: x^(8 * 2^k)
    while n:
        if n & 1:
            result = _multmodp(square, result, poly, width)
        n >>= 1
        if n:
            square = _multmodp(square, square, poly, width)
    return result


def combine_crc_py(algorithm: ChecksumAlgorithm, crc1: int, crc2: int, len2: int) -> int:
    """Pure-Python :func:`combine_crc` (used when ``awscrt`` lacks the combine functions)."""
    if len2 < 0:
        raise ValueError(f"negative length {len2}")
    if len2 == 0:
        return crc1
    poly, width = _REFLECTED_POLY[algorithm]
    return _multmodp(_xpow8n(algorithm, len2), crc1, poly, width) ^ crc2


_CRT_COMBINE: dict[ChecksumAlgorithm, Callable[[int, int, int], int] | None] = {
    ChecksumAlgorithm.CRC32: getattr(_crt, "combine_crc32", None),
    ChecksumAlgorithm.CRC32C: getattr(_crt, "combine_crc32c", None),
    ChecksumAlgorithm.CRC64NVME: getattr(_crt, "combine_crc64nvme", None),
}


def combine_crc(algorithm: ChecksumAlgorithm, crc1: int, crc2: int, len2: int) -> int:
    """The CRC of ``A || B`` from ``crc1 = crc(A)``, ``crc2 = crc(B)`` and ``len2 = len(B)``."""
    fn = _CRT_COMBINE.get(algorithm)
    if fn is not None:
        return int(fn(crc1, crc2, len2))
    return combine_crc_py(algorithm, crc1, crc2, len2)


__all__ = [
    "CRC_ALGORITHMS",
    "DIGEST_SIZE",
    "HEADER_PREFIX",
    "NON_VALUE_HEADERS",
    "Hasher",
    "algorithm_for_header",
    "algorithm_from_name",
    "combine_crc",
    "combine_crc_py",
    "composite",
    "compute",
    "decode",
    "encode",
    "full_object",
    "header_name",
    "new_hasher",
]
