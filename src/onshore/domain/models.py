"""The S3 data model as frozen values.

A **bucket** holds **object versions**. Every write of a key creates a version; which versions
survive depends on the bucket's versioning state:

* *unversioned* (never enabled): a key has exactly one version, whose id is the literal ``"null"``;
  a write replaces it and a delete removes it.
* *Enabled*: each write adds a version with a fresh id and makes it the latest; a delete without a
  version id adds a **delete marker** (a version with no data) as the latest.
* *Suspended*: writes and deletes create the ``"null"`` version, replacing any earlier ``"null"``
  version, while versions with real ids are kept.

A delete *with* a version id removes exactly that version, and the next newest becomes latest.
``ListObjects`` shows, per key, the latest version unless it is a delete marker.

Object data lives either *inline* (small objects, stored in the metadata row) or in *segments*:
blob files named by random ids, concatenated in order. A completed multipart upload is one segment
per part, so completing never copies data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import NamedTuple

from onshore.domain.times import from_us, to_us

NULL_VERSION = "null"


class Versioning(str, Enum):
    """A bucket's versioning state; ``UNVERSIONED`` until versioning is first enabled."""

    UNVERSIONED = ""
    ENABLED = "Enabled"
    SUSPENDED = "Suspended"


class ChecksumAlgorithm(str, Enum):
    CRC32 = "CRC32"
    CRC32C = "CRC32C"
    CRC64NVME = "CRC64NVME"
    SHA1 = "SHA1"
    SHA256 = "SHA256"


class ChecksumType(str, Enum):
    FULL_OBJECT = "FULL_OBJECT"
    COMPOSITE = "COMPOSITE"


@dataclass(frozen=True, slots=True)
class Checksum:
    """An additional checksum (``x-amz-checksum-*``): base64 of the big-endian digest."""

    algorithm: ChecksumAlgorithm
    value: str
    type: ChecksumType = ChecksumType.FULL_OBJECT


class SseMode(str, Enum):
    """Server-side encryption as S3 names it in ``x-amz-server-side-encryption``.

    ``CUSTOMER`` (SSE-C) has no value of its own on the wire: the request carries the key in
    the ``x-amz-server-side-encryption-customer-*`` headers instead.
    """

    S3 = "AES256"
    KMS = "aws:kms"
    CUSTOMER = "SSE-C"


@dataclass(frozen=True, slots=True)
class Encryption:
    """How an object's (or multipart upload's) bytes and user metadata are sealed at rest.

    Every object has its own random data key; only ``wrapped_key`` (the data key sealed by the
    key named ``key_id``: the tenant key for SSE-S3, a KMS key for SSE-KMS, the customer's key
    for SSE-C) is stored. ``sealed_metadata`` holds the ``x-amz-meta-*`` pairs sealed with the
    data key (the plain ``user_metadata`` column is then empty). ``customer_key_hmac`` (SSE-C
    only) is a salted HMAC of the customer's key, to tell a wrong key from corrupt data; the
    key itself is never stored. ``customer_key_md5`` is the base64 MD5 S3 echoes back.

    SSE-KMS only: ``kms_context`` is the encryption context (canonical JSON) KMS sealed the key
    under, needed again to open it (None: sealed before contexts were recorded, with none);
    ``bucket_key``, when the object uses an S3 Bucket Key, is that bucket key's KMS ciphertext,
    and ``wrapped_key`` is then the data key sealed by the bucket key.
    """

    mode: SseMode
    cipher: str
    key_id: str
    wrapped_key: bytes
    sealed_metadata: bytes | None = None
    customer_key_hmac: str = ""
    customer_key_md5: str = ""
    kms_context: str | None = None
    bucket_key: bytes | None = None


@dataclass(frozen=True, slots=True)
class TenantKey:
    """A tenant's key as stored: sealed by the operator's root key, never in plain text.

    ``root_fingerprint`` names the root key generation that sealed ``wrapped``.
    """

    account_id: str
    cipher: str
    wrapped: bytes
    root_fingerprint: str
    created: datetime


