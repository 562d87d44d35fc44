"""A minimal HTTP/1.1 client on an asyncio ``Protocol``: one keep-alive connection per load task.

Why not a library? A load generator must cost less per request than the server it measures. The
general clients (``http.client`` in threads, aiohttp, httpx) spend tens of microseconds per request
on things a benchmark does not need: header objects, cookie jars, redirects, pools, locks. This
client does exactly one thing: write a pre-built request head (plus an optional body), parse the
response status line and headers with a few ``bytes`` operations, and hand the body to a sink as it
arrives. ``benchmarks/client_choice.py`` measures it against ``http.client`` in threads on the same
machine.

Body framing follows RFC 9112 section 6.3: no body for HEAD, 1xx, 204 and 304; ``chunked`` when the
server says so; else ``Content-Length``; else until the server closes. A response that says
``Connection: close`` (or comes from an HTTP/1.0 server) closes the connection afterwards, and the
next request transparently reconnects.

Response bodies are never stored unless asked (``collect=True``, used for XML listings): each chunk
updates a CRC-32 and a byte count, so a 512 MiB GET costs constant memory and the checksum is
verified without a second pass.
"""

from __future__ import annotations

import asyncio
import socket
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

Body = bytes | bytearray | memoryview
_MAX_HEAD = 64 * 1024
_SMALL_WRITE = 64 * 1024

_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILER, _UNTIL_EOF, _DONE = range(8)


class HttpError(Exception):
    """The connection broke or the server spoke something that is not HTTP/1.1."""


@dataclass(slots=True)
class Response:
    """What the benchmark needs from a response: the status, the raw head (headers are looked up
    on demand, most responses never need them), and the body's size and CRC."""

    status: int
    head: bytes
    length: int = 0
    crc: int = 0
    body: bytes = b""

    def header(self, name: str, default: str = "") -> str:
        """The value of header ``name`` (case-insensitive), or ``default``."""
        value = _find_header(self.head, self.head.lower(), name.lower().encode("latin-1"))
        return default if value is None else value.decode("latin-1")


def _find_header(head: bytes, lower: bytes, name: bytes) -> bytes | None:
    """Look ``name`` (lower-case) up in a raw head; ``lower`` is ``head.lower()``."""
    start = lower.find(b"\r\n" + name + b":")
    if start < 0:
        return None
    start += len(name) + 3
    end = head.find(b"\r\n", start)
    return head[start : end if end >= 0 else len(head)].strip()


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[Response]
    head_only: bool
    collect: bool
    response: Response | None = None
    chunks: list[bytes] = field(default_factory=list)


