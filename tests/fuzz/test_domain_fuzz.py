"""Fuzz the pure domain parsers: Range headers, key and bucket names, conditional headers."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from hypothesis import example, given
from hypothesis import strategies as st

from onshore.domain.errors import InvalidBucketName, InvalidRange, S3Error
from onshore.domain.names import MAX_KEY_BYTES, check_bucket_name, check_key
from onshore.domain.numbers import HUGE
from onshore.domain.preconditions import NotModified, check
from onshore.domain.ranges import ByteRange, parse_range
from tests.fuzz.support import fuzz_settings, hostile_text, mutated_text, s3_outcome

SIZES = st.one_of(st.integers(0, 10), st.integers(0, 5 * 1024**4))


# --- Range --------------------------------------------------------------------------------------
def range_headers() -> st.SearchStrategy[str]:
    number = st.one_of(st.integers(0, 2**70).map(str), hostile_text(12))
    shaped = st.builds(
        lambda unit, first, last: f"{unit}={first}-{last}",
        st.sampled_from(["bytes", "Bytes", " bytes ", "items", ""]),
        st.one_of(st.just(""), number),
        st.one_of(st.just(""), number),
    )
    return st.one_of(hostile_text(60), shaped, shaped.flatmap(mutated_text))


@fuzz_settings(400)
@given(header=range_headers(), size=SIZES)
@example(header="bytes=²-", size=10)
@example(header="bytes=-²", size=10)
@example(header="bytes=0-²", size=10)
@example(header="bytes=١-", size=10)
@example(header="bytes=" + "9" * 5000 + "-", size=10)
@example(header="bytes=0-" + "9" * 5000, size=10)
@example(header="bytes=-" + "9" * 5000, size=10)
def test_parse_range(header: str, size: int) -> None:
    """None (serve it all), a range inside the object, or 416 InvalidRange; nothing else."""
    outcome = s3_outcome(lambda: parse_range(header, size))
    if isinstance(outcome, S3Error):
        assert isinstance(outcome, InvalidRange)
    elif outcome is not None:
        assert isinstance(outcome, ByteRange)
        assert 0 <= outcome.start <= outcome.end < size == outcome.total


@fuzz_settings(100)
@given(first=st.integers(0, HUGE), last=st.integers(0, HUGE), size=SIZES)
def test_parse_range_agrees_with_arithmetic(first: int, last: int, size: int) -> None:
    """Well-formed ranges mean what RFC 9110 says, up to magnitudes no object reaches."""
    outcome = s3_outcome(lambda: parse_range(f"bytes={first}-{last}", size))
    if last < first:
        assert outcome is None
    elif first >= size:
        assert isinstance(outcome, InvalidRange)
    else:
        assert outcome == ByteRange(first, min(last, size - 1), size)


# --- names --------------------------------------------------------------------------------------
@fuzz_settings(300)
@given(key=st.one_of(hostile_text(), st.text(min_size=1000, max_size=1100)))
@example(key="\ud800")
@example(key="a" * MAX_KEY_BYTES)
@example(key="€" * 342)
def test_check_key(key: str) -> None:
    """A key is valid exactly when it is non-empty UTF-8 of at most 1,024 bytes."""
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        size = -1
    outcome = s3_outcome(lambda: check_key(key))
    assert (outcome is None) == (1 <= size <= MAX_KEY_BYTES)


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")


@fuzz_settings(300)
@given(
    name=st.one_of(
        hostile_text(),
        st.from_regex(_BUCKET, fullmatch=True),
        st.from_regex(_BUCKET, fullmatch=True).flatmap(mutated_text),
    )
)
@example(name="a\n")
@example(name="abc\n")
@example(name="192.168.0.1")
def test_check_bucket_name(name: str) -> None:
    """Never accepts a name outside the AWS alphabet and length; only InvalidBucketName."""
    outcome = s3_outcome(lambda: check_bucket_name(name))
    if outcome is None:
        assert _BUCKET.fullmatch(name), name
    else:
        assert isinstance(outcome, InvalidBucketName)


# --- conditional headers ------------------------------------------------------------------------
ETAG = "5d41402abc4b2a76b9719d911017c592"
MODIFIED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
DATE = "Wed, 01 May 2024 12:00:00 GMT"


def condition_headers(prefix: str) -> st.SearchStrategy[dict[str, str]]:
    values = st.one_of(
        hostile_text(),
        st.sampled_from([f'"{ETAG}"', f'W/"{ETAG}"', "*", f'"x", "{ETAG}"', DATE]),
        st.just(DATE).flatmap(mutated_text),
        st.just(f'"{ETAG}"').flatmap(mutated_text),
    )
    names = st.sampled_from(
        [prefix + n for n in ("match", "none-match", "modified-since", "unmodified-since")]
    )
    return st.dictionaries(names, values, max_size=4)


@fuzz_settings(300)
@given(data=st.data(), copy=st.booleans())
@example(data=None, copy=False)
def test_preconditions(data: st.DataObject | None, copy: bool) -> None:
    """Pass, 304 (``NotModified``, GET/HEAD only) or 412; dates that do not parse are ignored."""
    prefix = "x-amz-copy-source-if-" if copy else "if-"
    if data is None:
        headers = {prefix + "modified-since": "Wed, 01 May 9999999 12:00:00 GMT"}
    else:
        headers = data.draw(condition_headers(prefix))
    try:
        outcome = s3_outcome(lambda: check(headers, ETAG, MODIFIED, prefix=prefix))
    except NotModified:
        assert not copy
        return
    assert outcome is None or outcome.status == 412
