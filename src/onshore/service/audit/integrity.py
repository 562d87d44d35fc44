"""The integrity of the trail: the hash chain, the audit signing key and signed digests.

**Chain.** Record *n* stores ``hash_n = H(hash_{n-1} || canonical_json_n)`` (raw digest bytes,
32 of them; ``hash_0`` is 32 zero bytes). ``H`` is SHA-256, or SM3 (GB/T 32905) where the China
profile asks for it (setting ``audit_hash``). Changing, removing, inserting or reordering any
record changes every later hash, so the chain head summarises the whole history.

**Digests**, after CloudTrail's digest files: every ``audit_digest_minutes`` (and at a clean
shutdown) the server signs, with the deployment's Ed25519 audit key, a small JSON document::

    {"digestSeq", "digestTime", "firstSeq", "lastSeq", "count", "startTime", "endTime",
     "startPrevHash", "headHash", "previousDigestHash", "hashAlgorithm", "keyFingerprint",
     "partition", "region"}

covering the records appended since the previous digest. ``startPrevHash`` is the chain hash
the first covered record links to, ``headHash`` the last covered record's hash, and
``previousDigestHash`` the hash (same ``H``, hex) of the previous digest's canonical payload, so
the digests form a chain of their own: a removed or replaced digest breaks it. A verifier needs
only the records, the digests and the public key.

**Key.** Generated on first start, stored in the metadata database wrapped by the operator's
root key (:mod:`onshore.service.rootkey`, context ``onshore/audit-key``); only the public key
leaves the deployment (``onshore audit public-key``).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "ALGORITHMS",
    "KEY_CONTEXT",
    "AuditKey",
    "chain_hash",
    "digest_of",
    "fingerprint_of",
    "link_function",
    "load_public_key",
    "signature_valid",
]

ALGORITHMS = ("sha256", "sm3")
KEY_CONTEXT = b"onshore/audit-key"


def _sm3(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


_HASHES: dict[str, Callable[[bytes], bytes]] = {"sha256": _sha256, "sm3": _sm3}


def digest_of(alg: str, data: bytes) -> bytes:
    """``H(data)`` with the named algorithm (``ValueError`` for an unknown one)."""
    try:
        return _HASHES[alg](data)
    except KeyError:
        raise ValueError(f"unknown audit hash algorithm {alg!r} (use sha256 or sm3)") from None


def chain_hash(alg: str, prev: bytes, event: bytes) -> bytes:
    """``H(prev || event)``: the hash of a record whose predecessor's hash is ``prev``."""
    return digest_of(alg, prev + event)


def link_function(alg: str) -> Callable[[bytes, bytes], bytes]:
    """``chain_hash`` bound to one algorithm (the writer's hot path)."""
    if alg == "sha256":
        return lambda prev, event: hashlib.sha256(prev + event).digest()
    hash_one = _HASHES.get(alg)
    if hash_one is None:
        raise ValueError(f"unknown audit hash algorithm {alg!r} (use sha256 or sm3)")
    return lambda prev, event: hash_one(prev + event)


def fingerprint_of(public: Ed25519PublicKey) -> str:
    """A short, stable id of a public key: the first 16 bytes of SHA-256 of its raw form."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (``ValueError`` for anything else)."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def signature_valid(public: Ed25519PublicKey, payload: bytes, signature_b64: str) -> bool:
    try:
        public.verify(base64.b64decode(signature_b64, validate=True), payload)
    except (InvalidSignature, ValueError):
        return False
    return True


class AuditKey:
    """The deployment's Ed25519 audit signing key (the private half never leaves the process
    unwrapped and is never printed)."""

    __slots__ = ("_private", "public", "fingerprint")

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.fingerprint = fingerprint_of(self.public)

    def __repr__(self) -> str:
        return f"AuditKey(fingerprint={self.fingerprint})"

    @classmethod
    def generate(cls) -> AuditKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_raw(cls, raw: bytes) -> AuditKey:
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def raw_private(self) -> bytes:
        """The 32-byte private key, for wrapping with the root key only."""
        return self._private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    def public_pem(self) -> str:
        return self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def sign(self, payload: bytes) -> str:
        return base64.b64encode(self._private.sign(payload)).decode("ascii")
