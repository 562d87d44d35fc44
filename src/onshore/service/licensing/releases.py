"""Signed releases: the licensor signs a release artifact, the operator checks it before install.

``onshore licensor sign-release FILE`` writes ``FILE.sig``, a signed envelope (format
``onshore-release/1``) naming the file, its size and SHA-256. ``onshore admin release verify
FILE`` recomputes both and checks the signature against the pinned licensor keys — the
quarantine step before an operator installs a new build.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from onshore.service.licensing import signing

FORMAT = "onshore-release/1"


class ReleaseProblem(Exception):
    """A release artifact does not match its signature file, or the signature is not trusted."""


def _digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def sign(path: Path, key: Ed25519PrivateKey) -> str:
    size, sha = _digest(path)
    payload = {"file": path.name, "size": size, "sha256": sha}
    return signing.canonical(signing.seal(FORMAT, payload, key)).decode() + "\n"


def verify(path: Path, signature_text: str, trusted: tuple[Ed25519PublicKey, ...]) -> str:
    """Check the artifact against its signature file; the signer's key id when it verifies."""
    try:
        opened = signing.open_envelope(signature_text, FORMAT, trusted)
    except signing.SignatureProblem as exc:
        raise ReleaseProblem(f"release signature: {exc}") from None
    size, sha = _digest(path)
    if opened.payload.get("sha256") != sha or opened.payload.get("size") != size:
        raise ReleaseProblem(
            f"{path.name} is not the file that was signed (its SHA-256 or size differs): "
            "do not install it"
        )
    if opened.payload.get("file") != path.name:
        raise ReleaseProblem(
            f"the signature is for {opened.payload.get('file')!r}, not {path.name!r}"
        )
    return signing.key_id(opened.signer)
