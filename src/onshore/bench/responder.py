"""The trivial HTTP responder of the ``limits`` workload: a raw ASGI app answering every request
with 4 KiB, served by the stack onshore itself runs on: uvicorn with uvloop, and onshore's own
HTTP/1.1 protocol on httptools (:mod:`onshore.s3api.protocol`).

Whatever a real server does per request (routing, SigV4, metadata, disk) comes on top of this, so
its requests/s, measured with the same load generator, is the ceiling a Python S3 server on this
machine can approach. Run it with ``python -m uvicorn onshore.bench.responder:app --loop uvloop
--http onshore.s3api.protocol:S3HttpProtocol``. (Until 2026-11-30 it ran on uvicorn's own
httptools protocol, onshore's stack then; that responder was about 40 µs per request slower.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

BODY = bytes(range(256)) * 16
_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-length", b"4096"), (b"content-type", b"application/octet-stream")],
}
_BODY = {"type": "http.response.body", "body": BODY}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    while True:  # drain a request body, if any (bounded by the client's Content-Length)
        message = await receive()
        if not message.get("more_body"):
            break
    await send(_START)
    await send(_BODY)
