"""The audit trail on every plane, and who may read it, against a real server.

* the admin API, the IAM query API, the KMS API and the offline CLI (``onshore operator``,
  ``onshore kms rotate-root``) each leave records with their own ``eventSource``, the
  operation's name and the caller's identity, and no secret that went through them;
* only the audit administrator may search the trail on the admin API (system and security
  administrators get 403), and ``onshore audit search --endpoint`` goes through it;
* a tenant's admin user gets the records of its own account, and only those;
* after mixed traffic on every plane the exported chain still verifies.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from onshore.cli.adminclient import AdminClient, AdminClientError
from tests.api.iam_support import TenantKeys, admin_client, client, new_tenant
from tests.api.server import ACCESS_KEY, REGION, SECRET_KEY, ServerProcess, client_env
from tests.api.test_audit import FAST, events, export_and_verify

PARTITION = "onshore"
IMPORTED_SECRET = "Imp0rtedSecretKeyThatMustNeverBeLogged0001"
PLAINTEXT = b"kms plaintext that must never be recorded"


def onshore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "onshore", *args],
        capture_output=True,
        text=True,
        env=client_env(),
        timeout=120,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("planes") / "data", env=dict(FAST)).start()
    yield proc
    proc.cleanup()


@pytest.fixture(scope="module")
def operators(server: ServerProcess) -> dict[str, AdminClient]:
    """A named operator per role, appointed with the real CLI (each leaves a cli record)."""
    found: dict[str, AdminClient] = {}
    for role in ("system", "security", "audit"):
        created = onshore(
            "operator", "--data-dir", str(server.data_dir), "--json", "create", f"{role}-op",
            "--role", role,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        keys = json.loads(created.stdout)
        found[role] = AdminClient(
            server.admin_endpoint, keys["access_key_id"], keys["secret_access_key"], REGION
        )
    return found


@pytest.fixture(scope="module")
def tenants(server: ServerProcess) -> tuple[TenantKeys, TenantKeys]:
    admin = admin_client(server)
    return new_tenant(admin, "a"), new_tenant(admin, "b")


def wait_for(server: ServerProcess, found: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The first record matching ``found`` (reads are group-committed: poll a little)."""
    deadline = time.monotonic() + 10
    while True:
        for event in events(server.data_dir):
            if found(event):
                return event
        assert time.monotonic() < deadline, "no such record"
        time.sleep(0.1)


def by(source: str, event_name: str, **more: Any) -> Callable[[dict[str, Any]], bool]:
    def match(event: dict[str, Any]) -> bool:
        if event["eventSource"] != f"{source}.{PARTITION}" or event["eventName"] != event_name:
            return False
        params = event.get("requestParameters") or {}
        return all(params.get(k) == v for k, v in more.items())

    return match


def all_text(server: ServerProcess) -> str:
    return "\n".join(json.dumps(e) for e in events(server.data_dir))


