"""KMS keys: the AWS KMS semantics S3 users need (TrentService subset), held by the operator.

A KMS key belongs to one account. Its 256-bit key materials are stored only sealed by the root
key (context ``onshore kms key\\0<key id>`` for the first, ``...\\0<version>`` for later ones).
Keys are used for:

* ``Encrypt``/``Decrypt``: small secrets (up to 4 KiB), bound to an optional *encryption
  context* (a string map that must be given again, identically, to decrypt);
* ``GenerateDataKey``: a fresh random data key, returned in plain text and sealed; SSE-KMS
  objects keep only the sealed form (see :mod:`onshore.service.encryption.keys`).

The ciphertext names the key and the key material that sealed it
(:mod:`onshore.service.kms.ciphertext`).

**Key states**, as AWS: ``Enabled``; ``Disabled`` (every cryptographic operation fails with
``DisabledException`` until ``EnableKey``); ``PendingDeletion`` (after ``ScheduleKeyDeletion``,
7-30 days; operations fail with ``KMSInvalidStateException`` until ``CancelKeyDeletion``, which
leaves the key Disabled). Reads of SSE-KMS objects fail the same way, and succeed again once the
key is enabled. When the deletion date passes, the key sweep (:mod:`.sweep`) deletes the key,
its key materials and aliases: from then on the key is ``NotFoundException`` and everything it
sealed is unrecoverable.

**Key material rotation**, as AWS: a rotation adds a new key material and makes it current;
Encrypt and GenerateDataKey use the current one, Decrypt uses whichever sealed the ciphertext,
so nothing has to be re-encrypted. ``EnableKeyRotation`` (period 90-2560 days, default 365)
schedules automatic rotations, carried out by the sweep when due, on Enabled keys only (a key
re-enabled after its date is rotated at the next sweep); ``RotateKeyOnDemand`` rotates at once
(at most :data:`ON_DEMAND_LIMIT` times per key) and leaves the schedule alone;
``ListKeyRotations`` lists the rotations. While a key is pending deletion its rotation status
reads false and nothing rotates; cancelling the deletion restores it.

Time comes from an injectable ``clock``, so tests move through deletion and rotation dates
without waiting.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidTag

from onshore.domain.models import KmsKey, KmsKeyMaterial
from onshore.service.kms import ciphertext
from onshore.service.rootkey import KeyWrapper, UnwrapError
from onshore.storage.ports import KmsNotChanged, KmsStore

ENABLED, DISABLED, PENDING = "Enabled", "Disabled", "PendingDeletion"
AUTOMATIC, ON_DEMAND = "AUTOMATIC", "ON_DEMAND"
_ALIAS = re.compile(r"^alias/[a-zA-Z0-9/_-]{1,250}$")
DEFAULT_S3_ALIAS = "alias/aws/s3"
MAX_PLAINTEXT = 4096
DEFAULT_ROTATION_DAYS, MIN_ROTATION_DAYS, MAX_ROTATION_DAYS = 365, 90, 2560
#: On-demand rotations allowed per key (the KMS API reference's quota).
ON_DEMAND_LIMIT = 25
#: RotateKeyOnDemand is refused this close to a scheduled automatic rotation (ConflictException).
CONFLICT_WINDOW = timedelta(minutes=20)


class KmsError(Exception):
    """A KMS API error: ``kind`` is the AWS ``__type`` (e.g. ``NotFoundException``)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def utc_now() -> datetime:
    return datetime.now(UTC)


def material_context(key_id: str, version: int) -> bytes:
    """The root key's associated data for material ``version`` of a key: it binds the sealed
    material to its key and version, so a material row cannot be moved to another."""
    if version == 1:
        return f"onshore kms key\0{key_id}".encode()
    return f"onshore kms key\0{key_id}\0{version}".encode()