@dataclass(frozen=True, slots=True)
class KmsKey:
    """A KMS key (AWS KMS semantics): ``state`` is Enabled, Disabled or PendingDeletion;
    ``wrapped`` is its first key material sealed by the root key (``root_fingerprint``).

    Each rotation adds a key material (:class:`KmsKeyMaterial`, versions 2, 3, ...);
    ``material_version`` is the current one, which encrypts, while every earlier one still
    decrypts. With automatic rotation on, ``rotation_period_days`` and ``next_rotation`` say
    when the next one is due."""

    key_id: str
    account_id: str
    description: str
    state: str
    created: datetime
    wrapped: bytes
    root_fingerprint: str
    deletion: datetime | None = None
    rotation_enabled: bool = False
    material_version: int = 1
    rotation_period_days: int | None = None
    next_rotation: datetime | None = None


@dataclass(frozen=True, slots=True)
class KmsKeyMaterial:
    """Key material ``version`` (2 and up) of a KMS key, made by a rotation (``rotation_type``
    AUTOMATIC or ON_DEMAND, completed at ``rotated``), sealed by the root key."""

    key_id: str
    version: int
    wrapped: bytes
    root_fingerprint: str
    rotated: datetime
    rotation_type: str


@dataclass(frozen=True, slots=True)
class Bucket:
    name: str
    owner_id: str
    region: str
    created: datetime
    versioning: Versioning = Versioning.UNVERSIONED


@dataclass(frozen=True, slots=True)
class Segment:
    """One blob file holding a contiguous run of an object's bytes.

    For a multipart object there is one segment per part, carrying that part's number, ETag
    (unquoted hex MD5) and checksum; ``GetObject?partNumber=N`` reads segment ``N - 1``.
    """

    blob_id: str
    size: int
    part_number: int = 0
    etag: str = ""
    checksum: Checksum | None = None


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    """One version of a key, or a delete marker (``is_delete_marker``, no data, size 0).

    ``etag`` is unquoted: hex MD5 of the body, or ``<hex>-<N>`` for an N-part multipart object.
    ``headers`` holds the stored representation headers (lower-case names: content-type,
    content-encoding, content-disposition, content-language, cache-control, expires);
    ``user_metadata`` the ``x-amz-meta-*`` pairs with the prefix stripped.
    Data is in ``inline`` (the whole body) or ``segments`` (blob files), never both; with
    ``encryption`` both hold sealed bytes (see :mod:`onshore.service.encryption.segments`),
    while ``size``, ``etag`` and checksums describe the plaintext, as on AWS.
    ``is_latest`` is filled in by the store when it reads the version.
    """

    bucket: str
    key: str
    version_id: str
    last_modified: datetime
    size: int = 0
    etag: str = ""
    is_delete_marker: bool = False
    is_latest: bool = True
    owner_id: str = ""
    storage_class: str = "STANDARD"
    headers: Mapping[str, str] = field(default_factory=dict)
    user_metadata: Mapping[str, str] = field(default_factory=dict)
    checksum: Checksum | None = None
    inline: bytes | None = None
    segments: tuple[Segment, ...] = ()
    encryption: Encryption | None = None

    @property
    def parts_count(self) -> int:
        """Number of multipart parts (0 for an object uploaded in one request)."""
        return len(self.segments) if self.segments and self.segments[0].part_number else 0

    def blob_ids(self) -> tuple[str, ...]:
        return tuple(s.blob_id for s in self.segments)

    def as_removed(self) -> Removed:
        """What a write that removes this version reports of it."""
        return Removed(
            self.key,
            self.version_id,
            self.is_latest,
            self.is_delete_marker,
            self.etag,
            self.blob_ids(),
        )

    def listed(self) -> ListedVersion:
        """This version as listings show it."""
        checksum = self.checksum
        return ListedVersion(
            key=self.key,
            version_id=self.version_id,
            is_latest=self.is_latest,
            is_delete_marker=self.is_delete_marker,
            size=self.size,
            etag=self.etag,
            last_modified_us=to_us(self.last_modified),
            owner_id=self.owner_id,
            storage_class=self.storage_class,
            checksum_algorithm=checksum.algorithm.value if checksum else None,
            checksum_type=checksum.type.value if checksum else None,
        )


