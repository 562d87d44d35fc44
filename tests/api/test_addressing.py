"""Virtual-hosted-style addressing (with --domain) and HTTP chunked transfer encoding."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSRequest

from tests.api.conftest import make_client
from tests.api.raw import sign_request
from tests.api.server import ServerProcess

DOMAIN = "s3.onshore.test"


@pytest.fixture(scope="module")
def vhost_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("vhost") / "data", extra_args=("--domain", DOMAIN)
    ).start()
    yield proc
    proc.cleanup()


def signed_send(
    server: ServerProcess, method: str, host: str, path: str, body: bytes = b""
) -> tuple[int, bytes]:
    aws = AWSRequest(
        method=method,
        url=f"http://{host}:{server.port}{path}",
        data=body,
        headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"},
    )
    sign_request(aws, payload_hash="UNSIGNED-PAYLOAD")
    headers = dict(aws.headers.items())
    headers["Host"] = f"{host}:{server.port}"
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_virtual_hosted_style(vhost_server: ServerProcess) -> None:
    s3 = make_client(vhost_server.endpoint)
    s3.create_bucket(Bucket="vhosted")
    status, _ = signed_send(vhost_server, "PUT", f"vhosted.{DOMAIN}", "/dir/key.txt", b"hello")
    assert status == 200
    status, body = signed_send(vhost_server, "GET", f"vhosted.{DOMAIN}", "/dir/key.txt")
    assert (status, body) == (200, b"hello")
    status, body = signed_send(vhost_server, "GET", f"vhosted.{DOMAIN}", "/?list-type=2")
    assert status == 200 and b"<Key>dir/key.txt</Key>" in body
    # Path-style keeps working on the same server.
    assert s3.get_object(Bucket="vhosted", Key="dir/key.txt")["Body"].read() == b"hello"


def test_http_chunked_transfer_encoding(server: ServerProcess, s3: Any, bucket: str) -> None:
    aws = AWSRequest(
        method="PUT",
        url=f"{server.endpoint}/{bucket}/chunked",
        headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD", "Transfer-Encoding": "chunked"},
    )
    sign_request(aws, payload_hash="UNSIGNED-PAYLOAD")
    pieces = [b"a" * 1000, b"b" * 70_000, b"c" * 5]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(
            "PUT", f"/{bucket}/chunked", body=iter(pieces), headers=dict(aws.headers.items()),
            encode_chunked=True,
        )
        resp = conn.getresponse()
        answer = resp.read()
        assert resp.status == 200, answer
    finally:
        conn.close()
    assert s3.get_object(Bucket=bucket, Key="chunked")["Body"].read() == b"".join(pieces)


