"""The HTTP/1.1 connection protocol: uvicorn's httptools protocol with limits against abuse.

uvicorn enforces none of these itself, so a hostile client could hold memory or connections:

* **Request line**: a URL longer than ``max_url_bytes`` is answered ``414`` and the connection
  closed, while it is still being received.
* **Header section**: more than ``max_header_bytes`` of headers is answered ``400
  RequestHeaderSectionTooLarge``, again while it is still being received (the app checks the same
  limit once more on the parsed headers).
* **Slow headers** (slowloris): a request whose headers are not complete within
  ``header_timeout`` seconds is answered ``408`` and closed, however steadily the bytes trickle.
* **Idle connections**: a connection that never starts a request is closed after the keep-alive
  timeout, as one that finished a request already is.
* **Too many connections**: uvicorn answers every request ``503`` while a process holds
  ``max_connections`` connections, so a crowd of idle connections (10,000 opened and left
  silent) would lock real clients out until the timeouts above cleared them. Instead, when a new
  connection brings the process within 10% of the limit, the connections idle for longest (no
  request in progress) are closed to make room: idle ones are shed, working ones keep going.
  Closing an idle keep-alive connection is ordinary HTTP; clients reconnect.

Slow bodies are the application's business (``body_timeout``, ``RequestTimeout``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from itertools import islice

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


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


LIMITS = Limits()


def configure(limits: Limits) -> None:
    """Set the limits for connections accepted by this process."""
    global LIMITS
    LIMITS = limits


def _error(status: int, reason: str, code: str, message: str) -> bytes:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/xml\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


URL_TOO_LONG = _error(414, "URI Too Long", "InvalidURI", "The request URI is too long.")
HEADERS_TOO_LARGE = _error(
    400,
    "Bad Request",
    "RequestHeaderSectionTooLarge",
    "Your request header section exceeds the maximum allowed size.",
)
HEADERS_TOO_SLOW = _error(
    408,
    "Request Timeout",
    "RequestTimeout",
    "Your socket connection to the server was not read from or written to within the "
    "timeout period.",
)


#: This process's connections with no request in progress, longest idle first (a dict keeps
#: insertion order, and re-inserting moves a connection to the end).
_IDLE: dict[LimitedHttpToolsProtocol, None] = {}


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol plus the limits described in the module docstring."""

    _url_bytes = 0
    _header_bytes = 0
    _deadline: asyncio.TimerHandle | None = None
    _rejected = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(LIMITS.idle_timeout, b"")
        _IDLE[self] = None
        if len(self.connections) > LIMITS.shed_above:
            _shed(len(self.connections) - LIMITS.shed_above, keep=self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        _IDLE.pop(self, None)
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            _IDLE.pop(self, None)
            _IDLE[self] = None  # idle again, and now the most recently so

    def data_received(self, data: bytes) -> None:
        if self._rejected:
            return
        super().data_received(data)

    def on_message_begin(self) -> None:
        _IDLE.pop(self, None)
        super().on_message_begin()
        self._url_bytes = 0
        self._header_bytes = 0
        self._arm(LIMITS.header_timeout, HEADERS_TOO_SLOW)

    def on_url(self, url: bytes) -> None:
        self._url_bytes += len(url)
        if self._url_bytes > LIMITS.max_url_bytes:
            self._reject(URL_TOO_LONG)
            return
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > LIMITS.max_header_bytes:
            self._reject(HEADERS_TOO_LARGE)
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        if self._rejected:
            return
        super().on_headers_complete()

    # -- helpers ---------------------------------------------------------------------------------
    def _arm(self, seconds: float, response: bytes) -> None:
        self._disarm()
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(seconds, self._expire, response)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, response: bytes) -> None:
        self._deadline = None
        if self.cycle is not None and not self.cycle.response_complete and not response:
            return  # a request is in flight: the idle timer does not apply
        if response:
            self._reject(response)
        elif not self.transport.is_closing():
            self.transport.close()

    def _reject(self, response: bytes) -> None:
        if self._rejected:
            return
        self._rejected = True
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()


def _shed(count: int, *, keep: LimitedHttpToolsProtocol) -> None:
    """Close up to ``count`` of the longest-idle connections (never ``keep``, the new one)."""
    victims = [conn for conn in islice(_IDLE, count + 1) if conn is not keep][:count]
    for conn in victims:
        _IDLE.pop(conn, None)
        conn._disarm()
        if not conn.transport.is_closing():
            conn.transport.close()
