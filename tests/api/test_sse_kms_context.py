"""SSE-KMS encryption context and S3 Bucket Keys through boto3 and the AWS CLI, against a real
server of two worker processes: the context stored and echoed where AWS echoes it (PutObject,
CopyObject, CreateMultipartUpload), malformed contexts refused with AWS's error, Bucket Keys per
request and by bucket default (the header on every response AWS gives it), one bucket key
serving many objects, the KMS key's state gating them at once, nothing readable on disk."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.conftest import make_client
from tests.api.iam_support import client
from tests.api.server import ACCESS_KEY, SECRET_KEY, ServerProcess, client_env
from tests.api.test_buckets import code_of, status_of

MIB = 1024 * 1024
BAD_CONTEXT = (
    "The header 'x-amz-server-side-encryption-context' shall be Base64-encoded UTF-8 string "
    "holding JSON which represents a string-string map"
)
WORKERS = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("ssekms") / "data"
    proc = ServerProcess(data, extra_args=("--workers", str(WORKERS))).start()
    yield proc
    proc.cleanup()


@pytest.fixture(scope="module")
def s3(server: ServerProcess) -> Any:
    return make_client(server.endpoint)


@pytest.fixture(scope="module")
def kms(server: ServerProcess) -> Any:
    return client("kms", server.endpoint, ACCESS_KEY, SECRET_KEY)


@pytest.fixture
def key(kms: Any) -> dict[str, str]:
    return dict(kms.create_key()["KeyMetadata"])


def b64(context: dict[str, str]) -> str:
    return base64.b64encode(json.dumps(context).encode()).decode()


def unb64(text: str) -> dict[str, str]:
    return dict(json.loads(base64.b64decode(text)))


def stored(server: ServerProcess, bucket: str, key: str) -> dict[str, Any]:
    """The latest version's encryption record, as the metadata database holds it."""
    conn = sqlite3.connect(server.data_dir / "metadata.db", timeout=10)
    try:
        row = conn.execute(
            "SELECT v.encryption FROM versions v JOIN buckets b ON v.bucket_id = b.id"
            " WHERE b.name = ? AND v.object_key = ? AND v.is_latest",
            (bucket, key.encode()),
        ).fetchone()
    finally:
        conn.close()
    return dict(json.loads(row[0]))


def arn(bucket: str, key: str | None = None) -> str:
    return f"arn:onshore:s3:::{bucket}" + ("" if key is None else f"/{key}")


# --- encryption context ---------------------------------------------------------------------------
def test_context_stored_echoed_and_bound(s3: Any, server: ServerProcess, bucket: str) -> None:
    mine = {"project": "onshore", "stage": "test ü"}
    put = s3.put_object(
        Bucket=bucket,
        Key="dir/k",
        Body=b"with a context",
        ServerSideEncryption="aws:kms",
        SSEKMSEncryptionContext=b64(mine),
    )
    full = {**mine, "aws:s3:arn": arn(bucket, "dir/k")}
    assert put["ServerSideEncryption"] == "aws:kms"
    assert unb64(put["SSEKMSEncryptionContext"]) == full
    assert "BucketKeyEnabled" not in put
    record = stored(server, bucket, "dir/k")
    assert json.loads(record["kms_context"]) == full and "bucket_key" not in record
    got = s3.get_object(Bucket=bucket, Key="dir/k")
    assert got["Body"].read() == b"with a context"
    # GET and HEAD never carry the context (AWS's response syntax has no such header there).
    assert "SSEKMSEncryptionContext" not in got and "BucketKeyEnabled" not in got
    head = s3.head_object(Bucket=bucket, Key="dir/k")
    assert head["ServerSideEncryption"] == "aws:kms" and "SSEKMSEncryptionContext" not in head
    # Without a context of the client's: the object's ARN alone, and no echo.
    plain = s3.put_object(Bucket=bucket, Key="p", Body=b"x", ServerSideEncryption="aws:kms")
    assert "SSEKMSEncryptionContext" not in plain
    assert json.loads(stored(server, bucket, "p")["kms_context"]) == {
        "aws:s3:arn": arn(bucket, "p")
    }
    # An empty map and the object's own ARN are accepted.
    for context in ({}, {"aws:s3:arn": arn(bucket, "e")}):
        put = s3.put_object(
            Bucket=bucket,
            Key="e",
            Body=b"x",
            ServerSideEncryption="aws:kms",
            SSEKMSEncryptionContext=b64(context),
        )
        assert unb64(put["SSEKMSEncryptionContext"]) == {"aws:s3:arn": arn(bucket, "e")}


