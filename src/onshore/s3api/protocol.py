"""The HTTP/1.1 server protocol: httptools parsing, one ASGI call per request, limits against abuse.

uvicorn still runs the server (sockets, worker processes, signals, graceful shutdown, lifespan);
this module is the per-connection protocol it is given (``http=S3HttpProtocol``), in place of
uvicorn's own. Per request, uvicorn's protocol cost about 40 µs of server CPU here, as much as
onshore's whole S3 HEAD handling: a scope of ten entries, an ``asyncio.Event`` and a
request-response object per request, two regular-expression searches per response header, a timer
created and cancelled per request, and the response head and body written by two ``write`` calls
(two system calls and two packets for a small object). This protocol does the same work with
less: the head is held back until the first body piece and both go out in one ``writelines``,
headers are validated with one search over all names and one over all values, the receive side
waits on a bare future only when no body is buffered, and timeouts are enforced by one sweep per
second over the process's connections instead of a timer per request.

What it does, as a serious HTTP/1.1 server must:

* **Keep-alive and pipelining**: requests on a connection are answered in order; a request that
  arrives while the previous one is being answered waits, and reading pauses until it starts.
* **Flow control both ways**: reading pauses when more than 64 KiB of a request body is buffered
  and resumes when the application reads it; ``send`` waits while the socket's write buffer is
  above its high-water mark.
* **Expect: 100-continue**: ``100 Continue`` is sent when the application first reads the body,
  never before, so a request refused early (bad signature, no such bucket) never invites a body;
  the connection is then closed after the answer, since the client's next bytes could be that
  body.
* **Errors**: malformed HTTP is answered ``400`` and the connection closed; an application that
  fails before its response is answered ``500`` (an S3 ``InternalError``), after it the connection
  is cut, so the client sees a short body rather than a wrong one.

And the limits uvicorn does not enforce, so a hostile client cannot hold memory or connections:

* **Request line**: a URL longer than ``max_url_bytes`` is answered ``414`` and the connection
  closed, while it is still being received.
* **Header section**: more than ``max_header_bytes`` of headers is answered ``400
  RequestHeaderSectionTooLarge``, again while it is still being received (the app checks the same
  limit once more on the parsed headers).
* **Slow headers** (slowloris): a request whose headers are not complete within
  ``header_timeout`` seconds is answered ``408`` and closed, however steadily the bytes trickle.
* **Idle connections**: a connection with no request in progress is closed after
  ``idle_timeout`` seconds.
* **Too many connections**: when a new connection brings the process within 10% of
  ``max_connections``, the connections idle for longest (no request in progress) are closed to
  make room: idle ones are shed, working ones keep going (closing an idle keep-alive connection is
  ordinary HTTP; clients reconnect). Requests beyond ``max_connections`` in progress at once are
  answered ``503 SlowDown``.

Slow bodies are the application's business (``body_timeout``, ``RequestTimeout``).
"""

from __future__ import annotations

import asyncio
import http
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from itertools import islice
from typing import Any
from urllib.parse import unquote

import httptools

__all__ = ["Limits", "S3HttpProtocol", "configure"]

log = logging.getLogger("onshore.http")

Message = MutableMapping[str, Any]
App = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[Message]],
        Callable[[Message], Awaitable[None]],
    ],
    Awaitable[None],
]


