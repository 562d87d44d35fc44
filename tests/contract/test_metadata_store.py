"""The ``MetadataStore`` contract (``onshore.storage.ports``), run against every implementation.

Sections: buckets, objects and the versioning state machine, conditional writes, blob
accounting, multipart uploads, listings (examples, then hypothesis properties comparing SQLite,
memory and a brute-force model), SQLite specifics (group commit, durability across reopen,
migrations), and ``slow`` scale figures.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from onshore.domain.errors import (
    BucketNotEmpty,
    IllegalVersioningConfigurationException,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
    PreconditionFailed,
    S3Error,
)
from onshore.domain.models import (
    NULL_VERSION,
    Bucket,
    Checksum,
    ChecksumAlgorithm,
    ChecksumType,
    MultipartUpload,
    ObjectVersion,
    Removed,
    Segment,
    Versioning,
    WriteCondition,
)
from onshore.storage.memory import MemoryMetadataStore
from onshore.storage.ports import MetadataStore
from onshore.storage.sqlite import SqliteMetadataStore
from onshore.storage.sqlite import schema as sqlite_schema
from onshore.storage.sqlite.writer import GroupCommitWriter, WriterClosed
from tests.contract.conftest import T0, at, bucket, marker, obj, part, upload

ENABLED, SUSPENDED = Versioning.ENABLED, Versioning.SUSPENDED


def keys_of(page_objects: tuple[ObjectVersion, ...]) -> list[str]:
    return [o.key for o in page_objects]


def versions_of(store: MetadataStore, name: str, key: str) -> list[tuple[str, bool, bool]]:
    """(version id, is_latest, is_delete_marker) of every version of ``key``, newest first."""
    page = store.list_versions(name, prefix=key, limit=10000)
    return [(v.version_id, v.is_latest, v.is_delete_marker) for v in page.versions if v.key == key]


# === buckets ====================================================================================
def test_create_bucket_returns_it_and_existing_is_unchanged(store: MetadataStore) -> None:
    created = store.create_bucket(Bucket("b1", "owner-a", "cn-north-1", T0))
    assert created == Bucket("b1", "owner-a", "cn-north-1", T0, Versioning.UNVERSIONED)
    again = store.create_bucket(Bucket("b1", "owner-b", "other", at(5)))
    assert again == created
    assert store.get_bucket("b1") == created
    assert store.get_bucket("missing") is None


def test_list_buckets_orders_filters_and_pages(store: MetadataStore) -> None:
    for name, owner in [("c", "x"), ("a", "y"), ("b", "x"), ("ab", "x"), ("b-2", "y")]:
        store.create_bucket(Bucket(name, owner, "r", T0))
    assert [b.name for b in store.list_buckets()] == ["a", "ab", "b", "b-2", "c"]
    assert [b.name for b in store.list_buckets(owner_id="x")] == ["ab", "b", "c"]
    assert [b.name for b in store.list_buckets(prefix="a")] == ["a", "ab"]
    assert [b.name for b in store.list_buckets(start_after="ab")] == ["b", "b-2", "c"]
    assert [b.name for b in store.list_buckets(start_after="a", limit=2)] == ["ab", "b"]
    assert [b.name for b in store.list_buckets(prefix="b", owner_id="y")] == ["b-2"]
    assert store.list_buckets(limit=0) == []


def test_delete_bucket(store: MetadataStore) -> None:
    with pytest.raises(NoSuchBucket):
        store.delete_bucket("missing")
    name = bucket(store)
    store.put_object(obj(name, "k"))
    with pytest.raises(BucketNotEmpty):
        store.delete_bucket(name)
    store.delete_object(name, "k", version_id=None, marker=marker(name, "k"))
    assert store.delete_bucket(name) == ()
    assert store.get_bucket(name) is None
    with pytest.raises(NoSuchBucket):
        store.get_object(name, "k")


def test_a_delete_marker_keeps_a_bucket_non_empty(store: MetadataStore) -> None:
    name = bucket(store, versioning=ENABLED)
    store.delete_object(name, "gone", version_id=None, marker=marker(name, "gone"))
    with pytest.raises(BucketNotEmpty):
        store.delete_bucket(name)


def test_delete_bucket_aborts_uploads_and_frees_their_parts(store: MetadataStore) -> None:
    name = bucket(store)
    store.put_bucket_config(name, "policy", "{}")
    store.create_upload(upload(name, "k", "u1"))
    store.put_part(name, "u1", part(1, "a" * 32))
    store.put_part(name, "u1", part(2, "b" * 32))
    assert sorted(store.delete_bucket(name)) == ["a" * 32, "b" * 32]
    bucket(store)  # same name again: nothing of the old bucket survives
    assert store.get_upload(name, "u1") is None
    assert store.get_bucket_config(name, "policy") is None
    assert store.referenced_blobs(["a" * 32]) == set()


def test_versioning_state(store: MetadataStore) -> None:
    with pytest.raises(NoSuchBucket):
        store.set_versioning("missing", ENABLED)
    name = bucket(store)
    with pytest.raises(IllegalVersioningConfigurationException):
        store.set_versioning(name, Versioning.UNVERSIONED)
    store.set_versioning(name, ENABLED)
    assert store.get_bucket(name) == Bucket(name, "111122223333", "cn-north-1", T0, ENABLED)
    store.set_versioning(name, SUSPENDED)
    got = store.get_bucket(name)
    assert got is not None and got.versioning is SUSPENDED


def test_bucket_config_documents(store: MetadataStore) -> None:
    with pytest.raises(NoSuchBucket):
        store.put_bucket_config("missing", "policy", "{}")
    assert store.get_bucket_config("missing", "policy") is None
    name = bucket(store)
    assert store.get_bucket_config(name, "policy") is None
    store.put_bucket_config(name, "policy", '{"v": 1}')
    store.put_bucket_config(name, "tagging", "<Tagging/>")
    store.put_bucket_config(name, "policy", '{"v": 2}')
    assert store.get_bucket_config(name, "policy") == '{"v": 2}'
    assert store.get_bucket_config(name, "tagging") == "<Tagging/>"
    store.put_bucket_config(name, "policy", None)
    store.put_bucket_config(name, "cors", None)  # deleting what is not there is fine
    assert store.get_bucket_config(name, "policy") is None
    assert store.get_bucket_config(name, "tagging") == "<Tagging/>"


# === objects ====================================================================================
def test_every_field_round_trips(store: MetadataStore) -> None:
    name = bucket(store, versioning=ENABLED)
    checksum = Checksum(ChecksumAlgorithm.CRC32C, "yZRlqg==", ChecksumType.COMPOSITE)
    version = ObjectVersion(
        bucket=name,
        key="dir/ünïcødé 😀 \x00 key",
        version_id="3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
        last_modified=T0.replace(microsecond=123456),
        size=30,
        etag="0123456789abcdef0123456789abcdef-2",
        owner_id="111122223333",
        storage_class="STANDARD_IA",
        headers={"content-type": "text/plain; charset=utf-8", "cache-control": "no-cache"},
        user_metadata={"colour": "bleu", "naïve": "ça va"},
        checksum=checksum,
        segments=(
            Segment("a" * 32, 20, 1, "e1", Checksum(ChecksumAlgorithm.SHA256, "x=")),
            Segment("b" * 32, 10, 2, "e2"),
        ),
    )
    result = store.put_object(version)
    assert result.version == version
    assert result.freed_blobs == () and result.removed is None
    assert store.get_object(name, version.key) == version
    assert store.get_object(name, version.key, version.version_id) == version
    empty = obj(name, "empty", data=b"")
    store.put_object(empty)
    got = store.get_object(name, "empty")
    assert got is not None and got.inline == b"" and got.segments == ()


def test_naive_timestamps_are_taken_as_utc(store: MetadataStore) -> None:
    name = bucket(store)
    naive = replace(obj(name, "k"), last_modified=T0.replace(tzinfo=None))
    stored = store.put_object(naive).version
    assert stored is not None and stored.last_modified == T0
    got = store.get_object(name, "k")
    assert got is not None and got.last_modified == T0 and got.last_modified.tzinfo is not None


def test_missing_bucket_and_missing_key(store: MetadataStore) -> None:
    with pytest.raises(NoSuchBucket):
        store.get_object("missing", "k")
    with pytest.raises(NoSuchBucket):
        store.put_object(obj("missing", "k"))
    with pytest.raises(NoSuchBucket):
        store.delete_object("missing", "k", version_id=None, marker=marker("missing", "k"))
    with pytest.raises(NoSuchBucket):
        store.list_objects("missing")
    with pytest.raises(NoSuchBucket):
        store.list_versions("missing")
    with pytest.raises(NoSuchBucket):
        store.list_uploads("missing")
    name = bucket(store)
    assert store.get_object(name, "k") is None
    assert store.get_object(name, "k", "null") is None


def test_unversioned_overwrite_replaces_the_null_version(store: MetadataStore) -> None:
    name = bucket(store)
    first = store.put_object(obj(name, "k", "ignored-1", blobs=("a" * 32,)))
    assert first.version is not None and first.version.version_id == NULL_VERSION
    second = store.put_object(obj(name, "k", "ignored-2", data=b"new"))
    assert second.freed_blobs == ("a" * 32,)
    assert second.removed is not None and second.removed.blobs == ("a" * 32,)
    assert versions_of(store, name, "k") == [(NULL_VERSION, True, False)]
    got = store.get_object(name, "k")
    assert got is not None and got.inline == b"new"
    assert store.count_objects(name) == 1


def test_enabled_keeps_every_version_newest_first(store: MetadataStore) -> None:
    name = bucket(store, versioning=ENABLED)
    for version_id in ("v1", "v2", "v3"):
        result = store.put_object(obj(name, "k", version_id, data=version_id.encode()))
        assert result.freed_blobs == () and result.removed is None
    assert versions_of(store, name, "k") == [
        ("v3", True, False),
        ("v2", False, False),
        ("v1", False, False),
    ]
    latest = store.get_object(name, "k")
    assert latest is not None and latest.version_id == "v3" and latest.is_latest
    old = store.get_object(name, "k", "v1")
    assert old is not None and old.inline == b"v1" and not old.is_latest
    assert store.count_objects(name) == 3


def test_suspended_replaces_only_the_null_version(store: MetadataStore) -> None:
    name = bucket(store)
    store.put_object(obj(name, "k", blobs=("0" * 32,)))  # null, from the unversioned days
    store.set_versioning(name, ENABLED)
    store.put_object(obj(name, "k", "v1"))
    store.set_versioning(name, SUSPENDED)
    result = store.put_object(obj(name, "k", "whatever", data=b"s1", etag="e" * 32))
    assert result.version is not None and result.version.version_id == NULL_VERSION
    assert result.freed_blobs == ("0" * 32,)
    assert versions_of(store, name, "k") == [(NULL_VERSION, True, False), ("v1", False, False)]
    again = store.put_object(obj(name, "k", "whatever", data=b"s2"))
    assert again.removed == Removed("k", NULL_VERSION, True, False, "e" * 32, ())
    current = store.get_object(name, "k")
    assert current is not None and current.inline == b"s2"
    assert versions_of(store, name, "k") == [(NULL_VERSION, True, False), ("v1", False, False)]


def test_delete_in_unversioned_bucket_removes_the_object(store: MetadataStore) -> None:
    name = bucket(store)
    store.put_object(obj(name, "k", blobs=("c" * 32,)))
    result = store.delete_object(name, "k", version_id=None, marker=marker(name, "k"))
    assert result.version is None
    assert result.removed == Removed(
        "k", NULL_VERSION, True, False, obj(name, "k").etag, ("c" * 32,)
    )
    assert result.freed_blobs == ("c" * 32,)
    assert store.get_object(name, "k") is None
    assert store.count_objects(name) == 0
    again = store.delete_object(name, "k", version_id=None, marker=marker(name, "k"))
    assert again.version is None and again.removed is None and again.freed_blobs == ()


def test_delete_in_enabled_bucket_adds_a_marker(store: MetadataStore) -> None:
    name = bucket(store, versioning=ENABLED)
    store.put_object(obj(name, "k", "v1"))
    dm = marker(name, "k", "dm1")
    result = store.delete_object(name, "k", version_id=None, marker=dm)
    assert result.version is not None
    assert result.version.version_id == "dm1" and result.version.is_delete_marker
    assert result.freed_blobs == ()
    latest = store.get_object(name, "k")
    assert latest is not None and latest.is_delete_marker and latest.is_latest
    assert store.list_objects(name).objects == ()
    assert versions_of(store, name, "k") == [("dm1", True, True), ("v1", False, False)]
    # a marker on a key that never existed is still stored
    store.delete_object(name, "never", version_id=None, marker=marker(name, "never", "dm2"))
    assert versions_of(store, name, "never") == [("dm2", True, True)]


def test_delete_in_suspended_bucket_stores_a_null_marker(store: MetadataStore) -> None:
    name = bucket(store)
    store.put_object(obj(name, "k", blobs=("d" * 32,)))
    store.set_versioning(name, ENABLED)
    store.put_object(obj(name, "k", "v1"))
    store.set_versioning(name, SUSPENDED)
    store.put_object(obj(name, "k", blobs=("e" * 32,)))  # replaces the first null version
    result = store.delete_object(name, "k", version_id=None, marker=marker(name, "k", "x"))
    assert result.version is not None and result.version.version_id == NULL_VERSION
    assert result.version.is_delete_marker
    assert result.freed_blobs == ("e" * 32,)
    assert versions_of(store, name, "k") == [(NULL_VERSION, True, True), ("v1", False, False)]


def test_delete_by_version_id_promotes_the_next_newest(store: MetadataStore) -> None:
    name = bucket(store, versioning=ENABLED)
    store.put_object(obj(name, "k", "v1", blobs=("1" * 32,)))
    store.put_object(obj(name, "k", "v2", blobs=("2" * 32,)))
    store.delete_object(name, "k", version_id=None, marker=marker(name, "k", "dm"))
    assert keys_of(store.list_objects(name).objects) == []
    removed = store.delete_object(name, "k", version_id="dm", marker=marker(name, "k"))
    assert removed.removed is not None and removed.removed.is_delete_marker
    assert removed.removed.is_latest and removed.version is None
    assert keys_of(store.list_objects(name).objects) == ["k"]
    middle = store.delete_object(name, "k", version_id="v1", marker=marker(name, "k"))
    assert middle.freed_blobs == ("1" * 32,)
    assert middle.removed is not None and not middle.removed.is_latest
    assert versions_of(store, name, "k") == [("v2", True, False)]
    last = store.delete_object(name, "k", version_id="v2", marker=marker(name, "k"))
    assert last.freed_blobs == ("2" * 32,)
    assert store.get_object(name, "k") is None
    nothing = store.delete_object(name, "k", version_id="v2", marker=marker(name, "k"))
    assert nothing.removed is None and nothing.version is None


def test_conditional_delete_is_checked_with_the_delete(store: MetadataStore) -> None:
    name = bucket(store, versioning=ENABLED)
    store.put_object(obj(name, "k", "v1", etag="a" * 32))
    store.put_object(obj(name, "k", "v2", etag="b" * 32))
    with pytest.raises(PreconditionFailed):  # the latest is v2
        store.delete_object(name, "k", version_id=None, marker=marker(name, "k"), if_match="a" * 32)
    with pytest.raises(NoSuchKey):
        store.delete_object(
            name, "nope", version_id=None, marker=marker(name, "nope"), if_match="*"
        )
    assert [v[0] for v in versions_of(store, name, "k")] == ["v2", "v1"]  # nothing changed
    by_id = store.delete_object(
        name, "k", version_id="v1", marker=marker(name, "k"), if_match=f'"x", "{"a" * 32}"'
    )
    assert by_id.removed is not None and by_id.removed.version_id == "v1"
    latest = store.delete_object(
        name, "k", version_id=None, marker=marker(name, "k", "dm"), if_match="*"
    )
    assert latest.version is not None and latest.version.is_delete_marker
    with pytest.raises(NoSuchKey):  # the latest is now a delete marker
        store.delete_object(name, "k", version_id=None, marker=marker(name, "k"), if_match="*")


def test_conditional_delete_in_an_unversioned_bucket(store: MetadataStore) -> None:
    name = bucket(store)
    store.put_object(obj(name, "k", etag="c" * 32))
    with pytest.raises(PreconditionFailed):
        store.delete_object(name, "k", version_id=None, marker=marker(name, "k"), if_match="d" * 32)
    assert store.get_object(name, "k") is not None
    store.delete_object(name, "k", version_id=None, marker=marker(name, "k"), if_match="c" * 32)
    assert store.get_object(name, "k") is None


def test_delete_null_version_by_id(store: MetadataStore) -> None:
    name = bucket(store)
    store.put_object(obj(name, "k"))
    store.set_versioning(name, ENABLED)
    store.put_object(obj(name, "k", "v1"))
    result = store.delete_object(name, "k", version_id=NULL_VERSION, marker=marker(name, "k"))
    assert result.removed is not None and result.removed.version_id == NULL_VERSION
    assert versions_of(store, name, "k") == [("v1", True, False)]


def test_an_unlatest_version_can_become_latest_again(store: MetadataStore) -> None:
    name = bucket(store, versioning=ENABLED)
    store.put_object(obj(name, "k", "v1"))
    store.put_object(obj(name, "k", "v2"))
    store.delete_object(name, "k", version_id="v2", marker=marker(name, "k"))
    got = store.get_object(name, "k", "v1")
    assert got is not None and got.is_latest
    store.put_object(obj(name, "k", "v3"))
    assert versions_of(store, name, "k") == [("v3", True, False), ("v1", False, False)]


# === conditional writes =========================================================================
def test_if_none_match_any(store: MetadataStore) -> None:
    name = bucket(store, versioning=ENABLED)
    once = WriteCondition(if_none_match_any=True)
    store.put_object(obj(name, "k", "v1"), condition=once)
    with pytest.raises(PreconditionFailed):
        store.put_object(obj(name, "k", "v2"), condition=once)
    assert versions_of(store, name, "k") == [("v1", True, False)]
    store.delete_object(name, "k", version_id=None, marker=marker(name, "k", "dm"))
    store.put_object(obj(name, "k", "v3"), condition=once)  # a delete marker is "no object"


def test_if_match(store: MetadataStore) -> None:
    name = bucket(store)
    with pytest.raises(NoSuchKey):
        store.put_object(obj(name, "k"), condition=WriteCondition(if_match="abc"))
    assert store.get_object(name, "k") is None
    store.put_object(obj(name, "k", etag="abc"))
    with pytest.raises(PreconditionFailed):
        store.put_object(obj(name, "k", etag="def"), condition=WriteCondition(if_match="zzz"))
    store.put_object(obj(name, "k", etag="def"), condition=WriteCondition(if_match="abc"))
    got = store.get_object(name, "k")
    assert got is not None and got.etag == "def"


def test_if_match_on_a_delete_marker_is_no_such_key(store: MetadataStore) -> None:
    name = bucket(store, versioning=ENABLED)
    store.put_object(obj(name, "k", etag="abc"))
    store.delete_object(name, "k", version_id=None, marker=marker(name, "k"))
    with pytest.raises(NoSuchKey):
        store.put_object(obj(name, "k"), condition=WriteCondition(if_match="abc"))


# === blob accounting ============================================================================
def test_a_shared_blob_is_freed_only_with_its_last_reference(store: MetadataStore) -> None:
    name = bucket(store, versioning=ENABLED)
    shared = "f" * 32
    store.put_object(obj(name, "a", "v1", blobs=(shared,)))
    store.put_object(obj(name, "b", "v1", blobs=(shared,)))
    assert store.referenced_blobs([shared, "0" * 32]) == {shared}
    first = store.delete_object(name, "a", version_id="v1", marker=marker(name, "a"))
    assert first.freed_blobs == ()
    second = store.delete_object(name, "b", version_id="v1", marker=marker(name, "b"))
    assert second.freed_blobs == (shared,)
    assert store.referenced_blobs([shared]) == set()


# === offline scans (onshore fsck) ===============================================================
def test_iter_versions_yields_every_version_complete_once(store: MetadataStore) -> None:
    a = bucket(store, "a", versioning=ENABLED)
    b = bucket(store, "b")
    checksum = Checksum(ChecksumAlgorithm.CRC32, "AAAAAA==", ChecksumType.FULL_OBJECT)
    stored = [
        store.put_object(replace(obj(a, "k", "v1"), checksum=checksum)).version,
        store.put_object(obj(a, "k", "v2", blobs=("1" * 32, "2" * 32))).version,
        store.delete_object(a, "k", version_id=None, marker=marker(a, "k", "m1")).version,
        store.put_object(obj(b, "x", data=b"")).version,
    ]
    store.put_object(obj(b, "gone"))
    store.delete_object(b, "gone", version_id=None, marker=marker(b, "gone"))
    seen = list(store.iter_versions())
    assert sorted((v.bucket, v.key, v.version_id) for v in seen) == sorted(
        (v.bucket, v.key, v.version_id) for v in stored if v is not None
    )
    by_id = {(v.bucket, v.version_id): v for v in seen}
    first, second = by_id[(a, "v1")], by_id[(a, "v2")]
    assert (first.inline, first.checksum, first.is_latest) == (b"hello", checksum, False)
    assert second.blob_ids() == ("1" * 32, "2" * 32) and not second.is_latest
    assert by_id[(a, "m1")].is_delete_marker and by_id[(a, "m1")].is_latest
    assert by_id[(b, NULL_VERSION)].inline == b""


def test_iter_versions_pages_through_many(store: MetadataStore) -> None:
    name = bucket(store, versioning=ENABLED)
    for i in range(600):
        store.put_object(obj(name, f"k{i % 7}", f"v{i:04d}"))
    seen = [v.version_id for v in store.iter_versions()]
    assert sorted(seen) == [f"v{i:04d}" for i in range(600)]


def test_iter_parts_yields_every_part_with_its_upload(store: MetadataStore) -> None:
    name = bucket(store)
    store.create_upload(upload(name, "k1", "u1"))
    store.create_upload(upload(name, "k2", "u2"))
    store.create_upload(upload(name, "k3", "empty"))
    for number in range(1, 301):
        store.put_part(name, "u1", part(number, f"{number:032x}"))
    store.put_part(name, "u2", part(7, "a" * 32))
    seen = [(u.upload_id, u.key, u.bucket, p.part_number, p.blob_id) for u, p in
            store.iter_parts()]  # fmt: skip
    expected = [("u1", "k1", name, n, f"{n:032x}") for n in range(1, 301)]
    assert sorted(seen) == sorted([*expected, ("u2", "k2", name, 7, "a" * 32)])
    store.abort_upload(name, "u1")
    assert [u.upload_id for u, _ in store.iter_parts()] == ["u2"]


def test_a_sound_store_passes_its_integrity_check(store: MetadataStore) -> None:
    name = bucket(store, versioning=ENABLED)
    store.put_object(obj(name, "k", "v1", blobs=("1" * 32,)))
    store.create_upload(upload(name, "k", "u"))
    store.put_part(name, "u", part(1, "2" * 32))
    assert store.check_integrity() == []


# === multipart ==================================================================================
def test_upload_round_trip(store: MetadataStore) -> None:
    with pytest.raises(NoSuchBucket):
        store.create_upload(upload("missing", "k", "u"))
    name = bucket(store)
    full = MultipartUpload(
        "u1",
        name,
        "dir/ké\x00y",
        at(3),
        owner_id="o",
        storage_class="GLACIER",
        headers={"content-type": "image/png"},
        user_metadata={"a": "b"},
        checksum_algorithm=ChecksumAlgorithm.CRC32,
        checksum_type=ChecksumType.COMPOSITE,
    )
    store.create_upload(full)
    assert store.get_upload(name, "u1") == full
    assert store.get_upload(name, "other") is None
    assert store.get_upload("missing", "u1") is None


def test_parts_add_replace_list(store: MetadataStore) -> None:
    name = bucket(store)
    with pytest.raises(NoSuchUpload):
        store.put_part(name, "nope", part(1, "a" * 32))
    with pytest.raises(NoSuchUpload):
        store.list_parts(name, "nope")
    with pytest.raises(NoSuchUpload):
        store.get_parts(name, "nope")
    store.create_upload(upload(name, "k", "u1"))
    for number in (3, 1, 2):
        assert store.put_part(name, "u1", part(number, f"{number}" * 32)) == ()
    assert store.put_part(name, "u1", part(2, "9" * 32, size=7)) == ("2" * 32,)
    assert [(p.part_number, p.blob_id, p.size) for p in store.get_parts(name, "u1")] == [
        (1, "1" * 32, 5),
        (2, "9" * 32, 7),
        (3, "3" * 32, 5),
    ]
    first = store.list_parts(name, "u1", limit=2)
    assert [p.part_number for p in first.parts] == [1, 2]
    assert first.is_truncated and first.next_part_number_marker == 2
    rest = store.list_parts(name, "u1", part_number_marker=2, limit=2)
    assert [p.part_number for p in rest.parts] == [3]
    assert not rest.is_truncated and rest.next_part_number_marker is None
    assert store.list_parts(name, "u1", limit=0).parts == ()
    assert store.get_parts(name, "u1")[0] == part(1, "1" * 32)


def test_complete_upload(store: MetadataStore) -> None:
    name = bucket(store)
    with pytest.raises(NoSuchUpload):
        store.complete_upload(name, "nope", obj(name, "k"))
    store.put_object(obj(name, "k", blobs=("0" * 32,)))
    store.create_upload(upload(name, "k", "u1"))
    for number in (1, 2, 3):
        store.put_part(name, "u1", part(number, f"{number}" * 32))
    version = obj(name, "k", blobs=("1" * 32, "3" * 32))
    result = store.complete_upload(name, "u1", version)
    assert result.version is not None and result.version.segments == version.segments
    assert sorted(result.freed_blobs) == ["0" * 32, "2" * 32]
    assert store.get_upload(name, "u1") is None
    with pytest.raises(NoSuchUpload):
        store.get_parts(name, "u1")
    assert store.referenced_blobs(["1" * 32, "2" * 32, "3" * 32]) == {"1" * 32, "3" * 32}
    with pytest.raises(NoSuchUpload):
        store.complete_upload(name, "u1", version)


def test_complete_upload_condition_failure_keeps_the_upload(store: MetadataStore) -> None:
    name = bucket(store)
    store.put_object(obj(name, "k"))
    store.create_upload(upload(name, "k", "u1"))
    store.put_part(name, "u1", part(1, "1" * 32))
    with pytest.raises(PreconditionFailed):
        store.complete_upload(
            name,
            "u1",
            obj(name, "k", blobs=("1" * 32,)),
            condition=WriteCondition(if_none_match_any=True),
        )
    assert store.get_upload(name, "u1") is not None
    assert [p.blob_id for p in store.get_parts(name, "u1")] == ["1" * 32]


def test_abort_upload(store: MetadataStore) -> None:
    name = bucket(store)
    with pytest.raises(NoSuchUpload):
        store.abort_upload(name, "nope")
    store.create_upload(upload(name, "k", "u1"))
    store.put_part(name, "u1", part(1, "1" * 32))
    store.put_part(name, "u1", part(2, "2" * 32))
    assert sorted(store.abort_upload(name, "u1")) == ["1" * 32, "2" * 32]
    assert store.get_upload(name, "u1") is None
    with pytest.raises(NoSuchUpload):
        store.abort_upload(name, "u1")


def test_list_uploads_by_key_then_initiation(store: MetadataStore) -> None:
    name = bucket(store)
    for key, upload_id, when in [("b", "u1", 5), ("a", "u2", 9), ("b", "u3", 1), ("a/x", "u4", 0)]:
        store.create_upload(upload(name, key, upload_id, when))
    page = store.list_uploads(name)
    assert [(u.key, u.upload_id) for u in page.uploads] == [
        ("a", "u2"),
        ("a/x", "u4"),
        ("b", "u3"),
        ("b", "u1"),
    ]
    first = store.list_uploads(name, limit=3)
    assert first.is_truncated and (first.next_key_marker, first.next_upload_id_marker) == (
        "b",
        "u3",
    )
    rest = store.list_uploads(name, key_marker="b", upload_id_marker="u3")
    assert [u.upload_id for u in rest.uploads] == ["u1"] and not rest.is_truncated
    assert [u.upload_id for u in store.list_uploads(name, key_marker="a").uploads] == [
        "u4",
        "u3",
        "u1",
    ]
    rolled = store.list_uploads(name, delimiter="/")
    assert rolled.common_prefixes == ("a/",)
    assert [u.upload_id for u in rolled.uploads] == ["u2", "u3", "u1"]


# === listings: examples =========================================================================
def test_list_objects_with_delimiter(store: MetadataStore) -> None:
    name = bucket(store)
    for key in ["a", "b/1", "b/2", "b/c/3", "c", "d/", "d//e", "é/1", "\x00x"]:
        store.put_object(obj(name, key))
    page = store.list_objects(name, delimiter="/")
    assert keys_of(page.objects) == ["\x00x", "a", "c"]
    assert page.common_prefixes == ("b/", "d/", "é/")
    assert not page.is_truncated and page.next_marker is None
    inner = store.list_objects(name, prefix="b/", delimiter="/")
    assert keys_of(inner.objects) == ["b/1", "b/2"] and inner.common_prefixes == ("b/c/",)
    double = store.list_objects(name, prefix="d/", delimiter="/")
    assert keys_of(double.objects) == ["d/"] and double.common_prefixes == ("d//",)


def test_list_objects_pages_with_common_prefixes(store: MetadataStore) -> None:
    name = bucket(store)
    for key in ["a", "b/1", "b/2", "c", "d/1", "e"]:
        store.put_object(obj(name, key))
    first = store.list_objects(name, delimiter="/", limit=2)
    assert keys_of(first.objects) == ["a"] and first.common_prefixes == ("b/",)
    assert first.is_truncated and first.next_marker == "b/"
    second = store.list_objects(name, delimiter="/", limit=2, start_after="b/")
    assert keys_of(second.objects) == ["c"] and second.common_prefixes == ("d/",)
    assert second.next_marker == "d/"
    third = store.list_objects(name, delimiter="/", limit=2, start_after="d/")
    assert keys_of(third.objects) == ["e"] and not third.is_truncated
    inside = store.list_objects(name, delimiter="/", start_after="b/1")
    assert inside.common_prefixes == ("d/",)  # a marker inside b/ skips b/
    assert store.list_objects(name, limit=0) == store.list_objects(name, prefix="zzz")


def test_list_objects_multi_character_delimiter(store: MetadataStore) -> None:
    name = bucket(store)
    for key in ["x--y--z", "x--w", "x-y", "x---", "plain"]:
        store.put_object(obj(name, key))
    page = store.list_objects(name, delimiter="--")
    assert page.common_prefixes == ("x--",)
    assert keys_of(page.objects) == ["plain", "x-y"]
    deeper = store.list_objects(name, prefix="x--", delimiter="--")
    assert keys_of(deeper.objects) == ["x---", "x--w"]  # "-" after the prefix is not "--"
    assert deeper.common_prefixes == ("x--y--",)


def test_list_versions_markers(store: MetadataStore) -> None:
    name = bucket(store, versioning=ENABLED)
    for key, version_id in [("a", "a1"), ("a", "a2"), ("a", "a3"), ("b", "b1"), ("c/d", "c1")]:
        store.put_object(obj(name, key, version_id))
    everything = store.list_versions(name)
    assert [(v.key, v.version_id) for v in everything.versions] == [
        ("a", "a3"),
        ("a", "a2"),
        ("a", "a1"),
        ("b", "b1"),
        ("c/d", "c1"),
    ]
    page = store.list_versions(name, limit=2)
    assert page.is_truncated
    assert (page.next_key_marker, page.next_version_id_marker) == ("a", "a2")
    rest = store.list_versions(name, key_marker="a", version_id_marker="a2", delimiter="/")
    assert [v.version_id for v in rest.versions] == ["a1", "b1"]
    assert rest.common_prefixes == ("c/",)
    after_key = store.list_versions(name, key_marker="a")
    assert [v.version_id for v in after_key.versions] == ["b1", "c1"]
    unknown = store.list_versions(name, key_marker="a", version_id_marker="zz")
    assert [v.version_id for v in unknown.versions] == ["b1", "c1"]


# === listings: properties =======================================================================
# Keys are built from a few segments over an alphabet full of the troublemakers: delimiters
# ("/", "//", "-"), "..", "+", "%", NUL, non-ASCII of every UTF-8 length, so that keys share
# prefixes, differ only after a delimiter, and sort differently as bytes than as naive ASCII.
_PIECES = ["a", "b", "/", "//", "-", "..", "+", "%", "\x00", "é", "ø", "中", "😀", "~", " ", "../"]
_segment = st.lists(st.sampled_from(_PIECES), min_size=1, max_size=3).map("".join)
_keys = st.lists(_segment, min_size=1, max_size=4).map("/".join)
_delimiters = st.sampled_from(["/", "/", "/", "", "//", "-", "a", "/a", "é", "+%", "😀/"])
_limits = st.sampled_from([1, 1, 2, 2, 3, 5])


def _marker_from(keys: list[str]) -> st.SearchStrategy[str]:
    """Markers: none, an existing key, half of one (often a common prefix), or anything."""
    halves = st.sampled_from(keys).map(lambda k: k[: len(k) // 2])
    return st.one_of(st.just(""), st.just(""), st.sampled_from(keys), halves, _keys)


def _prefix_from(keys: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.just(""),
        st.just(""),
        st.sampled_from(keys).map(lambda k: k[: len(k) // 2]),
        st.sampled_from(keys).map(lambda k: k.split("/")[0] + "/"),
        _segment,
    )


@dataclass(frozen=True)
class Entry:
    """One line of a listing: an object/version/upload (``ident`` set) or a common prefix."""

    name: str
    ident: str | None = None


def _b(text: str) -> bytes:
    return text.encode("utf-8")


def brute_force(items: list[tuple[str, str]], prefix: str, delimiter: str) -> list[Entry]:
    """The whole listing, no markers: ``items`` are (key, ident) already in listing order."""
    out: list[Entry] = []
    for key, ident in items:
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix) :]
        if delimiter and delimiter in rest:
            common = prefix + rest[: rest.index(delimiter) + len(delimiter)]
            if not out or out[-1] != Entry(common):
                out.append(Entry(common))
        else:
            out.append(Entry(key, ident))
    return out


def after_markers(full: list[Entry], key_marker: str, ident_marker: str) -> list[Entry]:
    """What S3 lists after (key_marker, ident_marker): entries whose name sorts after the key
    marker, plus, within the marker key itself, those after the marked ident."""
    marked = [i for i, e in enumerate(full) if e.name == key_marker and e.ident == ident_marker]
    position = marked[0] if marked and ident_marker else None
    return [
        e
        for i, e in enumerate(full)
        if _b(e.name) > _b(key_marker)
        or not key_marker
        or (position is not None and e.ident is not None and e.name == key_marker and i > position)
    ]


def object_entries(
    page_objects: tuple[ObjectVersion, ...], prefixes: tuple[str, ...]
) -> list[Entry]:
    entries = [Entry(o.key, o.version_id) for o in page_objects] + [Entry(p) for p in prefixes]
    return sorted(entries, key=lambda e: _b(e.name))


def walk_objects(
    store: MetadataStore, name: str, prefix: str, delimiter: str, start: str, limit: int
) -> list[Entry]:
    """Every page from ``start`` on, concatenated; checks the paging invariants on the way."""
    seen: list[Entry] = []
    marker_now = start
    for _ in range(1000):
        page = store.list_objects(
            name, prefix=prefix, delimiter=delimiter, start_after=marker_now, limit=limit
        )
        entries = object_entries(page.objects, page.common_prefixes)
        seen.extend(entries)
        if not page.is_truncated:
            assert page.next_marker is None and len(entries) <= limit
            return seen
        assert len(entries) == limit and page.next_marker == entries[-1].name
        marker_now = page.next_marker
    raise AssertionError("listing never ended")


def version_entries(
    store: MetadataStore, name: str, **query: str | int
) -> Iterator[tuple[list[Entry], bool, str | None, str | None]]:
    """Pages of list_versions in listing order, walking the next markers."""
    key_marker = str(query.pop("key_marker", ""))
    id_marker = str(query.pop("version_id_marker", ""))
    limit = int(query.pop("limit"))
    for _ in range(1000):
        page = store.list_versions(
            name,
            prefix=str(query["prefix"]),
            delimiter=str(query["delimiter"]),
            key_marker=key_marker,
            version_id_marker=id_marker,
            limit=limit,
        )
        entries = [Entry(v.key, v.version_id) for v in page.versions]
        entries += [Entry(p) for p in page.common_prefixes]
        entries.sort(key=lambda e: _b(e.name))  # stable: versions of a key stay newest first
        yield entries, page.is_truncated, page.next_key_marker, page.next_version_id_marker
        if not page.is_truncated:
            return
        assert len(entries) == limit
        key_marker, id_marker = page.next_key_marker or "", page.next_version_id_marker or ""
    raise AssertionError("listing never ended")


def _describe(expected: list[Entry], limit: int) -> None:
    """Label examples (see ``--hypothesis-show-statistics``) to confirm the search reaches
    several pages and common prefixes."""
    event("several pages" if len(expected) > limit else "one page")
    event("with common prefixes" if any(e.ident is None for e in expected) else "no prefixes")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MetadataStore, ...]]:
    """A memory store and a SQLite store that every property example writes the same data to
    (one fresh bucket per example)."""
    sqlite = SqliteMetadataStore(tmp_path_factory.mktemp("props") / "metadata.db")
    yield MemoryMetadataStore(), sqlite
    sqlite.close()


_bucket_names = (f"prop-{n}" for n in itertools.count())
_property = settings(
    max_examples=int(os.environ.get("ONSHORE_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _load(
    stores: tuple[MetadataStore, ...], writes: list[tuple[str, bool]]
) -> tuple[str, dict[str, list[tuple[str, bool]]]]:
    """Write ``writes`` (key, is_delete) to a new ENABLED bucket in every store; return the
    bucket and the model: key -> [(version id, is_delete_marker)] newest first."""
    name = next(_bucket_names)
    model: dict[str, list[tuple[str, bool]]] = {}
    for s in stores:
        bucket(s, name, versioning=ENABLED)
    for n, (key, is_delete) in enumerate(writes):
        version_id = f"v{n:04d}"
        for s in stores:
            if is_delete:
                s.delete_object(name, key, version_id=None, marker=marker(name, key, version_id))
            else:
                s.put_object(obj(name, key, version_id))
        model.setdefault(key, []).insert(0, (version_id, is_delete))
    return name, model


# (key, is_delete): one write in three is a delete (a delete marker, in an ENABLED bucket)
_writes = st.lists(st.tuples(_keys, st.sampled_from([False, False, True])), min_size=2, max_size=30)


@_property
@given(data=st.data(), writes=_writes, delimiter=_delimiters, limit=_limits)
def test_property_list_objects(
    pair: tuple[MetadataStore, ...],
    data: st.DataObject,
    writes: list[tuple[str, bool]],
    delimiter: str,
    limit: int,
) -> None:
    name, model = _load(pair, writes)
    keys = sorted(model, key=_b)
    prefix = data.draw(_prefix_from(keys), label="prefix")
    start = data.draw(_marker_from(keys), label="start_after")
    current = [(k, model[k][0][0]) for k in keys if not model[k][0][1]]
    expected = after_markers(brute_force(current, prefix, delimiter), start, "")
    _describe(expected, limit)
    memory, sqlite = pair
    for s in pair:
        assert walk_objects(s, name, prefix, delimiter, start, limit) == expected
    assert sqlite.list_objects(
        name, prefix=prefix, delimiter=delimiter, start_after=start, limit=limit
    ) == memory.list_objects(
        name, prefix=prefix, delimiter=delimiter, start_after=start, limit=limit
    )


@_property
@given(data=st.data(), writes=_writes, delimiter=_delimiters, limit=_limits)
def test_property_list_versions(
    pair: tuple[MetadataStore, ...],
    data: st.DataObject,
    writes: list[tuple[str, bool]],
    delimiter: str,
    limit: int,
) -> None:
    name, model = _load(pair, writes)
    keys = sorted(model, key=_b)
    prefix = data.draw(_prefix_from(keys), label="prefix")
    key_marker = data.draw(_marker_from(keys), label="key_marker")
    ids = [vid for vid, _ in model.get(key_marker, [])]
    id_marker = data.draw(st.sampled_from(["", "nope", *ids]), label="version_id_marker")
    items = [(k, vid) for k in keys for vid, _ in model[k]]
    expected = after_markers(brute_force(items, prefix, delimiter), key_marker, id_marker)
    _describe(expected, limit)
    query: dict[str, str | int] = {
        "prefix": prefix,
        "delimiter": delimiter,
        "key_marker": key_marker,
        "version_id_marker": id_marker,
        "limit": limit,
    }
    pages = [list(version_entries(s, name, **dict(query))) for s in pair]
    for walked in pages:
        assert [e for entries, *_ in walked for e in entries] == expected
    memory, sqlite = pair
    assert pages[0] == pages[1]
    assert sqlite.list_versions(
        name, prefix=prefix, delimiter=delimiter, key_marker=key_marker,
        version_id_marker=id_marker, limit=limit,
    ) == memory.list_versions(
        name, prefix=prefix, delimiter=delimiter, key_marker=key_marker,
        version_id_marker=id_marker, limit=limit,
    )  # fmt: skip
    flags = {(v.key, v.version_id): (v.is_latest, v.is_delete_marker)
             for v in sqlite.list_versions(name, limit=10000).versions}  # fmt: skip
    assert flags == {(k, vid): (i == 0, dm) for k in model for i, (vid, dm) in enumerate(model[k])}


@_property
@given(
    data=st.data(),
    uploads=st.lists(st.tuples(_keys, st.integers(0, 3)), min_size=2, max_size=25),
    delimiter=_delimiters,
    limit=_limits,
)
def test_property_list_uploads(
    pair: tuple[MetadataStore, ...],
    data: st.DataObject,
    uploads: list[tuple[str, int]],
    delimiter: str,
    limit: int,
) -> None:
    name = next(_bucket_names)
    for s in pair:
        bucket(s, name)
    for n, (key, when) in enumerate(uploads):
        for s in pair:
            s.create_upload(upload(name, key, f"u{n:04d}", when))
    ordered = sorted(
        ((key, f"u{n:04d}") for n, (key, _) in enumerate(uploads)),
        key=lambda item: (_b(item[0]), uploads[int(item[1][1:])][1], item[1]),
    )
    keys = sorted({k for k, _ in uploads}, key=_b)
    prefix = data.draw(_prefix_from(keys), label="prefix")
    key_marker = data.draw(_marker_from(keys), label="key_marker")
    mine = [u for k, u in ordered if k == key_marker]
    id_marker = data.draw(st.sampled_from(["", "nope", *mine]), label="upload_id_marker")
    expected = after_markers(brute_force(ordered, prefix, delimiter), key_marker, id_marker)
    _describe(expected, limit)
    for s in pair:
        walked: list[Entry] = []
        km, um = key_marker, id_marker
        for _ in range(1000):
            page = s.list_uploads(
                name,
                prefix=prefix,
                delimiter=delimiter,
                key_marker=km,
                upload_id_marker=um,
                limit=limit,
            )
            entries = [Entry(u.key, u.upload_id) for u in page.uploads]
            entries += [Entry(p) for p in page.common_prefixes]
            walked += sorted(entries, key=lambda e: _b(e.name))
            if not page.is_truncated:
                break
            assert len(entries) == limit
            km, um = page.next_key_marker or "", page.next_upload_id_marker or ""
        assert walked == expected
    memory, sqlite = pair
    assert sqlite.list_uploads(
        name, prefix=prefix, delimiter=delimiter, key_marker=key_marker,
        upload_id_marker=id_marker, limit=limit,
    ) == memory.list_uploads(
        name, prefix=prefix, delimiter=delimiter, key_marker=key_marker,
        upload_id_marker=id_marker, limit=limit,
    )  # fmt: skip


# === SQLite specifics ===========================================================================
@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "metadata.db"


def test_sqlite_survives_reopen_and_records_schema(sqlite_path: Path) -> None:
    first = SqliteMetadataStore(sqlite_path)
    name = bucket(first, versioning=ENABLED)
    first.put_object(obj(name, "k", "v1"))
    first.put_bucket_config(name, "policy", "{}")
    first.close()
    first.close()  # idempotent
    second = SqliteMetadataStore(sqlite_path)
    try:
        assert second.schema_version == sqlite_schema.migrations()[-1].version >= 1
        got = second.get_object(name, "k")
        assert got is not None and got.version_id == "v1"
        assert second.get_bucket_config(name, "policy") == "{}"
    finally:
        second.close()


def test_sqlite_deleting_inline_objects_adds_little_to_the_log(sqlite_path: Path) -> None:
    """A delete writes the pages its rows were on, not zeros over the freed pages of the inline
    bodies (``secure_delete = FAST``; SQLite as Debian builds it zeroes them by default): on a
    full disk the reserve must hold the log of a batch of deletes, and a delete's fsync should
    not carry its object's size again."""
    store = SqliteMetadataStore(sqlite_path)
    wal = sqlite_path.with_name(sqlite_path.name + "-wal")
    try:
        name = bucket(store)
        body = os.urandom(60 * 1024)
        keys = [f"k{n:02d}" for n in range(20)]
        for key in keys:
            store.put_object(obj(name, key, data=body))
        before = wal.stat().st_size  # under the auto-checkpoint's 4 MiB: the log only grows
        for key in keys:
            store.delete_object(name, key, version_id=None, marker=marker(name, key))
        grown = wal.stat().st_size - before
    finally:
        store.close()
    assert grown < len(keys) * len(body) / 2, f"{grown} bytes logged to delete {len(keys)}"