def test_copy_gets_its_own_context(s3: Any, server: ServerProcess, bucket: str) -> None:
    s3.put_object(
        Bucket=bucket,
        Key="src",
        Body=b"copied",
        ServerSideEncryption="aws:kms",
        SSEKMSEncryptionContext=b64({"from": "source"}),
    )
    source = {"Bucket": bucket, "Key": "src"}
    # No context on the copy: the target's default one, never the source's pairs.
    copied = s3.copy_object(
        Bucket=bucket, Key="dst", CopySource=source, ServerSideEncryption="aws:kms"
    )
    assert "SSEKMSEncryptionContext" not in copied
    assert json.loads(stored(server, bucket, "dst")["kms_context"]) == {
        "aws:s3:arn": arn(bucket, "dst")
    }
    mine = {"to": "target"}
    copied = s3.copy_object(
        Bucket=bucket,
        Key="dst2",
        CopySource=source,
        ServerSideEncryption="aws:kms",
        SSEKMSEncryptionContext=b64(mine),
    )
    assert unb64(copied["SSEKMSEncryptionContext"]) == {**mine, "aws:s3:arn": arn(bucket, "dst2")}
    for name in ("dst", "dst2"):
        assert s3.get_object(Bucket=bucket, Key=name)["Body"].read() == b"copied"
    # Copied to SSE-S3: no context left.
    to_s3 = s3.copy_object(Bucket=bucket, Key="dst3", CopySource=source)
    assert to_s3["ServerSideEncryption"] == "AES256" and "kms_context" not in stored(
        server, bucket, "dst3"
    )


def test_copy_onto_itself_to_change_its_encryption(
    s3: Any, server: ServerProcess, bucket: str, key: dict[str, str]
) -> None:
    s3.put_object(Bucket=bucket, Key="self", Body=b"re-encrypted", Metadata={"a": "1"})
    source = {"Bucket": bucket, "Key": "self"}
    with pytest.raises(ClientError) as err:  # still no change at all: refused, as on AWS
        s3.copy_object(Bucket=bucket, Key="self", CopySource=source)
    assert code_of(err) == "InvalidRequest"
    copied = s3.copy_object(
        Bucket=bucket,
        Key="self",
        CopySource=source,
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=key["KeyId"],
        BucketKeyEnabled=True,
    )
    assert copied["ServerSideEncryption"] == "aws:kms" and copied["BucketKeyEnabled"] is True
    head = s3.head_object(Bucket=bucket, Key="self")
    assert head["SSEKMSKeyId"] == key["Arn"] and head["Metadata"] == {"a": "1"}
    assert "bucket_key" in stored(server, bucket, "self")
    # Naming only the bucket key choice is a change too.
    copied = s3.copy_object(Bucket=bucket, Key="self", CopySource=source, BucketKeyEnabled=False)
    assert "bucket_key" not in stored(server, bucket, "self")
    assert s3.get_object(Bucket=bucket, Key="self")["Body"].read() == b"re-encrypted"


def test_multipart_with_a_context(s3: Any, server: ServerProcess, bucket: str) -> None:
    mine = {"upload": "mp"}
    upload = s3.create_multipart_upload(
        Bucket=bucket, Key="mp", ServerSideEncryption="aws:kms", SSEKMSEncryptionContext=b64(mine)
    )
    assert unb64(upload["SSEKMSEncryptionContext"]) == {**mine, "aws:s3:arn": arn(bucket, "mp")}
    bodies = [os.urandom(5 * MIB), os.urandom(100)]
    parts = []
    for number, body in enumerate(bodies, 1):
        part = s3.upload_part(
            Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=number, Body=body
        )
        assert part["ServerSideEncryption"] == "aws:kms" and "SSEKMSEncryptionContext" not in part
        parts.append({"PartNumber": number, "ETag": part["ETag"]})
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    assert done["ServerSideEncryption"] == "aws:kms" and "SSEKMSEncryptionContext" not in done
    assert json.loads(stored(server, bucket, "mp")["kms_context"]) == {
        **mine,
        "aws:s3:arn": arn(bucket, "mp"),
    }
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"".join(bodies)


