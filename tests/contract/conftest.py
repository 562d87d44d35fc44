"""One contract suite, every backend: the ``store`` fixture runs each test against each
``MetadataStore`` (memory, SQLite in a temporary directory), ``blobs`` against the filesystem
blob store. Builders for domain values keep the tests short.

Tests marked ``slow`` (large data sets, throughput figures) run only with ``ONSHORE_SLOW=1``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from onshore.domain.models import (
    Bucket,
    MultipartUpload,
    ObjectVersion,
    Part,
    Segment,
    Versioning,
)
from onshore.storage.filesystem import FilesystemBlobStore
from onshore.storage.memory import MemoryMetadataStore
from onshore.storage.ports import MetadataStore
from onshore.storage.sqlite import SqliteMetadataStore
from tests.openbao import openbao  # noqa: F401 - fixture: a real OpenBao server

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
StoreFactory = Callable[[], MetadataStore]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: large data sets; run with ONSHORE_SLOW=1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("ONSHORE_SLOW"):
        return
    skip = pytest.mark.skip(reason="slow: set ONSHORE_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def make_store(kind: str, directory: Path) -> MetadataStore:
    if kind == "memory":
        return MemoryMetadataStore()
    return SqliteMetadataStore(directory / "metadata.db")


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStore]:
    opened = make_store(str(request.param), tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def blobs(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "data")


# --- builders -----------------------------------------------------------------------------------
_ids = itertools.count(1)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def bucket(
    store: MetadataStore,
    name: str = "bucket",
    versioning: Versioning = Versioning.UNVERSIONED,
    owner: str = "111122223333",
) -> str:
    store.create_bucket(Bucket(name, owner, "cn-north-1", T0))
    if versioning is not Versioning.UNVERSIONED:
        store.set_versioning(name, versioning)
    return name


def obj(
    bucket_name: str,
    key: str,
    version_id: str | None = None,
    *,
    data: bytes | None = b"hello",
    blobs: tuple[str, ...] = (),
    etag: str = "5d41402abc4b2a76b9719d911017c592",
    when: int = 0,
) -> ObjectVersion:
    """A version to store: inline ``data``, or one segment per blob id when ``blobs`` is set."""
    segments = tuple(Segment(blob, 10, 0, "") for blob in blobs)
    return ObjectVersion(
        bucket=bucket_name,
        key=key,
        version_id=version_id or f"v{next(_ids):06d}",
        last_modified=at(when),
        size=10 * len(blobs) if blobs else len(data or b""),
        etag=etag,
        owner_id="111122223333",
        inline=None if blobs else data,
        segments=segments,
    )


def marker(bucket_name: str, key: str, version_id: str | None = None) -> ObjectVersion:
    return ObjectVersion(
        bucket=bucket_name,
        key=key,
        version_id=version_id or f"m{next(_ids):06d}",
        last_modified=T0,
        is_delete_marker=True,
        owner_id="111122223333",
    )


def upload(bucket_name: str, key: str, upload_id: str, when: int = 0) -> MultipartUpload:
    return MultipartUpload(upload_id, bucket_name, key, at(when), owner_id="111122223333")


def part(number: int, blob_id: str, size: int = 5) -> Part:
    return Part(number, size, f"etag{number}", T0, blob_id)
