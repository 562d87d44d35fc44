"""The licensor's support access, end to end: a request the licensor signs with the real CLI,
submitted and decided by the operator, time-boxed credentials limited to their scope, never
data, revocable; forged and misdirected requests refused. Expiry is tested with a clock."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onshore.cli.adminclient import AdminClient, AdminClientError
from onshore.service import support
from onshore.service.licensing import signing
from onshore.service.rootkey import LocalRootKey
from onshore.storage.sqlite import SqliteMetadataStore
from tests.api.iam_support import client, new_tenant
from tests.api.server import ACCESS_KEY, REGION, SECRET_KEY, ServerProcess, client_env

LICENSOR = Ed25519PrivateKey.generate()


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "onshore", *args],
        env=client_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def request_file(
    tmp: Path, scope: str, *operations: str, key: Path, partition: str = "onshore"
) -> Path:
    out = tmp / f"request-{scope}-{len(list(tmp.iterdir()))}.json"
    args = ["licensor", "access-request", "--key", str(key), "--licensor", "Technology Owner Ltd",
            "--partition", partition, "--scope", scope, "--reason", "ticket 4711: slow listings",
            "--hours", "2", "--out", str(out)]  # fmt: skip
    for operation in operations:
        args += ["--operation", operation]
    made = cli(*args)
    assert made.returncode == 0, made.stderr
    return out


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("licensor") / "licensor.pem"
    signing.write_private_key(path, LICENSOR)
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("support") / "data",
        extra_args=("--workers", "1"),
        env={
            "ONSHORE_LICENSOR_PUBLIC_KEYS": signing.public_key_text(LICENSOR.public_key()),
            "ONSHORE_LICENSE_REQUIRED": "false",
            "ONSHORE_LOG_LEVEL": "info",  # the access log shows each use of a support grant
        },
    ).start()
    yield proc
    proc.cleanup()


def admin_cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return cli("admin", "--endpoint", server.admin_endpoint, "--json", *args,
               ONSHORE_ROOT_ACCESS_KEY=ACCESS_KEY, ONSHORE_ROOT_SECRET_KEY=SECRET_KEY)  # fmt: skip


def status(c: AdminClient, method: str, path: str) -> int:
    try:
        c.request(method, path)
    except AdminClientError as error:
        return error.status
    return 200


def test_diagnostics_access_from_request_to_revocation(
    server: ServerProcess, key_file: Path, tmp_path: Path
) -> None:
    root = AdminClient(server.admin_endpoint, ACCESS_KEY, SECRET_KEY, REGION)
    tenant = new_tenant(root, "secretive-customer")
    client("s3", server.endpoint, tenant.access_key, tenant.secret_key).create_bucket(
        Bucket="customer-confidential"
    )
    approved = admin_cli(
        server, "access", "approve", str(request_file(tmp_path, "diagnostics", key=key_file))
    )
    assert approved.returncode == 0, approved.stderr
    grant = json.loads(approved.stdout)
    assert grant["state"] == "approved" and grant["scope"] == "diagnostics"
    engineer = AdminClient(
        server.admin_endpoint, grant["access_key_id"], grant["secret_access_key"], REGION
    )
    diagnostics = engineer.request("GET", "/support/diagnostics")
    assert isinstance(diagnostics, dict) and diagnostics["tenants"] >= 1
    text = json.dumps(diagnostics)
    assert "secretive-customer" not in text and "customer-confidential" not in text
    # Nothing else: no tenant list, no keys, no writes, no audit, and never object data.
    for method, path in [("GET", "/tenants"), ("POST", "/tenants"), ("GET", "/support/requests"),
                         ("GET", f"/tenants/{tenant.account_id}/users/admin/keys")]:  # fmt: skip
        assert status(engineer, method, path) == 403, path
    s3 = client("s3", server.endpoint, grant["access_key_id"], grant["secret_access_key"])
    with pytest.raises(Exception) as refused:
        s3.list_buckets()
    assert "InvalidAccessKeyId" in str(refused.value)
    # Every use is in the access log and in the audit trail, with the request id.
    assert server.log_path is not None
    assert f'"support_request":"{grant["request_id"]}"' in server.log_path.read_text()
    deadline = time.monotonic() + 10
    while True:
        found = root.request("GET", "/audit/events?event=SupportDiagnostics")
        assert isinstance(found, dict)
        records = [json.loads(e["record"]) if isinstance(e["record"], str) else e["record"]
                   for e in found["events"]]  # fmt: skip
        mine = [
            r for r in records
            if (r.get("requestParameters") or {}).get("supportAccessRequest") == grant["request_id"]
        ]  # fmt: skip
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert mine and mine[0]["userIdentity"]["type"] == "LicensorSupport"
    # Revoked: refused at once.
    revoked = admin_cli(server, "access", "revoke", grant["request_id"])
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout)["state"] == "revoked"
    assert status(engineer, "GET", "/support/diagnostics") == 403


def test_admin_read_scope_allows_exactly_the_named_operations(
    server: ServerProcess, key_file: Path, tmp_path: Path
) -> None:
    path = request_file(tmp_path, "admin-read", "list_tenants", key=key_file)
    approved = json.loads(admin_cli(server, "access", "approve", str(path)).stdout)
    engineer = AdminClient(
        server.admin_endpoint, approved["access_key_id"], approved["secret_access_key"], REGION
    )
    assert status(engineer, "GET", "/tenants") == 200
    assert status(engineer, "GET", "/support/diagnostics") == 200
    assert status(engineer, "GET", "/tenants/nobody/quota") == 403  # not requested
    # A decided request cannot be decided again.
    again = admin_cli(server, "access", "deny", approved["request_id"])
    assert again.returncode == 1 and "no longer pending" in again.stderr


def test_bad_requests_are_refused(server: ServerProcess, key_file: Path, tmp_path: Path) -> None:
    forged_key = tmp_path / "other.pem"
    signing.write_private_key(forged_key, Ed25519PrivateKey.generate())
    forged = admin_cli(
        server, "access", "submit", str(request_file(tmp_path, "diagnostics", key=forged_key))
    )
    assert forged.returncode == 1 and "does not verify" in forged.stderr
    elsewhere = request_file(tmp_path, "diagnostics", key=key_file, partition="onshore-cn")
    misdirected = admin_cli(server, "access", "submit", str(elsewhere))
    assert misdirected.returncode == 1 and "partition" in misdirected.stderr
    tampered_path = request_file(tmp_path, "diagnostics", key=key_file)
    document = json.loads(tampered_path.read_text())
    document["payload"]["duration_hours"] = 8
    tampered_path.write_text(json.dumps(document))
    tampered = admin_cli(server, "access", "submit", str(tampered_path))
    assert tampered.returncode == 1 and "does not verify" in tampered.stderr
    denied_path = request_file(tmp_path, "diagnostics", key=key_file)
    denied = json.loads(admin_cli(server, "access", "deny", str(denied_path)).stdout)
    assert denied["state"] == "denied" and denied["access_key_id"] is None
    too_long = cli("licensor", "access-request", "--key", str(key_file), "--licensor", "x",
                   "--partition", "onshore", "--scope", "diagnostics", "--reason", "r",
                   "--hours", "9")  # fmt: skip
    assert too_long.returncode == 2 and "duration_hours" in too_long.stderr


def test_credentials_expire(tmp_path: Path) -> None:
    now = [datetime(2026, 11, 29, 12, 0, tzinfo=UTC)]
    meta = SqliteMetadataStore(tmp_path / "metadata.db")
    try:
        access = support.SupportAccess(
            meta,
            LocalRootKey(b"k" * 32),
            (LICENSOR.public_key(),),
            partition="onshore",
            ttl=0,
            clock=lambda: now[0],
        )
        payload = support.new_request(
            licensor="L", partition="onshore", scope="diagnostics", reason="r", hours=2,
            now=now[0],
        )  # fmt: skip
        record = access.submit(json.dumps(signing.seal(support.FORMAT, payload, LICENSOR)))
        _, access_key, secret = access.approve(record.request.request_id, by="security-admin")
        assert access.secret_for(access_key) == secret
        assert access.grant_for(access_key) is not None
        now[0] += timedelta(hours=2)
        assert access.grant_for(access_key) is None
        assert access.get(record.request.request_id).status(now[0]) == "expired"
    finally:
        meta.close()