@pytest.mark.parametrize(
    "value",
    [
        "%%% not base64 %%%",
        base64.b64encode(b"not json").decode(),
        base64.b64encode(b"\xff\xfe{}").decode(),  # not UTF-8
        b64(["a", "list"]),  # type: ignore[arg-type]
        base64.b64encode(b'"a string"').decode(),
        base64.b64encode(b'{"n": 1}').decode(),
        base64.b64encode(b'{"nested": {"a": "b"}}').decode(),
        base64.b64encode(b'{"null": null}').decode(),
    ],
)
def test_malformed_contexts(s3: Any, bucket: str, value: str) -> None:
    for call in (
        lambda: s3.put_object(
            Bucket=bucket,
            Key="k",
            Body=b"x",
            ServerSideEncryption="aws:kms",
            SSEKMSEncryptionContext=value,
        ),
        lambda: s3.create_multipart_upload(
            Bucket=bucket, Key="k", ServerSideEncryption="aws:kms", SSEKMSEncryptionContext=value
        ),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert status_of(err) == 400 and code_of(err) == "InvalidArgument"
        assert err.value.response["Error"]["Message"] == BAD_CONTEXT
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_context_needs_aws_kms(s3: Any, bucket: str) -> None:
    context = b64({"a": "b"})
    for extra in ({}, {"ServerSideEncryption": "AES256"}):
        with pytest.raises(ClientError) as err:
            s3.put_object(
                Bucket=bucket, Key="k", Body=b"x", SSEKMSEncryptionContext=context, **extra
            )
        assert status_of(err) == 400 and code_of(err) == "InvalidArgument"
        assert "aws:kms" in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as err:
        s3.copy_object(
            Bucket=bucket,
            Key="c",
            CopySource={"Bucket": bucket, "Key": "missing"},
            SSEKMSEncryptionContext=context,
        )
    assert code_of(err) == "InvalidArgument"
    # Another object's ARN as aws:s3:arn.
    with pytest.raises(ClientError) as err:
        s3.put_object(
            Bucket=bucket,
            Key="k",
            Body=b"x",
            ServerSideEncryption="aws:kms",
            SSEKMSEncryptionContext=b64({"aws:s3:arn": arn(bucket, "other")}),
        )
    assert status_of(err) == 400 and code_of(err) == "InvalidArgument"


def test_bad_bucket_key_header(server: ServerProcess, bucket: str) -> None:
    client = make_client(server.endpoint)

    def bad_header(request: Any, **_: Any) -> None:
        request.headers["x-amz-server-side-encryption-bucket-key-enabled"] = "maybe"

    client.meta.events.register("before-sign.s3.PutObject", bad_header)
    with pytest.raises(ClientError) as err:
        client.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="aws:kms")
    assert status_of(err) == 400 and code_of(err) == "InvalidArgument"


# --- bucket keys ----------------------------------------------------------------------------------
def test_bucket_key_per_request(
    s3: Any, server: ServerProcess, bucket: str, key: dict[str, str]
) -> None:
    bodies = {f"o{i}": os.urandom(10 + i) for i in range(12)}
    for name, body in bodies.items():
        put = s3.put_object(
            Bucket=bucket,
            Key=name,
            Body=body,
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=key["KeyId"],
            BucketKeyEnabled=True,
        )
        assert put["BucketKeyEnabled"] is True and put["SSEKMSKeyId"] == key["Arn"]
    for name, body in bodies.items():
        got = s3.get_object(Bucket=bucket, Key=name)
        assert got["Body"].read() == body and got["BucketKeyEnabled"] is True
        assert s3.head_object(Bucket=bucket, Key=name)["BucketKeyEnabled"] is True
    # One KMS data key (the bucket key) per worker process served them all, under the bucket's
    # ARN; each object still has a data key of its own.
    records = [stored(server, bucket, name) for name in bodies]
    assert 1 <= len({r["bucket_key"] for r in records}) <= WORKERS
    assert len({r["wrapped_key"] for r in records}) == len(bodies)
    assert all(json.loads(r["kms_context"]) == {"aws:s3:arn": arn(bucket)} for r in records)
    # Explicitly false, or not asked for in a bucket without the setting: no bucket key.
    for extra in ({"BucketKeyEnabled": False}, {}):
        put = s3.put_object(
            Bucket=bucket, Key="nobk", Body=b"x", ServerSideEncryption="aws:kms", **extra
        )
        assert "BucketKeyEnabled" not in put
        assert "bucket_key" not in stored(server, bucket, "nobk")
    # SSE-S3 ignores it.
    sse_s3 = s3.put_object(Bucket=bucket, Key="s3", Body=b"x", BucketKeyEnabled=True)
    assert sse_s3["ServerSideEncryption"] == "AES256" and "BucketKeyEnabled" not in sse_s3


