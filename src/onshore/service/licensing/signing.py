"""Signed documents: canonical JSON and Ed25519, shared by licenses, reports and releases.

Every artifact that crosses between licensor and operator is a JSON *envelope*::

    {"format": "onshore-license/1", "key_id": "…", "payload": {…}, "signature": "<base64>"}

The signature covers ``format`` and the payload's **canonical** form (keys sorted, no
whitespace, UTF-8), so re-indenting a file does not break it while changing any value does, and
a payload signed as one kind of document cannot be passed off as another. ``key_id`` is the
first 16 hex digits of the SHA-256 of the raw public key: it names the key and never replaces
checking the signature.

Public keys travel as text, ``ed25519:<base64 of the 32 raw bytes>`` (the form
``onshore licensor keygen`` prints and ``licensor_public_keys`` takes); private keys are PKCS#8
PEM files readable by their owner only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PREFIX = "ed25519:"


class SignatureProblem(Exception):
    """A document is malformed, signed by a key that is not trusted, or its signature fails."""


def canonical(value: object) -> bytes:
    """The one byte form of a JSON value that gets signed and hashed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def public_key_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PREFIX + base64.b64encode(raw).decode()


def parse_public_key(text: str) -> Ed25519PublicKey:
    body = text.strip()
    if not body.startswith(PREFIX):
        raise SignatureProblem(f"not an Ed25519 public key (expected '{PREFIX}<base64>')")
    try:
        raw = base64.b64decode(body[len(PREFIX) :], validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise SignatureProblem("malformed Ed25519 public key") from None


def parse_public_keys(text: str | None) -> tuple[Ed25519PublicKey, ...]:
    """The pinned keys of a comma- or whitespace-separated list (empty when unset)."""
    if not text:
        return ()
    return tuple(parse_public_key(t) for t in text.replace(",", " ").split())


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def private_key_raw(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def write_private_key(path: Path, key: Ed25519PrivateKey) -> None:
    """Write a new PEM private key file, mode 0600; never overwrites an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_key_pem(key))


def read_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SignatureProblem(f"cannot read an Ed25519 private key from {path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureProblem(f"{path} does not hold an Ed25519 private key")
    return key


def _signed_bytes(fmt: str, payload: Mapping[str, object]) -> bytes:
    return fmt.encode() + b"\n" + canonical(payload)


def seal(fmt: str, payload: Mapping[str, object], key: Ed25519PrivateKey) -> dict[str, object]:
    """A signed envelope (see the module docstring)."""
    return {
        "format": fmt,
        "key_id": key_id(key.public_key()),
        "payload": dict(payload),
        "signature": base64.b64encode(key.sign(_signed_bytes(fmt, payload))).decode(),
    }


@dataclass(frozen=True, slots=True)
class Opened:
    """An envelope whose signature checked out, and the key that made it."""

    payload: dict[str, object]
    signer: Ed25519PublicKey


def parse_envelope(text: str | bytes, fmt: str) -> tuple[dict[str, object], bytes]:
    """The payload and raw signature of an envelope of format ``fmt`` (signature unchecked)."""
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise SignatureProblem("not a JSON document") from None
    if not isinstance(doc, dict) or set(doc) != {"format", "key_id", "payload", "signature"}:
        raise SignatureProblem("not a signed onshore document (format, key_id, payload, signature)")
    if doc["format"] != fmt:
        raise SignatureProblem(f"expected a {fmt} document, got {doc['format']!r}")
    payload, signature = doc["payload"], doc["signature"]
    if not isinstance(payload, dict) or not isinstance(signature, str):
        raise SignatureProblem("malformed payload or signature")
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureProblem("the signature is not base64") from None
    return payload, raw


def open_envelope(text: str | bytes, fmt: str, trusted: Iterable[Ed25519PublicKey]) -> Opened:
    """Check an envelope against the trusted keys; the first key whose signature verifies wins."""
    payload, raw = parse_envelope(text, fmt)
    keys = tuple(trusted)
    if not keys:
        raise SignatureProblem("no trusted public key to check the signature against")
    message = _signed_bytes(fmt, payload)
    for key in keys:
        try:
            key.verify(raw, message)
        except InvalidSignature:
            continue
        return Opened(payload, key)
    raise SignatureProblem(
        "the signature does not verify against any trusted key: the document was altered, "
        "or signed by a key that is not trusted"
    )
