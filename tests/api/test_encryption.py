"""Encryption at rest through boto3 against a real server: nothing readable on disk, tampering
detected, ranged reads across segment boundaries, SSE-S3 and SSE-C headers."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.conftest import empty_bucket, make_client
from tests.api.server import ServerProcess
from tests.api.test_buckets import code_of, status_of

SEGMENT = 64 * 1024
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("crypto") / "data").start()
    yield proc
    proc.cleanup()


@pytest.fixture(scope="module")
def s3(server: ServerProcess) -> Any:
    return make_client(server.endpoint)


@pytest.fixture
def bucket(s3: Any) -> Iterator[str]:
    name = f"enc-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    yield name
    empty_bucket(s3, name)
    s3.delete_bucket(Bucket=name)


@contextmanager
def _db(server: ServerProcess) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(server.data_dir / "metadata.db", timeout=10)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def _blob_path(server: ServerProcess, bucket: str, key: str, index: int = 0) -> Path:
    with _db(server) as conn:
        row = conn.execute(
            "SELECT v.segments FROM versions v JOIN buckets b ON v.bucket_id = b.id"
            " WHERE b.name = ? AND v.object_key = ? AND v.is_latest",
            (bucket, key.encode()),
        ).fetchone()
    blob_id = json.loads(row[0])[index][0]
    return server.data_dir / "blobs" / blob_id[:2] / blob_id[2:4] / blob_id


def _flip(path: Path, offset: int) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))


def _pattern(marker: bytes, size: int) -> bytes:
    return (marker * (size // len(marker) + 1))[:size]


def _get_or_fail(s3: Any, bucket: str, key: str) -> bytes | None:
    """The body, or None when the GET failed (an error status, or a cut connection)."""
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as err:
        assert status_of(err) == 500 and code_of(err) == "InternalError"
        return None
    except Exception:  # noqa: BLE001 - a connection cut mid-body is the expected failure
        return None


# --- at rest --------------------------------------------------------------------------------------
def test_nothing_readable_under_the_data_dir(s3: Any, server: ServerProcess, bucket: str) -> None:
    marker = f"PLAIN-{uuid.uuid4().hex}".encode()
    meta_marker = f"META-{uuid.uuid4().hex}"
    s3.put_object(Bucket=bucket, Key="inline", Body=_pattern(marker, 1000))
    s3.put_object(
        Bucket=bucket, Key="meta", Body=b"x", Metadata={"secret": meta_marker, "other": "v"}
    )
    s3.put_object(Bucket=bucket, Key="large", Body=_pattern(marker, 3 * MIB + 5))
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", Metadata={"m": meta_marker})
    parts = []
    for number in (1, 2):
        part = s3.upload_part(
            Bucket=bucket,
            Key="mp",
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=_pattern(marker, 5 * MIB if number == 1 else 1000),
        )
        parts.append({"PartNumber": number, "ETag": part["ETag"]})
    # A part of an upload still in progress is at rest too.
    pending = s3.create_multipart_upload(Bucket=bucket, Key="pending")
    s3.upload_part(
        Bucket=bucket,
        Key="pending",
        UploadId=pending["UploadId"],
        PartNumber=1,
        Body=_pattern(marker, 100_000),
    )
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "large"})
    # Everything reads back as written.
    assert s3.get_object(Bucket=bucket, Key="inline")["Body"].read() == _pattern(marker, 1000)
    assert s3.head_object(Bucket=bucket, Key="meta")["Metadata"]["secret"] == meta_marker
    assert s3.head_object(Bucket=bucket, Key="mp")["Metadata"] == {"m": meta_marker}
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == _pattern(marker, 3 * MIB + 5)

    scanned = 0
    for path in server.data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            scanned += 1
            assert marker[:16] not in data, f"plaintext body in {path}"
            assert meta_marker.encode() not in data, f"plaintext metadata in {path}"
    assert scanned >= 5
    s3.abort_multipart_upload(Bucket=bucket, Key="pending", UploadId=pending["UploadId"])


# --- response headers -----------------------------------------------------------------------------
def test_sse_s3_headers_everywhere(s3: Any, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"data", ServerSideEncryption="AES256")
    assert put["ServerSideEncryption"] == "AES256"
    assert s3.head_object(Bucket=bucket, Key="k")["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="k")["ServerSideEncryption"] == "AES256"
    copy = s3.copy_object(Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "k"})
    assert copy["ServerSideEncryption"] == "AES256"
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")
    assert upload["ServerSideEncryption"] == "AES256"
    part = s3.upload_part(
        Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=1, Body=b"p"
    )
    assert part["ServerSideEncryption"] == "AES256"
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert done["ServerSideEncryption"] == "AES256"
    assert done["ETag"] == f'"{hashlib.md5(hashlib.md5(b"p").digest()).hexdigest()}-1"'
    # The ETag stays the MD5 of the plaintext, as on AWS.
    assert put["ETag"] == f'"{hashlib.md5(b"data").hexdigest()}"'


def test_unsupported_sse_values(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="aws:kms:dsse")
    assert status_of(err) == 501
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="rot13")
    assert code_of(err) == "InvalidArgument"


# --- tampering ------------------------------------------------------------------------------------
def test_flipped_byte_in_first_segment_is_a_500(
    s3: Any, server: ServerProcess, bucket: str
) -> None:
    body = os.urandom(3 * MIB)
    s3.put_object(Bucket=bucket, Key="k", Body=body)
    _flip(_blob_path(server, bucket, "k"), 100)
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k")
    assert status_of(err) == 500 and code_of(err) == "InternalError"
    assert "segment" not in str(err.value).lower()  # nothing about the cause leaks


def test_flipped_byte_mid_stream_cuts_the_connection(
    s3: Any, server: ServerProcess, bucket: str
) -> None:
    body = os.urandom(4 * MIB)
    s3.put_object(Bucket=bucket, Key="k", Body=body)
    _flip(_blob_path(server, bucket, "k"), 3 * MIB)  # well after the first piece is sent
    got = _get_or_fail(s3, bucket, "k")
    assert got is None or (len(got) < len(body) and body.startswith(got))
    # A range entirely before the damage still reads; one over it fails.
    head = s3.get_object(Bucket=bucket, Key="k", Range="bytes=0-999")["Body"].read()
    assert head == body[:1000]
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k", Range=f"bytes={3 * MIB - 10}-{3 * MIB + 10}")
    assert status_of(err) == 500


def test_tampered_inline_body_fails(s3: Any, server: ServerProcess, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="small", Body=b"small body")
    with _db(server) as conn:
        (raw,) = conn.execute(
            "SELECT inline_data FROM versions WHERE object_key = ?", (b"small",)
        ).fetchone()
        flipped = bytearray(raw)
        flipped[-1] ^= 0x80
        conn.execute(
            "UPDATE versions SET inline_data = ? WHERE object_key = ?", (bytes(flipped), b"small")
        )
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="small")
    assert status_of(err) == 500 and code_of(err) == "InternalError"


def test_truncated_blob_fails(s3: Any, server: ServerProcess, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=os.urandom(SEGMENT * 3))
    path = _blob_path(server, bucket, "k")
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size - (SEGMENT + 16))  # drop the final segment
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k", Range=f"bytes={SEGMENT}-")
    assert status_of(err) == 500


def test_swapped_multipart_parts_fail(s3: Any, server: ServerProcess, bucket: str) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")
    bodies = [os.urandom(5 * MIB), os.urandom(5 * MIB)]
    parts = []
    for number, body in enumerate(bodies, 1):
        part = s3.upload_part(
            Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=number, Body=body
        )
        parts.append({"PartNumber": number, "ETag": part["ETag"]})
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    first, second = _blob_path(server, bucket, "mp", 0), _blob_path(server, bucket, "mp", 1)
    a, b = first.read_bytes(), second.read_bytes()
    first.write_bytes(b)
    second.write_bytes(a)
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert status_of(err) == 500


# --- ranges ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("first", "last"),
    [
        (0, 0),
        (SEGMENT - 1, SEGMENT),
        (SEGMENT, 2 * SEGMENT - 1),
        (SEGMENT - 1, 3 * SEGMENT),
        (3 * SEGMENT - 1, 3 * SEGMENT + 99),
        (3 * SEGMENT + 99, 3 * SEGMENT + 99),
        (100, MIB + 100),
    ],
)
def test_ranges_at_segment_boundaries(s3: Any, bucket: str, first: int, last: int) -> None:
    body = os.urandom(max(3 * SEGMENT + 100, MIB + 101))
    s3.put_object(Bucket=bucket, Key="k", Body=body)
    got = s3.get_object(Bucket=bucket, Key="k", Range=f"bytes={first}-{last}")
    assert got["Body"].read() == body[first : last + 1]
    assert got["ContentRange"] == f"bytes {first}-{last}/{len(body)}"


def test_exact_segment_multiple_and_empty(s3: Any, bucket: str) -> None:
    for size in (0, SEGMENT, 2 * SEGMENT, 16 * SEGMENT):
        body = os.urandom(size)
        s3.put_object(Bucket=bucket, Key=f"k{size}", Body=body)
        assert s3.get_object(Bucket=bucket, Key=f"k{size}")["Body"].read() == body
    got = s3.get_object(Bucket=bucket, Key=f"k{2 * SEGMENT}", Range="bytes=-1")
    assert (
        got["Body"].read()
        == s3.get_object(Bucket=bucket, Key=f"k{2 * SEGMENT}")["Body"].read()[-1:]
    )


# --- SSE-C ----------------------------------------------------------------------------------------
KEY = os.urandom(32)
OTHER = os.urandom(32)


def _sse_c_b64(key: bytes = KEY) -> dict[str, str]:
    return {
        "SSECustomerAlgorithm": "AES256",
        "SSECustomerKey": base64.b64encode(key).decode(),
        "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(key).digest()).decode(),
    }


@pytest.mark.parametrize("size", [10, 3 * MIB])
def test_sse_c_round_trip_and_wrong_keys(s3: Any, bucket: str, size: int) -> None:
    body = os.urandom(size)
    put = s3.put_object(Bucket=bucket, Key="k", Body=body, **_sse_c_b64())
    md5 = base64.b64encode(hashlib.md5(KEY).digest()).decode()
    assert put["SSECustomerAlgorithm"] == "AES256" and put["SSECustomerKeyMD5"] == md5
    assert "ServerSideEncryption" not in put
    got = s3.get_object(Bucket=bucket, Key="k", **_sse_c_b64())
    assert got["Body"].read() == body
    assert got["SSECustomerKeyMD5"] == md5
    head = s3.head_object(Bucket=bucket, Key="k", **_sse_c_b64())
    assert head["ContentLength"] == size
    ranged = s3.get_object(Bucket=bucket, Key="k", Range="bytes=3-7", **_sse_c_b64())
    assert ranged["Body"].read() == body[3:8]
    # No key: 400 InvalidRequest; wrong key: 403, as AWS.
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k")
    assert status_of(err) == 400 and code_of(err) == "InvalidRequest"
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k", **_sse_c_b64(OTHER))
    assert status_of(err) == 403
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="k", **_sse_c_b64(OTHER))
    assert status_of(err) == 403


def test_sse_c_bad_requests(s3: Any, bucket: str) -> None:
    bad_md5 = {**_sse_c_b64(), "SSECustomerKeyMD5": base64.b64encode(b"0" * 16).decode()}
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", **bad_md5)
    assert code_of(err) == "InvalidArgument"
    short = {
        "SSECustomerAlgorithm": "AES256",
        "SSECustomerKey": base64.b64encode(b"short").decode(),
        "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(b"short").digest()).decode(),
    }
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", **short)
    assert code_of(err) == "InvalidArgument"
    with pytest.raises(ClientError) as err:
        s3.put_object(
            Bucket=bucket, Key="k", Body=b"x", **{**_sse_c_b64(), "SSECustomerAlgorithm": "DES"}
        )
    assert status_of(err) == 400
    s3.put_object(Bucket=bucket, Key="plain", Body=b"x")
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="plain", **_sse_c_b64())
    assert status_of(err) == 400 and code_of(err) == "InvalidRequest"


def test_sse_c_multipart_and_copy(s3: Any, bucket: str) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", **_sse_c_b64())
    assert upload["SSECustomerAlgorithm"] == "AES256"
    with pytest.raises(ClientError) as err:  # every part needs the key
        s3.upload_part(
            Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=1, Body=b"x"
        )
    assert status_of(err) == 400
    with pytest.raises(ClientError) as err:
        s3.upload_part(
            Bucket=bucket,
            Key="mp",
            UploadId=upload["UploadId"],
            PartNumber=1,
            Body=b"x",
            **_sse_c_b64(OTHER),
        )
    assert status_of(err) == 403
    bodies = [os.urandom(5 * MIB), os.urandom(1000)]
    parts = []
    for number, body in enumerate(bodies, 1):
        part = s3.upload_part(
            Bucket=bucket,
            Key="mp",
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=body,
            **_sse_c_b64(),
        )
        parts.append({"PartNumber": number, "ETag": part["ETag"]})
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    got = s3.get_object(Bucket=bucket, Key="mp", **_sse_c_b64())["Body"].read()
    assert got == b"".join(bodies)
    # Copy an SSE-C object to SSE-S3: the copy source key is required and checked.
    source = {"Bucket": bucket, "Key": "mp"}
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="plain-copy", CopySource=source)
    assert status_of(err) == 400
    copy_key = {
        "CopySourceSSECustomerAlgorithm": "AES256",
        "CopySourceSSECustomerKey": base64.b64encode(KEY).decode(),
        "CopySourceSSECustomerKeyMD5": base64.b64encode(hashlib.md5(KEY).digest()).decode(),
    }
    copied = s3.copy_object(Bucket=bucket, Key="plain-copy", CopySource=source, **copy_key)
    assert copied["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="plain-copy")["Body"].read() == got
    # ... and to SSE-C with another key.
    s3.copy_object(Bucket=bucket, Key="other", CopySource=source, **copy_key, **_sse_c_b64(OTHER))
    assert s3.get_object(Bucket=bucket, Key="other", **_sse_c_b64(OTHER))["Body"].read() == got
    # UploadPartCopy from an SSE-C source into an SSE-C upload with another key.
    target = s3.create_multipart_upload(Bucket=bucket, Key="pc", **_sse_c_b64(OTHER))
    with pytest.raises(ClientError) as err:  # the source key is missing
        s3.upload_part_copy(
            Bucket=bucket,
            Key="pc",
            UploadId=target["UploadId"],
            PartNumber=1,
            CopySource=source,
            **_sse_c_b64(OTHER),
        )
    assert status_of(err) == 400
    part = s3.upload_part_copy(
        Bucket=bucket,
        Key="pc",
        UploadId=target["UploadId"],
        PartNumber=1,
        CopySource=source,
        CopySourceRange="bytes=0-999",
        **copy_key,
        **_sse_c_b64(OTHER),
    )
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="pc",
        UploadId=target["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]},
    )
    copied_part = s3.get_object(Bucket=bucket, Key="pc", **_sse_c_b64(OTHER))["Body"].read()
    assert copied_part == got[:1000]


def test_boto3_sse_c_key_parameter(s3: Any, bucket: str) -> None:
    """boto3's usual way: raw key bytes in SSECustomerKey (it base64s and MD5s them)."""
    key = os.urandom(32)
    s3.put_object(
        Bucket=bucket, Key="k", Body=b"hello", SSECustomerAlgorithm="AES256", SSECustomerKey=key
    )
    got = s3.get_object(Bucket=bucket, Key="k", SSECustomerAlgorithm="AES256", SSECustomerKey=key)
    assert got["Body"].read() == b"hello"


