"""Object-version and multipart-upload ACL documents, on every MetadataStore: an ACL lives and
dies with its version (or upload), a replaced null version does not inherit it, and a new
version's ACL is committed in the transaction that stores the version (``put_object``'s and
``create_upload``'s ``acl``; a bucket's with ``create_bucket``'s ``configs``): no reader ever
sees one without the other, and a refused write stores neither."""

from __future__ import annotations

import threading
import time

import pytest

from onshore.domain.errors import NoSuchBucket, NoSuchUpload, PreconditionFailed
from onshore.domain.models import Bucket, Versioning, WriteCondition
from onshore.storage.ports import MetadataStore
from tests.contract.conftest import T0, bucket, marker, obj, part, upload

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


def test_upload_acl_is_stored_with_the_upload(store: MetadataStore) -> None:
    name = bucket(store)
    store.create_upload(upload(name, "k", "u0"))
    assert store.get_upload_acl(name, "u0") is None
    store.create_upload(upload(name, "k", "u1"), acl=DOC)
    assert store.get_upload_acl(name, "u1") == DOC
    assert store.get_upload_acl(name, "nope") is None
    store.abort_upload(name, "u1")
    assert store.get_upload_acl(name, "u1") is None
    with pytest.raises(NoSuchBucket):
        store.create_upload(upload("missing-bucket", "k", "u2"), acl=DOC)
    assert store.get_upload_acl("missing-bucket", "u2") is None


# --- the version and its ACL in one transaction --------------------------------------------------
OTHER = DOC.replace("[]", '[["Group","http://acs.amazonaws.com/groups/global/AllUsers","READ"]]')


def test_put_object_stores_the_version_with_its_acl(store: MetadataStore) -> None:
    name = bucket(store, versioning=Versioning.ENABLED)
    stored = store.put_object(obj(name, "k", "v1"), acl=DOC).version
    assert stored is not None
    assert store.get_object_acl(name, "k", "v1") == DOC
    assert store.get_object_acl(name, "k", None) == DOC
    store.put_object(obj(name, "k", "v2"))  # ACLs disabled: no document
    assert store.get_object_acl(name, "k", "v2") is None
    assert store.get_object_acl(name, "k", "v1") == DOC


def test_an_overwritten_null_version_gets_the_new_acl(store: MetadataStore) -> None:
    name = bucket(store)
    store.put_object(obj(name, "k"), acl=DOC)
    store.put_object(obj(name, "k"), acl=OTHER)
    assert store.get_object_acl(name, "k", "null") == OTHER
    store.put_object(obj(name, "k"))
    assert store.get_object_acl(name, "k", "null") is None


def test_a_refused_put_stores_neither_version_nor_acl(store: MetadataStore) -> None:
    name = bucket(store, versioning=Versioning.ENABLED)
    store.put_object(obj(name, "k", "v1"), acl=DOC)
    with pytest.raises(PreconditionFailed):
        store.put_object(
            obj(name, "k", "v2"), condition=WriteCondition(if_none_match_any=True), acl=OTHER
        )
    assert store.get_object(name, "k", "v2") is None
    assert store.get_object_acl(name, "k", "v2") is None
    assert store.get_object_acl(name, "k", None) == DOC
    with pytest.raises(NoSuchBucket):
        store.put_object(obj("missing-bucket", "k", "v3"), acl=DOC)
    # a store that kept an orphan ACL row would hand it to a later version with the same id
    store.put_object(obj(name, "k", "v2"))
    assert store.get_object_acl(name, "k", "v2") is None


def test_complete_upload_gives_the_upload_acl_to_the_version(store: MetadataStore) -> None:
    name = bucket(store, versioning=Versioning.ENABLED)
    store.create_upload(upload(name, "k", "u1"), acl=OTHER)
    store.put_part(name, "u1", part(1, "blob-1"))
    done = store.complete_upload(name, "u1", obj(name, "k", "v1", blobs=("blob-1",)))
    assert done.version is not None
    assert store.get_object_acl(name, "k", "v1") == OTHER
    assert store.get_upload_acl(name, "u1") is None
    # without an upload ACL the version has none
    store.create_upload(upload(name, "k", "u2"))
    store.put_part(name, "u2", part(1, "blob-2"))
    store.complete_upload(name, "u2", obj(name, "k", "v2", blobs=("blob-2",)))
    assert store.get_object_acl(name, "k", "v2") is None
    assert store.get_object_acl(name, "k", "v1") == OTHER


