"""Authentication: SigV4 header auth, presigned URLs, and every way to get it wrong."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError

from tests.api.conftest import make_client
from tests.api.raw import request
from tests.api.server import ServerProcess
from tests.api.test_buckets import code_of, status_of


def test_wrong_secret_is_signature_mismatch(server: ServerProcess, bucket: str) -> None:
    import boto3

    bad = boto3.session.Session(
        aws_access_key_id="ONSHORETESTACCESSKEY",
        aws_secret_access_key="wrong",
        region_name="local-1",
    ).client("s3", endpoint_url=server.endpoint)
    with pytest.raises(ClientError) as err:
        bad.list_objects_v2(Bucket=bucket)
    assert code_of(err) == "SignatureDoesNotMatch"
    assert status_of(err) == 403


def test_unknown_access_key(server: ServerProcess, bucket: str) -> None:
    import boto3

    bad = boto3.session.Session(
        aws_access_key_id="NOSUCHKEY", aws_secret_access_key="x", region_name="local-1"
    ).client("s3", endpoint_url=server.endpoint)
    with pytest.raises(ClientError) as err:
        bad.list_objects_v2(Bucket=bucket)
    assert code_of(err) == "InvalidAccessKeyId"
    assert status_of(err) == 403


def test_wrong_region_in_scope(server: ServerProcess, bucket: str) -> None:
    response = request(server.endpoint, "GET", f"/{bucket}", region="eu-west-1")
    assert response.status == 400
    assert response.code == "AuthorizationHeaderMalformed"
    assert b"<Region>local-1</Region>" in response.body


def test_anonymous_is_denied(server: ServerProcess, bucket: str) -> None:
    response = request(server.endpoint, "GET", f"/{bucket}", sign=False)
    assert response.status == 403
    assert response.code == "AccessDenied"


def test_presigned_get_and_expiry(s3: Any, server: ServerProcess, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="p", Body=b"presigned body")
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60
    )
    with urllib.request.urlopen(url) as resp:
        assert resp.read() == b"presigned body"
    tampered = url.replace("Key=p", "Key=q") if "Key=p" in url else url.replace("/p?", "/q?")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(tampered)
    assert err.value.code == 403


def test_presigned_put(s3: Any, bucket: str) -> None:
    url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "up"}, ExpiresIn=60
    )
    req = urllib.request.Request(url, data=b"uploaded", method="PUT")
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 200
    assert s3.get_object(Bucket=bucket, Key="up")["Body"].read() == b"uploaded"


def test_presigned_expired(server: ServerProcess, bucket: str) -> None:
    import datetime as dt

    from botocore.auth import S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    aws = AWSRequest(method="GET", url=f"{server.endpoint}/{bucket}/x")
    signer = S3SigV4QueryAuth(
        Credentials("ONSHORETESTACCESSKEY", "onshore/test/secret/key/0123456789abcdef"),
        "s3",
        "local-1",
        expires=1,
    )
    past = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=60)
    with mock.patch("botocore.auth.get_current_datetime", return_value=past):
        signer.add_auth(aws)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(aws.url)
    assert err.value.code == 403
    body = err.value.read()
    assert b"<Code>AccessDenied</Code>" in body
    assert b"Request has expired" in body


def test_payload_hash_mismatch(server: ServerProcess, bucket: str) -> None:
    response = request(
        server.endpoint,
        "PUT",
        f"/{bucket}/tampered",
        body=b"actual body",
        payload_hash="0" * 64,
    )
    assert response.status == 400
    assert response.code == "XAmzContentSHA256Mismatch"
    assert request(server.endpoint, "HEAD", f"/{bucket}/tampered").status == 404


def test_clock_skew(server: ServerProcess, bucket: str) -> None:
    import datetime as dt

    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
    response = request(server.endpoint, "GET", f"/{bucket}", at=past)
    assert response.status == 403
    assert response.code == "RequestTimeTooSkewed"
    near = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    assert request(server.endpoint, "GET", f"/{bucket}", at=near).status == 200


def test_unsigned_payload_client(server: ServerProcess, bucket: str) -> None:
    client = make_client(server.endpoint, signature_version="s3v4")
    client.put_object(Bucket=bucket, Key="u", Body=b"x" * 1000)
    assert client.get_object(Bucket=bucket, Key="u")["Body"].read() == b"x" * 1000


@pytest.mark.parametrize("when", ["when_supported", "when_required"])
def test_checksum_modes_of_current_sdks(server: ServerProcess, bucket: str, when: str) -> None:
    client = make_client(
        server.endpoint, request_checksum_calculation=when, response_checksum_validation=when
    )
    for size in (0, 10, 70_000, 9 * 1024 * 1024):
        body = bytes([size % 251]) * size
        client.put_object(Bucket=bucket, Key=f"s{size}", Body=body)
        assert client.get_object(Bucket=bucket, Key=f"s{size}")["Body"].read() == body
