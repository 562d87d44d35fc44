"""Tenant offboarding end to end, with boto3 and the admin API against a real server process:
the notice period (writes refused, reads and listings allowed), the refusal to execute before
it ends, execution (crypto-shredding, every blob and row of the tenant gone, its keys no longer
authenticate, other tenants untouched), the signed deletion certificate (verified offline with
the audit public key; a tampered copy fails), cancellation, bad input, and an execution killed
half-way that finishes when run again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from onshore.cli.adminclient import AdminClient, AdminClientError
from onshore.service import faults
from tests.api.datadir import blob_files, fsck, temp_files
from tests.api.iam_support import (
    TenantKeys,
    admin_cli,
    admin_client,
    client,
    error_code,
    iam_server,
    new_tenant,
)
from tests.api.server import ServerProcess, client_env

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from iam_server(tmp_path_factory, "offboarding")


def s3_of(server: ServerProcess, tenant: TenantKeys) -> Any:
    return client("s3", server.endpoint, tenant.access_key, tenant.secret_key)


def bucket_name() -> str:
    return f"off-{uuid.uuid4().hex[:12]}"


def fill(s3: Any) -> None:
    """Objects of every shape: inline and large, multipart, versions, a pending upload."""
    plain, versioned = bucket_name(), bucket_name()
    s3.create_bucket(Bucket=plain)
    s3.create_bucket(Bucket=versioned)
    s3.put_bucket_versioning(Bucket=versioned, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=plain, Key="small", Body=b"s" * 1000)
    s3.put_object(Bucket=plain, Key="large", Body=os.urandom(300_000))
    upload = s3.create_multipart_upload(Bucket=plain, Key="multi")["UploadId"]
    etags = [
        s3.upload_part(Bucket=plain, Key="multi", UploadId=upload, PartNumber=n, Body=body)["ETag"]
        for n, body in ((1, os.urandom(5 * MiB)), (2, os.urandom(1000)))
    ]
    s3.complete_multipart_upload(
        Bucket=plain,
        Key="multi",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]},
    )
    s3.put_object(Bucket=versioned, Key="doc", Body=os.urandom(200_000))
    s3.put_object(Bucket=versioned, Key="doc", Body=b"v2")
    s3.delete_object(Bucket=versioned, Key="doc")  # a delete marker
    pending = s3.create_multipart_upload(Bucket=versioned, Key="pending")["UploadId"]
    s3.upload_part(
        Bucket=versioned, Key="pending", UploadId=pending, PartNumber=1, Body=os.urandom(100_000)
    )


def buckets_of(s3: Any) -> list[str]:
    return [b["Name"] for b in s3.list_buckets()["Buckets"]]


def admin_error(call: Any) -> tuple[int, str]:
    with pytest.raises(AdminClientError) as caught:
        call()
    return caught.value.status, caught.value.code


def onshore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "onshore", *args],
        env=client_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_offboarding_end_to_end(server: ServerProcess, admin: AdminClient, tmp_path: Path) -> None:
    other = new_tenant(admin, "keep")
    s3_other = s3_of(server, other)
    kept = bucket_name()
    s3_other.create_bucket(Bucket=kept)
    s3_other.put_object(Bucket=kept, Key="big", Body=os.urandom(200_000))
    before = set(blob_files(server.data_dir))

    leaving = new_tenant(admin, "leave")
    s3 = s3_of(server, leaving)
    fill(s3)
    kms = client("kms", server.endpoint, leaving.access_key, leaving.secret_key)
    kms_key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.rotate_key_on_demand(KeyId=kms_key)  # a second key material, destroyed with the first
    buckets = sorted(buckets_of(s3))
    assert len(buckets) == 2
    plain = next(b for b in buckets if s3.get_bucket_versioning(Bucket=b).get("Status") is None)
    assert set(blob_files(server.data_dir)) > before

    # --- notice: writes refused, reads, listings and exports allowed ----------------------------
    status = admin.request("POST", f"/tenants/{leaving.name}/offboarding", {"notice_days": 30})
    assert isinstance(status, dict)
    assert status["state"] == "notice" and status["notice_days"] == 30
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=plain, Key="new", Body=b"x")
    assert error_code(refused.value) == ("AccountProblem", 403)
    assert "offboarded" in refused.value.response["Error"]["Message"]
    assert status["notice_ends"][:10] in refused.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as refused_bucket:
        s3.create_bucket(Bucket=bucket_name())
    assert error_code(refused_bucket.value) == ("AccountProblem", 403)
    assert s3.get_object(Bucket=plain, Key="small")["Body"].read() == b"s" * 1000
    assert len(s3.get_object(Bucket=plain, Key="multi")["Body"].read()) == 5 * MiB + 1000
    assert {o["Key"] for o in s3.list_objects_v2(Bucket=plain)["Contents"]} == {
        "small",
        "large",
        "multi",
    }
    s3.head_object(Bucket=plain, Key="large")
    s3_other.put_object(Bucket=kept, Key="still", Body=b"writes")  # another tenant: unaffected

    # --- execution before the notice ends is refused --------------------------------------------
    path = f"/tenants/{leaving.account_id}/offboarding"
    assert admin_error(lambda: admin.request("POST", path + "/execute", {})) == (
        409,
        "NoticePeriodNotOver",
    )
    assert admin_error(lambda: admin.request("POST", path, {})) == (409, "OffboardingConflict")
    # the tenant row cannot be deleted while its offboarding is pending
    for ref in (leaving.name, leaving.account_id):
        assert admin_error(lambda ref=ref: admin.request("DELETE", f"/tenants/{ref}")) == (
            409,
            "OffboardingConflict",
        )
    shown = admin.request("GET", path)
    assert isinstance(shown, dict) and shown["state"] == "notice" and shown["certificate"] is None

    # --- forced execution --------------------------------------------------------------------
    done = admin.request("POST", path + "/execute", {"force": True})
    assert isinstance(done, dict)
    assert done["state"] == "offboarded"
    cert = done["certificate"]
    facts = cert["certificate"]
    assert facts["tenant"] == {"account_id": leaving.account_id, "name": leaving.name}
    assert facts["notice_days"] == 30 and facts["notice_cut_short"] is True
    deleted = facts["deleted"]
    assert deleted["buckets"] == 2
    assert deleted["objects"] == 5  # small, large, multi, doc v1, doc v2
    assert deleted["delete_markers"] == 1
    assert deleted["multipart_uploads"] == 1 and deleted["parts"] == 1
    assert deleted["bytes"] == 1000 + 300_000 + 5 * MiB + 1000 + 200_000 + 2 + 100_000
    assert deleted["users"] == 1 and deleted["access_keys"] == 1
    destroyed = facts["destroyed_keys"]
    assert [k.split(":")[0] for k in destroyed] == ["tenant", "kms", "kms"]
    assert destroyed[1].startswith(f"kms:{kms_key}:") and destroyed[2].startswith(
        f"kms:{kms_key}:v2:"
    )
    assert facts["deployment"]["region"] == "local-1"
    assert facts["audit_chain_head"]["seq"] > 0

    # the tenant's data and keys are gone; no blob of it remains on disk
    with pytest.raises(ClientError) as gone:
        s3.get_object(Bucket=plain, Key="small")
    assert error_code(gone.value) == ("InvalidAccessKeyId", 403)
    assert rows_of(server, leaving.account_id) == {
        "buckets": 0,
        "iam_users": 0,
        "tenant_keys": 0,
        "tenants": 1,  # the tombstone
    }
    remaining = set(blob_files(server.data_dir))
    assert remaining == referenced_blobs(server) and before <= remaining
    assert temp_files(server.data_dir) == []
    assert s3_other.get_object(Bucket=kept, Key="still")["Body"].read() == b"writes"
    s3_other.put_object(Bucket=kept, Key="after", Body=b"ok")

    # the tombstone stays; running execute again returns the same certificate
    again = admin.request("POST", path + "/execute", {})
    assert isinstance(again, dict) and again["certificate"] == cert
    assert admin_error(lambda: admin.request("POST", path, {})) == (409, "OffboardingConflict")
    assert admin_error(lambda: admin.request("DELETE", path)) == (409, "OffboardingConflict")
    # nor deleted once offboarded: the tombstone keeps the name and account id from reuse
    assert admin_error(lambda: admin.request("DELETE", f"/tenants/{leaving.name}")) == (
        409,
        "OffboardingConflict",
    )
    assert admin_error(lambda: admin.request("POST", "/tenants", {"name": leaving.name}))[0] == 409
    assert rows_of(server, leaving.account_id)["tenants"] == 1

    # --- the certificate verifies offline with the audit public key; a tampered one fails -------
    pem = onshore("audit", "public-key", "--data-dir", str(server.data_dir))
    assert pem.returncode == 0, pem.stderr
    key_file = tmp_path / "audit.pem"
    key_file.write_text(pem.stdout)
    cert_file = tmp_path / "certificate.json"
    cert_file.write_text(json.dumps(cert, indent=2))
    checked = onshore("audit", "verify-certificate", str(cert_file), "--public-key", str(key_file))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "OK" in checked.stdout
    tampered = json.loads(json.dumps(cert))
    tampered["certificate"]["deleted"]["objects"] = 4
    cert_file.write_text(json.dumps(tampered))
    failed = onshore("audit", "verify-certificate", str(cert_file), "--public-key", str(key_file))
    assert failed.returncode == 1 and "INVALID" in failed.stdout
    cert_file.write_text("not json")
    assert (
        onshore(
            "audit", "verify-certificate", str(cert_file), "--public-key", str(key_file)
        ).returncode
        == 1
    )

    # --- the tenant's audit records outlive it (nothing deletes a record within retention) ------
    found = onshore(
        "audit", "search", "--data-dir", str(server.data_dir), "--tenant", leaving.account_id,
        "--operation", "CreateBucket", "--json",
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    records = [json.loads(line) for line in found.stdout.splitlines()]
    created = [e["requestParameters"]["bucketName"] for e in records if "errorCode" not in e]
    assert sorted(created) == buckets
    assert [e["errorCode"] for e in records if "errorCode" in e] == ["AccountProblem"]  # notice


def _root() -> tuple[str, str]:
    from tests.api.server import ACCESS_KEY, SECRET_KEY

    return ACCESS_KEY, SECRET_KEY


def rows_of(server: ServerProcess, account_id: str) -> dict[str, int]:
    import sqlite3

    conn = sqlite3.connect(f"file:{server.data_dir / 'metadata.db'}?mode=ro", uri=True)
    queries = {
        "buckets": "SELECT COUNT(*) FROM buckets WHERE owner_id = ?",
        "iam_users": "SELECT COUNT(*) FROM iam_users WHERE account_id = ?",
        "tenant_keys": "SELECT COUNT(*) FROM tenant_keys WHERE account_id = ?",
        "tenants": "SELECT COUNT(*) FROM tenants WHERE account_id = ?",
    }
    try:
        return {n: int(conn.execute(q, (account_id,)).fetchone()[0]) for n, q in queries.items()}
    finally:
        conn.close()


def referenced_blobs(server: ServerProcess) -> set[Path]:
    """The blob files some metadata row still names."""
    import sqlite3

    conn = sqlite3.connect(f"file:{server.data_dir / 'metadata.db'}?mode=ro", uri=True)
    try:
        ids = {str(r[0]) for r in conn.execute("SELECT blob_id FROM version_blobs")}
        ids |= {str(r[0]) for r in conn.execute("SELECT blob_id FROM parts")}
    finally:
        conn.close()
    return {p for p in blob_files(server.data_dir) if p.name in ids}


def test_cancel_during_notice_restores_writes(server: ServerProcess, admin: AdminClient) -> None:
    tenant = new_tenant(admin, "cancel")
    s3 = s3_of(server, tenant)
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    path = f"/tenants/{tenant.name}/offboarding"
    admin.request("POST", path, {})
    status = admin.request("GET", path)
    assert isinstance(status, dict) and status["notice_days"] == 21  # the default
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert error_code(refused.value) == ("AccountProblem", 403)
    cancelled = admin.request("DELETE", path)
    assert isinstance(cancelled, dict) and cancelled["state"] == "active"
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="k")
    assert admin_error(lambda: admin.request("DELETE", path)) == (409, "OffboardingConflict")
    assert admin_error(lambda: admin.request("POST", path + "/execute", {"force": True})) == (
        409,
        "OffboardingConflict",
    )
    # cancelled: the tenant is an ordinary one again, which can be deleted once it owns nothing
    s3.delete_bucket(Bucket=bucket)
    admin.request("DELETE", f"/tenants/{tenant.name}")
    assert admin_error(lambda: admin.request("GET", f"/tenants/{tenant.name}"))[0] == 404


def test_other_tenants_cannot_write_into_an_offboarding_tenants_bucket(
    server: ServerProcess, admin: AdminClient
) -> None:
    owner = new_tenant(admin, "owner")
    s3 = s3_of(server, owner)
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    writer = new_tenant(admin, "writer")
    grant = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:onshore:iam::{writer.account_id}:root"},
                "Action": "s3:PutObject",
                "Resource": f"arn:onshore:s3:::{bucket}/*",
            }
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(grant))
    s3_writer = s3_of(server, writer)
    s3_writer.put_object(Bucket=bucket, Key="granted", Body=b"x")
    admin.request("POST", f"/tenants/{owner.name}/offboarding", {})
    with pytest.raises(ClientError) as refused:
        s3_writer.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert error_code(refused.value) == ("AccountProblem", 403)
    s3.delete_object(Bucket=bucket, Key="granted")  # deletes are never refused
    s3.delete_bucket(Bucket=bucket)


def refused(call: Any) -> ClientError:
    """The error of a call the offboarding gate refuses (AccountProblem, any protocol)."""
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] == "AccountProblem", caught.value.response
    assert "offboarded" in caught.value.response["Error"]["Message"]
    return caught.value


def test_iam_and_kms_writes_are_refused_during_notice(
    server: ServerProcess, admin: AdminClient
) -> None:
    tenant = new_tenant(admin, "planes")
    iam = client("iam", server.endpoint, tenant.access_key, tenant.secret_key)
    kms = client("kms", server.endpoint, tenant.access_key, tenant.secret_key)
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
    )
    iam.create_user(UserName="exporter")
    iam.put_user_policy(UserName="exporter", PolicyName="all", PolicyDocument=policy)
    user_key = iam.create_access_key(UserName="exporter")["AccessKey"]["AccessKeyId"]
    key_id = kms.create_key(Description="before")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/before", TargetKeyId=key_id)
    sealed = kms.encrypt(KeyId=key_id, Plaintext=b"exported later")["CiphertextBlob"]

    path = f"/tenants/{tenant.name}/offboarding"
    status = admin.request("POST", path, {"notice_days": 9})
    assert isinstance(status, dict)
    until = status["notice_ends"][:10]

    # IAM: reads answer, every write is refused with AccountProblem in IAM's XML error shape
    assert {u["UserName"] for u in iam.list_users()["Users"]} == {"admin", "exporter"}
    assert iam.get_user(UserName="exporter")["User"]["UserName"] == "exporter"
    keys = iam.list_access_keys(UserName="exporter")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [user_key]
    assert iam.list_user_policies(UserName="exporter")["PolicyNames"] == ["all"]
    assert iam.get_user_policy(UserName="exporter", PolicyName="all")["PolicyName"] == "all"
    writes = [
        lambda: iam.create_user(UserName="late"),
        lambda: iam.create_access_key(UserName="exporter"),
        lambda: iam.create_access_key(),
        lambda: iam.put_user_policy(UserName="exporter", PolicyName="more", PolicyDocument=policy),
        lambda: iam.delete_user_policy(UserName="exporter", PolicyName="all"),
        lambda: iam.update_access_key(UserName="exporter", AccessKeyId=user_key, Status="Inactive"),
        lambda: iam.delete_access_key(UserName="exporter", AccessKeyId=user_key),
        lambda: iam.delete_user(UserName="exporter"),
    ]
    for write in writes:
        error = refused(write)
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert until in error.response["Error"]["Message"]
    assert {u["UserName"] for u in iam.list_users()["Users"]} == {"admin", "exporter"}
    assert iam.list_access_keys(UserName="exporter")["AccessKeyMetadata"][0]["Status"] == "Active"
    assert iam.list_user_policies(UserName="exporter")["PolicyNames"] == ["all"]

    # KMS: reads and Decrypt answer; key changes and new ciphertext are refused
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    assert key_id in [k["KeyId"] for k in kms.list_keys()["Keys"]]
    assert [a["AliasName"] for a in kms.list_aliases()["Aliases"]] == ["alias/before"]
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False
    assert kms.decrypt(CiphertextBlob=sealed)["Plaintext"] == b"exported later"
    kms_writes = [
        lambda: kms.create_key(Description="late"),
        lambda: kms.create_alias(AliasName="alias/late", TargetKeyId=key_id),
        lambda: kms.encrypt(KeyId=key_id, Plaintext=b"new"),
        lambda: kms.generate_data_key(KeyId=key_id, KeySpec="AES_256"),
        lambda: kms.disable_key(KeyId=key_id),
        lambda: kms.enable_key_rotation(KeyId=key_id),
        lambda: kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7),
    ]
    for write in kms_writes:
        error = refused(write)
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert until in error.response["Error"]["Message"]
    assert [k["KeyId"] for k in kms.list_keys()["Keys"]] == [key_id]
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False

    # another tenant is not affected
    other = new_tenant(admin, "planes-other")
    client("iam", server.endpoint, other.access_key, other.secret_key).create_user(UserName="u")
    client("kms", server.endpoint, other.access_key, other.secret_key).create_key()

    # cancelled: everything works again
    admin.request("DELETE", path)
    iam.create_user(UserName="late")
    iam.update_access_key(UserName="exporter", AccessKeyId=user_key, Status="Inactive")
    new_key = kms.create_key(Description="after")["KeyMetadata"]["KeyId"]
    again = kms.encrypt(KeyId=new_key, Plaintext=b"after")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=again)["Plaintext"] == b"after"


@pytest.mark.parametrize(
    "body",
    [
        {"notice_days": "ten"},
        {"notice_days": -1},
        {"notice_days": 1.5},
        {"notice_days": True},
        {"notice_days": 100000},
        {"unknown": 1},
    ],
)
def test_bad_requests_are_refused(admin: AdminClient, body: dict[str, object]) -> None:
    tenant = new_tenant(admin, "bad")
    status, code = admin_error(
        lambda: admin.request("POST", f"/tenants/{tenant.name}/offboarding", body)
    )
    assert status == 400, code
    shown = admin.request("GET", f"/tenants/{tenant.name}/offboarding")
    assert isinstance(shown, dict) and shown["state"] == "active"


def test_unknown_tenant_and_bad_force(admin: AdminClient) -> None:
    assert admin_error(lambda: admin.request("GET", "/tenants/nobody-here/offboarding"))[0] == 404
    tenant = new_tenant(admin, "force")
    path = f"/tenants/{tenant.name}/offboarding"
    admin.request("POST", path, {})
    assert admin_error(lambda: admin.request("POST", path + "/execute", {"force": "yes"}))[0] == 400


# --- an execution killed half-way ---------------------------------------------------------------
@pytest.fixture
def crash_server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path / "data", extra_args=("--workers", "1"), env={"ONSHORE_IAM_CACHE_SECONDS": "0"}
    )
    yield proc
    proc.cleanup()


@pytest.mark.parametrize(
    "point",
    ["offboard.key_fingerprint_recorded", "offboard.keys_destroyed", "offboard.bucket_deleted"],
)
def test_interrupted_execution_finishes_when_run_again(
    crash_server: ServerProcess, point: str
) -> None:
    server = crash_server.start()
    admin = admin_client(server)
    other = new_tenant(admin, "keep")
    s3_other = s3_of(server, other)
    kept = bucket_name()
    s3_other.create_bucket(Bucket=kept)
    s3_other.put_object(Bucket=kept, Key="big", Body=os.urandom(200_000))
    leaving = new_tenant(admin, "leave")
    fill(s3_of(server, leaving))
    path = f"/tenants/{leaving.account_id}/offboarding"
    admin.request("POST", path, {})
    assert server.stop() == 0

    server.env = {"ONSHORE_IAM_CACHE_SECONDS": "0", faults.ENV: point}
    server.start()
    process = server.process
    assert process is not None
    with pytest.raises((AdminClientError, OSError)):
        admin.request("POST", path + "/execute", {"force": True})
    assert process.wait(timeout=30) == faults.EXIT_STATUS, "the server did not die at the point"

    server.env = {"ONSHORE_IAM_CACHE_SECONDS": "0"}
    server.start()
    midway = admin.request("GET", path)
    assert isinstance(midway, dict) and midway["state"] == "executing"
    done = admin.request("POST", path + "/execute", {})
    assert isinstance(done, dict) and done["state"] == "offboarded"
    deleted = done["certificate"]["certificate"]["deleted"]
    assert deleted["buckets"] == 2 and deleted["objects"] == 5  # each counted once
    assert len(done["certificate"]["certificate"]["destroyed_keys"]) == 1
    assert set(blob_files(server.data_dir)) == referenced_blobs(server)
    assert len(referenced_blobs(server)) == 1  # the other tenant's object
    assert s3_other.get_object(Bucket=kept, Key="big")["ContentLength"] == 200_000
    with pytest.raises((ClientError, BotoCoreError)):
        s3_of(server, leaving).list_buckets()
    assert server.stop() == 0
    assert temp_files(server.data_dir) == []
    checked = fsck(server.data_dir)
    assert checked.code == 0 and checked.report["clean"], checked.report


# --- the CLI ------------------------------------------------------------------------------------
def test_the_cli_runs_the_whole_procedure(
    server: ServerProcess, admin: AdminClient, tmp_path: Path
) -> None:
    tenant = new_tenant(admin, "cli")
    s3 = s3_of(server, tenant)
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=os.urandom(100_000))

    requested = admin_cli(server, "--json", "tenant", "offboard", tenant.name, "--notice-days", "7")
    assert requested.returncode == 0, requested.stderr
    assert json.loads(requested.stdout)["notice_days"] == 7
    status = admin_cli(server, "--json", "tenant", "offboard-status", tenant.name)
    assert json.loads(status.stdout)["state"] == "notice"
    early = admin_cli(server, "tenant", "offboard-execute", tenant.name)
    assert early.returncode == 1 and "NoticePeriodNotOver" in early.stderr
    cancelled = admin_cli(server, "tenant", "offboard-cancel", tenant.name)
    assert cancelled.returncode == 0, cancelled.stderr
    again = admin_cli(server, "tenant", "offboard", tenant.name)
    assert again.returncode == 0, again.stderr
    bad = admin_cli(server, "tenant", "offboard", tenant.name, "--notice-days", "x")
    assert bad.returncode == 2

    cert_file = tmp_path / "cert.json"
    done = admin_cli(
        server, "tenant", "offboard-execute", tenant.name, "--force", "--certificate",
        str(cert_file),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert '"offboarded"' in done.stdout
    pem = onshore("audit", "public-key", "--data-dir", str(server.data_dir))
    key_file = tmp_path / "audit.pem"
    key_file.write_text(pem.stdout)
    checked = onshore("audit", "verify-certificate", str(cert_file), "--public-key", str(key_file))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads(cert_file.read_text())["certificate"]["deleted"]["objects"] == 1
    missing = onshore("audit", "verify-certificate", str(tmp_path / "none"), "--public-key",
                      str(key_file))  # fmt: skip
    assert missing.returncode == 2
