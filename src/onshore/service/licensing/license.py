"""The license document: what the licensor grants one deployment, and for how long.

A license file is a signed envelope (:mod:`.signing`) of format ``onshore-license/1`` whose
payload has exactly these fields — a missing or unknown field is an error, so a typo in a spec
never silently grants or drops a term:

================== =========================================================================
license_id         the licensor's name for this grant (shown in errors and reports)
licensor           the technology owner
operator           the operator's legal name
partition          the deployment's partition (must equal the ``partition`` setting)
jurisdiction       the legal area served (``CN``, ``FR``…)
regions            the regions the deployment may serve (``region`` must be one of them)
deployment_key     the deployment's public key, from ``onshore license request``
entitlements       ``features`` (list), ``max_stored_bytes`` and ``max_tenants`` (null: none)
not_before         RFC 3339 UTC instants bounding the validity window
not_after
grace_days         days after ``not_after`` during which everything still works, with warnings
issued_at          when the licensor signed it
max_release        the newest onshore release covered (``0.4`` covers 0.4.x and older)
================== =========================================================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from onshore.service.licensing import signing

FORMAT = "onshore-license/1"

FIELDS = (
    "license_id",
    "licensor",
    "operator",
    "partition",
    "jurisdiction",
    "regions",
    "deployment_key",
    "entitlements",
    "not_before",
    "not_after",
    "grace_days",
    "issued_at",
    "max_release",
)
ENTITLEMENT_FIELDS = ("features", "max_stored_bytes", "max_tenants")


class LicenseProblem(Exception):
    """A license is malformed, not trusted, or not for this deployment; the message says why."""


@dataclass(frozen=True, slots=True)
class Entitlements:
    features: tuple[str, ...] = ()
    max_stored_bytes: int | None = None
    max_tenants: int | None = None


@dataclass(frozen=True, slots=True)
class License:
    license_id: str
    licensor: str
    operator: str
    partition: str
    jurisdiction: str
    regions: tuple[str, ...]
    deployment_key: str
    entitlements: Entitlements
    not_before: datetime
    not_after: datetime
    grace_days: int
    issued_at: datetime
    max_release: str

    def payload(self) -> dict[str, object]:
        return {
            "license_id": self.license_id,
            "licensor": self.licensor,
            "operator": self.operator,
            "partition": self.partition,
            "jurisdiction": self.jurisdiction,
            "regions": list(self.regions),
            "deployment_key": self.deployment_key,
            "entitlements": {
                "features": list(self.entitlements.features),
                "max_stored_bytes": self.entitlements.max_stored_bytes,
                "max_tenants": self.entitlements.max_tenants,
            },
            "not_before": format_time(self.not_before),
            "not_after": format_time(self.not_after),
            "grace_days": self.grace_days,
            "issued_at": format_time(self.issued_at),
            "max_release": self.max_release,
        }


@dataclass(frozen=True, slots=True)
class SignedLicense:
    """A license whose signature verified, with its file text (kept verbatim)."""

    license: License
    text: str
    signer_id: str


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object, name: str) -> datetime:
    if not isinstance(value, str):
        raise LicenseProblem(f"{name} must be an RFC 3339 time string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise LicenseProblem(f"{name} is not an RFC 3339 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise LicenseProblem(f"{name} must carry a time zone (use Z for UTC): {value!r}")
    return parsed.astimezone(UTC)


def _text(data: Mapping[str, object], name: str) -> str:
    value = data[name]
    if not isinstance(value, str) or not value.strip():
        raise LicenseProblem(f"{name} must be a non-empty string")
    return value


def _texts(data: Mapping[str, object], name: str, *, empty_ok: bool) -> tuple[str, ...]:
    value = data[name]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise LicenseProblem(f"{name} must be a list of strings")
    if not value and not empty_ok:
        raise LicenseProblem(f"{name} must not be empty")
    return tuple(value)


def _limit(data: Mapping[str, object], name: str) -> int | None:
    value = data[name]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LicenseProblem(f"entitlements.{name} must be a non-negative integer or null")
    return value


def _exact_fields(data: Mapping[str, object], expected: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(data) - set(expected))
    if unknown:
        raise LicenseProblem(f"unknown {where} field(s): {', '.join(unknown)}")
    missing = [f for f in expected if f not in data]
    if missing:
        raise LicenseProblem(f"missing {where} field(s): {', '.join(missing)}")


def from_payload(data: Mapping[str, object]) -> License:
    """Strictly parse a license payload (see the module docstring for the fields)."""
    _exact_fields(data, FIELDS, "license")
    ents = data["entitlements"]
    if not isinstance(ents, dict):
        raise LicenseProblem("entitlements must be an object")
    _exact_fields(ents, ENTITLEMENT_FIELDS, "entitlements")
    grace = data["grace_days"]
    if isinstance(grace, bool) or not isinstance(grace, int) or not 0 <= grace <= 3650:
        raise LicenseProblem("grace_days must be an integer between 0 and 3650")
    release = _text(data, "max_release")
    if not _RELEASE.match(release):
        raise LicenseProblem(f"max_release is not a release number: {release!r}")
    deployment_key = _text(data, "deployment_key")
    try:
        signing.parse_public_key(deployment_key)
    except signing.SignatureProblem as exc:
        raise LicenseProblem(f"deployment_key: {exc}") from None
    parsed = License(
        license_id=_text(data, "license_id"),
        licensor=_text(data, "licensor"),
        operator=_text(data, "operator"),
        partition=_text(data, "partition"),
        jurisdiction=_text(data, "jurisdiction"),
        regions=_texts(data, "regions", empty_ok=False),
        deployment_key=deployment_key,
        entitlements=Entitlements(
            features=_texts(ents, "features", empty_ok=True),
            max_stored_bytes=_limit(ents, "max_stored_bytes"),
            max_tenants=_limit(ents, "max_tenants"),
        ),
        not_before=parse_time(data["not_before"], "not_before"),
        not_after=parse_time(data["not_after"], "not_after"),
        grace_days=grace,
        issued_at=parse_time(data["issued_at"], "issued_at"),
        max_release=release,
    )
    if parsed.not_after <= parsed.not_before:
        raise LicenseProblem("not_after must be later than not_before")
    return parsed


def issue(lic: License, key: Ed25519PrivateKey) -> str:
    """The license file text for ``lic``, signed by the licensor key."""
    from_payload(lic.payload())  # the same checks a deployment will apply
    return signing.canonical(signing.seal(FORMAT, lic.payload(), key)).decode() + "\n"


def read(text: str | bytes, trusted: tuple[Ed25519PublicKey, ...]) -> SignedLicense:
    """Verify a license file's signature against the pinned licensor keys and parse it."""
    try:
        opened = signing.open_envelope(text, FORMAT, trusted)
    except signing.SignatureProblem as exc:
        raise LicenseProblem(f"license signature: {exc}") from None
    lic = from_payload(opened.payload)
    body = text.decode() if isinstance(text, bytes) else text
    return SignedLicense(lic, body, signing.key_id(opened.signer))