def test_bucket_key_by_default_everywhere(
    s3: Any, server: ServerProcess, bucket: str, key: dict[str, str]
) -> None:
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": key["KeyId"],
                    },
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["BucketKeyEnabled"] is True
    put = s3.put_object(Bucket=bucket, Key="a", Body=b"by default")
    assert put["ServerSideEncryption"] == "aws:kms" and put["BucketKeyEnabled"] is True
    assert put["SSEKMSKeyId"] == key["Arn"]
    off = s3.put_object(Bucket=bucket, Key="b", Body=b"not", BucketKeyEnabled=False)
    assert off["ServerSideEncryption"] == "aws:kms" and "BucketKeyEnabled" not in off
    # Multipart: every response AWS gives the header to carries it.
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")
    assert upload["BucketKeyEnabled"] is True
    first = os.urandom(5 * MIB)
    part1 = s3.upload_part(
        Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=1, Body=first
    )
    assert part1["BucketKeyEnabled"] is True
    part2 = s3.upload_part_copy(
        Bucket=bucket,
        Key="mp",
        UploadId=upload["UploadId"],
        PartNumber=2,
        CopySource={"Bucket": bucket, "Key": "a"},
    )
    assert part2["BucketKeyEnabled"] is True
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload["UploadId"],
        MultipartUpload={
            "Parts": [
                {"PartNumber": 1, "ETag": part1["ETag"]},
                {"PartNumber": 2, "ETag": part2["CopyPartResult"]["ETag"]},
            ]
        },
    )
    assert done["BucketKeyEnabled"] is True
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["Body"].read() == first + b"by default" and got["BucketKeyEnabled"] is True
    # CopyObject: the bucket's setting, or the request's.
    copied = s3.copy_object(Bucket=bucket, Key="c1", CopySource={"Bucket": bucket, "Key": "b"})
    assert copied["BucketKeyEnabled"] is True
    copied = s3.copy_object(
        Bucket=bucket, Key="c2", CopySource={"Bucket": bucket, "Key": "a"}, BucketKeyEnabled=False
    )
    assert "BucketKeyEnabled" not in copied and copied["ServerSideEncryption"] == "aws:kms"
    for name, body in (("c1", b"not"), ("c2", b"by default")):
        assert s3.get_object(Bucket=bucket, Key=name)["Body"].read() == body
    assert "bucket_key" in stored(server, bucket, "c1")
    assert "bucket_key" not in stored(server, bucket, "c2")


def test_bucket_key_objects_follow_the_key_state(
    s3: Any, kms: Any, bucket: str, key: dict[str, str]
) -> None:
    bodies = {f"k{i}": os.urandom(100 if i % 2 else 2 * MIB) for i in range(4)}
    for name, body in bodies.items():
        s3.put_object(
            Bucket=bucket,
            Key=name,
            Body=body,
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=key["Arn"],
            BucketKeyEnabled=True,
        )
        assert s3.get_object(Bucket=bucket, Key=name)["Body"].read() == body  # cached now

    def refused(code: str) -> None:
        for name in list(bodies) * 2:  # every worker process, cache or not
            with pytest.raises(ClientError) as err:
                s3.get_object(Bucket=bucket, Key=name)
            assert status_of(err) == 400 and code_of(err) == code
        with pytest.raises(ClientError) as err:
            s3.put_object(
                Bucket=bucket,
                Key="new",
                Body=b"x",
                ServerSideEncryption="aws:kms",
                SSEKMSKeyId=key["Arn"],
                BucketKeyEnabled=True,
            )
        assert code_of(err) == code

    def readable() -> None:
        for name, body in list(bodies.items()) * 2:
            assert s3.get_object(Bucket=bucket, Key=name)["Body"].read() == body

    kms.disable_key(KeyId=key["KeyId"])
    refused("KMS.DisabledException")
    kms.enable_key(KeyId=key["KeyId"])
    readable()
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    refused("KMS.KMSInvalidStateException")
    kms.cancel_key_deletion(KeyId=key["KeyId"])
    refused("KMS.DisabledException")  # cancelling leaves the key disabled, as AWS does
    kms.enable_key(KeyId=key["KeyId"])
    readable()


