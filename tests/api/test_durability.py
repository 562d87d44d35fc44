"""Durability: acknowledged writes survive SIGKILL; unacknowledged ones leave no trace."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSRequest

from tests.api.conftest import make_client
from tests.api.raw import sign_request
from tests.api.server import ServerProcess


@pytest.fixture
def own_server(tmp_path: Path) -> Any:
    proc = ServerProcess(tmp_path / "data").start()
    yield proc
    proc.cleanup()


def blob_files(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "blobs").rglob("*") if p.is_file()]


def temp_files(data_dir: Path) -> list[Path]:
    tmp = data_dir / "tmp"
    return [p for p in tmp.rglob("*") if p.is_file()] if tmp.exists() else []


def test_acknowledged_writes_survive_sigkill(own_server: ServerProcess) -> None:
    s3 = make_client(own_server.endpoint)
    s3.create_bucket(Bucket="durable")
    s3.put_bucket_versioning(Bucket="durable", VersioningConfiguration={"Status": "Enabled"})
    expected: dict[str, str] = {}
    for i in range(60):
        size = [10, 4096, 70_000, 1_500_000][i % 4]
        body = os.urandom(size)
        s3.put_object(Bucket="durable", Key=f"obj-{i}", Body=body)
        expected[f"obj-{i}"] = hashlib.sha256(body).hexdigest()
    s3.delete_object(Bucket="durable", Key="obj-0")
    del expected["obj-0"]
    own_server.kill()
    own_server.start()
    s3 = make_client(own_server.endpoint)
    for key, digest in expected.items():
        body = s3.get_object(Bucket="durable", Key=key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == digest, key
    listed = {
        c["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="durable")
        for c in page.get("Contents", [])
    }
    assert listed == set(expected)


def test_interrupted_upload_leaves_nothing(own_server: ServerProcess) -> None:
    s3 = make_client(own_server.endpoint)
    s3.create_bucket(Bucket="partial")
    total = 8 * 1024 * 1024
    aws = AWSRequest(
        method="PUT",
        url=f"{own_server.endpoint}/partial/half",
        headers={"Content-Length": str(total), "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"},
    )
    sign_request(aws, payload_hash="UNSIGNED-PAYLOAD")
    head = f"PUT /partial/half HTTP/1.1\r\nHost: 127.0.0.1:{own_server.port}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in aws.headers.items()
    )
    with socket.create_connection(("127.0.0.1", own_server.port)) as sock:
        sock.sendall(head.encode() + b"\r\n")
        sock.sendall(os.urandom(total // 2))
        time.sleep(0.5)
        own_server.kill()
    own_server.start()
    s3 = make_client(own_server.endpoint)
    assert s3.list_objects_v2(Bucket="partial")["KeyCount"] == 0
    assert temp_files(own_server.data_dir) == []
    assert blob_files(own_server.data_dir) == []


def test_orphans_are_swept_at_startup(own_server: ServerProcess) -> None:
    s3 = make_client(own_server.endpoint)
    s3.create_bucket(Bucket="sweep")
    body = os.urandom(200_000)
    s3.put_object(Bucket="sweep", Key="kept", Body=body)
    kept = blob_files(own_server.data_dir)
    assert len(kept) == 1
    own_server.stop()
    orphan = own_server.data_dir / "blobs" / "ab" / "cd" / ("abcd" + "0" * 28)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"orphan")
    (own_server.data_dir / "tmp").mkdir(exist_ok=True)
    (own_server.data_dir / "tmp" / "leftover.tmp").write_bytes(b"temp")
    own_server.start()
    assert blob_files(own_server.data_dir) == kept
    assert temp_files(own_server.data_dir) == []
    s3 = make_client(own_server.endpoint)
    assert s3.get_object(Bucket="sweep", Key="kept")["Body"].read() == body


def test_overwrite_and_delete_free_space(own_server: ServerProcess) -> None:
    s3 = make_client(own_server.endpoint)
    s3.create_bucket(Bucket="space")
    for _ in range(3):
        s3.put_object(Bucket="space", Key="k", Body=os.urandom(300_000))
    deadline = time.monotonic() + 5
    while len(blob_files(own_server.data_dir)) != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(blob_files(own_server.data_dir)) == 1
    s3.delete_object(Bucket="space", Key="k")
    deadline = time.monotonic() + 5
    while blob_files(own_server.data_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert blob_files(own_server.data_dir) == []


def test_sigterm_is_clean(own_server: ServerProcess) -> None:
    s3 = make_client(own_server.endpoint)
    s3.create_bucket(Bucket="term")
    s3.put_object(Bucket="term", Key="k", Body=b"x")
    assert own_server.stop() == 0
