"""Retention: how long audit records are kept.

Regulators ask for at least six months of access records (China's Cybersecurity Law art. 21;
SecNumCloud 12.6–12.9), so ``audit_retention_days`` defaults to 180 and a shorter setting is
refused unless ``audit_retention_override`` says it is deliberate. Nothing in onshore deletes an
audit record: there is no API, CLI command or maintenance task that does. (Pruning records older
than retention is a possible later maintenance task; see ``docs/audit.md``.)
"""

from __future__ import annotations

from onshore.config import Config

__all__ = ["MINIMUM_DAYS", "check_retention"]

MINIMUM_DAYS = 180


def check_retention(config: Config) -> None:
    """Raise ``ValueError`` for a setting the rules above refuse."""
    days = config.audit_retention_days
    if days < 1:
        raise ValueError(f"audit_retention_days must be positive, got {days}")
    if days < MINIMUM_DAYS and not config.audit_retention_override:
        raise ValueError(
            f"audit_retention_days={days} is below the {MINIMUM_DAYS}-day minimum; "
            "set audit_retention_override to allow it"
        )
    if config.audit_hash not in ("sha256", "sm3"):
        raise ValueError(f"audit_hash must be sha256 or sm3, got {config.audit_hash!r}")
