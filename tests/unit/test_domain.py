"""Pure domain rules: ranges, preconditions, names, ETags."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from onshore.domain import etag, preconditions
from onshore.domain.errors import (
    InvalidBucketName,
    InvalidRange,
    KeyTooLongError,
    PreconditionFailed,
)
from onshore.domain.names import check_bucket_name, check_key
from onshore.domain.ranges import parse_range


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-0", 10, (0, 0)),
        ("bytes=0-", 10, (0, 9)),
        ("bytes=3-100", 10, (3, 9)),
        ("bytes=-3", 10, (7, 9)),
        ("bytes=-30", 10, (0, 9)),
        (None, 10, None),
        ("bytes=5-3", 10, None),
        ("bytes=a-b", 10, None),
        ("bytes=1-2,3-4", 10, None),
        ("pages=1-2", 10, None),
        ("bytes=-", 10, None),
    ],
)
def test_parse_range(header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    result = parse_range(header, size)
    assert (None if result is None else (result.start, result.end)) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=10-", 10), ("bytes=-0", 10), ("bytes=0-", 0)])
def test_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(InvalidRange):
        parse_range(header, size)


def test_preconditions_order() -> None:
    modified = datetime(2024, 1, 2, tzinfo=UTC)
    earlier = "Mon, 01 Jan 2024 00:00:00 GMT"
    later = "Wed, 03 Jan 2024 00:00:00 GMT"
    preconditions.check({"if-match": '"abc"', "if-unmodified-since": earlier}, "abc", modified)
    with pytest.raises(PreconditionFailed):
        preconditions.check({"if-match": '"x"'}, "abc", modified)
    with pytest.raises(PreconditionFailed):
        preconditions.check({"if-unmodified-since": earlier}, "abc", modified)
    with pytest.raises(preconditions.NotModified):
        preconditions.check({"if-none-match": '"abc"'}, "abc", modified)
    with pytest.raises(preconditions.NotModified):
        preconditions.check({"if-modified-since": later}, "abc", modified)
    preconditions.check({"if-none-match": '"x"', "if-modified-since": later}, "abc", modified)
    with pytest.raises(PreconditionFailed):
        preconditions.check(
            {"x-amz-copy-source-if-none-match": '"abc"'},
            "abc",
            modified,
            prefix="x-amz-copy-source-if-",
        )
    preconditions.check({"if-modified-since": "garbage"}, "abc", modified)


def test_names() -> None:
    check_bucket_name("my.bucket-1")
    for bad in ("ab", "ABC", "a_b", "a..b", "1.2.3.4", "onshore", "-ab", "ab-", "x" * 64):
        with pytest.raises(InvalidBucketName):
            check_bucket_name(bad)
    check_key("k" * 1024)
    check_key("é" * 512)
    with pytest.raises(KeyTooLongError):
        check_key("é" * 513)


def test_multipart_etag() -> None:
    import hashlib

    parts = [b"a" * 10, b"b" * 20]
    expected = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-2"
    assert etag.multipart_etag(hashlib.md5(p).hexdigest() for p in parts) == expected
    assert etag.matches('W/"abc", "def"', "def")
    assert etag.matches("*", "zzz")


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 1844674407370955161601 May 2024 12:00:00 GMT",  # found by hypothesis: OverflowError
        "Wed, 01 May 99999999999999999999 12:00:00 GMT",
        "not a date",
        "",
    ],
)
def test_an_unparseable_http_date_is_ignored(value: str) -> None:
    from onshore.domain.preconditions import parse_http_date

    assert parse_http_date(value) is None
