"""The root key held by an external key service: OpenBao or HashiCorp Vault's Transit engine.

With ``root_key_service = "transit"`` the root key never enters onshore: it is a named Transit
key (``transit_key`` on the engine mounted at ``transit_mount``) that only the key service
holds. Wrapping a secret is ``POST /v1/<mount>/encrypt/<key>``; unwrapping is
``POST /v1/<mount>/decrypt/<key>``. The operator can rotate the key (new versions), cap which
versions still decrypt, or delete it, and deleting it shreds every secret it wrapped: tenant
keys and with them all object data, IAM and operator secrets, the audit and licensing signing
keys.

Binding. Each call passes ``associated_data`` (Transit's AEAD additional data, supported by its
``aes128-gcm96``, ``aes256-gcm96`` and ``chacha20-poly1305`` keys): the blob header followed by
the ``context`` of the secret, so a blob moved to another record or purpose fails to decrypt,
exactly as with :class:`~onshore.service.rootkey.LocalRootKey`.

Wire format of a Transit-wrapped blob::

    version 0x02 (1 byte) | fingerprint (8) | Transit ciphertext ("vault:v<N>:<base64>", ASCII)

Version ``0x01`` is a local root key's blob, so the two are never confused. The fingerprint is
derived from the key's identity and the Transit key version that sealed the blob (``N``):
``sha256("onshore transit key fingerprint\\0" namespace \\0 mount \\0 key \\0 N)[:8]``. It names
neither the server's address (a Vault cluster can move without re-wrapping anything) nor any
secret. :attr:`TransitRootKey.fingerprint` is that of the latest version, so after a Transit
key rotation ``onshore kms rotate-root`` finds the rows still sealed by older versions.

Failures come in two kinds. :class:`~onshore.service.rootkey.UnwrapError`: the service refused to
decrypt this blob (authentication failed, version no longer allowed, key deleted): the secret is
gone, as for a destroyed key. :class:`KeyServiceUnavailable`: the service cannot be reached,
timed out, is sealed, or refuses the token: nothing is wrong with the data, the deployment cannot
use its root key right now (S3 requests get 503). Each call has ``transit_timeout`` seconds per
network operation; after a transport failure, calls fail at once for ``_BACKOFF_SECONDS`` instead
of each waiting its own timeout.

Unwrapped secrets are cached in process memory for ``transit_cache_seconds`` (0 disables it), so
the key service sees one decrypt per secret per interval and process, never one per request. A
key deleted or a token revoked at the service therefore takes effect within that time (plus the
tenant key cache's own, which runs in step with it).

The token comes from ``transit_token`` (``ONSHORE_TRANSIT_TOKEN``) or ``transit_token_file``, a
file readable by its owner only, read again on every call so an agent (``bao agent``, ``vault
agent``) can renew or replace it. It is sent in the ``X-Vault-Token`` header and nowhere else;
no message, log line or ``repr`` contains it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import http.client
import ipaddress
import json
import logging
import re
import secrets
import ssl
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast
from urllib.parse import quote, urlsplit

from onshore.service.rootkey import KeyServiceUnavailable, RootKeyError, UnwrapError

log = logging.getLogger("onshore.rootkey")

VERSION = 2
_HEADER = 1 + 8
_CIPHERTEXT = re.compile(rb"vault:v([1-9][0-9]{0,9}):[A-Za-z0-9+/=]+")
#: Transit key types whose encrypt/decrypt accept ``associated_data``.
AEAD_TYPES = ("aes128-gcm96", "aes256-gcm96", "chacha20-poly1305")
_MAX_RESPONSE = 1 << 20
_CACHE_MAX = 4096
_BACKOFF_SECONDS = 2.0
_PROBE_CONTEXT = b"onshore transit probe"


@dataclass(frozen=True, slots=True)
class TransitSettings:
    """Where the Transit key is and how to authenticate (from ``transit_*`` settings)."""

    address: str
    mount: str = "transit"
    key: str = "onshore"
    token: str | None = None
    token_file: str | None = None
    namespace: str | None = None
    ca_file: str | None = None
    timeout: float = 5.0
    cache_seconds: float = 30.0

    def __repr__(self) -> str:  # never show the token
        return (
            f"TransitSettings(address={self.address!r}, mount={self.mount!r}, key={self.key!r}, "
            f"namespace={self.namespace!r})"
        )

    @property
    def key_path(self) -> str:
        """``<mount>/keys/<key>``, as a policy names it."""
        return f"{self.mount}/keys/{self.key}"


class _Refused(Exception):
    """The key service answered with an HTTP error status."""

    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"HTTP {status}: {detail}")


class TransitRootKey:
    """A :class:`~onshore.service.rootkey.KeyWrapper` whose key stays in OpenBao/Vault Transit.

    Build it with :meth:`connect`, which checks the service, the token and the key (and
    refuses with one clear :class:`~onshore.service.rootkey.RootKeyError` otherwise). Blocking:
    call it from worker threads. Thread-safe.
    """

    def __init__(self, settings: TransitSettings, *, latest_version: int) -> None:
        self._settings = settings
        self._url = _parse_address(settings.address)
        self._tls = _tls_context(settings) if self._url[0] == "https" else None
        self._identity = "\0".join((settings.namespace or "", settings.mount, settings.key))
        self._latest = latest_version
        self._cache: dict[tuple[bytes, bytes], tuple[bytes, float]] = {}
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._down_reason = ""

    @classmethod
    def connect(cls, settings: TransitSettings) -> TransitRootKey:
        """Check the key at the service (it exists, it is an AEAD key, the token may read it
        and encrypt and decrypt with it) and return the wrapper for it."""
        wrapper = cls(settings, latest_version=1)
        wrapper._latest = wrapper._check_key()
        probe = secrets.token_bytes(16)
        if wrapper.unwrap(wrapper.wrap(probe, context=_PROBE_CONTEXT), context=_PROBE_CONTEXT) != (
            probe
        ):
            raise RootKeyError(f"{wrapper._where()}: the Transit key did not round-trip a probe")
        wrapper._cache.clear()
        return wrapper

    def __repr__(self) -> str:  # never show the token
        return (
            f"TransitRootKey(address={self._settings.address!r}, "
            f"key={self._settings.key_path!r}, fingerprint={self.fingerprint})"
        )

    @property
    def settings(self) -> TransitSettings:
        return self._settings

    @property
    def fingerprint(self) -> str:
        """The fingerprint of the Transit key's latest version seen (safe to show and log)."""
        return self.version_fingerprint(self._latest).hex()

    def version_fingerprint(self, version: int) -> bytes:
        material = f"{self._identity}\0{version}".encode()
        return hashlib.sha256(b"onshore transit key fingerprint\0" + material).digest()[:8]

    # --- KeyWrapper ---------------------------------------------------------------------------
    def wrap(self, secret: bytes, *, context: bytes) -> bytes:
        """Encrypt ``secret`` with the key's latest version. KeyServiceUnavailable if the
        service cannot do it (a wrap failure is never the data's fault)."""
        # The header binds the version too, but the version is only known from the answer:
        # encrypt with the header of the version last seen, and again in the rare case the
        # service answered with another one (rotated meanwhile, or the key re-created).
        for _attempt in range(3):
            version = self._latest
            header = bytes([VERSION]) + self.version_fingerprint(version)
            try:
                data = self._call(
                    "encrypt",
                    {
                        "plaintext": _b64(secret),
                        "associated_data": _b64(header + context),
                    },
                )
            except _Refused as refused:
                raise self._unavailable(refused, "encrypt") from None
            ciphertext = str(data.get("ciphertext", "")).encode("ascii", "replace")
            sealed_with = _version_of(ciphertext)
            if sealed_with is None:
                raise KeyServiceUnavailable(
                    f"{self._where()}: the key service returned no usable ciphertext"
                )
            if sealed_with == version:
                return header + ciphertext
            self._latest = sealed_with  # the service's answer is authoritative
        raise KeyServiceUnavailable(f"{self._where()}: the Transit key keeps changing version")

    def unwrap(self, blob: bytes, *, context: bytes) -> bytes:
        if len(blob) <= _HEADER or blob[0] != VERSION:
            raise UnwrapError("not a Transit-wrapped key blob")
        ciphertext = bytes(blob[_HEADER:])
        version = _version_of(ciphertext)
        if version is None:
            raise UnwrapError("not a Transit-wrapped key blob (malformed ciphertext)")
        if blob[1:_HEADER] != self.version_fingerprint(version):
            raise UnwrapError(f"wrapped by another root key ({blob[1:_HEADER].hex()})")
        cache_key = (bytes(blob), context)
        cached = self._cache.get(cache_key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        try:
            data = self._call(
                "decrypt",
                {
                    "ciphertext": ciphertext.decode("ascii"),
                    "associated_data": _b64(bytes(blob[:_HEADER]) + context),
                },
            )
        except _Refused as refused:
            if refused.status == 400:  # the service will not open *this* blob
                raise UnwrapError(f"the key service refused to decrypt: {refused.detail}") from None
            raise self._unavailable(refused, "decrypt") from None
        try:
            secret = base64.b64decode(str(data.get("plaintext", "")), validate=True)
        except (binascii.Error, ValueError):
            raise KeyServiceUnavailable(
                f"{self._where()}: the key service returned no usable plaintext"
            ) from None
        if version > self._latest:
            self._latest = version
        self._remember(cache_key, secret)
        return secret

    def forget_cached(self) -> None:
        """Drop every cached unwrap (the next use of each secret asks the service again)."""
        with self._lock:
            self._cache.clear()

    # --- internals ----------------------------------------------------------------------------
    def _remember(self, cache_key: tuple[bytes, bytes], secret: bytes) -> None:
        ttl = self._settings.cache_seconds
        if ttl <= 0:
            return
        with self._lock:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.pop(next(iter(self._cache)))
            self._cache[cache_key] = (secret, time.monotonic() + ttl)

    def _check_key(self) -> int:
        """The key's latest version, after checking it can serve as a root key."""
        s = self._settings
        try:
            data = self._request("GET", f"{s.mount}/keys/{s.key}", None)
        except _Refused as refused:
            if refused.status == 404 and not refused.detail:
                raise RootKeyError(
                    f"{self._where()}: the Transit key {s.key!r} does not exist under "
                    f"{s.mount}/ (create it: bao write -f {s.key_path})"
                ) from None
            raise self._unavailable(refused, "read") from None
        kind = data.get("type")
        if kind not in AEAD_TYPES:
            raise RootKeyError(
                f"{self._where()}: the Transit key {s.key!r} is of type {kind}; a root key must "
                f"be one of {', '.join(AEAD_TYPES)} (they bind associated data)"
            )
        if data.get("derived"):
            raise RootKeyError(
                f"{self._where()}: the Transit key {s.key!r} is a derived key; use a key "
                "created without derived=true"
            )
        if data.get("exportable") or data.get("allow_plaintext_backup"):
            log.warning(
                "the Transit key %s at %s is exportable or allows plaintext backups: the root "
                "key can leave the key service",
                s.key_path,
                s.address,
            )
        latest = data.get("latest_version")
        if not isinstance(latest, int) or latest < 1:
            raise RootKeyError(f"{self._where()}: the key service did not say the key's version")
        return latest

    def _unavailable(self, refused: _Refused, action: str) -> KeyServiceUnavailable:
        s = self._settings
        if refused.status == 403:
            return KeyServiceUnavailable(
                f"{self._where()}: permission denied to {action} with {s.key_path}: the token "
                "is invalid, expired or revoked, or its policy lacks read on "
                f"{s.key_path} or update on {s.mount}/encrypt/{s.key} and "
                f"{s.mount}/decrypt/{s.key}"
            )
        if refused.status == 404:
            return KeyServiceUnavailable(
                f"{self._where()}: no Transit secrets engine answers at {s.mount}/ "
                f"(enable it: bao secrets enable -path={s.mount} transit): {refused.detail}"
            )
        if refused.status == 503:
            return KeyServiceUnavailable(
                f"{self._where()}: the key service is unavailable (sealed or in standby): "
                f"{refused.detail}"
            )
        return KeyServiceUnavailable(
            f"{self._where()}: the key service refused to {action}: HTTP {refused.status}: "
            f"{refused.detail}"
        )

    def _where(self) -> str:
        return f"root key service {self._settings.address}"

    def _call(self, action: str, body: dict[str, str]) -> dict[str, object]:
        s = self._settings
        return self._request("POST", f"{s.mount}/{action}/{s.key}", body)

    def _request(self, method: str, path: str, body: dict[str, str] | None) -> dict[str, object]:
        """One HTTP call; the ``data`` object of a 2xx answer. _Refused for an error status,
        KeyServiceUnavailable when no answer comes."""
        now = time.monotonic()
        if now < self._down_until:
            raise KeyServiceUnavailable(self._down_reason)
        scheme, host, port = self._url
        s = self._settings
        headers = {"X-Vault-Token": self._token(), "Accept": "application/json"}
        if s.namespace:
            headers["X-Vault-Namespace"] = s.namespace
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        connection: http.client.HTTPConnection
        if scheme == "https":
            connection = http.client.HTTPSConnection(
                host, port, timeout=s.timeout, context=self._tls
            )
        else:
            connection = http.client.HTTPConnection(host, port, timeout=s.timeout)
        try:
            connection.request(method, "/v1/" + quote(path), body=payload, headers=headers)
            response = connection.getresponse()
            raw = response.read(_MAX_RESPONSE + 1)
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            reason = f"{self._where()}: cannot be reached: {_describe(exc)}"
            self._down_reason = reason
            self._down_until = time.monotonic() + _BACKOFF_SECONDS
            raise KeyServiceUnavailable(reason) from None
        except ValueError:  # a header value http.client refuses; never echo it (a token)
            raise KeyServiceUnavailable(
                f"{self._where()}: transit_namespace or the token cannot be sent in a header"
            ) from None
        finally:
            connection.close()
        try:
            document = json.loads(raw) if raw else {}
        except (ValueError, UnicodeDecodeError):
            document = {}
        if not isinstance(document, dict):
            document = {}
        if status >= 500:
            reason = f"{self._where()}: HTTP {status}: {_errors(document)}"
            self._down_reason = reason
            self._down_until = time.monotonic() + _BACKOFF_SECONDS
        if not 200 <= status < 300:
            raise _Refused(status, _errors(document))
        data = document.get("data")
        if not isinstance(data, dict):
            raise KeyServiceUnavailable(f"{self._where()}: an answer without data (HTTP {status})")
        return cast(dict[str, object], data)

    def _token(self) -> str:
        s = self._settings
        if s.token:
            return _checked_token(s.token.strip(), "transit_token")
        if not s.token_file:
            raise KeyServiceUnavailable(
                "root_key_service is transit but no token is set: set ONSHORE_TRANSIT_TOKEN "
                "or transit_token_file"
            )
        try:
            return read_token_file(Path(s.token_file))
        except RootKeyError as exc:  # e.g. an agent rewrote it with the wrong mode
            raise KeyServiceUnavailable(str(exc)) from None


def read_token_file(path: Path) -> str:
    """The token in ``path``, which must not be readable by group or others."""
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise RootKeyError(
                f"transit_token_file {path} is readable by group or others "
                f"(mode {stat.S_IMODE(mode):o}); chmod 600 it"
            )
        token = path.read_text().strip()
    except OSError as exc:
        raise RootKeyError(f"cannot read transit_token_file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise RootKeyError(f"transit_token_file {path} does not hold a text token") from None
    return _checked_token(token, f"transit_token_file {path}")


def _checked_token(token: str, source: str) -> str:
    """``token`` if it can go in a header; the error never repeats it."""
    if not token or not all(33 <= ord(ch) < 127 for ch in token):
        raise KeyServiceUnavailable(f"{source} does not hold a token (printable ASCII, no spaces)")
    return token


def _parse_address(address: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of ``http(s)://HOST[:PORT]``; plain http only to loopback, so
    neither the token nor an unwrapped key ever crosses a network in clear."""
    try:
        parts = urlsplit(address)
        port = parts.port
    except ValueError:
        raise RootKeyError(f"transit_address {address!r} is not a URL") from None
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host or parts.path not in ("", "/"):
        raise RootKeyError(
            f"transit_address must be https://HOST[:PORT] (the key service's address), got "
            f"{address!r}"
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise RootKeyError(f"transit_address must be https://HOST[:PORT], got {address!r}")
    if parts.scheme == "http" and not _loopback(host):
        raise RootKeyError(
            f"transit_address {address!r} is plain http to another host: use https (the token "
            "and the unwrapped keys would cross the network in clear)"
        )
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tls_context(settings: TransitSettings) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=settings.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise RootKeyError(
            f"transit_ca_file {settings.ca_file}: not a readable PEM CA bundle ({_describe(exc)})"
        ) from None


def _version_of(ciphertext: bytes) -> int | None:
    match = _CIPHERTEXT.fullmatch(ciphertext)
    return int(match.group(1)) if match else None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _errors(document: dict[str, object]) -> str:
    """The service's error text, on one line and short (it never holds a secret)."""
    errors = document.get("errors")
    if not isinstance(errors, list):
        return ""
    text = "; ".join(str(e) for e in errors)
    text = re.sub(r"\d+ errors? occurred:\s*", "", text)
    text = " ".join(text.replace("* ", " ").split())
    return text[:200]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message}); see transit_ca_file"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text)[:200]
