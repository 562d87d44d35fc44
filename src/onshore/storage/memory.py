"""``MemoryMetadataStore``: the metadata contract in plain dicts, the model the other stores match.

Everything lives in Python dicts guarded by one lock, and every operation is written in the most
obvious way, even when that costs a sort or a scan: listings sort the bucket's keys on each call,
and freed-blob checks scan every version. That makes it the reference implementation the contract
suite runs next to SQLite (``tests/contract``), and a handy store for unit tests of the layers
above. It is not meant for production data.

Layout, per bucket: ``versions[key]`` is the key's list of versions, **newest first** (so index 0
is the latest, and ``is_latest`` is computed when a version is read, never stored); uploads carry a
store-assigned sequence so uploads of one key sort by (initiation time, creation order).

Timestamps are normalised to timezone-aware UTC on the way in (a naive datetime is taken as UTC),
exactly as the SQL stores do, so values read back compare equal across implementations.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TypeVar

from onshore.domain import etag as etags
from onshore.domain.errors import (
    BucketNotEmpty,
    IllegalVersioningConfigurationException,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
    PreconditionFailed,
)
from onshore.domain.models import (
    NULL_VERSION,
    Bucket,
    ListedVersion,
    ListPage,
    MultipartUpload,
    ObjectVersion,
    Part,
    PartPage,
    Removed,
    TenantKey,
    UploadPage,
    Versioning,
    VersionPage,
    WriteCondition,
    WriteResult,
)

__all__ = ["MemoryMetadataStore"]

_T = TypeVar("_T")


def _utc(moment: datetime) -> datetime:
    """The same instant as a UTC-aware datetime (naive values are taken as UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _b(text: str) -> bytes:
    return text.encode("utf-8")


def _rollup(key: str, prefix: str, delimiter: str) -> str | None:
    """The common prefix ``key`` rolls up into, or None when it is listed itself."""
    if not delimiter:
        return None
    at = key.find(delimiter, len(prefix))
    return None if at < 0 else key[: at + len(delimiter)]


@dataclass
class _Upload:
    seq: int
    upload: MultipartUpload
    parts: dict[int, Part] = field(default_factory=dict)


@dataclass
class _BucketState:
    bucket: Bucket
    configs: dict[str, str] = field(default_factory=dict)
    versions: dict[str, list[ObjectVersion]] = field(default_factory=dict)
    uploads: dict[str, _Upload] = field(default_factory=dict)


class MemoryMetadataStore:
    """A :class:`~onshore.storage.ports.MetadataStore` held in memory (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._buckets: dict[str, _BucketState] = {}
        self._seq = itertools.count(1)
        self._tenant_keys: dict[str, TenantKey] = {}
        # (bucket, key, version id) -> (the stored version it belongs to, document): an entry
        # whose version object is no longer stored is stale (the version was replaced/deleted).
        self._object_acls: dict[tuple[str, str, str], tuple[ObjectVersion, str]] = {}
        self._upload_acls: dict[tuple[str, str], str] = {}  # upload ids are never reused

    # --- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        """Nothing to release."""

    # --- helpers --------------------------------------------------------------------------------
    def _state(self, name: str) -> _BucketState:
        state = self._buckets.get(name)
        if state is None:
            raise NoSuchBucket(resource=name)
        return state

    def _upload(self, bucket: str, upload_id: str) -> _Upload:
        upload = self._state(bucket).uploads.get(upload_id)
        if upload is None:
            raise NoSuchUpload(resource=upload_id)
        return upload

    def _referenced(self) -> set[str]:
        found: set[str] = set()
        for state in self._buckets.values():
            for versions in state.versions.values():
                for version in versions:
                    found.update(version.blob_ids())
            for upload in state.uploads.values():
                found.update(part.blob_id for part in upload.parts.values())
        return found

    def _unreferenced(self, candidates: Iterable[str]) -> tuple[str, ...]:
        wanted = tuple(dict.fromkeys(candidates))
        if not wanted:
            return ()
        referenced = self._referenced()
        return tuple(blob for blob in wanted if blob not in referenced)

    # --- buckets --------------------------------------------------------------------------------
    def create_bucket(self, bucket: Bucket, *, configs: Mapping[str, str] | None = None) -> Bucket:
        with self._lock:
            existing = self._buckets.get(bucket.name)
            if existing is not None:
                return existing.bucket
            stored = replace(bucket, created=_utc(bucket.created))
            self._buckets[bucket.name] = _BucketState(stored, configs=dict(configs or {}))
            return stored

    def get_bucket(self, name: str) -> Bucket | None:
        with self._lock:
            state = self._buckets.get(name)
            return None if state is None else state.bucket

    def list_buckets(
        self,
        *,
        owner_id: str | None = None,
        prefix: str = "",
        start_after: str = "",
        limit: int = 10000,
    ) -> list[Bucket]:
        with self._lock:
            buckets = [
                s.bucket
                for s in self._buckets.values()
                if s.bucket.name.startswith(prefix)
                and _b(s.bucket.name) > _b(start_after)
                and (owner_id is None or s.bucket.owner_id == owner_id)
            ]
        buckets.sort(key=lambda b: _b(b.name))
        return buckets[: max(limit, 0)]

    def delete_bucket(self, name: str) -> tuple[str, ...]:
        with self._lock:
            state = self._state(name)
            if any(state.versions.values()):
                raise BucketNotEmpty(resource=name)
            blobs = [p.blob_id for u in state.uploads.values() for p in u.parts.values()]
            del self._buckets[name]
            return self._unreferenced(blobs)

    def set_versioning(self, name: str, state: Versioning) -> None:
        if state is Versioning.UNVERSIONED:
            raise IllegalVersioningConfigurationException()
        with self._lock:
            bucket_state = self._state(name)
            bucket_state.bucket = replace(bucket_state.bucket, versioning=state)

    def get_bucket_config(self, name: str, kind: str) -> str | None:
        with self._lock:
            state = self._buckets.get(name)
            return None if state is None else state.configs.get(kind)

    def put_bucket_config(self, name: str, kind: str, document: str | None) -> None:
        with self._lock:
            configs = self._state(name).configs
            if document is None:
                configs.pop(kind, None)
            else:
                configs[kind] = document

    def _stored_version(self, bucket: str, key: str, version_id: str) -> ObjectVersion | None:
        for version in self._state(bucket).versions.get(key, []):
            if version.version_id == version_id:
                return version
        return None

    def get_object_acl(self, bucket: str, key: str, version_id: str | None) -> str | None:
        with self._lock:
            if version_id is None:
                versions = (
                    self._buckets[bucket].versions.get(key) if bucket in self._buckets else None
                )
                if not versions:
                    return None
                version_id = versions[0].version_id
            entry = self._object_acls.get((bucket, key, version_id))
            if entry is None or bucket not in self._buckets:
                return None
            current = self._stored_version(bucket, key, version_id)
            return entry[1] if current is entry[0] else None

    def put_object_acl(self, bucket: str, key: str, version_id: str, document: str) -> bool:
        with self._lock:
            current = self._stored_version(bucket, key, version_id)
            if current is None:
                return False
            self._object_acls[(bucket, key, version_id)] = (current, document)
            return True

    def get_upload_acl(self, bucket: str, upload_id: str) -> str | None:
        with self._lock:
            state = self._buckets.get(bucket)
            if state is None or upload_id not in state.uploads:
                return None
            return self._upload_acls.get((bucket, upload_id))

    # --- tenant keys (encryption at rest) -------------------------------------------------------
    def get_tenant_key(self, account_id: str) -> TenantKey | None:
        with self._lock:
            return self._tenant_keys.get(account_id)

    def add_tenant_key(self, key: TenantKey) -> TenantKey:
        with self._lock:
            return self._tenant_keys.setdefault(key.account_id, key)

    def list_tenant_keys(self) -> list[TenantKey]:
        with self._lock:
            return sorted(self._tenant_keys.values(), key=lambda k: k.account_id)

    def replace_tenant_key(self, key: TenantKey, *, expected_fingerprint: str) -> bool:
        with self._lock:
            current = self._tenant_keys.get(key.account_id)
            if current is None or current.root_fingerprint != expected_fingerprint:
                return False
            self._tenant_keys[key.account_id] = key
            return True

    def delete_tenant_key(self, account_id: str) -> bool:
        with self._lock:
            return self._tenant_keys.pop(account_id, None) is not None

    # --- objects --------------------------------------------------------------------------------
    def get_object(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> ObjectVersion | None:
        with self._lock:
            versions = self._state(bucket).versions.get(key, [])
            for index, version in enumerate(versions):
                if version_id is None or version.version_id == version_id:
                    return replace(version, is_latest=index == 0)
            return None

    def put_object(
        self,
        version: ObjectVersion,
        *,
        condition: WriteCondition | None = None,
        acl: str | None = None,
    ) -> WriteResult:
        with self._lock:
            return self._with_acl(self._put(version, condition), acl)

    def _with_acl(self, result: WriteResult, acl: str | None) -> WriteResult:
        """Give the version just stored (under the same hold of the lock) its ACL."""
        stored = result.version
        if acl is not None and stored is not None:
            self._object_acls[(stored.bucket, stored.key, stored.version_id)] = (stored, acl)
        return result

    def _put(self, version: ObjectVersion, condition: WriteCondition | None) -> WriteResult:
        state = self._state(version.bucket)
        versions = state.versions.get(version.key, [])
        _check_condition(condition, versions[0] if versions else None)
        enabled = state.bucket.versioning is Versioning.ENABLED
        stored = replace(
            version,
            version_id=version.version_id if enabled else NULL_VERSION,
            is_latest=True,
            last_modified=_utc(version.last_modified),
            headers=dict(version.headers),
            user_metadata=dict(version.user_metadata),
        )
        removed: Removed | None = None
        for index, old in enumerate(versions):
            if old.version_id == stored.version_id:
                removed = replace(versions.pop(index), is_latest=index == 0).as_removed()
                break
        versions.insert(0, stored)
        state.versions[version.key] = versions
        freed = self._unreferenced(removed.blobs if removed else ())
        return WriteResult(version=stored, freed_blobs=freed, removed=removed)

    def delete_object(
        self,
        bucket: str,
        key: str,
        *,
        version_id: str | None,
        marker: ObjectVersion,
        if_match: str | None = None,
    ) -> WriteResult:
        with self._lock:
            state = self._state(bucket)
            if if_match is not None:
                versions = state.versions.get(key, [])  # newest first
                target = next((v for v in versions if version_id in (None, v.version_id)), None)
                if target is None or target.is_delete_marker:
                    raise NoSuchKey(Key=key)
                if not etags.matches(if_match, target.etag):
                    raise PreconditionFailed(Condition="If-Match")
            if version_id is not None:
                return self._remove(state, key, version_id)
            if state.bucket.versioning is Versioning.UNVERSIONED:
                return self._remove(state, key, NULL_VERSION)
            stored_marker = replace(
                marker,
                bucket=bucket,
                key=key,
                is_delete_marker=True,
                size=0,
                inline=None,
                segments=(),
            )
            return self._put(stored_marker, None)

    def _remove(self, state: _BucketState, key: str, version_id: str) -> WriteResult:
        versions = state.versions.get(key, [])
        for index, version in enumerate(versions):
            if version.version_id == version_id:
                del versions[index]
                if not versions:
                    del state.versions[key]
                removed = replace(version, is_latest=index == 0).as_removed()
                freed = self._unreferenced(version.blob_ids())
                return WriteResult(version=None, freed_blobs=freed, removed=removed)
        return WriteResult(version=None)

    def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        start_after: str = "",
        limit: int = 1000,
    ) -> ListPage:
        with self._lock:
            state = self._state(bucket)
            current = [
                replace(vs[0], is_latest=True).listed()
                for key, vs in state.versions.items()
                if vs and not vs[0].is_delete_marker and key.startswith(prefix)
            ]
        current.sort(key=lambda v: _b(v.key))
        after = _b(start_after)
        entries = _rolled(((v.key, v) for v in current), prefix, delimiter, after, lambda v: False)
        page, truncated = _cut(entries, limit)
        objects = tuple(e for e in page if isinstance(e, ListedVersion))
        prefixes = tuple(e for e in page if isinstance(e, str))
        last = page[-1] if truncated and page else None
        next_marker = last if isinstance(last, str) else last.key if last is not None else None
        return ListPage(objects, prefixes, truncated, next_marker)

    def list_versions(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str = "",
        version_id_marker: str = "",
        limit: int = 1000,
    ) -> VersionPage:
        with self._lock:
            state = self._state(bucket)
            keyed = sorted(
                ((k, vs) for k, vs in state.versions.items() if k.startswith(prefix)),
                key=lambda item: _b(item[0]),
            )
            flat = [
                (key, replace(v, is_latest=i == 0).listed())
                for key, vs in keyed
                for i, v in enumerate(vs)
            ]
        resume = _version_resume(flat, key_marker, version_id_marker)
        entries = _rolled(iter(flat), prefix, delimiter, _b(key_marker), resume)
        page, truncated = _cut(entries, limit)
        versions = tuple(e for e in page if isinstance(e, ListedVersion))
        prefixes = tuple(e for e in page if isinstance(e, str))
        if not (truncated and page):
            return VersionPage(versions, prefixes, truncated)
        last = page[-1]
        if isinstance(last, str):
            return VersionPage(versions, prefixes, True, last, None)
        return VersionPage(versions, prefixes, True, last.key, last.version_id)

    def count_objects(self, bucket: str) -> int:
        with self._lock:
            return sum(len(vs) for vs in self._state(bucket).versions.values())

    # --- multipart ------------------------------------------------------------------------------
    def create_upload(self, upload: MultipartUpload, *, acl: str | None = None) -> None:
        with self._lock:
            stored = replace(
                upload,
                initiated=_utc(upload.initiated),
                headers=dict(upload.headers),
                user_metadata=dict(upload.user_metadata),
            )
            self._state(upload.bucket).uploads[upload.upload_id] = _Upload(next(self._seq), stored)
            if acl is not None:
                self._upload_acls[(upload.bucket, upload.upload_id)] = acl

    def get_upload(self, bucket: str, upload_id: str) -> MultipartUpload | None:
        with self._lock:
            state = self._buckets.get(bucket)
            upload = None if state is None else state.uploads.get(upload_id)
            return None if upload is None else upload.upload

    def put_part(self, bucket: str, upload_id: str, part: Part) -> tuple[str, ...]:
        with self._lock:
            upload = self._upload(bucket, upload_id)
            old = upload.parts.get(part.part_number)
            upload.parts[part.part_number] = replace(part, last_modified=_utc(part.last_modified))
            if old is None or old.blob_id == part.blob_id:
                return ()
            return self._unreferenced([old.blob_id])

    def list_parts(
        self, bucket: str, upload_id: str, *, part_number_marker: int = 0, limit: int = 1000
    ) -> PartPage:
        with self._lock:
            parts = sorted(self._upload(bucket, upload_id).parts.items())
        after = [part for number, part in parts if number > part_number_marker]
        page, truncated = _cut(after, limit)
        return PartPage(tuple(page), truncated, page[-1].part_number if truncated else None)

    def get_parts(self, bucket: str, upload_id: str) -> list[Part]:
        with self._lock:
            return [part for _, part in sorted(self._upload(bucket, upload_id).parts.items())]

    def complete_upload(
        self,
        bucket: str,
        upload_id: str,
        version: ObjectVersion,
        *,
        condition: WriteCondition | None = None,
    ) -> WriteResult:
        with self._lock:
            state = self._state(bucket)
            upload = self._upload(bucket, upload_id)
            result = self._put_after_removing_upload(state, upload, version, condition)
            self._with_acl(result, self._upload_acls.pop((bucket, upload_id), None))
            kept = set(version.blob_ids())
            loose = [p.blob_id for p in upload.parts.values() if p.blob_id not in kept]
            freed = tuple(dict.fromkeys(result.freed_blobs + self._unreferenced(loose)))
            return replace(result, freed_blobs=freed)

    def _put_after_removing_upload(
        self,
        state: _BucketState,
        upload: _Upload,
        version: ObjectVersion,
        condition: WriteCondition | None,
    ) -> WriteResult:
        del state.uploads[upload.upload.upload_id]
        try:
            return self._put(version, condition)
        except BaseException:
            state.uploads[upload.upload.upload_id] = upload
            raise

    def abort_upload(self, bucket: str, upload_id: str) -> tuple[str, ...]:
        with self._lock:
            upload = self._upload(bucket, upload_id)
            del self._state(bucket).uploads[upload_id]
            return self._unreferenced(p.blob_id for p in upload.parts.values())

    def list_uploads(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str = "",
        upload_id_marker: str = "",
        limit: int = 1000,
    ) -> UploadPage:
        with self._lock:
            state = self._state(bucket)
            ordered = sorted(
                (u for u in state.uploads.values() if u.upload.key.startswith(prefix)),
                key=lambda u: (_b(u.upload.key), _utc(u.upload.initiated), u.seq),
            )
        flat = [(u.upload.key, u.upload) for u in ordered]
        resume = _upload_resume(ordered, key_marker, upload_id_marker)
        entries = _rolled(iter(flat), prefix, delimiter, _b(key_marker), resume)
        page, truncated = _cut(entries, limit)
        uploads = tuple(e for e in page if isinstance(e, MultipartUpload))
        prefixes = tuple(e for e in page if isinstance(e, str))
        if not (truncated and page):
            return UploadPage(uploads, prefixes, truncated)
        last = page[-1]
        if isinstance(last, str):
            return UploadPage(uploads, prefixes, True, last, None)
        return UploadPage(uploads, prefixes, True, last.key, last.upload_id)

    # --- maintenance ----------------------------------------------------------------------------
    def referenced_blobs(self, blob_ids: Iterable[str]) -> set[str]:
        with self._lock:
            referenced = self._referenced()
        return {blob for blob in blob_ids if blob in referenced}

    def iter_versions(self) -> Iterator[ObjectVersion]:
        with self._lock:
            snapshot = [
                replace(version, is_latest=index == 0)
                for state in self._buckets.values()
                for versions in state.versions.values()
                for index, version in enumerate(versions)
            ]
        yield from snapshot

    def iter_parts(self) -> Iterator[tuple[MultipartUpload, Part]]:
        with self._lock:
            snapshot = [
                (upload.upload, part)
                for state in self._buckets.values()
                for upload in state.uploads.values()
                for part in upload.parts.values()
            ]
        yield from snapshot

    def check_integrity(self) -> list[str]:
        """Nothing to check: plain dicts cannot be torn."""
        return []


# --- listing, the obvious way -------------------------------------------------------------------
def _rolled(
    items: Iterator[tuple[str, _T]],
    prefix: str,
    delimiter: str,
    marker: bytes,
    after_marker: Callable[[_T], bool],
) -> list[_T | str]:
    """Every listing entry in order: items past the marker, and each common prefix once if it
    sorts after the marker (a marker inside a common prefix skips that prefix)."""
    entries: list[_T | str] = []
    seen: set[str] = set()
    for key, item in items:
        common = _rollup(key, prefix, delimiter)
        if common is None:
            key_bytes = _b(key)
            if not marker or key_bytes > marker or (key_bytes == marker and after_marker(item)):
                entries.append(item)
        elif common not in seen:
            seen.add(common)
            if _b(common) > marker:
                entries.append(common)
    return entries


def _cut(entries: list[_T], limit: int) -> tuple[list[_T], bool]:
    if limit <= 0:
        return [], False
    return entries[:limit], len(entries) > limit


def _version_resume(
    flat: list[tuple[str, ListedVersion]], key_marker: str, version_id_marker: str
) -> Callable[[ListedVersion], bool]:
    """Which versions *of the key marker itself* come after (key_marker, version_id_marker):
    those older than the marked version; none when there is no such version."""
    mine = [v for key, v in flat if key == key_marker]
    ids = [v.version_id for v in mine]
    if not version_id_marker or version_id_marker not in ids:
        return lambda v: False
    older = set(ids[ids.index(version_id_marker) + 1 :])
    return lambda v: v.version_id in older


def _upload_resume(
    ordered: list[_Upload], key_marker: str, upload_id_marker: str
) -> Callable[[MultipartUpload], bool]:
    """Which uploads of the key marker come after the marked upload in listing order."""
    mine = [u.upload for u in ordered if u.upload.key == key_marker]
    ids = [u.upload_id for u in mine]
    if not upload_id_marker or upload_id_marker not in ids:
        return lambda u: False
    later = {u.upload_id for u in mine[ids.index(upload_id_marker) + 1 :]}
    return lambda u: u.upload_id in later


def _check_condition(condition: WriteCondition | None, latest: ObjectVersion | None) -> None:
    """Evaluate ``If-None-Match: *`` / ``If-Match`` against the current latest version."""
    if condition is None:
        return
    current = latest if latest is not None and not latest.is_delete_marker else None
    if condition.if_none_match_any and current is not None:
        raise PreconditionFailed()
    if condition.if_match is not None:
        if current is None:
            raise NoSuchKey()
        if condition.if_match not in ("*", current.etag):
            raise PreconditionFailed()
