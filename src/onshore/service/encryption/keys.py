"""Data keys: choosing one for a new object, and recovering it to read an object.

* **SSE-S3** (the default, ``x-amz-server-side-encryption: AES256``): a random data key per
  object, wrapped by the owner's tenant key (:mod:`onshore.service.kms.tenant_keys`).
* **SSE-C** (``x-amz-server-side-encryption-customer-*``): a random data key wrapped by the
  customer's key, which lives only for the request. To tell a wrong key from a corrupt object,
  a salted HMAC-SHA256 of the customer key is stored (never the key, nor an unsalted hash).

The data key also seals the object's user metadata (``x-amz-meta-*``), so neither the body nor
the metadata exists in plain text at rest. With the ``encryption`` setting off, new objects
are stored in plain text (no data key), and objects already sealed stay readable.

Errors, as AWS gives them: SSE-C headers on a plain or SSE-S3 object, or none on an SSE-C
object → 400 InvalidRequest; a wrong SSE-C key → 403 AccessDenied; a tenant key that is gone
(destroyed at offboarding) → 403 AccessDenied.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from onshore.domain.errors import (
    AccessDenied,
    InternalError,
    InvalidRequest,
    KmsDisabledException,
    KmsInvalidStateException,
    KmsNotFoundException,
    S3Error,
)
from onshore.domain.models import Encryption, SseMode
from onshore.service.blocking import Blocking
from onshore.service.encryption.defaults import BucketDefaults
from onshore.service.encryption.segments import Aead, CipherName, IntegrityError
from onshore.service.kms.keys import KmsError, KmsService
from onshore.service.kms.tenant_keys import (
    KeyUnavailable,
    TenantKeys,
    data_key_context,
    unwrap_with,
    wrap_with,
)

_METADATA_CONTEXT = b"onshore user metadata"
_CUSTOMER_KEY_ID = "customer"


@dataclass(frozen=True, slots=True)
class CustomerKey:
    """An SSE-C key from the request (already checked: AES256, 32 bytes, MD5 matches)."""

    key: bytes
    md5: str  # base64, as the client sent it

    def __repr__(self) -> str:  # never show the key
        return f"CustomerKey(md5={self.md5})"


@dataclass(frozen=True, slots=True)
class DataKey:
    """An object's data key, unwrapped, and the record that describes it at rest."""

    aead: Aead
    encryption: Encryption

    def seal_metadata(self, metadata: Mapping[str, str]) -> Encryption:
        """The encryption record with ``metadata`` sealed into it."""
        text = json.dumps(dict(metadata), ensure_ascii=False, separators=(",", ":"))
        sealed = wrap_with(self.aead, text.encode(), _METADATA_CONTEXT)
        return replace(self.encryption, sealed_metadata=sealed)

    def open_metadata(self) -> dict[str, str]:
        sealed = self.encryption.sealed_metadata
        if sealed is None:
            return {}
        try:
            text = unwrap_with(self.aead, sealed, _METADATA_CONTEXT)
        except KeyUnavailable:
            raise InternalError("The object's metadata could not be read.") from None
        return {str(k): str(v) for k, v in json.loads(text).items()}


def _customer_hmac(key: bytes, salt: bytes) -> str:
    digest = hmac.new(salt, b"onshore sse-c key check\0" + key, hashlib.sha256).digest()
    return base64.b64encode(salt).decode() + ":" + base64.b64encode(digest).decode()


def _customer_matches(key: bytes, stored: str) -> bool:
    salt_text, _, _ = stored.partition(":")
    try:
        salt = base64.b64decode(salt_text)
    except ValueError:
        return False
    return hmac.compare_digest(_customer_hmac(key, salt), stored)


def _kms_error(err: KmsError) -> S3Error:
    if err.kind == "DisabledException":
        return KmsDisabledException(err.message)
    if err.kind == "KMSInvalidStateException":
        return KmsInvalidStateException(err.message)
    if err.kind == "NotFoundException":
        return KmsNotFoundException(err.message)
    return InternalError("The KMS key could not be used.")


