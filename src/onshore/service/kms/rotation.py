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

With a key service (``root_key_service = "transit"``) the *target* is the service's key, and
step 1 and 3 change: every secret not sealed by the key's latest version is re-wrapped under it
(a secret sealed by the local root key, when moving a deployment from ``local`` to ``transit``,
or by an older version of the Transit key after it was rotated at the service), then
``root.key``, if there was one, is deleted. Until then the server refuses to start (a Transit
deployment must not still have a local key); secrets under older Transit versions open fine
meanwhile, so that rotation needs no marker.
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
    KeyWrapper,
    LocalRootKey,
    RootKeyError,
    UnwrapError,
    _create_key_file,
    _read_key_file,
    is_local,
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
    target: KeyWrapper | None = None,
    previous: LocalRootKey | None = None,
) -> RotationResult:
    """Rotate the root key (see the module docstring). Blocking.

    Without ``target``: the data directory's key file is replaced by a new key. With
    ``target`` (a key service's key): everything is re-wrapped under it; ``previous`` is the
    local root key secrets may still be sealed by (when moving from ``local``)."""
    if target is not None:
        return _rotate_to(target, previous, data_dir, store, progress)
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
    rewrapped, done, _ = _rewrap_all(store, old, new, progress)
    faults.point("rotate_root.before_switch")
    os.replace(data_dir / NEXT_FILENAME, data_dir / FILENAME)
    _fsync_dir(data_dir)
    return RotationResult(old.fingerprint, new.fingerprint, rewrapped, done)


def _rotate_to(
    target: KeyWrapper,
    previous: LocalRootKey | None,
    data_dir: Path,
    store: RotationStore,
    progress: Callable[[str], None] | None,
) -> RotationResult:
    if (data_dir / NEXT_FILENAME).exists():
        raise RotationPending(
            f"a rotation of the local root key was interrupted ({data_dir / NEXT_FILENAME} "
            "exists): finish it with root_key_service = local first"
        )
    rewrapped, done, replaced = _rewrap_all(store, _Either(previous, target), target, progress)
    faults.point("rotate_root.before_switch")
    if (data_dir / FILENAME).exists():
        (data_dir / FILENAME).unlink()  # nothing is sealed by it any more
        _fsync_dir(data_dir)
    old = ",".join(sorted(replaced)) or target.fingerprint
    return RotationResult(old, target.fingerprint, rewrapped, done)


class _Either:
    """Unwraps what a local root key or a key service sealed (each blob says which)."""

    def __init__(self, local: LocalRootKey | None, service: KeyWrapper) -> None:
        self._local = local
        self._service = service

    def unwrap(self, blob: bytes, *, context: bytes) -> bytes:
        if not is_local(blob):
            return self._service.unwrap(blob, context=context)
        if self._local is None:
            raise UnwrapError(
                f"a secret is sealed by the local root key {sealed_by(blob)}, but there is none "
                "(no root.key in the data directory, no ONSHORE_ROOT_KEY/ONSHORE_ROOT_KEY_FILE)"
            )
        return self._local.unwrap(blob, context=context)


class _Unwrapper(Protocol):
    def unwrap(self, blob: bytes, *, context: bytes) -> bytes: ...


def _rewrap_all(
    store: RotationStore,
    old: _Unwrapper,
    new: KeyWrapper,
    progress: Callable[[str], None] | None,
) -> tuple[int, int, set[str]]:
    """Re-wrap every secret not sealed by ``new`` yet: (re-wrapped, already done, the
    fingerprints replaced)."""
    rewrapped = done = 0
    replaced: set[str] = set()

    def reseal(blob: bytes, context: bytes) -> bytes:
        return new.wrap(old.unwrap(blob, context=context), context=context)

    for key in store.list_tenant_keys():
        if key.root_fingerprint == new.fingerprint:
            done += 1
            continue
        wrapped = reseal(key.wrapped, root_context(key.account_id, key.cipher))
        sealed = replace(key, wrapped=wrapped, root_fingerprint=sealed_by(wrapped))
        if store.replace_tenant_key(sealed, expected_fingerprint=key.root_fingerprint):
            rewrapped += 1
            replaced.add(key.root_fingerprint)
            faults.point("rotate_root.rewrapped_one")
        if progress is not None:
            progress(f"{rewrapped + done} tenant keys sealed by the new root key")
    for kms_key in store.all_kms_keys():
        if kms_key.root_fingerprint == new.fingerprint:
            done += 1
            continue
        wrapped = reseal(kms_key.wrapped, KmsService.root_context(kms_key.key_id))
        store.put_kms_key(replace(kms_key, wrapped=wrapped, root_fingerprint=sealed_by(wrapped)))
        rewrapped += 1
        replaced.add(kms_key.root_fingerprint)
    for material in store.all_kms_materials():  # the key materials rotations added
        if material.root_fingerprint == new.fingerprint:
            done += 1
            continue
        wrapped = reseal(material.wrapped, material_context(material.key_id, material.version))
        resealed = replace(material, wrapped=wrapped, root_fingerprint=sealed_by(wrapped))
        if store.replace_kms_material(resealed, expected_fingerprint=material.root_fingerprint):
            rewrapped += 1
            replaced.add(material.root_fingerprint)
    if isinstance(store, SqliteMetadataStore):
        rewrapped += _reseal_other_secrets(store, old, new, replaced)
    return rewrapped, done, replaced


def _reseal_other_secrets(
    meta: SqliteMetadataStore, old: _Unwrapper, new: KeyWrapper, replaced: set[str]
) -> int:
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
            replaced.add(sealed_by(blob))
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
