"""Hand-made HTTP requests (signed with botocore's own signer) for what SDKs won't send."""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from urllib.parse import urlsplit
from xml.etree import ElementTree

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.api.server import ACCESS_KEY, REGION, SECRET_KEY


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
) -> RawResponse:
    url = endpoint + path
    hdrs = dict(headers or {})
    if sign:
        aws = AWSRequest(method=method, url=url, data=body, headers=hdrs)
        if payload_hash is not None:
            aws.headers["X-Amz-Content-SHA256"] = payload_hash
        S3SigV4Auth(Credentials(access_key, secret), "s3", REGION).add_auth(aws)
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
