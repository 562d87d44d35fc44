"""The handful of S3 operations the benchmark issues, as signed request heads over
``http.Connection``.

Requests are path-style (``/bucket/key``), which every S3 server accepts on a bare ``host:port``.
Listing responses are read with a few regular expressions rather than an XML parser: the benchmark
needs only the keys' count, the common prefixes' count and the continuation token, and the client's
CPU is part of what it must not spend.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import unescape
from urllib.parse import urlsplit

from .http import Body, Connection, Response
from .signing import Signer, canonical_query, uri_encode_path

_LOOPBACK_NAMES = {"localhost", "::1", "ip6-localhost"}


@dataclass(frozen=True)
class Endpoint:
    """Where the server listens: scheme must be ``http`` (the benchmark measures the server, not
    TLS)."""

    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http":
            raise ValueError(f"only http:// endpoints are supported, got {url!r}")
        if not parts.hostname:
            raise ValueError(f"no host in endpoint {url!r}")
        return cls(parts.hostname, parts.port or 80)

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 80 else f"{host}:{self.port}"

    def is_loopback(self) -> bool:
        return self.host in _LOOPBACK_NAMES or self.host.startswith("127.")


@dataclass(frozen=True)
class ListPage:
    """One ListObjectsV2 page, reduced to what the benchmark counts."""

    keys: int
    prefixes: int
    truncated: bool
    token: str | None


_KEY = re.compile(rb"<Key>")
_PREFIX = re.compile(rb"<CommonPrefixes>")
_TRUNCATED = re.compile(rb"<IsTruncated>\s*true\s*</IsTruncated>")
_TOKEN = re.compile(rb"<NextContinuationToken>([^<]*)</NextContinuationToken>")
_UPLOAD_ID = re.compile(rb"<UploadId>([^<]*)</UploadId>")
_KEY_TEXT = re.compile(rb"<Key>([^<]*)</Key>")


def parse_list_page(xml: bytes) -> ListPage:
    token = _TOKEN.search(xml)
    return ListPage(
        keys=len(_KEY.findall(xml)),
        prefixes=len(_PREFIX.findall(xml)),
        truncated=_TRUNCATED.search(xml) is not None,
        token=unescape(token.group(1).decode()) if token else None,
    )


def parse_keys(xml: bytes) -> list[str]:
    return [unescape(m.decode()) for m in _KEY_TEXT.findall(xml)]


def parse_upload_id(xml: bytes) -> str | None:
    match = _UPLOAD_ID.search(xml)
    return unescape(match.group(1).decode()) if match else None


class S3Client:
    """Builds signed request heads; every method takes the ``Connection`` to send them on."""

    def __init__(self, endpoint: Endpoint, signer: Signer) -> None:
        self.endpoint = endpoint
        self.signer = signer
        self._host = endpoint.netloc

    def head_bytes(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]] = (),
        *,
        content_length: int | None = None,
        extra: Sequence[tuple[str, str]] = (),
    ) -> bytes:
        """The request line and headers of a signed request, ready to write."""
        target = uri_encode_path(path)
        encoded_query = canonical_query(query) if query else ""
        if encoded_query:
            target += "?" + encoded_query
        signer = self.signer
        length = "" if content_length is None else f"content-length: {content_length}\r\n"
        if extra:
            headers = signer.sign(method, path, query, self._host, extra_headers=extra)
            lines = "".join(f"{k}: {v}\r\n" for k, v in headers)
            return f"{method} {target} HTTP/1.1\r\n{lines}{length}\r\n".encode("latin-1")
        stamp = signer.amz_date()
        path_only = target.partition("?")[0]
        auth = signer.authorize(method, path_only, encoded_query, self._host, stamp)
        return (
            f"{method} {target} HTTP/1.1\r\nhost: {self._host}\r\n"
            f"x-amz-content-sha256: UNSIGNED-PAYLOAD\r\nx-amz-date: {stamp}\r\n"
            f"authorization: {auth}\r\n{length}\r\n"
        ).encode("latin-1")

    # -- objects ---------------------------------------------------------------------------------
    async def put_object(
        self, conn: Connection, bucket: str, key: str, body: Body | Iterable[Body], length: int
    ) -> Response:
        head = self.head_bytes("PUT", f"/{bucket}/{key}", content_length=length)
        return await conn.request(head, body)

    async def get_object(self, conn: Connection, bucket: str, key: str) -> Response:
        return await conn.request(self.head_bytes("GET", f"/{bucket}/{key}"))

    async def head_object(self, conn: Connection, bucket: str, key: str) -> Response:
        return await conn.request(self.head_bytes("HEAD", f"/{bucket}/{key}"), head_only=True)

    async def delete_object(self, conn: Connection, bucket: str, key: str) -> Response:
        return await conn.request(self.head_bytes("DELETE", f"/{bucket}/{key}"), collect=True)

    async def delete_objects(self, conn: Connection, bucket: str, keys: Sequence[str]) -> Response:
        """DeleteObjects (``POST ?delete``), at most 1,000 keys; S3 requires a Content-MD5."""
        items = "".join(f"<Object><Key>{_xml_escape(k)}</Key></Object>" for k in keys)
        body = f"<Delete><Quiet>true</Quiet>{items}</Delete>".encode()
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        head = self.head_bytes(
            "POST",
            f"/{bucket}",
            [("delete", "")],
            content_length=len(body),
            extra=[("content-md5", md5)],
        )
        return await conn.request(head, body, collect=True)

    # -- buckets and listings --------------------------------------------------------------------
    async def create_bucket(self, conn: Connection, bucket: str) -> Response:
        return await conn.request(
            self.head_bytes("PUT", f"/{bucket}", content_length=0), collect=True
        )

    async def delete_bucket(self, conn: Connection, bucket: str) -> Response:
        return await conn.request(self.head_bytes("DELETE", f"/{bucket}"), collect=True)

    async def list_objects_v2(
        self,
        conn: Connection,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        token: str | None = None,
        max_keys: int = 1000,
    ) -> Response:
        query = [("list-type", "2"), ("max-keys", str(max_keys))]
        if prefix:
            query.append(("prefix", prefix))
        if delimiter:
            query.append(("delimiter", delimiter))
        if token:
            query.append(("continuation-token", token))
        return await conn.request(self.head_bytes("GET", f"/{bucket}", query), collect=True)

    # -- multipart -------------------------------------------------------------------------------
    async def create_multipart_upload(self, conn: Connection, bucket: str, key: str) -> Response:
        head = self.head_bytes("POST", f"/{bucket}/{key}", [("uploads", "")], content_length=0)
        return await conn.request(head, collect=True)

    async def upload_part(
        self,
        conn: Connection,
        bucket: str,
        key: str,
        upload_id: str,
        number: int,
        body: Body | Iterable[Body],
        length: int,
    ) -> Response:
        query = [("partNumber", str(number)), ("uploadId", upload_id)]
        head = self.head_bytes("PUT", f"/{bucket}/{key}", query, content_length=length)
        return await conn.request(head, body)

    async def complete_multipart_upload(
        self, conn: Connection, bucket: str, key: str, upload_id: str, etags: Sequence[str]
    ) -> Response:
        parts = "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>{_xml_escape(etag)}</ETag></Part>"
            for n, etag in enumerate(etags, start=1)
        )
        body = f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()
        head = self.head_bytes(
            "POST", f"/{bucket}/{key}", [("uploadId", upload_id)], content_length=len(body)
        )
        return await conn.request(head, body, collect=True)

    async def abort_multipart_upload(
        self, conn: Connection, bucket: str, key: str, upload_id: str
    ) -> Response:
        head = self.head_bytes("DELETE", f"/{bucket}/{key}", [("uploadId", upload_id)])
        return await conn.request(head, collect=True)

    async def list_multipart_uploads(self, conn: Connection, bucket: str) -> Response:
        return await conn.request(
            self.head_bytes("GET", f"/{bucket}", [("uploads", "")]), collect=True
        )


def _xml_escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )
