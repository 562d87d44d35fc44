"""IAM domain checks, the identity cache and the admin CLI's size parser (no server)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from onshore.cli.admin import parse_size, table
from onshore.domain.iam import (
    AccessKey,
    KeyRecord,
    KeyStatus,
    LimitExceeded,
    MalformedPolicyDocument,
    NewAccessKey,
    User,
    ValidationError,
    check_imported_key,
    check_policy_document,
    check_tenant_name,
    check_user_name,
    new_access_key_id,
    new_account_id,
    new_secret_key,
    new_user_id,
)
from onshore.service.credentials import RootCredentials
from onshore.service.identity import Identities, PrincipalKind
from onshore.service.rootkey import LocalRootKey

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ROOT = RootCredentials("ROOTKEY", "root-secret", created=False)


def test_generated_ids_have_the_aws_shapes() -> None:
    assert new_account_id().isdigit() and len(new_account_id()) == 12
    assert new_user_id().startswith("AIDA") and len(new_user_id()) == 21
    assert new_access_key_id().startswith("AKIA") and len(new_access_key_id()) == 20
    assert len(new_secret_key()) == 40
    assert len({new_secret_key() for _ in range(50)}) == 50


@pytest.mark.parametrize("name", ["acme", "a1", "big-corp-2"])
def test_good_tenant_names(name: str) -> None:
    assert check_tenant_name(name) == name


@pytest.mark.parametrize("name", ["", "a", "Acme", "-acme", "123456789012", "a b", "x" * 64])
def test_bad_tenant_names(name: str) -> None:
    with pytest.raises(ValidationError):
        check_tenant_name(name)


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "é", "a/b"])
def test_bad_user_names(name: str) -> None:
    with pytest.raises(ValidationError):
        check_user_name(name)


def test_policy_document_shape_and_size() -> None:
    check_policy_document('{"Version": "2012-10-17"}')
    with pytest.raises(MalformedPolicyDocument):
        check_policy_document("{")
    with pytest.raises(MalformedPolicyDocument):
        check_policy_document('"a string"')
    exactly = json.dumps({"Sid": "x" * 2038}, separators=(",", ":"))
    assert len(exactly) == 2048
    check_policy_document(exactly)
    check_policy_document(exactly.replace(":", " :  "))  # whitespace is free
    with pytest.raises(LimitExceeded):
        check_policy_document(json.dumps({"Sid": "x" * 2039}, separators=(",", ":")))


def test_imported_keys() -> None:
    check_imported_key("MINIOADMIN", "minioadmin")
    for key, secret in (("AB", "longenough"), ("OK123", "short"), ("OK123", "has space 123")):
        with pytest.raises(ValidationError):
            check_imported_key(key, secret)


def test_a_new_key_never_shows_its_secret_in_repr() -> None:
    key = AccessKey("AKIAX", "111122223333", "u", KeyStatus.ACTIVE, T0)
    assert "topsecret" not in repr(NewAccessKey(key, "topsecret"))


def test_parse_size() -> None:
    assert parse_size("1000") == 1000
    assert parse_size("1K") == 1024
    assert parse_size("10GiB") == 10 * 1024**3
    assert parse_size("512m") == 512 * 1024**2
    assert parse_size("none") is None
    with pytest.raises(ValueError):
        parse_size("lots")


def test_table_aligns_columns() -> None:
    out = table([{"a": "x", "b": None}, {"a": "longer", "b": True}], ("a", "b"))
    assert out.splitlines() == ["A       B", "x       -", "longer  yes"]


# --- the identity cache -------------------------------------------------------------------------
class FakeStore:
    """Just the two reads Identities makes, counting them."""

    def __init__(self, wrapper: LocalRootKey) -> None:
        self.wrapper = wrapper
        self.keys: dict[str, KeyRecord] = {}
        self.policies: dict[str, Sequence[str]] = {}
        self.reads = 0

    def add(self, access_key: str, secret: str, *, admin: bool = False) -> None:
        user = User("111122223333", "alice", "AIDAALICE", T0, is_admin=admin)
        key = AccessKey(access_key, user.account_id, user.name, KeyStatus.ACTIVE, T0)
        wrapped = self.wrapper.wrap(secret.encode(), context=access_key.encode())
        self.keys[access_key] = KeyRecord(key, user, wrapped)

    def get_key(self, access_key: str) -> KeyRecord | None:
        self.reads += 1
        return self.keys.get(access_key)

    def policies_of(self, user_id: str) -> Sequence[str]:
        self.reads += 1
        return self.policies.get(user_id, ())


def identities(ttl: float = 60.0) -> tuple[Identities, FakeStore]:
    wrapper = LocalRootKey(b"k" * 32)
    store = FakeStore(wrapper)
    found = Identities(ROOT, partition="p", store=store, wrapper=wrapper, ttl=ttl)  # type: ignore[arg-type]
    return found, store


def test_root_is_answered_without_the_store() -> None:
    ids, store = identities()
    assert ids.secret_for("ROOTKEY") == "root-secret"
    principal = ids.principal("ROOTKEY")
    assert principal is not None and principal.kind is PrincipalKind.ROOT
    assert store.reads == 0


def test_keys_are_cached_until_cleared() -> None:
    ids, store = identities()
    store.add("AKIAONE", "secret-one")
    assert ids.secret_for("AKIAONE") == "secret-one"
    principal = ids.principal("AKIAONE")
    assert principal is not None
    assert principal.kind is PrincipalKind.USER
    assert principal.arn == "arn:p:iam::111122223333:user/alice"
    assert (principal.user_id, principal.user_name) == ("AIDAALICE", "alice")
    assert store.reads == 1
    del store.keys["AKIAONE"]
    assert ids.secret_for("AKIAONE") == "secret-one"  # still cached
    ids.clear()
    assert ids.secret_for("AKIAONE") is None
    assert ids.principal("AKIAONE") is None


def test_unknown_keys_are_cached_too_and_ttl_zero_always_reads() -> None:
    ids, store = identities()
    for _ in range(5):
        assert ids.secret_for("NOPE") is None
    assert store.reads == 1
    fresh, fresh_store = identities(ttl=0)
    fresh_store.add("AKIAONE", "s1")
    fresh.secret_for("AKIAONE")
    fresh.secret_for("AKIAONE")
    assert fresh_store.reads == 2


def test_inactive_and_unwrappable_keys_are_unknown() -> None:
    ids, store = identities()
    store.add("AKIAOFF", "s")
    record = store.keys["AKIAOFF"]
    inactive = AccessKey("AKIAOFF", "111122223333", "alice", KeyStatus.INACTIVE, T0)
    store.keys["AKIAOFF"] = KeyRecord(inactive, record.user, record.wrapped_secret)
    assert ids.secret_for("AKIAOFF") is None
    store.add("AKIAMOVED", "s")
    moved = store.keys["AKIAMOVED"]
    store.keys["AKIAOTHER"] = KeyRecord(  # a wrapped secret copied to another key's row
        AccessKey("AKIAOTHER", "111122223333", "alice", KeyStatus.ACTIVE, T0),
        moved.user,
        moved.wrapped_secret,
    )
    assert ids.secret_for("AKIAOTHER") is None


def test_tenant_admin_principal_and_policies() -> None:
    ids, store = identities()
    store.add("AKIAADMIN", "s", admin=True)
    admin = ids.principal("AKIAADMIN")
    assert admin is not None and admin.kind is PrincipalKind.TENANT_ADMIN
    assert admin.arn == "arn:p:iam::111122223333:root"
    assert ids.policies_for(admin) == ()  # the admin needs none
    store.add("AKIAUSER", "s")
    store.policies["AIDAALICE"] = ('{"a": 1}',)
    user = ids.principal("AKIAUSER")
    assert user is not None
    assert ids.policies_for(user) == ('{"a": 1}',)
    store.policies["AIDAALICE"] = ()
    assert ids.policies_for(user) == ('{"a": 1}',)  # cached
    ids.clear()
    assert ids.policies_for(user) == ()


def test_admin_api_doc_lists_every_route() -> None:
    from pathlib import Path

    from onshore.adminapi.openapi import document
    from onshore.adminapi.routes import ROUTES

    doc = (Path(__file__).resolve().parents[2] / "docs" / "admin-api.md").read_text()
    listed = set()
    for line in doc.splitlines():
        if line.startswith("| `") and " /" in line:
            method, _, path = line.split("`")[1].partition(" ")
            listed.add((method, path))
    routes = {(r.method, r.path) for r in ROUTES} | {("GET", "/openapi.json")}
    assert listed == routes
    paths = document()["paths"]
    assert isinstance(paths, dict)
    assert {(m.upper(), p) for p, ops in paths.items() for m in ops} == routes


def test_claimed_access_key() -> None:
    from onshore.s3api.auth.keyhint import claimed_access_key

    header = {
        "authorization": "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20260101/r/s3/aws4_request, "
        "SignedHeaders=host, Signature=00"
    }
    assert claimed_access_key(header, {}) == "AKIAEXAMPLE"
    assert claimed_access_key({}, {"X-Amz-Credential": "AKIAQ/20260101/r/s3/aws4_request"}) == (
        "AKIAQ"
    )
    assert claimed_access_key({"authorization": "garbage"}, {}) is None
    assert claimed_access_key({}, {}) is None


def test_warm_loads_key_and_policies_so_later_calls_read_nothing() -> None:
    ids, store = identities()
    store.add("AKIAUSER", "s")
    store.policies["AIDAALICE"] = ('{"a": 1}',)
    assert ids.is_cached("ROOTKEY")
    assert not ids.is_cached("AKIAUSER")
    ids.warm("AKIAUSER")
    assert ids.is_cached("AKIAUSER")
    reads = store.reads
    principal = ids.principal("AKIAUSER")
    assert principal is not None
    assert ids.secret_for("AKIAUSER") == "s"
    assert ids.policies_for(principal) == ('{"a": 1}',)
    assert store.reads == reads
