"""rclone (the Debian package) against a real server process, unchanged.

The remote ``onshore:`` is configured purely through environment variables (``RCLONE_CONFIG``
points at /dev/null, so no config file of the machine is read). rclone uploads small files with
PutObject and, above ``--s3-upload-cutoff``, in its own multipart uploads, storing the whole
file's MD5 in ``x-amz-meta-md5chksum`` so that ``check`` can compare hashes of multipart objects.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import empty_bucket
from tests.api.server import ACCESS_KEY, REGION, SECRET_KEY, ServerProcess, client_env

RCLONE = shutil.which("rclone")
pytestmark = pytest.mark.skipif(
    RCLONE is None, reason="rclone binary not on PATH (CI installs the Debian package)"
)

MiB = 1024 * 1024
# Force multipart on anything above 5 MiB, fail fast instead of retrying for minutes.
FLAGS = ["--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", "--retries", "1"]
FLAGS += ["--low-level-retries", "1", "--contimeout", "10s", "--timeout", "60s"]


def rclone(
    server: ServerProcess, *args: str, check: bool = True, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = client_env(
        RCLONE_CONFIG=os.devnull,
        RCLONE_CONFIG_ONSHORE_TYPE="s3",
        RCLONE_CONFIG_ONSHORE_PROVIDER="Other",
        RCLONE_CONFIG_ONSHORE_ENV_AUTH="false",
        RCLONE_CONFIG_ONSHORE_ENDPOINT=server.endpoint,
        RCLONE_CONFIG_ONSHORE_ACCESS_KEY_ID=ACCESS_KEY,
        RCLONE_CONFIG_ONSHORE_SECRET_ACCESS_KEY=SECRET_KEY,
        RCLONE_CONFIG_ONSHORE_REGION=REGION,
        RCLONE_CONFIG_ONSHORE_FORCE_PATH_STYLE="true",
    )
    assert RCLONE is not None
    result = subprocess.run(
        [RCLONE, *args, *FLAGS], env=env, input=stdin, capture_output=True, timeout=300
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"rclone {' '.join(args)} exited {result.returncode}\n"
            f"stderr:\n{result.stderr.decode(errors='replace')}"
        )
    return result


FILES = {
    "top.txt": b"top level\n",
    "docs/readme.md": b"# readme\n",
    "docs/deep/nested/leaf.txt": b"leaf\n",
    "with space/na me.txt": b"spaces\n",
    "unicodé/日本語.txt": "こんにちは".encode(),
    "empty.txt": b"",
}
BIG = "media/big.bin"
BIG_SIZE = 12 * MiB + 4321


@pytest.fixture
def local(tmp_path: Path) -> Path:
    root = tmp_path / "up"
    for rel, data in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / BIG).parent.mkdir(parents=True)
    (root / BIG).write_bytes(os.urandom(BIG_SIZE))
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def keys_of(s3: Any, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [c["Key"] for page in pages for c in page.get("Contents", [])]


@pytest.fixture
def remote_bucket(s3: Any) -> Iterator[str]:
    """A bucket name for rclone to create; removed afterwards unless a test purged it."""
    name = f"rclone-{uuid.uuid4().hex[:12]}"
    yield name
    if name in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        empty_bucket(s3, name)
        s3.delete_bucket(Bucket=name)


def test_copy_lsjson_check_and_back(
    server: ServerProcess, s3: Any, remote_bucket: str, local: Path, tmp_path: Path
) -> None:
    remote = f"onshore:{remote_bucket}"
    rclone(server, "mkdir", remote)
    s3.head_bucket(Bucket=remote_bucket)

    rclone(server, "copy", str(local), f"{remote}/set")
    expected = tree(local)
    assert keys_of(s3, remote_bucket) == sorted((f"set/{k}" for k in expected), key=str.encode)

    # Above the 5M cutoff rclone chose multipart (5 + 5 + 2 MiB) and recorded the MD5.
    head = s3.head_object(Bucket=remote_bucket, Key=f"set/{BIG}")
    assert head["ContentLength"] == BIG_SIZE
    assert head["ETag"].endswith('-3"')
    assert head["Metadata"]["md5chksum"]  # base64 MD5 of the whole file, rclone's convention
    assert s3.list_multipart_uploads(Bucket=remote_bucket).get("Uploads", []) == []

    listing = json.loads(
        rclone(server, "lsjson", "-R", "--files-only", "--hash", f"{remote}/set").stdout
    )
    assert {e["Path"]: e["Size"] for e in listing} == {k: len(v) for k, v in expected.items()}
    assert {e["Path"]: e["Hashes"]["md5"] for e in listing} == {
        k: hashlib.md5(v).hexdigest() for k, v in expected.items()
    }

    # check compares sizes and MD5s: identical now...
    rclone(server, "check", str(local), f"{remote}/set")
    # ...and a same-size change on the server is caught by its hash.
    changed = bytearray(FILES["docs/readme.md"])
    changed[0] ^= 0xFF
    s3.put_object(Bucket=remote_bucket, Key="set/docs/readme.md", Body=bytes(changed))
    differs = rclone(server, "check", str(local), f"{remote}/set", check=False)
    assert differs.returncode != 0
    assert b"1 differences found" in differs.stderr
    assert b"docs/readme.md" in differs.stderr
    s3.put_object(Bucket=remote_bucket, Key="set/docs/readme.md", Body=FILES["docs/readme.md"])

    down = tmp_path / "down"
    rclone(server, "copy", f"{remote}/set", str(down))
    assert tree(down) == expected

    # Ranged reads and a streamed upload of unknown length (rcat goes multipart above 5M).
    big = expected[BIG]
    part = rclone(
        server, "cat", "--offset", str(5 * MiB - 3), "--count", "10", f"{remote}/set/{BIG}"
    )
    assert part.stdout == big[5 * MiB - 3 : 5 * MiB + 7]
    rclone(server, "rcat", f"{remote}/streamed.bin", stdin=big)
    streamed = s3.head_object(Bucket=remote_bucket, Key="streamed.bin")
    assert streamed["ContentLength"] == len(big)
    assert streamed["ETag"].endswith('-3"')
    assert rclone(server, "cat", f"{remote}/streamed.bin").stdout == big

    # Server-side copy; above --s3-copy-cutoff rclone copies in ranged UploadPartCopy parts.
    rclone(server, "copyto", "--s3-copy-cutoff", "5M", f"{remote}/set/{BIG}", f"{remote}/copy.bin")
    copied = s3.get_object(Bucket=remote_bucket, Key="copy.bin")
    assert copied["ETag"].endswith('-3"')
    assert copied["Body"].read() == big
    md5sum = rclone(server, "md5sum", "--include", "copy.bin", remote).stdout.decode()
    assert md5sum.split() == [hashlib.md5(big).hexdigest(), "copy.bin"]


def test_sync_delete_purge(
    server: ServerProcess, s3: Any, remote_bucket: str, local: Path, tmp_path: Path
) -> None:
    remote = f"onshore:{remote_bucket}"
    rclone(server, "mkdir", remote)
    rclone(server, "sync", str(local), remote)
    assert keys_of(s3, remote_bucket) == sorted(tree(local), key=str.encode)

    # Local deletions and a change: sync makes the remote match exactly.
    (local / "top.txt").unlink()
    shutil.rmtree(local / "docs" / "deep")
    (local / "with space" / "na me.txt").write_bytes(b"changed content\n")
    (local / "new.txt").write_bytes(b"new\n")
    rclone(server, "sync", str(local), remote)
    expected = tree(local)
    assert keys_of(s3, remote_bucket) == sorted(expected, key=str.encode)
    got = s3.get_object(Bucket=remote_bucket, Key="with space/na me.txt")["Body"].read()
    assert got == b"changed content\n"
    rclone(server, "check", str(local), remote)

    # Sync down into a directory with a stray file: the stray goes, the rest matches.
    down = tmp_path / "down"
    down.mkdir()
    (down / "stray.txt").write_bytes(b"stray")
    rclone(server, "sync", remote, str(down))
    assert tree(down) == expected

    # delete removes files matching a filter and leaves the rest.
    rclone(server, "delete", "--include", "*.txt", remote)
    assert keys_of(s3, remote_bucket) == sorted(
        (k for k in expected if not k.endswith(".txt")), key=str.encode
    )
    size = json.loads(rclone(server, "size", "--json", remote).stdout)
    assert (size["count"], size["bytes"]) == (2, BIG_SIZE + len(FILES["docs/readme.md"]))

    # purge removes everything, the bucket included.
    rclone(server, "purge", remote)
    assert remote_bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    missing = rclone(server, "lsjson", remote, check=False)
    assert missing.returncode != 0
