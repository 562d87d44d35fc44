"""SigV4 verification: AWS's published vectors, requests signed by botocore, and every refusal."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import quote, unquote_to_bytes, urlsplit

import boto3  # type: ignore[import-untyped]
import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, _host_from_url  # type: ignore[import-untyped]
from botocore.awsrequest import AWSPreparedRequest, AWSRequest  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from onshore.domain.errors import (
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidRequest,
    RequestTimeTooSkewed,
    S3Error,
    SignatureDoesNotMatch,
)
from onshore.domain.errors import NotImplemented as S3NotImplemented
from onshore.s3api.auth import AuthResult, PayloadMode, authenticate, sigv4

EMPTY = hashlib.sha256(b"").hexdigest()

# --- AWS's generic test suite (aws-sig-v4-test-suite), service "service" ------------------------
SUITE_KEY, SUITE_SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SUITE_NOW = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
SUITE_HOST = {"host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z"}
SUITE_TOKEN = (
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpS"
    "PfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT"
    "7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm"
    "8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
)

# name, method, path, query, extra headers, body, signed headers, signature
# fmt: off
SUITE = [
    ("get-vanilla", "GET", "/", "", {}, b"", "host;x-amz-date",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    ("get-vanilla-query-order-key-case", "GET", "/", "Param2=value2&Param1=value1", {}, b"",
     "host;x-amz-date", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
    ("get-vanilla-query-order-value", "GET", "/", "Param1=value2&Param1=value1", {}, b"",
     "host;x-amz-date", "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"),
    ("get-vanilla-empty-query-key", "GET", "/", "Param1=value1", {}, b"", "host;x-amz-date",
     "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"),
    ("get-vanilla-query-unreserved", "GET", "/",
     "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
     "=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", {}, b"",
     "host;x-amz-date", "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"),
    ("get-vanilla-utf8-query", "GET", "/", "\u1234=bar", {}, b"", "host;x-amz-date",
     "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"),
    ("get-unreserved", "GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
     "", {}, b"", "host;x-amz-date",
     "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"),
    ("get-utf8", "GET", "/\u1234", "", {}, b"", "host;x-amz-date",
     "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
    ("get-header-key-duplicate", "GET", "/", "", {"my-header1": "value2,value2,value1"}, b"",
     "host;my-header1;x-amz-date",
     "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"),
    ("get-header-value-multiline", "GET", "/", "", {"my-header1": "value1,value2,value3"}, b"",
     "host;my-header1;x-amz-date",
     "ba17b383a53190154eb5fa66a1b836cc297cc0a3d70a5d00705980573d8ff790"),
    ("get-header-value-trim", "GET", "/", "",
     {"my-header1": " value1", "my-header2": '"a   b   c"'}, b"",
     "host;my-header1;my-header2;x-amz-date",
     "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
    ("post-vanilla-empty-query-value", "POST", "/", "Param1=value1", {}, b"", "host;x-amz-date",
     "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"),
    ("post-header-key-sort", "POST", "/", "", {"my-header1": "value1"}, b"",
     "host;my-header1;x-amz-date",
     "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"),
    ("post-header-value-case", "POST", "/", "", {"my-header1": "VALUE1"}, b"",
     "host;my-header1;x-amz-date",
     "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"),
    ("post-x-www-form-urlencoded", "POST", "/", "",
     {"content-type": "application/x-www-form-urlencoded"}, b"Param1=value1",
     "content-type;host;x-amz-date",
     "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
    ("post-sts-header-before", "POST", "/", "", {"x-amz-security-token": SUITE_TOKEN}, b"",
     "host;x-amz-date;x-amz-security-token",
     "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"),
]
# fmt: on


def suite_lookup(access_key: str) -> str | None:
    return SUITE_SECRET if access_key == SUITE_KEY else None


@pytest.mark.parametrize(
    ("method", "path", "query", "extra", "body", "signed", "expected"),
    [case[1:] for case in SUITE],
    ids=[case[0] for case in SUITE],
)
def test_aws4_testsuite(
    method: str,
    path: str,
    query: str,
    extra: dict[str, str],
    body: bytes,
    signed: str,
    expected: str,
) -> None:
    headers = {
        **SUITE_HOST,
        **extra,
        # The suite predates x-amz-content-sha256; sent unsigned, it only supplies the payload
        # hash of the canonical request, exactly as the suite computes it.
        "x-amz-content-sha256": hashlib.sha256(body).hexdigest(),
        "authorization": (
            f"AWS4-HMAC-SHA256 Credential={SUITE_KEY}/20150830/us-east-1/service/aws4_request, "
            f"SignedHeaders={signed}, Signature={expected}"
        ),
    }
    result = authenticate(
        method,
        path,
        query,
        headers,
        lookup=suite_lookup,
        region="us-east-1",
        now=SUITE_NOW,
        service="service",
    )
    assert result.access_key == SUITE_KEY
    assert result.signed_at == datetime(2015, 8, 30, 12, 36, tzinfo=UTC)


def test_aws4_testsuite_intermediate_steps() -> None:
    """post-x-www-form-urlencoded: the published canonical request and string to sign."""
    headers = {**SUITE_HOST, "content-type": "application/x-www-form-urlencoded"}
    signed = ["content-type", "host", "x-amz-date"]
    canonical = sigv4.canonical_request(
        "POST",
        "/",
        sigv4.canonical_query(""),
        sigv4.canonical_headers(headers, signed),
        ";".join(signed),
        hashlib.sha256(b"Param1=value1").hexdigest(),
    )
    assert canonical == (
        "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
        "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"
    )
    sts = sigv4.string_to_sign(
        "20150830T123600Z", "20150830/us-east-1/service/aws4_request", canonical
    )
    assert sts == (
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
        "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281"
    )
    key = sigv4.signing_key(SUITE_SECRET, "20150830", "us-east-1", "service")
    assert sigv4.signature(key, sts) == (
        "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
    )
    # get-vanilla-query-order-value: repeated names sort by value.
    assert sigv4.canonical_query("Param1=value2&Param1=value1") == "Param1=value1&Param1=value2"
    order_value = sigv4.canonical_request(
        "GET",
        "/",
        sigv4.canonical_query("Param1=value2&Param1=value1"),
        sigv4.canonical_headers(SUITE_HOST, ["host", "x-amz-date"]),
        "host;x-amz-date",
        EMPTY,
    )
    assert sigv4.string_to_sign(
        "20150830T123600Z", "20150830/us-east-1/service/aws4_request", order_value
    ).endswith("c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606")


# --- AWS's S3 documentation examples ------------------------------------------------------------
S3_KEY, S3_SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
S3_NOW = datetime(2013, 5, 24, 0, 3, tzinfo=UTC)
S3_HOST = "examplebucket.s3.amazonaws.com"


def s3_lookup(access_key: str) -> str | None:
    return S3_SECRET if access_key == S3_KEY else None


def s3_auth(signed: str, signature: str) -> str:
    return (
        f"AWS4-HMAC-SHA256 Credential={S3_KEY}/20130524/us-east-1/s3/aws4_request,"
        f"SignedHeaders={signed},Signature={signature}"
    )


def s3_headers(**extra: str) -> dict[str, str]:
    return {
        "host": S3_HOST,
        "x-amz-date": "20130524T000000Z",
        "x-amz-content-sha256": EMPTY,
        **extra,
    }


# fmt: off
S3_EXAMPLES = [
    ("get-object-range", "GET", "/test.txt", "", s3_headers(range="bytes=0-9"),
     "host;range;x-amz-content-sha256;x-amz-date",
     "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
    ("put-object", "PUT", "/test%24file.text", "",
     {**s3_headers(**{"x-amz-storage-class": "REDUCED_REDUNDANCY"}),
      "date": "Fri, 24 May 2013 00:00:00 GMT",
      "x-amz-content-sha256": hashlib.sha256(b"Welcome to Amazon S3.").hexdigest()},
     "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
     "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"),
    ("get-bucket-lifecycle", "GET", "/", "lifecycle", s3_headers(),
     "host;x-amz-content-sha256;x-amz-date",
     "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
    ("list-objects", "GET", "/", "max-keys=2&prefix=J", s3_headers(),
     "host;x-amz-content-sha256;x-amz-date",
     "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
]
# fmt: on


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "signed", "expected"),
    [case[1:] for case in S3_EXAMPLES],
    ids=[case[0] for case in S3_EXAMPLES],
)
def test_s3_documentation_examples(
    method: str, path: str, query: str, headers: dict[str, str], signed: str, expected: str
) -> None:
    headers = {**headers, "authorization": s3_auth(signed, expected)}
    result = authenticate(
        method, path, query, headers, lookup=s3_lookup, region="us-east-1", now=S3_NOW
    )
    assert result == AuthResult(
        access_key=S3_KEY,
        payload_mode=PayloadMode.SIGNED,
        content_sha256=headers["x-amz-content-sha256"],
        signing=None,
        presigned=False,
        signed_at=datetime(2013, 5, 24, tzinfo=UTC),
    )
    # One changed signature byte is refused.
    bad = expected[:-1] + ("0" if expected[-1] != "0" else "1")
    headers["authorization"] = s3_auth(signed, bad)
    with pytest.raises(SignatureDoesNotMatch):
        authenticate(method, path, query, headers, lookup=s3_lookup, region="us-east-1", now=S3_NOW)


def test_s3_documentation_put_object_canonical_request() -> None:
    _, method, path, query, headers, signed, _ = S3_EXAMPLES[1]
    names = signed.split(";")
    canonical = sigv4.canonical_request(
        method,
        path,
        query,
        sigv4.canonical_headers(headers, names),
        signed,
        headers["x-amz-content-sha256"],
    )
    sts = sigv4.string_to_sign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request", canonical)
    assert sts.endswith("9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d")


PRESIGNED_QUERY = (
    "X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
    "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
)


def test_s3_documentation_presigned_url() -> None:
    result = authenticate(
        "GET",
        "/test.txt",
        PRESIGNED_QUERY,
        {"host": S3_HOST},
        lookup=s3_lookup,
        region="us-east-1",
        now=datetime(2013, 5, 24, 23, 59, tzinfo=UTC),
    )
    assert result.presigned
    assert result.access_key == S3_KEY
    assert result.payload_mode is PayloadMode.UNSIGNED
    assert result.signed_at == datetime(2013, 5, 24, tzinfo=UTC)
    with pytest.raises(SignatureDoesNotMatch):
        authenticate(
            "GET",
            "/test.txt",
            PRESIGNED_QUERY.replace("86400", "86399"),
            {"host": S3_HOST},
            lookup=s3_lookup,
            region="us-east-1",
            now=S3_NOW,
        )
    with pytest.raises(AccessDenied, match="Request has expired") as expired:
        authenticate(
            "GET",
            "/test.txt",
            PRESIGNED_QUERY,
            {"host": S3_HOST},
            lookup=s3_lookup,
            region="us-east-1",
            now=datetime(2013, 5, 25, 0, 0, 1, tzinfo=UTC),
        )
    assert expired.value.details["X-Amz-Expires"] == "86400"


STREAMING_SIGNED_HEADERS = (
    "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
    "x-amz-decoded-content-length;x-amz-storage-class"
)


def streaming_example_headers(trailer: bool = False) -> dict[str, str]:
    """The request of AWS's "Transferring Payload in Multiple Chunks" example (and its variant
    with a trailing checksum)."""
    headers = {
        "host": "s3.amazonaws.com",
        "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560",
        "content-length": "66824",
    }
    if not trailer:
        headers["authorization"] = s3_auth(
            STREAMING_SIGNED_HEADERS,
            "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
        )
        return headers
    del headers["content-length"]
    headers["x-amz-content-sha256"] = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
    headers["x-amz-trailer"] = "x-amz-checksum-crc32c"
    headers["authorization"] = s3_auth(
        "content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;"
        "x-amz-storage-class;x-amz-trailer",
        "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e",
    )
    return headers


@pytest.mark.parametrize("trailer", [False, True])
def test_s3_documentation_streaming_seed_signature(trailer: bool) -> None:
    result = authenticate(
        "PUT",
        "/examplebucket/chunkObject.txt",
        "",
        streaming_example_headers(trailer),
        lookup=s3_lookup,
        region="us-east-1",
        now=S3_NOW,
    )
    assert result.signing is not None
    assert result.signing.seed_signature == (
        "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
        if trailer
        else "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    )
    assert result.signing.scope == "20130524/us-east-1/s3/aws4_request"
    assert result.payload_mode is (
        PayloadMode.STREAMING_SIGNED_TRAILER if trailer else PayloadMode.STREAMING_SIGNED
    )
    assert "key" not in repr(result.signing)  # the signing key is never printed


def test_s3_documentation_chunk_and_trailer_signatures() -> None:
    key = sigv4.signing_key(S3_SECRET, "20130524", "us-east-1")
    info = sigv4.SigningKeyInfo(
        key,
        "20130524T000000Z",
        "20130524/us-east-1/s3/aws4_request",
        "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
    )
    first = info.chunk_signature(info.seed_signature, hashlib.sha256(b"a" * 65536).hexdigest())
    assert first == "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
    second = info.chunk_signature(first, hashlib.sha256(b"a" * 1024).hexdigest())
    assert second == "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
    assert info.chunk_signature(second, EMPTY) == (
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
    )
    assert (
        info.trailer_signature(
            "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
            b"x-amz-checksum-crc32c:sOO8/Q==\n",
        )
        == "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"
    )


# --- requests signed by botocore ----------------------------------------------------------------
ACCESS, SECRET = "AKIDONSHORE0000000001", "onshore/secret+key=="


def lookup(access_key: str) -> str | None:
    return SECRET if access_key == ACCESS else None


def server_view(request: AWSRequest | AWSPreparedRequest) -> tuple[str, str, str, dict[str, str]]:
    """What the ASGI app hands to authenticate(): raw path and query, lower-case headers."""
    assert request.method is not None and request.url is not None
    parts = urlsplit(request.url)
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        key = name.lower()
        headers[key] = f"{headers[key]},{text}" if key in headers else text
    headers.setdefault("host", _host_from_url(request.url))
    return request.method, parts.path or "/", parts.query, headers


def botocore_sign(
    method: str,
    url: str,
    headers: Mapping[str, str] | None = None,
    data: bytes = b"",
    *,
    secret: str = SECRET,
    region: str = "us-east-1",
    token: str | None = None,
    expires: int | None = None,
    unsigned_payload: bool = False,
) -> tuple[str, str, str, dict[str, str]]:
    request = AWSRequest(method=method, url=url, headers=dict(headers or {}), data=data)
    if unsigned_payload:
        request.context["client_config"] = SimpleNamespace(s3={"payload_signing_enabled": False})
    credentials = Credentials(ACCESS, secret, token)
    if expires is None:
        S3SigV4Auth(credentials, "s3", region).add_auth(request)
    else:
        S3SigV4QueryAuth(credentials, "s3", region, expires=expires).add_auth(request)
    return server_view(request)


def verify(view: tuple[str, str, str, dict[str, str]], **kwargs: object) -> AuthResult:
    method, path, query, headers = view
    options: dict[str, object] = {"lookup": lookup, "region": "us-east-1", **kwargs}
    return authenticate(method, path, query, headers, **options)  # type: ignore[arg-type]


KEYS = [
    "plain.txt",
    "with%20space/and%2Bplus",
    "unicode/%D0%BA%D0%BB%D1%8E%D1%87-%E6%97%A5%E6%9C%AC",
    "reserved/%21%24%26%27%28%29%2A%2C%3B%3D%3A%40",
    "tilde~and-dots..//double-slash/./dot",
    "encoded%2Fslash",
]


@pytest.mark.parametrize("key", KEYS)
def test_botocore_header_auth(key: str) -> None:
    view = botocore_sign(
        "GET",
        f"http://localhost:9000/bucket/{key}?versionId=3%2F4&x-id=GetObject",
        {"Range": "bytes=0-9"},
    )
    result = verify(view)
    assert result.access_key == ACCESS
    assert result.payload_mode is PayloadMode.SIGNED
    assert result.content_sha256 == EMPTY
    assert not result.presigned
    assert result.signed_at is not None
    assert abs(result.signed_at - datetime.now(UTC)) < timedelta(minutes=1)


def test_botocore_put_signed_and_unsigned_payload() -> None:
    body = b"hello onshore"
    signed = verify(
        botocore_sign("PUT", "http://localhost:9000/b/k", {"Content-Type": "a/b"}, body)
    )
    assert signed.payload_mode is PayloadMode.SIGNED
    assert signed.content_sha256 == hashlib.sha256(body).hexdigest()
    unsigned = verify(
        botocore_sign("PUT", "https://localhost:9000/b/k", {}, body, unsigned_payload=True)
    )
    assert unsigned.payload_mode is PayloadMode.UNSIGNED
    assert unsigned.content_sha256 is None


def test_botocore_session_token_is_reported() -> None:
    result = verify(botocore_sign("GET", "http://localhost:9000/b", token="session-token"))
    assert result.security_token == "session-token"
    presigned = verify(botocore_sign("GET", "http://localhost:9000/b", token="tok", expires=60))
    assert presigned.security_token == "tok"


@pytest.mark.parametrize("key", KEYS)
def test_botocore_presigned_url(key: str) -> None:
    view = botocore_sign(
        "GET", f"https://s3.example.test/bucket/{key}?response-content-type=a%2Fb", expires=3600
    )
    result = verify(view)
    assert result.presigned
    assert result.access_key == ACCESS
    assert result.payload_mode is PayloadMode.UNSIGNED


def test_botocore_presigned_put_with_signed_header() -> None:
    view = botocore_sign(
        "PUT", "https://s3.example.test/b/k", {"x-amz-acl": "private"}, expires=600
    )
    assert verify(view).presigned
    method, path, query, headers = view
    # An x-amz-* header added to a presigned request without being signed is refused.
    with pytest.raises(AccessDenied, match="not signed") as excinfo:
        verify((method, path, query, {**headers, "x-amz-meta-evil": "1"}))
    assert excinfo.value.details["HeadersNotSigned"] == "x-amz-meta-evil"
    with pytest.raises(SignatureDoesNotMatch):
        verify((method, path, query, {**headers, "x-amz-acl": "public-read"}))


def boto3_client(endpoint: str = "https://s3.example.test:9000", **config: object) -> object:
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS,
        aws_secret_access_key=SECRET,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 0},
            signature_version="s3v4",
            **config,
        ),
    )
    return client


class Captured(Exception):
    pass


def capture(client: object, operation: str, **params: object) -> AWSPreparedRequest:
    """The request a boto3 client sends, caught before it reaches the network."""

    def before_send(request: AWSPreparedRequest, **_: object) -> None:
        raise Captured(request)

    client.meta.events.register("before-send.s3", before_send)  # type: ignore[attr-defined]
    with pytest.raises(Captured) as caught:
        getattr(client, operation)(**params)
    request = caught.value.args[0]
    assert isinstance(request, AWSPreparedRequest)
    return request


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("get_object", {"Bucket": "b", "Key": "ключ/x y+z", "Range": "bytes=0-9"}),
        ("list_objects_v2", {"Bucket": "b", "Prefix": "a b+c/", "Delimiter": "/"}),
        ("head_bucket", {"Bucket": "b"}),
        ("delete_objects", {"Bucket": "b", "Delete": {"Objects": [{"Key": "k"}]}}),
        (
            "put_object",
            {"Bucket": "b", "Key": "k", "Body": b"x" * 100, "ChecksumAlgorithm": "SHA256"},
        ),
    ],
)
def test_boto3_client_requests(operation: str, params: dict[str, object]) -> None:
    request = capture(boto3_client(), operation, **params)
    result = verify(server_view(request))
    assert result.access_key == ACCESS


def test_boto3_streaming_put_uses_unsigned_trailer() -> None:
    request = capture(boto3_client(), "put_object", Bucket="b", Key="k", Body=b"hello" * 1000)
    result = verify(server_view(request))
    assert result.payload_mode is PayloadMode.STREAMING_UNSIGNED_TRAILER
    assert result.signing is not None  # streaming modes always carry the signing context


def test_boto3_generate_presigned_url() -> None:
    client = boto3_client()
    url = client.generate_presigned_url(  # type: ignore[attr-defined]
        "get_object", Params={"Bucket": "b", "Key": "dir/x y+ü"}, ExpiresIn=300
    )
    parts = urlsplit(url)
    result = verify(("GET", parts.path, parts.query, {"host": parts.netloc}))
    assert result.presigned and result.access_key == ACCESS


# --- refusals -----------------------------------------------------------------------------------
def test_anonymous_requests() -> None:
    result = authenticate("GET", "/b/k", "", {"host": "h"}, lookup=lookup, region="us-east-1")
    assert result.access_key is None and result.anonymous
    assert result.payload_mode is PayloadMode.UNSIGNED
    chunked = authenticate(
        "PUT",
        "/b/k",
        "",
        {"host": "h", "content-encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc32"},
        lookup=lookup,
        region="us-east-1",
    )
    assert chunked.payload_mode is PayloadMode.STREAMING_UNSIGNED_TRAILER
    hashed = authenticate(
        "PUT",
        "/b/k",
        "",
        {"host": "h", "x-amz-content-sha256": EMPTY},
        lookup=lookup,
        region="us-east-1",
    )
    assert hashed.payload_mode is PayloadMode.SIGNED and hashed.content_sha256 == EMPTY
    with pytest.raises(InvalidRequest):
        authenticate(
            "PUT",
            "/b/k",
            "",
            {"host": "h", "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"},
            lookup=lookup,
            region="us-east-1",
        )


def test_wrong_secret() -> None:
    view = botocore_sign("GET", "http://localhost:9000/b/k", secret="not the secret")
    with pytest.raises(SignatureDoesNotMatch) as excinfo:
        verify(view)
    details = excinfo.value.details
    assert details["AWSAccessKeyId"] == ACCESS
    assert details["StringToSign"].startswith("AWS4-HMAC-SHA256\n")
    assert SECRET not in str(excinfo.value) and SECRET not in repr(details)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("range", "bytes=0-10"),
        ("x-amz-date", None),
        ("host", "other.example"),
        ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
    ],
)
def test_tampered_header(header: str, value: str | None) -> None:
    method, path, query, headers = botocore_sign(
        "GET", "http://localhost:9000/b/k", {"Range": "bytes=0-9"}
    )
    if value is None:  # shift the date by one second
        value = headers[header][:-3] + ("01Z" if not headers[header].endswith("01Z") else "02Z")
    with pytest.raises(SignatureDoesNotMatch):
        verify((method, path, query, {**headers, header: value}))


def test_tampered_path_query_and_method() -> None:
    method, path, query, headers = botocore_sign("GET", "http://localhost:9000/b/k?a=1")
    for changed in [
        ("PUT", path, query),
        (method, path + "x", query),
        (method, path, "a=2"),
        (method, path, query + "&b="),
    ]:
        with pytest.raises(SignatureDoesNotMatch):
            verify((*changed, headers))


def test_signature_error_never_carries_a_session_token() -> None:
    view = botocore_sign("GET", "http://localhost:9000/b/k", secret="wrong", token="tok3n-value")
    with pytest.raises(SignatureDoesNotMatch) as excinfo:
        verify(view)
    assert "tok3n-value" not in repr(excinfo.value.details)
    with pytest.raises(SignatureDoesNotMatch) as excinfo:
        verify(botocore_sign("GET", "http://localhost:9000/b/k", secret="wrong"))
    assert excinfo.value.details["CanonicalRequest"].startswith("GET\n/b/k\n")


def test_unknown_access_key() -> None:
    view = botocore_sign("GET", "http://localhost:9000/b/k")
    with pytest.raises(InvalidAccessKeyId) as excinfo:
        verify(view, lookup=lambda _: None)
    assert excinfo.value.details["AWSAccessKeyId"] == ACCESS


def test_request_time_too_skewed() -> None:
    view = botocore_sign("GET", "http://localhost:9000/b/k")
    verify(view, now=datetime.now(UTC) + timedelta(minutes=14))
    with pytest.raises(RequestTimeTooSkewed):
        verify(view, now=datetime.now(UTC) + timedelta(minutes=16))
    with pytest.raises(RequestTimeTooSkewed):
        verify(view, now=datetime.now(UTC) - timedelta(minutes=16))


def test_wrong_region_message() -> None:
    view = botocore_sign("GET", "http://localhost:9000/b/k", region="eu-west-1")
    with pytest.raises(AuthorizationHeaderMalformed) as excinfo:
        verify(view)
    assert "the region 'eu-west-1' is wrong; expecting 'us-east-1'" in excinfo.value.message
    assert excinfo.value.details["Region"] == "us-east-1"
    presigned = botocore_sign("GET", "http://localhost:9000/b/k", region="eu-west-1", expires=60)
    with pytest.raises(AuthorizationQueryParametersError, match="is wrong; expecting"):
        verify(presigned)


def test_other_service_is_refused_unless_configured() -> None:
    request = AWSRequest(method="GET", url="http://localhost:9000/b/k")
    S3SigV4Auth(Credentials(ACCESS, SECRET), "iam", "us-east-1").add_auth(request)
    view = server_view(request)
    with pytest.raises(AuthorizationHeaderMalformed, match='incorrect service "iam"'):
        verify(view)
    assert verify(view, service="iam").access_key == ACCESS


_CRED = "AWS4-HMAC-SHA256 Credential=AK/"
_REST = ", SignedHeaders=host, Signature=ab"


@pytest.mark.parametrize(
    ("authorization", "error"),
    [
        (f"{_CRED}20130524/us-east-1/s3/aws4_request", AuthorizationHeaderMalformed),
        (f"{_CRED}20130524/us-east-1/s3{_REST}", AuthorizationHeaderMalformed),
        (f"{_CRED}2013052/us-east-1/s3/aws4_request{_REST}", AuthorizationHeaderMalformed),
        (f"{_CRED}20130524/us-east-1/s3/aws5_request{_REST}", AuthorizationHeaderMalformed),
        (f"{_CRED}20130525/us-east-1/s3/aws4_request{_REST}", AuthorizationHeaderMalformed),
        (
            f"{_CRED}20130524/us-east-1/s3/aws4_request, SignedHeaders=x-amz-date, Signature=ab",
            AuthorizationHeaderMalformed,
        ),
        ("AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=", InvalidRequest),
        ("AWS4-ECDSA-P256-SHA256 Credential=AK/20130524/s3/aws4_request", S3NotImplemented),
        ("Bearer abc", InvalidArgument),
        ("AWS4-HMAC-SHA256", AuthorizationHeaderMalformed),
    ],
)
def test_malformed_authorization(authorization: str, error: type[S3Error]) -> None:
    headers = s3_headers(authorization=authorization)
    with pytest.raises(error):
        authenticate("GET", "/", "", headers, lookup=s3_lookup, region="us-east-1", now=S3_NOW)


def test_spaces_and_commas_are_tolerated_in_authorization() -> None:
    _, method, path, query, headers, signed, sig = S3_EXAMPLES[0]
    headers = {
        **headers,
        "authorization": (
            f"AWS4-HMAC-SHA256   Credential={S3_KEY}/20130524/us-east-1/s3/aws4_request ,"
            f"SignedHeaders={signed},  Signature={sig}"
        ),
    }
    assert (
        authenticate(
            method, path, query, headers, lookup=s3_lookup, region="us-east-1", now=S3_NOW
        ).access_key
        == S3_KEY
    )


def test_missing_content_sha256_and_date() -> None:
    method, path, query, headers = botocore_sign("GET", "http://localhost:9000/b/k")
    without_hash = {k: v for k, v in headers.items() if k != "x-amz-content-sha256"}
    with pytest.raises(InvalidRequest, match="x-amz-content-sha256"):
        verify((method, path, query, without_hash))
    without_date = {k: v for k, v in headers.items() if k != "x-amz-date"}
    with pytest.raises(AccessDenied, match="valid Date or x-amz-date"):
        verify((method, path, query, without_date))
    with pytest.raises(InvalidArgument):
        verify((method, path, query, {**headers, "x-amz-content-sha256": "nonsense"}))


def test_date_header_instead_of_x_amz_date() -> None:
    """Without x-amz-date, the request time (and the string to sign) comes from Date."""
    headers = {
        "host": S3_HOST,
        "date": "Fri, 24 May 2013 00:00:00 GMT",
        "x-amz-content-sha256": EMPTY,
    }
    signed = ["date", "host", "x-amz-content-sha256"]
    canonical = sigv4.canonical_request(
        "GET", "/k", "", sigv4.canonical_headers(headers, signed), ";".join(signed), EMPTY
    )
    sts = sigv4.string_to_sign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request", canonical)
    sig = sigv4.signature(sigv4.signing_key(S3_SECRET, "20130524", "us-east-1"), sts)
    headers["authorization"] = s3_auth(";".join(signed), sig)
    result = authenticate(
        "GET", "/k", "", headers, lookup=s3_lookup, region="us-east-1", now=S3_NOW
    )
    assert result.signed_at == datetime(2013, 5, 24, tzinfo=UTC)
    for bad in ("yesterday", "Fri, 99 May 2013 00:00:00 GMT", "Fri, 24 May 2013 25:00:00 GMT"):
        with pytest.raises(AccessDenied, match="valid Date or x-amz-date"):
            authenticate(
                "GET",
                "/k",
                "",
                {**headers, "date": bad},
                lookup=s3_lookup,
                region="us-east-1",
                now=S3_NOW,
            )


def test_both_mechanisms_at_once() -> None:
    headers = s3_headers(authorization=s3_auth("host", "00"))
    with pytest.raises(InvalidArgument, match="Only one auth mechanism"):
        authenticate(
            "GET",
            "/test.txt",
            PRESIGNED_QUERY,
            headers,
            lookup=s3_lookup,
            region="us-east-1",
            now=S3_NOW,
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("X-Amz-Expires=86400", "X-Amz-Expires=604801"),
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        ),
        (("X-Amz-Expires=86400", "X-Amz-Expires=-1"), "non-negative"),
        (("X-Amz-Expires=86400", "X-Amz-Expires=soon"), "should be a number"),
        (("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-HMAC-SHA1"), "only supports"),
        (("&X-Amz-SignedHeaders=host", ""), "requires the X-Amz-Algorithm"),
        (("X-Amz-Date=20130524T000000Z", "X-Amz-Date=2013-05-24"), "ISO8601"),
        (("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=range"), "host"),
        (("%2Fus-east-1%2F", "%2Feu-west-1%2F"), "the region 'eu-west-1' is wrong"),
        (("20130524%2Fus", "20130525%2Fus"), "Invalid credential date"),
    ],
)
def test_presigned_parameter_errors(change: tuple[str, str], message: str) -> None:
    query = PRESIGNED_QUERY.replace(*change)
    with pytest.raises(AuthorizationQueryParametersError) as excinfo:
        authenticate(
            "GET",
            "/test.txt",
            query,
            {"host": S3_HOST},
            lookup=s3_lookup,
            region="us-east-1",
            now=S3_NOW,
        )
    assert message in excinfo.value.message


def test_presigned_expiry_window() -> None:
    view = botocore_sign("GET", "https://s3.example.test/b/k", expires=604800)
    verify(view, now=datetime.now(UTC) + timedelta(days=6, hours=23))
    with pytest.raises(AccessDenied, match="Request has expired"):
        verify(view, now=datetime.now(UTC) + timedelta(days=7, minutes=1))
    with pytest.raises(AccessDenied, match="not valid yet"):
        verify(view, now=datetime.now(UTC) - timedelta(hours=1))


def test_presigned_with_content_sha256_header() -> None:
    body = b"data"
    view = botocore_sign(
        "PUT",
        "https://s3.example.test/b/k",
        {"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()},
        expires=60,
    )
    result = verify(view)
    assert result.payload_mode is PayloadMode.SIGNED
    assert result.content_sha256 == hashlib.sha256(body).hexdigest()


def test_sigv2_presigned_is_not_supported() -> None:
    with pytest.raises(InvalidRequest, match="AWS4-HMAC-SHA256"):
        authenticate(
            "GET",
            "/b/k",
            "AWSAccessKeyId=AK&Signature=abc&Expires=1",
            {"host": "h"},
            lookup=lookup,
            region="us-east-1",
        )


def test_canonical_helpers() -> None:
    # A raw "+" reads as a space (as the handlers parse the query), "%2B" as a plus.
    assert sigv4.canonical_query("b=2&a=x+y&a=%2B&c=&&d") == "a=%2B&a=x%20y&b=2&c=&d="
    assert sigv4.canonical_query("a=x+y", plus_is_space=False) == "a=x%2By"
    assert sigv4.canonical_query("a=%7e%41") == "a=~A"
    assert (
        sigv4.canonical_query("X-Amz-Signature=ab&X-Amz-Date=1", drop_signature=True)
        == "X-Amz-Date=1"
    )
    assert sigv4.canonical_uri("/b/a b/%2F/$") == "/b/a%20b/%2F/%24"
    assert sigv4.canonical_uri("") == "/"
    assert sigv4.uri_encode("a/b c~") == "a%2Fb%20c~"
    headers = {"x-a": "  a   b  ", "x-b": "c"}
    assert sigv4.canonical_headers(headers, ["x-a", "x-b", "x-c"]) == "x-a:a b\nx-b:c\nx-c:\n"


def test_client_leaving_reserved_characters_unencoded() -> None:
    """A client that sends `$` raw but signs it as %24 (the canonical form) still verifies."""
    _, method, _, query, headers, signed, sig = S3_EXAMPLES[1]
    headers = {**headers, "authorization": s3_auth(signed, sig)}
    result = authenticate(
        method, "/test$file.text", query, headers, lookup=s3_lookup, region="us-east-1", now=S3_NOW
    )
    assert result.access_key == S3_KEY


def test_plus_in_query_cannot_change_meaning_under_a_signature() -> None:
    """ "%2B" (a plus) and "+" (a space, as the query is parsed) sign differently."""
    method, path, query, headers = botocore_sign("GET", "http://localhost:9000/b?prefix=a%2Bb")
    assert verify((method, path, query, headers)).access_key == ACCESS
    with pytest.raises(SignatureDoesNotMatch):
        verify((method, path, query.replace("%2B", "+"), headers))
    spaced = botocore_sign("GET", "http://localhost:9000/b?prefix=a%20b")
    assert verify((spaced[0], spaced[1], "prefix=a+b", spaced[3])).access_key == ACCESS


def test_raw_utf8_decoded_as_latin1_by_the_server() -> None:
    """A client sending raw UTF-8 in the path or query, which the ASGI layer decoded as
    latin-1, verifies against the UTF-8 canonical form it signed."""
    path, query = "/b/\u1234", "k=\u00e9"
    headers = s3_headers()
    signed = ["host", "x-amz-content-sha256", "x-amz-date"]
    canonical = sigv4.canonical_request(
        "GET",
        sigv4.canonical_uri(path),
        sigv4.canonical_query(query),
        sigv4.canonical_headers(headers, signed),
        ";".join(signed),
        EMPTY,
    )
    sts = sigv4.string_to_sign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request", canonical)
    sig = sigv4.signature(sigv4.signing_key(S3_SECRET, "20130524", "us-east-1"), sts)
    headers["authorization"] = s3_auth(";".join(signed), sig)
    as_latin1 = [text.encode().decode("latin-1") for text in (path, query)]
    for raw_path, raw_query in ((path, query), as_latin1):
        result = authenticate(
            "GET", raw_path, raw_query, headers, lookup=s3_lookup, region="us-east-1", now=S3_NOW
        )
        assert result.access_key == S3_KEY


def test_raw_utf8_header_value_decoded_as_latin1() -> None:
    headers = s3_headers(**{"x-amz-meta-name": "\u540d\u524d"})
    signed = ["host", "x-amz-content-sha256", "x-amz-date", "x-amz-meta-name"]
    canonical = sigv4.canonical_request(
        "PUT", "/k", "", sigv4.canonical_headers(headers, signed), ";".join(signed), EMPTY
    )
    sts = sigv4.string_to_sign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request", canonical)
    sig = sigv4.signature(sigv4.signing_key(S3_SECRET, "20130524", "us-east-1"), sts)
    headers["authorization"] = s3_auth(";".join(signed), sig)
    headers["x-amz-meta-name"] = headers["x-amz-meta-name"].encode().decode("latin-1")
    result = authenticate(
        "PUT", "/k", "", headers, lookup=s3_lookup, region="us-east-1", now=S3_NOW
    )
    assert result.access_key == S3_KEY


def test_header_auth_verify_cost() -> None:
    """A typical boto3 GetObject: well under a millisecond (the target is < 30 us; this bound
    only guards against gross regressions on a loaded CI machine)."""
    view = server_view(capture(boto3_client(), "get_object", Bucket="bucket", Key="some/key.txt"))
    method, path, query, headers = view
    verify(view)
    n = 2000
    start = time.perf_counter()
    for _ in range(n):
        authenticate(method, path, query, headers, lookup=lookup, region="us-east-1")
    per_call = (time.perf_counter() - start) / n
    assert per_call < 500e-6


# --- robustness: any input gives an AuthResult or an S3Error, never anything else -------------
_pieces = st.sampled_from(
    [
        "AWS4-HMAC-SHA256 ",
        "Credential=",
        f"{S3_KEY}/20130524/us-east-1/s3/aws4_request",
        ",",
        " ",
        "SignedHeaders=",
        "host;x-amz-date",
        "Signature=",
        "0" * 64,
        "/",
        ";",
        "=",
        "%",
        "X-Amz-Algorithm=AWS4-HMAC-SHA256",
        "&",
        "X-Amz-Credential=",
        "X-Amz-Expires=",
        "-",
        "X-Amz-Date=",
        "20130524T000000Z",
        "X-Amz-SignedHeaders=",
        "X-Amz-Signature=",
        "\udcff",
        "\u1234",
        "+",
        "AWS ",
        "UNSIGNED-PAYLOAD",
        "STREAMING-",
        "99999999999999999999",
    ]
)
_text = st.one_of(st.text(max_size=40), st.lists(_pieces, max_size=12).map("".join))


@settings(max_examples=400, deadline=None)
@given(
    path=_text,
    query=_text,
    authorization=st.one_of(st.none(), _text),
    date=st.one_of(st.none(), _text),
    content=st.one_of(st.none(), _text),
    extra=st.dictionaries(
        st.sampled_from(
            [
                "date",
                "x-amz-security-token",
                "x-amz-meta-a",
                "content-encoding",
                "x-amz-trailer",
                "range",
            ]
        ),
        _text,
        max_size=3,
    ),
)
def test_never_crashes(
    path: str,
    query: str,
    authorization: str | None,
    date: str | None,
    content: str | None,
    extra: dict[str, str],
) -> None:
    headers = {"host": S3_HOST, **extra}
    for name, value in (
        ("authorization", authorization),
        ("x-amz-date", date),
        ("x-amz-content-sha256", content),
    ):
        if value is not None:
            headers[name] = value
    try:
        result = authenticate(
            "GET", path, query, headers, lookup=s3_lookup, region="us-east-1", now=S3_NOW
        )
    except S3Error:
        return
    assert isinstance(result, AuthResult)


@settings(max_examples=300, deadline=None)
@given(path=_text, query=_text, header=st.text(max_size=20))
def test_never_crashes_when_canonicalising(path: str, query: str, header: str) -> None:
    _, method, _, _, headers, signed, sig = S3_EXAMPLES[0]
    headers = {**headers, "range": header, "authorization": s3_auth(signed, sig)}
    with pytest.raises(S3Error):  # SignatureDoesNotMatch mostly, never another exception
        authenticate(
            method, "/x" + path, query, headers, lookup=s3_lookup, region="us-east-1", now=S3_NOW
        )


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="aZ09-._~%2FfB+= &/\u00e9\u1234", max_size=30))
def test_canonical_query_matches_a_plain_reference(query: str) -> None:
    """The fast path (components already canonical) agrees with decode + re-encode."""

    def canon(component: str) -> str:
        return quote(unquote_to_bytes(component.replace("+", " ").encode()), safe="")

    pairs = sorted(
        (canon(name), canon(value))
        for name, _, value in (part.partition("=") for part in query.split("&") if part)
    )
    assert sigv4.canonical_query(query) == "&".join(f"{n}={v}" for n, v in pairs)
