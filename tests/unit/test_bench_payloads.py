"""Payloads and the S3 response readers of the load generator."""

from __future__ import annotations

import zlib

from onshore.bench.payloads import CHUNK, CrcStream, PayloadPool
from onshore.bench.s3 import Endpoint, parse_keys, parse_list_page, parse_upload_id


def test_bodies_are_deterministic_distinct_views() -> None:
    a, b = PayloadPool(seed=3), PayloadPool(seed=3)
    assert bytes(a.body(7, 4096)) == bytes(b.body(7, 4096))
    assert bytes(a.body(7, 4096)) != bytes(a.body(8, 4096))
    assert isinstance(a.body(1, 4096), memoryview)
    assert len(a.body(123, 0)) == 0


def test_stream_is_bounded_reproducible_and_checksummed() -> None:
    pool = PayloadPool(seed=1)
    size = 3 * CHUNK + 123
    chunks = list(pool.stream(5, size))
    assert sum(len(c) for c in chunks) == size
    assert max(len(c) for c in chunks) == CHUNK
    whole = b"".join(chunks)
    assert zlib.crc32(whole) == pool.stream_crc(5, size)
    wrapped = CrcStream(pool.stream(5, size))
    assert b"".join(wrapped) == whole
    assert (wrapped.crc, wrapped.length) == (zlib.crc32(whole), size)
    assert pool.stream_crc(6, size) != pool.stream_crc(5, size)


def test_list_page_parsing() -> None:
    xml = (
        b"<ListBucketResult><IsTruncated>true</IsTruncated>"
        b"<Contents><Key>a&amp;b</Key></Contents><Contents><Key>c</Key></Contents>"
        b"<CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes>"
        b"<NextContinuationToken>tok&amp;en</NextContinuationToken></ListBucketResult>"
    )
    page = parse_list_page(xml)
    assert (page.keys, page.prefixes, page.truncated, page.token) == (2, 1, True, "tok&en")
    assert parse_keys(xml) == ["a&b", "c"]
    last = parse_list_page(b"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>")
    assert (last.keys, last.truncated, last.token) == (0, False, None)
    assert parse_upload_id(b"<X><UploadId>u-1</UploadId></X>") == "u-1"


def test_endpoints() -> None:
    assert Endpoint.parse("http://127.0.0.1:9000") == Endpoint("127.0.0.1", 9000)
    assert Endpoint.parse("localhost:9000").is_loopback()
    assert Endpoint.parse("http://[::1]:9000").netloc == "[::1]:9000"
    assert not Endpoint.parse("http://10.0.0.1:9000").is_loopback()