def _bytes_written() -> int:
    """What this process has passed to write system calls so far (Linux)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


def test_sqlite_job_savepoints_keep_page_originals_in_memory(sqlite_path: Path) -> None:
    """A writer job runs in a savepoint, for which SQLite keeps the original of each page the
    job changes. Kept in memory (``temp_store = MEMORY``), a job rewriting ~100 pages writes
    them once, to the log; spilled to a temporary file (SQLite's default past 64 KiB) it wrote
    them twice. A failing job is still rolled back alone."""
    if not Path("/proc/self/io").exists():
        pytest.skip("needs Linux's /proc/self/io")
    store = SqliteMetadataStore(sqlite_path)
    try:

        def fill(conn: sqlite3.Connection) -> int:
            before = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute("CREATE TABLE scratch (x TEXT NOT NULL)")
            rows = [(os.urandom(1000).hex(),) for _ in range(200)]
            conn.executemany("INSERT INTO scratch VALUES (?)", rows)
            return int(conn.execute("PRAGMA page_count").fetchone()[0] - before)

        pages = store.writer.submit(fill)
        assert pages >= 80
        before = _bytes_written()
        store.writer.submit(lambda conn: conn.execute("UPDATE scratch SET x = upper(x)"))
        written = _bytes_written() - before

        def fail(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE scratch SET x = lower(x)")
            raise RuntimeError("refused")

        with pytest.raises(RuntimeError, match="refused"):
            store.writer.submit(fail)
        lower = store.writer.submit(
            lambda conn: conn.execute("SELECT count(*) FROM scratch WHERE x = lower(x)").fetchone()
        )
    finally:
        store.close()
    assert written < 1.5 * pages * 4096, f"{written} bytes written to rewrite {pages} pages"
    assert lower == (0,)  # the failed job's update was rolled back


def test_sqlite_log_is_cut_back_after_a_burst(
    sqlite_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write-ahead log grows to hold the most written between two checkpoints; once it
    starts over, it is cut back to ``WAL_SIZE_LIMIT`` rather than keeping that size."""
    monkeypatch.setattr(sqlite_schema, "WAL_SIZE_LIMIT", 256 * 1024)
    store = SqliteMetadataStore(sqlite_path)
    wal = sqlite_path.with_name(sqlite_path.name + "-wal")
    try:

        def burst(conn: sqlite3.Connection) -> None:
            conn.execute("CREATE TABLE scratch (x BLOB NOT NULL)")
            conn.executemany(
                "INSERT INTO scratch VALUES (?)", [(os.urandom(4000),) for _ in range(1000)]
            )

        store.writer.submit(burst)  # its commit checkpoints (past 1,000 pages of log)
        grown = wal.stat().st_size
        # the next write starts the log over, from its beginning
        store.writer.submit(lambda conn: conn.execute("CREATE TABLE later (x)"))
        after = wal.stat().st_size
    finally:
        store.close()
    assert grown > 4 * 1024 * 1024
    assert after <= 256 * 1024, f"log still {after} bytes"


def test_sqlite_integrity_check_reports_damage(sqlite_path: Path) -> None:
    store = SqliteMetadataStore(sqlite_path)
    name = bucket(store)
    store.put_object(obj(name, "k"))
    conn = sqlite_schema.connect(str(sqlite_path), writer=True)
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("UPDATE versions SET bucket_id = 999")
    conn.close()
    try:
        problems = store.check_integrity()
    finally:
        store.close()
    assert problems and "versions" in problems[0] and "buckets" in problems[0]


def test_sqlite_in_use_sees_other_processes_connections(sqlite_path: Path) -> None:
    """``in_use`` is how ``onshore fsck`` refuses to run beside a server: any process holding
    the store open is seen; a closed store, or none, is not."""
    import subprocess
    import sys

    SqliteMetadataStore(sqlite_path).close()
    assert not sqlite_schema.in_use(str(sqlite_path))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from onshore.storage.sqlite import SqliteMetadataStore\n"
            "store = SqliteMetadataStore(sys.argv[1]); print('open', flush=True)\n"
            "sys.stdin.read()",
            str(sqlite_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"open\n"
        assert sqlite_schema.in_use(str(sqlite_path))
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)
    assert not sqlite_schema.in_use(str(sqlite_path))


def test_sqlite_refuses_a_newer_schema(sqlite_path: Path) -> None:
    SqliteMetadataStore(sqlite_path).close()
    conn = sqlite_schema.connect(str(sqlite_path), writer=True)
    conn.execute("INSERT INTO schema_version VALUES (9999, 'future', 0)")
    conn.close()
    with pytest.raises(RuntimeError, match="newer"):
        SqliteMetadataStore(sqlite_path)


def test_sqlite_concurrent_first_opens_migrate_once(sqlite_path: Path) -> None:
    """Server workers open a new database at the same moment: one migrates, none fails."""
    stores = _concurrently(6, lambda n: SqliteMetadataStore(sqlite_path))
    try:
        assert all(isinstance(s, SqliteMetadataStore) for s in stores)
        conn = sqlite_schema.connect(str(sqlite_path), writer=False)
        applied = conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0]
        assert applied == len(sqlite_schema.migrations())  # each applied exactly once
        conn.close()
    finally:
        for opened in stores:
            if isinstance(opened, SqliteMetadataStore):
                opened.close()