@dataclass(slots=True)
class Limits:
    max_url_bytes: int = 8192
    max_header_bytes: int = 16384
    header_timeout: float = 15.0
    idle_timeout: float = 30.0
    max_connections: int = 4096

    @property
    def shed_above(self) -> int:
        """Connection count above which the longest-idle connections are closed."""
        return max(1, self.max_connections - max(1, self.max_connections // 10))

    @property
    def sweep_every(self) -> float:
        """Seconds between two checks of the connections' deadlines."""
        return max(0.05, min(1.0, self.header_timeout / 4, self.idle_timeout / 4))


LIMITS = Limits()


def configure(limits: Limits) -> None:
    """Set the limits for connections accepted by this process."""
    global LIMITS
    LIMITS = limits


def _error(status: int, code: str, message: str) -> bytes:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    return (
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
        f"content-type: application/xml\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


URL_TOO_LONG = _error(414, "InvalidURI", "The request URI is too long.")
HEADERS_TOO_LARGE = _error(
    400,
    "RequestHeaderSectionTooLarge",
    "Your request header section exceeds the maximum allowed size.",
)
HEADERS_TOO_SLOW = _error(
    408,
    "RequestTimeout",
    "Your socket connection to the server was not read from or written to within the "
    "timeout period.",
)
MALFORMED = _error(400, "BadRequest", "The request is not valid HTTP/1.1.")
OVERLOADED = _error(503, "SlowDown", "Please reduce your request rate.")
INTERNAL = _error(500, "InternalError", "We encountered an internal error. Please try again.")


def _status_line(code: int) -> bytes:
    try:
        phrase = http.HTTPStatus(code).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {code} {phrase}\r\n".encode()


STATUS_LINE = {code: _status_line(code) for code in range(100, 600)}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
BAD_NAME = re.compile(b'[\x00-\x20\x7f()<>@,;:\\[\\]={}\\\\"/?]')
BAD_VALUE = re.compile(b"[\x00-\x08\x0a-\x1f\x7f]")
HIGH_WATER = 65536
JOIN_BELOW = 16384  # a response head and body shorter than this are joined into one buffer
ASGI = {"version": "3.0", "spec_version": "2.3"}

#: This process's connections with no request in progress, longest idle first (a dict keeps
#: insertion order, and re-inserting moves a connection to the end).
_IDLE: dict[S3HttpProtocol, None] = {}


class _Exchange:
    """One request and its response: the ``receive`` and ``send`` the application is given."""

    __slots__ = (
        "conn",
        "scope",
        "chunks",
        "buffered",
        "more_body",
        "delivered",
        "waiter",
        "awaiting_continue",
        "started",
        "complete",
        "disconnected",
        "keep_alive",
        "head",
        "chunked",
        "remaining",
        "bodyless",
    )

    def __init__(
        self, conn: S3HttpProtocol, scope: dict[str, Any], keep_alive: bool, expect: bool
    ) -> None:
        self.conn = conn
        self.scope = scope
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.more_body = True
        self.delivered = False  # the last piece of the body was handed to the application
        self.waiter: asyncio.Future[None] | None = None
        self.awaiting_continue = expect
        self.started = False
        self.complete = False
        self.disconnected = False
        self.keep_alive = keep_alive
        self.head: bytes | None = None
        self.chunked = False
        self.remaining = 0
        self.bodyless = scope["method"] == "HEAD"

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def add_body(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > HIGH_WATER:
            self.conn.pause_reading()
        self.wake()

    async def receive(self) -> Message:
        conn = self.conn
        if self.awaiting_continue:
            self.awaiting_continue = False
            if not conn.transport.is_closing():
                conn.transport.write(CONTINUE)
        if (not self.chunks and self.more_body or self.delivered) and not (
            self.disconnected or self.complete
        ):
            # Nothing to hand over yet; or the whole body was handed over already, and what
            # remains to wait for is the client going away (or this response completing).
            conn.resume_reading()
            waiter = self.waiter
            if waiter is None or waiter.done():  # (one cancelled by a timeout is done too)
                waiter = self.waiter = conn.loop.create_future()
            await waiter
        if self.disconnected or self.complete:
            return {"type": "http.disconnect"}
        chunks = self.chunks
        if len(chunks) == 1:
            body = chunks[0]
            chunks.clear()
        else:
            body = b"".join(chunks)
            self.chunks = []
        if self.buffered > HIGH_WATER:
            conn.resume_reading()
        self.buffered = 0
        self.delivered = not self.more_body
        return {"type": "http.request", "body": body, "more_body": self.more_body}

    async def send(self, message: Message) -> None:
        conn = self.conn
        if conn.write_paused is not None and not self.disconnected:
            await conn.write_paused
        if self.disconnected:
            return
        if not self.started:
            if message["type"] != "http.response.start":
                raise RuntimeError(f"expected http.response.start, got {message['type']!r}")
            self.start(message["status"], message.get("headers", ()))
            return
        if self.complete:
            raise RuntimeError(f"{message['type']!r} sent after the response was complete")
        if message["type"] != "http.response.body":
            raise RuntimeError(f"expected http.response.body, got {message['type']!r}")
        body: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        out: list[bytes] = []
        if self.head is not None:
            out.append(self.head)
            self.head = None
        if self.chunked and not self.bodyless:
            if body:
                out += (b"%x\r\n" % len(body), body, b"\r\n")
            if not more:
                out.append(b"0\r\n\r\n")
        elif body and not self.bodyless:
            self.remaining -= len(body)
            if self.remaining < 0:
                raise RuntimeError("response body longer than its Content-Length")
            out.append(body)
        if out:
            transport = conn.transport
            if len(out) == 1:
                transport.write(out[0])
            elif len(out) == 2 and len(out[0]) + len(out[1]) < JOIN_BELOW:
                transport.write(out[0] + out[1])
            else:
                transport.writelines(out)
        if not more:
            if self.remaining and not self.bodyless:
                raise RuntimeError("response body shorter than its Content-Length")
            self.complete = True
            self.wake()
            if not self.keep_alive or (self.more_body and self.awaiting_continue):
                # A client still waiting for 100 Continue will not send its body; whatever it
                # sends next could be that body after all: this connection cannot be reused.
                conn.transport.close()
            conn.response_complete(self)

    def start(self, status: int, headers: Any) -> None:
        """Build the response head; it goes out with the first piece of the body."""
        head = [STATUS_LINE[status]]
        names = []
        values = []
        length: int | None = None
        for name, value in (*headers, *self.conn.default_headers):
            name = name.lower()
            names.append(name)
            values.append(value)
            if name == b"content-length":
                if length is None:
                    length = int(value)
            elif name == b"connection":
                if b"close" in value.lower():
                    self.keep_alive = False
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self.chunked = True
            head += (name, b": ", value, b"\r\n")
        if BAD_NAME.search(b"".join(names)) or BAD_VALUE.search(b"".join(values)):
            raise RuntimeError("invalid character in a response header")
        if not self.keep_alive and b"connection" not in names:
            head.append(b"connection: close\r\n")
        if length is not None and not self.chunked:
            self.remaining = length
        elif not self.bodyless and status not in (204, 304) and not self.chunked:
            self.chunked = True
            head.append(b"transfer-encoding: chunked\r\n")
        head.append(b"\r\n")
        self.head = b"".join(head)
        self.started = True


class S3HttpProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection; constructed by uvicorn's server for each accepted socket."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.app: App = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.server_state = server_state
        self.connections: set[Any] = server_state.connections
        self.tasks: set[asyncio.Task[None]] = server_state.tasks
        self.default_headers: list[tuple[bytes, bytes]] = server_state.default_headers
        self.app_state = app_state
        self.parser = httptools.HttpRequestParser(self)
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # connection_made
        self.server: tuple[str, int] | None = None
        self.client: tuple[str, int] | None = None
        self.scheme = "http"
        self.current: _Exchange | None = None  # the request being answered
        self.parsing: _Exchange | None = None  # the request whose body is being received
        self.pipeline: deque[_Exchange] = deque()
        self.write_paused: asyncio.Future[None] | None = None
        self.reading = True
        self.deadline = 0.0  # loop time at which the timer below fires; 0: none
        self.on_deadline = b""  # what to answer then (empty: just close)
        self.rejected = False
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.header_bytes = 0
        self.expect = False

    # -- connection ------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport
        self.connections.add(self)
        self.server = _address(transport.get_extra_info("sockname"))
        self.client = _address(transport.get_extra_info("peername"))
        if transport.get_extra_info("sslcontext") is not None:
            self.scheme = "https"
        self.set_deadline(LIMITS.idle_timeout, b"")
        _Sweeper.watch(self)
        _IDLE[self] = None
        if len(self.connections) > LIMITS.shed_above:
            _shed(len(self.connections) - LIMITS.shed_above, keep=self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        _IDLE.pop(self, None)
        self.deadline = 0.0
        for exchange in (self.current, self.parsing, *self.pipeline):
            if exchange is not None and not exchange.complete:
                exchange.disconnected = True
                exchange.wake()
        self.pipeline.clear()
        self.resume_writing()

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself

    def pause_writing(self) -> None:
        if self.write_paused is None:
            self.write_paused = self.loop.create_future()

    def resume_writing(self) -> None:
        waiter, self.write_paused = self.write_paused, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pause_reading(self) -> None:
        if self.reading and not self.transport.is_closing():
            self.reading = False
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if not self.reading and not self.pipeline and not self.transport.is_closing():
            self.reading = True
            self.transport.resume_reading()

    def shutdown(self) -> None:
        """Graceful shutdown (called by uvicorn's server): close when the answer in progress,
        if any, is complete."""
        if self.current is None or self.current.complete:
            self.transport.close()
        else:
            self.current.keep_alive = False

    def data_received(self, data: bytes) -> None:
        if self.rejected:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # no protocol upgrades: the request is answered as a plain one
        except httptools.HttpParserError:
            self.reject(MALFORMED)  # (a request in progress is cut off: see reject)

    # -- parser callbacks ------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        _IDLE.pop(self, None)
        self.url = b""
        self.headers = []
        self.header_bytes = 0
        self.expect = False
        self.set_deadline(LIMITS.header_timeout, HEADERS_TOO_SLOW)

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > LIMITS.max_url_bytes:
            self.reject(URL_TOO_LONG)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value) + 4
        if self.header_bytes > LIMITS.max_header_bytes:
            self.reject(HEADERS_TOO_LARGE)
            return
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.deadline = 0.0
        if self.rejected:
            return
        parser = self.parser
        url = httptools.parse_url(self.url)
        raw_path: bytes = url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = unquote(path)
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": ASGI,
            "http_version": parser.get_http_version(),
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,
            "method": parser.get_method().decode("ascii"),
            "root_path": "",
            "path": path,
            "raw_path": raw_path,
            "query_string": url.query or b"",
            "headers": self.headers,
        }
        if self.app_state:
            scope["state"] = self.app_state.copy()
        exchange = _Exchange(self, scope, parser.should_keep_alive(), self.expect)
        self.parsing = exchange
        if self.current is None:
            self.begin(exchange)
        else:  # pipelined: answered after the one in progress
            self.pipeline.append(exchange)
            self.pause_reading()

    def on_body(self, body: bytes) -> None:
        exchange = self.parsing
        if exchange is not None and not exchange.complete:
            exchange.add_body(body)

    def on_message_complete(self) -> None:
        exchange = self.parsing
        if exchange is not None:
            exchange.more_body = False
            exchange.wake()

    # -- requests --------------------------------------------------------------------------------
    def begin(self, exchange: _Exchange) -> None:
        if len(self.tasks) >= LIMITS.max_connections:
            self.reject(OVERLOADED)
            return
        self.current = exchange
        task = self.loop.create_task(self.run(exchange))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run(self, exchange: _Exchange) -> None:
        try:
            await self.app(exchange.scope, exchange.receive, exchange.send)
        except asyncio.CancelledError:
            self.transport.close()
            raise
        except Exception as exc:
            log.error("request failed in the application", exc_info=exc)
            if not exchange.started and not self.transport.is_closing():
                self.transport.write(INTERNAL)
            self.transport.close()
        else:
            if not exchange.complete and not exchange.disconnected:
                log.error("the application returned without completing its response")
                if not exchange.started and not self.transport.is_closing():
                    self.transport.write(INTERNAL)
                self.transport.close()

    def response_complete(self, exchange: _Exchange) -> None:
        self.server_state.total_requests += 1
        if exchange is self.parsing and not exchange.more_body:
            self.parsing = None
        self.current = None
        if self.transport.is_closing():
            return
        if self.pipeline:
            self.begin(self.pipeline.popleft())
            if not self.pipeline:
                self.resume_reading()
            return
        self.resume_reading()
        self.set_deadline(LIMITS.idle_timeout, b"")
        _IDLE[self] = None  # idle again, and now the most recently so

    # -- limits ----------------------------------------------------------------------------------
    def set_deadline(self, seconds: float, response: bytes) -> None:
        self.deadline = self.loop.time() + seconds
        self.on_deadline = response

    def expire(self) -> None:
        """The deadline passed: headers too slow (answered ``408``) or idle too long."""
        self.deadline = 0.0
        if self.on_deadline:
            self.reject(self.on_deadline)
        elif self.current is None and not self.transport.is_closing():
            self.transport.close()

    def reject(self, response: bytes) -> None:
        """Answer ``response`` and close; with an answer in progress (a pipelined request went
        wrong), writing now would corrupt that answer, so the connection is only closed."""
        if self.rejected:
            return
        self.rejected = True
        self.deadline = 0.0
        if not self.transport.is_closing():
            if self.current is None:
                self.transport.write(response)
            self.transport.close()


class _Sweeper:
    """Checks every connection's deadline a few times a second (per event loop): cheaper than a
    timer armed and cancelled for every request, and precise enough for timeouts of seconds."""

    _handles: dict[asyncio.AbstractEventLoop, asyncio.TimerHandle] = {}

    @classmethod
    def watch(cls, conn: S3HttpProtocol) -> None:
        loop = conn.loop
        if loop not in cls._handles:
            cls._handles[loop] = loop.call_later(
                LIMITS.sweep_every, cls._sweep, loop, conn.connections
            )

    @classmethod
    def _sweep(cls, loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
        now = loop.time()
        for conn in [c for c in connections if 0.0 < c.deadline <= now]:
            conn.expire()
        cls._handles[loop] = loop.call_later(LIMITS.sweep_every, cls._sweep, loop, connections)


def _address(info: Any) -> tuple[str, int] | None:
    if isinstance(info, tuple) and len(info) >= 2:
        return str(info[0]), int(info[1])
    return None


def _shed(count: int, *, keep: S3HttpProtocol) -> None:
    """Close up to ``count`` of the longest-idle connections (never ``keep``, the new one)."""
    victims = [conn for conn in islice(_IDLE, count + 1) if conn is not keep][:count]
    for conn in victims:
        _IDLE.pop(conn, None)
        conn.deadline = 0.0
        if not conn.transport.is_closing():
            conn.transport.close()
