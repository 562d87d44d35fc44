"""Which root key a deployment uses: the one place that reads ``root_key_service``.

* ``local`` (the default): :func:`onshore.service.rootkey.load_root_key`, a key held in this
  process, from ``ONSHORE_ROOT_KEY``, ``ONSHORE_ROOT_KEY_FILE`` or ``<data-dir>/root.key``
  (generated on first start).
* ``transit``: :class:`onshore.service.transit.TransitRootKey`, a key that never leaves an
  OpenBao or Vault Transit engine; checked (reachable, token accepted, key usable) before
  anything starts. A deployment that still has a local root key (``root.key`` in the data
  directory, or one injected through the environment) is refused: the secrets that key sealed
  would not open. ``onshore kms rotate-root`` re-wraps them under the Transit key and then
  deletes ``root.key``.

The server, the offline commands (``onshore operator``, ``license``, ``fsck``, ``kms
rotate-root``) and the licensing wiring all get their wrapper from :func:`root_key_for`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from onshore.config import Config
from onshore.service.rootkey import (
    FILENAME,
    KeyWrapper,
    LocalRootKey,
    RootKeyError,
    _decode,
    _read_key_file,
    load_root_key,
)
from onshore.service.transit import TransitRootKey, TransitSettings

SERVICES = ("local", "transit")
_ENV_KEYS = ("ONSHORE_ROOT_KEY", "ONSHORE_ROOT_KEY_FILE")
_MOUNT = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")
_KEY = re.compile(r"[A-Za-z0-9_.-]+")


def root_key_for(config: Config, environ: Mapping[str, str] | None = None) -> KeyWrapper:
    """The deployment's root key as configured (see the module docstring). Blocking.
    RootKeyError, with a one-line message, when it cannot be used."""
    if service_of(config) == "local":
        return load_root_key(config.data_dir, None if environ is None else dict(environ))
    check_no_local_key(config.data_dir, environ)
    return transit_for(config)


def service_of(config: Config) -> str:
    if config.root_key_service not in SERVICES:
        raise RootKeyError(
            f"root_key_service must be one of {', '.join(SERVICES)}, got "
            f"{config.root_key_service!r}"
        )
    return config.root_key_service


def has_root_key(config: Config, environ: Mapping[str, str] | None = None) -> bool:
    """Whether the deployment has a root key already (so offline tools never create one)."""
    env = os.environ if environ is None else environ
    if service_of(config) == "transit":
        return True
    return any(env.get(name) for name in _ENV_KEYS) or (config.data_dir / FILENAME).exists()


def transit_for(config: Config) -> TransitRootKey:
    """The configured Transit key, checked at the service."""
    return TransitRootKey.connect(transit_settings(config))


def transit_settings(config: Config) -> TransitSettings:
    if not config.transit_address:
        raise RootKeyError("root_key_service is transit but transit_address is not set")
    if not config.transit_token and not config.transit_token_file:
        raise RootKeyError(
            "root_key_service is transit but no token is set: set ONSHORE_TRANSIT_TOKEN or "
            "transit_token_file"
        )
    mount = config.transit_mount
    if not _MOUNT.fullmatch(mount) or {".", ".."} & set(mount.split("/")):
        raise RootKeyError(f"transit_mount is not a mount path: {config.transit_mount!r}")
    if not _KEY.fullmatch(config.transit_key) or config.transit_key in (".", ".."):
        raise RootKeyError(f"transit_key is not a Transit key name: {config.transit_key!r}")
    if not config.transit_timeout > 0:
        raise RootKeyError(f"transit_timeout must be positive, got {config.transit_timeout}")
    if config.transit_cache_seconds < 0:
        raise RootKeyError("transit_cache_seconds must be 0 or more")
    return TransitSettings(
        address=config.transit_address,
        mount=config.transit_mount,
        key=config.transit_key,
        token=config.transit_token,
        token_file=config.transit_token_file,
        namespace=config.transit_namespace,
        ca_file=config.transit_ca_file,
        timeout=config.transit_timeout,
        cache_seconds=config.transit_cache_seconds,
    )


def local_key(data_dir: Path, environ: Mapping[str, str] | None = None) -> LocalRootKey | None:
    """The local root key a deployment moving to a key service still has, if any: from the
    environment, else ``<data-dir>/root.key``. Never creates one."""
    env = os.environ if environ is None else environ
    if value := env.get("ONSHORE_ROOT_KEY"):
        return LocalRootKey(_decode(value, "ONSHORE_ROOT_KEY"))
    if file := env.get("ONSHORE_ROOT_KEY_FILE"):
        return LocalRootKey(_read_key_file(Path(file)))
    if (data_dir / FILENAME).exists():
        return LocalRootKey(_read_key_file(data_dir / FILENAME))
    return None


def check_no_local_key(data_dir: Path, environ: Mapping[str, str] | None = None) -> None:
    """Refuse a Transit deployment that still has a local root key (module docstring)."""
    env = os.environ if environ is None else environ
    for name in _ENV_KEYS:
        if env.get(name):
            raise RootKeyError(
                f"root_key_service is transit but {name} is set: run `onshore kms rotate-root` "
                f"to re-wrap what that key sealed under the Transit key, then unset {name}"
            )
    if (data_dir / FILENAME).exists():
        raise RootKeyError(
            f"root_key_service is transit but {data_dir / FILENAME} exists: run `onshore kms "
            "rotate-root` to re-wrap what it sealed under the Transit key (it deletes root.key "
            "when done)"
        )
