"""Property test: listings through the whole stack (boto3 → HTTP → XML → store) agree with a
brute-force model of S3's listing rules, for any prefix, delimiter, page size and start-after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import empty_bucket

KEYS = [
    "a",
    "a/",
    "a/b",
    "a/b/c",
    "a/b/d",
    "a//x",
    "a/c",
    "ab",
    "b/1",
    "b/2/3",
    "b+c",
    "b c",
    "b%2Fd",
    "é",
    "é/ü",
    "z/../y",
    "日本/語",
    "x" * 50,
    "-/-",
    "a.b/c",
    "a/b.c",
    "🔑/k",
]
ALPHABET = sorted({ch for key in KEYS for ch in key})


def model(prefix: str, delimiter: str, start_after: str) -> list[tuple[str, str]]:
    """What S3 returns, as an ordered list of ("key"|"prefix", value)."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for key in sorted(KEYS, key=lambda k: k.encode()):
        if not key.startswith(prefix) or key.encode() <= start_after.encode():
            continue
        rest = key[len(prefix) :]
        if delimiter and delimiter in rest:
            common = prefix + rest[: rest.index(delimiter) + len(delimiter)]
            if common.encode() <= start_after.encode() or common in seen:
                continue
            seen.add(common)
            out.append(("prefix", common))
        else:
            out.append(("key", key))
    return out


@pytest.fixture(scope="module")
def listed_bucket(s3: Any) -> Iterator[str]:
    name = f"prop-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    for key in KEYS:
        s3.put_object(Bucket=name, Key=key, Body=key.encode())
    yield name
    empty_bucket(s3, name)
    s3.delete_bucket(Bucket=name)


text = st.text(alphabet=ALPHABET, max_size=4)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    prefix=text,
    delimiter=st.sampled_from(["", "/", "b", "//", "/c", "é"]),
    page=st.integers(min_value=1, max_value=7),
    start_after=text,
)
def test_list_objects_v2_matches_model(
    s3: Any, listed_bucket: str, prefix: str, delimiter: str, page: int, start_after: str
) -> None:
    kwargs: dict[str, Any] = {"Bucket": listed_bucket, "Prefix": prefix, "MaxKeys": page}
    if delimiter:
        kwargs["Delimiter"] = delimiter
    if start_after:
        kwargs["StartAfter"] = start_after
    got: list[tuple[str, str]] = []
    while True:
        result = s3.list_objects_v2(**kwargs)
        entries = [("key", c["Key"]) for c in result.get("Contents", [])]
        entries += [("prefix", p["Prefix"]) for p in result.get("CommonPrefixes", [])]
        assert len(entries) <= page
        assert result["KeyCount"] == len(entries)
        got += sorted(entries, key=lambda e: e[1].encode())
        if not result["IsTruncated"]:
            break
        kwargs["ContinuationToken"] = result["NextContinuationToken"]
    assert got == model(prefix, delimiter, start_after)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(prefix=text, delimiter=st.sampled_from(["", "/", "b"]), page=st.integers(1, 6))
def test_list_objects_v1_matches_model(
    s3: Any, listed_bucket: str, prefix: str, delimiter: str, page: int
) -> None:
    kwargs: dict[str, Any] = {"Bucket": listed_bucket, "Prefix": prefix, "MaxKeys": page}
    if delimiter:
        kwargs["Delimiter"] = delimiter
    got: list[tuple[str, str]] = []
    while True:
        result = s3.list_objects(**kwargs)
        entries = [("key", c["Key"]) for c in result.get("Contents", [])]
        entries += [("prefix", p["Prefix"]) for p in result.get("CommonPrefixes", [])]
        got += sorted(entries, key=lambda e: e[1].encode())
        if not result["IsTruncated"]:
            break
        kwargs["Marker"] = result.get("NextMarker") or got[-1][1]
    assert got == model(prefix, delimiter, "")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(prefix=text, delimiter=st.sampled_from(["", "/"]), page=st.integers(1, 6))
def test_list_object_versions_matches_model(
    s3: Any, listed_bucket: str, prefix: str, delimiter: str, page: int
) -> None:
    kwargs: dict[str, Any] = {"Bucket": listed_bucket, "Prefix": prefix, "MaxKeys": page}
    if delimiter:
        kwargs["Delimiter"] = delimiter
    got: list[tuple[str, str]] = []
    while True:
        result = s3.list_object_versions(**kwargs)
        entries = [("key", v["Key"]) for v in result.get("Versions", [])]
        entries += [("prefix", p["Prefix"]) for p in result.get("CommonPrefixes", [])]
        got += sorted(entries, key=lambda e: e[1].encode())
        if not result["IsTruncated"]:
            break
        kwargs["KeyMarker"] = result["NextKeyMarker"]
        if result.get("NextVersionIdMarker"):
            kwargs["VersionIdMarker"] = result["NextVersionIdMarker"]
        else:
            kwargs.pop("VersionIdMarker", None)
    assert got == model(prefix, delimiter, "")
