"""The MinIO Python SDK (``minio``) against a real server process, unchanged.

The SDK signs every payload itself (SHA-256 over plain HTTP), chooses multipart for anything
above its 5 MiB part size, and reads with plain and ranged GETs; results are checked against
the bytes sent and, where useful, through an independent boto3 client.
"""

from __future__ import annotations

import hashlib
import io
import os
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.api.server import ACCESS_KEY, REGION, SECRET_KEY, ServerProcess

minio = pytest.importorskip("minio")
from minio.commonconfig import ENABLED, ComposeSource, CopySource  # noqa: E402
from minio.deleteobjects import DeleteObject  # noqa: E402
from minio.error import S3Error  # noqa: E402
from minio.versioningconfig import SUSPENDED, VersioningConfig  # noqa: E402

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def mc(server: ServerProcess) -> Any:
    return minio.Minio(
        server.endpoint.removeprefix("http://"),
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        secure=False,
        region=REGION,
    )


def read_all(mc: Any, bucket: str, key: str, **kwargs: Any) -> bytes:
    response = mc.get_object(bucket, key, **kwargs)
    try:
        return bytes(response.read())
    finally:
        response.close()
        response.release_conn()


class RandomStream(io.RawIOBase):
    """A readable stream of ``size`` pseudo-random bytes whose length the reader is not told.

    Byte ``i`` depends only on ``i`` (not on how reads are sized), and the stream hashes what it
    hands out, so a test never holds the whole body.
    """

    BLOCK = 64 * 1024

    def __init__(self, size: int) -> None:
        self.size = size
        self.pos = 0
        self.sha256 = hashlib.sha256()
        self._base = os.urandom(self.BLOCK)

    def readable(self) -> bool:
        return True

    def _block(self, index: int) -> bytes:
        return index.to_bytes(8, "big") + self._base[8:]

    def read(self, n: int = -1) -> bytes:
        end = self.size if n < 0 else min(self.size, self.pos + n)
        out = bytearray()
        while self.pos < end:
            index, offset = divmod(self.pos, self.BLOCK)
            piece = self._block(index)[offset : offset + end - self.pos]
            out += piece
            self.pos += len(piece)
        self.sha256.update(out)
        return bytes(out)

    def slice(self, start: int, stop: int) -> bytes:
        """Bytes ``start:stop`` of the stream, without moving it."""
        saved, sha = self.pos, self.sha256.copy()
        self.pos = start
        data = self.read(stop - start)
        self.pos, self.sha256 = saved, sha
        return data


def test_make_bucket_exists_remove(mc: Any, s3: Any) -> None:
    name = f"minio-{uuid.uuid4().hex[:12]}"
    assert mc.bucket_exists(name) is False
    mc.make_bucket(name)
    assert mc.bucket_exists(name) is True
    assert name in [b.name for b in mc.list_buckets()]
    with pytest.raises(S3Error) as err:
        mc.make_bucket(name)
    assert err.value.code == "BucketAlreadyOwnedByYou"

    mc.put_object(name, "k", io.BytesIO(b"x"), 1)
    with pytest.raises(S3Error) as err:
        mc.remove_bucket(name)
    assert err.value.code == "BucketNotEmpty"
    mc.remove_object(name, "k")
    mc.remove_bucket(name)
    assert mc.bucket_exists(name) is False
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_put_small_stat_get(mc: Any, bucket: str) -> None:
    data = b"hello from the minio sdk\n" * 10
    result = mc.put_object(
        bucket,
        "docs/a b+é.txt",
        io.BytesIO(data),
        len(data),
        content_type="text/plain",
        metadata={"x-amz-meta-owner": "tests", "Cache-Control": "no-cache"},
    )
    assert result.etag == hashlib.md5(data).hexdigest()

    stat = mc.stat_object(bucket, "docs/a b+é.txt")
    assert stat.size == len(data)
    assert stat.etag == result.etag
    assert stat.content_type == "text/plain"
    assert stat.metadata["x-amz-meta-owner"] == "tests"
    assert stat.metadata["Cache-Control"] == "no-cache"

    assert read_all(mc, bucket, "docs/a b+é.txt") == data
    assert read_all(mc, bucket, "docs/a b+é.txt", offset=5, length=10) == data[5:15]
    assert read_all(mc, bucket, "docs/a b+é.txt", offset=len(data) - 7) == data[-7:]

    with pytest.raises(S3Error) as err:
        mc.stat_object(bucket, "missing")
    assert err.value.code == "NoSuchKey"
    with pytest.raises(S3Error) as err:
        mc.get_object(bucket, "missing")
    assert err.value.code == "NoSuchKey"