class _Protocol(asyncio.Protocol):
    """Parses responses as bytes arrive and resolves the pending request's future."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.keep_alive = True
        self._buf = bytearray()
        self._state = _DONE
        self._remaining = 0
        self._pending: _Pending | None = None
        self._can_write: asyncio.Event = asyncio.Event()
        self._can_write.set()

    # -- asyncio.Protocol callbacks -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._can_write.set()
        pending = self._pending
        if pending is None or pending.future.done():
            return
        if self._state == _UNTIL_EOF:
            self._finish()
        else:
            pending.future.set_exception(HttpError(f"connection lost: {exc or 'closed by server'}"))

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    def data_received(self, data: bytes) -> None:
        if self._pending is None or self._state == _DONE:
            if data:
                self._fail("bytes received with no request outstanding")
            return
        try:
            if self._state == _HEAD and not self._buf:
                end = data.find(b"\r\n\r\n")
                if end >= 0:  # the usual case: the whole head (often the whole response) at once
                    self._parse_head(data[:end])
                    if self._state == _DONE:
                        self._finish()
                        return
                    data = data[end + 4 :]
                    if not data:
                        return
            self._feed(memoryview(data))
        except (ValueError, IndexError) as exc:
            self._fail(f"malformed response: {exc}")

    # -- parsing -------------------------------------------------------------------------------
    def expect(self, pending: _Pending) -> None:
        self._pending = pending
        self._state = _HEAD
        self._buf.clear()

    def _fail(self, why: str) -> None:
        pending = self._pending
        if pending is not None and not pending.future.done():
            pending.future.set_exception(HttpError(why))
        self.keep_alive = False
        if self.transport is not None:
            self.transport.abort()

    def _body(self, chunk: memoryview) -> None:
        pending = self._pending
        assert pending is not None and pending.response is not None
        response = pending.response
        response.length += len(chunk)
        response.crc = zlib.crc32(chunk, response.crc)
        if pending.collect:
            pending.chunks.append(bytes(chunk))

    def _finish(self) -> None:
        pending = self._pending
        assert pending is not None and pending.response is not None
        self._state = _DONE
        if pending.collect:
            pending.response.body = b"".join(pending.chunks)
        if not pending.future.done():
            pending.future.set_result(pending.response)

    def _feed(self, data: memoryview) -> None:
        while True:
            state = self._state
            if state == _HEAD:
                self._buf += data
                end = self._buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(self._buf) > _MAX_HEAD:
                        raise ValueError("response head too large")
                    return
                rest = bytes(self._buf[end + 4 :])
                self._parse_head(bytes(self._buf[:end]))
                self._buf.clear()
                data = memoryview(rest)
                if self._state == _DONE:
                    self._finish()
                    return
                if not data:
                    return
            elif state == _LENGTH:
                take = min(self._remaining, len(data))
                self._body(data[:take])
                self._remaining -= take
                if self._remaining == 0:
                    self._finish()
                    return
                return
            elif state == _UNTIL_EOF:
                self._body(data)
                return
            elif state == _CHUNK_DATA:
                take = min(self._remaining, len(data))
                self._body(data[:take])
                self._remaining -= take
                data = data[take:]
                if self._remaining:
                    return
                self._state = _CHUNK_CRLF
                self._buf.clear()
            elif state in (_CHUNK_SIZE, _CHUNK_CRLF, _TRAILER):
                self._buf += data
                data = memoryview(b"")
                if not self._chunk_control():
                    return
                data = memoryview(bytes(self._buf))
                self._buf.clear()
                if self._state == _DONE:
                    self._finish()
                    return
            else:
                return

    def _chunk_control(self) -> bool:
        """Consume one control line of a chunked body from ``_buf``; False if more bytes are
        needed."""
        buf = self._buf
        if self._state == _CHUNK_CRLF:
            if len(buf) < 2:
                return False
            if buf[:2] != b"\r\n":
                raise ValueError("missing CRLF after chunk")
            del buf[:2]
            self._state = _CHUNK_SIZE
            return True
        if self._state == _TRAILER:
            end = buf.find(b"\r\n")
            if end < 0:
                return False
            del buf[: end + 2]
            self._state = _DONE if end == 0 else _TRAILER
            return True
        end = buf.find(b"\r\n")
        if end < 0:
            if len(buf) > 1024:
                raise ValueError("chunk size line too long")
            return False
        size = int(bytes(buf[:end]).split(b";", 1)[0].strip(), 16)
        del buf[: end + 2]
        if size == 0:
            self._state = _TRAILER
        else:
            self._state = _CHUNK_DATA
            self._remaining = size
        return True

    def _parse_head(self, head: bytes) -> None:
        pending = self._pending
        assert pending is not None
        if not head.startswith(b"HTTP/1."):
            raise ValueError(f"bad status line {head[:40]!r}")
        status = int(head[9:12])
        lower = head.lower()
        pending.response = Response(status, head)
        connection = _find_header(head, lower, b"connection")
        if head.startswith(b"HTTP/1.0"):
            self.keep_alive = connection is not None and connection.lower() == b"keep-alive"
        elif connection is not None and connection.lower() == b"close":
            self.keep_alive = False
        if 100 <= status < 200:  # an interim response: the real one follows
            self._state = _HEAD
            return
        if pending.head_only or status in (204, 304):
            self._state = _DONE
            return
        encoding = _find_header(head, lower, b"transfer-encoding")
        length = _find_header(head, lower, b"content-length")
        if encoding is not None and b"chunked" in encoding.lower():
            self._state = _CHUNK_SIZE
        elif length is not None:
            self._remaining = int(length)
            self._state = _LENGTH if self._remaining else _DONE
        else:
            self.keep_alive = False
            self._state = _UNTIL_EOF


class Connection:
    """One keep-alive connection to ``host:port``, reconnecting when the server closed it.

    Use one ``Connection`` per concurrent task: requests on a connection are strictly sequential
    (no pipelining), which is what S3 clients do.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._proto: _Protocol | None = None
        self.connects = 0

    async def _ensure(self) -> _Protocol:
        proto = self._proto
        if proto is None or proto.closed or not proto.keep_alive:
            if proto is not None and proto.transport is not None:
                proto.transport.close()
            loop = asyncio.get_running_loop()
            _, proto = await loop.create_connection(_Protocol, self.host, self.port)
            self._proto = proto
            self.connects += 1
        return proto

    async def connect(self) -> None:
        """Open the connection now, so that the first timed request does not pay for it."""
        await self._ensure()

    def close(self) -> None:
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
        self._proto = None

    async def request(
        self,
        head: bytes,
        body: Body | Iterable[Body] | None = None,
        *,
        head_only: bool = False,
        collect: bool = False,
    ) -> Response:
        """Send ``head`` (the request line and headers, ``\\r\\n\\r\\n`` included) and ``body``.

        ``body`` is either one buffer or an iterable of buffers written as they are produced, with
        the transport's flow control respected, so a stream never accumulates in memory. The caller
        puts the matching ``Content-Length`` in ``head``.
        """
        proto = await self._ensure()
        transport = proto.transport
        assert transport is not None
        loop = asyncio.get_running_loop()
        pending = _Pending(loop.create_future(), head_only, collect)
        proto.expect(pending)
        try:
            if body is None:
                transport.write(head)
            elif isinstance(body, bytes | bytearray | memoryview):
                if len(body) <= _SMALL_WRITE:
                    transport.write(head + body)
                else:
                    transport.write(head)
                    transport.write(body)
            else:
                transport.write(head)
                for chunk in body:
                    if pending.future.done() or proto.closed:
                        proto.keep_alive = False  # the server answered early: body unfinished
                        break
                    transport.write(chunk)
                    if not proto._can_write.is_set():
                        await proto._can_write.wait()
            return await pending.future
        except BaseException:
            self.close()
            raise
