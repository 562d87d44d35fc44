"""The AWS CLI (v1, ``awscli`` from PyPI) against a real server process, unchanged.

Every command runs as a subprocess (``python -m awscli``) with a hermetic environment
(``client_env()``: explicit credentials and region, no shared config files, an empty HOME) and
``--endpoint-url``; results are checked through the CLI's JSON output, the downloaded bytes,
and an independent boto3 client.

Over plain HTTP botocore signs every payload. Over HTTPS it sends uploads as ``aws-chunked``
bodies with ``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` and a trailing CRC32, which is what users of
a TLS deployment send by default; ``TlsFrontend`` (a TLS terminator in front of the server, with
a throwaway self-signed certificate) lets the last tests take that path.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shlex
import ssl
import subprocess
import sys
import threading
import urllib.request
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.certs import self_signed
from tests.api.server import ServerProcess, client_env

MiB = 1024 * 1024


_HOME: list[Path] = []


@pytest.fixture(scope="module", autouse=True)
def empty_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """An empty HOME for the CLI: botocore would also read models from ~/.aws/models."""
    _HOME[:] = [tmp_path_factory.mktemp("aws-cli-home")]


def cli_env() -> dict[str, str]:
    return client_env(HOME=str(_HOME[0]), PYTHONIOENCODING="utf-8", PYTHONUTF8="1")


def aws(
    server: ServerProcess | TlsFrontend, command: str, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``aws <command> <args>`` against the server (``command`` is split as a shell would;
    ``args`` are passed verbatim); on failure, raise with the CLI's own output."""
    argv = [*shlex.split(command), *args]
    if isinstance(server, TlsFrontend):
        argv = ["--ca-bundle", str(server.ca_bundle), *argv]
    result = subprocess.run(
        [sys.executable, "-m", "awscli", "--endpoint-url", server.endpoint, "--output", "json"]
        + argv,
        env=cli_env(),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"aws {shlex.join(argv)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def aws_json(server: ServerProcess | TlsFrontend, command: str, *args: str) -> Any:
    out = aws(server, command, *args).stdout
    return json.loads(out) if out.strip() else {}


def write_random(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path`` in 1 MiB pieces; return their SHA-256."""
    digest = hashlib.sha256()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, MiB))
            digest.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree(root: Path) -> dict[str, bytes]:
    """Relative POSIX path -> bytes of every file under ``root``."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def keys_of(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [c["Key"] for page in pages for c in page.get("Contents", [])]


def s3_ls_names(stdout: str) -> list[str]:
    """Names from ``aws s3 ls`` output: ``PRE name/`` lines and ``date time size name`` lines."""
    names = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        if line.strip().startswith("PRE "):
            names.append(line.strip()[4:])
        else:
            names.append(line.split(maxsplit=3)[3])
    return names


# -- aws s3 (high-level commands) ---------------------------------------------------------------


def test_mb_ls_rb(server: ServerProcess, s3: Any, tmp_path: Path) -> None:
    name = f"cli-{uuid.uuid4().hex[:12]}"
    assert aws(server, f"s3 mb s3://{name}").stdout.strip() == f"make_bucket: {name}"
    listed = aws(server, "s3 ls").stdout
    assert name in [line.split()[-1] for line in listed.splitlines()]
    s3.head_bucket(Bucket=name)

    (tmp_path / "f").write_bytes(b"x")
    aws(server, "s3 cp", str(tmp_path / "f"), f"s3://{name}/f")
    refused = aws(server, f"s3 rb s3://{name}", check=False)
    assert refused.returncode != 0
    assert "BucketNotEmpty" in refused.stderr

    aws(server, f"s3 rb s3://{name} --force")
    assert name not in aws(server, "s3 ls").stdout
    missing = aws(server, f"s3 ls s3://{name}", check=False)
    assert missing.returncode != 0 and "NoSuchBucket" in missing.stderr
    gone = aws(server, f"s3api head-bucket --bucket {name}", check=False)
    assert gone.returncode != 0 and "404" in gone.stderr


def test_cp_small_up_and_down(server: ServerProcess, s3: Any, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "hello.txt"
    src.write_bytes(b"hello, onshore\n")
    aws(
        server,
        "s3 cp --content-type text/plain --metadata owner=tests",
        str(src),
        f"s3://{bucket}/docs/hello.txt",
    )
    head = s3.head_object(Bucket=bucket, Key="docs/hello.txt")
    assert head["ContentLength"] == src.stat().st_size
    assert head["ContentType"] == "text/plain"
    assert head["Metadata"] == {"owner": "tests"}
    assert head["ETag"] == f'"{hashlib.md5(src.read_bytes()).hexdigest()}"'

    dst = tmp_path / "down" / "hello.txt"
    aws(server, f"s3 cp s3://{bucket}/docs/hello.txt", str(dst))
    assert dst.read_bytes() == src.read_bytes()

    # Streams of unknown length: stdin up, stdout down.
    cli = [sys.executable, "-m", "awscli", "--endpoint-url", server.endpoint, "s3", "cp"]
    data = b"from stdin " * 1000
    up = subprocess.run(
        [*cli, "-", f"s3://{bucket}/stdin.bin"],
        input=data,
        env=cli_env(),
        capture_output=True,
        timeout=120,
    )
    assert up.returncode == 0, up.stderr
    down = subprocess.run(
        [*cli, f"s3://{bucket}/stdin.bin", "-"],
        env=cli_env(),
        capture_output=True,
        timeout=120,
    )
    assert down.returncode == 0, down.stderr
    assert down.stdout == data

    # A presigned URL from the CLI works with a plain HTTP client.
    url = aws(server, f"s3 presign s3://{bucket}/docs/hello.txt --expires-in 300").stdout.strip()
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.read() == src.read_bytes()

    missing = aws(server, f"s3 cp s3://{bucket}/nope", str(tmp_path / "nope"), check=False)
    assert missing.returncode != 0
    assert "404" in missing.stderr


def test_cp_large_file_goes_multipart(
    server: ServerProcess, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """40 MiB with the CLI's defaults (8 MiB threshold and part size): the CLI picks multipart
    on upload (5 parts), parallel ranged GETs on download and UploadPartCopy for s3-to-s3."""
    src = tmp_path / "big.bin"
    digest = write_random(src, 40 * MiB)
    aws(server, "s3 cp", str(src), f"s3://{bucket}/big.bin")

    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == 40 * MiB
    with src.open("rb") as f:
        md5s = b"".join(hashlib.md5(c).digest() for c in iter(lambda: f.read(8 * MiB), b""))
    assert head["ETag"] == f'"{hashlib.md5(md5s).hexdigest()}-5"'
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

    dst = tmp_path / "back.bin"
    aws(server, f"s3 cp s3://{bucket}/big.bin", str(dst))
    assert dst.stat().st_size == 40 * MiB
    assert sha256_file(dst) == digest

    aws(server, f"s3 cp s3://{bucket}/big.bin s3://{bucket}/copy/big.bin")
    copied = s3.get_object(Bucket=bucket, Key="copy/big.bin")["Body"]
    h = hashlib.sha256()
    for chunk in iter(lambda: copied.read(MiB), b""):
        h.update(chunk)
    assert h.hexdigest() == digest


SYNC_FILES = {
    "top.txt": b"top level\n",
    "a/one.txt": b"one\n",
    "a/b/two.bin": bytes(range(256)) * 40,
    "a/b/c/deep.txt": b"deep\n",
    "with space/file name.txt": b"spaces\n",
    "unicodé/日本語 ファイル.txt": "こんにちは".encode(),
    "plus+and%percent.txt": b"odd characters\n",
    "empty.txt": b"",
}


def test_sync_both_ways(server: ServerProcess, s3: Any, bucket: str, tmp_path: Path) -> None:
    local = tmp_path / "local"
    for rel, data in SYNC_FILES.items():
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        (local / rel).write_bytes(data)
    remote = f"s3://{bucket}/site"

    aws(server, "s3 sync", str(local), remote)
    assert keys_of(s3, bucket) == sorted((f"site/{k}" for k in SYNC_FILES), key=str.encode)
    for rel, data in SYNC_FILES.items():
        assert s3.get_object(Bucket=bucket, Key=f"site/{rel}")["Body"].read() == data

    # Nothing changed: a second sync transfers nothing.
    assert aws(server, "s3 sync", str(local), remote).stdout.strip() == ""

    # A local deletion and a change, pushed with --delete.
    (local / "a" / "one.txt").unlink()
    (local / "top.txt").write_bytes(b"top level, changed and longer\n")
    out = aws(server, "s3 sync --delete", str(local), remote).stdout
    assert f"delete: {remote}/a/one.txt" in out
    expected = {k: v for k, v in SYNC_FILES.items() if k != "a/one.txt"}
    expected["top.txt"] = b"top level, changed and longer\n"
    assert keys_of(s3, bucket) == sorted((f"site/{k}" for k in expected), key=str.encode)

    # Down into a fresh directory: the same tree, byte for byte.
    down = tmp_path / "down"
    aws(server, "s3 sync", remote, str(down))
    assert tree(down) == expected

    # A remote deletion pulled down with --delete removes the local file.
    s3.delete_object(Bucket=bucket, Key="site/a/b/c/deep.txt")
    out = aws(server, "s3 sync --delete", remote, str(down)).stdout
    assert "delete: " in out and "deep.txt" in out
    del expected["a/b/c/deep.txt"]
    assert tree(down) == expected


def test_ls_recursive_and_prefixes(server: ServerProcess, s3: Any, bucket: str) -> None:
    keys = ["dir/a.txt", "dir/sub/b.txt", "dir/sub/c.txt", "other/d.txt", "root.txt", "é/f.txt"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())

    top = aws(server, f"s3 ls s3://{bucket}").stdout
    assert s3_ls_names(top) == ["dir/", "other/", "é/", "root.txt"]  # PRE lines come first

    in_dir = aws(server, f"s3 ls s3://{bucket}/dir/").stdout
    assert s3_ls_names(in_dir) == ["sub/", "a.txt"]

    recursive = aws(server, f"s3 ls s3://{bucket} --recursive --summarize").stdout
    lines = [line for line in recursive.splitlines() if line.startswith("20")]
    assert s3_ls_names("\n".join(lines)) == sorted(keys, key=str.encode)
    sizes = {line.split(maxsplit=3)[3]: int(line.split()[2]) for line in lines}
    assert sizes == {k: len(k.encode()) for k in keys}
    assert "Total Objects: 6" in recursive
    assert f"Total Size: {sum(len(k.encode()) for k in keys)}" in recursive

    partial = aws(server, f"s3 ls s3://{bucket}/dir/sub/ --recursive").stdout
    assert s3_ls_names(partial) == ["dir/sub/b.txt", "dir/sub/c.txt"]


def test_rm_recursive(server: ServerProcess, s3: Any, bucket: str) -> None:
    for key in ["logs/1", "logs/2", "logs/deep/3", "logs-not/4", "keep"]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    out = aws(server, f"s3 rm s3://{bucket}/logs/ --recursive").stdout
    assert out.count("delete: ") == 3
    assert keys_of(s3, bucket) == ["keep", "logs-not/4"]
    aws(server, f"s3 rm s3://{bucket}/keep")
    assert keys_of(s3, bucket) == ["logs-not/4"]


# -- aws s3api (one call per S3 operation) ------------------------------------------------------


def test_s3api_put_head_get_range(server: ServerProcess, bucket: str, tmp_path: Path) -> None:
    body = tmp_path / "body.bin"
    data = bytes(range(256)) * 4
    body.write_bytes(data)
    obj = f"--bucket {bucket} --key dir/obj"
    put = aws_json(
        server,
        f"s3api put-object {obj} --content-type application/x-test --metadata colour=blue,size=4",
        "--body",
        str(body),
    )
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'

    head = aws_json(server, f"s3api head-object {obj}")
    assert head["ContentLength"] == len(data)
    assert head["ContentType"] == "application/x-test"
    assert head["Metadata"] == {"colour": "blue", "size": "4"}
    assert head["ETag"] == put["ETag"]

    out = tmp_path / "range.bin"
    got = aws_json(server, f"s3api get-object {obj} --range bytes=100-199", str(out))
    assert got["ContentRange"] == f"bytes 100-199/{len(data)}"
    assert got["ContentLength"] == 100
    assert out.read_bytes() == data[100:200]

    aws_json(server, f"s3api get-object {obj} --range bytes=-10", str(out))
    assert out.read_bytes() == data[-10:]

    missing = aws(server, f"s3api head-object --bucket {bucket} --key nope", check=False)
    assert missing.returncode != 0 and "404" in missing.stderr
    no_key = aws(server, f"s3api get-object --bucket {bucket} --key nope", str(out), check=False)
    assert no_key.returncode != 0 and "NoSuchKey" in no_key.stderr


def test_s3api_list_objects_v2_delimiter_and_pagination(
    server: ServerProcess, s3: Any, bucket: str
) -> None:
    keys = [f"p/{i:02d}" for i in range(7)] + ["q/x", "q/y/z", "r", "s t", "ü"]
    keys.sort(key=str.encode)
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
    ls = f"s3api list-objects-v2 --bucket {bucket}"

    delim = aws_json(server, f"{ls} --delimiter /")
    assert [c["Key"] for c in delim["Contents"]] == ["r", "s t", "ü"]
    assert [p["Prefix"] for p in delim["CommonPrefixes"]] == ["p/", "q/"]

    sub = aws_json(server, f"{ls} --prefix q/ --delimiter /")
    assert [c["Key"] for c in sub["Contents"]] == ["q/x"]
    assert [p["Prefix"] for p in sub["CommonPrefixes"]] == ["q/y/"]

    # The CLI's own paginator: pages of 2 from the server, 5 items per CLI call.
    seen: list[str] = []
    token: str | None = None
    calls = 0
    while True:
        page = aws_json(
            server,
            f"{ls} --page-size 2 --max-items 5",
            *(["--starting-token", token] * bool(token)),
        )
        calls += 1
        seen += [c["Key"] for c in page.get("Contents", [])]
        token = page.get("NextToken")
        if not token:
            break
        assert len(page["Contents"]) == 5
    assert seen == keys
    assert calls == 3  # 12 keys: 5 + 5 + 2

    # ListObjects v1 through the same paginator (Marker / NextMarker), with a delimiter.
    v1 = aws_json(server, f"s3api list-objects --bucket {bucket} --page-size 2 --delimiter /")
    assert [c["Key"] for c in v1["Contents"]] == ["r", "s t", "ü"]
    assert [p["Prefix"] for p in v1["CommonPrefixes"]] == ["p/", "q/"]
    v1_all = aws_json(server, f"s3api list-objects --bucket {bucket} --page-size 3")
    assert [c["Key"] for c in v1_all["Contents"]] == keys

    # Single raw pages (--no-paginate) expose the continuation-token protocol itself.
    first = aws_json(server, f"{ls} --max-keys 4 --no-paginate")
    assert first["IsTruncated"] is True and first["KeyCount"] == 4
    rest = aws_json(
        server, f"{ls} --no-paginate --continuation-token", first["NextContinuationToken"]
    )
    assert rest["IsTruncated"] is False
    assert [c["Key"] for c in first["Contents"] + rest["Contents"]] == keys


def test_s3api_versioning(server: ServerProcess, bucket: str, tmp_path: Path) -> None:
    aws(
        server,
        f"s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled",
    )
    assert aws_json(server, f"s3api get-bucket-versioning --bucket {bucket}") == {
        "Status": "Enabled"
    }

    body = tmp_path / "b"
    ids = []
    for content in (b"first", b"second"):
        body.write_bytes(content)
        put = aws_json(server, f"s3api put-object --bucket {bucket} --key doc --body", str(body))
        ids.append(put["VersionId"])
    assert len(set(ids)) == 2 and "null" not in ids
    marker = aws_json(server, f"s3api delete-object --bucket {bucket} --key doc")
    assert marker["DeleteMarker"] is True

    listing = aws_json(server, f"s3api list-object-versions --bucket {bucket}")
    assert [(v["VersionId"], v["IsLatest"]) for v in listing["Versions"]] == [
        (ids[1], False),
        (ids[0], False),
    ]
    assert [(m["VersionId"], m["IsLatest"]) for m in listing["DeleteMarkers"]] == [
        (marker["VersionId"], True)
    ]

    got = aws_json(
        server, f"s3api get-object --bucket {bucket} --key doc --version-id {ids[0]}", str(body)
    )
    assert got["VersionId"] == ids[0]
    assert body.read_bytes() == b"first"

    # Paged one entry at a time (key and version-id markers), the CLI sees the same listing.
    paged = aws_json(server, f"s3api list-object-versions --bucket {bucket} --page-size 1")
    assert paged["Versions"] == listing["Versions"]
    assert paged["DeleteMarkers"] == listing["DeleteMarkers"]


def test_s3api_multipart_by_hand(
    server: ServerProcess, s3: Any, bucket: str, tmp_path: Path
) -> None:
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), b"the tail"]
    obj = f"--bucket {bucket} --key mp/obj"
    created = aws_json(
        server, f"s3api create-multipart-upload {obj} --content-type application/x-mp"
    )
    upload = f"{obj} --upload-id {created['UploadId']}"
    assert created["Key"] == "mp/obj" and created["Bucket"] == bucket

    done = []
    for number, data in enumerate(parts, start=1):
        path = tmp_path / f"part{number}"
        path.write_bytes(data)
        result = aws_json(
            server, f"s3api upload-part {upload} --part-number {number} --body", str(path)
        )
        assert result["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
        done.append({"PartNumber": number, "ETag": result["ETag"]})

    listed = aws_json(server, f"s3api list-parts {upload}")
    assert [(p["PartNumber"], p["Size"]) for p in listed["Parts"]] == [
        (1, 5 * MiB),
        (2, 5 * MiB),
        (3, len(parts[2])),
    ]
    uploads = aws_json(server, f"s3api list-multipart-uploads --bucket {bucket}")
    assert [u["UploadId"] for u in uploads["Uploads"]] == [created["UploadId"]]

    manifest = tmp_path / "parts.json"
    manifest.write_text(json.dumps({"Parts": done}))
    completed = aws_json(
        server, f"s3api complete-multipart-upload {upload} --multipart-upload", f"file://{manifest}"
    )
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    assert completed["ETag"] == f'"{hashlib.md5(md5s).hexdigest()}-3"'

    out = tmp_path / "out"
    got = aws_json(server, f"s3api get-object {obj}", str(out))
    assert got["ContentType"] == "application/x-mp"
    assert got["ContentLength"] == sum(map(len, parts))
    assert out.read_bytes() == b"".join(parts)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

    # An aborted upload is gone: a part sent to it afterwards is NoSuchUpload.
    other = aws_json(server, f"s3api create-multipart-upload --bucket {bucket} --key x")
    gone = f"--bucket {bucket} --key x --upload-id {other['UploadId']}"
    aws(server, f"s3api abort-multipart-upload {gone}")
    late = aws(
        server, f"s3api upload-part {gone} --part-number 1 --body", str(manifest), check=False
    )
    assert late.returncode != 0 and "NoSuchUpload" in late.stderr


def test_s3api_delete_objects(server: ServerProcess, s3: Any, bucket: str, tmp_path: Path) -> None:
    for key in ["a", "b/c", "d e", "ß"]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    request = tmp_path / "delete.json"
    doomed = ["a", "d e", "ß", "never-existed"]
    request.write_text(json.dumps({"Objects": [{"Key": k} for k in doomed]}), encoding="utf-8")
    result = aws_json(
        server, f"s3api delete-objects --bucket {bucket} --delete", f"file://{request}"
    )
    # Deleting a missing key is a success in S3.
    assert sorted(d["Key"] for d in result["Deleted"]) == sorted(doomed)
    assert result.get("Errors", []) == []
    assert keys_of(s3, bucket) == ["b/c"]

    request.write_text(json.dumps({"Objects": [{"Key": "b/c"}], "Quiet": True}))
    quiet = aws_json(
        server, f"s3api delete-objects --bucket {bucket} --delete", f"file://{request}"
    )
    assert quiet.get("Deleted", []) == []
    assert keys_of(s3, bucket) == []


# -- over TLS: aws-chunked uploads with trailing checksums ----------------------------------------


class TlsFrontend:
    """Terminates TLS on a loopback port and pipes the bytes unchanged to the server, so clients
    see an ``https://`` endpoint (the Host header they sign is passed through as is)."""

    def __init__(self, backend_port: int, directory: Path) -> None:
        self.ca_bundle, key_path = self_signed(directory)
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(self.ca_bundle, key_path)
        self._backend_port = backend_port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self._context), self._loop
        ).result(10)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._backend_port)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(256 * 1024):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture(scope="module")
