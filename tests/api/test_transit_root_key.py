"""The root key held by a real OpenBao Transit engine (``root_key_service = "transit"``), end to
end: a real onshore server stores and reads encrypted objects with boto3 while the key stays at
the key service (no root key anywhere under the data directory); ``onshore kms rotate-root``
moves a deployment from a local root key to Transit (resumably) and re-wraps after a rotation at
the service; revoking the token makes requests fail cleanly with 503, deleting the key shreds
the data, and the server refuses to start, with one line, while the key service cannot serve."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from onshore.cli.adminclient import AdminClient, AdminClientError
from onshore.service.rootkey import sealed_by
from onshore.service.transit import TransitRootKey, TransitSettings
from onshore.storage.sqlite import SqliteMetadataStore
from tests.api.conftest import make_client
from tests.api.iam_support import admin_client, client, new_tenant
from tests.api.server import ACCESS_KEY, REGION, SECRET_KEY, ServerProcess, client_env, free_port
from tests.openbao import OpenBao

BODIES = {"inline": os.urandom(100), "large": os.urandom(2 * 1024 * 1024 + 17)}


def transit_env(bao: OpenBao, key: str, token: str) -> dict[str, str]:
    return {
        "ONSHORE_ROOT_KEY_SERVICE": "transit",
        "ONSHORE_TRANSIT_ADDRESS": bao.address,
        "ONSHORE_TRANSIT_KEY": key,
        "ONSHORE_TRANSIT_TOKEN": token,
    }


def onshore(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "onshore", *args],
        env=client_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def kms_client(server: ServerProcess) -> Any:
    return client("kms", server.endpoint, ACCESS_KEY, SECRET_KEY)


def fingerprints(data_dir: Path) -> set[str]:
    """The root key fingerprints of every secret the root key seals in the metadata DB."""
    store = SqliteMetadataStore(data_dir / "metadata.db")
    try:
        found = {k.root_fingerprint for k in store.list_tenant_keys()}
        found |= {k.root_fingerprint for k in store.all_kms_keys()}
        found |= {sealed_by(bytes(r[0])) for r in store.read_connection().execute(
            "SELECT secret FROM access_keys UNION ALL SELECT secret FROM operators"
        )}  # fmt: skip
        return found
    finally:
        store.close()


def transit_fingerprint(bao: OpenBao, key: str) -> str:
    return TransitRootKey.connect(
        TransitSettings(bao.address, key=key, token=bao.root_token)
    ).fingerprint


def refused_start(server: ServerProcess) -> str:
    """Start ``server`` expecting it to refuse: its log (one clear line, no traceback)."""
    with pytest.raises(RuntimeError, match="exited early") as caught:
        server.start()
    assert server.stop() == 2
    text = str(caught.value)
    assert "Traceback" not in text
    return text


def write_data(server: ServerProcess) -> tuple[Any, Any]:
    """Objects of the operator's root account (SSE-S3 and SSE-KMS) and of a tenant."""
    s3 = make_client(server.endpoint)
    s3.create_bucket(Bucket="sealed")
    for key, body in BODIES.items():
        s3.put_object(Bucket="sealed", Key=key, Body=body, Metadata={"m": key})
    kms_key = kms_client(server).create_key(Description="transit")["KeyMetadata"]["KeyId"]
    s3.put_object(
        Bucket="sealed", Key="kms", Body=b"kms body", ServerSideEncryption="aws:kms",
        SSEKMSKeyId=kms_key,
    )  # fmt: skip
    tenant = new_tenant(admin_client(server), "transit")
    tenant_s3 = client("s3", server.endpoint, tenant.access_key, tenant.secret_key)
    tenant_s3.create_bucket(Bucket="tenant-sealed")
    tenant_s3.put_object(Bucket="tenant-sealed", Key="t", Body=b"tenant body")
    return tenant, kms_key


