"""Root key rotation (``onshore kms rotate-root``): re-wrap tenant keys, never object data.

Tenant keys, KMS key material and a few other secrets (IAM and operator secret keys, the audit
and licensing signing keys: :mod:`onshore.storage.sqlite.sealed`) are sealed directly by the
root key; data keys are sealed by tenant or KMS keys, so a new root key costs one re-wrap per
such secret, whatever the amount of data. The steps, each durable before the next, make an
interrupted rotation resumable (run the command again):

1. ``<data-dir>/root.key.next`` is created (mode 0600, fsynced) with a new random key, unless
   an interrupted rotation left one: then that one is reused.
2. Every tenant key (then every KMS key and each of its key materials, then every other sealed
   secret) still sealed by the current root key is unsealed and sealed again by the next one,
   one row at a time, so a row is never half-done and a rerun skips rows already done.
3. ``root.key.next`` is renamed over ``root.key`` (atomic), and the directory fsynced.

While ``root.key.next`` exists the server refuses to start (some tenant keys are sealed by each
root key), with a message saying to run the rotation again. Only the embedded default (a root
key file in the data directory) can be rotated this way; a key injected through
``ONSHORE_ROOT_KEY``/``ONSHORE_ROOT_KEY_FILE`` is rotated by the operator's secret manager.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from onshore.service import faults
from onshore.service.audit.integrity import KEY_CONTEXT
from onshore.service.kms.keys import KmsService, material_context
from onshore.service.kms.tenant_keys import root_context
from onshore.service.licensing.deployment import WRAP_CONTEXT
from onshore.service.rootkey import (
    FILENAME,
    LocalRootKey,
    RootKeyError,
    _create_key_file,
    _read_key_file,
    load_root_key,
    sealed_by,
)
from onshore.storage.ports import KeyStore, KmsStore
from onshore.storage.sqlite.sealed import SEALED_COLUMNS, reseal_column
from onshore.storage.sqlite.store import SqliteMetadataStore

NEXT_FILENAME = FILENAME + ".next"


class RotationPending(ValueError):
    """A root key rotation was interrupted; the message says how to finish it."""


def check_no_pending_rotation(data_dir: Path) -> None:
    if (data_dir / NEXT_FILENAME).exists():
        raise RotationPending(
            f"a root key rotation was interrupted ({data_dir / NEXT_FILENAME} exists): run "
            "`onshore kms rotate-root` again to finish it before starting the server"
        )


@dataclass(frozen=True, slots=True)
class RotationResult:
    old_fingerprint: str
    new_fingerprint: str
    rewrapped: int
    already_done: int


class RotationStore(KeyStore, KmsStore, Protocol):
    """Where the keys the root key seals are kept."""


def rotate_root(
    data_dir: Path,
    store: RotationStore,
    *,
    environ: dict[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> RotationResult:
    """Rotate the data directory's root key (see the module docstring). Blocking."""
    env = dict(os.environ if environ is None else environ)
    if env.get("ONSHORE_ROOT_KEY") or env.get("ONSHORE_ROOT_KEY_FILE"):
        raise RootKeyError(
            "the root key comes from ONSHORE_ROOT_KEY/ONSHORE_ROOT_KEY_FILE: rotate it in your "
            "secret manager; `onshore kms rotate-root` rotates the data directory's key file"
        )
    if not (data_dir / FILENAME).exists():
        raise RootKeyError(f"no root key file in {data_dir}")
    old = load_root_key(data_dir, env)
    new = _next_key(data_dir)
    rewrapped = done = 0
    for key in store.list_tenant_keys():
        if key.root_fingerprint == new.fingerprint:
            done += 1
            continue
        context = root_context(key.account_id, key.cipher)
        secret = old.unwrap(key.wrapped, context=context)
        sealed = replace(
            key, wrapped=new.wrap(secret, context=context), root_fingerprint=new.fingerprint
        )
        if store.replace_tenant_key(sealed, expected_fingerprint=old.fingerprint):
            rewrapped += 1
            faults.point("rotate_root.rewrapped_one")
        if progress is not None:
            progress(f"{rewrapped + done} tenant keys sealed by the new root key")
    for kms_key in store.all_kms_keys():
        if kms_key.root_fingerprint == new.fingerprint:
            done += 1
            continue
        context = KmsService.root_context(kms_key.key_id)
        secret = old.unwrap(kms_key.wrapped, context=context)
        store.put_kms_key(
            replace(
                kms_key,
                wrapped=new.wrap(secret, context=context),
                root_fingerprint=new.fingerprint,
            )
        )
        rewrapped += 1
    for material in store.all_kms_materials():  # the key materials rotations added
        if material.root_fingerprint == new.fingerprint:
            done += 1
            continue
        context = material_context(material.key_id, material.version)
        secret = old.unwrap(material.wrapped, context=context)
        resealed = replace(
            material, wrapped=new.wrap(secret, context=context), root_fingerprint=new.fingerprint
        )
        if store.replace_kms_material(resealed, expected_fingerprint=old.fingerprint):
            rewrapped += 1
    if isinstance(store, SqliteMetadataStore):
        rewrapped += _reseal_other_secrets(store, old, new)
    faults.point("rotate_root.before_switch")
    os.replace(data_dir / NEXT_FILENAME, data_dir / FILENAME)
    _fsync_dir(data_dir)
    return RotationResult(old.fingerprint, new.fingerprint, rewrapped, done)


def _reseal_other_secrets(meta: SqliteMetadataStore, old: LocalRootKey, new: LocalRootKey) -> int:
    """Re-seal the secrets of :data:`~onshore.storage.sqlite.sealed.SEALED_COLUMNS`. Each keeps
    its context (the associated data it was sealed with), which a rotation never changes."""
    contexts: dict[str, Callable[[str], bytes]] = {
        "access_keys": lambda row_id: row_id.encode(),
        "operators": lambda row_id: row_id.encode(),
        "audit_keys": lambda row_id: KEY_CONTEXT + b"/" + row_id.encode("ascii"),
        "license_deployment": lambda _row_id: WRAP_CONTEXT,
        "support_access": lambda row_id: row_id.encode(),
    }
    changed = 0
    for table, id_column, blob_column in SEALED_COLUMNS:
        context = contexts[table]

        def reseal(
            row_id: str, blob: bytes, context: Callable[[str], bytes] = context
        ) -> bytes | None:
            if sealed_by(blob) == new.fingerprint:
                return None
            secret = old.unwrap(blob, context=context(row_id))
            return new.wrap(secret, context=context(row_id))

        changed += reseal_column(meta, table, id_column, blob_column, reseal)
    return changed


def _next_key(data_dir: Path) -> LocalRootKey:
    """The next root key: the one an interrupted rotation created, or a new one."""
    path = data_dir / NEXT_FILENAME
    if path.exists():
        return LocalRootKey(_read_key_file(path))
    return LocalRootKey(_create_key_file(path))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
