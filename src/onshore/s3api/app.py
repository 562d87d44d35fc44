"""The S3 ASGI application: the life of a request.

1. **Limits**: header section size (``max_header_bytes``).
2. **Route**: :func:`onshore.s3api.routing.resolve` names the operation (``GetObject``...);
   the server's own endpoints live under ``/onshore/`` (the reserved bucket name).
   A ``POST /`` signed for the service ``iam`` is the IAM query API (:mod:`onshore.iamapi`).
3. **Authenticate**: SigV4 (header or presigned) → access key → :class:`Principal`; an
   unsigned request is the anonymous principal.
4. **Authorize**: :func:`onshore.s3api.authorize.authorize` — the operation's IAM actions
   against the caller's identity policies and the bucket policy; 403 AccessDenied otherwise.
   Then a write needs disk space above the reserve (:mod:`onshore.service.space`) and, with a
   licensor key pinned, a license that allows it (``AccountProblem``, from the in-memory state
   of :mod:`onshore.service.licensing.monitor`), for an account not being offboarded
   (:mod:`onshore.service.offboarding.gate`).
5. **Body**: a :class:`PayloadReader` that verifies the declared payload hash, aws-chunked
   signatures and checksums as the handler consumes it, with a per-read stall timeout.
6. **Handle**: ``operations.<family>.<op>()`` → services → ``Response``.
7. **Errors**: any ``S3Error`` is rendered once by :mod:`onshore.s3api.errors`; anything else is
   logged with the request id and becomes ``InternalError`` (``ServiceUnavailable`` when the
   external key service holding the root key cannot be used: :mod:`onshore.service.transit`).
8. **Send** (streaming bodies stop early if the client goes away), then one structured log line.

Every response carries ``x-amz-request-id`` and ``x-amz-id-2``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping

from onshore.domain.errors import (
    InsufficientStorage,
    InternalError,
    InvalidAccessKeyId,
    RequestTimeout,
    S3Error,
    S3NotImplemented,
    ServiceUnavailable,
)
from onshore.domain.ids import host_id, new_request_id
from onshore.domain.preconditions import NotModified
from onshore.iamapi.app import IamApi, is_iam_request
from onshore.s3api import kms_api
from onshore.s3api.accesslog import AccessLog
from onshore.s3api.audit import RequestAudit
from onshore.s3api.auth import AuthResult, PayloadMode, PayloadReader, authenticate
from onshore.s3api.auth.keyhint import claimed_access_key
from onshore.s3api.auth.sigv4 import EMPTY_SHA256
from onshore.s3api.authorize import authorize
from onshore.s3api.errors import error_response
from onshore.s3api.http import Message, Receive, Request, Response, Scope, Send
from onshore.s3api.operations import Handler, Services
from onshore.s3api.routing import WRITES, Op, resolve
from onshore.service.identity import ANONYMOUS
from onshore.service.licensing.monitor import STATE_HEADER, Licensing
from onshore.service.objects import http_date
from onshore.service.offboarding.gate import OffboardingGate
from onshore.service.rootkey import KEY_SERVICE_DOWN, KeyServiceUnavailable
from onshore.storage.errors import is_out_of_space

access_log = logging.getLogger("onshore.access")
log = logging.getLogger("onshore.s3api")


DRAIN_LIMIT = 8 * 1024 * 1024
DRAIN_SECONDS = 2.0


class RequestHeaderSectionTooLarge(S3Error):
    status, message = 400, "Your request header section exceeds the maximum allowed size."


class S3App:
    def __init__(
        self,
        services: Services,
        handlers: Mapping[Op, Handler],
        *,
        ready: Callable[[], bool] | None = None,
        on_shutdown: Callable[[], None] | None = None,
        licensing: Licensing | None = None,
        iam_api: IamApi | None = None,
        audit: RequestAudit | None = None,
        offboarding: OffboardingGate | None = None,
    ) -> None:
        self.audit = audit
        self.offboarding = offboarding
        self.services = services
        self.config = services.config
        self.handlers = handlers
        self.ready = ready or (lambda: True)
        self.on_shutdown = on_shutdown
        self.log_requests = services.config.access_log
        self.access_log = AccessLog(access_log)
        self.licensing = licensing  # None: no licensor configured, nothing to check or meter
        self.iam_api = iam_api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.handle(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # Start-up work (credentials, the orphan sweep) is done once by the supervisor
                # before any worker starts; see onshore.app.prepare.
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.access_log.flush()
                if self.on_shutdown:
                    await asyncio.get_running_loop().run_in_executor(None, self.on_shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = new_request_id()
        req = Request(scope, receive, request_id)
        op_name = "-"
        failure: S3Error | None = None
        audit = self.audit
        internal = _internal(req.raw_path)
        pending = audit.begin(req, started) if audit is not None and not internal else None
        try:
            if req.header_bytes > self.config.max_header_bytes:
                raise RequestHeaderSectionTooLarge(MaxSizeAllowed=str(self.config.max_header_bytes))
            if internal:
                op_name = "Internal"
                response = await self.internal(req)
            elif self.iam_api is not None and is_iam_request(req.method, req.raw_path, req.headers):
                action, response = await self.iam_api(req)  # the IAM query API (iamapi/)
                op_name = f"iam:{action}"
            elif req.headers.get("x-amz-target", "").startswith(kms_api.TARGET_PREFIX):
                op_name = req.headers["x-amz-target"][:64]  # the AWS KMS API (TrentService)
                response = await kms_api.handle(
                    req,
                    self.services.kms,
                    self.services.identities,
                    self.services.blocking,
                    self.config.region,
                    self.offboarding,
                )
            else:
                route = resolve(
                    req.method, req.raw_path, req.query, req.headers, domain=self.config.domain
                )
                req.route = route
                op_name = route.op.value
                response = await self.dispatch(req, route.op)
                if response.stream is not None and req.method != "HEAD":
                    # Read the first piece before the headers go out, so a failure to open the
                    # data is still a proper S3 error rather than a cut connection.
                    first = await anext(response.stream, b"")
                    response.stream = _prepend(first, response.stream)
        except NotModified as not_modified:
            response = Response(
                304,
                {
                    "ETag": f'"{not_modified.etag}"',
                    "Last-Modified": http_date(not_modified.last_modified),
                },
            )
        except S3Error as error:
            failure = error
            response = self.error(req, error)
        except Exception as error:
            if is_out_of_space(error):
                log.error(
                    "request %s failed (%s): no space left on the data disk", request_id, op_name
                )
                failure = InsufficientStorage()
            elif isinstance(error, KeyServiceUnavailable):
                log.error("request %s failed (%s): %s", request_id, op_name, error)
                failure = ServiceUnavailable(KEY_SERVICE_DOWN)
            else:
                log.exception("request %s failed (%s)", request_id, op_name)
                failure = InternalError()
            response = self.error(req, failure)
        bytes_out = 0
        try:
            if not req.body_done and req.has_body():
                await self.drain(req, response)
            bytes_out = await self.send(req, response, send)
        finally:
            if pending is not None and audit is not None:
                audit.finish(pending, req, op_name, started, response.status, failure, bytes_out)
        if self.licensing is not None:
            bytes_in = req.body.bytes_received if req.body is not None else 0
            self.licensing.meter.record(op_name, bytes_in, bytes_out)
        if self.log_requests:
            self.log_line(req, op_name, response.status, bytes_out, started)
        # The body reader holds the receive closure, which holds the request: without this the
        # cycle (some 14 objects a PUT) waits for the garbage collector instead of refcounting.
        req.body = None

    async def dispatch(self, req: Request, op: Op) -> Response:
        handler = self.handlers.get(op)
        identities = self.services.identities
        claimed = claimed_access_key(req.headers, req.query)
        if claimed is not None and not identities.is_cached(claimed):
            await self.services.blocking.batched(identities.warm, claimed)  # off the event loop
        auth = authenticate(
            req.method,
            req.raw_path,
            req.query_string,
            req.headers,
            lookup=identities.secret_for,
            region=self.config.region,
        )
        req.auth = auth
        principal = ANONYMOUS
        if auth.access_key is not None:
            found = identities.principal(auth.access_key)
            if found is None:
                raise InvalidAccessKeyId(AWSAccessKeyId=auth.access_key)
            principal = found
        req.principal = principal
        await authorize(req, self.services, op)
        if op in WRITES:
            self.services.space.check(req.content_length() or 0)
            if self.offboarding is not None:
                bucket = req.route.bucket if req.route else None
                await self.offboarding.check_write(
                    principal.account_id, bucket, self.services.access.bucket
                )
        if handler is None:
            raise S3NotImplemented(f"{op.value} is not implemented by onshore yet.")
        license_state = (
            self.licensing.gate() if self.licensing is not None and op in WRITES else None
        )
        if not req.has_body() and _trivially_empty(auth):
            req.body = EMPTY_BODY
            req.body_done = True
        else:
            req.body = PayloadReader(self.timed(req), req.headers, auth)
        response = await handler(req, self.services)
        if license_state is not None:
            response.headers[STATE_HEADER] = license_state
        return response

    def timed(self, req: Request) -> Receive:
        """The body channel, with a stall timeout and a record of whether the body was read
        to its end (see :meth:`send`)."""
        timeout = self.config.body_timeout
        receive = req.receive

        async def receive_with_timeout() -> Message:
            try:
                async with asyncio.timeout(timeout):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout() from None
            if message["type"] != "http.request" or not message.get("more_body"):
                req.body_done = True
            else:
                req.body_seen += len(message.get("body", b""))  # type: ignore[arg-type]
            return message

        return receive_with_timeout

    async def drain(self, req: Request, response: Response) -> None:
        """The request failed before its body was read to the end. A short remainder is read
        and dropped, so the connection stays usable and clients that write the whole body
        before reading the answer see the error instead of a broken pipe. Otherwise the
        connection is closed after the response: in particular a client that sent
        ``Expect: 100-continue`` and was refused never sends its body, and whatever it sent
        next would be parsed as that body."""
        expect = req.headers.get("expect", "").lower() == "100-continue"
        try:
            remaining = (req.content_length() or 0) - req.body_seen
        except S3Error:
            remaining = -1
        if (expect and req.body_seen == 0) or not 0 <= remaining <= DRAIN_LIMIT:
            response.headers["Connection"] = "close"
            return
        try:
            async with asyncio.timeout(DRAIN_SECONDS):
                while True:
                    message = await req.receive()
                    if message["type"] != "http.request" or not message.get("more_body"):
                        return
        except TimeoutError:
            response.headers["Connection"] = "close"

    def error(self, req: Request, error: S3Error) -> Response:
        return error_response(
            error, resource=req.resource(), request_id=req.request_id, head=req.method == "HEAD"
        )

    async def internal(self, req: Request) -> Response:
        """``/onshore/health/live`` and ``/onshore/health/ready`` (no authentication)."""
        path = req.raw_path.rstrip("/")
        if path == "/onshore/health/live":
            return _json(200, {"status": "ok"})
        if path == "/onshore/health/ready":
            ok = await self.services.blocking(self.ready)
            return _json(200 if ok else 503, {"status": "ok" if ok else "unavailable"})
        from onshore.domain.errors import InvalidBucketName

        raise InvalidBucketName(
            "The bucket name 'onshore' is reserved for this server's own endpoints.",
            BucketName="onshore",
        )

    async def send(self, req: Request, response: Response, send: Send) -> int:
        headers = response.headers
        headers["x-amz-request-id"] = req.request_id
        headers["x-amz-id-2"] = host_id(req.request_id)
        headers["Server"] = "onshore"
        head = req.method == "HEAD"
        if response.stream is None and "Content-Length" not in headers:
            headers["Content-Length"] = str(len(response.body))
        raw = [(k.encode("latin-1"), _encode_value(v)) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": response.status, "headers": raw})
        if response.stream is None or head:
            body = b"" if head else response.body
            await send({"type": "http.response.body", "body": body, "more_body": False})
            if response.stream is not None:
                await _close(response.stream)
            return len(body)
        return await self.send_stream(req, response, send)

    async def send_stream(self, req: Request, response: Response, send: Send) -> int:
        assert response.stream is not None
        gone = asyncio.Event()

        async def watch_disconnect() -> None:
            while True:
                message = await req.receive()
                if message["type"] == "http.disconnect":
                    gone.set()
                    return

        watcher = asyncio.ensure_future(watch_disconnect())
        sent = 0
        try:
            async for piece in response.stream:
                if gone.is_set():
                    return sent
                await send({"type": "http.response.body", "body": piece, "more_body": True})
                sent += len(piece)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except S3Error as error:
            # Headers are already out: all we can do is cut the connection short, so the client
            # sees a truncated body (Content-Length mismatch) rather than wrong data.
            log.error("request %s: stream failed: %s", req.request_id, error.code)
        finally:
            watcher.cancel()
            await _close(response.stream)
        return sent

    def log_line(self, req: Request, op: str, status: int, bytes_out: int, started: float) -> None:
        entry = {
            "ts": round(time.time(), 3),
            "request_id": req.request_id,
            "op": op,
            "method": req.method,
            "status": status,
            "bucket": req.route.bucket if req.route else None,
            "bytes_in": req.body.bytes_received if req.body is not None else 0,
            "bytes_out": bytes_out,
            "ms": round((time.perf_counter() - started) * 1000, 2),
            "remote": req.client,
            "access_key": req.auth.access_key if req.auth else None,
        }
        self.access_log.write(entry)


def _internal(path: str) -> bool:
    """The server's own endpoints (health), which are not S3 requests and are not audited."""
    return path.startswith("/onshore/") or path == "/onshore"