def unsealer(tenant_keys: TenantKeys) -> Callable[[Encryption], Aead | None]:
    """A blocking opener of SSE-S3 data keys for offline tools (``onshore fsck``); None for
    SSE-C (whose key only the customer has) and SSE-KMS. Raises KeyUnavailable."""

    def unseal(encryption: Encryption) -> Aead | None:
        if encryption.mode is not SseMode.S3:
            return None  # SSE-C: the customer's key; SSE-KMS: left to the KMS key's state
        tenant = tenant_keys.existing(encryption.key_id)
        context = data_key_context(encryption.key_id, encryption.cipher)
        secret = unwrap_with(tenant, encryption.wrapped_key, context)
        return Aead(CipherName(encryption.cipher), secret)

    return unseal


#: Unwrapped SSE-S3 data keys kept per process (a few hundred KiB at most).
_OPENED_MAX = 4096


class ObjectKeys:
    """Data keys for new objects and for reading stored ones (see the module docstring)."""

    def __init__(
        self,
        tenant_keys: TenantKeys,
        blocking: Blocking,
        *,
        enabled: bool = True,
        defaults: BucketDefaults | None = None,
        kms: KmsService | None = None,
    ) -> None:
        self.tenant_keys = tenant_keys
        self.blocking = blocking
        self.enabled = enabled
        self.defaults = defaults
        self.kms = kms
        # SSE-S3 data keys already unwrapped, by wrapped key (unique per object or upload):
        # reading a hot object again skips the unwrap and the cipher set-up. An entry is used
        # only while its tenant key is still in the tenant-key cache, so destroying a tenant key
        # (offboarding) stops these too, within that cache's delay.
        self._opened: OrderedDict[bytes, DataKey] = OrderedDict()

    async def bucket_default(self, bucket: str) -> tuple[SseMode | None, str | None]:
        """The (mode, KMS key id) a write that asks for none gets in ``bucket``: the bucket's
        default encryption configuration, else SSE-S3 with the ``encryption`` setting on."""
        if self.defaults is None:
            return (SseMode.S3 if self.enabled else None), None
        config = await self.defaults.get(bucket)
        return (None, None) if config is None else (config.mode, config.kms_key_id)

    @property
    def cipher(self) -> CipherName:
        return self.tenant_keys.cipher

    async def new(
        self,
        owner_id: str,
        *,
        mode: SseMode | None = None,
        customer: CustomerKey | None = None,
        kms_key_id: str | None = None,
    ) -> DataKey | None:
        """A fresh data key for an object of ``owner_id`` (None: store in plain text)."""
        cipher = self.cipher
        if mode is SseMode.KMS:
            return await self.blocking(self._new_kms, owner_id, kms_key_id)
        if customer is not None:
            wrapper = Aead(CipherName.AES_256_GCM, customer.key)
            aead, secret = Aead.generate(cipher)
            context = data_key_context(_CUSTOMER_KEY_ID, cipher.value)
            record = Encryption(
                mode=SseMode.CUSTOMER,
                cipher=cipher.value,
                key_id=_CUSTOMER_KEY_ID,
                wrapped_key=wrap_with(wrapper, secret, context),
                customer_key_hmac=_customer_hmac(customer.key, secrets.token_bytes(16)),
                customer_key_md5=customer.md5,
            )
            return DataKey(aead, record)
        if mode is None and not self.enabled:
            return None
        tenant = self.tenant_keys.cached(owner_id)
        if tenant is None:
            tenant = await self.blocking(self.tenant_keys.get_or_create, owner_id)
        aead, secret = Aead.generate(cipher)
        record = Encryption(
            mode=SseMode.S3,
            cipher=cipher.value,
            key_id=owner_id,
            wrapped_key=wrap_with(tenant, secret, data_key_context(owner_id, cipher.value)),
        )
        return DataKey(aead, record)

    async def open(
        self, encryption: Encryption | None, customer: CustomerKey | None = None
    ) -> DataKey | None:
        """The data key of a stored object (None for a plain one), with AWS's errors."""
        if customer is not None and (encryption is None or encryption.mode is not SseMode.CUSTOMER):
            raise InvalidRequest("The encryption parameters are not applicable to this object.")
        if encryption is None:
            return None
        if encryption.mode is SseMode.KMS:
            return await self.blocking(self._open_kms, encryption)
        if encryption.mode is SseMode.S3:
            hit = self._opened.get(encryption.wrapped_key)
            if hit is not None and self.tenant_keys.cached(encryption.key_id) is not None:
                return hit
        try:
            cipher = CipherName(encryption.cipher)
        except ValueError:
            raise InternalError("The object was sealed with an unknown cipher.") from None
        context = data_key_context(encryption.key_id, encryption.cipher)
        if encryption.mode is SseMode.CUSTOMER:
            if customer is None:
                raise InvalidRequest(
                    "The object was stored using a form of Server Side Encryption. The correct "
                    "parameters must be provided to retrieve the object."
                )
            if not _customer_matches(customer.key, encryption.customer_key_hmac):
                raise AccessDenied(
                    "The provided customer encryption key does not match the one the object "
                    "was stored with."
                )
            wrapper = Aead(CipherName.AES_256_GCM, customer.key)
        else:
            try:
                cached = self.tenant_keys.cached(encryption.key_id)
                if cached is None:
                    cached = await self.blocking(self.tenant_keys.existing, encryption.key_id)
                wrapper = cached
            except KeyUnavailable:
                raise AccessDenied("The key that protects this object is not available.") from None
        try:
            secret = unwrap_with(wrapper, encryption.wrapped_key, context)
            opened = DataKey(Aead(cipher, secret), encryption)
        except (KeyUnavailable, IntegrityError, ValueError):
            raise InternalError("The object's data key could not be unwrapped.") from None
        if encryption.mode is SseMode.S3:
            self._remember(encryption.wrapped_key, opened)
        return opened

    def _remember(self, wrapped: bytes, opened: DataKey) -> None:
        self._opened[wrapped] = opened
        if len(self._opened) > _OPENED_MAX:
            self._opened.popitem(last=False)

    # --- SSE-KMS ------------------------------------------------------------------------------
    def _new_kms(self, owner_id: str, kms_key_id: str | None) -> DataKey:
        """SSE-KMS: a data key generated (and sealed) by the named KMS key, or by the
        account's ``alias/aws/s3`` key when none is named."""
        if self.kms is None:
            raise InternalError("KMS is not enabled on this server.")
        cipher = self.cipher
        try:
            if kms_key_id:
                key = self.kms.resolve(owner_id, kms_key_id)
            else:
                key = self.kms.default_s3_key(owner_id)
            secret, blob = self.kms.generate_data_key(key, cipher.key_bytes)
        except KmsError as err:
            raise _kms_error(err) from None
        record = Encryption(
            mode=SseMode.KMS, cipher=cipher.value, key_id=self.kms.arn(key), wrapped_key=blob
        )
        return DataKey(Aead(cipher, secret), record)

    def _open_kms(self, encryption: Encryption) -> DataKey:
        if self.kms is None:
            raise InternalError("KMS is not enabled on this server.")
        account = encryption.key_id.split(":")[4] if encryption.key_id.count(":") >= 5 else ""
        try:
            _, secret = self.kms.decrypt(account, encryption.wrapped_key)
            return DataKey(Aead(CipherName(encryption.cipher), secret), encryption)
        except KmsError as err:
            raise _kms_error(err) from None
        except ValueError:
            raise InternalError("The object's data key could not be unwrapped.") from None
