"""The load generator's HTTP/1.1 client against a loopback server that answers canned bytes,
delivered in awkward pieces: every framing the client must handle, and reconnection."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable, Iterator

import pytest

from onshore.bench.http import Connection, HttpError

Answer = Callable[[bytes, bytes], list[bytes]]  # (request head, request body) -> response pieces


async def _serve(answer: Answer, close_after: bool = False) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                for piece in answer(head, body):
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0.002)  # separate TCP segments, most of the time
                if close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def _run(coro_fn: Callable[[], object]) -> None:
    asyncio.run(asyncio.wait_for(coro_fn(), 20))  # type: ignore[arg-type]


def _bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def test_content_length_body_in_single_bytes() -> None:
    payload = bytes(range(256)) * 4

    async def main() -> None:
        response = b'HTTP/1.1 200 OK\r\nContent-Length: 1024\r\nETag: "abc"\r\n\r\n' + payload
        server, port = await _serve(lambda h, b: _bytewise(response[:80]) + [response[80:]])
        conn = Connection("127.0.0.1", port)
        for _ in range(2):  # and keep-alive: a second request on the same connection
            r = await conn.request(b"GET /b/k HTTP/1.1\r\nhost: x\r\n\r\n")
            assert (r.status, r.length, r.crc) == (200, 1024, zlib.crc32(payload))
            assert r.header("etag") == '"abc"' and r.header("ETAG") == '"abc"'
            assert r.body == b""  # not collected unless asked
        assert conn.connects == 1
        conn.close()
        server.close()

    _run(main)


def test_chunked_body_with_extensions_and_trailer() -> None:
    async def main() -> None:
        response = (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n"
        )
        pieces = [response[:30], response[30:47], *_bytewise(response[47:70]), response[70:]]
        server, port = await _serve(lambda h, b: pieces)
        conn = Connection("127.0.0.1", port)
        r = await conn.request(b"GET / HTTP/1.1\r\n\r\n", collect=True)
        assert r.body == b"hello world" and r.length == 11
        r = await conn.request(b"GET / HTTP/1.1\r\n\r\n", collect=True)
        assert r.body == b"hello world" and conn.connects == 1
        conn.close()
        server.close()

    _run(main)


def test_head_response_has_no_body_and_interim_100_is_skipped() -> None:
    async def main() -> None:
        def answer(head: bytes, body: bytes) -> list[bytes]:
            if head.startswith(b"HEAD"):
                return [b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n"]
            return [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 204 No Content\r\n\r\n"]

        server, port = await _serve(answer)
        conn = Connection("127.0.0.1", port)
        r = await conn.request(b"HEAD /b/k HTTP/1.1\r\n\r\n", head_only=True)
        assert (r.status, r.length, r.header("content-length")) == (200, 0, "4096")
        r = await conn.request(b"DELETE /b/k HTTP/1.1\r\n\r\n")
        assert r.status == 204
        assert conn.connects == 1
        conn.close()
        server.close()

    _run(main)


def test_connection_close_and_read_until_eof() -> None:
    async def main() -> None:
        server, port = await _serve(
            lambda h, b: [b"HTTP/1.0 200 OK\r\n\r\n", b"until ", b"the end"], close_after=True
        )
        conn = Connection("127.0.0.1", port)
        for _ in range(2):
            r = await conn.request(b"GET / HTTP/1.1\r\n\r\n", collect=True)
            assert r.body == b"until the end"
        assert conn.connects == 2  # the server closed: the client reconnected
        conn.close()
        server.close()

    _run(main)


def test_streamed_request_body_arrives_whole() -> None:
    received: list[bytes] = []

    def chunks() -> Iterator[bytes]:
        for i in range(64):
            yield bytes([i]) * 65536

    async def main() -> None:
        def answer(head: bytes, body: bytes) -> list[bytes]:
            received.append(body)
            return [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]

        server, port = await _serve(answer)
        conn = Connection("127.0.0.1", port)
        head = b"PUT /b/k HTTP/1.1\r\ncontent-length: %d\r\n\r\n" % (64 * 65536)
        r = await conn.request(head, chunks())
        assert r.status == 200
        conn.close()
        server.close()

    _run(main)
    assert received == [b"".join(chunks())]


def test_truncated_response_is_an_error() -> None:
    async def main() -> None:
        server, port = await _serve(
            lambda h, b: [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"], close_after=True
        )
        conn = Connection("127.0.0.1", port)
        with pytest.raises(HttpError):
            await conn.request(b"GET / HTTP/1.1\r\n\r\n")
        conn.close()
        server.close()

    _run(main)


def test_garbage_is_an_error() -> None:
    async def main() -> None:
        server, port = await _serve(lambda h, b: [b"SSH-2.0-OpenSSH\r\n\r\n"])
        conn = Connection("127.0.0.1", port)
        with pytest.raises(HttpError):
            await conn.request(b"GET / HTTP/1.1\r\n\r\n")
        conn.close()
        server.close()

    _run(main)