def read_unverified(text: str | bytes) -> License:
    """Parse a license file without checking who signed it (``onshore licensor inspect``)."""
    try:
        payload, _ = signing.parse_envelope(text, FORMAT)
    except signing.SignatureProblem as exc:
        raise LicenseProblem(str(exc)) from None
    return from_payload(payload)


@dataclass(frozen=True, slots=True)
class Deployment:
    """What a license must match: this deployment's identity and build."""

    partition: str
    region: str
    public_key: str
    release: str


def check_deployment(lic: License, deployment: Deployment) -> None:
    """Refuse a license issued for another deployment, partition, region or release."""
    if lic.deployment_key != deployment.public_key:
        raise LicenseProblem(
            f"license {lic.license_id} was issued for another deployment (its deployment key "
            "is not this deployment's: run `onshore license request` and ask the licensor for "
            "a license for that key)"
        )
    if lic.partition != deployment.partition:
        raise LicenseProblem(
            f"license {lic.license_id} is for partition {lic.partition!r}, "
            f"but this deployment is partition {deployment.partition!r}"
        )
    if deployment.region not in lic.regions:
        raise LicenseProblem(
            f"license {lic.license_id} does not cover region {deployment.region!r} "
            f"(it covers {', '.join(lic.regions)})"
        )
    if release_tuple(deployment.release) > release_tuple(lic.max_release, pad=True):
        raise LicenseProblem(
            f"license {lic.license_id} covers releases up to {lic.max_release}, "
            f"but this is onshore {deployment.release}"
        )


_RELEASE = re.compile(r"^\d+(\.\d+){0,3}$")


def release_tuple(version: str, *, pad: bool = False) -> tuple[int, ...]:
    """``0.4.2`` → (0, 4, 2). With ``pad``, a shorter number covers every release below it:
    ``0.4`` → (0, 4, ∞, ∞)."""
    parts: list[int] = []
    for piece in version.split(".")[:4]:
        digits = re.match(r"\d+", piece)
        parts.append(int(digits.group()) if digits else 0)
    filler = 2**31 if pad else 0
    return tuple(parts + [filler] * (4 - len(parts)))
