"""Helpers shared by the licensing tests: a settable clock, a licensor, a deployment."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onshore.service.licensing import license as lic_mod
from onshore.service.licensing import signing
from onshore.service.licensing.monitor import Licensing, LicensingSettings
from onshore.service.rootkey import LocalRootKey
from onshore.storage.sqlite import SqliteMetadataStore
from onshore.storage.sqlite.licensing import SqliteLicensingStore

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Licensor:
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def public_text(self) -> str:
        return signing.public_key_text(self.key.public_key())

    def license(self, deployment_key: str, **changes: object) -> lic_mod.License:
        base = lic_mod.License(
            license_id="LIC-2026-001",
            licensor="Technology Owner Ltd",
            operator="Operator SA",
            partition="onshore-fr",
            jurisdiction="FR",
            regions=("fr-central-1",),
            deployment_key=deployment_key,
            entitlements=lic_mod.Entitlements(("s3",), None, None),
            not_before=T0 - timedelta(days=1),
            not_after=T0 + timedelta(days=30),
            grace_days=10,
            issued_at=T0 - timedelta(days=1),
            max_release="0.1",
        )
        return replace(base, **changes)  # type: ignore[arg-type]

    def issue(self, deployment_key: str, **changes: object) -> str:
        return lic_mod.issue(self.license(deployment_key, **changes), self.key)


class Deployment:
    """A deployment's database, root key and licensing monitor, with a settable clock."""

    def __init__(self, tmp: Path, licensor: Licensor, *, required: bool = True) -> None:
        self.meta = SqliteMetadataStore(tmp / "metadata.db")
        self.root = LocalRootKey(b"k" * 32)
        self.clock = Clock()
        self.licensor = licensor
        self.settings = LicensingSettings(
            trusted=(licensor.key.public_key(),),
            required=required,
            partition="onshore-fr",
            region="fr-central-1",
        )
        self.licensing = Licensing(
            SqliteLicensingStore(self.meta), self.root, self.settings, clock=self.clock
        )

    @property
    def public_key(self) -> str:
        return self.licensing.key.public_text

    def issue(self, **changes: object) -> str:
        return self.licensor.issue(self.public_key, **changes)

    def close(self) -> None:
        self.meta.close()
