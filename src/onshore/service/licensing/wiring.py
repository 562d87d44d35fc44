"""Building the licensing monitor from the configuration (used by the app and the CLI)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from onshore.config import Config
from onshore.service.keysource import root_key_for
from onshore.service.licensing import signing
from onshore.service.licensing.monitor import Licensing, LicensingSettings, utc_now
from onshore.service.rootkey import KeyWrapper
from onshore.storage.sqlite.licensing import SqliteLicensingStore
from onshore.storage.sqlite.store import SqliteMetadataStore


def settings_for(config: Config) -> LicensingSettings | None:
    """The licensing settings, or None when no licensor key is pinned (licensing inactive).
    Raises ValueError for a malformed key, so the server refuses to start with it."""
    try:
        trusted = signing.parse_public_keys(config.licensor_public_keys)
    except signing.SignatureProblem as exc:
        raise ValueError(f"licensor_public_keys: {exc}") from None
    if not trusted:
        return None
    return LicensingSettings(
        trusted=trusted,
        required=config.license_required,
        partition=config.partition,
        region=config.region,
        refresh_seconds=config.license_refresh_seconds,
    )


def licensing_for(
    config: Config,
    meta: SqliteMetadataStore,
    root: KeyWrapper,
    *,
    clock: Callable[[], datetime] = utc_now,
) -> Licensing | None:
    settings = settings_for(config)
    if settings is None:
        return None
    return Licensing(SqliteLicensingStore(meta), root, settings, clock=clock)


def deployment_licensing(
    config: Config, meta: SqliteMetadataStore, *, clock: Callable[[], datetime] = utc_now
) -> Licensing:
    """Like :func:`licensing_for` but also without pinned keys (``onshore license request``
    works before the licensor's key is known)."""
    settings = settings_for(config) or LicensingSettings(
        trusted=(), required=False, partition=config.partition, region=config.region
    )
    return Licensing(SqliteLicensingStore(meta), root_key_for(config), settings, clock=clock)
