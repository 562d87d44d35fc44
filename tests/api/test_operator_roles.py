"""Three operator roles, each kept to its own work (separation of duties, as MLPS 2.0 and
SecNumCloud ask): every admin endpoint is tried as the system, security and audit
administrator, as root in separated mode, and as a tenant; only the role the endpoint names
may use it. Operators are appointed with the real ``onshore operator`` CLI, while the server
runs."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from onshore.adminapi.routes import ROUTES
from onshore.cli.adminclient import AdminClient, AdminClientError
from onshore.service.operators import Role
from tests.api.iam_support import TenantKeys
from tests.api.server import ACCESS_KEY, REGION, SECRET_KEY, ServerProcess, client_env


def operator_cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "onshore", "operator", "--data-dir", str(server.data_dir), *args],
        env=client_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("roles") / "data", extra_args=("--separate-operator-roles",)
    ).start()
    yield proc
    proc.cleanup()


@pytest.fixture(scope="module")
def clients(server: ServerProcess) -> dict[str, AdminClient]:
    found: dict[str, AdminClient] = {}
    for role in Role:
        created = operator_cli(
            server, "--json", "create", f"{role.value}-admin", "--role", role.value
        )
        assert created.returncode == 0, created.stderr
        keys = json.loads(created.stdout)
        found[role.value] = AdminClient(
            server.admin_endpoint, keys["access_key_id"], keys["secret_access_key"], REGION
        )
    found["root"] = AdminClient(server.admin_endpoint, ACCESS_KEY, SECRET_KEY, REGION)
    return found


def onboard(clients: dict[str, AdminClient]) -> TenantKeys:
    """A tenant created by the system administrator, its admin key by the security one."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    created = clients["system"].request("POST", "/tenants", {"name": name})
    assert isinstance(created, dict) and created["access_key"] is None
    key = clients["security"].request("POST", f"/tenants/{name}/users/admin/keys", {})
    assert isinstance(key, dict)
    return TenantKeys(created["account_id"], name, key["access_key_id"], key["secret_access_key"])


def status_of(client: AdminClient, method: str, path: str, body: object = None) -> int:
    try:
        client.request(method, path, body)
    except AdminClientError as error:
        return error.status
    return 200


def concrete(path: str, tenant: str) -> str:
    return (
        path.replace("{tenant}", tenant)
        .replace("{user}", "nobody")
        .replace("{key}", "AKIANOSUCHKEY0000000")
        .replace("{policy}", "none")
    )


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.path}" for r in ROUTES])
def test_only_the_named_role_may_use_an_endpoint(
    server: ServerProcess, clients: dict[str, AdminClient], route: object
) -> None:
    from onshore.adminapi.routes import Route

    assert isinstance(route, Route)
    tenant = onboard(clients)
    path = concrete(route.path, tenant.account_id)
    body = {"name": f"x-{uuid.uuid4().hex[:8]}"} if route.method == "POST" else None
    for who in ("system", "security", "audit", "root"):
        allowed = not route.tenant_self and (
            route.role.value == who or (who == "root" and route.role is Role.SYSTEM)
        )
        status = status_of(clients[who], route.method, path, body)
        if allowed:
            assert status != 403, (who, route.method, path)
        else:
            assert status == 403, (who, route.method, path, status)
    tenant_client = AdminClient(
        server.admin_endpoint, tenant.access_key or "", tenant.secret_key or "", REGION
    )
    # a tenant's admin user may use only the routes about itself (its own audit records)
    tenant_status = status_of(tenant_client, route.method, path, body)
    assert (tenant_status != 403) if route.tenant_self else (tenant_status == 403)


def test_tenant_onboarding_needs_both_roles(clients: dict[str, AdminClient]) -> None:
    name = f"acme-{uuid.uuid4().hex[:6]}"
    created = clients["system"].request("POST", "/tenants", {"name": name})
    assert isinstance(created, dict)
    assert created["access_key"] is None  # the system administrator cannot mint keys
    key = clients["security"].request("POST", f"/tenants/{name}/users/admin/keys", {})
    assert isinstance(key, dict) and key["secret_access_key"]
    with pytest.raises(AdminClientError) as denied:
        clients["security"].request("PUT", f"/tenants/{name}/quota", {"max_buckets": 1})
    assert denied.value.status == 403 and "system administrator role" in denied.value.message


def test_operators_cannot_touch_data(
    server: ServerProcess, clients: dict[str, AdminClient]
) -> None:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    listing = operator_cli(server, "--json", "list")
    for operator in json.loads(listing.stdout):
        assert operator["role"] in ("system", "security", "audit")
        s3 = boto3.session.Session(
            aws_access_key_id=operator["access_key_id"],
            aws_secret_access_key="irrelevant-the-key-is-unknown-to-s3",
            region_name=REGION,
        ).client("s3", endpoint_url=server.endpoint, config=Config(retries={"max_attempts": 1}))
        with pytest.raises(ClientError) as err:
            s3.list_buckets()
        assert err.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_deleted_operator_is_refused(server: ServerProcess, tmp_path: Path) -> None:
    created = operator_cli(server, "--json", "create", "temporary", "--role", "audit")
    keys = json.loads(created.stdout)
    client = AdminClient(
        server.admin_endpoint, keys["access_key_id"], keys["secret_access_key"], REGION
    )
    assert status_of(client, "GET", "/tenants") == 403  # known, but not a system administrator
    assert operator_cli(server, "delete", "temporary").returncode == 0
    duplicate = operator_cli(server, "create", "system-admin", "--role", "audit")
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    # the deletion reaches the server within its cache delay (iam_cache_seconds, 5 s)
    import time

    deadline = time.monotonic() + 15
    while status_of(client, "GET", "/tenants") != 403 or _signed_in(client):
        if time.monotonic() > deadline:
            raise AssertionError("a deleted operator still signs in")
        time.sleep(0.5)


def _signed_in(client: AdminClient) -> bool:
    try:
        client.request("GET", "/tenants")
    except AdminClientError as error:
        return error.code != "InvalidAccessKeyId"
    return True