def test_migration_statements_split_outside_comments_and_strings() -> None:
    script = (
        "-- a; comment\nCREATE TABLE t (x TEXT DEFAULT ';');\n\n"
        "INSERT INTO t VALUES ('a;b');\n-- end\n"
    )
    assert sqlite_schema.statements(script) == [
        "-- a; comment\nCREATE TABLE t (x TEXT DEFAULT ';');",
        "INSERT INTO t VALUES ('a;b');",
    ]
    with pytest.raises(ValueError):
        sqlite_schema.statements("CREATE TABLE t (x)")


def test_sqlite_pragmas(sqlite_path: Path) -> None:
    store = SqliteMetadataStore(sqlite_path)
    try:
        conn = sqlite_schema.connect(str(sqlite_path), writer=True)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()
    finally:
        store.close()


def _concurrently(count: int, action: Callable[[int], object]) -> list[object]:
    barrier = threading.Barrier(count)

    def run(n: int) -> object:
        barrier.wait()
        try:
            return action(n)
        except S3Error as error:
            return error

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_group_commit_batches_and_isolates_failures(sqlite_path: Path) -> None:
    store = SqliteMetadataStore(sqlite_path)
    try:
        name = bucket(store)
        once = WriteCondition(if_none_match_any=True)
        results = _concurrently(
            32, lambda n: store.put_object(obj(name, f"k{n % 4}", data=b"%d" % n), condition=once)
        )
        failures = [r for r in results if isinstance(r, PreconditionFailed)]
        assert len(failures) == 28  # exactly one winner per key, whatever the batching
        assert keys_of(store.list_objects(name).objects) == ["k0", "k1", "k2", "k3"]
        assert store.writer.batches < store.writer.jobs  # some batch held several writes
    finally:
        store.close()