def test_a_refused_completion_keeps_the_upload_and_its_acl(store: MetadataStore) -> None:
    name = bucket(store, versioning=Versioning.ENABLED)
    store.put_object(obj(name, "k", "v1"), acl=DOC)
    store.create_upload(upload(name, "k", "u1"), acl=OTHER)
    store.put_part(name, "u1", part(1, "blob-1"))
    with pytest.raises(PreconditionFailed):
        store.complete_upload(
            name,
            "u1",
            obj(name, "k", "v2", blobs=("blob-1",)),
            condition=WriteCondition(if_none_match_any=True),
        )
    assert store.get_object(name, "k", "v2") is None
    assert store.get_object_acl(name, "k", None) == DOC
    assert store.get_upload_acl(name, "u1") == OTHER
    with pytest.raises(NoSuchUpload):
        store.complete_upload(name, "nope", obj(name, "k", "v3"))
    store.complete_upload(name, "u1", obj(name, "k", "v2", blobs=("blob-1",)))
    assert store.get_object_acl(name, "k", None) == OTHER


def test_a_bucket_is_created_with_its_ownership_and_acl(store: MetadataStore) -> None:
    created = store.create_bucket(
        Bucket("with-acl", "111122223333", "cn-north-1", T0),
        configs={"ownership": "ObjectWriter", "acl": DOC},
    )
    assert created.name == "with-acl"
    assert store.get_bucket_config("with-acl", "ownership") == "ObjectWriter"
    assert store.get_bucket_config("with-acl", "acl") == DOC
    # an existing name: the bucket is returned unchanged and nothing is stored
    again = store.create_bucket(
        Bucket("with-acl", "444455556666", "cn-north-1", T0),
        configs={"ownership": "BucketOwnerPreferred", "acl": OTHER},
    )
    assert again.owner_id == "111122223333"
    assert store.get_bucket_config("with-acl", "ownership") == "ObjectWriter"
    assert store.get_bucket_config("with-acl", "acl") == DOC
    store.create_bucket(Bucket("plain", "111122223333", "cn-north-1", T0))
    assert store.get_bucket_config("plain", "ownership") is None


def test_a_reader_never_sees_a_new_version_without_its_acl(store: MetadataStore) -> None:
    """Versions are written with ACLs while another thread reads: whenever the reader finds a
    version, its ACL is there already (a second transaction for the ACL would leave a window
    in which it is not)."""
    name = bucket(store, versioning=Versioning.ENABLED)
    writes = 300
    done = threading.Event()
    missing: list[str] = []
    seen: set[str] = set()

    started = threading.Event()

    def read() -> None:
        started.set()
        while not done.is_set():
            latest = store.get_object(name, "k")
            if latest is None:
                continue
            seen.add(latest.version_id)
            if store.get_object_acl(name, "k", latest.version_id) != DOC:
                missing.append(latest.version_id)

    reader = threading.Thread(target=read)
    reader.start()
    started.wait()
    try:
        for n in range(writes):
            if n % 10 == 0:
                time.sleep(0.0005)  # let the reader in (a fast store finishes before it runs)
            if n % 2:
                store.put_object(obj(name, "k", f"v{n:04d}"), acl=DOC)
            else:
                upload_id = f"u{n:04d}"
                store.create_upload(upload(name, "k", upload_id), acl=DOC)
                store.put_part(name, upload_id, part(1, f"blob-{n}"))
                store.complete_upload(
                    name, upload_id, obj(name, "k", f"v{n:04d}", blobs=(f"blob-{n}",))
                )
    finally:
        done.set()
        reader.join()
    assert missing == []
    assert seen  # the reader did look while versions were being written
