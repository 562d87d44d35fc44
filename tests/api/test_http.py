"""HTTP-level behaviour: request ids, health, errors as XML, HEAD, routing edge cases."""

from __future__ import annotations

import contextlib
import socket
import urllib.request
from typing import Any

from tests.api.raw import request, request_bytes
from tests.api.server import ServerProcess


def test_request_ids_on_every_response(server: ServerProcess, bucket: str) -> None:
    for method, path in (("GET", "/"), ("GET", f"/{bucket}"), ("GET", f"/{bucket}/missing")):
        response = request(server.endpoint, method, path)
        assert len(response.headers["x-amz-request-id"]) == 16
        assert response.headers["x-amz-id-2"]


def test_health_endpoints(server: ServerProcess) -> None:
    for path in ("/onshore/health/live", "/onshore/health/ready"):
        with urllib.request.urlopen(server.endpoint + path) as resp:
            assert resp.status == 200


def test_error_body_shape(server: ServerProcess, bucket: str) -> None:
    response = request(server.endpoint, "GET", f"/{bucket}/missing-key")
    assert response.status == 404
    assert response.headers["content-type"] == "application/xml"
    assert b"<Code>NoSuchKey</Code>" in response.body
    assert f"<Resource>/{bucket}/missing-key</Resource>".encode() in response.body
    assert b"<RequestId>" in response.body


def test_head_has_no_body(server: ServerProcess, bucket: str) -> None:
    response = request(server.endpoint, "HEAD", f"/{bucket}/missing-key")
    assert response.status == 404
    assert response.body == b""


def test_unimplemented_subresource(server: ServerProcess, bucket: str) -> None:
    response = request(server.endpoint, "GET", f"/{bucket}?website")
    assert response.status == 501
    assert response.code == "NotImplemented"


def test_method_not_allowed(server: ServerProcess, bucket: str) -> None:
    response = request(server.endpoint, "POST", f"/{bucket}/key")
    assert response.status == 405
    assert response.code == "MethodNotAllowed"


def test_malformed_xml_bodies(server: ServerProcess, bucket: str) -> None:
    bodies = [
        b"not xml at all",
        b"<Delete><Object><Key>a</Key></Object>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
        b"<Delete><Object><Key>&a;</Key></Object></Delete>",
        b"<Delete>" + b"<a>" * 50 + b"</a>" * 50 + b"</Delete>",
        b"<Wrong/>",
    ]
    for body in bodies:
        response = request(server.endpoint, "POST", f"/{bucket}?delete", body=body)
        assert response.status == 400, body
        assert response.code == "MalformedXML", (body, response.body)


def test_oversized_xml_body(server: ServerProcess, bucket: str) -> None:
    body = b"<Delete>" + b" " * (3 * 1024 * 1024) + b"</Delete>"
    response = request(server.endpoint, "POST", f"/{bucket}?delete", body=body)
    assert response.status == 400
    assert response.code == "MaxMessageLengthExceeded"


def test_versioning_bad_status(server: ServerProcess, bucket: str) -> None:
    body = b"<VersioningConfiguration><Status>Maybe</Status></VersioningConfiguration>"
    response = request(server.endpoint, "PUT", f"/{bucket}?versioning", body=body)
    assert response.status == 400


def test_expect_100_continue(server: ServerProcess, s3: Any, bucket: str) -> None:
    response = request(
        server.endpoint,
        "PUT",
        f"/{bucket}/continued",
        body=b"x" * 100_000,
        headers={"Expect": "100-continue"},
    )
    assert response.status == 200
    assert s3.get_object(Bucket=bucket, Key="continued")["Body"].read() == b"x" * 100_000


def test_keep_alive_many_requests(server: ServerProcess, bucket: str) -> None:
    import http.client

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    conn = http.client.HTTPConnection("127.0.0.1", server.port)
    creds = Credentials("ONSHORETESTACCESSKEY", "onshore/test/secret/key/0123456789abcdef")
    for _ in range(20):
        aws = AWSRequest(method="GET", url=f"{server.endpoint}/{bucket}")
        S3SigV4Auth(creds, "s3", "local-1").add_auth(aws)
        conn.request("GET", f"/{bucket}", headers=dict(aws.headers.items()))
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
    conn.close()


def test_oversized_headers(server: ServerProcess, bucket: str) -> None:
    response = request(
        server.endpoint, "GET", f"/{bucket}", headers={"x-padding": "p" * 20000}, sign=False
    )
    assert response.status in (400, 431)


