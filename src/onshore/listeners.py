"""One ASGI application for the listening sockets of a server process.

Every worker serves the S3 port (``address``), the admin port (``admin_address``) and, when set,
the KMS port (``kms_address``); each connection goes to the application of the port it arrived
on (the local address uvicorn puts in ``scope["server"]``). Lifespan events go to the S3
application, which owns shutdown. The KMS port serves only the KMS API (the S3 application's
``X-Amz-Target: TrentService.*`` branch); anything else there is refused, as the KMS endpoint
refuses it.
"""

from __future__ import annotations

import json

from onshore.adminapi.app import AdminApp
from onshore.s3api.app import S3App
from onshore.s3api.http import Receive, Scope, Send


class PortRouter:
    def __init__(
        self,
        s3: S3App,
        admin: AdminApp | None,
        admin_port: int | None,
        kms_port: int | None = None,
    ) -> None:
        self.s3 = s3
        self.admin = admin
        self.admin_port = admin_port
        self.kms_port = kms_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            server = scope.get("server")
            port = server[1] if isinstance(server, tuple | list) and len(server) >= 2 else None
            if self.admin is not None and port == self.admin_port:
                await self.admin(scope, receive, send)
                return
            if self.kms_port is not None and port == self.kms_port and not _is_kms(scope):
                await _not_kms(send)
                return
        await self.s3(scope, receive, send)


def _is_kms(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):  # type: ignore[attr-defined]
        if name.lower() == b"x-amz-target":
            return bool(value.startswith(b"TrentService."))
    return False


async def _not_kms(send: Send) -> None:
    body = json.dumps(
        {"__type": "UnknownOperationException", "message": "This is the KMS endpoint."}
    ).encode()
    headers = [
        (b"content-type", b"application/x-amz-json-1.1"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
