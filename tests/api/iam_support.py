"""Helpers for the tenant / IAM API tests: an admin API client signed by the test server's root
credentials, a tenant factory, and S3 / IAM boto3 clients for any key pair."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from onshore.cli.adminclient import AdminClient
from tests.api.server import ACCESS_KEY, REGION, SECRET_KEY, ServerProcess, client_env


@dataclass(frozen=True)
class TenantKeys:
    account_id: str
    name: str
    access_key: str
    secret_key: str


def iam_server(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[ServerProcess]:
    """A server for a test module (as a fixture body: ``yield from``) whose IAM changes take
    effect at once in every worker process (no identity cache)."""
    proc = ServerProcess(
        tmp_path_factory.mktemp(name) / "data", env={"ONSHORE_IAM_CACHE_SECONDS": "0"}
    ).start()
    yield proc
    proc.cleanup()


def admin_client(server: ServerProcess) -> AdminClient:
    return AdminClient(server.admin_endpoint, ACCESS_KEY, SECRET_KEY, REGION)


def admin_cli(
    server: ServerProcess, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``onshore admin ARGS`` as a separate process against ``server``'s admin endpoint, signed
    with the root credentials; ``env`` adds to (or, for ``ONSHORE_*`` names, replaces) them."""
    environ = client_env(
        ONSHORE_ADMIN_ENDPOINT=server.admin_endpoint,
        ONSHORE_ROOT_ACCESS_KEY=ACCESS_KEY,
        ONSHORE_ROOT_SECRET_KEY=SECRET_KEY,
        ONSHORE_REGION=REGION,
    )
    if env is not None:
        if any(name.startswith("ONSHORE_") for name in env):
            environ = {k: v for k, v in environ.items() if not k.startswith("ONSHORE_")}
        environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "onshore", "admin", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def new_tenant(admin: AdminClient, prefix: str = "t") -> TenantKeys:
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    created = admin.request("POST", "/tenants", {"name": name})
    assert isinstance(created, dict)
    key = created["access_key"]
    return TenantKeys(created["account_id"], name, key["access_key_id"], key["secret_access_key"])


def new_user_key(admin: AdminClient, tenant: TenantKeys, user: str) -> tuple[str, str]:
    admin.request("POST", f"/tenants/{tenant.account_id}/users", {"name": user})
    key = admin.request("POST", f"/tenants/{tenant.account_id}/users/{user}/keys", {})
    assert isinstance(key, dict)
    return key["access_key_id"], key["secret_access_key"]


def allow(admin: AdminClient, tenant: TenantKeys, user: str, *actions: str) -> None:
    """Attach an inline policy allowing ``actions`` on everything to ``user``."""
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}],
    }
    admin.request(
        "PUT",
        f"/tenants/{tenant.account_id}/users/{user}/policies/allow",
        raw=json.dumps(document).encode(),
    )


def client(service: str, endpoint: str, access_key: str, secret_key: str) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=REGION
    )
    return session.client(
        service,
        endpoint_url=endpoint,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def error_code(exc: Any) -> tuple[str, int]:
    return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]
