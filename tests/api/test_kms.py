"""The KMS API (boto3's ``kms`` client and the AWS CLI) and SSE-KMS objects, against a real
server process: key states gate reads as on AWS, and enabling a key restores them."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.conftest import make_client
from tests.api.iam_support import client
from tests.api.server import ACCESS_KEY, REGION, SECRET_KEY, ServerProcess, client_env
from tests.api.test_buckets import code_of, status_of


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("kms") / "data").start()
    yield proc
    proc.cleanup()


@pytest.fixture(scope="module")
def s3(server: ServerProcess) -> Any:
    return make_client(server.endpoint)


@pytest.fixture(scope="module")
def kms(server: ServerProcess) -> Any:
    return client("kms", server.endpoint, ACCESS_KEY, SECRET_KEY)


def kms_code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def test_key_lifecycle(kms: Any) -> None:
    created = kms.create_key(Description="tenant data")["KeyMetadata"]
    key_id = created["KeyId"]
    assert created["KeyState"] == "Enabled" and created["Enabled"] is True
    assert created["Arn"].endswith(f":key/{key_id}") and created["Arn"].startswith("arn:")
    described = kms.describe_key(KeyId=created["Arn"])["KeyMetadata"]
    assert described["Description"] == "tenant data"
    assert key_id in [k["KeyId"] for k in kms.list_keys()["Keys"]]

    alias = f"alias/test-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    aliases = {a["AliasName"]: a["TargetKeyId"] for a in kms.list_aliases()["Aliases"]}
    assert aliases[alias] == key_id
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == key_id
    with pytest.raises(ClientError) as err:
        kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    assert kms_code(err) == "AlreadyExistsException"

    kms.disable_key(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    with pytest.raises(ClientError) as err:
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
    assert kms_code(err) == "DisabledException"
    kms.enable_key(KeyId=key_id)

    kms.enable_key_rotation(KeyId=key_id)
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True

    scheduled = kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert scheduled["KeyState"] == "PendingDeletion"
    with pytest.raises(ClientError) as err:
        kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert kms_code(err) == "KMSInvalidStateException"
    with pytest.raises(ClientError) as err:
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=3)
    assert kms_code(err) == "ValidationException"
    kms.cancel_key_deletion(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"

    with pytest.raises(ClientError) as err:
        kms.describe_key(KeyId=str(uuid.uuid4()))
    assert kms_code(err) == "NotFoundException"


def test_encrypt_decrypt_and_data_keys(kms: Any) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    context = {"purpose": "test"}
    sealed = kms.encrypt(KeyId=key_id, Plaintext=b"secret", EncryptionContext=context)
    blob = sealed["CiphertextBlob"]
    assert b"secret" not in blob
    opened = kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)
    assert opened["Plaintext"] == b"secret" and opened["KeyId"].endswith(key_id)
    with pytest.raises(ClientError) as err:
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"purpose": "other"})
    assert kms_code(err) == "InvalidCiphertextException"
    with pytest.raises(ClientError) as err:
        kms.decrypt(CiphertextBlob=blob[:-1] + bytes([blob[-1] ^ 1]), EncryptionContext=context)
    assert kms_code(err) == "InvalidCiphertextException"
    data_key = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert len(data_key["Plaintext"]) == 32
    assert (
        kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"]
        == (data_key["Plaintext"])
    )


def test_unsigned_and_unknown_requests(server: ServerProcess) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        server.endpoint + "/",
        data=b"{}",
        method="POST",
        headers={"X-Amz-Target": "TrentService.ListKeys", "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 400
    assert json.loads(err.value.read())["__type"] == "AccessDeniedException"


def test_aws_cli_reaches_kms(server: ServerProcess, tmp_path: Path) -> None:
    env = client_env()
    command = ["aws", "kms", "--endpoint-url", server.endpoint, "--output", "json"]
    created = subprocess.run(
        [*command, "create-key", "--description", "from the cli"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    key_id = json.loads(created.stdout)["KeyMetadata"]["KeyId"]
    listed = subprocess.run(
        [*command, "list-keys"], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert key_id in listed.stdout
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"cli secret")
    sealed = subprocess.run(
        [*command, "encrypt", "--key-id", key_id, "--plaintext", f"fileb://{plain}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    blob = tmp_path / "blob.bin"
    blob.write_bytes(base64.b64decode(json.loads(sealed.stdout)["CiphertextBlob"]))
    opened = subprocess.run(
        [*command, "decrypt", "--ciphertext-blob", f"fileb://{blob}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert base64.b64decode(json.loads(opened.stdout)["Plaintext"]) == b"cli secret"


# --- SSE-KMS --------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [100, 3 * 1024 * 1024])
def test_sse_kms_object_follows_its_key_state(s3: Any, kms: Any, bucket: str, size: int) -> None:
    key = kms.create_key()["KeyMetadata"]
    body = os.urandom(size)
    put = s3.put_object(
        Bucket=bucket,
        Key="k",
        Body=body,
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=key["KeyId"],
        Metadata={"a": "b"},
    )
    assert put["ServerSideEncryption"] == "aws:kms" and put["SSEKMSKeyId"] == key["Arn"]
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == body and got["SSEKMSKeyId"] == key["Arn"]
    assert got["Metadata"] == {"a": "b"}

    kms.disable_key(KeyId=key["KeyId"])
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k")
    assert status_of(err) == 400 and code_of(err) == "KMS.DisabledException"
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="k")
    assert status_of(err) == 400
    kms.enable_key(KeyId=key["KeyId"])
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == body

    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k")
    assert code_of(err) == "KMS.KMSInvalidStateException"
    with pytest.raises(ClientError) as err:  # nor can new objects be sealed with it
        s3.put_object(
            Bucket=bucket,
            Key="n",
            Body=b"x",
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=key["Arn"],
        )
    assert code_of(err) == "KMS.KMSInvalidStateException"
    kms.cancel_key_deletion(KeyId=key["KeyId"])
    kms.enable_key(KeyId=key["KeyId"])
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == body


def test_sse_kms_default_key_alias_multipart_and_copy(s3: Any, kms: Any, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="d", Body=b"default", ServerSideEncryption="aws:kms")
    aliases = {a["AliasName"]: a["TargetKeyId"] for a in kms.list_aliases()["Aliases"]}
    assert put["SSEKMSKeyId"].endswith(aliases["alias/aws/s3"])
    key = kms.create_key()["KeyMetadata"]
    alias = f"alias/mp-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    upload = s3.create_multipart_upload(
        Bucket=bucket, Key="mp", ServerSideEncryption="aws:kms", SSEKMSKeyId=alias
    )
    assert upload["SSEKMSKeyId"] == key["Arn"]
    bodies = [os.urandom(5 * 1024 * 1024), os.urandom(10)]
    parts = []
    for number, body in enumerate(bodies, 1):
        part = s3.upload_part(
            Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=number, Body=body
        )
        parts.append({"PartNumber": number, "ETag": part["ETag"]})
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    assert done["ServerSideEncryption"] == "aws:kms"
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"".join(bodies)
    # Copy to SSE-S3: readable after the source's key is disabled.
    copied = s3.copy_object(Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "mp"})
    assert copied["ServerSideEncryption"] == "AES256"
    kms.disable_key(KeyId=key["KeyId"])
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"".join(bodies)
    kms.enable_key(KeyId=key["KeyId"])


def test_sse_kms_bad_requests(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.put_object(
            Bucket=bucket,
            Key="k",
            Body=b"x",
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=str(uuid.uuid4()),
        )
    assert status_of(err) == 400 and code_of(err) == "KMS.NotFoundException"
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", SSEKMSKeyId="whatever")
    assert code_of(err) == "InvalidArgument"


def test_kms_on_its_own_port(tmp_path: Path) -> None:
    """``kms_address``: the KMS API on its own endpoint, as kms.REGION.amazonaws.com; that
    endpoint serves nothing else."""
    import urllib.error
    import urllib.request

    import boto3
    from botocore.config import Config

    from tests.api.server import free_port

    port = free_port()
    proc = ServerProcess(
        tmp_path / "data", extra_args=("--kms-address", f"127.0.0.1:{port}")
    ).start()
    try:
        session = boto3.session.Session(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
        )
        own = session.client(
            "kms",
            endpoint_url=f"http://127.0.0.1:{port}",
            config=Config(retries={"max_attempts": 1}),
        )
        key_id = own.create_key(Description="own endpoint")["KeyMetadata"]["KeyId"]
        sealed = own.encrypt(KeyId=key_id, Plaintext=b"on the kms port")["CiphertextBlob"]
        assert own.decrypt(CiphertextBlob=sealed)["Plaintext"] == b"on the kms port"
        with pytest.raises(urllib.error.HTTPError) as refused:  # no S3 on the KMS endpoint
            urllib.request.urlopen(f"http://127.0.0.1:{port}/")
        assert refused.value.code == 400
        assert b"UnknownOperationException" in refused.value.read()
    finally:
        proc.cleanup()
