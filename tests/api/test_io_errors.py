"""A failing disk (``EIO`` injected on blob writes, fsyncs and reads): each request that meets it
gets a clean 500 ``InternalError`` that leaks nothing, the server stays up and keeps serving
what does not touch the failing operation, nothing half-written stays behind, and once the disk
is healthy again (a restart without the fault) the store is consistent and complete."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.api.conftest import make_client
from tests.api.server import ServerProcess, client_env

BIG = 256 * 1024  # above the inline threshold: stored as a blob file


def leftovers(data_dir: Path) -> list[Path]:
    return list(data_dir.rglob("*.part"))


def assert_clean_500(error: ClientError) -> None:
    response = error.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert response["Error"]["Code"] == "InternalError"
    message = response["Error"]["Message"]
    assert "Input/output" not in message and "/" not in message and "Errno" not in message


@pytest.mark.parametrize("operation", ["write", "fsync"])
def test_failing_blob_writes(tmp_path: Path, operation: str) -> None:
    server = ServerProcess(tmp_path / "data", env={"ONSHORE_FAULT_IO": operation}).start()
    try:
        s3 = make_client(server.endpoint)
        bucket = f"eio-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        with pytest.raises(ClientError) as failed:
            s3.put_object(Bucket=bucket, Key="big", Body=os.urandom(BIG))
        assert_clean_500(failed.value)
        # Small objects live in the database, not on the failing path: still served.
        s3.put_object(Bucket=bucket, Key="small", Body=b"tiny")
        assert s3.get_object(Bucket=bucket, Key="small")["Body"].read() == b"tiny"
        listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        assert listed == ["small"]  # the failed write is not visible
        assert leftovers(server.data_dir) == []
        assert server.log_path is not None
        assert "Traceback" in server.log_path.read_text()  # the details go to the log only
    finally:
        server.stop()
    # Healthy again: the failed write left nothing, fsck agrees, writes work.
    healthy = ServerProcess(server.data_dir, port=server.port).start()
    try:
        s3 = make_client(healthy.endpoint)
        body = os.urandom(BIG)
        s3.put_object(Bucket=bucket, Key="big", Body=body)
        assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == body
    finally:
        healthy.stop()
    fsck = subprocess.run(
        [sys.executable, "-m", "onshore", "fsck", "--data-dir", str(server.data_dir)],
        env=client_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    healthy.cleanup()


def test_failing_blob_reads(tmp_path: Path) -> None:
    data = tmp_path / "data"
    writer = ServerProcess(data).start()
    body = os.urandom(BIG)
    try:
        s3 = make_client(writer.endpoint)
        s3.create_bucket(Bucket="eio-read")
        s3.put_object(Bucket="eio-read", Key="big", Body=body)
    finally:
        writer.stop()
    failing = ServerProcess(data, env={"ONSHORE_FAULT_IO": "read"}).start()
    try:
        s3 = make_client(failing.endpoint)
        with pytest.raises(ClientError) as failed:
            s3.get_object(Bucket="eio-read", Key="big")
        assert_clean_500(failed.value)
        assert s3.head_object(Bucket="eio-read", Key="big")["ContentLength"] == BIG
        assert ready(failing.endpoint) == 200  # the server stays up
    finally:
        failing.stop()
    healthy = ServerProcess(data).start()
    try:
        got = make_client(healthy.endpoint).get_object(Bucket="eio-read", Key="big")
        assert got["Body"].read() == body
    finally:
        healthy.cleanup()


def ready(endpoint: str) -> int:
    import urllib.request

    with urllib.request.urlopen(endpoint + "/onshore/health/ready", timeout=5) as response:
        return int(response.status)
