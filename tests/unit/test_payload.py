"""The body reader: plain, aws-chunked (signed, unsigned, trailers) and additional checksums."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

import boto3  # type: ignore[import-untyped]
import pytest
from botocore import httpchecksum  # type: ignore[import-untyped]
from botocore.awsrequest import AWSPreparedRequest  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from onshore.domain import checksums
from onshore.domain.errors import (
    BadDigest,
    IncompleteBody,
    InvalidRequest,
    MalformedTrailerError,
    MaxMessageLengthExceeded,
    MissingContentLength,
    S3Error,
    SignatureDoesNotMatch,
    XAmzContentSHA256Mismatch,
)
from onshore.domain.models import Checksum, ChecksumAlgorithm
from onshore.s3api.auth import (
    AuthResult,
    PayloadMode,
    PayloadReader,
    Receive,
    SigningKeyInfo,
    authenticate,
)
from onshore.s3api.auth.sigv4 import EMPTY_SHA256, signing_key

A = ChecksumAlgorithm
Message = Mapping[str, object]


# --- helpers ------------------------------------------------------------------------------------
class Receiver:
    """An ASGI ``receive`` that delivers ``body`` in pieces, then fails the test if called again
    (a reader that waits for more after ``more_body: False`` would hang a real server)."""

    def __init__(
        self,
        body: bytes,
        sizes: int | Sequence[int] | None = None,
        *,
        disconnect_after: int | None = None,
        trailing_empty: bool = False,
    ) -> None:
        pieces: list[bytes] = []
        if sizes is None:
            pieces = [body]
        else:
            pattern = [sizes] if isinstance(sizes, int) else list(sizes)
            i = pos = 0
            while pos < len(body):
                size = pattern[i % len(pattern)]
                pieces.append(body[pos : pos + size])
                pos += size
                i += 1
        self.messages: list[Message] = [
            {"type": "http.request", "body": p, "more_body": True} for p in pieces
        ]
        if disconnect_after is not None:
            self.messages = [*self.messages[:disconnect_after], {"type": "http.disconnect"}]
        elif trailing_empty or not self.messages:
            self.messages.append({"type": "http.request", "body": b"", "more_body": False})
        else:
            self.messages[-1] = {**self.messages[-1], "more_body": False}
        self.calls = 0

    async def __call__(self) -> Message:
        assert self.calls < len(self.messages), "receive() called after the end of the body"
        message = self.messages[self.calls]
        self.calls += 1
        return message


def run_reader(reader: PayloadReader) -> bytes:
    async def go() -> bytes:
        parts = []
        while piece := await reader.read():
            assert piece, "read() returned an empty piece before the end"
            parts.append(piece)
        assert await reader.read() == b""  # the end is sticky
        return b"".join(parts)

    return asyncio.run(go())


def read(
    body: bytes,
    headers: Mapping[str, str],
    auth: AuthResult,
    sizes: int | Sequence[int] | None = None,
    **receiver: object,
) -> tuple[bytes, PayloadReader]:
    reader = PayloadReader(Receiver(body, sizes, **receiver), headers, auth)  # type: ignore[arg-type]
    return run_reader(reader), reader


def plain_auth(digest: str | None = None) -> AuthResult:
    mode = PayloadMode.SIGNED if digest else PayloadMode.UNSIGNED
    return AuthResult("AK", mode, digest, None, presigned=False, signed_at=None)


# --- plain bodies -------------------------------------------------------------------------------
def test_signed_body() -> None:
    body = os.urandom(100_000)
    auth = plain_auth(hashlib.sha256(body).hexdigest())
    for sizes in (None, 1000, [1, 65536, 7]):
        data, reader = read(body, {"content-length": str(len(body))}, auth, sizes)
        assert data == body
        assert reader.decoded_length == len(body)
        assert reader.bytes_received == len(body)
        assert reader.checksum is None


def test_pieces_are_the_received_messages() -> None:
    """No copies: a plain body is handed out as the ASGI messages themselves."""
    body = os.urandom(200_000)
    receive = Receiver(body, 65536)
    reader = PayloadReader(receive, {"content-length": str(len(body))}, plain_auth())

    async def go() -> list[bytes]:
        return [p async for p in _pieces(reader)]

    pieces = asyncio.run(go())
    assert all(p is m["body"] for p, m in zip(pieces, receive.messages, strict=True))


async def _pieces(reader: PayloadReader):  # type: ignore[no-untyped-def]
    while piece := await reader.read():
        yield piece


def test_empty_body() -> None:
    data, reader = read(b"", {"content-length": "0"}, plain_auth(EMPTY_SHA256))
    assert data == b"" and reader.decoded_length == 0


def test_sha256_mismatch() -> None:
    auth = plain_auth(hashlib.sha256(b"other").hexdigest())
    with pytest.raises(XAmzContentSHA256Mismatch) as excinfo:
        read(b"body", {"content-length": "4"}, auth)
    assert excinfo.value.details["ClientComputedContentSHA256"] == auth.content_sha256


def test_short_body_and_disconnect() -> None:
    with pytest.raises(IncompleteBody):
        read(b"only this", {"content-length": "100"}, plain_auth())
    with pytest.raises(IncompleteBody):
        read(b"0123456789" * 10, {"content-length": "100"}, plain_auth(), 10, disconnect_after=3)
    with pytest.raises(IncompleteBody):
        read(b"more than declared", {"content-length": "4"}, plain_auth())


def test_errors_are_sticky() -> None:
    reader = PayloadReader(Receiver(b"x", None), {"content-length": "5"}, plain_auth())

    async def go() -> None:
        assert await reader.read() == b"x"
        for _ in range(2):
            with pytest.raises(IncompleteBody):
                await reader.read()

    asyncio.run(go())


def test_read_all_limit() -> None:
    body = b"<xml/>" * 100
    reader = PayloadReader(Receiver(body, 7), {"content-length": str(len(body))}, plain_auth())
    assert asyncio.run(reader.read_all(len(body))) == body
    declared = PayloadReader(Receiver(body), {"content-length": str(len(body))}, plain_auth())
    with pytest.raises(MaxMessageLengthExceeded):
        asyncio.run(declared.read_all(len(body) - 1))
    undeclared = PayloadReader(Receiver(body, 100), {}, plain_auth())  # Transfer-Encoding: chunked
    with pytest.raises(MaxMessageLengthExceeded):
        asyncio.run(undeclared.read_all(len(body) - 1))


# --- additional checksums in headers ------------------------------------------------------------
@pytest.mark.parametrize("algorithm", list(A))
def test_header_checksum(algorithm: ChecksumAlgorithm) -> None:
    body = os.urandom(70_000)
    value = checksums.compute(algorithm, body)
    headers = {
        "content-length": str(len(body)),
        checksums.header_name(algorithm): value,
        "x-amz-sdk-checksum-algorithm": algorithm.value.lower(),
    }
    data, reader = read(body, headers, plain_auth(), 4096)
    assert data == body
    assert reader.checksum == Checksum(algorithm, value)
    wrong = {**headers, checksums.header_name(algorithm): checksums.compute(algorithm, b"x")}
    with pytest.raises(BadDigest) as excinfo:
        read(body, wrong, plain_auth())
    assert excinfo.value.message == (
        f"The {algorithm.value} you specified did not match the calculated checksum."
    )


def test_checksum_is_none_until_the_end() -> None:
    body = b"abcdefg"
    headers = {"content-length": "7", "x-amz-checksum-crc32": "MSpqpg=="}
    reader = PayloadReader(Receiver(body), headers, plain_auth())

    async def go() -> None:
        assert await reader.read() == body
        assert reader.checksum is None
        assert await reader.read() == b""
        assert reader.checksum == Checksum(A.CRC32, "MSpqpg==")

    asyncio.run(go())


def test_algorithm_named_without_value_is_computed() -> None:
    _, reader = read(
        b"abcdefg", {"content-length": "7", "x-amz-sdk-checksum-algorithm": "CRC32C"}, plain_auth()
    )
    assert reader.checksum == Checksum(A.CRC32C, "5if0QQ==")


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"x-amz-checksum-crc32": "nope"}, "Value for x-amz-checksum-crc32 header is invalid."),
        ({"x-amz-checksum-crc32": "SmzZ/LTp1CA="}, "header is invalid"),
        ({"x-amz-checksum-md5": "MSpqpg=="}, "x-amz-checksum- header is invalid"),
        (
            {"x-amz-checksum-crc32": "MSpqpg==", "x-amz-checksum-crc32c": "5if0QQ=="},
            "Multiple checksum Types",
        ),
        (
            {"x-amz-checksum-crc32": "MSpqpg==", "x-amz-sdk-checksum-algorithm": "SHA1"},
            "x-amz-sdk-checksum-algorithm",
        ),
        ({"x-amz-sdk-checksum-algorithm": "MD5"}, "x-amz-sdk-checksum-algorithm"),
        ({"x-amz-trailer": "x-amz-checksum-crc32"}, "x-amz-trailer"),
    ],
)
def test_invalid_checksum_declarations(headers: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidRequest) as excinfo:
        read(b"abcdefg", {"content-length": "7", **headers}, plain_auth())
    assert message in excinfo.value.message


def test_non_value_checksum_headers_are_ignored() -> None:
    headers = {
        "content-length": "7",
        "x-amz-checksum-type": "FULL_OBJECT",
        "x-amz-checksum-algorithm": "CRC32",
        "x-amz-checksum-mode": "ENABLED",
    }
    data, reader = read(b"abcdefg", headers, plain_auth())
    assert data == b"abcdefg" and reader.checksum is None


# --- aws-chunked: AWS's documented examples -----------------------------------------------------
DOC_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DOC_DATA = b"a" * 66560
DOC_SIGNATURES = (
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
)
TRAILER_SIGNATURES = (
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
)
TRAILER_SIGNATURE = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"


def doc_body(signatures: Sequence[str] = DOC_SIGNATURES, data: bytes = DOC_DATA) -> bytes:
    return (
        f"10000;chunk-signature={signatures[0]}\r\n".encode()
        + data[:65536]
        + b"\r\n"
        + f"400;chunk-signature={signatures[1]}\r\n".encode()
        + data[65536:]
        + b"\r\n"
        + f"0;chunk-signature={signatures[2]}\r\n\r\n".encode()
    )


def doc_trailer_body(
    trailer: str = "x-amz-checksum-crc32c:sOO8/Q==",
    signature: str | None = TRAILER_SIGNATURE,
    blank: bool = False,
) -> bytes:
    body = doc_body(TRAILER_SIGNATURES)[:-2]  # the final chunk without its closing blank line
    if blank:
        body += b"\r\n"
    body += f"{trailer}\r\n".encode()
    if signature is not None:
        body += f"x-amz-trailer-signature:{signature}\r\n".encode()
    return body + b"\r\n"


DOC_HEADERS = {
    "host": "s3.amazonaws.com",
    "x-amz-date": "20130524T000000Z",
    "x-amz-storage-class": "REDUCED_REDUNDANCY",
    "authorization": (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
        "x-amz-decoded-content-length;x-amz-storage-class,"
        "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    ),
    "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "content-encoding": "aws-chunked",
    "x-amz-decoded-content-length": "66560",
    "content-length": "66824",
}
DOC_TRAILER_HEADERS = {
    **{k: v for k, v in DOC_HEADERS.items() if k != "content-length"},
    "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
    "x-amz-trailer": "x-amz-checksum-crc32c",
    "authorization": (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;"
        "x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer,"
        "Signature=106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
    ),
}


def doc_auth(headers: Mapping[str, str] = DOC_HEADERS) -> AuthResult:
    return authenticate(
        "PUT",
        "/examplebucket/chunkObject.txt",
        "",
        headers,
        lookup=lambda ak: DOC_SECRET if ak == "AKIAIOSFODNN7EXAMPLE" else None,
        region="us-east-1",
        now=datetime(2013, 5, 24, 0, 1, tzinfo=UTC),
    )


@pytest.mark.parametrize("sizes", [None, 1, 7, 1000, 65536, [88, 65536, 2, 86, 1024, 90]])
def test_documented_signed_chunks(sizes: int | list[int] | None) -> None:
    body = doc_body()
    assert len(body) == 66824  # the documented Content-Length
    data, reader = read(body, DOC_HEADERS, doc_auth(), sizes)
    assert data == DOC_DATA
    assert reader.decoded_length == 66560
    assert reader.bytes_received == 66824


@pytest.mark.parametrize("index", [0, 1, 2])
def test_documented_signed_chunks_any_signature_changed(index: int) -> None:
    signatures = list(DOC_SIGNATURES)
    signatures[index] = signatures[index][::-1]
    with pytest.raises(SignatureDoesNotMatch):
        read(doc_body(signatures), DOC_HEADERS, doc_auth(), 4096)


@pytest.mark.parametrize("position", [0, 65535, 65536, 66559])
def test_documented_signed_chunks_data_changed(position: int) -> None:
    data = bytearray(DOC_DATA)
    data[position] = ord("b")
    with pytest.raises(SignatureDoesNotMatch):
        read(doc_body(data=bytes(data)), DOC_HEADERS, doc_auth(), 4096)


def test_chunks_cannot_be_reordered_or_dropped() -> None:
    body = doc_body()
    first = body[: 88 + 65536 + 2]
    second = body[len(first) : len(first) + 86 + 1024 + 2]
    final = body[len(first) + len(second) :]
    headers = {**DOC_HEADERS, "content-length": str(len(body))}
    with pytest.raises((SignatureDoesNotMatch, IncompleteBody)):
        read(second + first + final, headers, doc_auth())
    with pytest.raises((SignatureDoesNotMatch, IncompleteBody)):
        read(first + final, {**headers, "x-amz-decoded-content-length": "65536"}, doc_auth())


@pytest.mark.parametrize("cut", [1, 50, 88, 30000, 65624, 65626, 66700, 66822, 66823])
def test_documented_signed_chunks_truncated(cut: int) -> None:
    body = doc_body()[:cut]
    headers = {k: v for k, v in DOC_HEADERS.items() if k != "content-length"}
    with pytest.raises(IncompleteBody):
        read(body, headers, doc_auth(), 1000)
    with pytest.raises(IncompleteBody):  # and with Content-Length: the client went away
        read(body, DOC_HEADERS, doc_auth(), 1000)


def test_documented_signed_chunks_wrong_decoded_length() -> None:
    for declared in ("66559", "66561", "0"):
        with pytest.raises(IncompleteBody):
            read(doc_body(), {**DOC_HEADERS, "x-amz-decoded-content-length": declared}, doc_auth())


def test_data_after_the_final_chunk() -> None:
    headers = {k: v for k, v in DOC_HEADERS.items() if k != "content-length"}
    with pytest.raises(InvalidRequest, match="continues after"):
        read(doc_body() + b"garbage", headers, doc_auth(), 4096)
    with pytest.raises(MalformedTrailerError):  # trailer lines where none may be
        read(doc_body()[:-2] + b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n", headers, doc_auth())


def test_missing_final_blank_line() -> None:
    headers = {k: v for k, v in DOC_HEADERS.items() if k != "content-length"}
    with pytest.raises(IncompleteBody):
        read(doc_body()[:-2], headers, doc_auth())


@pytest.mark.parametrize("blank", [False, True])
@pytest.mark.parametrize("sizes", [None, 1, 4096])
def test_documented_signed_trailer(blank: bool, sizes: int | None) -> None:
    body = doc_trailer_body(blank=blank)
    data, reader = read(body, DOC_TRAILER_HEADERS, doc_auth(DOC_TRAILER_HEADERS), sizes)
    assert data == DOC_DATA
    assert reader.checksum == Checksum(A.CRC32C, "sOO8/Q==")


@pytest.mark.parametrize(
    ("trailer", "signature", "error"),
    [
        ("x-amz-checksum-crc32c:AAAAAA==", TRAILER_SIGNATURE, SignatureDoesNotMatch),
        ("x-amz-checksum-crc32c:sOO8/Q==", TRAILER_SIGNATURE[::-1], SignatureDoesNotMatch),
        ("x-amz-checksum-crc32c:sOO8/Q==", None, SignatureDoesNotMatch),
        ("x-amz-checksum-crc32:sOO8/Q==", TRAILER_SIGNATURE, MalformedTrailerError),
    ],
)
def test_documented_signed_trailer_tampered(
    trailer: str, signature: str | None, error: type[S3Error]
) -> None:
    with pytest.raises(error):
        read(
            doc_trailer_body(trailer, signature), DOC_TRAILER_HEADERS, doc_auth(DOC_TRAILER_HEADERS)
        )


# --- aws-chunked: bodies signed here and by botocore --------------------------------------------
SIGNING = SigningKeyInfo(
    signing_key("secret", "20260101", "us-east-1"),
    "20260101T000000Z",
    "20260101/us-east-1/s3/aws4_request",
    "f" * 64,
)


def signed_body(
    data: bytes,
    chunk: int,
    trailers: Sequence[tuple[str, str]] | None = None,
    info: SigningKeyInfo = SIGNING,
) -> bytes:
    out = bytearray()
    previous = info.seed_signature
    for start in range(0, len(data), chunk):
        piece = data[start : start + chunk]
        previous = info.chunk_signature(previous, hashlib.sha256(piece).hexdigest())
        out += f"{len(piece):x};chunk-signature={previous}\r\n".encode() + piece + b"\r\n"
    previous = info.chunk_signature(previous, EMPTY_SHA256)
    out += f"0;chunk-signature={previous}\r\n".encode()
    if trailers is not None:
        canonical = "".join(f"{n}:{v}\n" for n, v in trailers).encode()
        for name, value in trailers:
            out += f"{name}:{value}\r\n".encode()
        out += f"x-amz-trailer-signature:{info.trailer_signature(previous, canonical)}\r\n".encode()
    return bytes(out + b"\r\n")


def streaming_auth(mode: PayloadMode, info: SigningKeyInfo | None = SIGNING) -> AuthResult:
    return AuthResult("AK", mode, None, info, presigned=False, signed_at=None)


@pytest.mark.parametrize("chunk", [1, 8192, 65536, 1 << 20])
def test_signed_chunks_with_signed_crc_trailer(chunk: int) -> None:
    data = os.urandom(min(300_000, 3000 * chunk))
    value = checksums.compute(A.CRC64NVME, data)
    body = signed_body(data, chunk, [("x-amz-checksum-crc64nvme", value)])
    headers = {
        "x-amz-decoded-content-length": str(len(data)),
        "x-amz-trailer": "x-amz-checksum-crc64nvme",
    }
    result, reader = read(
        body, headers, streaming_auth(PayloadMode.STREAMING_SIGNED_TRAILER), [65536, 1000, 3]
    )
    assert result == data
    assert reader.checksum == Checksum(A.CRC64NVME, value)
    # A properly signed but wrong checksum is a BadDigest, not a signature error.
    wrong = signed_body(data, chunk, [("x-amz-checksum-crc64nvme", "AAAAAAAAAAA=")])
    with pytest.raises(BadDigest, match="The CRC64NVME you specified did not match"):
        read(wrong, headers, streaming_auth(PayloadMode.STREAMING_SIGNED_TRAILER))


def test_signed_chunks_with_header_checksum() -> None:
    data = os.urandom(10_000)
    headers = {
        "x-amz-decoded-content-length": str(len(data)),
        "x-amz-checksum-sha256": checksums.compute(A.SHA256, data),
    }
    result, reader = read(
        signed_body(data, 4096), headers, streaming_auth(PayloadMode.STREAMING_SIGNED)
    )
    assert result == data and reader.checksum is not None


def test_chunk_signature_missing_or_for_another_key() -> None:
    data = b"x" * 100
    headers = {"x-amz-decoded-content-length": "100"}
    other = SigningKeyInfo(
        signing_key("other", "20260101", "us-east-1"),
        SIGNING.amz_date,
        SIGNING.scope,
        SIGNING.seed_signature,
    )
    with pytest.raises(SignatureDoesNotMatch):
        read(
            signed_body(data, 50, info=other), headers, streaming_auth(PayloadMode.STREAMING_SIGNED)
        )
    unsigned = b"64\r\n" + data + b"\r\n0\r\n\r\n"
    with pytest.raises(SignatureDoesNotMatch):
        read(unsigned, headers, streaming_auth(PayloadMode.STREAMING_SIGNED))
    with pytest.raises(InvalidRequest):
        PayloadReader(Receiver(b""), headers, streaming_auth(PayloadMode.STREAMING_SIGNED, None))


BOTOCORE_CHECKSUMS = {
    A.CRC32: httpchecksum.Crc32Checksum,
    A.CRC32C: httpchecksum.CrtCrc32cChecksum,
    A.CRC64NVME: httpchecksum.CrtCrc64NvmeChecksum,
    A.SHA1: httpchecksum.Sha1Checksum,
    A.SHA256: httpchecksum.Sha256Checksum,
}


def botocore_chunked(
    data: bytes,
    algorithm: ChecksumAlgorithm,
    chunk_size: int | None = None,
) -> bytes:
    wrapper = httpchecksum.AwsChunkedWrapper(
        io.BytesIO(data),
        checksum_cls=BOTOCORE_CHECKSUMS[algorithm],
        checksum_name=checksums.header_name(algorithm),
        chunk_size=chunk_size,
    )
    return bytes(wrapper.read())


def unsigned_trailer_headers(data: bytes, algorithm: ChecksumAlgorithm) -> dict[str, str]:
    return {
        "content-encoding": "aws-chunked",
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "x-amz-decoded-content-length": str(len(data)),
        "x-amz-trailer": checksums.header_name(algorithm),
        "x-amz-sdk-checksum-algorithm": algorithm.value,
    }


@pytest.mark.parametrize("algorithm", list(A))
@pytest.mark.parametrize("chunk_size", [None, 7, 65536])
def test_botocore_unsigned_trailer(algorithm: ChecksumAlgorithm, chunk_size: int | None) -> None:
    data = os.urandom(150_000)
    body = botocore_chunked(data, algorithm, chunk_size)
    result, reader = read(
        body,
        unsigned_trailer_headers(data, algorithm),
        streaming_auth(PayloadMode.STREAMING_UNSIGNED_TRAILER, None),
        65536,
    )
    assert result == data
    assert reader.checksum == Checksum(algorithm, checksums.compute(algorithm, data))


def test_botocore_unsigned_trailer_empty_body() -> None:
    body = botocore_chunked(b"", A.CRC32)
    assert body.startswith(b"0\r\n")
    _, reader = read(
        body,
        unsigned_trailer_headers(b"", A.CRC32),
        streaming_auth(PayloadMode.STREAMING_UNSIGNED_TRAILER, None),
    )
    assert reader.checksum == Checksum(A.CRC32, "AAAAAA==")


def test_unsigned_trailer_wrong_and_malformed_values() -> None:
    data = b"hello"
    headers = unsigned_trailer_headers(data, A.CRC64NVME)
    auth = streaming_auth(PayloadMode.STREAMING_UNSIGNED_TRAILER, None)
    incorrect = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc64nvme:QFRKMGE3tuw=\r\n\r\n"
    with pytest.raises(BadDigest) as excinfo:
        read(incorrect, headers, auth)
    assert excinfo.value.message == (
        "The CRC64NVME you specified did not match the calculated checksum."
    )
    invalid = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc64nvme:invalid_checksum\r\n\r\n"
    with pytest.raises(InvalidRequest, match="x-amz-checksum-crc64nvme trailing header"):
        read(invalid, headers, auth)
    correct = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc64nvme:M3eFcAZSQlc=\r\n\r\n"
    assert read(correct, headers, auth)[0] == data


@pytest.mark.parametrize(
    ("trailer", "body"),
    [
        ("x-amz-checksum-crc64nvme", b"5\r\nhello\r\n0\r\n\r\n"),  # trailer missing
        ("x-amz-checksum-crc64nvme", b"5\r\nhello\r\n0\r\n:M3eFcAZSQlc=\r\n\r\n"),  # no name
        (None, b"5\r\nhello\r\n0\r\nx-amz-checksum-crc64nvme:M3eFcAZSQlc=\r\n\r\n"),  # undeclared
        ("x-amz-checksum-crc64nvme", b"5\r\nhello\r\n0\r\ninvalid_trailer:M3eFcAZSQlc=\r\n\r\n"),
        ("x-amz-checksum-crc64nvme", b"5\r\nhello\r\n0\r\nno colon\r\n\r\n"),
    ],
)
def test_malformed_trailers(trailer: str | None, body: bytes) -> None:
    headers = {"x-amz-decoded-content-length": "5"}
    if trailer:
        headers["x-amz-trailer"] = trailer
    with pytest.raises(MalformedTrailerError, match="trailing data that was not well-formed"):
        read(body, headers, streaming_auth(PayloadMode.STREAMING_UNSIGNED_TRAILER, None))


def test_unsigned_trailer_without_any_trailer() -> None:
    body = b"B\r\nhello world\r\n0\r\n\r\n"
    data, reader = read(
        body,
        {"x-amz-decoded-content-length": "11"},
        streaming_auth(PayloadMode.STREAMING_UNSIGNED_TRAILER, None),
        1,
    )
    assert data == b"hello world" and reader.checksum is None


@pytest.mark.parametrize(
    "body",
    [
        b"A\ndummy data\r\n0\r\n\r\n",
        b"A\r\ndummy data0\r\n\r\n",
        b"A\r\nXYZ\r\ndummy data\r\n0\r\n\r\n",
        b"B\r\ndummy data\r\n0\r\n\r\n",
        b"A\r\ndummy data\r\n0\r\n",
        b"A\r\ndummy data\r\n0\r\nx-amz-checksum-crc64nvme:dPVWc2vU1+Q=\r\n",
        b"A\r\n",
        b"A\r\nA\r\ndummy data\r\n0\r\n\r\n",
        b"invalid_chunk_size\r\ndummy data\r\n0\r\nx-amz-checksum-crc64nvme:dPVWc2vU1+Q=\r\n\r\n",
        b"A\r\ndummy data\r\nJ\r\nx-amz-checksum-crc64nvme:dPVWc2vU1+Q=\r\n\r\n",
        b"0x0A\r\ndummy data\r\n0\r\n\r\n",
        b"+A\r\ndummy data\r\n0\r\n\r\n",
        b"",
    ],
)
def test_incomplete_or_garbled_framing(body: bytes) -> None:
    headers = {"x-amz-decoded-content-length": "10", "x-amz-trailer": "x-amz-checksum-crc64nvme"}
    with pytest.raises(IncompleteBody):
        read(body, headers, streaming_auth(PayloadMode.STREAMING_UNSIGNED_TRAILER, None), 3)


def test_oversized_chunk_header() -> None:
    headers = {"x-amz-decoded-content-length": "10"}
    auth = streaming_auth(PayloadMode.STREAMING_UNSIGNED_TRAILER, None)
    with pytest.raises(InvalidRequest, match="longer than 4096 bytes"):
        read(b"A;" + b"x" * 5000 + b"\r\ndummy data\r\n0\r\n\r\n", headers, auth, 1024)
    with pytest.raises(InvalidRequest, match="longer than"):  # an endless header, never a hang
        read(b"A" * 100_000, headers, auth, 1024)
    # A long but bounded extension is fine (unsigned chunks ignore extensions).
    ok = b"A;" + b"x" * 4000 + b"\r\ndummy data\r\n0\r\n\r\n"
    assert read(ok, headers, auth, 1024)[0] == b"dummy data"


def test_decoded_length_is_required_for_aws_chunked() -> None:
    auth = streaming_auth(PayloadMode.STREAMING_UNSIGNED_TRAILER, None)
    for headers in (
        {},
        {"x-amz-decoded-content-length": "abc"},
        {"x-amz-decoded-content-length": "-1"},
    ):
        with pytest.raises(MissingContentLength):
            PayloadReader(Receiver(b""), headers, auth)


def test_disconnect_in_the_middle_of_a_chunk() -> None:
    body = botocore_chunked(os.urandom(10_000), A.CRC32, 4096)
    with pytest.raises(IncompleteBody):
        read(
            body,
            unsigned_trailer_headers(b"x" * 10_000, A.CRC32),
            streaming_auth(PayloadMode.STREAMING_UNSIGNED_TRAILER, None),
            1000,
            disconnect_after=5,
        )


def test_chunk_data_inside_one_message_is_not_copied() -> None:
    data = os.urandom(1 << 20)
    body = botocore_chunked(data, A.CRC32)  # one 1 MiB chunk
    header_len = body.index(b"\r\n") + 2
    receive = Receiver(body, [header_len, 65536])
    reader = PayloadReader(
        receive,
        unsigned_trailer_headers(data, A.CRC32),
        streaming_auth(PayloadMode.STREAMING_UNSIGNED_TRAILER, None),
    )

    async def go() -> list[bytes]:
        return [p async for p in _pieces(reader)]

    pieces = asyncio.run(go())
    assert b"".join(pieces) == data
    bodies = {id(m["body"]) for m in receive.messages}
    assert sum(id(p) in bodies for p in pieces) >= 15  # all but the chunk's tail


# --- end to end with a boto3 client -------------------------------------------------------------
class Captured(Exception):
    pass


def test_boto3_put_object_end_to_end() -> None:
    client = boto3.client(
        "s3",
        endpoint_url="https://s3.example.test",
        region_name="us-east-1",
        aws_access_key_id="AKIDONSHORE",
        aws_secret_access_key="secret",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 0}),
    )

    def before_send(request: AWSPreparedRequest, **_: object) -> None:
        raise Captured(request)

    client.meta.events.register("before-send.s3", before_send)
    data = os.urandom(3 * 1024 * 1024 + 5)
    for algorithm in ("CRC32", "CRC32C", "CRC64NVME", "SHA256"):
        with pytest.raises(Captured) as caught:
            client.put_object(Bucket="b", Key="k", Body=data, ChecksumAlgorithm=algorithm)
        request: AWSPreparedRequest = caught.value.args[0]
        headers = {
            k.lower(): (v.decode() if isinstance(v, bytes) else v)
            for k, v in request.headers.items()
        }
        parts = urlsplit(request.url)
        auth = authenticate(
            request.method,
            parts.path,
            parts.query,
            headers,
            lookup=lambda _: "secret",
            region="us-east-1",
        )
        assert auth.payload_mode is PayloadMode.STREAMING_UNSIGNED_TRAILER
        body = request.body.read()
        result, reader = read(body, headers, auth, 65536)
        assert result == data
        alg = ChecksumAlgorithm(algorithm)
        assert reader.checksum == Checksum(alg, checksums.compute(alg, data))


def test_receive_type_accepts_plain_asgi_callables() -> None:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    typed: Receive = receive
    assert run_reader(PayloadReader(typed, {}, plain_auth())) == b""


# --- robustness: mangled bodies are refused with an S3 error (or, if unsigned, decoded) -------

_DATA = os.urandom(3000)
_SIGNED = signed_body(_DATA, 1024, [("x-amz-checksum-crc32", checksums.compute(A.CRC32, _DATA))])
_UNSIGNED = botocore_chunked(_DATA, A.CRC32, 1024)


@settings(max_examples=300, deadline=None)
@given(
    signed=st.booleans(),
    edits=st.lists(
        st.tuples(st.integers(0, len(_SIGNED)), st.integers(0, 3), st.binary(max_size=3)),
        max_size=3,
    ),
    cut=st.one_of(st.none(), st.integers(0, len(_SIGNED))),
    sizes=st.lists(st.integers(1, 2000), min_size=1, max_size=4),
)
def test_mangled_aws_chunked_bodies(
    signed: bool, edits: list[tuple[int, int, bytes]], cut: int | None, sizes: list[int]
) -> None:
    body = bytearray(_SIGNED if signed else _UNSIGNED)
    for position, length, replacement in edits:
        body[position : position + length] = replacement
    if cut is not None:
        del body[cut:]
    mode = (
        PayloadMode.STREAMING_SIGNED_TRAILER if signed else PayloadMode.STREAMING_UNSIGNED_TRAILER
    )
    headers = {
        "x-amz-decoded-content-length": str(len(_DATA)),
        "x-amz-trailer": "x-amz-checksum-crc32",
    }
    try:
        data, reader = read(bytes(body), headers, streaming_auth(mode), sizes)
    except S3Error:
        return
    # Whatever is accepted decodes to data whose checksum the (verified) trailer vouches for;
    # with signed chunks that can only be the original data.
    assert reader.checksum is not None
    assert reader.checksum.value == checksums.compute(A.CRC32, data)
    assert len(data) == len(_DATA)
    if signed:
        assert data == _DATA