def read_data(server: ServerProcess, tenant: Any) -> None:
    s3 = make_client(server.endpoint)
    for key, body in BODIES.items():
        got = s3.get_object(Bucket="sealed", Key=key)
        assert got["Body"].read() == body and got["Metadata"] == {"m": key}
        assert got["ServerSideEncryption"] == "AES256"
    got = s3.get_object(Bucket="sealed", Key="kms")
    assert got["Body"].read() == b"kms body" and got["ServerSideEncryption"] == "aws:kms"
    tenant_s3 = client("s3", server.endpoint, tenant.access_key, tenant.secret_key)
    assert tenant_s3.get_object(Bucket="tenant-sealed", Key="t")["Body"].read() == b"tenant body"


def code_of(call: Any) -> tuple[int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return int(response["ResponseMetadata"]["HTTPStatusCode"]), str(response["Error"]["Code"])


def test_objects_sealed_at_the_key_service_then_revoked_and_shredded(
    openbao: OpenBao, tmp_path: Path
) -> None:
    key = openbao.new_key()
    token = openbao.token_for(key)
    server = ServerProcess(tmp_path / "data", env=transit_env(openbao, key, token))
    data_dir = server.data_dir
    try:
        server.start()  # two worker processes: each checks the key at the service
        tenant, kms_key = write_data(server)
        read_data(server, tenant)
        assert server.stop() == 0
        # The root key is nowhere under the data directory: every sealed secret is a Transit
        # ciphertext of this key, and no root.key was ever created.
        assert not any(p.name.startswith("root.key") for p in data_dir.rglob("*"))
        assert fingerprints(data_dir) == {transit_fingerprint(openbao, key)}

        server.start()
        read_data(server, tenant)  # after a restart, through the key service again
        assert server.stop() == 0
        server.extra_args = ("--workers", "1")  # from here on, the key changes under a server

        # The token is revoked while the server runs (fresh caches after a restart): requests
        # that need the root key get 503, nothing hangs, the server stays up.
        server.start()
        openbao.revoke(token)
        s3 = make_client(server.endpoint)
        assert code_of(lambda: s3.get_object(Bucket="sealed", Key="inline")) == (
            503, "ServiceUnavailable"
        )  # fmt: skip
        tenant_s3 = client("s3", server.endpoint, tenant.access_key, tenant.secret_key)
        assert code_of(lambda: tenant_s3.list_buckets()) == (503, "ServiceUnavailable")
        assert code_of(lambda: s3.put_object(Bucket="sealed", Key="new", Body=b"x")) == (
            503, "ServiceUnavailable"
        )  # fmt: skip
        with pytest.raises(AdminClientError) as refused:  # a new tenant's secret cannot be sealed
            admin_client(server).request("POST", "/tenants", {"name": "while-revoked"})
        assert (refused.value.status, refused.value.code) == (503, "ServiceUnavailable")
        with pytest.raises(ClientError) as kms_refused:  # the KMS API says it its own way
            kms_client(server).encrypt(KeyId=kms_key, Plaintext=b"x")
        assert kms_refused.value.response["Error"]["Code"] == "DependencyTimeoutException"
        assert s3.list_buckets()["Buckets"]  # what needs no key still works
        with urllib.request.urlopen(server.endpoint + "/onshore/health/ready", timeout=5):
            pass
        assert server.stop() == 0
        log = refused_start(server)
        assert "permission denied" in log and token not in log

        # A new token: everything reads again.
        token = openbao.token_for(key)
        server.env = transit_env(openbao, key, token)
        server.start()
        read_data(server, tenant)
        assert (
            code_of(lambda: make_client(server.endpoint).head_object(Bucket="sealed", Key="new"))[0]
            == 404
        )  # nothing half-written
        assert server.stop() == 0

        # The operator deletes the key at the service: the data is crypto-shredded.
        server.start()
        openbao.delete_key(key)
        s3 = make_client(server.endpoint)
        assert code_of(lambda: s3.get_object(Bucket="sealed", Key="large")) == (
            403, "AccessDenied"
        )  # fmt: skip
        assert server.stop() == 0
        assert "does not exist" in refused_start(server)
    finally:
        server.cleanup()


def test_start_up_refuses_when_the_key_service_cannot_serve(
    openbao: OpenBao, tmp_path: Path
) -> None:
    key = openbao.new_key()
    token = openbao.token_for(key)
    cases = {
        "cannot be reached": {"ONSHORE_TRANSIT_ADDRESS": f"http://127.0.0.1:{free_port()}"},
        "permission denied": {"ONSHORE_TRANSIT_TOKEN": "bogus-token"},
        # (a token whose policy names another key is only told "permission denied")
        "does not exist": {
            "ONSHORE_TRANSIT_KEY": "no-such-key",
            "ONSHORE_TRANSIT_TOKEN": openbao.root_token,
        },
        "transit_address is not set": {"ONSHORE_TRANSIT_ADDRESS": ""},
        "root_key_service must be": {"ONSHORE_ROOT_KEY_SERVICE": "hsm"},
    }
    for message, change in cases.items():
        server = ServerProcess(
            tmp_path / "data", env={**transit_env(openbao, key, token), **change}
        )
        log = refused_start(server)
        assert message in log
        assert "bogus-token" not in log
        assert not (server.data_dir / "root.key").exists()


def test_rotate_root_from_local_to_transit_then_after_a_rotation_at_the_service(
    openbao: OpenBao, tmp_path: Path
) -> None:
    key = openbao.new_key()
    token = openbao.token_for(key)
    env = transit_env(openbao, key, token)
    server = ServerProcess(tmp_path / "data", extra_args=("--workers", "1"))
    data_dir = server.data_dir
    try:
        server.start()  # a local root key (the default)
        tenant, _ = write_data(server)
        operator = onshore(
            "operator", "--data-dir", str(data_dir), "--json", "create", "sec", "--role",
            "security",
        )  # fmt: skip
        assert operator.returncode == 0, operator.stderr
        assert server.stop() == 0
        local = fingerprints(data_dir)
        assert len(local) == 1 and (data_dir / "root.key").exists()

        # Switched to transit before the secrets moved: refused, saying what to do.
        server.env = env
        assert "rotate-root" in refused_start(server)

        # Interrupted after the first secret moved; the server still refuses; a rerun ends it.
        killed = onshore(
            "kms", "rotate-root", "--data-dir", str(data_dir),
            env={**env, "ONSHORE_FAULT_POINT": "rotate_root.rewrapped_one"},
        )  # fmt: skip
        assert killed.returncode == 137, killed.stderr
        assert len(fingerprints(data_dir)) == 2 and (data_dir / "root.key").exists()
        assert "rotate-root" in refused_start(server)
        done = onshore("kms", "rotate-root", "--data-dir", str(data_dir), env=env)
        assert done.returncode == 0, done.stderr
        v1 = transit_fingerprint(openbao, key)
        assert fingerprints(data_dir) == {v1}
        assert not (data_dir / "root.key").exists()

        server.start()
        read_data(server, tenant)
        import json

        secret = json.loads(operator.stdout)
        security = AdminClient(
            server.admin_endpoint, secret["access_key_id"], secret["secret_access_key"], REGION
        )
        assert security.request("GET", f"/tenants/{tenant.name}/users/admin/keys")
        assert server.stop() == 0

        # The operator rotates the key at the service; rotate-root re-wraps under version 2,
        # after which version 1 can be retired and everything still reads.
        assert openbao.rotate_key(key) == 2
        again = onshore("kms", "rotate-root", "--data-dir", str(data_dir), env=env)
        assert again.returncode == 0, again.stderr
        assert v1 in again.stdout
        v2 = transit_fingerprint(openbao, key)
        assert v2 != v1 and fingerprints(data_dir) == {v2}
        openbao.min_decryption_version(key, 2)
        nothing = onshore("kms", "rotate-root", "--data-dir", str(data_dir), env=env)
        assert nothing.returncode == 0 and "0 tenant keys re-wrapped" in nothing.stdout
        server.start()
        read_data(server, tenant)
        assert server.stop() == 0
        fsck = onshore("fsck", "--data-dir", str(data_dir), "--json", env=env)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    finally:
        if server.process is not None:
            server.process.send_signal(signal.SIGTERM)
        server.cleanup()
