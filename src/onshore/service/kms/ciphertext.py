"""The KMS ciphertext blob: which key, and which of its key materials, sealed a secret.

A KMS key can have several key materials (each rotation adds one, see
:mod:`onshore.service.kms.keys`): Encrypt and GenerateDataKey use the current one, and Decrypt
must find the one a ciphertext was made with, so the blob names it. Two layouts, told apart by
the first byte:

* **version 2** (written since key material rotation exists)::

      0x02 | key id (36, ASCII) | material version (4, big endian) | nonce (12) | ciphertext+tag

  sealed with AES-256-GCM under that material; the associated data is the 41-byte header,
  ``0x00`` and the canonical JSON of the encryption context (keys sorted, no spaces), so the
  key id, the material version and the context are all authenticated.
* **version 1** (written before; still read)::

      0x01 | key id (36, ASCII) | nonce (12) | ciphertext+tag

  always made with the key's first material (version 1); associated data: the key id,
  ``0x00`` and the canonical context.

Anything else — another first byte, a blob too short to hold a tag, a key id that is not ASCII,
material version 0 — is malformed; the caller answers ``InvalidCiphertextException``.
"""

from __future__ import annotations

import json
import secrets
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["Ciphertext", "MalformedCiphertext", "parse", "seal"]

V1, V2 = 1, 2
KEY_ID_LEN = 36
_NONCE = 12
_TAG = 16
_VERSION = struct.Struct(">I")
_V1_HEADER = 1 + KEY_ID_LEN
_V2_HEADER = 1 + KEY_ID_LEN + _VERSION.size


class MalformedCiphertext(ValueError):
    """The blob is not a ciphertext this KMS wrote."""


@dataclass(frozen=True, slots=True)
class Ciphertext:
    """A parsed blob: the key and material that sealed it, and what opening it needs."""

    key_id: str
    material_version: int
    nonce: bytes
    sealed: bytes  # ciphertext + tag
    aad_prefix: bytes  # the associated data before the encryption context

    def open(self, material: bytes, context: Mapping[str, str] | None) -> bytes:
        """The plaintext; ``cryptography.exceptions.InvalidTag`` if the material, context or
        blob is not the one it was sealed with."""
        return AESGCM(material).decrypt(
            self.nonce, self.sealed, self.aad_prefix + _canonical(context)
        )


def _canonical(context: Mapping[str, str] | None) -> bytes:
    return json.dumps(dict(context or {}), sort_keys=True, separators=(",", ":")).encode()


def seal(
    material: bytes,
    key_id: str,
    material_version: int,
    plaintext: bytes,
    context: Mapping[str, str] | None,
) -> bytes:
    """A version 2 blob of ``plaintext`` sealed by ``material`` (version ``material_version``
    of key ``key_id``)."""
    encoded = key_id.encode("ascii")
    if len(encoded) != KEY_ID_LEN or not 1 <= material_version < 2**32:
        raise ValueError("a KMS key id is 36 ASCII characters; versions start at 1")
    header = bytes([V2]) + encoded + _VERSION.pack(material_version)
    nonce = secrets.token_bytes(_NONCE)
    return (
        header
        + nonce
        + AESGCM(material).encrypt(nonce, plaintext, header + b"\0" + _canonical(context))
    )


def parse(blob: bytes) -> Ciphertext:
    """Split a blob into its parts; MalformedCiphertext if it cannot be one of ours."""
    if not blob:
        raise MalformedCiphertext("empty ciphertext")
    if blob[0] == V1:
        header_len, version = _V1_HEADER, 1
    elif blob[0] == V2:
        header_len = _V2_HEADER
        if len(blob) < header_len:
            raise MalformedCiphertext("truncated ciphertext")
        (version,) = _VERSION.unpack_from(blob, 1 + KEY_ID_LEN)
    else:
        raise MalformedCiphertext("unknown ciphertext version")
    if len(blob) < header_len + _NONCE + _TAG or version < 1:
        raise MalformedCiphertext("truncated ciphertext")
    raw_id = blob[1 : 1 + KEY_ID_LEN]
    if not raw_id.isascii():
        raise MalformedCiphertext("the key id is not ASCII")
    key_id = raw_id.decode("ascii")
    aad_prefix = key_id.encode() if blob[0] == V1 else blob[:header_len]
    return Ciphertext(
        key_id=key_id,
        material_version=version,
        nonce=blob[header_len : header_len + _NONCE],
        sealed=blob[header_len + _NONCE :],
        aad_prefix=aad_prefix + b"\0",
    )