def tls(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsFrontend]:
    frontend = TlsFrontend(server.port, tmp_path_factory.mktemp("tls"))
    yield frontend
    frontend.close()


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def test_tls_uploads_send_trailing_checksums(
    tls: TlsFrontend, s3: Any, bucket: str, tmp_path: Path
) -> None:
    small = tmp_path / "small.txt"
    small.write_bytes(b"sent as aws-chunked with a trailing CRC32\n" * 100)
    # --debug shows the request headers: prove the upload took the aws-chunked trailer path.
    debug = aws(tls, "--debug s3 cp", str(small), f"s3://{bucket}/tls/small.txt").stderr
    assert "STREAMING-UNSIGNED-PAYLOAD-TRAILER" in debug
    assert "x-amz-trailer" in debug
    head = aws_json(
        tls, f"s3api head-object --bucket {bucket} --key tls/small.txt --checksum-mode ENABLED"
    )
    assert head["ContentLength"] == small.stat().st_size
    assert head["ChecksumCRC32"] == crc32_b64(small.read_bytes())

    # A multipart upload the CLI chooses (8 MiB parts), each part with a trailing checksum.
    big = tmp_path / "big.bin"
    digest = write_random(big, 20 * MiB + 5)
    aws(tls, "s3 cp", str(big), f"s3://{bucket}/tls/big.bin")
    assert s3.head_object(Bucket=bucket, Key="tls/big.bin")["ETag"].endswith('-3"')
    back = tmp_path / "back.bin"
    aws(tls, f"s3 cp s3://{bucket}/tls/big.bin", str(back))
    assert sha256_file(back) == digest

    put = aws_json(tls, f"s3api put-object --bucket {bucket} --key tls/put --body", str(small))
    assert put["ChecksumCRC32"] == crc32_b64(small.read_bytes())
