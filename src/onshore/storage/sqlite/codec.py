"""Domain values to SQL columns and back.

* keys: UTF-8 ``bytes`` (BLOB), so ordering is bytewise;
* timestamps: integer microseconds since the Unix epoch, read back as UTC-aware datetimes (a naive
  datetime is taken as UTC);
* header and metadata maps: compact JSON objects; a checksum: ``[algorithm, value, type]``;
  segments: ``[[blob_id, size, part_number, etag, checksum], ...]``, NULL when there are none;
* inline data: a BLOB, NULL when the object's data is in segments (``b""`` is a real, empty body).

The column lists (``VERSION_COLUMNS``, ...) and the row tuples the decoders take are kept side by
side so that adding a column is one edit here.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping

from onshore.domain.models import (
    Bucket,
    Checksum,
    ChecksumAlgorithm,
    ChecksumType,
    Encryption,
    ListedVersion,
    MultipartUpload,
    ObjectVersion,
    Part,
    Removed,
    Segment,
    SseMode,
    Versioning,
)
from onshore.domain.times import from_us as from_us  # re-exported: the store converts via codec
from onshore.domain.times import to_us as to_us


def key_bytes(key: str) -> bytes:
    return key.encode("utf-8")


def key_text(raw: bytes) -> str:
    return bytes(raw).decode("utf-8")


# --- JSON fields --------------------------------------------------------------------------------
def dump_map(values: Mapping[str, str]) -> str:
    if not values:
        return "{}"
    return json.dumps(dict(values), ensure_ascii=False, separators=(",", ":"))


def load_map(text: str) -> dict[str, str]:
    if text == "{}":
        return {}
    return {str(k): str(v) for k, v in json.loads(text).items()}


def _checksum_list(checksum: Checksum | None) -> list[str] | None:
    if checksum is None:
        return None
    return [checksum.algorithm.value, checksum.value, checksum.type.value]


def _checksum_from(items: list[str] | None) -> Checksum | None:
    if items is None:
        return None
    return Checksum(ChecksumAlgorithm(items[0]), str(items[1]), ChecksumType(items[2]))


def dump_checksum(checksum: Checksum | None) -> str | None:
    items = _checksum_list(checksum)
    return None if items is None else json.dumps(items, separators=(",", ":"))


_ALGORITHMS = {a.value: a for a in ChecksumAlgorithm}
_TYPES = {t.value: t for t in ChecksumType}


def _checksum_parts(text: str) -> list[str] | None:
    """Fast split of the form dump_checksum writes: ``["ALG","base64","TYPE"]`` (older rows have
    a space after each comma; base64 holds no quote or comma); listings read one per row."""
    parts = text[2:-2].replace('", "', '","').split('","')
    return parts if text.startswith('["') and len(parts) == 3 else None


def load_checksum(text: str | None) -> Checksum | None:
    if text is None:
        return None
    parts = _checksum_parts(text)
    if parts is not None:
        algorithm, kind = _ALGORITHMS.get(parts[0]), _TYPES.get(parts[2])
        if algorithm is not None and kind is not None:
            return Checksum(algorithm, parts[1], kind)
    return _checksum_from(json.loads(text))


def dump_segments(segments: tuple[Segment, ...]) -> str | None:
    if not segments:
        return None
    return json.dumps(
        [[s.blob_id, s.size, s.part_number, s.etag, _checksum_list(s.checksum)] for s in segments],
        separators=(",", ":"),
    )


def load_segments(text: str | None) -> tuple[Segment, ...]:
    if text is None:
        return ()
    return tuple(
        Segment(str(blob), int(size), int(number), str(etag), _checksum_from(checksum))
        for blob, size, number, etag, checksum in json.loads(text)
    )


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _unb64(text: object) -> bytes | None:
    return None if text is None else base64.b64decode(str(text))


def dump_encryption(encryption: Encryption | None) -> str | None:
    if encryption is None:
        return None
    doc: dict[str, str | None] = {
        "mode": encryption.mode.value,
        "cipher": encryption.cipher,
        "key_id": encryption.key_id,
        "wrapped_key": _b64(encryption.wrapped_key),
        "sealed_metadata": _b64(encryption.sealed_metadata),
        "customer_key_hmac": encryption.customer_key_hmac,
        "customer_key_md5": encryption.customer_key_md5,
    }
    if encryption.kms_context is not None:  # SSE-KMS only: older rows have neither
        doc["kms_context"] = encryption.kms_context
    if encryption.bucket_key is not None:
        doc["bucket_key"] = _b64(encryption.bucket_key)
    return json.dumps(doc, separators=(",", ":"))


def load_encryption(text: str | None) -> Encryption | None:
    if text is None:
        return None
    doc = json.loads(text)
    return Encryption(
        mode=SseMode(doc["mode"]),
        cipher=str(doc["cipher"]),
        key_id=str(doc["key_id"]),
        wrapped_key=_unb64(doc["wrapped_key"]) or b"",
        sealed_metadata=_unb64(doc.get("sealed_metadata")),
        customer_key_hmac=str(doc.get("customer_key_hmac", "")),
        customer_key_md5=str(doc.get("customer_key_md5", "")),
        kms_context=None if doc.get("kms_context") is None else str(doc["kms_context"]),
        bucket_key=_unb64(doc.get("bucket_key")),
    )


# --- buckets ------------------------------------------------------------------------------------
BUCKET_COLUMNS = "name, owner_id, region, created_us, versioning"
BucketRow = tuple[str, str, str, int, str]


def decode_bucket(row: BucketRow) -> Bucket:
    name, owner, region, created, versioning = row
    return Bucket(name, owner, region, from_us(created), Versioning(versioning))


# --- versions -----------------------------------------------------------------------------------
VERSION_COLUMNS = (
    "seq, object_key, version_id, is_latest, is_delete_marker, size, etag, last_modified_us,"
    " owner_id, storage_class, headers, user_metadata, checksum, segments, inline_data,"
    " encryption"
)
VersionRow = tuple[
    int, bytes, str, int, int, int, str, int, str, str, str, str, str | None, str | None,
    bytes | None, str | None,
]  # fmt: skip


def decode_version(bucket: str, row: VersionRow) -> ObjectVersion:
    (_, key, version_id, latest, marker, size, etag, modified, owner, storage_class, headers,
     metadata, checksum, segments, inline, encryption) = row  # fmt: skip
    return ObjectVersion(
        bucket=bucket,
        key=key_text(key),
        version_id=version_id,
        last_modified=from_us(modified),
        size=size,
        etag=etag,
        is_delete_marker=bool(marker),
        is_latest=bool(latest),
        owner_id=owner,
        storage_class=storage_class,
        headers=load_map(headers),
        user_metadata=load_map(metadata),
        checksum=load_checksum(checksum),
        inline=None if inline is None else bytes(inline),
        segments=load_segments(segments),
        encryption=load_encryption(encryption),
    )


def decode_removed(row: VersionRow) -> Removed:
    """What a write reports of a version it removes, from its row (brief or full: the columns
    read here are in both)."""
    _, key, version_id, latest, marker, _, etag, *_, segments, _, _ = row
    blobs = () if segments is None else tuple(str(s[0]) for s in json.loads(segments))
    return Removed(key_text(key), version_id, bool(latest), bool(marker), etag, blobs)


#: The columns of a listing entry, in the order of :class:`ListedVersion`'s fields; the
#: checksum column is reduced to its two names by :func:`decode_listed`.
LISTED_COLUMNS = (
    "object_key, version_id, is_latest, is_delete_marker, size, etag, last_modified_us,"
    " owner_id, storage_class, checksum"
)
ListedRow = tuple[bytes, str, int, int, int, str, int, str, str, str | None]


def decode_listed(rows: Iterable[ListedRow]) -> list[ListedVersion]:
    """Listing entries from rows of ``LISTED_COLUMNS``: the hottest loop of a listing, so the
    tuples are built directly (no per-field conversion but the key's decode, the two flags and
    the checksum's names, split out of the stored ``["ALG","value","TYPE"]``)."""
    new, listed = tuple.__new__, ListedVersion
    out: list[ListedVersion] = []
    add = out.append
    for key, version, latest, marker, size, etag, modified, owner, storage, checksum in rows:
        algorithm = kind = None
        if checksum is not None:
            parts = checksum.split('"')
            if len(parts) == 7:  # both forms dump_checksum has written; base64 has no quote
                algorithm, kind = parts[1], parts[5]
            else:
                algorithm, kind = checksum_names(checksum)
        add(new(listed, (key.decode(), version, latest != 0, marker != 0, size, etag, modified,
                         owner, storage, algorithm, kind)))  # fmt: skip
    return out


def checksum_names(text: str) -> tuple[str, str]:
    """(algorithm, type) of a stored checksum, for listings."""
    parts = _checksum_parts(text)
    if parts is not None:
        return parts[0], parts[2]
    loaded = load_checksum(text)
    assert loaded is not None
    return loaded.algorithm.value, loaded.type.value


def version_params(bucket_id: int, version: ObjectVersion) -> tuple[object, ...]:
    """Parameters for ``INSERT INTO versions (bucket_id, <VERSION_COLUMNS minus seq>)``."""
    return (
        bucket_id,
        key_bytes(version.key),
        version.version_id,
        1 if version.is_latest else 0,
        1 if version.is_delete_marker else 0,
        version.size,
        version.etag,
        to_us(version.last_modified),
        version.owner_id,
        version.storage_class,
        dump_map(version.headers),
        dump_map(version.user_metadata),
        dump_checksum(version.checksum),
        dump_segments(version.segments),
        version.inline,
        dump_encryption(version.encryption),
    )


# --- multipart ----------------------------------------------------------------------------------
UPLOAD_COLUMNS = (
    "seq, object_key, upload_id, initiated_us, owner_id, storage_class, headers, user_metadata,"
    " checksum_algorithm, checksum_type, encryption"
)
UploadRow = tuple[int, bytes, str, int, str, str, str, str, str | None, str | None, str | None]


def decode_upload(bucket: str, row: UploadRow) -> MultipartUpload:
    (_, key, upload_id, initiated, owner, storage_class, headers, metadata, algorithm,
     checksum_type, encryption) = row  # fmt: skip
    return MultipartUpload(
        upload_id=upload_id,
        bucket=bucket,
        key=key_text(key),
        initiated=from_us(initiated),
        owner_id=owner,
        storage_class=storage_class,
        headers=load_map(headers),
        user_metadata=load_map(metadata),
        checksum_algorithm=None if algorithm is None else ChecksumAlgorithm(algorithm),
        checksum_type=None if checksum_type is None else ChecksumType(checksum_type),
        encryption=load_encryption(encryption),
    )


def upload_params(bucket_id: int, upload: MultipartUpload) -> tuple[object, ...]:
    """Parameters for ``INSERT INTO uploads (bucket_id, <UPLOAD_COLUMNS minus seq>)``."""
    return (
        bucket_id,
        key_bytes(upload.key),
        upload.upload_id,
        to_us(upload.initiated),
        upload.owner_id,
        upload.storage_class,
        dump_map(upload.headers),
        dump_map(upload.user_metadata),
        None if upload.checksum_algorithm is None else upload.checksum_algorithm.value,
        None if upload.checksum_type is None else upload.checksum_type.value,
        dump_encryption(upload.encryption),
    )


PART_COLUMNS = "part_number, size, etag, last_modified_us, blob_id, checksum"
PartRow = tuple[int, int, str, int, str, str | None]


def decode_part(row: PartRow) -> Part:
    number, size, etag, modified, blob_id, checksum = row
    return Part(number, size, etag, from_us(modified), blob_id, load_checksum(checksum))


def part_params(upload_seq: int, part: Part) -> tuple[object, ...]:
    """Parameters for ``INSERT INTO parts (upload_seq, <PART_COLUMNS>)``."""
    return (
        upload_seq,
        part.part_number,
        part.size,
        part.etag,
        to_us(part.last_modified),
        part.blob_id,
        dump_checksum(part.checksum),
    )
