"""KMS key material rotation and key deletion carried out, against real server processes with
boto3 and the AWS CLI: SSE-KMS objects written before a rotation stay readable after it; a key
whose deletion date has passed is deleted by the server's key sweep (at start-up, or while it
runs) and its objects answer ``400 KMS.NotFoundException``; bad inputs get KMS's errors.

Time: a test cannot wait 7 days for a deletion or 90 for a rotation. The dates the sweep acts
on are moved into the past in the SQLite file (with the server stopped, or through SQLite's own
locking while it runs), as the passing of time would; the server's code paths are the real
ones, with no test-only switch."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.conftest import make_client
from tests.api.server import ACCESS_KEY, REGION, SECRET_KEY, ServerProcess, client_env
from tests.api.test_buckets import code_of, status_of


def kms_client(server: ServerProcess, *, validate: bool = True) -> Any:
    """boto3's KMS client; ``validate=False`` lets out-of-range values reach the server."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
    )
    config = Config(retries={"max_attempts": 1}, parameter_validation=validate)
    return session.client("kms", endpoint_url=server.endpoint, config=config)


def aws_kms(server: ServerProcess, *args: str) -> Any:
    """Run ``aws kms ...`` against the server; its JSON output (None when it prints none)."""
    done = subprocess.run(
        ["aws", "kms", "--endpoint-url", server.endpoint, "--output", "json", *args],
        env=client_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None


def kms_code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


def move_dates(data_dir: Path, key_id: str, column: str) -> None:
    """Put a key's deletion or next rotation date an hour in the past, as time passing would."""
    assert column in ("deletion_us", "next_rotation_us")
    past = int((datetime.now(UTC) - timedelta(hours=1)).timestamp() * 1_000_000)
    conn = sqlite3.connect(data_dir / "metadata.db", timeout=30)
    try:
        with conn:
            changed = conn.execute(
                f"UPDATE kms_keys SET {column} = ? WHERE key_id = ?", (past, key_id)
            ).rowcount
        assert changed == 1
    finally:
        conn.close()


def audit_records(data_dir: Path, operation: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "onshore", "audit", "search", "--data-dir", str(data_dir),
         "--operation", operation, "--json"],
        env=client_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("kmslife") / "data").start()
    yield proc
    proc.cleanup()


@pytest.fixture(scope="module")
def kms(server: ServerProcess) -> Any:
    return kms_client(server)


@pytest.fixture(scope="module")
def s3(server: ServerProcess) -> Any:
    return make_client(server.endpoint)


def test_rotate_on_demand_keeps_old_ciphertexts_and_objects(
    server: ServerProcess, kms: Any, s3: Any, tmp_path: Path
) -> None:
    key = kms.create_key(Description="rotated")["KeyMetadata"]
    key_id = key["KeyId"]
    bucket = f"rot-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(3 * 1024 * 1024)
    s3.put_object(
        Bucket=bucket, Key="before", Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id
    )
    old_blob = kms.encrypt(KeyId=key_id, Plaintext=b"old secret")["CiphertextBlob"]
    first_material = kms.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"]

    # Rotate with the AWS CLI, then once more with boto3.
    assert aws_kms(server, "rotate-key-on-demand", "--key-id", key_id) == {"KeyId": key_id}
    assert kms.rotate_key_on_demand(KeyId=key["Arn"])["KeyId"] == key_id
    current = kms.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"]
    assert len(current) == 64 and current != first_material

    listed = aws_kms(server, "list-key-rotations", "--key-id", key_id)  # the CLI pages itself
    assert [r["RotationType"] for r in listed["Rotations"]] == ["ON_DEMAND", "ON_DEMAND"]
    assert [r["KeyMaterialState"] for r in listed["Rotations"]] == ["NON_CURRENT", "CURRENT"]
    assert all(r["KeyId"] == key_id and "RotationDate" in r for r in listed["Rotations"])
    everything = kms.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")
    first = everything["Rotations"][0]
    assert first["KeyMaterialId"] == first_material and "RotationDate" not in first
    assert len(everything["Rotations"]) == 3
    # Paging: one at a time, NextMarker to Marker.
    seen, marker = [], None
    while True:
        page = kms.list_key_rotations(
            KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL", Limit=1,
            **({"Marker": marker} if marker else {}),
        )  # fmt: skip
        seen += [r["KeyMaterialId"] for r in page["Rotations"]]
        if not page["Truncated"]:
            break
        marker = page["NextMarker"]
    assert seen == [r["KeyMaterialId"] for r in everything["Rotations"]]

    # Old and new ciphertexts both decrypt; new ones are made with the current material.
    new_blob = kms.encrypt(KeyId=key_id, Plaintext=b"new secret")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=old_blob)["Plaintext"] == b"old secret"
    assert kms.decrypt(CiphertextBlob=new_blob)["Plaintext"] == b"new secret"
    blob_file = tmp_path / "old.bin"
    blob_file.write_bytes(old_blob)
    opened = aws_kms(server, "decrypt", "--ciphertext-blob", f"fileb://{blob_file}")
    assert base64.b64decode(opened["Plaintext"]) == b"old secret"

    # The object sealed before the rotations reads back; one sealed after it too.
    assert s3.get_object(Bucket=bucket, Key="before")["Body"].read() == body
    s3.put_object(
        Bucket=bucket,
        Key="after",
        Body=b"after",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=key_id,
    )
    got = s3.get_object(Bucket=bucket, Key="after")
    assert got["Body"].read() == b"after" and got["SSEKMSKeyId"] == key["Arn"]
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is False and "NextRotationDate" not in status


