"""Fuzz the body reader (:class:`PayloadReader`) with mutated plain and aws-chunked bodies.

A valid body is built for each payload mode — signed or unsigned, aws-chunked with chained chunk
signatures, trailers with an additional checksum and a trailer signature — then the bytes, the
headers and the way the body is cut into ASGI messages are mutated, and the reader is driven to
the end by an in-memory ``receive``. The reader must:

* finish with the decoded body or raise an S3 error, nothing else;
* never ask for more after the last message (a real server would wait forever: a hang);
* when the body is signed (a SHA-256 or chunk signatures), never hand out bytes other than the
  ones the client signed, whatever was mutated.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from hypothesis import example, given
from hypothesis import strategies as st

from onshore.domain import checksums
from onshore.domain.errors import S3Error
from onshore.domain.models import ChecksumAlgorithm
from onshore.s3api.auth import AuthResult, PayloadMode, PayloadReader, SigningKeyInfo
from onshore.s3api.auth.sigv4 import signing_key
from tests.fuzz.support import fuzz_settings, mutated_bytes, mutated_text, s3_outcome

M = PayloadMode
DATE, SCOPE = "20240501T120000Z", "20240501/local-1/s3/aws4_request"
KEY = signing_key("fuzz/secret", "20240501", "local-1")
SEED = "a" * 64
SIGNING = SigningKeyInfo(KEY, DATE, SCOPE, SEED)


@dataclass(frozen=True)
class Body:
    mode: PayloadMode
    data: bytes
    wire: bytes
    headers: dict[str, str]

    @property
    def signed(self) -> bool:
        return self.mode in (M.SIGNED, M.STREAMING_SIGNED, M.STREAMING_SIGNED_TRAILER)

    def auth(self) -> AuthResult:
        digest = hashlib.sha256(self.data).hexdigest() if self.mode is M.SIGNED else None
        signing = SIGNING if self.mode.chunked else None
        return AuthResult("AK", self.mode, digest, signing, presigned=False, signed_at=None)


def chunked(
    mode: PayloadMode, data: bytes, sizes: list[int], algorithm: ChecksumAlgorithm | None
) -> bytes:
    """``data`` as an aws-chunked body in chunks of ``sizes`` (cycled), as SDKs send it."""
    signed = mode in (M.STREAMING_SIGNED, M.STREAMING_SIGNED_TRAILER)
    out = bytearray()
    previous = SEED
    pos = index = 0
    while True:
        size = min(sizes[index % len(sizes)], len(data) - pos)
        chunk = data[pos : pos + size]
        line = f"{len(chunk):x}"
        if signed:
            previous = SIGNING.chunk_signature(previous, hashlib.sha256(chunk).hexdigest())
            line += f";chunk-signature={previous}"
        out += line.encode() + b"\r\n" + chunk + (b"\r\n" if chunk else b"")
        pos, index = pos + size, index + 1
        if not chunk:
            break
    if mode is M.STREAMING_SIGNED:
        return bytes(out) + b"\r\n"
    trailer = b""
    if algorithm is not None:
        name = checksums.header_name(algorithm)
        trailer = f"{name}:{checksums.compute(algorithm, data)}\n".encode()
        out += trailer.replace(b"\n", b"\r\n")
    if mode is M.STREAMING_SIGNED_TRAILER:
        out += (
            f"x-amz-trailer-signature:{SIGNING.trailer_signature(previous, trailer)}\r\n".encode()
        )
    return bytes(out) + b"\r\n"


@st.composite
def bodies(draw: st.DrawFn) -> Body:
    mode = draw(st.sampled_from(list(PayloadMode)))
    data = draw(st.binary(max_size=300))
    algorithm = draw(st.none() | st.sampled_from(list(ChecksumAlgorithm)))
    headers: dict[str, str] = {}
    if mode.chunked:
        sizes = draw(st.lists(st.integers(1, 80), min_size=1, max_size=4))
        trailer = algorithm if mode is not M.STREAMING_SIGNED else None
        wire = chunked(mode, data, sizes, trailer)
        headers["x-amz-decoded-content-length"] = str(len(data))
        headers["content-encoding"] = "aws-chunked"
        if trailer is not None:
            headers["x-amz-trailer"] = checksums.header_name(trailer)
    else:
        wire = data
        if algorithm is not None:
            headers[checksums.header_name(algorithm)] = checksums.compute(algorithm, data)
    if draw(st.integers(0, 4)):  # usually declared; otherwise as if Transfer-Encoding: chunked
        headers["content-length"] = str(len(wire))
    return Body(mode, data, wire, headers)


class Receive:
    """An ASGI ``receive`` over ``pieces``; calling it after the last piece fails the test."""

    def __init__(self, pieces: list[bytes], disconnect: bool) -> None:
        self.messages: list[Mapping[str, object]] = [
            {"type": "http.request", "body": p, "more_body": True} for p in pieces
        ]
        if disconnect:
            self.messages.append({"type": "http.disconnect"})
        else:
            self.messages.append({"type": "http.request", "body": b"", "more_body": False})
        self.calls = 0

    async def __call__(self) -> Mapping[str, object]:
        if self.calls >= len(self.messages):
            if self.messages[-1]["type"] == "http.disconnect":
                return self.messages[-1]
            raise AssertionError("receive() after the end of the body: this would hang")
        self.calls += 1
        return self.messages[self.calls - 1]


def split(wire: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(wire)) for c in cuts} | {0, len(wire)})
    return [wire[a:b] for a, b in zip(points, points[1:], strict=False) if b > a]


def run(reader: PayloadReader) -> bytes:
    async def go() -> bytes:
        parts = []
        while piece := await reader.read():
            parts.append(piece)
        return b"".join(parts)

    return asyncio.run(go())


def drive(
    body: Body, wire: bytes, headers: dict[str, str], cuts: list[int], disconnect: bool
) -> bytes | S3Error:
    receive = Receive(split(wire, cuts), disconnect)
    auth = body.auth()
    outcome = s3_outcome(lambda: PayloadReader(receive, headers, auth, max_chunk_header=256))
    if isinstance(outcome, S3Error):
        return outcome
    return s3_outcome(lambda: run(outcome))


@fuzz_settings(100)
@given(body=bodies(), cuts=st.lists(st.integers(0, 2000), max_size=6))
def test_valid_bodies_decode(body: Body, cuts: list[int]) -> None:
    """The unmutated body decodes to its data however it is cut into messages."""
    assert drive(body, body.wire, body.headers, cuts, False) == body.data


_HEADER_NAMES = (
    "content-length",
    "x-amz-decoded-content-length",
    "x-amz-trailer",
    "x-amz-checksum-crc32",
    "x-amz-sdk-checksum-algorithm",
)


@fuzz_settings(500)
@given(
    body=bodies(),
    data=st.data(),
    cuts=st.lists(st.integers(0, 2000), max_size=6),
    disconnect=st.integers(0, 9),
)
@example(
    body=Body(M.STREAMING_UNSIGNED_TRAILER, b"", b"0\r\n\r\n", {}),
    data=None,
    cuts=[],
    disconnect=1,
)
def test_mutated_bodies(
    body: Body, data: st.DataObject | None, cuts: list[int], disconnect: int
) -> None:
    headers = dict(body.headers)
    wire = body.wire
    if data is None:  # regression: a decoded length beyond int()'s digit limit
        headers["x-amz-decoded-content-length"] = "9" * 5000
    else:
        wire = data.draw(mutated_bytes(body.wire, max_edits=4))
        if data.draw(st.integers(0, 3)) == 0:
            name = data.draw(st.sampled_from(_HEADER_NAMES))
            headers[name] = data.draw(mutated_text(headers.get(name, "1")))
    outcome = drive(body, wire, headers, cuts, disconnect == 0)
    if isinstance(outcome, bytes) and body.signed:
        assert outcome == body.data, "a signed body decoded to bytes the client did not sign"
