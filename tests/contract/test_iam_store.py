"""The IamStore contract (storage/iam_port.py), on SQLite, and the usage counters the metadata
writes keep for it: every kind of write and delete moves them, inside the same transaction."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from onshore.domain.errors import PreconditionFailed
from onshore.domain.iam import (
    AccessKey,
    DeleteConflict,
    EntityAlreadyExists,
    KeyStatus,
    LimitExceeded,
    NoSuchEntity,
    Quota,
    Tenant,
    Usage,
    User,
)
from onshore.domain.models import Versioning, WriteCondition
from onshore.storage.sqlite import SqliteMetadataStore
from onshore.storage.sqlite.iam import SqliteIamStore
from tests.contract.conftest import T0, bucket, marker, obj, part, upload

ACCOUNT = "111122223333"


@pytest.fixture
def meta(tmp_path: Path) -> Iterator[SqliteMetadataStore]:
    store = SqliteMetadataStore(tmp_path / "metadata.db")
    yield store
    store.close()


@pytest.fixture
def iam(meta: SqliteMetadataStore) -> SqliteIamStore:
    store = SqliteIamStore(meta)
    store.create_tenant(Tenant(ACCOUNT, "acme", T0), admin(ACCOUNT))
    return store


def admin(account: str) -> User:
    return User(account, "admin", f"AIDAADMIN{account}", T0, is_admin=True)


def user(name: str, account: str = ACCOUNT) -> User:
    return User(account, name, f"AIDA{name.upper()}{account}", T0)


def key(access_key: str, user_name: str, account: str = ACCOUNT) -> AccessKey:
    return AccessKey(access_key, account, user_name, KeyStatus.ACTIVE, T0)


def test_tenants_by_id_and_name(iam: SqliteIamStore) -> None:
    assert iam.get_tenant(ACCOUNT) == Tenant(ACCOUNT, "acme", T0)
    assert iam.get_tenant("acme") == Tenant(ACCOUNT, "acme", T0)
    assert iam.get_tenant("nope") is None
    iam.create_tenant(Tenant("222233334444", "beta", T0), admin("222233334444"))
    assert [t.name for t in iam.list_tenants()] == ["acme", "beta"]
    with pytest.raises(EntityAlreadyExists):
        iam.create_tenant(Tenant("999988887777", "acme", T0), admin("999988887777"))
    assert iam.get_tenant("999988887777") is None  # nothing of the failed create remains


def test_users_are_unique_per_tenant_case_insensitively(iam: SqliteIamStore) -> None:
    iam.create_user(user("alice"))
    with pytest.raises(EntityAlreadyExists):
        iam.create_user(User(ACCOUNT, "ALICE", "AIDAOTHER", T0))
    iam.create_tenant(Tenant("222233334444", "beta", T0), admin("222233334444"))
    iam.create_user(user("alice", "222233334444"))  # another tenant: fine
    assert iam.get_user(ACCOUNT, "Alice") == user("alice")
    assert [u.name for u in iam.list_users(ACCOUNT)] == ["admin", "alice"]
    with pytest.raises(NoSuchEntity):
        iam.create_user(user("bob", "555555555555"))
    with pytest.raises(NoSuchEntity):
        iam.list_users("555555555555")


def test_keys_at_most_two_per_user_and_unique(iam: SqliteIamStore) -> None:
    iam.create_user(user("alice"))
    iam.create_key(key("AK1", "alice"), b"wrapped1")
    iam.create_key(key("AK2", "alice"), b"wrapped2")
    with pytest.raises(LimitExceeded):
        iam.create_key(key("AK3", "alice"), b"wrapped3")
    with pytest.raises(EntityAlreadyExists):
        iam.create_key(key("AK1", "admin"), b"x")
    with pytest.raises(NoSuchEntity):
        iam.create_key(key("AK9", "nobody"), b"x")
    record = iam.get_key("AK1")
    assert record is not None
    assert record.wrapped_secret == b"wrapped1"
    assert record.user == user("alice")
    assert [k.access_key for k in iam.list_keys(ACCOUNT, "alice")] == ["AK1", "AK2"]


def test_key_status_and_delete_stay_inside_the_tenant(iam: SqliteIamStore) -> None:
    iam.create_key(key("AK1", "admin"), b"w")
    iam.create_tenant(Tenant("222233334444", "beta", T0), admin("222233334444"))
    with pytest.raises(NoSuchEntity):
        iam.set_key_status("222233334444", "AK1", KeyStatus.INACTIVE)
    with pytest.raises(NoSuchEntity):
        iam.delete_key("222233334444", "AK1")
    iam.set_key_status(ACCOUNT, "AK1", KeyStatus.INACTIVE)
    record = iam.get_key("AK1")
    assert record is not None and record.key.status is KeyStatus.INACTIVE
    iam.delete_key(ACCOUNT, "AK1")
    assert iam.get_key("AK1") is None


def test_delete_user_conflicts(iam: SqliteIamStore) -> None:
    iam.create_user(user("alice"))
    iam.create_key(key("AK1", "alice"), b"w")
    iam.put_policy(ACCOUNT, "alice", "p", "{}")
    with pytest.raises(DeleteConflict):
        iam.delete_user(ACCOUNT, "alice")
    iam.delete_key(ACCOUNT, "AK1")
    with pytest.raises(DeleteConflict):
        iam.delete_user(ACCOUNT, "alice")
    iam.delete_policy(ACCOUNT, "alice", "p")
    iam.delete_user(ACCOUNT, "alice")
    assert iam.get_user(ACCOUNT, "alice") is None
    with pytest.raises(DeleteConflict):
        iam.delete_user(ACCOUNT, "admin")
    with pytest.raises(NoSuchEntity):
        iam.delete_user(ACCOUNT, "alice")


def test_policies(iam: SqliteIamStore) -> None:
    alice = user("alice")
    iam.create_user(alice)
    iam.put_policy(ACCOUNT, "alice", "b", '{"b": 1}')
    iam.put_policy(ACCOUNT, "alice", "a", '{"a": 1}')
    iam.put_policy(ACCOUNT, "alice", "b", '{"b": 2}')
    assert iam.list_policies(ACCOUNT, "alice") == ["a", "b"]
    assert iam.get_policy(ACCOUNT, "alice", "b") == '{"b": 2}'
    assert iam.get_policy(ACCOUNT, "alice", "zzz") is None
    assert list(iam.policies_of(alice.user_id)) == ['{"a": 1}', '{"b": 2}']
    with pytest.raises(NoSuchEntity):
        iam.delete_policy(ACCOUNT, "alice", "zzz")
    with pytest.raises(NoSuchEntity):
        iam.put_policy(ACCOUNT, "nobody", "a", "{}")


def test_quota_defaults_to_unlimited_and_round_trips(iam: SqliteIamStore) -> None:
    assert iam.get_quota(ACCOUNT).unlimited
    iam.set_quota(ACCOUNT, Quota(max_bytes=10, max_buckets=2))
    assert iam.get_quota(ACCOUNT) == Quota(10, None, 2)
    with pytest.raises(NoSuchEntity):
        iam.set_quota("555555555555", Quota(1))


def test_delete_tenant_refused_while_it_owns_buckets(
    iam: SqliteIamStore, meta: SqliteMetadataStore
) -> None:
    iam.create_user(user("alice"))
    iam.create_key(key("AK1", "alice"), b"w")
    iam.put_policy(ACCOUNT, "alice", "p", "{}")
    iam.set_quota(ACCOUNT, Quota(1))
    bucket(meta, "b1", owner=ACCOUNT)
    with pytest.raises(DeleteConflict):
        iam.delete_tenant(ACCOUNT)
    meta.delete_bucket("b1")
    iam.delete_tenant(ACCOUNT)
    assert iam.get_tenant(ACCOUNT) is None
    assert iam.get_key("AK1") is None
    assert iam.get_quota(ACCOUNT).unlimited


# --- usage counters -----------------------------------------------------------------------------
def test_usage_follows_puts_overwrites_and_deletes(
    iam: SqliteIamStore, meta: SqliteMetadataStore
) -> None:
    assert iam.usage(ACCOUNT) == Usage()
    bucket(meta, "b1", owner=ACCOUNT)
    bucket(meta, "b2", owner=ACCOUNT)
    bucket(meta, "other", owner="999999999999")
    assert iam.usage(ACCOUNT) == Usage(0, 0, 2)
    meta.put_object(obj("b1", "k", data=b"12345"))
    meta.put_object(obj("b2", "k", data=b"1234567890"))
    assert iam.usage(ACCOUNT) == Usage(15, 2, 2)
    meta.put_object(obj("b1", "k", data=b"1"))  # unversioned overwrite replaces
    assert iam.usage(ACCOUNT) == Usage(11, 2, 2)
    meta.delete_object("b2", "k", version_id=None, marker=marker("b2", "k"))
    assert iam.usage(ACCOUNT) == Usage(1, 1, 2)
    meta.put_object(obj("other", "k", data=b"xyz"))
    assert iam.usage("999999999999") == Usage(3, 1, 1)
    assert iam.usage(ACCOUNT) == Usage(1, 1, 2)
    meta.delete_bucket("b2")
    assert iam.usage(ACCOUNT) == Usage(1, 1, 1)


def test_usage_counts_versions_not_delete_markers(
    iam: SqliteIamStore, meta: SqliteMetadataStore
) -> None:
    bucket(meta, "b1", Versioning.ENABLED, owner=ACCOUNT)
    meta.put_object(obj("b1", "k", data=b"aaaa"))
    meta.put_object(obj("b1", "k", data=b"bb"))
    assert iam.usage(ACCOUNT) == Usage(6, 2, 1)
    result = meta.delete_object("b1", "k", version_id=None, marker=marker("b1", "k"))
    assert iam.usage(ACCOUNT) == Usage(6, 2, 1)  # a marker adds no bytes and no object
    assert result.version is not None
    meta.delete_object("b1", "k", version_id=result.version.version_id, marker=marker("b1", "k"))
    assert iam.usage(ACCOUNT) == Usage(6, 2, 1)


def test_a_failed_write_leaves_usage_unchanged(
    iam: SqliteIamStore, meta: SqliteMetadataStore
) -> None:
    bucket(meta, "b1", owner=ACCOUNT)
    meta.put_object(obj("b1", "k", data=b"aaaa"))
    with pytest.raises(PreconditionFailed):
        meta.put_object(
            obj("b1", "k", data=b"b" * 100), condition=WriteCondition(if_none_match_any=True)
        )
    assert iam.usage(ACCOUNT) == Usage(4, 1, 1)


def test_usage_counts_parts_until_complete_or_abort(
    iam: SqliteIamStore, meta: SqliteMetadataStore
) -> None:
    bucket(meta, "b1", owner=ACCOUNT)
    meta.create_upload(upload("b1", "k", "u1"))
    meta.put_part("b1", "u1", part(1, "blob1", size=7))
    meta.put_part("b1", "u1", part(2, "blob2", size=5))
    assert iam.usage(ACCOUNT) == Usage(12, 0, 1)
    meta.put_part("b1", "u1", part(2, "blob3", size=3))  # replaced part
    assert iam.usage(ACCOUNT) == Usage(10, 0, 1)
    meta.complete_upload("b1", "u1", obj("b1", "k", blobs=("blob1", "blob3")))
    assert iam.usage(ACCOUNT) == Usage(20, 1, 1)  # the builder sizes segments 10 bytes each
    meta.create_upload(upload("b1", "k2", "u2"))
    meta.put_part("b1", "u2", part(1, "blob4", size=9))
    assert iam.usage(ACCOUNT) == Usage(29, 1, 1)
    meta.abort_upload("b1", "u2")
    assert iam.usage(ACCOUNT) == Usage(20, 1, 1)


def test_migration_counts_what_a_version_1_database_already_holds(tmp_path: Path) -> None:
    from onshore.storage.sqlite import schema

    path = str(tmp_path / "old.db")
    conn = schema.connect(path, writer=True)
    schema.migrate(conn, schema.migrations()[:1])
    conn.execute(
        "INSERT INTO buckets (name, owner_id, region, created_us) VALUES ('b', ?, 'r', 0)",
        (ACCOUNT,),
    )
    for key, size, is_marker in ((b"a", 5, 0), (b"b", 7, 0), (b"c", 0, 1)):
        conn.execute(
            "INSERT INTO versions (bucket_id, object_key, version_id, is_latest,"
            " is_delete_marker, size, etag, last_modified_us, owner_id, storage_class, headers,"
            " user_metadata) VALUES (1, ?, 'null', 1, ?, ?, '', 0, '', 'STANDARD', '{}', '{}')",
            (key, is_marker, size),
        )
    conn.close()
    meta = SqliteMetadataStore(path)
    try:
        assert SqliteIamStore(meta).usage(ACCOUNT) == Usage(12, 2, 1)
    finally:
        meta.close()
