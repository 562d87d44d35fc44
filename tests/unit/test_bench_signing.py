"""The load generator's SigV4 signer: AWS's documented S3 example, botocore, and its fast path."""

from __future__ import annotations

import hashlib
import hmac
from types import SimpleNamespace

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from onshore.bench.s3 import Endpoint, S3Client
from onshore.bench.signing import (
    UNSIGNED_PAYLOAD,
    Signer,
    _Mac,
    canonical_query,
    derive_signing_key,
    uri_encode_path,
)

DOC_KEY, DOC_SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EMPTY = hashlib.sha256(b"").hexdigest()


def test_aws_documented_get_object_example() -> None:
    """ "Example: GET Object" of the S3 SigV4 header-signing documentation."""
    signer = Signer(DOC_KEY, DOC_SECRET, "us-east-1")
    headers = dict(
        signer.sign(
            "GET",
            "/test.txt",
            (),
            "examplebucket.s3.amazonaws.com",
            extra_headers=[("Range", "bytes=0-9")],
            payload_hash=EMPTY,
            amz_date="20130524T000000Z",
        )
    )
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


def _botocore_signature(method: str, url: str, amz_date: str) -> str:
    """botocore's S3 signer, pinned to ``amz_date`` and told not to sign the payload."""
    request = AWSRequest(method=method, url=url)
    request.context["client_config"] = SimpleNamespace(s3={"payload_signing_enabled": False})
    request.context["timestamp"] = amz_date
    auth = S3SigV4Auth(Credentials("AKID", "secret/key+x"), "s3", "eu-west-3")
    auth._modify_request_before_signing(request)
    assert request.headers["x-amz-content-sha256"] == UNSIGNED_PAYLOAD
    canonical = auth.canonical_request(request)
    return str(auth.signature(auth.string_to_sign(request, canonical), request))


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("PUT", "/bucket/small/0000001", ()),
        ("GET", "/bucket/dir/key with spaces+plus", ()),
        ("GET", "/bucket", (("list-type", "2"), ("prefix", "p0001/"), ("delimiter", "/"))),
        ("POST", "/bucket/big", (("uploads", ""),)),
        ("PUT", "/bucket/big", (("partNumber", "3"), ("uploadId", "a/b+c=="))),
    ],
)
def test_agrees_with_botocore(method: str, path: str, query: tuple[tuple[str, str], ...]) -> None:
    stamp = "20261127T101500Z"
    host = "127.0.0.1:9000"
    target = uri_encode_path(path) + ("?" + canonical_query(query) if query else "")
    # https: botocore always signs payloads over plain http, and the scheme is not signed
    signature = _botocore_signature(method, f"https://{host}{target}", stamp)
    signer = Signer("AKID", "secret/key+x", "eu-west-3")
    general = dict(signer.sign(method, path, query, host, amz_date=stamp))["authorization"]
    fast = signer.authorize(
        method, uri_encode_path(path), canonical_query(query) if query else "", host, stamp
    )
    assert general.endswith(f"Signature={signature}")
    assert fast == general


def test_request_head_carries_the_signature_and_length() -> None:
    client = S3Client(Endpoint("127.0.0.1", 9000), Signer("AKID", "secret"))
    head = client.head_bytes("PUT", "/b/k", content_length=4096).decode()
    assert head.startswith("PUT /b/k HTTP/1.1\r\nhost: 127.0.0.1:9000\r\n")
    assert "x-amz-content-sha256: UNSIGNED-PAYLOAD\r\n" in head
    assert "authorization: AWS4-HMAC-SHA256 Credential=AKID/" in head
    assert head.endswith("content-length: 4096\r\n\r\n")


def test_precomputed_hmac_matches_hmac_module() -> None:
    key = derive_signing_key("secret", "20261127", "us-east-1")
    for message in (b"", b"x", b"a" * 200):
        assert _Mac(key).hexdigest(message) == hmac.new(key, message, hashlib.sha256).hexdigest()


def test_signing_key_is_derived_once_per_day() -> None:
    signer = Signer("AKID", "secret")
    signer.sign("GET", "/b/k", (), "h", amz_date="20261127T000001Z")
    first = signer._mac
    signer.sign("GET", "/b/k", (), "h", amz_date="20261127T235959Z")
    assert signer._mac is first
    signer.sign("GET", "/b/k", (), "h", amz_date="20261128T000000Z")
    assert signer._mac is not first


def test_uri_encoding() -> None:
    assert uri_encode_path("/b/plain-key_1.txt~") == "/b/plain-key_1.txt~"
    assert uri_encode_path("/b/a b+c=é") == "/b/a%20b%2Bc%3D%C3%A9"
    assert canonical_query([("b", "2"), ("a", "x/y"), ("uploads", "")]) == "a=x%2Fy&b=2&uploads="
