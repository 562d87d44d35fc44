"""Start a real onshore server process for tests, on a free loopback port.

Tests talk to it over a real socket with real clients (boto3, the AWS CLI, the MinIO SDK,
s3fs, rclone). Clients get a hermetic environment: explicit credentials and region, no shared
config files, none of the machine's AWS_* variables.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ACCESS_KEY = "ONSHORETESTACCESSKEY"
SECRET_KEY = "onshore/test/secret/key/0123456789abcdef"
REGION = "local-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def client_env(**extra: str) -> dict[str, str]:
    """Environment for a client subprocess: nothing of the machine's AWS setup leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BOTO_"))}
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "RCLONE_CONFIG"):
        env.pop(name, None)
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    env.update(extra)
    return env


@dataclass
class ServerProcess:
    data_dir: Path
    port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    extra_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    ca_bundle: Path | None = None  # set when the server serves HTTPS (``--certs-dir``)

    @property
    def endpoint(self) -> str:
        scheme = "https" if self.ca_bundle is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def admin_endpoint(self) -> str:
        scheme = "https" if self.ca_bundle is not None else "http"
        return f"{scheme}://127.0.0.1:{self.admin_port}"

    def start(self, timeout: float = 20.0) -> ServerProcess:
        env = client_env()
        env.update(
            ONSHORE_ROOT_ACCESS_KEY=ACCESS_KEY,
            ONSHORE_ROOT_SECRET_KEY=SECRET_KEY,
            ONSHORE_LOG_LEVEL="warning",
        )
        env.update(self.env)
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "onshore",
                "server",
                "--data-dir",
                str(self.data_dir),
                "--address",
                f"127.0.0.1:{self.port}",
                "--admin-address",
                f"127.0.0.1:{self.admin_port}",
                *self.extra_args,
            ],
            env=env,
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            try:
                context = (
                    ssl.create_default_context(cafile=str(self.ca_bundle))
                    if self.ca_bundle is not None
                    else None
                )
                url = self.endpoint + "/onshore/health/ready"
                with urllib.request.urlopen(url, timeout=1, context=context):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("server did not become ready")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def kill(self) -> None:
        """SIGKILL the whole server (supervisor and workers), as a power cut would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.stop(signal.SIGKILL)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