def test_writer_rolls_back_only_the_failing_job(tmp_path: Path) -> None:
    conn = sqlite_schema.connect(str(tmp_path / "w.db"), writer=True)
    conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
    writer = GroupCommitWriter(conn)
    gate = threading.Event()

    def job(n: int) -> Callable[[sqlite3.Connection], int]:
        def work(c: sqlite3.Connection) -> int:
            c.execute("INSERT INTO t VALUES (?)", (n,))
            if n % 3 == 0:
                raise PreconditionFailed() if n % 2 else ValueError(n)
            return n

        return work

    with ThreadPoolExecutor(13) as pool:
        # hold the writer busy so the next twelve jobs queue up and form one batch
        blocker = pool.submit(writer.submit, lambda c: gate.wait(10))
        time.sleep(0.05)
        futures = [pool.submit(writer.submit, job(n)) for n in range(1, 13)]
        time.sleep(0.05)
        gate.set()
        blocker.result()
        outcomes = {n: f.exception() or f.result() for n, f in enumerate(futures, 1)}
    assert writer.batches <= 3  # the blocker's commit, then the twelve share one (or two)
    assert isinstance(outcomes[3], PreconditionFailed) and isinstance(outcomes[6], ValueError)
    kept = [n for n in range(1, 13) if n % 3]
    assert [outcomes[n] for n in kept] == kept
    writer.close()
    writer.close()
    with pytest.raises(WriterClosed):
        writer.submit(lambda c: None)
    check = sqlite_schema.connect(str(tmp_path / "w.db"), writer=False)
    assert [row[0] for row in check.execute("SELECT n FROM t ORDER BY n")] == kept
    check.close()


