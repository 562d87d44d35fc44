"""The request body reader: one interface over every way S3 clients send a body.

``x-amz-content-sha256`` (see :class:`~onshore.s3api.auth.sigv4.PayloadMode`) says how the body
is framed and protected:

* a hex SHA-256 (``SIGNED``) or ``UNSIGNED-PAYLOAD``: the body is sent as is; with a hash, S3
  recomputes it and answers ``XAmzContentSHA256Mismatch`` if it differs.
* ``STREAMING-*``: the body is ``aws-chunked`` encoded, a framing inside the HTTP body (on top of
  any HTTP ``Transfer-Encoding: chunked``) that carries per-chunk signatures and trailers::

      STREAMING-AWS4-HMAC-SHA256-PAYLOAD:
      10000;chunk-signature=<64 hex>\\r\\n <65536 bytes> \\r\\n
      400;chunk-signature=<64 hex>\\r\\n <1024 bytes> \\r\\n
      0;chunk-signature=<64 hex>\\r\\n \\r\\n          (the final, empty chunk)

      STREAMING-UNSIGNED-PAYLOAD-TRAILER:
      10000\\r\\n <65536 bytes> \\r\\n
      0\\r\\n
      x-amz-checksum-crc32:AAAAAA==\\r\\n         (trailer lines, as named by x-amz-trailer)
      \\r\\n

  ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`` combines both: signed chunks, then trailer lines
  and a last ``x-amz-trailer-signature:<64 hex>`` line signing them. Each chunk signature chains
  from the previous one, starting from the request's own signature (the *seed*), so chunks cannot
  be reordered, dropped or replaced. ``x-amz-decoded-content-length`` gives the decoded size.

On top of any mode a client may declare an *additional checksum* (:mod:`onshore.domain.checksums`)
in an ``x-amz-checksum-<algorithm>`` header, or as a trailer (``x-amz-trailer``), optionally
echoed by ``x-amz-sdk-checksum-algorithm``.

:class:`PayloadReader` hands out the decoded body piece by piece and checks everything -- framing,
lengths, chunk and trailer signatures, the SHA-256 and the additional checksum -- before it
reports the end of the body with ``b""``. A caller must therefore only commit what it stored
after ``read()`` has returned ``b""``. Pieces are the ASGI messages themselves whenever they lie
inside one chunk, so large bodies are not copied.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable, Mapping

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
from onshore.domain.numbers import decimal
from onshore.s3api.auth.sigv4 import EMPTY_SHA256, AuthResult, PayloadMode, SigningKeyInfo

#: The ASGI ``receive`` callable.
Receive = Callable[[], Awaitable[Mapping[str, object]]]

_MALFORMED_TRAILER = (
    "The request contained trailing data that was not well-formed or did not conform to our "
    "published schema."
)
_MULTIPLE_CHECKSUMS = (
    "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
)
_BAD_SDK_ALGORITHM = "Value for x-amz-sdk-checksum-algorithm header is invalid."
_TRUNCATED = "The aws-chunked body ended before its final chunk."
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_MAX_TRAILERS = 8
_CRLF = b"\r\n"


# States of the aws-chunked parser.
_HEADER = 1  # expecting "hex-size[;chunk-signature=...]\r\n"
_DATA = 2  # inside a chunk's data
_DATA_END = 3  # expecting the "\r\n" after a chunk's data
_TRAILER = 4  # after the final chunk: trailer lines up to an empty line
_END = 5  # the aws-chunked body is complete


def _length(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    length = decimal(value.strip())
    if length is None:
        raise InvalidRequest(f"The {name} header is not a valid length.")
    return length


def _checksum_plan(
    headers: Mapping[str, str], trailer_mode: bool
) -> tuple[ChecksumAlgorithm | None, bytes | None, str | None]:
    """Which checksum the request declares: (algorithm, expected digest from a header, trailer).

    The expected digest is None when the value comes in a trailer, or when only
    ``x-amz-sdk-checksum-algorithm`` names an algorithm (it is then computed, not verified).
    """
    in_headers: list[tuple[ChecksumAlgorithm, str]] = []
    for name in headers:
        if name.startswith(checksums.HEADER_PREFIX) and name not in checksums.NON_VALUE_HEADERS:
            alg = checksums.algorithm_for_header(name)
            if alg is None:
                raise InvalidRequest(
                    "The algorithm type you specified in x-amz-checksum- header is invalid."
                )
            in_headers.append((alg, headers[name]))

    trailer: str | None = None
    trailer_alg: ChecksumAlgorithm | None = None
    declared = headers.get("x-amz-trailer")
    if declared is not None and (declared := declared.strip()):
        if "," in declared:
            raise InvalidRequest(_MULTIPLE_CHECKSUMS)
        trailer = declared.lower()
        trailer_alg = checksums.algorithm_for_header(trailer)
        if trailer_alg is None or not trailer_mode:
            raise InvalidRequest("The value specified in the x-amz-trailer header is not supported")

    if len(in_headers) + (trailer_alg is not None) > 1:
        raise InvalidRequest(_MULTIPLE_CHECKSUMS)
    algorithm = in_headers[0][0] if in_headers else trailer_alg

    sdk = headers.get("x-amz-sdk-checksum-algorithm")
    if sdk is not None:
        sdk_alg = checksums.algorithm_from_name(sdk)
        if sdk_alg is None or (algorithm is not None and sdk_alg is not algorithm):
            raise InvalidRequest(_BAD_SDK_ALGORITHM)
        algorithm = sdk_alg

    expected: bytes | None = None
    if in_headers:
        alg, value = in_headers[0]
        expected = checksums.decode(alg, value)
        if expected is None:
            raise InvalidRequest(f"Value for {checksums.header_name(alg)} header is invalid.")
    return algorithm, expected, trailer


class PayloadReader:
    """Reads, decodes and verifies a request body (see the module docstring).

    ``bytes_received`` counts the raw body bytes taken off the wire so far.
    """

    __slots__ = (
        "_algorithm",
        "_blank_skipped",
        "_data",
        "_checksum",
        "_chunk_left",
        "_chunk_sha",
        "_chunk_sig",
        "_chunked",
        "_content_length",
        "_decoded",
        "_decoded_length",
        "_done",
        "_error",
        "_expected_digest",
        "_expected_sha256",
        "_hasher",
        "_body_hashers",
        "_input_done",
        "_max_header",
        "_mode",
        "_pos",
        "_prev_sig",
        "_receive",
        "_sha256",
        "_signed_chunks",
        "_signing",
        "_state",
        "_trailer_mode",
        "_trailer_name",
        "_trailer_sig",
        "_trailers",
        "bytes_received",
    )

    def __init__(
        self,
        receive: Receive,
        headers: Mapping[str, str],
        auth: AuthResult,
        *,
        max_chunk_header: int = 4096,
    ) -> None:
        mode = auth.payload_mode
        self._receive = receive
        self._mode = mode
        self._chunked = mode.chunked
        self._signed_chunks = mode in (
            PayloadMode.STREAMING_SIGNED,
            PayloadMode.STREAMING_SIGNED_TRAILER,
        )
        self._trailer_mode = mode in (
            PayloadMode.STREAMING_SIGNED_TRAILER,
            PayloadMode.STREAMING_UNSIGNED_TRAILER,
        )
        self._signing: SigningKeyInfo | None = auth.signing
        if self._signed_chunks and self._signing is None:
            raise InvalidRequest(f"{mode.value} requires a signed request.")
        self._max_header = max(64, max_chunk_header)
        self._content_length = _length(headers.get("content-length"), "Content-Length")
        if self._chunked:
            try:
                decoded = _length(headers.get("x-amz-decoded-content-length"), "")
            except InvalidRequest:
                decoded = None
            if decoded is None:
                raise MissingContentLength(
                    "You must provide the x-amz-decoded-content-length header for an "
                    "aws-chunked body."
                )
            self._decoded_length: int | None = decoded
        else:
            self._decoded_length = self._content_length
        self._sha256 = hashlib.sha256() if mode is PayloadMode.SIGNED else None
        self._expected_sha256 = auth.content_sha256
        self._algorithm, self._expected_digest, self._trailer_name = _checksum_plan(
            headers, self._trailer_mode
        )
        self._hasher = (
            checksums.new_hasher(self._algorithm) if self._algorithm is not None else None
        )
        self._body_hashers: tuple[checksums.Hasher, ...] = tuple(
            h for h in (self._sha256, self._hasher) if h is not None
        )
        self._checksum: Checksum | None = None
        self.bytes_received = 0
        self._decoded = 0
        self._data = b""  # the input being parsed (aws-chunked), from offset _pos
        self._pos = 0
        self._input_done = False
        self._done = False
        self._error: S3Error | None = None
        self._state = _HEADER
        self._chunk_left = 0
        self._chunk_sha: hashlib._Hash | None = None
        self._chunk_sig = ""
        self._prev_sig = self._signing.seed_signature if self._signing is not None else ""
        self._trailers: list[tuple[str, str]] = []
        self._trailer_sig: str | None = None
        self._blank_skipped = False

    # --- public ---------------------------------------------------------------------------------
    @property
    def checksum(self) -> Checksum | None:
        """After the end of the body: the verified (or, if only an algorithm was named, the
        computed) additional checksum; None if the request declared none."""
        return self._checksum if self._done else None

    @property
    def decoded_length(self) -> int | None:
        """The decoded body length declared up front, if any."""
        return self._decoded_length

    async def read(self) -> bytes:
        """Next piece of the decoded body (never empty), or ``b""`` once the whole body has been
        received and verified. Errors are :class:`S3Error`; once raised, every later call raises
        the same error."""
        if self._error is not None:
            raise self._error
        if self._done:
            return b""
        try:
            if self._chunked:
                return await self._read_chunked()
            return await self._read_plain()
        except S3Error as exc:
            self._error = exc
            raise

    async def read_all(self, limit: int) -> bytes:
        """The whole decoded body (for XML documents); more than ``limit`` bytes raises
        :class:`MaxMessageLengthExceeded`."""
        if self._decoded_length is not None and self._decoded_length > limit:
            raise MaxMessageLengthExceeded()
        parts: list[bytes] = []
        total = 0
        while piece := await self.read():
            total += len(piece)
            if total > limit:
                raise MaxMessageLengthExceeded()
            parts.append(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    # --- input ----------------------------------------------------------------------------------
    async def _next_body(self) -> bytes:
        message = await self._receive()
        kind = message.get("type")
        if kind == "http.request":
            body = message.get("body", b"")
            if not message.get("more_body", False):
                self._input_done = True
            if not isinstance(body, bytes):
                body = bytes(body) if isinstance(body, bytearray | memoryview) else b""
            self.bytes_received += len(body)
            return body
        self._input_done = True
        raise IncompleteBody(
            "The connection was closed before the whole request body was received."
        )

    def _take(self, piece: bytes) -> None:
        self._decoded += len(piece)
        if self._chunk_sha is not None:
            self._chunk_sha.update(piece)
        if self._hasher is not None:
            self._hasher.update(piece)

    # --- plain bodies ---------------------------------------------------------------------------
    async def _read_plain(self) -> bytes:
        while not self._input_done:
            body = await self._next_body()
            if body:
                self._decoded += len(body)
                if self._content_length is not None and self._decoded > self._content_length:
                    raise IncompleteBody("The request body is longer than its Content-Length.")
                if self._sha256 is not None or self._hasher is not None:
                    checksums.update_on_loop(self._body_hashers, body)
                return body
        if self._content_length is not None and self._decoded != self._content_length:
            raise IncompleteBody()
        if self._sha256 is not None:
            computed = self._sha256.hexdigest()
            if not hmac.compare_digest(computed, self._expected_sha256 or ""):
                raise XAmzContentSHA256Mismatch(
                    ClientComputedContentSHA256=self._expected_sha256 or "",
                    S3ComputedContentSHA256=computed,
                )
        self._finish_checksum(self._expected_digest)
        self._done = True
        return b""

    # --- aws-chunked bodies ---------------------------------------------------------------------
    async def _read_chunked(self) -> bytes:
        while True:
            piece = self._step()
            if piece is not None:
                return piece
            if self._state == _END:
                await self._drain()
                self._finish_chunked()
                self._done = True
                return b""
            if self._input_done:
                raise IncompleteBody(_TRUNCATED)
            body = await self._next_body()
            if body:
                if self._pos < len(self._data):  # a control line or CRLF spans two messages
                    self._data = self._data[self._pos :] + body
                else:
                    self._data = body
                self._pos = 0

    def _step(self) -> bytes | None:
        """Advance through the input: a decoded piece, or None when more input is needed (or
        the body is complete: state _END). Data pieces are slices of the input, or the input
        message itself when it lies inside one chunk."""
        while True:
            state = self._state
            if state == _DATA:
                left = self._chunk_left
                if left:
                    data, pos = self._data, self._pos
                    avail = len(data) - pos
                    if not avail:
                        return None
                    # The whole message when it lies inside the chunk: no copy.
                    piece = data if pos == 0 and avail <= left else data[pos : pos + left]
                    self._pos = pos + len(piece)
                    self._chunk_left = left - len(piece)
                    self._take(piece)
                    return piece
                self._state = _DATA_END
            elif state == _DATA_END:
                data, pos = self._data, self._pos
                if len(data) - pos < 2:
                    return None
                if data[pos] != 13 or data[pos + 1] != 10:
                    raise IncompleteBody("An aws-chunked chunk is longer than its declared size.")
                self._pos = pos + 2
                if self._chunk_sha is not None:
                    self._check_chunk_signature(self._chunk_sha.hexdigest())
                self._state = _HEADER
            elif state == _HEADER:
                line = self._line()
                if line is None:
                    return None
                self._start_chunk(line)
            elif state == _TRAILER:
                if not self._trailer_step():
                    return None
            else:
                return None

    def _line(self) -> bytes | None:
        data, pos = self._data, self._pos
        limit = self._max_header + 2
        idx = data.find(_CRLF, pos, pos + limit)
        if idx < 0:
            if len(data) - pos >= limit:
                raise InvalidRequest(
                    f"An aws-chunked chunk header or trailer is longer than "
                    f"{self._max_header} bytes."
                )
            return None
        self._pos = idx + 2
        return data[pos:idx]

    def _start_chunk(self, line: bytes) -> None:
        size_part, _, extension = line.partition(b";")
        size_part = size_part.strip(b" \t")
        if not _HEX.fullmatch(size_part):
            raise IncompleteBody("An aws-chunked chunk header is malformed.")
        size = int(size_part, 16)
        if self._signed_chunks:
            extension = extension.strip(b" \t")
            if not extension.startswith(b"chunk-signature="):
                raise SignatureDoesNotMatch("An aws-chunked chunk has no chunk-signature.")
            self._chunk_sig = extension[16:].decode("ascii", "replace")
            self._chunk_sha = hashlib.sha256() if size else None
        assert self._decoded_length is not None
        if size > self._decoded_length - self._decoded:
            raise IncompleteBody(
                "The aws-chunked body is longer than its x-amz-decoded-content-length."
            )
        if size:
            self._chunk_left = size
            self._state = _DATA
            return
        if self._decoded != self._decoded_length:
            raise IncompleteBody(
                "The aws-chunked body is shorter than its x-amz-decoded-content-length."
            )
        if self._signed_chunks:
            self._check_chunk_signature(EMPTY_SHA256)
        self._state = _TRAILER

    def _check_chunk_signature(self, chunk_sha256: str) -> None:
        assert self._signing is not None
        expected = self._signing.chunk_signature(self._prev_sig, chunk_sha256)
        if not hmac.compare_digest(expected.encode("ascii"), self._chunk_sig.encode("utf-8")):
            raise SignatureDoesNotMatch(
                "The chunk signature we calculated does not match the signature you provided."
            )
        self._prev_sig = expected
        self._chunk_sha = None

    def _trailer_step(self) -> bool:
        """Consume one trailer line; False if more input is needed to decide."""
        data, pos = self._data, self._pos
        if data.startswith(_CRLF, pos):
            first = not self._trailers and self._trailer_sig is None and not self._blank_skipped
            if self._trailer_mode and first:
                # Some clients (and AWS's own example) put the empty final chunk's CRLF before
                # the trailer lines. Tell that apart from "no trailers" by what follows.
                if len(data) - pos > 2:
                    self._pos = pos + 2
                    self._blank_skipped = True
                    return True
                if not self._input_done:
                    return False
            self._pos = pos + 2
            self._state = _END
            return True
        line = self._line()
        if line is None:
            return False
        self._add_trailer(line)
        return True

    def _add_trailer(self, line: bytes) -> None:
        name_b, colon, value_b = line.partition(b":")
        if (
            not colon
            or not self._trailer_mode
            or self._trailer_sig is not None
            or len(self._trailers) >= _MAX_TRAILERS
            or not line.isascii()
        ):
            raise MalformedTrailerError(_MALFORMED_TRAILER)
        name = name_b.decode("ascii").strip().lower()
        value = value_b.decode("ascii").strip()
        if not name:
            raise MalformedTrailerError(_MALFORMED_TRAILER)
        if name == "x-amz-trailer-signature":
            if not self._signed_chunks:
                raise MalformedTrailerError(_MALFORMED_TRAILER)
            self._trailer_sig = value
            return
        self._trailers.append((name, value))

    async def _drain(self) -> None:
        """After the final chunk: the input must end, with nothing more in it."""
        while True:
            if self._pos < len(self._data):
                raise InvalidRequest(
                    "The request body continues after its final aws-chunked chunk."
                )
            if self._input_done:
                return
            self._data = await self._next_body()
            self._pos = 0

    def _finish_chunked(self) -> None:
        if self._content_length is not None and self.bytes_received != self._content_length:
            raise IncompleteBody()
        names = [name for name, _ in self._trailers]
        if names != ([self._trailer_name] if self._trailer_name else []):
            raise MalformedTrailerError(_MALFORMED_TRAILER)
        if self._signed_chunks and self._trailer_mode:
            assert self._signing is not None
            if self._trailer_sig is None:
                if self._trailers:
                    raise SignatureDoesNotMatch("The trailer is not signed.")
            else:
                canonical = b"".join(f"{n}:{v}\n".encode("ascii") for n, v in self._trailers)
                expected = self._signing.trailer_signature(self._prev_sig, canonical)
                given = self._trailer_sig.encode("ascii")
                if not hmac.compare_digest(expected.encode("ascii"), given):
                    raise SignatureDoesNotMatch(
                        "The trailer signature we calculated does not match the signature you "
                        "provided."
                    )
        digest = self._expected_digest
        if self._trailers:
            name, value = self._trailers[0]
            assert self._algorithm is not None
            digest = checksums.decode(self._algorithm, value)
            if digest is None:
                raise InvalidRequest(f"Value for {name} trailing header is invalid.")
        self._finish_checksum(digest)

    def _finish_checksum(self, expected: bytes | None) -> None:
        if self._algorithm is None or self._hasher is None:
            return
        computed = self._hasher.digest()
        if expected is not None and not hmac.compare_digest(computed, expected):
            raise BadDigest(
                f"The {self._algorithm.value} you specified did not match the calculated checksum."
            )
        self._checksum = Checksum(self._algorithm, checksums.encode(computed))


__all__ = ["PayloadReader", "Receive"]
