"""The operator's root key: the top of the key hierarchy, held by the operator only.

Everything onshore keeps secret at rest (tenant keys, the IAM secret keys SigV4 needs, audit and
deployment signing keys) is *wrapped* by this key: sealed with an AEAD whose associated data
names what the secret is for (``context``), so a wrapped blob cannot be moved to another purpose
or record without failing to unwrap.

Where the key comes from, in order:

1. ``ONSHORE_ROOT_KEY``: 32 bytes, base64 (for deployments whose secret manager injects it);
2. ``ONSHORE_ROOT_KEY_FILE``: a file holding the same, which must not be readable by group or
   others (mode 0600 or stricter);
3. ``<data-dir>/root.key``, generated with mode 0600 on first start (the embedded default).

Or the key stays in an external key service: OpenBao or Vault Transit
(:mod:`onshore.service.transit`, ``root_key_service = "transit"``), behind the same
:class:`KeyWrapper` protocol. :mod:`onshore.service.keysource` picks one from the configuration.

Wire format of a wrapped blob: ``version (1 byte) | key fingerprint (8) | nonce (12) | AEAD
ciphertext+tag``. The fingerprint names the root key generation that sealed it, so rotation can
tell what still needs re-wrapping. Every wrapper's blobs start with a version byte of its own
(1: a local key, 2: Transit) and the fingerprint, so :func:`sealed_by` reads any of them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import stat
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FILENAME = "root.key"
KEY_BYTES = 32
_VERSION = 1
_HEADER = 1 + 8 + 12


class RootKeyError(Exception):
    """The root key is missing, malformed or too widely readable; the message says which."""


class UnwrapError(Exception):
    """A wrapped blob is corrupt, was sealed for another context, or by another root key."""


#: What a client is told when the key service is unavailable (the details go to the log only).
KEY_SERVICE_DOWN = "The key service that holds the root key is unavailable. Please try again."


class KeyServiceUnavailable(RootKeyError):
    """The external key service holding the root key cannot be used right now (unreachable,
    timed out, sealed, or refusing the token). Nothing is wrong with the data: requests that
    need the root key fail with 503 until the service is back."""


class KeyWrapper(Protocol):
    """Seals small secrets (keys) under a key the caller never sees."""

    @property
    def fingerprint(self) -> str:
        """Hex id of the wrapping key (safe to show and log)."""
        ...

    def wrap(self, secret: bytes, *, context: bytes) -> bytes: ...

    def unwrap(self, blob: bytes, *, context: bytes) -> bytes: ...


class LocalRootKey:
    """A root key held in this process (from the environment, a key file, or the data dir)."""

    __slots__ = ("_aead", "_fingerprint")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise RootKeyError(f"the root key must be {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)
        self._fingerprint = hashlib.sha256(b"onshore root key fingerprint\0" + key).digest()[:8]

    def __repr__(self) -> str:  # never show the key
        return f"LocalRootKey(fingerprint={self.fingerprint})"

    @property
    def fingerprint(self) -> str:
        return self._fingerprint.hex()

    def wrap(self, secret: bytes, *, context: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        header = bytes([_VERSION]) + self._fingerprint + nonce
        return header + self._aead.encrypt(nonce, secret, header[:9] + context)

    def unwrap(self, blob: bytes, *, context: bytes) -> bytes:
        if len(blob) < _HEADER + 16 or blob[0] != _VERSION:
            raise UnwrapError("not a wrapped key blob")
        if blob[1:9] != self._fingerprint:
            raise UnwrapError(f"wrapped by another root key ({blob[1:9].hex()})")
        try:
            return self._aead.decrypt(blob[9:_HEADER], blob[_HEADER:], blob[:9] + context)
        except InvalidTag:
            raise UnwrapError("wrapped key blob failed authentication") from None


def sealed_by(blob: bytes) -> str:
    """Hex fingerprint of the root key that wrapped ``blob`` (read from its header)."""
    return blob[1:9].hex()


def is_local(blob: bytes) -> bool:
    """Whether ``blob`` was wrapped by a :class:`LocalRootKey` (rather than a key service)."""
    return bool(blob) and blob[0] == _VERSION


def load_root_key(data_dir: Path, environ: dict[str, str] | None = None) -> LocalRootKey:
    """The deployment's root key, from the first source that has one (see the module doc)."""
    env = os.environ if environ is None else environ
    if value := env.get("ONSHORE_ROOT_KEY"):
        return LocalRootKey(_decode(value, "ONSHORE_ROOT_KEY"))
    if file := env.get("ONSHORE_ROOT_KEY_FILE"):
        return LocalRootKey(_read_key_file(Path(file)))
    path = data_dir / FILENAME
    if path.exists():
        return LocalRootKey(_read_key_file(path))
    return LocalRootKey(_create_key_file(path))


def _decode(text: str, source: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise RootKeyError(f"{source} does not hold base64 text") from None


def _read_key_file(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise RootKeyError(
                f"{path} is readable by group or others (mode {stat.S_IMODE(mode):o}); chmod 600 it"
            )
        return _decode(path.read_text(), str(path))
    except OSError as exc:
        raise RootKeyError(f"cannot read the root key file {path}: {exc.strerror}") from None


def _create_key_file(path: Path) -> bytes:
    key = secrets.token_bytes(KEY_BYTES)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(key).decode() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(tmp, path)  # never replace a key another process created meanwhile
    except FileExistsError:
        os.unlink(tmp)
        return _read_key_file(path)
    os.unlink(tmp)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return key
