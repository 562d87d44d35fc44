"""What an offboarding is at one moment (see the package docstring for the life cycle)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

from onshore.storage.sqlite.offboarding import OffboardingRow


class OffboardingState(str, Enum):
    ACTIVE = "active"  # no offboarding requested (no row)
    NOTICE = "notice"
    EXECUTING = "executing"
    OFFBOARDED = "offboarded"


def _time(us: int | None) -> datetime | None:
    return None if us is None else datetime.fromtimestamp(us / 1_000_000, UTC)


@dataclass(frozen=True, slots=True)
class Status:
    """A tenant's offboarding status, as the admin API shows it."""

    account_id: str
    tenant_name: str
    state: OffboardingState
    requested: datetime | None = None
    notice_days: int | None = None
    started: datetime | None = None
    executed: datetime | None = None
    step: str = ""
    forced: bool = False
    counts: dict[str, int] | None = None
    fingerprints: tuple[str, ...] = ()
    certificate: str | None = None

    @property
    def notice_ends(self) -> datetime | None:
        if self.requested is None or self.notice_days is None:
            return None
        return self.requested + timedelta(days=self.notice_days)

    @classmethod
    def of(cls, row: OffboardingRow) -> Status:
        return cls(
            account_id=row.account_id,
            tenant_name=row.tenant_name,
            state=OffboardingState(row.state),
            requested=_time(row.requested_us),
            notice_days=row.notice_days,
            started=_time(row.started_us),
            executed=_time(row.executed_us),
            step=row.step,
            forced=row.forced,
            counts=dict(row.counts),
            fingerprints=row.fingerprints,
            certificate=row.certificate,
        )

    def as_json(self) -> dict[str, object]:
        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "account_id": self.account_id,
            "name": self.tenant_name,
            "state": self.state.value,
            "requested": iso(self.requested),
            "notice_days": self.notice_days,
            "notice_ends": iso(self.notice_ends),
            "started": iso(self.started),
            "executed": iso(self.executed),
            "step": self.step or None,
            "forced": self.forced,
            "counts": self.counts or {},
            "destroyed_key_fingerprints": list(self.fingerprints),
        }
