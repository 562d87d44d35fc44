"""A small client for the admin API: SigV4-signed JSON requests (service ``onshore-admin``).

Where it connects and as whom, first found wins:

* endpoint: ``--endpoint``, ``ONSHORE_ADMIN_ENDPOINT``, else ``http://`` + the ``admin_address``
  setting (``ONSHORE_ADMIN_ADDRESS``, default ``127.0.0.1:9001``);
* credentials: ``--root-access-key``/``--root-secret-key``, an operator's
  ``ONSHORE_ADMIN_ACCESS_KEY`` / ``ONSHORE_ADMIN_SECRET_KEY`` (see ``onshore operator``),
  ``ONSHORE_ROOT_ACCESS_KEY`` / ``ONSHORE_ROOT_SECRET_KEY``, else
  ``<data dir>/root-credentials.json`` (``--data-dir`` or
  ``ONSHORE_DATA_DIR``) when run on the server's host;
* region: ``--region``, ``ONSHORE_REGION``, default ``local-1``.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

from onshore.s3api.auth.sigv4 import (
    canonical_headers,
    canonical_query,
    canonical_request,
    signature,
    signing_key,
    string_to_sign,
)

SERVICE = "onshore-admin"


class AdminClientError(Exception):
    """A request failed: ``code`` and ``message`` from the API, or a connection problem."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True, slots=True)
class AdminClient:
    endpoint: str
    access_key: str
    secret_key: str
    region: str
    timeout: float = 30.0

    def __repr__(self) -> str:  # never show the secret
        return f"AdminClient(endpoint={self.endpoint!r}, access_key={self.access_key!r})"

    def request(
        self, method: str, path: str, body: object = None, *, raw: bytes | None = None
    ) -> object:
        """Send one signed request; the decoded JSON answer (None for 204)."""
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        url = self.endpoint.rstrip("/") + path
        headers = self._sign(method, url, data)
        req = urllib.request.Request(url, data=data or None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:  # noqa: S310
                text = response.read()
        except urllib.error.HTTPError as error:
            payload = error.read()
            try:
                detail = json.loads(payload)["error"]
                raise AdminClientError(error.code, detail["code"], detail["message"]) from None
            except (ValueError, KeyError, TypeError):
                raise AdminClientError(error.code, "HTTPError", str(error)) from None
        except urllib.error.URLError as error:
            raise AdminClientError(
                0, "ConnectionFailed", f"cannot reach {self.endpoint}: {error.reason}"
            ) from None
        return json.loads(text) if text else None

    def _sign(self, method: str, url: str, data: bytes) -> dict[str, str]:
        parts = urlsplit(url)
        now = datetime.now(UTC)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        payload_hash = hashlib.sha256(data).hexdigest()
        headers = {
            "host": parts.netloc,
            "x-amz-date": amz_date,
            "x-amz-content-sha256": payload_hash,
            "content-type": "application/json",
        }
        signed = sorted(headers)
        canonical = canonical_request(
            method,
            parts.path or "/",
            canonical_query(parts.query),  # sorted, as the server canonicalizes it
            canonical_headers(headers, signed),
            ";".join(signed),
            payload_hash,
        )
        scope = f"{amz_date[:8]}/{self.region}/{SERVICE}/aws4_request"
        key = signing_key(self.secret_key, amz_date[:8], self.region, SERVICE)
        sig = signature(key, string_to_sign(amz_date, scope, canonical))
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
            f"SignedHeaders={';'.join(signed)}, Signature={sig}"
        )
        return headers


def segment(value: str) -> str:
    """One path segment, percent-encoded."""
    return quote(value, safe="")


def client_from(
    *,
    endpoint: str | None,
    access_key: str | None,
    secret_key: str | None,
    region: str | None,
    data_dir: str | None,
    environ: dict[str, str] | None = None,
) -> AdminClient:
    env = dict(os.environ) if environ is None else environ
    endpoint = endpoint or env.get("ONSHORE_ADMIN_ENDPOINT")
    if not endpoint:
        endpoint = "http://" + env.get("ONSHORE_ADMIN_ADDRESS", "127.0.0.1:9001")
    access_key = (
        access_key or env.get("ONSHORE_ADMIN_ACCESS_KEY") or env.get("ONSHORE_ROOT_ACCESS_KEY")
    )
    secret_key = (
        secret_key or env.get("ONSHORE_ADMIN_SECRET_KEY") or env.get("ONSHORE_ROOT_SECRET_KEY")
    )
    if not (access_key and secret_key):
        path = Path(data_dir or env.get("ONSHORE_DATA_DIR", "./onshore-data"))
        path = path / "root-credentials.json"
        try:
            stored = json.loads(path.read_text())
            access_key, secret_key = stored["access_key"], stored["secret_key"]
        except (OSError, ValueError, KeyError):
            raise AdminClientError(
                0,
                "NoCredentials",
                "no root credentials: set ONSHORE_ROOT_ACCESS_KEY and ONSHORE_ROOT_SECRET_KEY, "
                f"pass --access-key/--secret-key, or run where {path} is readable",
            ) from None
    return AdminClient(
        endpoint, str(access_key), str(secret_key), region or env.get("ONSHORE_REGION", "local-1")
    )