def test_garbage_request_line(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        data = sock.recv(1000)
    assert data.startswith(b"HTTP/1.1 400")


def test_url_too_long(server: ServerProcess, bucket: str) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        data = sock.recv(1000)
    assert data.startswith(b"HTTP/1.1 414")


def test_endless_headers_are_cut_off(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        reply = b""
        try:
            for i in range(2000):
                sock.sendall(f"x-filler-{i}: {'v' * 100}\r\n".encode())
        except OSError:
            pass
        try:
            reply = sock.recv(1000)
        except OSError:
            reply = b""
    assert reply.startswith(b"HTTP/1.1 400") or reply == b""
    assert b"RequestHeaderSectionTooLarge" in reply or reply == b""


def test_slowloris_headers_time_out(tmp_path: Any) -> None:
    import time

    proc = ServerProcess(tmp_path / "data", extra_args=("--header-timeout", "1")).start()
    try:
        with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\n")
            started = time.monotonic()
            reply = b""
            for _ in range(30):
                try:
                    sock.sendall(b"x-slow: 1\r\n")
                except OSError:
                    break
                time.sleep(0.2)
            with contextlib.suppress(OSError):
                reply = sock.recv(1000)
        assert time.monotonic() - started < 6
        assert reply.startswith(b"HTTP/1.1 408") or reply == b""
    finally:
        proc.cleanup()


def test_idle_connection_without_request_is_closed(tmp_path: Any) -> None:
    proc = ServerProcess(tmp_path / "data", extra_args=("--idle-timeout", "1")).start()
    try:
        with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
            assert sock.recv(10) == b""  # closed by the server, not by our 10 s timeout
    finally:
        proc.cleanup()


def test_stalled_body_times_out(tmp_path: Any) -> None:
    import time

    from botocore.awsrequest import AWSRequest

    from tests.api.conftest import make_client
    from tests.api.raw import sign_request

    proc = ServerProcess(tmp_path / "data", extra_args=("--body-timeout", "1")).start()
    try:
        make_client(proc.endpoint).create_bucket(Bucket="stall")
        aws = AWSRequest(
            method="PUT",
            url=f"{proc.endpoint}/stall/k",
            headers={"Content-Length": "1000"},
        )
        sign_request(aws, payload_hash="UNSIGNED-PAYLOAD")
        head = f"PUT /stall/k HTTP/1.1\r\nHost: 127.0.0.1:{proc.port}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in aws.headers.items()
        )
        with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
            sock.sendall(head.encode() + b"\r\n" + b"x" * 100)
            started = time.monotonic()
            reply = b""
            while piece := sock.recv(4000):  # the server closes after answering
                reply += piece
        elapsed = time.monotonic() - started
        assert elapsed < 8, elapsed
        assert reply.startswith(b"HTTP/1.1 400"), reply
        assert b"RequestTimeout" in reply, reply
        assert make_client(proc.endpoint).list_objects_v2(Bucket="stall")["KeyCount"] == 0
    finally:
        proc.cleanup()


def _read_response(
    sock: socket.socket, buffered: bytes = b"", *, to_head: bool = False
) -> tuple[bytes, bytes, bytes]:
    """One response off ``sock`` (by its Content-Length, or none after a HEAD request: ``to_head``):
    its head, its body, and what followed."""
    data = buffered
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, f"connection closed mid-response: {data!r}"
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if to_head or b" 204 " in head.split(b"\r\n")[0]:
        length = 0
    while len(rest) < length:
        piece = sock.recv(65536)
        assert piece, "connection closed mid-body"
        rest += piece
    return head, rest[:length], rest[length:]


def _closed(sock: socket.socket) -> bool:
    """Whether the server closed the connection (EOF or reset within the socket's timeout)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_pipelined_requests_are_answered_in_order(
    server: ServerProcess, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="first", Body=b"one")
    s3.put_object(Bucket=bucket, Key="second", Body=b"two" * 1000)
    wire = b"".join(
        request_bytes(server.endpoint, method, f"/{bucket}/{key}")
        for method, key in (
            ("GET", "first"),
            ("HEAD", "second"),
            ("GET", "missing"),
            ("GET", "second"),
        )
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(wire)  # four requests in one write: answered one after the other, in order
        head, body, rest = _read_response(sock)
        assert head.startswith(b"HTTP/1.1 200") and body == b"one"
        head, body, rest = _read_response(sock, rest, to_head=True)
        assert head.startswith(b"HTTP/1.1 200") and b"content-length: 3000" in head.lower()
        assert body == b""  # HEAD: the length of the object, no body
        head, body, rest = _read_response(sock, rest)
        assert head.startswith(b"HTTP/1.1 404") and b"<Code>NoSuchKey</Code>" in body
        head, body, rest = _read_response(sock, rest)
        assert head.startswith(b"HTTP/1.1 200") and body == b"two" * 1000
        assert rest == b""


def test_http_1_0_gets_its_answer_then_the_connection_closes(
    server: ServerProcess, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="old-client", Body=b"payload")
    wire = request_bytes(server.endpoint, "GET", f"/{bucket}/old-client", version="HTTP/1.0")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(wire)
        head, body, rest = _read_response(sock)
        assert head.startswith(b"HTTP/1.1 200") and body == b"payload"
        assert b"connection: close" in head.lower()
        assert rest == b"" and _closed(sock)


def test_refused_expect_100_continue_gets_no_continue_and_a_closed_connection(
    server: ServerProcess,
) -> None:
    wire = request_bytes(
        server.endpoint,
        "PUT",
        "/no-such-bucket-here/key",
        headers={"Expect": "100-continue", "Content-Length": "100000"},
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(wire)  # and no body: the client waits for 100 Continue, which never comes
        head, body, _ = _read_response(sock)
        assert head.startswith(b"HTTP/1.1 404"), head
        assert b"<Code>NoSuchBucket</Code>" in body
        # the body may still come after all, and would be read as the next request: closed
        assert _closed(sock)


def test_response_override_with_a_line_break_is_refused(s3: Any, bucket: str) -> None:
    from botocore.exceptions import ClientError

    s3.put_object(Bucket=bucket, Key="split", Body=b"x")
    try:
        s3.get_object(
            Bucket=bucket, Key="split", ResponseContentDisposition="inline\r\nX-Injected: yes"
        )
    except ClientError as error:
        assert error.response["Error"]["Code"] == "InvalidArgument"
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert "x-injected" not in error.response["ResponseMetadata"]["HTTPHeaders"]
    else:
        raise AssertionError("a response header override with a line break was accepted")
    ok = s3.get_object(Bucket=bucket, Key="split", ResponseContentDisposition="inline\ttab")
    assert ok["ContentDisposition"] == "inline\ttab"
