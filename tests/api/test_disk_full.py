"""A full disk: writes fail with a clear error, the server stays up, nothing acknowledged is
lost, nothing half-written stays behind, and writes work again once space is freed.

The data directory lives on a small tmpfs mounted for the test (which needs root, as CI runs).
Both stores fill up: blob files (1 MiB objects) and the SQLite database (inline small objects),
with and without the free-space reserve kept for deletes (``min_free_space``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.conftest import make_client
from tests.api.server import ServerProcess

SIZE = "32m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    # Another program's file on the same disk: freeing it is what an operator does when no
    # reserve was kept (min_free_space = 0) and even deletes can no longer be written.
    (mount / "ballast").write_bytes(b"\0" * 3 * 1024 * 1024)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def full_server(small_disk: Path, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    reserve = str(request.param)
    server = ServerProcess(
        small_disk / "data", extra_args=("--workers", "1", "--min-free-space", reserve)
    ).start()
    yield server
    server.stop()


def fill(s3: Any, bucket: str, size: int, limit: int) -> tuple[dict[str, str], ClientError]:
    """PUT objects of ``size`` bytes until one fails; return the acknowledged ones (key → MD5)
    and the error."""
    written: dict[str, str] = {}
    for n in range(limit):
        body = os.urandom(size)
        key = f"fill/{size}/{n:05d}"
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=body)
        except ClientError as error:
            return written, error
        written[key] = hashlib.md5(body).hexdigest()
    raise AssertionError(f"{limit} objects of {size} bytes fit on a {SIZE} disk")


def assert_all_readable(s3: Any, bucket: str, written: dict[str, str]) -> None:
    for key, md5 in written.items():
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.md5(body).hexdigest() == md5, key


def assert_insufficient_storage(error: ClientError) -> None:
    response = error.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 507
    assert response["Error"]["Code"] == "InsufficientStorage"
    message = response["Error"]["Message"]
    assert "no space left" in message and "/" not in message  # no path leaks


def leftovers(data_dir: Path) -> list[str]:
    """Temporary files in the data directory (a failed write must not leave one)."""
    return [str(p) for p in data_dir.rglob("*.part")]


@pytest.mark.parametrize(
    ("size", "limit", "full_server"),
    [
        # No reserve: the disk really fills, the write meets ENOSPC and is undone.
        (1024 * 1024, 60, 0),
        # With a reserve: writes stop short of it (counting the declared size), and deletes use
        # it. Small objects fill the SQLite database, which needs space even to delete. The
        # reserve also absorbs the audit records of the reads that follow (each request adds
        # one, and the reads' are written even when writes are refused).
        (1024 * 1024, 60, 8 * 1024 * 1024),
        (16 * 1024, 4000, 8 * 1024 * 1024),
    ],
    ids=["blob-files-no-reserve", "blob-files", "inline-in-database"],
    indirect=["full_server"],
)
def test_full_disk_refuses_writes_cleanly_and_recovers(
    full_server: ServerProcess, size: int, limit: int
) -> None:
    s3 = make_client(full_server.endpoint)
    bucket = f"full-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    written, error = fill(s3, bucket, size, limit)
    assert written, "not one object fitted"
    assert_insufficient_storage(error)

    # The server stays up and consistent: reads, listings and HEAD agree on every key.
    assert_all_readable(s3, bucket, written)
    listed = {
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    }
    assert listed == set(written)
    assert leftovers(full_server.data_dir) == []

    # Freeing space makes writes work again. Without a reserve the database may be too full to
    # record even a delete: then the operator frees space outside onshore first.
    if full_server.extra_args[-1] == "0":
        (full_server.data_dir.parent / "ballast").unlink()
    doomed = sorted(written)[: max(4, len(written) // 2)]
    s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": k} for k in doomed], "Quiet": True}
    )
    for key in doomed:
        del written[key]
    body = os.urandom(size)
    # Freed blobs are deleted just after the delete commits, and free space is re-read at most
    # every half second: the write succeeds within moments, as a client's retry would see.
    deadline = time.monotonic() + 10
    while True:
        try:
            s3.put_object(Bucket=bucket, Key="after-free", Body=body)
            break
        except ClientError as error:
            assert_insufficient_storage(error)
            assert time.monotonic() < deadline, "writes did not resume after deletes"
            time.sleep(0.25)
    written["after-free"] = hashlib.md5(body).hexdigest()
    assert_all_readable(s3, bucket, written)

    # And after a restart everything acknowledged is still there, with nothing left over.
    full_server.stop()
    full_server.start()
    assert_all_readable(make_client(full_server.endpoint), bucket, written)
    assert leftovers(full_server.data_dir) == []