def test_put_stream_of_unknown_length_goes_multipart(mc: Any, s3: Any, bucket: str) -> None:
    size = 17 * MiB + 12345
    stream = RandomStream(size)
    result = mc.put_object(bucket, "stream.bin", stream, length=-1, part_size=5 * MiB)
    assert result.etag.endswith("-4")  # 5 + 5 + 5 + 2.01 MiB
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

    stat = mc.stat_object(bucket, "stream.bin")
    assert stat.size == size
    response = mc.get_object(bucket, "stream.bin")
    got = hashlib.sha256()
    try:
        for chunk in response.stream(MiB):
            got.update(chunk)
    finally:
        response.close()
        response.release_conn()
    assert got.hexdigest() == stream.sha256.hexdigest()

    # Ranged reads across part boundaries.
    for start in (5 * MiB - 100, 15 * MiB - 1):
        expected = stream.slice(start, start + 200)
        assert read_all(mc, bucket, "stream.bin", offset=start, length=200) == expected


def test_fput_fget_large_file(mc: Any, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    digest = hashlib.sha256()
    part_md5s = []
    with src.open("wb") as f:
        for _ in range(5):  # 5 parts of 5 MiB, then a 1 MiB + 1 tail
            part = os.urandom(5 * MiB)
            digest.update(part)
            part_md5s.append(hashlib.md5(part).digest())
            f.write(part)
        tail = os.urandom(MiB + 1)
        digest.update(tail)
        part_md5s.append(hashlib.md5(tail).digest())
        f.write(tail)

    result = mc.fput_object(bucket, "dir/big.bin", str(src), content_type="application/x-big")
    assert result.etag == f"{hashlib.md5(b''.join(part_md5s)).hexdigest()}-6"

    dst = tmp_path / "out" / "big.bin"
    stat = mc.fget_object(bucket, "dir/big.bin", str(dst))
    assert stat.size == 26 * MiB + 1
    assert stat.content_type == "application/x-big"
    h = hashlib.sha256()
    with dst.open("rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            h.update(chunk)
    assert h.hexdigest() == digest.hexdigest()
    assert not list(dst.parent.glob("*.part.minio"))  # the SDK's temp file was renamed


def test_list_objects(mc: Any, s3: Any, bucket: str) -> None:
    keys = ["a/1", "a/2", "a/b/3", "b/4", "c", "d/e/f/5", "é/6", "z z"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    ordered = sorted(keys, key=str.encode)

    flat = list(mc.list_objects(bucket, recursive=True))
    assert [o.object_name for o in flat] == ordered
    assert [o.size for o in flat] == [len(k.encode()) for k in ordered]
    assert all(o.etag and o.last_modified and not o.is_dir for o in flat)

    # The SDK yields a page's objects, then its common prefixes.
    top = list(mc.list_objects(bucket))
    assert [(o.object_name, o.is_dir) for o in top] == [
        ("c", False),
        ("z z", False),
        ("a/", True),
        ("b/", True),
        ("d/", True),
        ("é/", True),
    ]
    assert [o.object_name for o in mc.list_objects(bucket, prefix="a/")] == ["a/1", "a/2", "a/b/"]
    assert [o.object_name for o in mc.list_objects(bucket, prefix="a/", recursive=True)] == [
        "a/1",
        "a/2",
        "a/b/3",
    ]
    assert [o.object_name for o in mc.list_objects(bucket, start_after="c", recursive=True)] == (
        ordered[ordered.index("c") + 1 :]
    )
    v1 = list(mc.list_objects(bucket, recursive=True, use_api_v1=True))
    assert [o.object_name for o in v1] == ordered


def test_list_objects_paginates(mc: Any, s3: Any, bucket: str) -> None:
    """The SDK follows continuation tokens across the server's 1000-key pages."""
    keys = [f"k/{i:05d}" for i in range(1005)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=b""), keys))
    assert [o.object_name for o in mc.list_objects(bucket, prefix="k/", recursive=True)] == keys


def test_copy_and_compose(mc: Any, bucket: str) -> None:
    big = os.urandom(5 * MiB + 10)  # above 5 MiB, so the SDK uploads it in two parts
    source = mc.put_object(
        bucket, "src/big", io.BytesIO(big), len(big), metadata={"x-amz-meta-a": "1"}
    )
    assert source.etag.endswith("-2")

    copied = mc.copy_object(bucket, "dst/copy", CopySource(bucket, "src/big"))
    assert copied.etag == mc.stat_object(bucket, "dst/copy").etag
    assert read_all(mc, bucket, "dst/copy") == big
    assert mc.stat_object(bucket, "dst/copy").metadata["x-amz-meta-a"] == "1"

    replaced = mc.copy_object(
        bucket,
        "dst/replaced",
        CopySource(bucket, "src/big"),
        metadata={"x-amz-meta-b": "2"},
        metadata_directive="REPLACE",
    )
    assert replaced.etag == copied.etag
    meta = mc.stat_object(bucket, "dst/replaced").metadata
    assert meta["x-amz-meta-b"] == "2" and "x-amz-meta-a" not in meta

    # compose_object: multipart upload of UploadPartCopy parts, one with a byte range.
    small = b"small tail"
    mc.put_object(bucket, "src/small", io.BytesIO(small), len(small))
    composed = mc.compose_object(
        bucket,
        "dst/composed",
        [
            ComposeSource(bucket, "src/big"),
            ComposeSource(bucket, "src/small", offset=6, length=4),
        ],
    )
    assert composed.etag.endswith("-2")
    assert read_all(mc, bucket, "dst/composed") == big + small[6:10]

    with pytest.raises(S3Error) as err:
        mc.copy_object(bucket, "dst/none", CopySource(bucket, "src/missing"))
    assert err.value.code == "NoSuchKey"


def test_remove_object_and_objects(mc: Any, s3: Any, bucket: str) -> None:
    keys = [f"del/{i}" for i in range(20)] + ["keep/1", "keep/2"]
    for key in keys:
        mc.put_object(bucket, key, io.BytesIO(b"x"), 1)
    mc.remove_object(bucket, "keep/2")
    mc.remove_object(bucket, "never-existed")  # S3 treats this as success

    errors = list(
        mc.remove_objects(
            bucket, (DeleteObject(o.object_name) for o in mc.list_objects(bucket, "del/", True))
        )
    )
    assert errors == []
    remaining = [c["Key"] for c in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert remaining == ["keep/1"]


def test_presigned_get_and_put(mc: Any, bucket: str) -> None:
    put_url = mc.presigned_put_object(bucket, "pre/signed key", expires=timedelta(minutes=5))
    data = os.urandom(70_000)
    request = urllib.request.Request(put_url, data=data, method="PUT")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    assert read_all(mc, bucket, "pre/signed key") == data

    get_url = mc.presigned_get_object(
        bucket,
        "pre/signed key",
        expires=timedelta(hours=1),
        response_headers={"response-content-type": "application/x-presigned"},
    )
    with urllib.request.urlopen(get_url, timeout=30) as response:
        assert response.read() == data
        assert response.headers["Content-Type"] == "application/x-presigned"

    tampered = get_url.replace("pre/signed%20key", "pre/other")
    assert tampered != get_url
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(tampered, timeout=30)
    assert err.value.code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in err.value.read()


def test_versioning(mc: Any, bucket: str) -> None:
    assert mc.get_bucket_versioning(bucket).status is None  # never enabled: "Off"
    mc.set_bucket_versioning(bucket, VersioningConfig(ENABLED))
    assert mc.get_bucket_versioning(bucket).status == ENABLED

    first = mc.put_object(bucket, "doc", io.BytesIO(b"first"), 5).version_id
    second = mc.put_object(bucket, "doc", io.BytesIO(b"second"), 6).version_id
    assert first and second and first != second
    assert read_all(mc, bucket, "doc") == b"second"
    assert read_all(mc, bucket, "doc", version_id=first) == b"first"
    assert mc.stat_object(bucket, "doc", version_id=first).size == 5

    versions = list(mc.list_objects(bucket, include_version=True))
    assert [(o.version_id, o.is_latest) for o in versions] == [(second, "true"), (first, "false")]

    mc.remove_object(bucket, "doc", version_id=second)
    assert read_all(mc, bucket, "doc") == b"first"

    mc.set_bucket_versioning(bucket, VersioningConfig(SUSPENDED))
    assert mc.get_bucket_versioning(bucket).status == SUSPENDED
    assert mc.put_object(bucket, "doc", io.BytesIO(b"third"), 5).version_id in (None, "null")
