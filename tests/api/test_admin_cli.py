"""``onshore admin`` end to end: the real command, in a subprocess, against a real server."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.iam_support import admin_cli as run
from tests.api.iam_support import client, error_code, iam_server
from tests.api.server import ACCESS_KEY, SECRET_KEY, ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from iam_server(tmp_path_factory, "cli")


def ok(server: ServerProcess, *args: str) -> str:
    done = run(server, *args)
    assert done.returncode == 0, done.stderr
    out: str = done.stdout
    return out


def as_json(server: ServerProcess, *args: str) -> Any:
    return json.loads(ok(server, "--json", *args))


def test_a_tenant_from_creation_to_quota(server: ServerProcess, tmp_path: Path) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    created = as_json(server, "tenant", "create", name)
    account = created["account_id"]
    admin_key = created["access_key"]
    assert created["admin_user"]["arn"] == f"arn:onshore:iam::{account}:root"
    table = ok(server, "tenant", "list")
    assert table.splitlines()[0].split() == ["ACCOUNT_ID", "NAME", "CREATED"]
    assert any(line.split()[:2] == [account, name] for line in table.splitlines()[1:])

    human = ok(server, "user", "create", name, "alice")
    assert "alice" in human and "AIDA" in human
    key = as_json(server, "key", "create", f"{name}/alice")
    assert key["secret_access_key"] and key["status"] == "Active"
    imported = as_json(
        server, "key", "create", "alice", "--tenant", account,
        "--access-key", "CLIMIGRATED01", "--secret-key", "cli-migrated-secret",
    )  # fmt: skip
    assert imported["access_key_id"] == "CLIMIGRATED01"
    listing = ok(server, "key", "list", f"{name}/alice")
    assert "CLIMIGRATED01" in listing and key["access_key_id"] in listing
    assert "cli-migrated-secret" not in listing

    listing_policy = tmp_path / "list.json"
    listing_policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]}))  # fmt: skip
    ok(server, "policy", "attach", f"{name}/alice", "list", str(listing_policy))
    s3 = client("s3", server.endpoint, "CLIMIGRATED01", "cli-migrated-secret")
    s3.list_buckets()
    ok(server, "key", "disable", "CLIMIGRATED01")
    with pytest.raises(ClientError) as info:
        s3.list_buckets()
    assert error_code(info.value) == ("InvalidAccessKeyId", 403)
    ok(server, "key", "enable", "CLIMIGRATED01")
    s3.list_buckets()
    ok(server, "key", "delete", "CLIMIGRATED01")

    policy = tmp_path / "read.json"
    document = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}  # fmt: skip
    policy.write_text(json.dumps(document))
    ok(server, "policy", "attach", f"{name}/alice", "read", str(policy))
    assert ok(server, "policy", "list", f"{name}/alice").split() == ["list", "read"]
    assert json.loads(ok(server, "policy", "show", f"{name}/alice", "read")) == document
    ok(server, "policy", "detach", f"{name}/alice", "read")
    ok(server, "policy", "detach", f"{name}/alice", "list")

    quota = as_json(server, "quota", "set", name, "--max-bytes", "1MiB", "--max-buckets", "2")
    assert (quota["max_bytes"], quota["max_buckets"], quota["max_objects"]) == (1048576, 2, None)
    shown = ok(server, "quota", "show", name)
    assert shown.splitlines()[0].split() == ["QUOTA", "LIMIT", "USED"]
    assert shown.splitlines()[1].split() == ["bytes", "1048576", "0"]
    assert shown.splitlines()[2].split() == ["objects", "-", "0"]
    ok(server, "quota", "set", name, "--max-bytes", "none")
    assert as_json(server, "quota", "show", name)["max_bytes"] is None

    tenant_s3 = client("s3", server.endpoint, admin_key["access_key_id"],
                       admin_key["secret_access_key"])  # fmt: skip
    tenant_s3.create_bucket(Bucket=f"{name}-b")
    assert "DeleteConflict" in run(server, "tenant", "delete", name).stderr
    tenant_s3.delete_bucket(Bucket=f"{name}-b")
    ok(server, "key", "delete", key["access_key_id"])
    ok(server, "user", "delete", f"{name}/alice")
    ok(server, "tenant", "delete", name)
    assert name not in ok(server, "tenant", "list")


def test_errors_are_one_line_and_a_nonzero_status(server: ServerProcess) -> None:
    missing = run(server, "tenant", "show", "no-such-tenant")
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        "onshore admin: NoSuchEntity: The tenant no-such-tenant does not exist."
    )
    assert run(server, "user", "delete", "just-a-name").returncode == 2  # no tenant given
    assert run(server, "quota", "set", "x", "--max-bytes", "lots").returncode == 2
    assert run(server, "key", "create", "t/u", "--access-key", "ONLYTHEID").returncode == 2
    assert run(server, "policy", "attach", "t/u", "p", "/no/such/file").returncode == 2
    wrong_env = {
        "ONSHORE_ADMIN_ENDPOINT": server.admin_endpoint,
        "ONSHORE_ROOT_ACCESS_KEY": ACCESS_KEY,
        "ONSHORE_ROOT_SECRET_KEY": "wrong",
    }
    wrong = run(server, "tenant", "list", env=wrong_env)
    assert wrong.returncode == 1 and "SignatureDoesNotMatch" in wrong.stderr
    down = run(server, "--endpoint", "http://127.0.0.1:9", "tenant", "list")
    assert down.returncode == 1 and "ConnectionFailed" in down.stderr


def test_credentials_from_the_data_dir(server: ServerProcess, tmp_path: Path) -> None:
    """On the server host the CLI finds the root credentials in the data directory."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    creds = data_dir / "root-credentials.json"
    creds.write_text(json.dumps({"access_key": ACCESS_KEY, "secret_key": SECRET_KEY}))
    os.chmod(creds, 0o600)
    env = {"ONSHORE_ADMIN_ENDPOINT": server.admin_endpoint, "ONSHORE_DATA_DIR": str(data_dir)}
    done = run(server, "tenant", "list", env=env)
    assert done.returncode == 0, done.stderr
    missing = run(server, "tenant", "list", env={"ONSHORE_DATA_DIR": str(tmp_path / "none")})
    assert missing.returncode == 1 and "NoCredentials" in missing.stderr
