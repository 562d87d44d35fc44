"""One ASGI application for the two listening sockets of a server process.

Every worker serves both the S3 port (``address``) and the admin port (``admin_address``); each
connection goes to the application of the port it arrived on (the local address uvicorn puts in
``scope["server"]``). Lifespan events go to the S3 application, which owns shutdown.
"""

from __future__ import annotations

from onshore.adminapi.app import AdminApp
from onshore.s3api.app import S3App
from onshore.s3api.http import Receive, Scope, Send


class PortRouter:
    def __init__(self, s3: S3App, admin: AdminApp | None, admin_port: int | None) -> None:
        self.s3 = s3
        self.admin = admin
        self.admin_port = admin_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.admin is not None and scope["type"] == "http":
            server = scope.get("server")
            if (
                isinstance(server, tuple | list)
                and len(server) >= 2
                and server[1] == self.admin_port
            ):
                await self.admin(scope, receive, send)
                return
        await self.s3(scope, receive, send)
