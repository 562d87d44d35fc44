"""Graceful shutdown under load: SIGTERM lets in-flight requests finish, refuses new
connections, exits 0, and loses nothing acknowledged."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from botocore.awsrequest import AWSRequest

from tests.api.conftest import make_client
from tests.api.raw import sign_request
from tests.api.server import ServerProcess

PIECE = 256 * 1024
PIECES = 24  # 6 MiB per upload, sent over ~2.4 s


def slow_put(port: int, key: str, body: bytes, pause: float) -> tuple[int, bytes]:
    """PUT ``body`` in pieces with a pause between them; the status line and body of the reply."""
    aws = AWSRequest(
        method="PUT",
        url=f"http://127.0.0.1:{port}/drain/{key}",
        headers={"Content-Length": str(len(body))},
    )
    sign_request(aws, payload_hash="UNSIGNED-PAYLOAD")
    head = f"PUT /drain/{key} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in aws.headers.items()
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode() + b"\r\n")
        for start in range(0, len(body), PIECE):
            sock.sendall(body[start : start + PIECE])
            time.sleep(pause)
        reply = b""
        while b"\r\n\r\n" not in reply:
            piece = sock.recv(65536)
            if not piece:
                break
            reply += piece
    status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else 0
    return status, reply


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_finishes_in_flight_requests_and_loses_nothing(
    tmp_path: Path, workers: str
) -> None:
    server = ServerProcess(
        tmp_path / "data", extra_args=("--workers", workers, "--shutdown-timeout", "20")
    ).start()
    try:
        make_client(server.endpoint).create_bucket(Bucket="drain")
        bodies = {f"in-flight-{n}": os.urandom(PIECE * PIECES) for n in range(6)}
        results: dict[str, int] = {}

        def upload(key: str) -> None:
            results[key] = slow_put(server.port, key, bodies[key], pause=0.1)[0]

        threads = [threading.Thread(target=upload, args=(key,)) for key in bodies]
        for thread in threads:
            thread.start()
        time.sleep(0.5)  # every upload is under way, none is finished
        assert server.process is not None
        sent_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        time.sleep(1.0)  # the supervisor notices signals every 0.5 s
        assert all(thread.is_alive() for thread in threads)  # still uploading
        with pytest.raises(OSError):  # the listening socket is closed: new clients are refused
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
        for thread in threads:
            thread.join(60)
        assert server.process.wait(30) == 0
        assert time.monotonic() - sent_at < 20
        assert results == dict.fromkeys(bodies, 200)

        server.start()
        s3 = make_client(server.endpoint)
        for key, body in bodies.items():
            stored = s3.get_object(Bucket="drain", Key=key)["Body"].read()
            assert hashlib.sha256(stored).digest() == hashlib.sha256(body).digest(), key
    finally:
        server.cleanup()
