"""s3fs / fsspec (on aiobotocore and aiohttp) against a real server process, unchanged.

The filesystem is built with explicit credentials, endpoint and region, no instance or listings
cache (every call reaches the server), and the conftest's hermetic AWS_* environment (no shared
config files). Results are checked against the bytes sent and through an independent boto3 client.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.server import ACCESS_KEY, REGION, SECRET_KEY, ServerProcess
from tests.api.test_client_awscli import TlsFrontend

s3fs = pytest.importorskip("s3fs")

MiB = 1024 * 1024


@pytest.fixture(scope="module", autouse=True)
def no_fsspec_config() -> Iterator[None]:
    """fsspec applies defaults from ``~/.config/fsspec`` and ``FSSPEC_S3_*`` variables to every
    S3FileSystem; none of the machine's may reach these tests."""
    import fsspec.config

    saved = {name: fsspec.config.conf.pop(name, None) for name in ("s3", "s3a")}
    yield
    for name, value in saved.items():
        if value is not None:
            fsspec.config.conf[name] = value


@pytest.fixture(scope="module")
def fs(server: ServerProcess) -> Any:
    return s3fs.S3FileSystem(
        key=ACCESS_KEY,
        secret=SECRET_KEY,
        client_kwargs={"endpoint_url": server.endpoint, "region_name": REGION},
        config_kwargs={"s3": {"addressing_style": "path"}},
        skip_instance_cache=True,
        use_listings_cache=False,
    )


def write_random(path: Path, size: int) -> tuple[str, list[bytes]]:
    """``size`` random bytes to ``path``; returns their SHA-256 and the MD5 of each 50 MiB part
    (s3fs's default part size)."""
    digest, part_md5s = hashlib.sha256(), []
    with path.open("wb") as f:
        left = size
        while left:
            part = hashlib.md5()
            for _ in range(50):
                chunk = os.urandom(min(left, MiB))
                digest.update(chunk)
                part.update(chunk)
                f.write(chunk)
                left -= len(chunk)
                if not left:
                    break
            part_md5s.append(part.digest())
    return digest.hexdigest(), part_md5s


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            digest.update(chunk)
    return digest.hexdigest()


