"""onshore's HTTP/1.1 protocol on a stand-in transport: what the API tests cannot easily force
(flow control, an application that fails, a client that goes away mid-request)."""

from __future__ import annotations

import asyncio
import functools
import types
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from onshore.s3api import protocol as http_protocol
from onshore.s3api.protocol import S3HttpProtocol

Message = dict[str, Any]
App = Callable[
    [Any, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]


class Transport:
    def __init__(self) -> None:
        self.out = b""
        self.closed = False
        self.reading = True
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.out += data
        self.writes += 1

    def writelines(self, data: list[bytes]) -> None:
        self.out += b"".join(data)
        self.writes += 1

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"sockname": ("127.0.0.1", 9000), "peername": ("10.0.0.7", 5000)}.get(name)


def server_state() -> Any:
    """uvicorn's state of one server, shared by its connections."""
    return types.SimpleNamespace(
        connections=set(), tasks=set(), default_headers=[(b"date", b"today")], total_requests=0
    )


def connect(app: App, state: Any = None) -> tuple[S3HttpProtocol, Transport]:
    config = types.SimpleNamespace(loaded=True, loaded_app=app)
    state = state or server_state()
    proto = S3HttpProtocol(config, state, {})
    transport = Transport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    return proto, transport


def run_on_loop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh event loop (the test suite has no asyncio plugin)."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return wrapper


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def respond(body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> App:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": headers or [(b"Content-Length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


@run_on_loop
async def test_small_response_is_one_write_with_the_scope_filled_in() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)
        await respond(b"hello")(scope, receive, send)

    proto, transport = connect(app)
    proto.data_received(
        b"GET /b/some%20key?list-type=2 HTTP/1.1\r\nHost: x\r\nX-Amz-Date: d\r\n\r\n"
    )
    await settle()
    assert transport.writes == 1
    assert transport.out.startswith(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ndate: today\r\n")
    assert transport.out.endswith(b"\r\n\r\nhello")
    scope = seen[0]
    assert (scope["method"], scope["path"], scope["raw_path"]) == (
        "GET",
        "/b/some key",
        b"/b/some%20key",
    )
    assert scope["query_string"] == b"list-type=2"
    assert scope["headers"] == [(b"host", b"x"), (b"x-amz-date", b"d")]
    assert scope["client"] == ("10.0.0.7", 5000) and scope["server"] == ("127.0.0.1", 9000)
    assert not transport.closed


@run_on_loop
async def test_a_large_body_pauses_reading_until_the_application_reads_it() -> None:
    gate = asyncio.Event()
    received: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await gate.wait()
        while True:
            message = await receive()
            received.append(message["body"])
            if not message["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    proto, transport = connect(app)
    size = 200_000
    proto.data_received(f"PUT /b/k HTTP/1.1\r\nContent-Length: {size}\r\n\r\n".encode())
    for _ in range(4):
        proto.data_received(b"x" * (size // 4))
    assert not transport.reading  # 64 KiB and more buffered: the socket is not read further
    gate.set()
    await settle()
    assert b"".join(received) == b"x" * size
    assert transport.reading and transport.out.startswith(b"HTTP/1.1 200")


@run_on_loop
async def test_an_application_failure_before_the_response_is_a_500_and_a_closed_connection() -> (
    None
):
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("bug")

    proto, transport = connect(app)
    proto.data_received(b"GET / HTTP/1.1\r\n\r\n")
    await settle()
    assert (
        transport.out.startswith(b"HTTP/1.1 500") and b"<Code>InternalError</Code>" in transport.out
    )
    assert transport.closed


@run_on_loop
async def test_a_header_value_with_a_line_break_never_reaches_the_wire() -> None:
    app = respond(b"", [(b"content-length", b"0"), (b"x-evil", b"a\r\nx-injected: 1")])
    proto, transport = connect(app)
    proto.data_received(b"GET / HTTP/1.1\r\n\r\n")
    await settle()
    assert b"x-injected" not in transport.out and transport.out.startswith(b"HTTP/1.1 500")
    assert transport.closed


@run_on_loop
async def test_a_client_gone_mid_body_is_a_disconnect_for_the_application() -> None:
    messages: list[Message] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        messages.append(await receive())
        messages.append(await receive())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"never sent"})

    proto, transport = connect(app)
    proto.data_received(b"PUT /b/k HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345")
    await settle()
    proto.connection_lost(None)
    await settle()
    assert messages == [
        {"type": "http.request", "body": b"12345", "more_body": True},
        {"type": "http.disconnect"},
    ]
    assert transport.out == b""


@run_on_loop
async def test_a_response_without_length_is_chunked() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    proto, transport = connect(app)
    proto.data_received(b"GET / HTTP/1.1\r\n\r\n")
    await settle()
    assert b"transfer-encoding: chunked\r\n" in transport.out
    assert transport.out.endswith(b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n")


@run_on_loop
async def test_idle_and_slow_connections_are_swept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        http_protocol, "LIMITS", http_protocol.Limits(header_timeout=0.2, idle_timeout=0.2)
    )
    state = server_state()
    idle, idle_transport = connect(respond(b""), state)
    slow, slow_transport = connect(respond(b""), state)
    slow.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and the rest never comes
    await asyncio.sleep(0.5)
    assert idle_transport.closed and idle_transport.out == b""
    assert slow_transport.closed and slow_transport.out.startswith(b"HTTP/1.1 408")