def _one_batch(
    writer: GroupCommitWriter, jobs: list[Callable[[sqlite3.Connection], object]]
) -> list[object]:
    """Run ``jobs`` in one batch (the writer is held busy while they queue); their outcomes."""
    gate = threading.Event()
    with ThreadPoolExecutor(len(jobs) + 1) as pool:
        blocker = pool.submit(writer.submit, lambda c: gate.wait(10))
        time.sleep(0.05)
        futures = [pool.submit(writer.submit, job) for job in jobs]
        time.sleep(0.05)
        batches = writer.batches
        gate.set()
        blocker.result()
        outcomes = [f.exception() or f.result() for f in futures]
    # the blocker's batch, then one for all of them (a failed batch is not counted)
    assert writer.batches - batches <= 2
    return outcomes


def test_values_staged_by_a_batch_reach_the_hook_before_its_commit(tmp_path: Path) -> None:
    """What a job stages is handed to ``before_commit`` inside the batch's transaction; a job
    that fails takes what it staged with it."""
    conn = sqlite_schema.connect(str(tmp_path / "w.db"), writer=True)
    conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
    conn.execute("CREATE TABLE staged (n INTEGER)")
    writer = GroupCommitWriter(conn)
    seen: list[list[object]] = []

    def hook(c: sqlite3.Connection, values: list[object]) -> None:
        seen.append(values)
        c.executemany("INSERT INTO staged VALUES (?)", [(v,) for v in values])

    writer.before_commit = hook

    def job(n: int) -> Callable[[sqlite3.Connection], int]:
        def work(c: sqlite3.Connection) -> int:
            c.execute("INSERT INTO t VALUES (?)", (n,))
            writer.stage(n)
            if n == 2:
                raise PreconditionFailed()
            return n

        return work

    outcomes = _one_batch(writer, [job(n) for n in (1, 2, 3)])
    assert outcomes[0] == 1 and isinstance(outcomes[1], PreconditionFailed) and outcomes[2] == 3
    assert seen == [[1, 3]]
    writer.close()
    check = sqlite_schema.connect(str(tmp_path / "w.db"), writer=False)
    assert [r[0] for r in check.execute("SELECT n FROM staged ORDER BY n")] == [1, 3]
    check.close()