def test_admin_api_records_name_the_operator_and_hold_no_secret(
    server: ServerProcess, operators: dict[str, AdminClient]
) -> None:
    root = admin_client(server)
    name = f"adm-{uuid.uuid4().hex[:8]}"
    created = root.request("POST", "/tenants", {"name": name})
    assert isinstance(created, dict)
    root.request("POST", f"/tenants/{name}/users", {"name": "alice"})
    with pytest.raises(AdminClientError) as taken:  # a change that did not happen
        root.request("POST", f"/tenants/{name}/users", {"name": "alice"})
    assert taken.value.code == "EntityAlreadyExists"
    imported_id = "AKIAIMPORTED" + uuid.uuid4().hex[:8].upper()
    operators["security"].request(
        "POST",
        f"/tenants/{name}/users/alice/keys",
        {"access_key_id": imported_id, "secret_access_key": IMPORTED_SECRET},
    )
    with pytest.raises(AdminClientError) as missing:
        operators["system"].request("GET", "/tenants/no-such-tenant")
    assert missing.value.status == 404
    forged = AdminClient(server.admin_endpoint, ACCESS_KEY, "not-the-secret", REGION)
    with pytest.raises(AdminClientError) as bad_signature:
        forged.request("DELETE", f"/tenants/{name}")
    assert bad_signature.value.code == "SignatureDoesNotMatch"

    tenant = wait_for(server, by("admin", "CreateTenant", name=name))
    assert tenant["readOnly"] is False and "errorCode" not in tenant
    assert tenant["userIdentity"]["type"] == "Root"
    assert tenant["userIdentity"]["accessKeyId"] == ACCESS_KEY
    key = wait_for(server, by("admin", "CreateKey", access_key_id=imported_id))
    assert key["userIdentity"] == {
        "type": "Operator",
        "userName": "security-op",
        "operatorRole": "security",
        "accessKeyId": operators["security"].access_key,
    }
    assert key["requestParameters"]["userName"] == "alice"
    failed = wait_for(server, by("admin", "GetTenant", tenant="no-such-tenant"))
    assert failed["errorCode"] == "NoSuchEntity" and failed["readOnly"] is True
    assert failed["userIdentity"]["operatorRole"] == "system"
    wait_for(server, lambda e: by("admin", "CreateUser", tenant=name)(e) and "errorCode" in e)
    users = [e for e in events(server.data_dir) if by("admin", "CreateUser", tenant=name)(e)]
    # one record of the change (committed with it), one of the refused duplicate, no more
    assert sorted(str(e.get("errorCode")) for e in users) == ["EntityAlreadyExists", "None"]
    assert {e["recipientAccountId"] for e in users} == {created["account_id"]}
    refused = wait_for(server, by("admin", "DeleteTenant", tenant=name))
    assert refused["errorCode"] == "SignatureDoesNotMatch"
    assert refused["userIdentity"] == {"type": "Unknown", "accessKeyId": ACCESS_KEY}
    # the operator CLI's records (from the fixture)
    appointed = wait_for(server, by("cli", "CreateOperator", operatorName="audit-op"))
    assert appointed["userIdentity"]["type"] == "HostUser"
    assert appointed["requestParameters"]["role"] == "audit"
    text = all_text(server)
    assert IMPORTED_SECRET not in text
    assert SECRET_KEY not in text
    assert operators["audit"].secret_key not in text