def test_rotation_settings_and_bad_inputs(server: ServerProcess, kms: Any) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    loose = kms_client(server, validate=False)
    aws_kms(server, "enable-key-rotation", "--key-id", key_id, "--rotation-period-in-days", "180")
    status = aws_kms(server, "get-key-rotation-status", "--key-id", key_id)
    assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 180
    next_date = datetime.fromtimestamp(status["NextRotationDate"], UTC)  # CLI v1: epoch seconds
    assert abs((next_date - datetime.now(UTC)) - timedelta(days=180)) < timedelta(minutes=5)
    kms.enable_key_rotation(KeyId=key_id)  # no period: the default
    assert kms.get_key_rotation_status(KeyId=key_id)["RotationPeriodInDays"] == 365

    def refused(call: Callable[[], object]) -> str:
        with pytest.raises(ClientError) as err:
            call()
        assert status_of(err) == 400
        return kms_code(err)

    bad: list[tuple[Callable[[], object], str]] = [
        *(
            (lambda d=days: loose.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=d),
             "ValidationException")
            for days in (89, 2561, 0)
        ),
        (lambda: loose.list_key_rotations(KeyId=key_id, Limit=0), "ValidationException"),
        (lambda: loose.list_key_rotations(KeyId=key_id, Limit=1001), "ValidationException"),
        (
            lambda: loose.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="SOME"),
            "ValidationException",
        ),
        (lambda: kms.list_key_rotations(KeyId=key_id, Marker="9"), "InvalidMarkerException"),
        (lambda: kms.list_key_rotations(KeyId=key_id, Marker="x"), "InvalidMarkerException"),
    ]  # fmt: skip
    for call, expected in bad:
        assert refused(call) == expected
    assert refused(lambda: kms.rotate_key_on_demand(KeyId=str(uuid.uuid4()))) == "NotFoundException"
    alias = f"alias/rot-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    assert refused(lambda: kms.rotate_key_on_demand(KeyId=alias)) == "NotFoundException"

    kms.disable_key(KeyId=key_id)
    assert refused(lambda: kms.rotate_key_on_demand(KeyId=key_id)) == "DisabledException"
    assert refused(lambda: kms.enable_key_rotation(KeyId=key_id)) == "DisabledException"
    assert refused(lambda: kms.disable_key_rotation(KeyId=key_id)) == "DisabledException"
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    kms.enable_key(KeyId=key_id)
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert refused(lambda: kms.rotate_key_on_demand(KeyId=key_id)) == "KMSInvalidStateException"
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False
    kms.cancel_key_deletion(KeyId=key_id)
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    kms.enable_key(KeyId=key_id)
    kms.disable_key_rotation(KeyId=key_id)
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is False and "RotationPeriodInDays" not in status
    assert kms.list_key_rotations(KeyId=key_id)["Rotations"] == []


