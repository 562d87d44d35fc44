"""The request and response values handlers see, built from raw ASGI with as little work as
possible (this runs for every request: no framework, no per-request classes beyond these two)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from onshore.domain.errors import InvalidArgument, InvalidRequest
from onshore.domain.numbers import decimal

if TYPE_CHECKING:
    from onshore.s3api.app import EmptyBody
    from onshore.s3api.auth import AuthResult, PayloadReader
    from onshore.s3api.routing import Route
    from onshore.service.audit.planes import Plane
    from onshore.service.identity import Principal

Scope = MutableMapping[str, object]
Message = MutableMapping[str, object]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Request:
    """One S3 request: method, raw path, query, lower-cased headers, and (after
    authentication) the principal and a verified body reader."""

    __slots__ = (
        "method",
        "raw_path",
        "query_string",
        "query",
        "headers",
        "client",
        "scheme",
        "receive",
        "request_id",
        "route",
        "auth",
        "principal",
        "recipient",
        "plane",
        "body",
        "header_bytes",
        "body_done",
        "body_seen",
        "support_request",
    )

    def __init__(self, scope: Scope, receive: Receive, request_id: str) -> None:
        self.method: str = scope["method"]  # type: ignore[assignment]
        raw = scope.get("raw_path")
        self.raw_path: str = (
            raw.decode("latin-1").partition("?")[0]
            if isinstance(raw, bytes)
            else str(scope["path"])
        )
        qs = scope.get("query_string", b"")
        self.query_string: str = qs.decode("latin-1") if isinstance(qs, bytes) else ""
        self.query: dict[str, str] = {}
        if self.query_string:
            for name, value in parse_qsl(self.query_string, keep_blank_values=True):
                self.query.setdefault(name, value)
        headers: dict[str, str] = {}
        size = 0
        for name_b, value_b in scope["headers"]:  # type: ignore[attr-defined]
            name = name_b.decode("latin-1").lower()
            value = value_b.decode("latin-1")
            size += len(name_b) + len(value_b) + 4
            if name in headers:
                headers[name] = headers[name] + "," + value
            else:
                headers[name] = value
        self.headers = headers
        self.header_bytes = size
        client = scope.get("client")
        self.client: str = client[0] if isinstance(client, tuple | list) and client else ""
        self.scheme: str = str(scope.get("scheme", "http"))
        self.receive = receive
        self.request_id = request_id
        self.route: Route | None = None
        self.auth: AuthResult | None = None
        self.principal: Principal | None = None
        # The account the request acts on when not the caller's own: the owner of the bucket
        # (set by the authorize step; the audit record's recipientAccountId). None: not known.
        self.recipient: str | None = None
        self.support_request: str | None = None  # admin API: the licensor's support access id
        self.plane: Plane | None = None  # set by the IAM and KMS APIs, for the audit record
        self.body: PayloadReader | EmptyBody | None = None
        self.body_done = False
        self.body_seen = 0

    @property
    def bucket(self) -> str:
        assert self.route is not None and self.route.bucket is not None
        return self.route.bucket

    @property
    def key(self) -> str:
        assert self.route is not None and self.route.key is not None
        return self.route.key

    def resource(self) -> str:
        """The ``Resource`` of an error: ``/bucket/key`` as addressed."""
        if self.route is None or self.route.bucket is None:
            return "/"
        if self.route.key:
            return f"/{self.route.bucket}/{self.route.key}"
        return f"/{self.route.bucket}"

    def int_query(self, name: str, default: int, *, maximum: int | None = None) -> int:
        raw = self.query.get(name)
        if raw is None or raw == "":
            return default
        value = decimal(raw)
        if value is None:
            raise InvalidArgument(
                f"Provided {name} not an integer or within integer range",
                ArgumentName=name,
                ArgumentValue=raw,
            )
        return min(value, maximum) if maximum is not None else value

    def has_body(self) -> bool:
        length = self.headers.get("content-length")
        if length is not None:
            return length.strip() not in ("", "0")
        return "transfer-encoding" in self.headers

    def content_length(self) -> int | None:
        raw = self.headers.get("content-length")
        if raw is None:
            return None
        value = decimal(raw.strip())
        if value is None:
            raise InvalidRequest("Content-Length is not a valid integer.")
        return value


@dataclass(slots=True)
class Response:
    """What a handler returns: status, headers, and either ``body`` or a ``stream``."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stream: AsyncIterator[bytes | bytearray] | None = None

    @classmethod
    def xml(cls, body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        merged = {"Content-Type": "application/xml"}
        if headers:
            merged.update(headers)
        return cls(status, merged, body)
