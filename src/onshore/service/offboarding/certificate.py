"""The deletion certificate: what an offboarding destroyed, signed so an auditor can check it.

A certificate is one JSON document::

    {"certificate": {...the facts...},
     "signature": {"algorithm": "Ed25519", "key_fingerprint": "<hex>", "value": "<base64>"}}

The signature covers the *canonical* JSON of the ``certificate`` object (keys sorted, no
insignificant whitespace, UTF-8), so re-indenting or reordering the file does not break it but
changing any value does. It is made with the deployment's Ed25519 audit key — the key whose
public half ``onshore audit public-key`` prints and ``onshore audit verify`` uses — so an
auditor needs nothing new. ``onshore audit verify-certificate FILE --public-key PEM`` checks
it offline.

The facts: the tenant (account id and name); when offboarding was requested, the notice period
and when it ended, when execution started and finished, whether the notice was cut short
(``forced``); counts of what was deleted (objects, versions' delete markers, bytes, buckets,
multipart uploads and parts, users, access keys, policies); the fingerprints of the destroyed
keys (``tenant:<hex>`` for the tenant key, ``kms:<key id>:<hex>`` for each KMS key — a
fingerprint is a hash of the key, which identifies it without revealing it); the deployment's
partition, region and jurisdiction; and, when the audit trail is on, the chain head (sequence
number and hash) at execution, which ties the certificate to a point in the audit trail.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from onshore.service.audit.integrity import AuditKey, fingerprint_of, signature_valid

KIND = "onshore.deletion-certificate"
VERSION = 1
ALGORITHM = "Ed25519"


class CertificateError(Exception):
    """A certificate that is malformed, or whose signature does not verify with the key."""


def canonical(document: Mapping[str, object]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def sign(facts: Mapping[str, object], key: AuditKey) -> str:
    """The signed certificate (pretty JSON text) for ``facts``."""
    body = {"kind": KIND, "version": VERSION, **facts}
    document = {
        "certificate": body,
        "signature": {
            "algorithm": ALGORITHM,
            "key_fingerprint": key.fingerprint,
            "value": key.sign(canonical(body)),
        },
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@dataclass(frozen=True, slots=True)
class Verified:
    """A certificate whose signature checked out: its facts and the signing key's id."""

    facts: Mapping[str, object]
    key_fingerprint: str


def verify_certificate(text: str | bytes, public_key: Ed25519PublicKey) -> Verified:
    """Check a certificate against the audit public key; CertificateError says what is wrong."""
    try:
        document = json.loads(text)
    except ValueError:
        raise CertificateError("the certificate is not valid JSON") from None
    if not isinstance(document, dict):
        raise CertificateError("the certificate is not a JSON object")
    body = document.get("certificate")
    signature = document.get("signature")
    if not isinstance(body, dict) or not isinstance(signature, dict):
        raise CertificateError("the certificate lacks its 'certificate' or 'signature' part")
    if body.get("kind") != KIND:
        raise CertificateError(f"not a deletion certificate (kind {body.get('kind')!r})")
    if signature.get("algorithm") != ALGORITHM:
        raise CertificateError(f"unsupported signature algorithm {signature.get('algorithm')!r}")
    value = signature.get("value")
    if not isinstance(value, str):
        raise CertificateError("the signature has no value")
    expected = fingerprint_of(public_key)
    if signature.get("key_fingerprint") != expected:
        raise CertificateError(
            f"signed by key {signature.get('key_fingerprint')!r}, not by the given key {expected}"
        )
    if not signature_valid(public_key, canonical(body), value):
        raise CertificateError("the signature does not match the certificate (altered?)")
    return Verified(body, expected)