def test_a_failing_before_commit_hook_fails_the_whole_batch(tmp_path: Path) -> None:
    """The hook's work is part of the batch: if it fails, no change of the batch is kept and
    every job of it hears the error (the audit trail relies on this: no change without its
    record)."""
    conn = sqlite_schema.connect(str(tmp_path / "w.db"), writer=True)
    conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
    writer = GroupCommitWriter(conn)

    def hook(c: sqlite3.Connection, values: list[object]) -> None:
        raise OSError("the record cannot be written")

    writer.before_commit = hook

    def job(n: int, stage: bool) -> Callable[[sqlite3.Connection], int]:
        def work(c: sqlite3.Connection) -> int:
            c.execute("INSERT INTO t VALUES (?)", (n,))
            if stage:
                writer.stage(n)
            return n

        return work

    outcomes = _one_batch(writer, [job(1, False), job(2, True)])
    assert all(isinstance(o, OSError) for o in outcomes)
    assert writer.submit(job(3, False)) == 3  # nothing staged: the hook is not called
    writer.close()
    check = sqlite_schema.connect(str(tmp_path / "w.db"), writer=False)
    assert [r[0] for r in check.execute("SELECT n FROM t")] == [3]
    check.close()


def test_close_drains_pending_writes(sqlite_path: Path) -> None:
    store = SqliteMetadataStore(sqlite_path)
    name = bucket(store)
    threads = [
        threading.Thread(target=store.put_object, args=(obj(name, f"k{n}"),)) for n in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    reopened = SqliteMetadataStore(sqlite_path)
    try:
        assert reopened.count_objects(name) == 20
    finally:
        reopened.close()


def test_sqlite_reads_during_writes(sqlite_path: Path) -> None:
    store = SqliteMetadataStore(sqlite_path)
    try:
        name = bucket(store)
        stop = threading.Event()
        seen: list[list[int]] = [[], [], []]

        def reader(counts: list[int]) -> None:
            while not stop.is_set():
                counts.append(len(store.list_objects(name).objects))

        threads = [threading.Thread(target=reader, args=(counts,)) for counts in seen]
        for thread in threads:
            thread.start()
        _concurrently(8, lambda n: [store.put_object(obj(name, f"{n}/{i}")) for i in range(10)])
        stop.set()
        for thread in threads:
            thread.join()
        for counts in seen:  # a reader never sees a committed write disappear
            assert counts == sorted(counts)
        assert store.count_objects(name) == 80
    finally:
        store.close()


# === scale (ONSHORE_SLOW=1) =====================================================================
@pytest.mark.slow
def test_group_commit_throughput(sqlite_path: Path) -> None:
    """Durable tiny PUTs from 32 threads; prints writes/s."""
    store = SqliteMetadataStore(sqlite_path)
    try:
        name = bucket(store)
        per_thread = 300
        started = time.perf_counter()
        _concurrently(
            32,
            lambda n: [
                store.put_object(obj(name, f"t{n}/k{i}", data=b"x" * 100))
                for i in range(per_thread)
            ],
        )
        elapsed = time.perf_counter() - started
        rate = 32 * per_thread / elapsed
        writer = store.writer
        print(
            f"\ngroup commit: {rate:,.0f} durable put_object/s from 32 threads "
            f"({writer.jobs / max(writer.batches, 1):.1f} writes per commit)"
        )
        assert rate > 1000
    finally:
        store.close()


def _bulk_load(path: Path, name: str, keys: Iterator[bytes]) -> None:
    """Insert rows straight into the schema (the store's own writer would take minutes)."""
    store = SqliteMetadataStore(path)
    bucket(store, name)
    store.close()
    conn = sqlite_schema.connect(str(path), writer=True)
    bucket_id = conn.execute("SELECT id FROM buckets WHERE name = ?", (name,)).fetchone()[0]
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO versions (bucket_id, object_key, version_id, is_latest, is_delete_marker,"
        " size, etag, last_modified_us, owner_id, storage_class, headers, user_metadata)"
        " VALUES (?, ?, 'null', 1, 0, 5, 'etag', 0, 'o', 'STANDARD', '{}', '{}')",
        ((bucket_id, key) for key in keys),
    )
    conn.execute("COMMIT")
    conn.close()


@pytest.mark.slow
def test_one_million_keys_listing_pages(sqlite_path: Path) -> None:
    """1,000,000 keys under 100,000 prefixes; prints page times (best of three)."""
    _bulk_load(
        sqlite_path,
        "big",
        (b"dir%06d/file%02d" % (d, f) for d in range(100_000) for f in range(10)),
    )
    store = SqliteMetadataStore(sqlite_path)
    cases: dict[str, Callable[[], object]] = {
        "1000 keys, no delimiter": lambda: store.list_objects("big"),
        "1000 keys from 60%": lambda: store.list_objects("big", start_after="dir060000/file05"),
        "1000 common prefixes": lambda: store.list_objects("big", delimiter="/"),
        "1000 common prefixes from 90%": lambda: store.list_objects(
            "big", delimiter="/", start_after="dir090000/"
        ),
        "one prefix's keys, delimiter": lambda: store.list_objects(
            "big", prefix="dir050000/", delimiter="/"
        ),
        "1000 prefixes, list_versions": lambda: store.list_versions(
            "big", delimiter="/", key_marker="dir040000/"
        ),
        "get_object": lambda: store.get_object("big", "dir099999/file09"),
    }
    try:
        timings = {label: _best_of(3, action) for label, action in cases.items()}
        rolled = store.list_objects("big", delimiter="/", start_after="dir090000/")
        assert rolled.common_prefixes[0] == "dir090001/" and len(rolled.common_prefixes) == 1000
        assert rolled.next_marker == "dir091000/"
        print("\n1M keys / 100k prefixes:")
        for label, millis in timings.items():
            print(f"  {label:32s} {millis:8.2f} ms")
        assert timings["1000 common prefixes from 90%"] < 1000
    finally:
        store.close()


def _best_of(runs: int, action: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best * 1000