# --- bucket default encryption --------------------------------------------------------------------
def _rule(algorithm: str) -> dict[str, Any]:
    return {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": algorithm}}]}


def test_bucket_encryption_configuration(s3: Any, bucket: str) -> None:
    got = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert got["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=_rule("AES256"))
    got = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert got["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    s3.delete_bucket_encryption(Bucket=bucket)
    # SSE-KMS as the bucket default (the account's alias/aws/s3 key when none is named).
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=_rule("aws:kms"))
    got = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert got["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    put = s3.put_object(Bucket=bucket, Key="by-default", Body=b"x")
    assert put["ServerSideEncryption"] == "aws:kms" and ":key/" in put["SSEKMSKeyId"]
    asked = s3.put_object(Bucket=bucket, Key="asked", Body=b"x", ServerSideEncryption="AES256")
    assert asked["ServerSideEncryption"] == "AES256"  # the request wins over the default
    s3.delete_bucket_encryption(Bucket=bucket)
    assert s3.put_object(Bucket=bucket, Key="after", Body=b"x")["ServerSideEncryption"] == "AES256"
    with pytest.raises(ClientError) as err:
        s3.put_bucket_encryption(
            Bucket=bucket, ServerSideEncryptionConfiguration=_rule("aws:kms:dsse")
        )
    assert status_of(err) == 501
    with pytest.raises(ClientError) as err:
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=_rule("DES"))
    assert code_of(err) == "InvalidArgument"
    with pytest.raises(ClientError) as err:
        s3.get_bucket_encryption(Bucket="no-such-bucket-here")
    assert code_of(err) == "NoSuchBucket"


# --- other deployments: encryption off, SM4 -------------------------------------------------------
def _run_with(tmp_path: Path, env: dict[str, str]) -> ServerProcess:
    return ServerProcess(tmp_path / "data", env=env, extra_args=("--workers", "1")).start()


def test_encryption_off_stores_plain_text_unless_asked(tmp_path: Path) -> None:
    server = _run_with(tmp_path, {"ONSHORE_ENCRYPTION": "false"})
    try:
        s3 = make_client(server.endpoint)
        s3.create_bucket(Bucket="plain")
        marker = f"PLAIN-{uuid.uuid4().hex}".encode()
        put = s3.put_object(Bucket="plain", Key="k", Body=_pattern(marker, 200_000))
        assert "ServerSideEncryption" not in put
        assert marker in _blob_path(server, "plain", "k").read_bytes()
        with pytest.raises(ClientError) as err:
            s3.get_bucket_encryption(Bucket="plain")
        assert code_of(err) == "ServerSideEncryptionConfigurationNotFoundError"
        # Asked for by the request, or by the bucket's default: sealed.
        asked = s3.put_object(
            Bucket="plain", Key="a", Body=_pattern(marker, 200_000), ServerSideEncryption="AES256"
        )
        assert asked["ServerSideEncryption"] == "AES256"
        assert marker not in _blob_path(server, "plain", "a").read_bytes()
        s3.put_bucket_encryption(Bucket="plain", ServerSideEncryptionConfiguration=_rule("AES256"))
        by_default = s3.put_object(Bucket="plain", Key="d", Body=_pattern(marker, 200_000))
        assert by_default["ServerSideEncryption"] == "AES256"
        assert marker not in _blob_path(server, "plain", "d").read_bytes()
        for key in ("k", "a", "d"):
            body = s3.get_object(Bucket="plain", Key=key)["Body"].read()
            assert body == _pattern(marker, 200_000)
    finally:
        server.cleanup()


def test_sm4_gcm_deployment(tmp_path: Path) -> None:
    import subprocess
    import sys

    server = _run_with(tmp_path, {"ONSHORE_CIPHER": "sm4-gcm"})
    try:
        s3 = make_client(server.endpoint)
        s3.create_bucket(Bucket="sm4")
        body = os.urandom(3 * SEGMENT + 7)
        s3.put_object(Bucket="sm4", Key="k", Body=body, Metadata={"a": "b"})
        s3.put_object(Bucket="sm4", Key="small", Body=b"tiny")
        got = s3.get_object(Bucket="sm4", Key="k", Range=f"bytes={SEGMENT - 3}-{2 * SEGMENT}")
        assert got["Body"].read() == body[SEGMENT - 3 : 2 * SEGMENT + 1]
        assert s3.head_object(Bucket="sm4", Key="k")["Metadata"] == {"a": "b"}
        assert s3.get_object(Bucket="sm4", Key="small")["Body"].read() == b"tiny"
        with _db(server) as conn:
            (cipher,) = conn.execute("SELECT cipher FROM tenant_keys").fetchone()
        assert cipher == "sm4-gcm"
        server.stop()
        # fsck opens SM4-sealed data with the root key and finds it clean.
        command = [sys.executable, "-m", "onshore", "fsck", "--json"]
        out = subprocess.run(
            [*command, "--data-dir", str(server.data_dir)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        report = json.loads(out.stdout)
        assert report["checked"]["bytes_read"] >= len(body)
    finally:
        server.cleanup()


def test_destroying_the_tenant_key_shreds_its_objects(tmp_path: Path) -> None:
    """Crypto-shredding, the primitive offboarding uses: with the tenant key gone, every object
    of the tenant (inline, blob, multipart) is unreadable at once, and says so with a 403."""
    from onshore.storage.sqlite import SqliteMetadataStore

    server = _run_with(tmp_path, {})
    try:
        s3 = make_client(server.endpoint)
        s3.create_bucket(Bucket="shred")
        s3.put_object(Bucket="shred", Key="small", Body=b"small")
        s3.put_object(Bucket="shred", Key="large", Body=os.urandom(300_000))
        assert server.stop() == 0
        store = SqliteMetadataStore(server.data_dir / "metadata.db")
        try:
            [tenant] = store.list_tenant_keys()
            assert store.delete_tenant_key(tenant.account_id)
        finally:
            store.close()
        server.start()
        s3 = make_client(server.endpoint)
        for key in ("small", "large"):
            with pytest.raises(ClientError) as err:
                s3.get_object(Bucket="shred", Key=key)
            assert status_of(err) == 403 and code_of(err) == "AccessDenied"
            with pytest.raises(ClientError) as err:
                s3.head_object(Bucket="shred", Key=key)
            assert status_of(err) == 403
        # Listing and deleting still work (the data is gone, not the bucket's index).
        listed = s3.list_objects_v2(Bucket="shred")["Contents"]
        assert {o["Key"] for o in listed} == {"small", "large"}
        s3.delete_object(Bucket="shred", Key="small")
    finally:
        server.cleanup()
