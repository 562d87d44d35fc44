"""``onshore kms rotate-root`` for real: tenant keys re-wrapped, object data untouched, and a
rotation killed half-way is finished by running it again (the server refuses to start before)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from onshore.cli.adminclient import AdminClient
from onshore.service.encryption.segments import CipherName
from onshore.service.kms.tenant_keys import TenantKeys
from onshore.service.rootkey import load_root_key
from onshore.storage.sqlite import SqliteMetadataStore
from tests.api.conftest import make_client
from tests.api.iam_support import admin_client, client, new_tenant
from tests.api.server import REGION, ServerProcess, client_env

ACCOUNTS = ("111111111111", "222222222222", "333333333333")


def _rotate(data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "onshore", "kms", "rotate-root", "--data-dir", str(data_dir)]
    return subprocess.run(
        command, env=client_env(**env), capture_output=True, text=True, timeout=120, check=False
    )


def _fingerprints(data_dir: Path) -> dict[str, str]:
    store = SqliteMetadataStore(data_dir / "metadata.db")
    try:
        return {k.account_id: k.root_fingerprint for k in store.list_tenant_keys()}
    finally:
        store.close()


def test_rotation_killed_half_way_then_finished(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", extra_args=("--workers", "1")).start()
    data_dir = server.data_dir
    try:
        s3 = make_client(server.endpoint)
        s3.create_bucket(Bucket="rot")
        bodies = {"small": os.urandom(100), "large": os.urandom(2 * 1024 * 1024)}
        for key, body in bodies.items():
            s3.put_object(Bucket="rot", Key=key, Body=body, Metadata={"m": key})
        # Other secrets the root key seals: a tenant's access key, an operator's (and the audit
        # signing key, made at start-up): all must still work after the rotation.
        admin = admin_client(server)
        tenant = new_tenant(admin, "rotation")
        operator = json.loads(
            subprocess.run(
                [sys.executable, "-m", "onshore", "operator", "--data-dir", str(data_dir),
                 "--json", "create", "sec", "--role", "security"],
                env=client_env(), capture_output=True, text=True, timeout=60, check=True,
            ).stdout
        )  # fmt: skip
        assert server.stop() == 0
        # More tenants (as IAM creates them): keys made through the service, offline.
        store = SqliteMetadataStore(data_dir / "metadata.db")
        try:
            keys = TenantKeys(store, load_root_key(data_dir), CipherName.AES_256_GCM)
            for account in ACCOUNTS:
                keys.get_or_create(account)
        finally:
            store.close()
        old = load_root_key(data_dir).fingerprint
        assert set(_fingerprints(data_dir).values()) == {old}
        blobs_before = {p: p.read_bytes() for p in (data_dir / "blobs").rglob("*") if p.is_file()}

        killed = _rotate(data_dir, ONSHORE_FAULT_POINT="rotate_root.rewrapped_one")
        assert killed.returncode == 137, killed.stderr
        assert (data_dir / "root.key.next").exists()
        half = _fingerprints(data_dir)
        assert len(set(half.values())) == 2  # some rows under each root key
        with pytest.raises(RuntimeError, match="rotate-root"):
            server.start()

        done = _rotate(data_dir)
        assert done.returncode == 0, done.stderr
        assert "already were" in done.stdout
        assert not (data_dir / "root.key.next").exists()
        new = load_root_key(data_dir).fingerprint
        assert new != old
        assert set(_fingerprints(data_dir).values()) == {new}
        # Object data was not rewritten, and still reads back.
        blobs_after = {p: p.read_bytes() for p in (data_dir / "blobs").rglob("*") if p.is_file()}
        assert blobs_after == blobs_before
        server.start()
        s3 = make_client(server.endpoint)
        for key, body in bodies.items():
            got = s3.get_object(Bucket="rot", Key=key)
            assert got["Body"].read() == body and got["Metadata"] == {"m": key}
        tenant_s3 = client("s3", server.endpoint, tenant.access_key, tenant.secret_key)
        tenant_s3.create_bucket(Bucket="rot-tenant")
        security = AdminClient(
            server.admin_endpoint, operator["access_key_id"], operator["secret_access_key"], REGION
        )
        assert security.request("GET", f"/tenants/{tenant.name}/users/admin/keys")
        assert server.stop() == 0
        exported = subprocess.run(
            [sys.executable, "-m", "onshore", "audit", "export", "--data-dir", str(data_dir),
             str(tmp_path / "export")],
            env=client_env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert exported.returncode == 0, exported.stderr
    finally:
        server.cleanup()


def test_rotation_refuses_a_running_server_and_env_keys(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", extra_args=("--workers", "1")).start()
    try:
        busy = _rotate(server.data_dir)
        assert busy.returncode == 2 and "stop the onshore server" in busy.stderr
        server.stop()
        injected = _rotate(server.data_dir, ONSHORE_ROOT_KEY="A" * 43 + "=")
        assert injected.returncode == 2 and "secret manager" in injected.stderr
    finally:
        server.cleanup()


def test_root_rotation_reseals_every_kms_key_material(tmp_path: Path) -> None:
    """A KMS key rotated twice has three key materials: ``rotate-root`` re-seals all of them,
    so objects and ciphertexts made with any of them still open under the new root key."""
    from tests.api.test_kms_lifecycle import kms_client

    server = ServerProcess(tmp_path / "data", extra_args=("--workers", "1")).start()
    data_dir = server.data_dir
    try:
        s3, kms = make_client(server.endpoint), kms_client(server)
        s3.create_bucket(Bucket="kms-root")
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        blobs = []
        for n in range(3):
            if n:
                kms.rotate_key_on_demand(KeyId=key_id)
            s3.put_object(
                Bucket="kms-root", Key=f"o{n}", Body=f"body {n}".encode(),
                ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id,
            )  # fmt: skip
            blobs.append(kms.encrypt(KeyId=key_id, Plaintext=f"secret {n}".encode()))
        assert server.stop() == 0
        old = load_root_key(data_dir).fingerprint

        done = _rotate(data_dir)
        assert done.returncode == 0, done.stderr
        new = load_root_key(data_dir).fingerprint
        store = SqliteMetadataStore(data_dir / "metadata.db")
        try:
            key = store.get_kms_key(key_id)
            assert key is not None and key.root_fingerprint == new != old
            materials = store.list_kms_materials(key_id)
            assert [m.root_fingerprint for m in materials] == [new, new]
        finally:
            store.close()

        server.start()
        s3, kms = make_client(server.endpoint), kms_client(server)
        for n in range(3):
            got = s3.get_object(Bucket="kms-root", Key=f"o{n}")["Body"].read()
            assert got == f"body {n}".encode()
            opened = kms.decrypt(CiphertextBlob=blobs[n]["CiphertextBlob"])["Plaintext"]
            assert opened == f"secret {n}".encode()
    finally:
        server.cleanup()
