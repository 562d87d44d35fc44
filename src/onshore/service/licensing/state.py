"""The license state machine, as a pure function of (license, time, clock check, usage).

::

    INACTIVE      no licensor key pinned: licensing is off, onshore runs unrestricted
    UNLICENSED    keys pinned but no valid license installed (writes refused when
                  ``license_required``, which is the default)
    PENDING       the installed license is not valid yet (before ``not_before``)
    VALID         not_before <= now < not_after
    GRACE         not_after <= now < not_after + grace_days: everything works, warnings logged
    READ_ONLY     after the grace period, or the clock was set back (tampering): new writes are
                  refused; reads, listings, deletes and aborts keep working

Renewal is installing a newer license: the next refresh evaluates it and the state moves back to
VALID. Over the ``max_stored_bytes`` entitlement, writes are refused in any state until usage
falls back under it. Nothing is ever deleted or locked because of a license.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from onshore.service.licensing.license import License, format_time


class LicenseState(str, enum.Enum):
    INACTIVE = "inactive"
    UNLICENSED = "unlicensed"
    PENDING = "pending"
    VALID = "valid"
    GRACE = "grace"
    READ_ONLY = "read-only"


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The state at one moment, why, and whether writes may proceed."""

    state: LicenseState
    reason: str
    writes_allowed: bool
    license_id: str | None = None
    days_left: int | None = None  # until read-only (end of validity + grace)
    stored_bytes: int | None = None
    max_stored_bytes: int | None = None

    @property
    def header(self) -> str:
        return self.state.value


INACTIVE = Evaluation(
    LicenseState.INACTIVE, "no licensor public key is configured", writes_allowed=True
)


def evaluate(
    lic: License | None,
    now: datetime,
    *,
    required: bool,
    problem: str | None = None,
    clock_problem: str | None = None,
    stored_bytes: int | None = None,
) -> Evaluation:
    """The state of a deployment holding ``lic`` (already verified) at ``now``.

    ``problem`` says why no usable license is installed (bad signature, wrong deployment...);
    ``clock_problem`` is set when the clock was found to be set back.
    """
    if clock_problem is not None:
        return Evaluation(
            LicenseState.READ_ONLY,
            clock_problem,
            writes_allowed=False,
            license_id=lic.license_id if lic else None,
        )
    if lic is None or problem is not None:
        why = problem or "no license is installed"
        action = "; install one with `onshore license install FILE`"
        return Evaluation(
            LicenseState.UNLICENSED,
            why + action,
            writes_allowed=not required,
            license_id=lic.license_id if lic else None,
        )
    end = lic.not_after + timedelta(days=lic.grace_days)
    days_left = max(0, (end - now).days)

    def result(state: LicenseState, reason: str, writes_allowed: bool) -> Evaluation:
        return Evaluation(
            state,
            reason,
            writes_allowed,
            license_id=lic.license_id,
            days_left=days_left,
            stored_bytes=stored_bytes,
            max_stored_bytes=lic.entitlements.max_stored_bytes,
        )

    if now < lic.not_before:
        return result(
            LicenseState.PENDING,
            f"license {lic.license_id} is not valid before {format_time(lic.not_before)}",
            writes_allowed=not required,
        )
    if now >= end:
        return result(
            LicenseState.READ_ONLY,
            f"license {lic.license_id} expired on {format_time(lic.not_after)} and its "
            f"{lic.grace_days}-day grace period ended on {format_time(end)}; install a renewed "
            "license with `onshore license install FILE`",
            writes_allowed=False,
        )
    quota = lic.entitlements.max_stored_bytes
    over = quota is not None and stored_bytes is not None and stored_bytes > quota
    if now >= lic.not_after:
        state = LicenseState.GRACE
        reason = (
            f"license {lic.license_id} expired on {format_time(lic.not_after)}; writes stop "
            f"after {format_time(end)} ({days_left} days left) unless a renewed license is "
            "installed"
        )
    else:
        state = LicenseState.VALID
        reason = f"license {lic.license_id} is valid until {format_time(lic.not_after)}"
    if over:
        reason = (
            f"stored data ({stored_bytes} bytes) exceeds the {quota} bytes license "
            f"{lic.license_id} allows; delete data or install a license with a larger "
            "entitlement"
        )
    return result(state, reason, writes_allowed=not over)