class EmptyBody:
    """The body of a request that declares none (most GET, HEAD and DELETE requests): nothing to
    receive and nothing to verify, so no :class:`PayloadReader` is built for it."""

    checksum = None
    decoded_length = 0
    bytes_received = 0

    async def read(self) -> bytes:
        return b""

    async def read_all(self, limit: int) -> bytes:
        return b""


EMPTY_BODY = EmptyBody()


def _trivially_empty(auth: AuthResult) -> bool:
    """Whether an absent body satisfies what the signature declared about it."""
    if auth.payload_mode is PayloadMode.UNSIGNED:
        return True
    return auth.payload_mode is PayloadMode.SIGNED and auth.content_sha256 == EMPTY_SHA256


async def _prepend(
    first: bytes | bytearray, rest: AsyncIterator[bytes | bytearray]
) -> AsyncIterator[bytes | bytearray]:
    try:
        if first:
            yield first
        async for piece in rest:
            yield piece
    finally:
        await _close(rest)


def _encode_value(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


async def _close(stream: object) -> None:
    closer = getattr(stream, "aclose", None)
    if closer is not None:
        await closer()


def _json(status: int, payload: Mapping[str, object]) -> Response:
    return Response(status, {"Content-Type": "application/json"}, json.dumps(payload).encode())