def test_deletion_at_its_date_makes_objects_unreadable(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", extra_args=("--workers", "2")).start()
    try:
        kms, s3 = kms_client(server), make_client(server.endpoint)
        s3.create_bucket(Bucket="doomed")
        doomed = kms.create_key(Description="doomed")["KeyMetadata"]
        kept = kms.create_key(Description="kept")["KeyMetadata"]
        alias = "alias/doomed"
        kms.create_alias(AliasName=alias, TargetKeyId=doomed["KeyId"])
        kms.rotate_key_on_demand(KeyId=doomed["KeyId"])  # its materials go too
        for name, key in (("gone", doomed), ("stays", kept)):
            s3.put_object(
                Bucket="doomed", Key=name, Body=name.encode(),
                ServerSideEncryption="aws:kms", SSEKMSKeyId=key["KeyId"],
            )  # fmt: skip
        blob = kms.encrypt(KeyId=doomed["KeyId"], Plaintext=b"x")["CiphertextBlob"]
        kms.schedule_key_deletion(KeyId=doomed["KeyId"], PendingWindowInDays=7)
        kms.schedule_key_deletion(KeyId=kept["KeyId"], PendingWindowInDays=7)
        kms.cancel_key_deletion(KeyId=kept["KeyId"])  # cancelled before its date: kept
        kms.enable_key(KeyId=kept["KeyId"])
        assert server.stop() == 0

        move_dates(server.data_dir, doomed["KeyId"], "deletion_us")  # a week went by
        server.start()  # the start-up sweep deletes it before requests are served
        kms, s3 = kms_client(server), make_client(server.endpoint)
        with pytest.raises(ClientError) as err:
            kms.describe_key(KeyId=doomed["KeyId"])
        assert kms_code(err) == "NotFoundException"
        with pytest.raises(ClientError) as err:
            kms.decrypt(CiphertextBlob=blob)
        assert kms_code(err) == "NotFoundException"
        with pytest.raises(ClientError) as err:
            s3.get_object(Bucket="doomed", Key="gone")
        assert status_of(err) == 400 and code_of(err) == "KMS.NotFoundException"
        with pytest.raises(ClientError) as err:
            s3.head_object(Bucket="doomed", Key="gone")
        assert status_of(err) == 400
        assert s3.get_object(Bucket="doomed", Key="stays")["Body"].read() == b"stays"
        assert alias not in [a["AliasName"] for a in kms.list_aliases()["Aliases"]]
        assert doomed["KeyId"] not in [k["KeyId"] for k in kms.list_keys()["Keys"]]
        # Reading the object's metadata is not refused by the key: listing still shows it.
        listed = s3.list_objects_v2(Bucket="doomed")["Contents"]
        assert {o["Key"] for o in listed} == {"gone", "stays"}
        assert server.stop() == 0

        # One DeleteKey record, however many worker processes swept, by the service.
        (record,) = audit_records(server.data_dir, "DeleteKey")
        assert record["eventType"] == "AwsServiceEvent"
        assert record["eventSource"].startswith("kms.")
        assert (
            record["userIdentity"]["invokedBy"] and record["userIdentity"]["type"] == "AWSService"
        )
        assert record["recipientAccountId"] == doomed["AWSAccountId"]
        assert record["additionalEventData"]["keyId"] == doomed["Arn"]
        conn = sqlite3.connect(server.data_dir / "metadata.db")
        try:
            for table in ("kms_keys", "kms_key_materials", "kms_aliases"):
                (count,) = conn.execute(
                    f"SELECT COUNT(*) FROM {table} WHERE key_id = ?", (doomed["KeyId"],)
                ).fetchone()
                assert count == 0, table
        finally:
            conn.close()
    finally:
        server.cleanup()


def test_running_server_sweeps_rotations_and_deletions(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "data", extra_args=("--workers", "2", "--kms-sweep-seconds", "0.2")
    ).start()
    try:
        kms, s3 = kms_client(server), make_client(server.endpoint)
        s3.create_bucket(Bucket="auto")
        key = kms.create_key()["KeyMetadata"]
        key_id = key["KeyId"]
        s3.put_object(
            Bucket="auto", Key="k", Body=b"before", ServerSideEncryption="aws:kms",
            SSEKMSKeyId=key_id,
        )  # fmt: skip
        kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
        scheduled = kms.get_key_rotation_status(KeyId=key_id)["NextRotationDate"]
        move_dates(server.data_dir, key_id, "next_rotation_us")  # 90 days went by

        def rotated() -> bool:
            return len(kms.list_key_rotations(KeyId=key_id)["Rotations"]) == 1

        eventually(rotated)
        (rotation,) = kms.list_key_rotations(KeyId=key_id)["Rotations"]
        assert rotation["RotationType"] == "AUTOMATIC"
        status = kms.get_key_rotation_status(KeyId=key_id)
        assert status["NextRotationDate"] > scheduled - timedelta(hours=2)
        time.sleep(1)  # several more sweeps: nothing more is due
        assert len(kms.list_key_rotations(KeyId=key_id)["Rotations"]) == 1
        assert s3.get_object(Bucket="auto", Key="k")["Body"].read() == b"before"

        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
        move_dates(server.data_dir, key_id, "deletion_us")

        def deleted() -> bool:
            try:
                kms.describe_key(KeyId=key_id)
            except ClientError as exc:
                return bool(exc.response["Error"]["Code"] == "NotFoundException")
            return False

        eventually(deleted)
        with pytest.raises(ClientError) as err:
            s3.get_object(Bucket="auto", Key="k")
        assert code_of(err) == "KMS.NotFoundException"
        assert server.stop() == 0
        assert len(audit_records(server.data_dir, "RotateKey")) == 1
        assert len(audit_records(server.data_dir, "DeleteKey")) == 1
    finally:
        server.cleanup()