def test_put_get_large_file_multipart(fs: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    """101 MiB with s3fs's defaults: it uploads in 50 MiB parts (3 parts) on its own, and
    reads back with concurrent ranged GETs (``cat``) or one streamed GET (``get``)."""
    src = tmp_path / "big.bin"
    digest, part_md5s = write_random(src, 101 * MiB)
    fs.put(str(src), f"{bucket}/data/big.bin")

    head = s3.head_object(Bucket=bucket, Key="data/big.bin")
    assert head["ContentLength"] == 101 * MiB
    assert head["ETag"] == f'"{hashlib.md5(b"".join(part_md5s)).hexdigest()}-3"'
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

    dst = tmp_path / "back.bin"
    fs.get(f"{bucket}/data/big.bin", str(dst))
    assert sha256_file(dst) == digest
    assert hashlib.sha256(fs.cat_file(f"{bucket}/data/big.bin")).hexdigest() == digest


def test_open_write_and_read(fs: Any, s3: Any, bucket: str) -> None:
    path = f"{bucket}/written/file.bin"
    pieces = [os.urandom(3 * MiB + 17) for _ in range(4)]  # 12 MiB in odd-sized writes
    with fs.open(path, "wb", block_size=5 * MiB) as f:
        for piece in pieces:
            f.write(piece)
    data = b"".join(pieces)
    head = s3.head_object(Bucket=bucket, Key="written/file.bin")
    assert head["ContentLength"] == len(data)
    # s3fs sends its buffer as a part once it holds block_size: two parts of 2 writes each.
    assert head["ETag"].endswith('-2"')

    with fs.open(path, "rb", block_size=MiB) as f:
        assert f.read(10) == data[:10]
        f.seek(7 * MiB - 5)
        assert f.read(10) == data[7 * MiB - 5 : 7 * MiB + 5]
        f.seek(-4, os.SEEK_END)
        assert f.read() == data[-4:]
        f.seek(0)
        assert f.read() == data

    with fs.open(f"{bucket}/small.txt", "w", encoding="utf-8") as f:
        f.write("héllo\nwörld\n")
    with fs.open(f"{bucket}/small.txt", "r", encoding="utf-8") as f:
        assert f.readlines() == ["héllo\n", "wörld\n"]
    assert s3.get_object(Bucket=bucket, Key="small.txt")["Body"].read() == "héllo\nwörld\n".encode()

    with pytest.raises(FileNotFoundError):
        fs.open(f"{bucket}/missing", "rb")


@pytest.fixture
def tree(s3: Any, bucket: str) -> dict[str, bytes]:
    files = {
        "a.txt": b"a",
        "dir/b.txt": b"bb",
        "dir/c.csv": b"ccc",
        "dir/sub/d.txt": b"dddd",
        "dir/sub/deeper/e.txt": b"eeeee",
        "other/f g.txt": b"ffffff",
        "ü/h.txt": b"hhhhhhh",
    }
    for key, data in files.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    return files


def test_ls_find_glob_du_info(fs: Any, bucket: str, tree: dict[str, bytes]) -> None:
    assert fs.ls(bucket, detail=False) == [
        f"{bucket}/a.txt",
        f"{bucket}/dir",
        f"{bucket}/other",
        f"{bucket}/ü",
    ]
    detail = {e["name"]: (e["type"], e["size"]) for e in fs.ls(f"{bucket}/dir", detail=True)}
    assert detail == {
        f"{bucket}/dir/b.txt": ("file", 2),
        f"{bucket}/dir/c.csv": ("file", 3),
        f"{bucket}/dir/sub": ("directory", 0),
    }

    everything = sorted(f"{bucket}/{k}" for k in tree)
    assert fs.find(bucket) == everything
    assert fs.find(f"{bucket}/dir/sub") == [
        f"{bucket}/dir/sub/d.txt",
        f"{bucket}/dir/sub/deeper/e.txt",
    ]
    with_dirs = fs.find(f"{bucket}/dir", withdirs=True)
    assert f"{bucket}/dir/sub/deeper" in with_dirs

    assert fs.glob(f"{bucket}/dir/*.txt") == [f"{bucket}/dir/b.txt"]
    assert fs.glob(f"{bucket}/**/*.txt") == sorted(
        f"{bucket}/{k}" for k in tree if k.endswith(".txt")
    )
    assert fs.glob(f"{bucket}/*/?.csv") == [f"{bucket}/dir/c.csv"]

    assert fs.du(bucket) == sum(len(v) for v in tree.values())
    assert fs.du(f"{bucket}/dir") == 2 + 3 + 4 + 5
    assert fs.du(f"{bucket}/dir", total=False) == {
        f"{bucket}/dir/b.txt": 2,
        f"{bucket}/dir/c.csv": 3,
        f"{bucket}/dir/sub/d.txt": 4,
        f"{bucket}/dir/sub/deeper/e.txt": 5,
    }

    info = fs.info(f"{bucket}/other/f g.txt")
    assert info["type"] == "file" and info["size"] == 6
    assert info["ETag"] == f'"{hashlib.md5(b"ffffff").hexdigest()}"'
    assert fs.info(f"{bucket}/dir")["type"] == "directory"
    assert fs.isdir(f"{bucket}/dir/sub") and not fs.isfile(f"{bucket}/dir/sub")
    assert fs.exists(f"{bucket}/ü/h.txt")
    assert not fs.exists(f"{bucket}/nope")
    with pytest.raises(FileNotFoundError):
        fs.info(f"{bucket}/nope")


def test_cat_file_ranges(fs: Any, bucket: str, s3: Any) -> None:
    data = bytes(range(256)) * 100
    s3.put_object(Bucket=bucket, Key="r.bin", Body=data)
    path = f"{bucket}/r.bin"
    assert fs.cat_file(path) == data
    assert fs.cat_file(path, start=10, end=20) == data[10:20]
    assert fs.cat_file(path, start=-16) == data[-16:]
    assert fs.cat_file(path, start=25_000) == data[25_000:]
    assert fs.cat_file(path, end=5) == data[:5]
    assert fs.cat_ranges([path, path], [0, 300], [3, 305]) == [data[0:3], data[300:305]]
    assert fs.read_block(path, 1000, 50) == data[1000:1050]


def test_copy_move_rm(fs: Any, s3: Any, bucket: str, tree: dict[str, bytes]) -> None:
    fs.copy(f"{bucket}/dir/b.txt", f"{bucket}/copied/b.txt")
    assert fs.cat_file(f"{bucket}/copied/b.txt") == tree["dir/b.txt"]

    fs.copy(f"{bucket}/dir/sub", f"{bucket}/tree-copy", recursive=True)
    assert fs.find(f"{bucket}/tree-copy") == [
        f"{bucket}/tree-copy/d.txt",
        f"{bucket}/tree-copy/deeper/e.txt",
    ]
    assert fs.cat_file(f"{bucket}/tree-copy/deeper/e.txt") == tree["dir/sub/deeper/e.txt"]

    fs.mv(f"{bucket}/a.txt", f"{bucket}/moved.txt")
    assert not fs.exists(f"{bucket}/a.txt")
    assert fs.cat_file(f"{bucket}/moved.txt") == tree["a.txt"]

    fs.rm(f"{bucket}/dir", recursive=True)
    keys = [c["Key"] for c in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == sorted(
        [
            "copied/b.txt",
            "moved.txt",
            "other/f g.txt",
            "tree-copy/d.txt",
            "tree-copy/deeper/e.txt",
            "ü/h.txt",
        ],
        key=str.encode,
    )
    fs.rm(f"{bucket}/other/f g.txt")
    assert not fs.exists(f"{bucket}/other/f g.txt")
    with pytest.raises(FileNotFoundError):
        fs.rm(f"{bucket}/dir", recursive=True)


def test_bucket_mkdir_rmdir(fs: Any, s3: Any) -> None:
    import uuid

    name = f"s3fs-{uuid.uuid4().hex[:12]}"
    fs.mkdir(name)
    s3.head_bucket(Bucket=name)
    assert name in fs.ls("", detail=False)
    fs.pipe(f"{name}/x", b"x")
    with pytest.raises(OSError):
        fs.rmdir(name)  # not empty
    fs.rm(f"{name}/x")
    fs.rmdir(name)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_fsspec_urls(server: ServerProcess, s3: Any, bucket: str) -> None:
    """The way libraries reach s3fs: ``fsspec.open("s3://...", **storage_options)``."""
    import fsspec

    options = {
        "key": ACCESS_KEY,
        "secret": SECRET_KEY,
        "client_kwargs": {"endpoint_url": server.endpoint, "region_name": REGION},
        "skip_instance_cache": True,
    }
    with fsspec.open(f"s3://{bucket}/via/url.txt", "wt", encoding="utf-8", **options) as f:
        f.write("written through an fsspec URL\n")
    assert s3.get_object(Bucket=bucket, Key="via/url.txt")["Body"].read() == (
        b"written through an fsspec URL\n"
    )
    with fsspec.open(f"s3://{bucket}/via/url.txt", "rb", **options) as f:
        assert f.read() == b"written through an fsspec URL\n"
    files = fsspec.open_files(f"s3://{bucket}/via/*.txt", "rb", **options)
    assert [f.path for f in files] == [f"{bucket}/via/url.txt"]


def test_version_aware(server: ServerProcess, s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    vfs = s3fs.S3FileSystem(
        key=ACCESS_KEY,
        secret=SECRET_KEY,
        client_kwargs={"endpoint_url": server.endpoint, "region_name": REGION},
        version_aware=True,
        skip_instance_cache=True,
        use_listings_cache=False,
    )
    path = f"{bucket}/doc.txt"
    vfs.pipe(path, b"first")
    vfs.pipe(path, b"second")
    versions = vfs.object_version_info(path)
    assert [v["IsLatest"] for v in versions] == [True, False]
    latest, first = versions[0]["VersionId"], versions[1]["VersionId"]
    assert vfs.info(path)["VersionId"] == latest
    with vfs.open(path, "rb", version_id=first) as f:
        assert f.read() == b"first"
    assert vfs.cat_file(f"{path}?versionId={first}") == b"first"
    assert vfs.cat_file(path) == b"second"


@pytest.fixture(scope="module")
def tls(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsFrontend]:
    frontend = TlsFrontend(server.port, tmp_path_factory.mktemp("tls"))
    yield frontend
    frontend.close()


def test_tls_uploads_send_trailing_checksums(
    tls: TlsFrontend, s3: Any, bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Over HTTPS aiobotocore sends uploads as aws-chunked bodies with a trailing CRC32."""
    import logging

    tfs = s3fs.S3FileSystem(
        key=ACCESS_KEY,
        secret=SECRET_KEY,
        client_kwargs={
            "endpoint_url": tls.endpoint,
            "region_name": REGION,
            "verify": str(tls.ca_bundle),
        },
        skip_instance_cache=True,
        use_listings_cache=False,
    )
    src = tmp_path / "file.bin"
    digest, _ = write_random(src, 12 * MiB + 3)
    with (
        caplog.at_level(logging.DEBUG, logger="aiobotocore"),
        caplog.at_level(logging.DEBUG, logger="botocore"),
    ):
        tfs.put(str(src), f"{bucket}/tls/file.bin", chunksize=5 * MiB)
        tfs.pipe(f"{bucket}/tls/small", b"small body")
    assert "STREAMING-UNSIGNED-PAYLOAD-TRAILER" in caplog.text

    # s3fs creates its multipart uploads without a checksum algorithm, so the parts' trailing
    # CRC32s are checked on arrival but the object records none.
    assert s3.head_object(Bucket=bucket, Key="tls/file.bin")["ETag"].endswith('-3"')
    small = s3.head_object(Bucket=bucket, Key="tls/small", ChecksumMode="ENABLED")
    assert (
        small["ChecksumCRC32"]
        == base64.b64encode(zlib.crc32(b"small body").to_bytes(4, "big")).decode()
    )

    back = tmp_path / "back.bin"
    tfs.get(f"{bucket}/tls/file.bin", str(back))
    assert sha256_file(back) == digest
    assert tfs.cat_file(f"{bucket}/tls/small") == b"small body"
