"""The audit trail of a real server, driven by boto3 and checked with the ``onshore audit`` CLI.

* mixed traffic (writes, reads, errors, refused signatures, a presigned URL) across restarts and
  several digest intervals keeps an export verifiable, and every request has its record;
* no record holds a secret: the secret key, a signature, a presigned URL's credential;
* the server is SIGKILLed during a write workload: after restart every acknowledged write has
  its record and the exported chain verifies;
* a retention shorter than 180 days is refused at start-up.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from onshore.storage.sqlite import audit as audit_sql
from tests.api.conftest import make_client
from tests.api.server import ACCESS_KEY, SECRET_KEY, ServerProcess, client_env

FAST = {
    "ONSHORE_AUDIT_FLUSH_INTERVAL": "0.1",
    "ONSHORE_AUDIT_DIGEST_MINUTES": "0.02",  # a digest every 1.2 s
}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "onshore", "audit", *args],
        capture_output=True,
        text=True,
        env=client_env(),
        timeout=120,
    )


def export_and_verify(data_dir: Path, target: Path) -> dict[str, Any]:
    key = target.parent / f"{target.name}.pem"
    public = cli("public-key", "--data-dir", str(data_dir))
    assert public.returncode == 0, public.stderr
    assert public.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    key.write_text(public.stdout)
    done = cli("export", "--data-dir", str(data_dir), str(target))
    assert done.returncode == 0, done.stderr
    checked = cli("verify", str(target), "--public-key", str(key), "--json")
    report: dict[str, Any] = json.loads(checked.stdout)
    assert checked.returncode == 0 and report["ok"], report["findings"]
    return report


def events(data_dir: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(data_dir / "metadata.db")
    try:
        head, _ = audit_sql.head(conn)
        return [json.loads(stored.event) for stored in audit_sql.events(conn, 1, head)]
    finally:
        conn.close()


@pytest.fixture
def server(tmp_path: Path) -> Any:
    proc = ServerProcess(tmp_path / "data", env=dict(FAST)).start()
    yield proc
    proc.stop()


def test_mixed_traffic_across_restarts_keeps_the_chain_valid(
    server: ServerProcess, tmp_path: Path
) -> None:
    request_ids: set[str] = set()
    bucket = f"audit-{uuid.uuid4().hex[:12]}"
    for round_number in range(3):
        s3 = make_client(server.endpoint)
        if round_number == 0:
            s3.create_bucket(Bucket=bucket)
        for i in range(20):
            key = f"r{round_number}/k{i}"
            put = s3.put_object(Bucket=bucket, Key=key, Body=f"body {i}".encode())
            got = s3.get_object(Bucket=bucket, Key=key)
            got["Body"].read()
            request_ids |= {
                put["ResponseMetadata"]["RequestId"],
                got["ResponseMetadata"]["RequestId"],
            }
            if i % 5 == 0:
                with pytest.raises(ClientError) as missing:
                    s3.head_object(Bucket=bucket, Key=f"missing-{i}")
                request_ids.add(missing.value.response["ResponseMetadata"]["RequestId"])
            if i % 4 == 0:
                s3.delete_object(Bucket=bucket, Key=key)
        listed = s3.list_objects_v2(Bucket=bucket)
        request_ids.add(listed["ResponseMetadata"]["RequestId"])
        time.sleep(1.5)  # at least one periodic digest in every run
        server.stop()
        server.start()
    report = export_and_verify(server.data_dir, tmp_path / "export")
    assert report["digests"] >= 3
    recorded = {e["requestID"] for e in events(server.data_dir)}
    assert request_ids <= recorded
    names = {e["eventName"] for e in events(server.data_dir)}
    assert {"CreateBucket", "PutObject", "GetObject", "HeadObject", "DeleteObject"} <= names


def test_buffered_reads_survive_a_clean_shutdown(tmp_path: Path) -> None:
    """With no flush due for an hour, a read's record waits in memory: a clean stop (SIGTERM)
    appends it, and signs a digest over it, before the process exits."""
    env = dict(FAST, ONSHORE_AUDIT_FLUSH_INTERVAL="3600", ONSHORE_AUDIT_DIGEST_MINUTES="60")
    server = ServerProcess(tmp_path / "data", env=env).start()
    try:
        s3 = make_client(server.endpoint)
        s3.create_bucket(Bucket="audit-shutdown")
        s3.put_object(Bucket="audit-shutdown", Key="k", Body=b"x")
        got = s3.get_object(Bucket="audit-shutdown", Key="k")
        got["Body"].read()
        read_id = got["ResponseMetadata"]["RequestId"]
        time.sleep(0.5)
        assert read_id not in {e["requestID"] for e in events(server.data_dir)}  # buffered
        assert server.stop() == 0
        assert read_id in {e["requestID"] for e in events(server.data_dir)}
        export_and_verify(server.data_dir, tmp_path / "export")
    finally:
        server.stop()


def test_periodic_digests_are_signed_while_the_server_runs(server: ServerProcess) -> None:
    """Every ``audit_digest_minutes`` (1.2 s here) a running server signs a digest that chains
    to the previous one: not only the one signed at a clean shutdown."""
    make_client(server.endpoint).create_bucket(Bucket="audit-periodic")
    deadline = time.monotonic() + 30
    while True:
        conn = sqlite3.connect(f"file:{server.data_dir / 'metadata.db'}?mode=ro", uri=True)
        try:
            found = audit_sql.digests(conn)
        finally:
            conn.close()
        if len(found) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert server.process is not None and server.process.poll() is None  # still running
    assert len(found) >= 3, found
    for before, after in zip(found, found[1:], strict=False):
        payload = json.loads(after.payload)
        assert payload["digestSeq"] == before.seq + 1
        assert payload["previousDigestHash"] == before.hash
        assert payload["firstSeq"] == before.last_seq + 1
        assert after.time_ms > before.time_ms


def test_records_describe_the_request_and_hold_no_secret(
    server: ServerProcess, tmp_path: Path
) -> None:
    s3 = make_client(server.endpoint)
    bucket = f"audit-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    put = s3.put_object(Bucket=bucket, Key="dir/a.txt", Body=b"x" * 100)
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "dir/a.txt"}, ExpiresIn=300
    )
    with urllib.request.urlopen(url) as response:
        assert response.read() == b"x" * 100
    signature = url.split("X-Amz-Signature=")[1].split("&")[0]
    wrong = make_client(server.endpoint)
    wrong._request_signer._credentials.secret_key = "not-the-secret"  # noqa: SLF001
    with pytest.raises(ClientError) as refused:
        wrong.get_object(Bucket=bucket, Key="dir/a.txt")
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    server.stop()  # flushes buffered records and signs the final digest

    found = events(server.data_dir)
    put_event = next(e for e in found if e["eventName"] == "PutObject")
    assert put_event["requestID"] == put["ResponseMetadata"]["RequestId"]
    assert put_event["requestParameters"] == {"bucketName": bucket, "key": "dir/a.txt"}
    assert put_event["responseElements"]["ETag"] == put["ETag"].strip('"')
    assert put_event["additionalEventData"]["bytesTransferredIn"] == 100
    assert put_event["readOnly"] is False
    assert put_event["userIdentity"]["accessKeyId"] == ACCESS_KEY
    assert put_event["resources"][1]["ARN"] == f"arn:onshore:s3:::{bucket}/dir/a.txt"
    gets = [e for e in found if e["eventName"] == "GetObject"]
    assert any(e.get("errorCode") is None and e["readOnly"] for e in gets)
    denied = next(e for e in gets if e.get("errorCode") == "SignatureDoesNotMatch")
    assert denied["userIdentity"]["accessKeyId"] == ACCESS_KEY  # the key id it claimed

    report = export_and_verify(server.data_dir, tmp_path / "export")
    assert report["records"] == len(found)
    everything = (server.data_dir / "metadata.db").read_bytes()
    for path in (tmp_path / "export").rglob("*"):
        if path.is_file():
            everything += path.read_bytes()
    for secret in (SECRET_KEY, signature, "X-Amz-Signature", "X-Amz-Credential", "Signature="):
        assert secret.encode() not in everything, secret


def test_records_of_odd_keys_and_parameters_are_exact(server: ServerProcess) -> None:
    """Records are rendered from their group's template: whatever a key or a header holds,
    each record says exactly what its request did."""
    s3 = make_client(server.endpoint)
    bucket = f"audit-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    keys = ["100% %s %d", 'quo"te\\back', "ünï/文件 😀", "new\nline\ttab", "{}[]:,"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"abc")
        s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-0")["Body"].read()
        s3.head_object(Bucket=bucket, Key=key)
    s3.list_objects_v2(Bucket=bucket, Prefix="ün")
    server.stop()
    found = [e for e in events(server.data_dir) if (e.get("requestParameters") or {}).get(
        "bucketName") == bucket]  # fmt: skip
    for key in keys:
        mine = [e for e in found if e["requestParameters"].get("key") == key]
        assert sorted(e["eventName"] for e in mine) == [
            "GetObject", "GetObject", "HeadObject", "PutObject"
        ]  # fmt: skip
        for event in mine:
            assert event["resources"][1]["ARN"] == f"arn:onshore:s3:::{bucket}/{key}"
            assert event["managementEvent"] is False
        ranged = [e for e in mine if "range" in e["requestParameters"]]
        assert [e["requestParameters"]["range"] for e in ranged] == ["bytes=0-0"]
        got = next(e for e in mine if e["eventName"] == "GetObject" and e not in ranged)
        assert got["additionalEventData"]["bytesTransferredOut"] == 3
        put = next(e for e in mine if e["eventName"] == "PutObject")
        assert put["responseElements"]["ETag"] == "900150983cd24fb0d6963f7d28e17f72"
    listed = next(e for e in found if e["eventName"] == "ListObjectsV2")
    assert listed["requestParameters"]["prefix"] == "ün"
    assert listed["managementEvent"] is True and len(listed["resources"]) == 1


def test_delete_objects_records_each_change_once(server: ServerProcess, tmp_path: Path) -> None:
    """A DeleteObjects request writes one record per key it deletes, numbered by changeIndex,
    each naming its own key; the chain verifies."""
    s3 = make_client(server.endpoint)
    bucket = f"audit-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    keys = [f"doomed/{n:02d}" for n in range(40)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})
    server.stop()
    deletes = [
        e for e in events(server.data_dir)
        if e["eventName"] == "DeleteObjects" and e["requestParameters"]["bucketName"] == bucket
    ]  # fmt: skip
    assert len(deletes) == len(keys)
    assert len({e["requestID"] for e in deletes}) == 1
    indexes = sorted(e.get("additionalEventData", {}).get("changeIndex", 0) for e in deletes)
    assert indexes == list(range(len(keys)))
    assert sorted(e["responseElements"]["key"] for e in deletes) == keys
    export_and_verify(server.data_dir, tmp_path / "export")


def test_search_filters_from_the_cli(server: ServerProcess) -> None:
    s3 = make_client(server.endpoint)
    bucket = f"audit-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="logs/1", Body=b"1")
    s3.put_object(Bucket=bucket, Key="data/1", Body=b"1")
    with pytest.raises(ClientError):
        s3.get_object(Bucket=bucket, Key="logs/none")
    time.sleep(0.5)  # the read record is flushed within audit_flush_interval
    data_dir = str(server.data_dir)
    found = cli(
        "search", "--data-dir", data_dir, "--bucket", bucket, "--key-prefix", "logs/", "--json"
    )
    assert found.returncode == 0, found.stderr
    lines = [json.loads(line) for line in found.stdout.splitlines()]
    assert [(e["eventName"], e["requestParameters"]["key"]) for e in lines] == [
        ("PutObject", "logs/1"),
        ("GetObject", "logs/none"),
    ]
    errors = cli("search", "--data-dir", data_dir, "--error-code", "NoSuchKey")
    assert errors.returncode == 0 and "logs/none" in errors.stdout and "NoSuchKey" in errors.stdout
    none = cli("search", "--data-dir", data_dir, "--tenant", "999999999999", "--json")
    assert none.returncode == 0 and none.stdout == ""
    bad = cli("search", "--data-dir", data_dir, "--from", "last tuesday")
    assert bad.returncode == 2 and "ISO 8601" in bad.stderr


def test_sigkill_during_writes_keeps_a_record_of_every_acknowledged_write(
    tmp_path: Path,
) -> None:
    server = ServerProcess(tmp_path / "data", env=dict(FAST)).start()
    bucket = "audit-crash"
    make_client(server.endpoint).create_bucket(Bucket=bucket)
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(worker: int) -> None:
        s3 = make_client(server.endpoint)
        n = 0
        while not stop.is_set():
            key = f"w{worker}/{n}"
            n += 1
            try:
                s3.put_object(Bucket=bucket, Key=key, Body=b"x" * (n % 3000))
            except (ClientError, BotoCoreError):
                return
            with lock:
                acknowledged.append(key)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    # Kill mid-stream, once enough writes were acknowledged (on a loaded machine that can take
    # longer than the 2 s that are plenty on a quiet one).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.5)
        with lock:
            if len(acknowledged) > 40:
                break
    server.kill()
    stop.set()
    for thread in threads:
        thread.join()
    assert len(acknowledged) > 20
    server.start()
    try:
        server.stop()  # a clean stop signs a digest over everything
        recorded = {
            e["requestParameters"]["key"]
            for e in events(server.data_dir)
            if e["eventName"] == "PutObject" and "errorCode" not in e
        }
        missing = [key for key in acknowledged if key not in recorded]
        assert not missing, missing[:10]
        # and no record of a change that did not happen: every recorded write is there
        server.start()
        listed = make_client(server.endpoint).get_paginator("list_objects_v2")
        present = {
            item["Key"]
            for page in listed.paginate(Bucket=bucket)
            for item in page.get("Contents", [])
        }
        server.stop()
        assert recorded <= present, sorted(recorded - present)[:10]
        export_and_verify(server.data_dir, tmp_path / "export")
    finally:
        server.stop()


def test_retention_below_180_days_is_refused(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", env={"ONSHORE_AUDIT_RETENTION_DAYS": "30"})
    with pytest.raises(RuntimeError, match="180-day minimum"):
        server.start()
    allowed = ServerProcess(
        tmp_path / "data2",
        env={"ONSHORE_AUDIT_RETENTION_DAYS": "30", "ONSHORE_AUDIT_RETENTION_OVERRIDE": "true"},
    )
    allowed.start()
    allowed.stop()


def test_with_the_audit_off_nothing_is_recorded(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", env={"ONSHORE_AUDIT": "false"}).start()
    try:
        make_client(server.endpoint).create_bucket(Bucket="no-audit")
    finally:
        server.stop()
    assert events(server.data_dir) == []
