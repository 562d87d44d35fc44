"""HTTPS served by onshore itself (``--certs-dir`` with public.crt and private.key), tested with
real TLS clients verifying the certificate, on every port: S3 (boto3 and the AWS CLI), the admin
API (the ``onshore admin`` CLI, and a plain TLS client) and the KMS endpoint of ``kms_address``
(boto3's and the AWS CLI's ``kms``). A client that does not trust the CA is refused on each."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api import iam_support
from tests.api.certs import self_signed
from tests.api.conftest import make_client
from tests.api.server import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    ServerProcess,
    client_env,
    free_port,
)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    certs = tmp_path_factory.mktemp("certs")
    ca, _ = self_signed(certs, cert_name="public.crt", key_name="private.key")
    server = ServerProcess(
        tmp_path_factory.mktemp("tls") / "data",
        extra_args=("--certs-dir", str(certs), "--kms-address", f"127.0.0.1:{KMS_PORT}"),
    )
    server.ca_bundle = ca
    server.start()
    yield server
    server.cleanup()


KMS_PORT = free_port()


def kms_endpoint() -> str:
    return f"https://127.0.0.1:{KMS_PORT}"


def aws_cli() -> list[str]:
    return [shutil.which("aws") or str(Path(sys.executable).with_name("aws"))]


def test_boto3_over_https_verifies_the_certificate(tls_server: ServerProcess) -> None:
    assert tls_server.ca_bundle is not None
    s3 = make_client(tls_server.endpoint, verify=str(tls_server.ca_bundle))
    s3.create_bucket(Bucket="tls")
    body = os.urandom(3 * 1024 * 1024)
    s3.put_object(Bucket="tls", Key="k", Body=body)
    assert s3.get_object(Bucket="tls", Key="k")["Body"].read() == body


def test_aws_cli_over_https(tls_server: ServerProcess, tmp_path: Path) -> None:
    source = tmp_path / "file.bin"
    source.write_bytes(os.urandom(9 * 1024 * 1024))  # multipart, with aws-chunked trailers
    aws = aws_cli()
    base = [*aws, "--endpoint-url", tls_server.endpoint, "--ca-bundle", str(tls_server.ca_bundle)]
    env = client_env()
    subprocess.run([*base, "s3", "mb", "s3://tls-cli"], env=env, check=True, timeout=120)
    subprocess.run(
        [*base, "s3", "cp", str(source), "s3://tls-cli/file.bin"], env=env, check=True, timeout=120
    )
    back = tmp_path / "back.bin"
    subprocess.run(
        [*base, "s3", "cp", "s3://tls-cli/file.bin", str(back)], env=env, check=True, timeout=120
    )
    assert back.read_bytes() == source.read_bytes()
    untrusted = subprocess.run(
        [*aws, "--endpoint-url", tls_server.endpoint, "s3", "ls"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert untrusted.returncode != 0 and "SSL" in untrusted.stderr


# --- the admin API -------------------------------------------------------------------------------
def admin_cli(
    server: ServerProcess, *args: str, ca: Path | None
) -> subprocess.CompletedProcess[str]:
    """``onshore admin ...`` against the HTTPS admin endpoint; ``ca`` is the CA it trusts
    (``SSL_CERT_FILE``, which Python's TLS client honours), None for the system's CAs only."""
    return iam_support.admin_cli(
        server, *args, env={"SSL_CERT_FILE": str(ca)} if ca is not None else {}
    )


def test_admin_cli_over_https_verifies_the_certificate(tls_server: ServerProcess) -> None:
    assert tls_server.admin_endpoint.startswith("https://")
    name = f"tls-{uuid.uuid4().hex[:10]}"
    created = admin_cli(tls_server, "tenant", "create", name, ca=tls_server.ca_bundle)
    assert created.returncode == 0, created.stdout + created.stderr
    listed = admin_cli(tls_server, "tenant", "list", ca=tls_server.ca_bundle)
    assert listed.returncode == 0 and name in listed.stdout, listed.stdout + listed.stderr
    untrusted = admin_cli(tls_server, "tenant", "list", ca=None)
    assert untrusted.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stdout + untrusted.stderr
    assert name not in untrusted.stdout


def test_admin_port_serves_https_only_with_a_trusted_certificate(
    tls_server: ServerProcess,
) -> None:
    import ssl
    import urllib.error
    import urllib.request

    url = tls_server.admin_endpoint + "/openapi.json"  # the one unsigned admin route
    trusted = ssl.create_default_context(cafile=str(tls_server.ca_bundle))
    with urllib.request.urlopen(url, timeout=10, context=trusted) as response:
        assert response.status == 200
        assert "paths" in json.loads(response.read())
    with pytest.raises(urllib.error.URLError) as refused:
        urllib.request.urlopen(url, timeout=10, context=ssl.create_default_context())
    assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)
    assert_no_plain_http(tls_server.admin_port)


# --- the KMS endpoint (kms_address) ---------------------------------------------------------------
def kms_client(verify: str | bool) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
    )
    return session.client(
        "kms",
        endpoint_url=kms_endpoint(),
        verify=verify,
        config=Config(retries={"max_attempts": 1}),
    )


def test_boto3_kms_over_https_verifies_the_certificate(tls_server: ServerProcess) -> None:
    from botocore.exceptions import SSLError

    assert tls_server.ca_bundle is not None
    kms = kms_client(str(tls_server.ca_bundle))
    key_id = kms.create_key(Description="over tls")["KeyMetadata"]["KeyId"]
    sealed = kms.encrypt(KeyId=key_id, Plaintext=b"sealed over tls")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=sealed)["Plaintext"] == b"sealed over tls"
    data_key = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert len(data_key["Plaintext"]) == 32
    with pytest.raises(SSLError):
        kms_client(True).list_keys()  # the system CAs do not trust the test CA
    assert_no_plain_http(KMS_PORT)


def test_aws_cli_kms_over_https(tls_server: ServerProcess, tmp_path: Path) -> None:
    base = [*aws_cli(), "--endpoint-url", kms_endpoint(), "--output", "json"]
    env = client_env()
    created = subprocess.run(
        [*base, "--ca-bundle", str(tls_server.ca_bundle), "kms", "create-key"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    key_id = json.loads(created.stdout)["KeyMetadata"]["KeyId"]
    listed = subprocess.run(
        [*base, "--ca-bundle", str(tls_server.ca_bundle), "kms", "list-keys"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert key_id in [k["KeyId"] for k in json.loads(listed.stdout)["Keys"]]
    untrusted = subprocess.run(
        [*base, "kms", "list-keys"], env=env, capture_output=True, text=True, timeout=120
    )
    assert untrusted.returncode != 0 and "SSL" in untrusted.stderr


# --- every port -----------------------------------------------------------------------------------
def assert_no_plain_http(port: int) -> None:
    """A plain-HTTP request to a TLS port gets no HTTP answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            reply = sock.recv(4096)
        except ConnectionResetError:
            reply = b""
    assert not reply.startswith(b"HTTP/1.1 200")


def test_plain_http_to_the_https_port_gets_no_answer(tls_server: ServerProcess) -> None:
    assert_no_plain_http(tls_server.port)


def test_unusable_certificates_stop_the_server_at_start(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "public.crt").write_text("not a certificate")
    (certs / "private.key").write_text("not a key")
    for case in ("garbage", "missing"):
        if case == "missing":
            (certs / "private.key").unlink()
        started = subprocess.run(
            [
                sys.executable,
                "-m",
                "onshore",
                "server",
                "--certs-dir",
                str(certs),
                "--data-dir",
                str(tmp_path / "data"),
            ],
            env=client_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert started.returncode == 2, started.stderr
        assert "certs_dir" in started.stderr
