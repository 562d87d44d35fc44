"""KMS keys: the AWS KMS semantics S3 users need (TrentService subset), held by the operator.

A KMS key belongs to one account. Its 256-bit key material is stored only sealed by the root key
(context ``onshore kms key\\0<key id>``). Keys are used for:

* ``Encrypt``/``Decrypt``: small secrets (up to 4 KiB), bound to an optional *encryption
  context* (a string map that must be given again, identically, to decrypt);
* ``GenerateDataKey``: a fresh random data key, returned in plain text and sealed; SSE-KMS
  objects keep only the sealed form (see :mod:`onshore.service.encryption.keys`).

Key states, as AWS: ``Enabled``; ``Disabled`` (every cryptographic operation fails with
``DisabledException`` until ``EnableKey``); ``PendingDeletion`` (after
``ScheduleKeyDeletion``, 7-30 days; operations fail with ``KMSInvalidStateException`` until
``CancelKeyDeletion``, which leaves the key Disabled). Reads of SSE-KMS objects fail the same
way, and succeed again once the key is enabled. Deleting due keys and automatic yearly rotation
of key material are not implemented: ``EnableKeyRotation`` only records the setting.

Ciphertext blob: ``version (1) | key id (36, ASCII) | nonce (12) | AES-256-GCM ciphertext+tag``,
with the key id and the canonical JSON of the encryption context as associated data.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from onshore.domain.models import KmsKey
from onshore.service.rootkey import KeyWrapper, UnwrapError
from onshore.storage.ports import KmsStore

ENABLED, DISABLED, PENDING = "Enabled", "Disabled", "PendingDeletion"
_VERSION = 1
_ID_LEN = 36
_ALIAS = re.compile(r"^alias/[a-zA-Z0-9/_-]{1,250}$")
DEFAULT_S3_ALIAS = "alias/aws/s3"
MAX_PLAINTEXT = 4096


class KmsError(Exception):
    """A KMS API error: ``kind`` is the AWS ``__type`` (e.g. ``NotFoundException``)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _context_aad(key_id: str, context: Mapping[str, str] | None) -> bytes:
    canonical = json.dumps(dict(context or {}), sort_keys=True, separators=(",", ":"))
    return key_id.encode() + b"\0" + canonical.encode()