class ListedVersion(NamedTuple):
    """A version as ListObjects and ListObjectVersions show it: no headers, metadata or data.

    A plain named tuple rather than an :class:`ObjectVersion`, because a listing page builds a
    thousand of them and nothing else: the checksum is reduced to the two names listings print,
    and the time stays in the integer microseconds the store keeps (:attr:`last_modified` gives
    the ``datetime``), since the XML renderer formats it straight from the integer.
    """

    key: str
    version_id: str
    is_latest: bool
    is_delete_marker: bool
    size: int
    etag: str
    last_modified_us: int
    owner_id: str
    storage_class: str
    checksum_algorithm: str | None = None
    checksum_type: str | None = None

    @property
    def last_modified(self) -> datetime:
        return from_us(self.last_modified_us)


@dataclass(frozen=True, slots=True)
class MultipartUpload:
    upload_id: str
    bucket: str
    key: str
    initiated: datetime
    owner_id: str = ""
    storage_class: str = "STANDARD"
    headers: Mapping[str, str] = field(default_factory=dict)
    user_metadata: Mapping[str, str] = field(default_factory=dict)
    checksum_algorithm: ChecksumAlgorithm | None = None
    checksum_type: ChecksumType | None = None
    encryption: Encryption | None = None


@dataclass(frozen=True, slots=True)
class Part:
    """An uploaded part of a multipart upload, stored as one blob (or inline when tiny)."""

    part_number: int
    size: int
    etag: str
    last_modified: datetime
    blob_id: str
    checksum: Checksum | None = None


@dataclass(frozen=True, slots=True)
class WriteCondition:
    """A conditional write checked atomically with the write (``If-None-Match``/``If-Match``).

    ``if_none_match_any``: fail with PreconditionFailed if the key has a current version.
    ``if_match``: fail unless the current version's ETag equals this (unquoted) value; a missing
    key fails with NoSuchKey.
    """

    if_none_match_any: bool = False
    if_match: str | None = None


@dataclass(frozen=True, slots=True)
class ListPage:
    """A page of ``ListObjects``: current versions and rolled-up common prefixes, in key order.

    ``next_marker`` is the last key or common prefix returned when ``is_truncated``.
    """

    objects: tuple[ListedVersion, ...]
    common_prefixes: tuple[str, ...]
    is_truncated: bool
    next_marker: str | None = None


@dataclass(frozen=True, slots=True)
class VersionPage:
    """A page of ``ListObjectVersions``: versions by key, newest first within a key."""

    versions: tuple[ListedVersion, ...]
    common_prefixes: tuple[str, ...]
    is_truncated: bool
    next_key_marker: str | None = None
    next_version_id_marker: str | None = None


@dataclass(frozen=True, slots=True)
class UploadPage:
    uploads: tuple[MultipartUpload, ...]
    common_prefixes: tuple[str, ...]
    is_truncated: bool
    next_key_marker: str | None = None
    next_upload_id_marker: str | None = None


@dataclass(frozen=True, slots=True)
class PartPage:
    parts: tuple[Part, ...]
    is_truncated: bool
    next_part_number_marker: int | None = None


class Removed(NamedTuple):
    """A version a write removed (deleted, or replaced by a version with the same id), as much
    of it as is reported: which version it was (``is_latest``: before its removal), its ETag,
    and the blobs it referenced. Its data, headers and encryption are gone with it and not read:
    in a busy bucket, decoding them was a third of a delete's work in the writer's critical
    section."""

    key: str
    version_id: str
    is_latest: bool
    is_delete_marker: bool
    etag: str
    blobs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a metadata write did: the version it stored, and blobs no longer referenced.

    The caller deletes ``freed_blobs`` after the commit; if it crashes first, the orphan sweep
    does it.
    """

    version: ObjectVersion | None
    freed_blobs: tuple[str, ...] = ()
    removed: Removed | None = None
