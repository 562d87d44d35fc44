"""The licensor plane against a real server process, through boto3 and the ``onshore`` CLI.

One deployment with a pinned licensor key goes through: unlicensed (writes refused, reads
fine) → licensed (writes accepted, with the state header) → busy traffic with distinctive names
→ license expired past its grace period (new writes refused with a clear S3 error; reads,
listings, deletes and aborts keep working) → the monthly usage report, which must contain none
of the names, ids or addresses the traffic used.
"""

from __future__ import annotations

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

from onshore.service.licensing import reports
from tests.api.conftest import make_client
from tests.api.server import ACCESS_KEY, REGION, SECRET_KEY, ServerProcess, client_env
from tests.licensing_kit import Licensor

TAG = uuid.uuid4().hex[:8]
BUCKET = f"zanzibar-secret-{TAG}"
OTHER_BUCKET = f"quokka-ledger-{TAG}"
KEYS = [f"patients/ada-lovelace-{TAG}.json", f"payroll/grace-hopper-{TAG}.csv"]


class Env:
    def __init__(self, tmp: Path) -> None:
        self.licensor = Licensor()
        self.data_dir = tmp / "data"
        self.env = {
            "ONSHORE_LICENSOR_PUBLIC_KEYS": self.licensor.public_text,
            "ONSHORE_LICENSE_REFRESH_SECONDS": "0.2",
            "ONSHORE_DATA_DIR": str(self.data_dir),
        }
        self.server = ServerProcess(self.data_dir, env=dict(self.env))

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = client_env(**self.env)
        return subprocess.run(
            [sys.executable, "-m", "onshore", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    e = Env(tmp_path_factory.mktemp("licensing"))
    e.server.start()
    yield e
    e.server.cleanup()


@pytest.fixture(scope="module")
def s3(env: Env) -> Any:
    return make_client(env.server.endpoint)


def eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:
    """Wait until ``check`` holds on every server process: each refreshes on its own, so the
    condition must hold for several requests in a row."""
    deadline = time.monotonic() + timeout
    in_a_row = 0
    while in_a_row < 8:
        in_a_row = in_a_row + 1 if check() else 0
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def refused(s3: Any, call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(ClientError) as err:
        call()
    response: dict[str, Any] = err.value.response
    assert response["Error"]["Code"] == "AccountProblem"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
    return response


def writes_refused(s3: Any) -> bool:
    try:
        s3.put_object(Bucket=BUCKET, Key="probe", Body=b"x")
    except ClientError as exc:
        return bool(exc.response["Error"]["Code"] == "AccountProblem")
    s3.delete_object(Bucket=BUCKET, Key="probe")
    return False


def test_1_unlicensed_deployment_refuses_writes_but_reads(env: Env, s3: Any) -> None:
    response = refused(s3, lambda: s3.create_bucket(Bucket=BUCKET))
    assert "no license is installed" in response["Error"]["Message"]
    assert "onshore license install" in response["Error"]["Message"]
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-onshore-license-state"] == "unlicensed"
    assert s3.list_buckets()["Buckets"] == []
    status = json.loads(env.cli("license", "status", "--json").stdout)
    assert status["state"] == "unlicensed" and status["writes_allowed"] is False


def test_2_install_license_then_writes_work(env: Env, s3: Any, tmp_path: Path) -> None:
    request = json.loads(env.cli("license", "request").stdout)
    assert request["deployment_key"].startswith("ed25519:")
    now = datetime.now(UTC)
    lic = tmp_path / "license.json"
    lic.write_text(
        env.licensor.issue(
            request["deployment_key"],
            partition="onshore",
            regions=(REGION,),
            not_before=now - timedelta(days=1),
            not_after=now + timedelta(days=365),
        )
    )
    done = env.cli("license", "install", str(lic))
    assert done.returncode == 0, done.stderr
    eventually(lambda: not writes_refused(s3))
    created = s3.create_bucket(Bucket=BUCKET)
    assert created["ResponseMetadata"]["HTTPHeaders"]["x-onshore-license-state"] == "valid"
    put = s3.put_object(Bucket=BUCKET, Key=KEYS[0], Body=b"{}")
    assert put["ResponseMetadata"]["HTTPHeaders"]["x-onshore-license-state"] == "valid"
    got = s3.get_object(Bucket=BUCKET, Key=KEYS[0])
    assert "x-onshore-license-state" not in got["ResponseMetadata"]["HTTPHeaders"]


def test_3_busy_traffic(env: Env, s3: Any) -> None:
    s3.create_bucket(Bucket=OTHER_BUCKET)
    for i in range(20):
        s3.put_object(
            Bucket=BUCKET,
            Key=f"{KEYS[1]}.{i}",
            Body=os.urandom(1000),
            Metadata={"patient": f"ada-lovelace-{TAG}"},
        )
    s3.copy_object(Bucket=OTHER_BUCKET, Key=KEYS[1], CopySource=f"{BUCKET}/{KEYS[0]}")
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=f"upload-{TAG}")
    s3.upload_part(
        Bucket=BUCKET, Key=f"upload-{TAG}", UploadId=upload["UploadId"], PartNumber=1, Body=b"p"
    )
    for _ in range(5):
        s3.list_objects_v2(Bucket=BUCKET, Prefix="payroll/")
        s3.get_object(Bucket=BUCKET, Key=KEYS[0])["Body"].read()
        s3.head_object(Bucket=OTHER_BUCKET, Key=KEYS[1])


def _expire_license(env: Env) -> None:
    """Replace the license in force by one whose grace period is over, as the passing of time
    would (``install`` refuses an expired license, so it goes straight into the table)."""
    request = json.loads(env.cli("license", "request").stdout)
    now = datetime.now(UTC)
    text = env.licensor.issue(
        request["deployment_key"],
        license_id="LIC-EXPIRED",
        partition="onshore",
        regions=(REGION,),
        not_before=now - timedelta(days=400),
        not_after=now - timedelta(days=35),
        grace_days=30,
    )
    conn = sqlite3.connect(env.data_dir / "metadata.db", timeout=30)
    with conn:
        conn.execute(
            "INSERT INTO license_files (license_id, document, installed_us) VALUES (?, ?, 0)",
            ("LIC-EXPIRED", text),
        )
    conn.close()


def test_4_read_only_keeps_reads_lists_and_deletes(env: Env, s3: Any) -> None:
    _expire_license(env)
    eventually(lambda: writes_refused(s3))
    response = refused(s3, lambda: s3.put_object(Bucket=BUCKET, Key="new", Body=b"x"))
    message = response["Error"]["Message"]
    assert "license LIC-EXPIRED expired on" in message and "grace period ended" in message
    assert "Reads, listings and deletes keep working" in message
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-onshore-license-state"] == "read-only"
    refused(s3, lambda: s3.create_bucket(Bucket=f"another-{TAG}"))
    refused(s3, lambda: s3.copy_object(Bucket=BUCKET, Key="c", CopySource=f"{BUCKET}/{KEYS[0]}"))
    refused(s3, lambda: s3.create_multipart_upload(Bucket=BUCKET, Key="m"))
    refused(
        s3,
        lambda: s3.put_bucket_versioning(
            Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"}
        ),
    )
    # Reads, listings, deletes and aborts keep working.
    assert s3.get_object(Bucket=BUCKET, Key=KEYS[0])["Body"].read() == b"{}"
    s3.head_object(Bucket=OTHER_BUCKET, Key=KEYS[1])
    listed = s3.list_objects_v2(Bucket=BUCKET)
    assert listed["KeyCount"] == 21
    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == {BUCKET, OTHER_BUCKET}
    uploads = s3.list_multipart_uploads(Bucket=BUCKET)["Uploads"]
    for upload in uploads:
        s3.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
    s3.delete_object(Bucket=OTHER_BUCKET, Key=KEYS[1])
    s3.delete_bucket(Bucket=OTHER_BUCKET)
    batch = [{"Key": f"{KEYS[1]}.{i}"} for i in range(20)]
    assert len(s3.delete_objects(Bucket=BUCKET, Delete={"Objects": batch})["Deleted"]) == 20
    status = json.loads(env.cli("license", "status", "--json").stdout)
    assert status["state"] == "read-only"


def test_5_usage_report_holds_no_names(env: Env, s3: Any) -> None:
    owner = s3.list_buckets()["Owner"]["ID"]
    env.server.stop()  # flushes the last counters
    from onshore.app import open_storage
    from onshore.config import load
    from onshore.service.licensing.wiring import deployment_licensing

    month_end = reports.parse_month(f"{datetime.now(UTC):%Y-%m}")[1]
    config = load(environ=client_env(**env.env))
    meta, _ = open_storage(config)
    try:
        licensing = deployment_licensing(config, meta, clock=lambda: month_end + timedelta(1))
        context = reports.ReportContext(None, config.partition, config.region)
        stored = reports.generate(
            licensing.store, licensing.key, context, f"{datetime.now(UTC):%Y-%m}", licensing.clock()
        )
    finally:
        meta.close()
    text = stored.document
    totals = json.loads(text)["payload"]["totals"]
    assert totals["requests_a"] >= 25 and totals["requests_b"] >= 10
    assert totals["bytes_in"] >= 20_000 and totals["bytes_out"] >= 10
    assert totals["peak_stored_bytes"] > 0 and totals["tenants"] == 1
    forbidden = [
        TAG,
        BUCKET,
        OTHER_BUCKET,
        *KEYS,
        "ada-lovelace",
        "patients",
        "payroll",
        "zanzibar",
        "quokka",
        owner,
        ACCESS_KEY,
        SECRET_KEY,
        "127.0.0.1",
    ]
    for word in forbidden:
        assert word not in text, word