def test_iam_and_kms_records_have_their_source_name_and_caller(
    server: ServerProcess, tenants: tuple[TenantKeys, TenantKeys]
) -> None:
    tenant = tenants[0]
    iam = client("iam", server.endpoint, tenant.access_key, tenant.secret_key)
    iam.create_user(UserName="bob")
    new_key = iam.create_access_key(UserName="bob")["AccessKey"]
    with pytest.raises(ClientError):
        iam.get_user(UserName="nobody")
    forged = client("iam", server.endpoint, tenant.access_key, "not-the-secret")
    with pytest.raises(ClientError):
        forged.delete_user(UserName="bob")
    kms = client("kms", server.endpoint, tenant.access_key, tenant.secret_key)
    key_id = kms.create_key(Description="audited")["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=PLAINTEXT)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == PLAINTEXT
    with pytest.raises(ClientError):
        kms.describe_key(KeyId="00000000-0000-4000-8000-000000000000")

    created = wait_for(server, by("iam", "CreateUser", UserName="bob"))
    assert created["userIdentity"]["accountId"] == tenant.account_id
    assert created["readOnly"] is False and "errorCode" not in created
    assert wait_for(server, by("iam", "CreateAccessKey", UserName="bob"))
    not_signed = wait_for(server, by("iam", "DeleteUser", UserName="bob"))
    assert not_signed["errorCode"] == "SignatureDoesNotMatch"
    refused = wait_for(server, by("iam", "GetUser", UserName="nobody"))
    assert refused["errorCode"] == "NoSuchEntity" and refused["readOnly"] is True
    made = wait_for(server, by("kms", "CreateKey", Description="audited"))
    assert made["userIdentity"]["accountId"] == tenant.account_id
    assert made["userIdentity"]["accessKeyId"] == tenant.access_key
    encrypted = wait_for(server, by("kms", "Encrypt", KeyId=key_id))
    assert encrypted["readOnly"] is True and "errorCode" not in encrypted
    assert wait_for(server, by("kms", "Decrypt"))["readOnly"] is True
    not_found = wait_for(
        server, by("kms", "DescribeKey", KeyId="00000000-0000-4000-8000-000000000000")
    )
    assert not_found["errorCode"] == "NotFoundException"
    # no record is an S3-shaped leftover of these planes
    assert not [e for e in events(server.data_dir) if e["eventName"].startswith(("iam:", "Trent"))]
    text = all_text(server)
    assert new_key["SecretAccessKey"] not in text
    assert tenant.secret_key not in text
    assert base64.b64encode(PLAINTEXT).decode() not in text
    assert base64.b64encode(blob).decode() not in text


def test_only_the_audit_role_may_search(
    server: ServerProcess, operators: dict[str, AdminClient], tenants: tuple[TenantKeys, ...]
) -> None:
    tenant = tenants[0]
    query = f"/audit/events?tenant={tenant.account_id}&limit=1000"
    found = operators["audit"].request("GET", query)
    assert isinstance(found, dict) and found["events"]
    assert all(
        json.loads(e["record"])["recipientAccountId"] == tenant.account_id for e in found["events"]
    )
    for role in ("system", "security"):
        for path in (query, "/audit/public-key"):
            with pytest.raises(AdminClientError) as denied:
                operators[role].request("GET", path)
            assert (denied.value.status, denied.value.code) == (403, "AccessDenied")
    tenant_admin = AdminClient(server.admin_endpoint, tenant.access_key, tenant.secret_key, REGION)
    with pytest.raises(AdminClientError) as denied:
        tenant_admin.request("GET", query)
    assert denied.value.status == 403
    key = operators["audit"].request("GET", "/audit/public-key")
    assert isinstance(key, dict)
    local = onshore("audit", "public-key", "--data-dir", str(server.data_dir))
    assert key["public_key_pem"] == local.stdout
    for bad in ("limit=0", "limit=x", "from=yesterday", "nosuch=1"):
        with pytest.raises(AdminClientError) as invalid:
            operators["audit"].request("GET", f"/audit/events?{bad}")
        assert (invalid.value.status, invalid.value.code) == (400, "ValidationError"), bad
    # the search itself is recorded, as the audit administrator's read
    assert wait_for(server, searched_by("audit", None))["readOnly"] is True
    assert wait_for(server, searched_by("system", "AccessDenied"))
    assert wait_for(server, searched_by("audit", "ValidationError"))


def searched_by(role: str, code: str | None) -> Callable[[dict[str, Any]], bool]:
    def match(event: dict[str, Any]) -> bool:
        return (
            by("admin", "SearchAuditEvents")(event)
            and event["userIdentity"].get("operatorRole") == role
            and event.get("errorCode") == code
        )

    return match


def test_a_tenant_sees_its_own_events_and_only_those(
    server: ServerProcess, operators: dict[str, AdminClient], tenants: tuple[TenantKeys, ...]
) -> None:
    mine, theirs = tenants
    for tenant in (mine, theirs):
        s3 = client("s3", server.endpoint, tenant.access_key, tenant.secret_key)
        s3.create_bucket(Bucket=f"own-{tenant.account_id}")
        # an operator's action on the tenant is about the tenant too (by name and by id)
        operators["system"].request("PUT", f"/tenants/{tenant.name}/quota", {"max_buckets": 50})
    own = AdminClient(server.admin_endpoint, mine.access_key, mine.secret_key, REGION)
    deadline = time.monotonic() + 10
    while True:
        found = own.request("GET", f"/audit/tenant-events?tenant={theirs.account_id}&limit=1000")
        assert isinstance(found, dict) and found["account_id"] == mine.account_id
        records = [json.loads(e["record"]) for e in found["events"]]
        if any(e["eventName"] == "CreateBucket" for e in records) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert records and all(e["recipientAccountId"] == mine.account_id for e in records)
    buckets = {(e.get("requestParameters") or {}).get("bucketName") for e in records}
    assert f"own-{mine.account_id}" in buckets and f"own-{theirs.account_id}" not in buckets
    quota = [e for e in records if e["eventName"] == "SetQuota"]
    assert [e["requestParameters"]["tenant"] for e in quota] == [mine.name]
    assert quota[0]["userIdentity"]["type"] == "Operator"
    assert quota[0]["userIdentity"]["operatorRole"] == "system"
    # an IAM user of the tenant and the operators may not use the tenant route
    iam = client("iam", server.endpoint, mine.access_key, mine.secret_key)
    iam.create_user(UserName="carol")
    carol = iam.create_access_key(UserName="carol")["AccessKey"]
    user = AdminClient(
        server.admin_endpoint, carol["AccessKeyId"], carol["SecretAccessKey"], REGION
    )
    for caller in (user, operators["audit"], admin_client(server)):
        with pytest.raises(AdminClientError) as denied:
            caller.request("GET", "/audit/tenant-events")
        assert denied.value.status == 403
    # the CLI, through the admin API, as the tenant admin
    listed = onshore(
        "audit", "search", "--endpoint", server.admin_endpoint, "--own", "--json",
        "--access-key", mine.access_key, "--secret-key", mine.secret_key, "--region", REGION,
        "--operation", "CreateBucket",
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    lines = [json.loads(line) for line in listed.stdout.splitlines()]
    assert lines and {e["recipientAccountId"] for e in lines} == {mine.account_id}


def test_a_tenant_sees_what_others_did_to_its_buckets(
    server: ServerProcess, tenants: tuple[TenantKeys, ...], tmp_path: Path
) -> None:
    """A request to a tenant's bucket from another account (allowed by its bucket policy) or
    from nobody (refused) is about the bucket's owner: its ``recipientAccountId`` and its
    resources' ``accountId``. The owner finds it among its own events, and the caller's tenant
    among its own; neither sees the other's other events (SecNumCloud 12.6.d)."""
    from botocore import UNSIGNED  # type: ignore[import-untyped]

    from tests.api.conftest import make_client

    mine, theirs = tenants
    bucket = f"shared-{mine.account_id}"
    s3 = client("s3", server.endpoint, mine.access_key, mine.secret_key)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="report.csv", Body=b"a,b\n")
    allow = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{PARTITION}:iam::{theirs.account_id}:root"},
        "Action": "s3:GetObject",
        "Resource": f"arn:{PARTITION}:s3:::{bucket}/*",
    }
    s3.put_bucket_policy(
        Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [allow]})
    )
    other = client("s3", server.endpoint, theirs.access_key, theirs.secret_key)
    got = other.get_object(Bucket=bucket, Key="report.csv")
    assert got["Body"].read() == b"a,b\n"
    other.create_bucket(Bucket=f"elsewhere-{theirs.account_id}")  # about theirs alone
    nobody = make_client(server.endpoint, signature_version=UNSIGNED)
    with pytest.raises(ClientError) as refused:
        nobody.get_object(Bucket=bucket, Key="report.csv")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"

    def events_of(tenant: TenantKeys, operation: str) -> list[dict[str, Any]]:
        admin = AdminClient(server.admin_endpoint, tenant.access_key, tenant.secret_key, REGION)
        deadline = time.monotonic() + 10
        while True:
            found = admin.request(
                "GET", f"/audit/tenant-events?event={operation}&bucket={bucket}&limit=100"
            )
            assert isinstance(found, dict)
            records = [json.loads(e["record"]) for e in found["events"]]
            if len(records) >= (2 if tenant is mine else 1) or time.monotonic() > deadline:
                return records
            time.sleep(0.1)

    owners = events_of(mine, "GetObject")
    callers = {e["userIdentity"].get("accountId") for e in owners}
    assert callers == {theirs.account_id, None}, owners  # the other tenant's, and nobody's
    for record in owners:
        assert record["recipientAccountId"] == mine.account_id
        assert {r["accountId"] for r in record["resources"]} == {mine.account_id}
    refusal = next(e for e in owners if e["userIdentity"].get("accountId") is None)
    assert refusal["errorCode"] == "AccessDenied"
    assert refusal["userIdentity"]["type"] == "AnonymousPrincipal"
    theirs_seen = events_of(theirs, "GetObject")
    assert [e["userIdentity"]["accountId"] for e in theirs_seen] == [theirs.account_id]
    assert events_of(theirs, "PutObject") == []  # the owner's own upload is not about theirs
    # the owner's tenant export holds the other tenant's read in full
    target = tmp_path / "tenant-export"
    exported = onshore(
        "audit", "export", "--data-dir", str(server.data_dir), "--tenant", mine.account_id,
        str(target),
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    lines = [
        json.loads(line)
        for path in sorted((target / "segments").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    full = [line["event"] for line in lines if "event" in line]
    assert any(
        e["eventName"] == "GetObject"
        and e["userIdentity"].get("accountId") == theirs.account_id
        and e["recipientAccountId"] == mine.account_id
        for e in full
    )
    assert not any(
        (e.get("requestParameters") or {}).get("bucketName") == f"elsewhere-{theirs.account_id}"
        for e in full
    )


def test_cli_search_through_the_admin_api(
    server: ServerProcess, operators: dict[str, AdminClient]
) -> None:
    audit = operators["audit"]
    common = ("--endpoint", server.admin_endpoint, "--region", REGION)
    as_audit = ("--access-key", audit.access_key, "--secret-key", audit.secret_key)
    found = onshore("audit", "search", *common, *as_audit, "--operation", "CreateTenant")
    assert found.returncode == 0, found.stderr
    assert "CreateTenant" in found.stdout and "SEQ" in found.stdout
    system = operators["system"]
    denied = onshore(
        "audit", "search", *common, "--access-key", system.access_key,
        "--secret-key", system.secret_key,
    )  # fmt: skip
    assert denied.returncode == 2 and "AccessDenied" in denied.stderr
    offline = onshore(
        "audit", "search", "--data-dir", str(server.data_dir), "--operation", "CreateTenant"
    )
    assert offline.returncode == 0 and "CreateTenant" in offline.stdout


def test_offline_changes_are_recorded_and_the_chain_verifies(
    server: ServerProcess, tmp_path: Path
) -> None:
    deleted = onshore("operator", "--data-dir", str(server.data_dir), "delete", "system-op")
    assert deleted.returncode == 0, deleted.stderr
    again = onshore("operator", "--data-dir", str(server.data_dir), "delete", "system-op")
    assert again.returncode == 1
    server.stop()
    rotated = onshore("kms", "rotate-root", "--data-dir", str(server.data_dir))
    assert rotated.returncode == 0, rotated.stderr
    server.start()
    server.stop()
    gone = [e for e in events(server.data_dir) if by("cli", "DeleteOperator")(e)]
    assert [e.get("errorCode") for e in gone] == [None, "NoSuchEntity"]
    rotation = wait_for(server, by("cli", "RotateRootKey"))
    assert rotation["requestParameters"]["newKeyFingerprint"]
    sources = {e["eventSource"].split(".")[0] for e in events(server.data_dir)}
    assert {"s3", "iam", "kms", "admin", "cli"} <= sources
    report = export_and_verify(server.data_dir, tmp_path / "export")
    assert report["records"] == len(events(server.data_dir))
    server.start()
