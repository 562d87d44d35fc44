"""Object-version and multipart-upload ACL documents, on every MetadataStore: an ACL lives and
dies with its version (or upload), and a replaced null version does not inherit it."""

from __future__ import annotations

from onshore.domain.models import Versioning
from onshore.storage.ports import MetadataStore
from tests.contract.conftest import bucket, marker, obj, upload

DOC = '{"owner":"111122223333","grants":[]}'


def test_object_acl_round_trip_and_latest(store: MetadataStore) -> None:
    name = bucket(store, versioning=Versioning.ENABLED)
    old = store.put_object(obj(name, "k", "v1")).version
    new = store.put_object(obj(name, "k", "v2")).version
    assert old is not None and new is not None
    assert store.get_object_acl(name, "k", "v1") is None
    assert store.put_object_acl(name, "k", "v1", DOC) is True
    assert store.get_object_acl(name, "k", "v1") == DOC
    assert store.get_object_acl(name, "k", None) is None  # v2 is the latest
    store.put_object_acl(name, "k", "v2", DOC.replace("[]", '[["Group","x","READ"]]'))
    assert "Group" in (store.get_object_acl(name, "k", None) or "")
    assert store.put_object_acl(name, "k", "missing", DOC) is False
    assert store.put_object_acl(name, "other", "v1", DOC) is False


def test_object_acl_is_deleted_with_its_version(store: MetadataStore) -> None:
    name = bucket(store, versioning=Versioning.ENABLED)
    store.put_object(obj(name, "k", "v1"))
    store.put_object_acl(name, "k", "v1", DOC)
    store.delete_object(name, "k", version_id="v1", marker=marker(name, "k"))
    assert store.get_object_acl(name, "k", "v1") is None
    # a new version reusing nothing of the old one has no ACL
    store.put_object(obj(name, "k", "v1"))
    assert store.get_object_acl(name, "k", "v1") is None


def test_overwritten_null_version_loses_its_acl(store: MetadataStore) -> None:
    name = bucket(store)
    store.put_object(obj(name, "k"))
    assert store.put_object_acl(name, "k", "null", DOC)
    assert store.get_object_acl(name, "k", None) == DOC
    store.put_object(obj(name, "k"))
    assert store.get_object_acl(name, "k", "null") is None


def test_upload_acl(store: MetadataStore) -> None:
    name = bucket(store)
    assert store.put_upload_acl(name, "nope", DOC) is False
    store.create_upload(upload(name, "k", "u1"))
    assert store.get_upload_acl(name, "u1") is None
    assert store.put_upload_acl(name, "u1", DOC) is True
    assert store.get_upload_acl(name, "u1") == DOC
    store.abort_upload(name, "u1")
    assert store.get_upload_acl(name, "u1") is None
