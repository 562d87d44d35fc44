"""HTTPS served by onshore itself (``--certs-dir`` with public.crt and private.key), tested with
real TLS clients: boto3 and the AWS CLI verifying the certificate."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.certs import self_signed
from tests.api.conftest import make_client
from tests.api.server import ServerProcess, client_env


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    certs = tmp_path_factory.mktemp("certs")
    ca, _ = self_signed(certs, cert_name="public.crt", key_name="private.key")
    server = ServerProcess(
        tmp_path_factory.mktemp("tls") / "data", extra_args=("--certs-dir", str(certs))
    )
    server.ca_bundle = ca
    server.start()
    yield server
    server.cleanup()


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
    aws = [shutil.which("aws") or str(Path(sys.executable).with_name("aws"))]
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


def test_plain_http_to_the_https_port_gets_no_answer(tls_server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = sock.recv(4096)
    assert not reply.startswith(b"HTTP/1.1 200")


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