def key_material_id(key_id: str, version: int) -> str:
    """AWS's ``KeyMaterialId`` (64 hex digits) for a material: derived from the key id and the
    version only, so it names the material without saying anything about it."""
    return hashlib.sha256(f"onshore kms key material id\0{key_id}\0{version}".encode()).hexdigest()


class KmsService:
    """Blocking: call from worker threads."""

    def __init__(
        self,
        store: KmsStore,
        root: KeyWrapper,
        *,
        partition: str,
        region: str,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.root = root
        self.partition = partition
        self.region = region
        self.clock = clock

    # --- naming -------------------------------------------------------------------------------
    def arn(self, key: KmsKey) -> str:
        return f"arn:{self.partition}:kms:{self.region}:{key.account_id}:key/{key.key_id}"

    def resolve(self, account_id: str, key_ref: str, *, key_only: bool = False) -> KmsKey:
        """A key of ``account_id`` by id, ARN, alias name or alias ARN (``key_only``: by id or
        ARN only, as the rotation operations take); NotFoundException."""
        ref = key_ref.strip()
        if ":alias/" in ref:
            ref = "alias/" + ref.split(":alias/", 1)[1]
        elif ":key/" in ref:
            ref = ref.split(":key/", 1)[1]
        if ref.startswith("alias/"):
            if key_only:
                raise KmsError("NotFoundException", f"Invalid keyId {key_ref}")
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
            created=self.clock(),
            wrapped=self.root.wrap(material, context=material_context(key_id, 1)),
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
        key = replace(key, state=PENDING, deletion=self.clock() + timedelta(days=days))
        self.store.put_kms_key(key)
        return key

    def cancel_deletion(self, account_id: str, key_ref: str) -> KmsKey:
        key = self.resolve(account_id, key_ref)
        if key.state != PENDING:
            raise KmsError("KMSInvalidStateException", f"{self.arn(key)} is not pending deletion.")
        key = replace(key, state=DISABLED, deletion=None)
        self.store.put_kms_key(key)
        return key

    def delete_due(self, key_id: str) -> KmsKey:
        """Carry out a due deletion (the sweep): the key, its materials and aliases are erased in
        one fsynced transaction. KmsNotChanged if the key is not pending deletion and due now
        (cancelled, already deleted by another process, or not yet due)."""
        return self.store.delete_due_kms_key(key_id, self.clock())

    def create_alias(self, account_id: str, alias: str, target: str) -> None:
        if not _ALIAS.match(alias) or alias.startswith("alias/aws/"):
            raise KmsError("ValidationException", f"Alias {alias!r} is not a valid alias name.")
        key = self.resolve(account_id, target)
        now_us = int(self.clock().timestamp() * 1_000_000)
        if not self.store.add_kms_alias(account_id, alias, key.key_id, now_us):
            raise KmsError("AlreadyExistsException", f"An alias with the name {alias} exists")

    def list_aliases(self, account_id: str) -> list[tuple[str, str]]:
        return self.store.list_kms_aliases(account_id)

    def default_s3_key(self, account_id: str) -> KmsKey:
        """The account's ``alias/aws/s3`` key (SSE-KMS without a key id), created on first use."""
        target = self.store.get_kms_alias(account_id, DEFAULT_S3_ALIAS)
        if target is None:
            key = self.create_key(account_id, "Default key that protects my S3 objects")
            now_us = int(self.clock().timestamp() * 1_000_000)
            self.store.add_kms_alias(account_id, DEFAULT_S3_ALIAS, key.key_id, now_us)
            target = self.store.get_kms_alias(account_id, DEFAULT_S3_ALIAS)
        assert target is not None
        return self.resolve(account_id, target)

    # --- rotation -----------------------------------------------------------------------------
    def enable_rotation(
        self, account_id: str, key_ref: str, period_days: int | None = None
    ) -> KmsKey:
        """Turn automatic rotation on (the first one ``period_days`` from now), or change the
        period of a key that has it on (the next one is then ``period_days`` after the last
        rotation, or after rotation was enabled)."""
        if period_days is not None and not MIN_ROTATION_DAYS <= period_days <= MAX_ROTATION_DAYS:
            raise KmsError(
                "ValidationException",
                f"RotationPeriodInDays must be between {MIN_ROTATION_DAYS} and "
                f"{MAX_ROTATION_DAYS} days.",
            )
        key = self._usable(self.resolve(account_id, key_ref, key_only=True))
        period = period_days or DEFAULT_ROTATION_DAYS
        anchor = self.clock()
        if key.rotation_enabled and key.next_rotation and key.rotation_period_days:
            anchor = key.next_rotation - timedelta(days=key.rotation_period_days)
        key = replace(
            key,
            rotation_enabled=True,
            rotation_period_days=period,
            next_rotation=anchor + timedelta(days=period),
        )
        self._set_rotation(key)
        return key

    def disable_rotation(self, account_id: str, key_ref: str) -> KmsKey:
        key = self._usable(self.resolve(account_id, key_ref, key_only=True))
        key = replace(key, rotation_enabled=False, rotation_period_days=None, next_rotation=None)
        self._set_rotation(key)
        return key

    def rotation_status(self, account_id: str, key_ref: str) -> KmsKey:
        return self.resolve(account_id, key_ref, key_only=True)

    @staticmethod
    def rotation_enabled(key: KmsKey) -> bool:
        """What GetKeyRotationStatus reports: false while the key is pending deletion."""
        return key.rotation_enabled and key.state != PENDING

    def rotate_on_demand(self, account_id: str, key_ref: str) -> KmsKey:
        """A new current key material now (RotateKeyOnDemand); the schedule is unchanged."""
        key = self._usable(self.resolve(account_id, key_ref, key_only=True))
        done = sum(
            1 for m in self.store.list_kms_materials(key.key_id) if m.rotation_type == ON_DEMAND
        )
        if done >= ON_DEMAND_LIMIT:
            raise KmsError(
                "LimitExceededException",
                f"The on-demand rotations limit has been reached for the given keyId. No more "
                f"on-demand rotations can be performed for this key: {self.arn(key)}",
            )
        upcoming = key.next_rotation if key.rotation_enabled else None
        if upcoming is not None and upcoming - self.clock() <= CONFLICT_WINDOW:
            raise KmsError(
                "ConflictException",
                f"An automatic rotation of {self.arn(key)} is scheduled to begin within "
                "the next 20 minutes.",
            )
        try:
            self._rotate(key, ON_DEMAND, None)
        except KmsNotChanged:
            raise KmsError(
                "ConflictException", f"{self.arn(key)} was changed or rotated meanwhile."
            ) from None
        return key

    def rotate_due(self, key: KmsKey) -> KmsKeyMaterial:
        """Carry out a due automatic rotation (the sweep) and schedule the next one a period
        later (from now, if the key was rotated too late for its schedule: a key that was
        disabled on its date). KmsNotChanged if another process rotated it first."""
        now = self.clock()
        period = timedelta(days=key.rotation_period_days or DEFAULT_ROTATION_DAYS)
        following = (key.next_rotation or now) + period
        if following <= now:
            following = now + period
        return self._rotate(key, AUTOMATIC, following)

    def rotations(self, account_id: str, key_ref: str) -> tuple[KmsKey, list[KmsKeyMaterial]]:
        """The key and the materials its rotations made, oldest first."""
        key = self.resolve(account_id, key_ref, key_only=True)
        return key, self.store.list_kms_materials(key.key_id)

    # --- cryptography -------------------------------------------------------------------------
    def encrypt(
        self, key: KmsKey, plaintext: bytes, context: Mapping[str, str] | None = None
    ) -> bytes:
        if not 1 <= len(plaintext) <= MAX_PLAINTEXT:
            raise KmsError("ValidationException", "Plaintext must be 1 to 4096 bytes.")
        key = self._usable(key)
        material = self._material(key, key.material_version)
        if material is None:  # the row names a version it does not have: never written so
            raise KmsError("KMSInternalException", "The key material is unavailable.")
        return ciphertext.seal(material, key.key_id, key.material_version, plaintext, context)

    def decrypt(
        self,
        account_id: str,
        blob: bytes,
        context: Mapping[str, str] | None = None,
        key_ref: str | None = None,
    ) -> tuple[KmsKey, bytes]:
        try:
            parsed = ciphertext.parse(blob)
        except ciphertext.MalformedCiphertext:
            raise KmsError("InvalidCiphertextException", "The ciphertext is invalid.") from None
        key = self.resolve(account_id, parsed.key_id)
        if key_ref is not None and self.resolve(account_id, key_ref).key_id != key.key_id:
            raise KmsError("IncorrectKeyException", "The key ID in the request does not match.")
        key = self._usable(key)
        material = None
        if parsed.material_version <= key.material_version:
            material = self._material(key, parsed.material_version)
        if material is None:
            raise KmsError("InvalidCiphertextException", "The ciphertext is invalid.")
        try:
            return key, parsed.open(material, context)
        except InvalidTag:
            raise KmsError("InvalidCiphertextException", "The ciphertext is invalid.") from None

    def generate_data_key(
        self, key: KmsKey, size: int = 32, context: Mapping[str, str] | None = None
    ) -> tuple[bytes, bytes]:
        """(plaintext data key, its ciphertext blob)."""
        if not 1 <= size <= 1024:
            raise KmsError("ValidationException", "NumberOfBytes must be between 1 and 1024.")
        plain = secrets.token_bytes(size)
        return plain, self.encrypt(key, plain, context)

    def usable(self, key: KmsKey) -> KmsKey:
        """``key`` if its state lets it encrypt and decrypt now (what every cryptographic
        operation checks first): DisabledException or KMSInvalidStateException otherwise."""
        return self._usable(key)

    # --- internals ----------------------------------------------------------------------------
    @staticmethod
    def root_context(key_id: str) -> bytes:
        """The root key's associated data for a key's first material (``KmsKey.wrapped``)."""
        return material_context(key_id, 1)

    def _usable(self, key: KmsKey) -> KmsKey:
        if key.state == DISABLED:
            raise KmsError("DisabledException", f"{self.arn(key)} is disabled.")
        if key.state == PENDING:
            raise KmsError("KMSInvalidStateException", f"{self.arn(key)} is pending deletion.")
        return key

    def _set_rotation(self, key: KmsKey) -> None:
        try:
            self.store.set_kms_rotation(key)
        except KmsNotChanged:  # deleted between the read and the write
            raise KmsError("NotFoundException", f"Key '{self.arn(key)}' does not exist") from None

    def _rotate(
        self, key: KmsKey, rotation_type: str, next_rotation: datetime | None
    ) -> KmsKeyMaterial:
        version = key.material_version + 1
        material = KmsKeyMaterial(
            key_id=key.key_id,
            version=version,
            wrapped=self.root.wrap(
                secrets.token_bytes(32), context=material_context(key.key_id, version)
            ),
            root_fingerprint=self.root.fingerprint,
            rotated=self.clock(),
            rotation_type=rotation_type,
        )
        self.store.rotate_kms_key(material, next_rotation)
        return material

    def _material(self, key: KmsKey, version: int) -> bytes | None:
        """Material ``version`` of ``key`` unsealed; None if the key has no such version."""
        if version == 1:
            wrapped = key.wrapped
        else:
            stored = self.store.get_kms_material(key.key_id, version)
            if stored is None:
                return None
            wrapped = stored.wrapped
        try:
            return self.root.unwrap(wrapped, context=material_context(key.key_id, version))
        except UnwrapError:
            raise KmsError("KMSInternalException", "The key material is unavailable.") from None