class KmsService:
    """Blocking: call from worker threads."""

    def __init__(self, store: KmsStore, root: KeyWrapper, *, partition: str, region: str) -> None:
        self.store = store
        self.root = root
        self.partition = partition
        self.region = region

    # --- naming -------------------------------------------------------------------------------
    def arn(self, key: KmsKey) -> str:
        return f"arn:{self.partition}:kms:{self.region}:{key.account_id}:key/{key.key_id}"

    def resolve(self, account_id: str, key_ref: str) -> KmsKey:
        """A key of ``account_id`` by id, ARN, alias name or alias ARN; NotFoundException."""
        ref = key_ref.strip()
        if ":alias/" in ref:
            ref = "alias/" + ref.split(":alias/", 1)[1]
        elif ":key/" in ref:
            ref = ref.split(":key/", 1)[1]
        if ref.startswith("alias/"):
            target = self.store.get_kms_alias(account_id, ref)
            if target is None:
                raise KmsError("NotFoundException", f"Alias {ref} is not found.")
            ref = target
        key = self.store.get_kms_key(ref)
        if key is None or key.account_id != account_id:
            raise KmsError("NotFoundException", f"Key '{key_ref}' does not exist")
        return key

    # --- lifecycle ----------------------------------------------------------------------------
    def create_key(self, account_id: str, description: str = "") -> KmsKey:
        key_id = str(uuid.uuid4())
        material = secrets.token_bytes(32)
        key = KmsKey(
            key_id=key_id,
            account_id=account_id,
            description=description,
            state=ENABLED,
            created=datetime.now(UTC),
            wrapped=self.root.wrap(material, context=self.root_context(key_id)),
            root_fingerprint=self.root.fingerprint,
        )
        self.store.put_kms_key(key)
        return key

    def list_keys(self, account_id: str) -> list[KmsKey]:
        return self.store.list_kms_keys(account_id)

    def set_enabled(self, account_id: str, key_ref: str, enabled: bool) -> KmsKey:
        key = self.resolve(account_id, key_ref)
        if key.state == PENDING:
            raise KmsError("KMSInvalidStateException", f"{self.arn(key)} is pending deletion.")
        key = replace(key, state=ENABLED if enabled else DISABLED)
        self.store.put_kms_key(key)
        return key

    def schedule_deletion(self, account_id: str, key_ref: str, days: int = 30) -> KmsKey:
        if not 7 <= days <= 30:
            raise KmsError(
                "ValidationException", "PendingWindowInDays must be between 7 and 30 days."
            )
        key = self.resolve(account_id, key_ref)
        if key.state == PENDING:
            raise KmsError("KMSInvalidStateException", f"{self.arn(key)} is pending deletion.")
        due = datetime.now(UTC) + timedelta(days=days)
        key = replace(key, state=PENDING, deletion=due)
        self.store.put_kms_key(key)
        return key

    def cancel_deletion(self, account_id: str, key_ref: str) -> KmsKey:
        key = self.resolve(account_id, key_ref)
        if key.state != PENDING:
            raise KmsError("KMSInvalidStateException", f"{self.arn(key)} is not pending deletion.")
        key = replace(key, state=DISABLED, deletion=None)
        self.store.put_kms_key(key)
        return key

    def enable_rotation(self, account_id: str, key_ref: str) -> KmsKey:
        key = self._usable(self.resolve(account_id, key_ref))
        key = replace(key, rotation_enabled=True)
        self.store.put_kms_key(key)
        return key

    def create_alias(self, account_id: str, alias: str, target: str) -> None:
        if not _ALIAS.match(alias) or alias.startswith("alias/aws/"):
            raise KmsError("ValidationException", f"Alias {alias!r} is not a valid alias name.")
        key = self.resolve(account_id, target)
        now_us = int(datetime.now(UTC).timestamp() * 1_000_000)
        if not self.store.add_kms_alias(account_id, alias, key.key_id, now_us):
            raise KmsError("AlreadyExistsException", f"An alias with the name {alias} exists")

    def list_aliases(self, account_id: str) -> list[tuple[str, str]]:
        return self.store.list_kms_aliases(account_id)

    def default_s3_key(self, account_id: str) -> KmsKey:
        """The account's ``alias/aws/s3`` key (SSE-KMS without a key id), created on first use."""
        target = self.store.get_kms_alias(account_id, DEFAULT_S3_ALIAS)
        if target is None:
            key = self.create_key(account_id, "Default key that protects my S3 objects")
            now_us = int(datetime.now(UTC).timestamp() * 1_000_000)
            self.store.add_kms_alias(account_id, DEFAULT_S3_ALIAS, key.key_id, now_us)
            target = self.store.get_kms_alias(account_id, DEFAULT_S3_ALIAS)
        assert target is not None
        return self.resolve(account_id, target)

    # --- cryptography -------------------------------------------------------------------------
    def encrypt(
        self, key: KmsKey, plaintext: bytes, context: Mapping[str, str] | None = None
    ) -> bytes:
        if not 1 <= len(plaintext) <= MAX_PLAINTEXT:
            raise KmsError("ValidationException", "Plaintext must be 1 to 4096 bytes.")
        aead = AESGCM(self._material(self._usable(key)))
        nonce = secrets.token_bytes(12)
        header = bytes([_VERSION]) + key.key_id.encode()
        return header + nonce + aead.encrypt(nonce, plaintext, _context_aad(key.key_id, context))

    def decrypt(
        self,
        account_id: str,
        blob: bytes,
        context: Mapping[str, str] | None = None,
        key_ref: str | None = None,
    ) -> tuple[KmsKey, bytes]:
        if len(blob) < 1 + _ID_LEN + 12 + 16 or blob[0] != _VERSION:
            raise KmsError("InvalidCiphertextException", "The ciphertext is invalid.")
        key_id = blob[1 : 1 + _ID_LEN].decode("ascii", "replace")
        key = self.resolve(account_id, key_id)
        if key_ref is not None and self.resolve(account_id, key_ref).key_id != key.key_id:
            raise KmsError("IncorrectKeyException", "The key ID in the request does not match.")
        aead = AESGCM(self._material(self._usable(key)))
        nonce = blob[1 + _ID_LEN : 1 + _ID_LEN + 12]
        try:
            plain = aead.decrypt(nonce, blob[1 + _ID_LEN + 12 :], _context_aad(key_id, context))
        except InvalidTag:
            raise KmsError("InvalidCiphertextException", "The ciphertext is invalid.") from None
        return key, plain

    def generate_data_key(
        self, key: KmsKey, size: int = 32, context: Mapping[str, str] | None = None
    ) -> tuple[bytes, bytes]:
        """(plaintext data key, its ciphertext blob)."""
        if not 1 <= size <= 1024:
            raise KmsError("ValidationException", "NumberOfBytes must be between 1 and 1024.")
        plain = secrets.token_bytes(size)
        return plain, self.encrypt(key, plain, context)

    # --- internals ----------------------------------------------------------------------------
    @staticmethod
    def root_context(key_id: str) -> bytes:
        return f"onshore kms key\0{key_id}".encode()

    def _usable(self, key: KmsKey) -> KmsKey:
        if key.state == DISABLED:
            raise KmsError("DisabledException", f"{self.arn(key)} is disabled.")
        if key.state == PENDING:
            raise KmsError("KMSInvalidStateException", f"{self.arn(key)} is pending deletion.")
        return key

    def _material(self, key: KmsKey) -> bytes:
        try:
            return self.root.unwrap(key.wrapped, context=self.root_context(key.key_id))
        except UnwrapError:
            raise KmsError("KMSInternalException", "The key material is unavailable.") from None
