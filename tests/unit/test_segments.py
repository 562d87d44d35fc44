"""The sealed segment format: round trips, ranged opens, and every tampering detected."""

from __future__ import annotations

import io
import os
import random

import pytest

from onshore.service.encryption.segments import (
    HEADER,
    SEGMENT,
    TAG,
    Aead,
    CipherName,
    IntegrityError,
    Sealer,
    open_all,
    open_range,
    seal,
    sealed_size,
)

SIZES = [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT, 3 * SEGMENT + 17]


@pytest.fixture(params=list(CipherName))
def aead(request: pytest.FixtureRequest) -> Aead:
    return Aead.generate(request.param)[0]


@pytest.mark.parametrize("size", SIZES)
def test_streaming_round_trip_any_piece_size(aead: Aead, size: int) -> None:
    plain = os.urandom(size)
    for piece in (1000, SEGMENT, 3 * SEGMENT + 1):
        sealer = Sealer(aead, 7)
        out = b"".join(sealer.update(plain[i : i + piece]) for i in range(0, size, piece))
        out += sealer.finish()
        assert len(out) == sealed_size(size)
        assert open_all(aead, out, size, 7) == plain


def test_pieces_of_irregular_sizes_seal_as_one_body(aead: Aead) -> None:
    """``update_into()`` seals whole segments into the caller's buffer, whatever the pieces'
    sizes: short ones held back, long ones sealed straight from the caller's piece, boundaries
    anywhere; it never writes past ``room_for()`` nor relies on what the buffer held before."""
    rng = random.Random(5)
    plain = os.urandom(9 * SEGMENT + 123)
    sealer = Sealer(aead, 3)
    out: list[bytes] = []
    i = 0
    while i < len(plain):
        n = rng.choice([1, 17, SEGMENT - 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT + 5])
        room = sealer.room_for(len(plain[i : i + n]))
        buffer = bytearray(b"\xaa" * (room + 7))  # stale bytes, and more room than needed
        written = sealer.update_into(plain[i : i + n], memoryview(buffer))
        assert written <= room and buffer[room:] == b"\xaa" * 7
        out.append(bytes(buffer[:written]))
        i += n
    body = b"".join(out) + sealer.finish()
    assert len(body) == sealed_size(len(plain))
    assert open_all(aead, body, len(plain), 3) == plain


def test_reused_read_buffers_never_leak_into_a_shorter_body(aead: Aead) -> None:
    """Ranged opens read ciphertext into buffers shared across calls: a long body read first
    must not let a truncated one that follows pass on the stale bytes left behind."""
    long_plain = os.urandom(16 * SEGMENT)
    assert open_range(aead, io.BytesIO(seal(aead, long_plain)), len(long_plain), 0, 16 * SEGMENT)
    short = seal(aead, long_plain)  # the same body, cut inside its last segment
    with pytest.raises(IntegrityError):
        open_range(aead, io.BytesIO(short[:-100]), len(long_plain), 0, 16 * SEGMENT)
    with pytest.raises(IntegrityError):
        open_range(aead, io.BytesIO(short + b"x"), len(long_plain), 0, 16 * SEGMENT)


@pytest.mark.parametrize("size", SIZES)
def test_ranges(aead: Aead, size: int) -> None:
    plain = os.urandom(size)
    sealed = seal(aead, plain)
    edges = sorted({0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, size // 2, size - 1, size})
    for start in (e for e in edges if 0 <= e <= size):
        for end in (e for e in edges if start <= e <= size):
            assert open_range(aead, io.BytesIO(sealed), size, start, end) == plain[start:end]


def test_plaintext_is_not_in_the_output(aead: Aead) -> None:
    plain = b"A very recognisable plaintext. " * 5000
    assert b"recognisable" not in seal(aead, plain)


def test_every_flipped_byte_is_detected(aead: Aead) -> None:
    plain = os.urandom(2 * SEGMENT + 5)
    sealed = seal(aead, plain)
    for offset in [
        0,
        4,
        5,
        8,
        15,
        HEADER,
        HEADER + SEGMENT,
        HEADER + SEGMENT + TAG,
        len(sealed) - 1,
    ]:
        damaged = bytearray(sealed)
        damaged[offset] ^= 0x01
        with pytest.raises(IntegrityError):
            open_all(aead, bytes(damaged), len(plain))


def test_reordered_truncated_extended_and_misplaced_segments_fail(aead: Aead) -> None:
    plain = os.urandom(3 * SEGMENT)
    sealed = seal(aead, plain, 2)
    body = sealed[HEADER:]
    one = SEGMENT + TAG
    segments = [body[i : i + one] for i in range(0, len(body), one)]
    swapped = sealed[:HEADER] + segments[1] + segments[0] + segments[2]
    with pytest.raises(IntegrityError):
        open_all(aead, swapped, len(plain), 2)
    # Truncated at a segment boundary: the last segment left was not sealed as final.
    with pytest.raises(IntegrityError):
        open_all(aead, sealed[: HEADER + 2 * one], 2 * SEGMENT, 2)
    with pytest.raises(IntegrityError):
        open_all(aead, sealed[:-1], len(plain), 2)
    with pytest.raises(IntegrityError):
        open_all(aead, sealed + b"x", len(plain), 2)
    with pytest.raises(IntegrityError):  # a part's blob presented as another part
        open_all(aead, sealed, len(plain), 3)


def test_wrong_key_and_wrong_cipher_fail() -> None:
    plain = os.urandom(1000)
    aes = Aead.generate(CipherName.AES_256_GCM)[0]
    sealed = seal(aes, plain)
    with pytest.raises(IntegrityError):
        open_all(Aead.generate(CipherName.AES_256_GCM)[0], sealed, len(plain))
    with pytest.raises(IntegrityError):
        open_all(Aead.generate(CipherName.SM4_GCM)[0], sealed, len(plain))


def test_nonce_prefix_is_random_per_body(aead: Aead) -> None:
    assert seal(aead, b"same")[8:16] != seal(aead, b"same")[8:16]
    assert "key" not in repr(aead).lower() or "Aead(" in repr(aead)
