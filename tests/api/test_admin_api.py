"""The admin API against a real server: every route, its JSON errors, and who may call it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from onshore.adminapi.routes import ROUTES
from onshore.cli.adminclient import AdminClient, AdminClientError
from tests.api.iam_support import admin_client, client, iam_server, new_tenant
from tests.api.server import ACCESS_KEY, REGION, ServerProcess

POLICY = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'  # noqa: E501


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from iam_server(tmp_path_factory, "admin")


def fails(call: object, code: str, status: int) -> AdminClientError:
    with pytest.raises(AdminClientError) as info:
        assert callable(call)
        call()
    assert (info.value.code, info.value.status) == (code, status), info.value
    return info.value


def test_openapi_lists_every_route(server: ServerProcess) -> None:
    with urllib.request.urlopen(server.admin_endpoint + "/openapi.json") as response:
        doc = json.loads(response.read())
    assert doc["openapi"].startswith("3.")
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert {(r.method, r.path) for r in ROUTES} | {("GET", "/openapi.json")} == documented


def test_unsigned_and_tenant_signed_requests_are_refused(
    server: ServerProcess, admin: AdminClient
) -> None:
    request = urllib.request.Request(server.admin_endpoint + "/tenants")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request)
    assert info.value.code == 403
    assert json.loads(info.value.read())["error"]["code"] == "AccessDenied"

    tenant = new_tenant(admin)
    as_tenant = AdminClient(server.admin_endpoint, tenant.access_key, tenant.secret_key, REGION)
    fails(lambda: as_tenant.request("GET", "/tenants"), "AccessDenied", 403)
    wrong_secret = AdminClient(server.admin_endpoint, ACCESS_KEY, "not-the-secret", REGION)
    fails(lambda: wrong_secret.request("GET", "/tenants"), "SignatureDoesNotMatch", 403)
    unknown = AdminClient(server.admin_endpoint, "NOSUCHKEY", "whatever", REGION)
    fails(lambda: unknown.request("GET", "/tenants"), "InvalidAccessKeyId", 403)


def test_the_s3_port_does_not_serve_the_admin_api(server: ServerProcess) -> None:
    root = admin_client(server)
    on_s3 = AdminClient(server.endpoint, root.access_key, root.secret_key, REGION)
    with pytest.raises(AdminClientError) as info:
        on_s3.request("GET", "/tenants")
    assert info.value.status in (400, 403)


def test_tenant_lifecycle(admin: AdminClient, server: ServerProcess) -> None:
    tenant = new_tenant(admin, "life")
    assert len(tenant.account_id) == 12 and tenant.account_id.isdigit()
    assert tenant.access_key.startswith("AKIA") and len(tenant.secret_key) == 40
    listed = admin.request("GET", "/tenants")
    assert isinstance(listed, dict)
    assert tenant.name in [t["name"] for t in listed["tenants"]]
    by_name = admin.request("GET", f"/tenants/{tenant.name}")
    by_id = admin.request("GET", f"/tenants/{tenant.account_id}")
    assert isinstance(by_name, dict) and by_name == by_id
    assert by_name["quota"]["usage"] == {"bytes": 0, "objects": 0, "buckets": 0}

    fails(
        lambda: admin.request("POST", "/tenants", {"name": tenant.name}), "EntityAlreadyExists", 409
    )
    fails(lambda: admin.request("POST", "/tenants", {"name": "Bad Name"}), "ValidationError", 400)
    fails(
        lambda: admin.request("POST", "/tenants", {"name": "123456789012"}), "ValidationError", 400
    )
    fails(lambda: admin.request("POST", "/tenants", {}), "ValidationError", 400)
    fails(lambda: admin.request("POST", "/tenants", raw=b"{not json"), "ValidationError", 400)
    fails(lambda: admin.request("POST", "/tenants", raw=b"[1]"), "ValidationError", 400)

    s3 = client("s3", server.endpoint, tenant.access_key, tenant.secret_key)
    s3.create_bucket(Bucket=f"{tenant.name}-b")
    path = f"/tenants/{tenant.account_id}"
    fails(lambda: admin.request("DELETE", path), "DeleteConflict", 409)
    s3.delete_bucket(Bucket=f"{tenant.name}-b")
    assert admin.request("DELETE", path) is None
    fails(lambda: admin.request("GET", path), "NoSuchEntity", 404)


def test_users_keys_and_policies(admin: AdminClient) -> None:
    tenant = new_tenant(admin, "users")
    base = f"/tenants/{tenant.name}/users"
    user = admin.request("POST", base, {"name": "alice"})
    assert isinstance(user, dict)
    assert user["arn"] == f"arn:onshore:iam::{tenant.account_id}:user/alice"
    assert user["user_id"].startswith("AIDA") and user["admin"] is False
    fails(lambda: admin.request("POST", base, {"name": "ALICE"}), "EntityAlreadyExists", 409)
    fails(lambda: admin.request("POST", base, {"name": "no spaces"}), "ValidationError", 400)
    users = admin.request("GET", base)
    assert isinstance(users, dict)
    assert [(u["name"], u["admin"]) for u in users["users"]] == [("admin", True), ("alice", False)]
    assert admin.request("GET", base + "/alice") == user
    fails(lambda: admin.request("GET", base + "/bob"), "NoSuchEntity", 404)

    keys = base + "/alice/keys"
    first = admin.request("POST", keys, {})
    assert isinstance(first, dict) and first["status"] == "Active"
    imported = admin.request(
        "POST", keys, {"access_key_id": "MIGRATEDKEY01", "secret_access_key": "migrated-secret-1"}
    )
    assert isinstance(imported, dict) and imported["secret_access_key"] == "migrated-secret-1"
    fails(lambda: admin.request("POST", keys, {}), "LimitExceeded", 409)
    listed = admin.request("GET", keys)
    assert isinstance(listed, dict)
    assert {k["access_key_id"] for k in listed["access_keys"]} == {
        first["access_key_id"],
        "MIGRATEDKEY01",
    }
    assert all("secret_access_key" not in k for k in listed["access_keys"])
    patched = admin.request("PATCH", "/keys/MIGRATEDKEY01", {"status": "Inactive"})
    assert isinstance(patched, dict) and patched["status"] == "Inactive"
    fails(
        lambda: admin.request("PATCH", "/keys/MIGRATEDKEY01", {"status": "Off"}),
        "ValidationError",
        400,
    )
    got = admin.request("GET", "/keys/MIGRATEDKEY01")
    assert isinstance(got, dict) and got["status"] == "Inactive" and "secret_access_key" not in got
    assert admin.request("DELETE", "/keys/MIGRATEDKEY01") is None
    fails(lambda: admin.request("GET", "/keys/MIGRATEDKEY01"), "NoSuchEntity", 404)

    other = new_tenant(admin, "other")
    other_keys = f"/tenants/{other.name}/users/admin/keys"
    dup = {"access_key_id": first["access_key_id"], "secret_access_key": "whatever-secret"}
    fails(lambda: admin.request("POST", other_keys, dup), "EntityAlreadyExists", 409)
    root = {"access_key_id": ACCESS_KEY, "secret_access_key": "whatever-secret"}
    fails(lambda: admin.request("POST", other_keys, root), "EntityAlreadyExists", 409)
    half = {"access_key_id": "ONLYID12345"}
    fails(lambda: admin.request("POST", other_keys, half), "ValidationError", 400)
    bad = {"access_key_id": "BAD KEY", "secret_access_key": "whatever-secret"}
    fails(lambda: admin.request("POST", other_keys, bad), "ValidationError", 400)

    policies = base + "/alice/policies"
    assert admin.request("PUT", policies + "/full", raw=POLICY.encode()) is not None
    got_policy = admin.request("GET", policies + "/full")
    assert isinstance(got_policy, dict) and got_policy["document"] == json.loads(POLICY)
    assert admin.request("GET", policies) == {"policies": ["full"]}
    fails(
        lambda: admin.request("PUT", policies + "/x", raw=b"{nope"), "MalformedPolicyDocument", 400
    )
    fails(lambda: admin.request("PUT", policies + "/x", raw=b"[]"), "MalformedPolicyDocument", 400)
    big = json.dumps({"Statement": [{"Sid": "x" * 2100}]}).encode()
    fails(lambda: admin.request("PUT", policies + "/x", raw=big), "LimitExceeded", 409)
    padded = POLICY.replace(" ", " " * 300).encode()  # whitespace does not count toward the limit
    assert len(padded) > 2048
    admin.request("PUT", policies + "/padded", raw=padded)
    fails(lambda: admin.request("DELETE", base + "/alice"), "DeleteConflict", 409)
    admin.request("DELETE", policies + "/full")
    admin.request("DELETE", policies + "/padded")
    fails(lambda: admin.request("DELETE", policies + "/full"), "NoSuchEntity", 404)
    admin.request("DELETE", f"/keys/{first['access_key_id']}")
    assert admin.request("DELETE", base + "/alice") is None
    fails(lambda: admin.request("DELETE", base + "/admin"), "DeleteConflict", 409)


def test_quotas(admin: AdminClient) -> None:
    tenant = new_tenant(admin, "quota")
    path = f"/tenants/{tenant.name}/quota"
    assert admin.request("GET", path) == {
        "max_bytes": None,
        "max_objects": None,
        "max_buckets": None,
        "usage": {"bytes": 0, "objects": 0, "buckets": 0},
    }
    admin.request("PUT", path, {"max_bytes": 1000, "max_buckets": 3})
    admin.request("PUT", path, {"max_objects": 7})  # fields left out keep their value
    got = admin.request("GET", path)
    assert isinstance(got, dict)
    assert (got["max_bytes"], got["max_objects"], got["max_buckets"]) == (1000, 7, 3)
    admin.request("PUT", path, {"max_bytes": None})
    got = admin.request("GET", path)
    assert isinstance(got, dict) and got["max_bytes"] is None
    fails(lambda: admin.request("PUT", path, {"max_bytes": -1}), "ValidationError", 400)
    fails(lambda: admin.request("PUT", path, {"max_bytes": "1G"}), "ValidationError", 400)
    fails(lambda: admin.request("PUT", path, {"max_files": 1}), "ValidationError", 400)
    fails(
        lambda: admin.request("PUT", "/tenants/nosuch/quota", {"max_bytes": 1}), "NoSuchEntity", 404
    )


def test_unknown_routes_and_methods(admin: AdminClient) -> None:
    fails(lambda: admin.request("GET", "/nothing/here"), "NoSuchRoute", 404)
    fails(lambda: admin.request("PUT", "/tenants"), "MethodNotAllowed", 405)


def test_secrets_are_not_stored_in_plain_text(admin: AdminClient, server: ServerProcess) -> None:
    tenant = new_tenant(admin, "secret")
    imported = admin.request(
        "POST",
        f"/tenants/{tenant.name}/users/admin/keys",
        {"access_key_id": "PLAINTEXTPROBE1", "secret_access_key": "Probe-Secret-Do-Not-Store-42"},
    )
    assert isinstance(imported, dict)
    files = [p for p in Path(server.data_dir).iterdir() if p.name.startswith("metadata.db")]
    assert files
    contents = b"".join(p.read_bytes() for p in files)
    assert b"PLAINTEXTPROBE1" in contents  # the key id is stored (and is what the scan found)
    for secret in (tenant.secret_key, "Probe-Secret-Do-Not-Store-42"):
        assert secret.encode() not in contents
        assert secret.encode("utf-16-le") not in contents
    log = server.log_path
    assert log is not None
    assert tenant.secret_key not in log.read_text(errors="replace")
