"""Additional checksums: known values, botocore cross-checks, multipart combination."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib

import pytest
from botocore import httpchecksum  # type: ignore[import-untyped]

from onshore.domain import checksums
from onshore.domain.errors import InvalidRequest
from onshore.domain.models import Checksum, ChecksumAlgorithm, ChecksumType

A = ChecksumAlgorithm

# Published check values ("123456789") of each CRC, as big-endian integers.
CHECK_VALUES = {
    A.CRC32: 0xCBF43926,
    A.CRC32C: 0xE3069283,
    A.CRC64NVME: 0xAE8B14860A799888,
}

# Values S3 returns for small bodies (as recorded by S3-compatibility suites run against AWS).
KNOWN = {
    b"abcdefg": {
        A.CRC32: "MSpqpg==",
        A.CRC32C: "5if0QQ==",
        A.CRC64NVME: "SmzZ/LTp1CA=",
        A.SHA1: "L7XhNBn8iSRoZeejJPR27GJOh0A=",
        A.SHA256: "fRpUEnsiJQL1t5tfsIAwYRUqRPkrN+I8ZSe69mXU2po=",
    },
    b"dummy data": {
        A.CRC32: "QWaN2w==",
        A.CRC32C: "R/I7iQ==",
        A.CRC64NVME: "dPVWc2vU1+Q=",
        A.SHA1: "YR/1TvTYOJz5gtqVFoBJBtmTibY=",
        A.SHA256: "eXuwq/95jXIAr3aF3KeQHt/8Ur8mUA1b2XKCZY7iQVI=",
    },
    b"hello": {A.CRC64NVME: "M3eFcAZSQlc="},
    b"hello world": {A.CRC64NVME: "jSnVw/bqjr4="},
    # AWS's signed-trailer example: 66560 bytes of "a", x-amz-checksum-crc32c:sOO8/Q==
    b"a" * 66560: {A.CRC32C: "sOO8/Q=="},
}

BOTOCORE = {
    A.CRC32: httpchecksum.Crc32Checksum,
    A.CRC32C: httpchecksum.CrtCrc32cChecksum,
    A.CRC64NVME: httpchecksum.CrtCrc64NvmeChecksum,
    A.SHA1: httpchecksum.Sha1Checksum,
    A.SHA256: httpchecksum.Sha256Checksum,
}


@pytest.mark.parametrize("algorithm", sorted(CHECK_VALUES))
def test_crc_check_values(algorithm: ChecksumAlgorithm) -> None:
    raw = checksums.decode(algorithm, checksums.compute(algorithm, b"123456789"))
    assert raw is not None
    assert int.from_bytes(raw, "big") == CHECK_VALUES[algorithm]


@pytest.mark.parametrize(
    ("data", "algorithm", "value"),
    [(d, alg, v) for d, vals in KNOWN.items() for alg, v in vals.items()],
)
def test_known_values(data: bytes, algorithm: ChecksumAlgorithm, value: str) -> None:
    assert checksums.compute(algorithm, data) == value


@pytest.mark.parametrize("algorithm", list(A))
def test_matches_botocore_incrementally(algorithm: ChecksumAlgorithm) -> None:
    data = os.urandom(300_001)
    reference = BOTOCORE[algorithm]()
    reference.update(data)
    hasher = checksums.new_hasher(algorithm)
    view = memoryview(data)
    for start in range(0, len(data), 65_536):
        hasher.update(view[start : start + 65_536])
    assert checksums.encode(hasher.digest()) == reference.b64digest()
    assert len(hasher.digest()) == checksums.DIGEST_SIZE[algorithm]


def test_empty_input() -> None:
    assert checksums.compute(A.CRC32, b"") == "AAAAAA=="
    assert checksums.compute(A.CRC64NVME, b"") == "AAAAAAAAAAA="
    assert checksums.compute(A.SHA256, b"") == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


def test_header_names() -> None:
    for algorithm in A:
        name = checksums.header_name(algorithm)
        assert name == "x-amz-checksum-" + algorithm.value.lower()
        assert checksums.algorithm_for_header(name) is algorithm
    assert checksums.algorithm_for_header("x-amz-checksum-type") is None
    assert checksums.algorithm_for_header("x-amz-checksum-md5") is None
    assert "x-amz-checksum-mode" in checksums.NON_VALUE_HEADERS


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("crc32", A.CRC32),
        ("CRC32C", A.CRC32C),
        (" crc64nvme ", A.CRC64NVME),
        ("Sha256", A.SHA256),
        ("md5", None),
        ("", None),
    ],
)
def test_algorithm_from_name(name: str, expected: ChecksumAlgorithm | None) -> None:
    assert checksums.algorithm_from_name(name) is expected


def test_decode_rejects_malformed_values() -> None:
    assert checksums.decode(A.CRC32, "MSpqpg==") == base64.b64decode("MSpqpg==")
    assert checksums.decode(A.CRC32, "MSpqpg") is None  # no padding
    assert checksums.decode(A.CRC32, "not base64!") is None
    assert checksums.decode(A.CRC32, "SmzZ/LTp1CA=") is None  # 8 bytes for a 4-byte CRC
    assert checksums.decode(A.SHA256, "MSpqpg==") is None


@pytest.mark.parametrize("algorithm", sorted(checksums.CRC_ALGORITHMS))
@pytest.mark.parametrize(
    ("len_a", "len_b"), [(0, 0), (0, 9), (9, 0), (1, 1), (1000, 3), (70_000, 12_345)]
)
def test_combine_crc(algorithm: ChecksumAlgorithm, len_a: int, len_b: int) -> None:
    a, b = os.urandom(len_a), os.urandom(len_b)

    def crc(data: bytes) -> int:
        raw = checksums.decode(algorithm, checksums.compute(algorithm, data))
        assert raw is not None
        return int.from_bytes(raw, "big")

    assert checksums.combine_crc(algorithm, crc(a), crc(b), len_b) == crc(a + b)
    assert checksums.combine_crc_py(algorithm, crc(a), crc(b), len_b) == crc(a + b)


def test_combine_crc_large_length_matches_zlib() -> None:
    # zlib's own crc32_combine is not exposed, but a long run of zeros checks the x^(8n) powers.
    zeros = bytes(5 * 1024 * 1024 + 7)
    head = b"onshore"
    combined = checksums.combine_crc_py(A.CRC32, zlib.crc32(head), zlib.crc32(zeros), len(zeros))
    assert combined == zlib.crc32(head + zeros)


def _parts(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("algorithm", sorted(checksums.CRC_ALGORITHMS))
def test_full_object_checksum_equals_checksum_of_whole(algorithm: ChecksumAlgorithm) -> None:
    data = os.urandom(3 * 65_536 + 17)
    parts = _parts(data, 65_536)
    result = checksums.full_object(
        algorithm, [(checksums.compute(algorithm, p), len(p)) for p in parts]
    )
    assert result == Checksum(
        algorithm, checksums.compute(algorithm, data), ChecksumType.FULL_OBJECT
    )


def test_full_object_rejects_sha_and_bad_values() -> None:
    with pytest.raises(InvalidRequest):
        checksums.full_object(A.SHA256, [(checksums.compute(A.SHA256, b"x"), 1)])
    with pytest.raises(InvalidRequest):
        checksums.full_object(A.CRC32, [("bogus", 1)])


@pytest.mark.parametrize("algorithm", list(A))
def test_composite_checksum(algorithm: ChecksumAlgorithm) -> None:
    parts = _parts(os.urandom(200_000), 65_536)
    values = [checksums.compute(algorithm, p) for p in parts]
    raw = b"".join(base64.b64decode(v) for v in values)
    expected = f"{checksums.compute(algorithm, raw)}-{len(parts)}"
    assert checksums.composite(algorithm, values) == Checksum(
        algorithm, expected, ChecksumType.COMPOSITE
    )
    with pytest.raises(InvalidRequest):
        checksums.composite(algorithm, [*values, "bogus"])


@pytest.mark.parametrize("size", [0, 1, 2047, 2048, 4096, 5000, 65536, 65537, 200_000])
def test_update_on_loop_gives_the_same_digests(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    fed = [hashlib.md5(usedforsecurity=False), checksums.new_hasher(ChecksumAlgorithm.CRC64NVME)]
    checksums.update_on_loop(fed, data)
    assert fed[0].digest() == hashlib.md5(data, usedforsecurity=False).digest()
    assert checksums.encode(fed[1].digest()) == checksums.compute(ChecksumAlgorithm.CRC64NVME, data)