# --- the AWS CLI ----------------------------------------------------------------------------------
def test_aws_cli_context_and_bucket_key(
    server: ServerProcess, bucket: str, key: dict[str, str], tmp_path: Path
) -> None:
    env = client_env()
    api = ["aws", "s3api", "--endpoint-url", server.endpoint, "--output", "json"]

    def run(*args: str) -> dict[str, Any]:
        done = subprocess.run(
            [*api, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout or "{}"))

    body = tmp_path / "body.bin"
    body.write_bytes(b"from the cli")
    put = run(
        "put-object",
        "--bucket",
        bucket,
        "--key",
        "cli",
        "--body",
        str(body),
        "--server-side-encryption",
        "aws:kms",
        "--ssekms-key-id",
        key["KeyId"],
        "--ssekms-encryption-context",
        b64({"via": "cli"}),
        "--bucket-key-enabled",
    )
    assert put["BucketKeyEnabled"] is True and put["SSEKMSKeyId"] == key["Arn"]
    assert unb64(put["SSEKMSEncryptionContext"]) == {"via": "cli", "aws:s3:arn": arn(bucket)}
    head = run("head-object", "--bucket", bucket, "--key", "cli")
    assert head["ServerSideEncryption"] == "aws:kms" and head["BucketKeyEnabled"] is True
    out = tmp_path / "out.bin"
    got = run("get-object", "--bucket", bucket, "--key", "cli", str(out))
    assert got["BucketKeyEnabled"] is True and out.read_bytes() == b"from the cli"
    copied = run(
        "copy-object",
        "--bucket",
        bucket,
        "--key",
        "cli-copy",
        "--copy-source",
        f"{bucket}/cli",
        "--server-side-encryption",
        "aws:kms",
        "--no-bucket-key-enabled",
    )
    assert "BucketKeyEnabled" not in copied
    bad = subprocess.run(
        [
            *api,
            "put-object",
            "--bucket",
            bucket,
            "--key",
            "bad",
            "--body",
            str(body),
            "--server-side-encryption",
            "aws:kms",
            "--ssekms-encryption-context",
            "not-json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode != 0 and "InvalidArgument" in bad.stderr


# --- at rest --------------------------------------------------------------------------------------
def test_nothing_readable_under_the_data_dir(
    s3: Any, server: ServerProcess, bucket: str, key: dict[str, str]
) -> None:
    marker = f"KMSPLAIN-{uuid.uuid4().hex}".encode()
    meta_marker = f"KMSMETA-{uuid.uuid4().hex}"
    kms_args = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key["KeyId"]}
    body = (marker * (3 * MIB // len(marker) + 1))[: 3 * MIB]
    for name, bucket_key in (("plain-kms", False), ("bucket-key", True)):
        for suffix, data in (("inline", marker * 10), ("large", body)):
            s3.put_object(
                Bucket=bucket,
                Key=f"{name}-{suffix}",
                Body=data,
                Metadata={"secret": meta_marker},
                SSEKMSEncryptionContext=b64({"ctx": "value"}),
                BucketKeyEnabled=bucket_key,
                **kms_args,
            )
    upload = s3.create_multipart_upload(
        Bucket=bucket, Key="mp", BucketKeyEnabled=True, Metadata={"m": meta_marker}, **kms_args
    )
    part = s3.upload_part(
        Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=1, Body=body
    )
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == body
    assert s3.head_object(Bucket=bucket, Key="bucket-key-inline")["Metadata"] == {
        "secret": meta_marker
    }
    scanned = 0
    for path in server.data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            scanned += 1
            assert marker[:16] not in data, f"plaintext body in {path}"
            assert meta_marker.encode() not in data, f"plaintext metadata in {path}"
    assert scanned >= 5
