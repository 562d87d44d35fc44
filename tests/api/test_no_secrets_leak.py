"""No secret reaches a log line or an error body.

A server at debug log level serves signed, presigned, wrongly signed and failing requests;
afterwards neither its log nor any response body contains the secret key, a signing key, a
request signature or an Authorization header value.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.api.conftest import make_client
from tests.api.server import ACCESS_KEY, REGION, SECRET_KEY, ServerProcess


def test_secrets_never_logged_or_echoed(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", env={"ONSHORE_LOG_LEVEL": "debug"}).start()
    bodies: list[bytes] = []
    signatures: list[str] = []
    try:
        s3 = make_client(server.endpoint)
        bucket = f"sec-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="k", Body=b"hello")
        url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
        signatures.append(re.search(r"X-Amz-Signature=([0-9a-f]+)", url)[1])  # type: ignore[index]
        with urllib.request.urlopen(url) as reply:
            assert reply.read() == b"hello"
        # A presigned URL with a forged signature, and a request signed with a wrong secret.
        forged = url[:-4] + "0000"
        try:
            urllib.request.urlopen(forged)
        except urllib.error.HTTPError as error:
            bodies.append(error.read())
        wrong = boto3.session.Session(
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY[::-1],
            region_name=REGION,
        ).client(
            "s3",
            endpoint_url=server.endpoint,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )
        for call in (
            lambda: wrong.get_object(Bucket=bucket, Key="k"),
            lambda: s3.get_object(Bucket=bucket, Key="missing"),
            lambda: s3.get_object(Bucket="no-such-bucket-here", Key="k"),
        ):
            try:
                call()
            except ClientError as error:
                bodies.append(str(error.response).encode())
    finally:
        server.stop()
    assert server.log_path is not None
    log = server.log_path.read_text()
    assert '"op":"GetObject"' in log  # the access log was written at all
    everything = log + "\n".join(b.decode("utf-8", "replace") for b in bodies)
    assert SECRET_KEY not in everything
    assert SECRET_KEY[::-1] not in everything
    for signature in signatures:
        assert signature not in everything
    assert "AWS4-HMAC-SHA256 Credential" not in log  # no Authorization header value
    assert "X-Amz-Signature" not in log
    assert "SignatureDoesNotMatch" in everything  # the failures did happen
