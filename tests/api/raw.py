"""Hand-made HTTP requests (signed with botocore's own signer) for what SDKs won't send."""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from datetime import datetime
from unittest import mock
from urllib.parse import urlsplit
from xml.etree import ElementTree

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.api.server import ACCESS_KEY, REGION, SECRET_KEY


class FixedPayloadAuth(S3SigV4Auth):
    """botocore's signer, but with the ``x-amz-content-sha256`` value we choose (botocore always
    hashes the body over plain HTTP): ``UNSIGNED-PAYLOAD`` or a deliberately wrong digest."""

    def __init__(self, credentials: Credentials, region: str, payload_hash: str) -> None:
        super().__init__(credentials, "s3", region)
        self._payload_hash = payload_hash

    def payload(self, request: AWSRequest) -> str:
        return self._payload_hash


def sign_request(
    aws: AWSRequest,
    *,
    payload_hash: str | None = None,
    region: str = REGION,
    access_key: str = ACCESS_KEY,
    secret: str = SECRET_KEY,
    at: datetime | None = None,
) -> None:
    """Sign ``aws`` in place, optionally as if at another time or with a chosen payload hash."""
    credentials = Credentials(access_key, secret)
    signer = (
        FixedPayloadAuth(credentials, region, payload_hash)
        if payload_hash is not None
        else S3SigV4Auth(credentials, "s3", region)
    )
    if at is None:
        signer.add_auth(aws)
        return
    with mock.patch("botocore.auth.get_current_datetime", return_value=at.replace(tzinfo=None)):
        signer.add_auth(aws)


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def code(self) -> str | None:
        if not self.body:
            return None
        node = ElementTree.fromstring(self.body).find("Code")
        return node.text if node is not None else None


def request(
    endpoint: str,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    sign: bool = True,
    secret: str = SECRET_KEY,
    access_key: str = ACCESS_KEY,
    payload_hash: str | None = None,
    region: str = REGION,
    at: datetime | None = None,
) -> RawResponse:
    url = endpoint + path
    hdrs = dict(headers or {})
    if sign:
        aws = AWSRequest(method=method, url=url, data=body, headers=hdrs)
        sign_request(
            aws,
            payload_hash=payload_hash,
            region=region,
            access_key=access_key,
            secret=secret,
            at=at,
        )
        hdrs = dict(aws.headers.items())
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target, body=body, headers=hdrs)
        resp = conn.getresponse()
        return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def request_bytes(
    endpoint: str,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    version: str = "HTTP/1.1",
    payload_hash: str = "UNSIGNED-PAYLOAD",
) -> bytes:
    """The head of a signed request, as bytes to write on a socket yourself (for what
    ``http.client`` will not do: pipelining, HTTP/1.0, a body withheld)."""
    aws = AWSRequest(method=method, url=endpoint + path, headers=dict(headers or {}))
    sign_request(aws, payload_hash=payload_hash)
    parts = urlsplit(endpoint + path)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} {version}", f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in aws.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
