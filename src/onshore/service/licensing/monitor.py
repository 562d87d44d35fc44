"""The licensing monitor: the in-memory license state the S3 hot path consults.

Each server process builds one :class:`Licensing`. At start-up and then every
``license_refresh_seconds`` (a background thread calls :meth:`Licensing.tick`) it

1. reads the installed license and verifies it offline — signature against the pinned licensor
   keys, partition, region, deployment key, release (:mod:`.license`);
2. records the current time in the signed clock high-water mark and detects a clock set back
   (:mod:`.clock`);
3. samples the store's totals (the latest sample of each hour counts) for the usage report,
   and flushes the request counters (:mod:`.metering`);
4. evaluates the state (:mod:`.state`) and keeps it in memory.

Requests then only read that in-memory :class:`~.state.Evaluation` (:meth:`Licensing.gate`):
no database query per request. Time comes from an injectable ``clock``, so tests move through
every state without sleeping. A license installed with ``onshore license install`` is picked up
by every process at its next refresh.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from onshore import __version__
from onshore.domain.errors import AccountProblem
from onshore.domain.iam import IamError
from onshore.service.licensing import clock as clock_check
from onshore.service.licensing import license as lic_mod
from onshore.service.licensing.deployment import DeploymentKey, load_or_create
from onshore.service.licensing.metering import UsageMeter
from onshore.service.licensing.state import Evaluation, LicenseState, evaluate
from onshore.service.rootkey import KeyWrapper
from onshore.storage.sqlite.licensing import Sample, SqliteLicensingStore

log = logging.getLogger("onshore.licensing")

STATE_HEADER = "x-onshore-license-state"
RETENTION = timedelta(days=800)  # usage counters are kept at least 400 days; twice that here
_HOUR_US = 3_600_000_000


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class LicensingSettings:
    trusted: tuple[Ed25519PublicKey, ...]
    required: bool
    partition: str
    region: str
    release: str = __version__
    refresh_seconds: float = 60.0


class TenantLimitReached(IamError):
    """Creating a tenant would exceed the license's ``max_tenants``."""

    status, code = 403, "LimitExceeded"


@dataclass(frozen=True, slots=True)
class Installed:
    """The license in force (None when none is usable) and why not, if it is not."""

    signed: lic_mod.SignedLicense | None
    problem: str | None


class Licensing:
    def __init__(
        self,
        store: SqliteLicensingStore,
        root: KeyWrapper,
        settings: LicensingSettings,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.key: DeploymentKey = load_or_create(store, root, clock())
        # The meter reads the time on every request: the plain wall clock unless one is injected.
        self.meter = UsageMeter(time.time if clock is utc_now else lambda: clock().timestamp())
        self.evaluation = Evaluation(
            LicenseState.UNLICENSED, "not checked yet", writes_allowed=not settings.required
        )
        self.max_tenants: int | None = None  # the license's entitlement, set by refresh()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_warning: datetime | None = None

    # --- identity -------------------------------------------------------------------------------
    @property
    def deployment(self) -> lic_mod.Deployment:
        s = self.settings
        return lic_mod.Deployment(s.partition, s.region, self.key.public_text, s.release)

    # --- the hot path ---------------------------------------------------------------------------
    def gate(self) -> str:
        """Refuse a write the license does not allow; otherwise the state header value.

        Called for writes only (``onshore.s3api.routing.WRITES``: deletes and aborts are not
        writes, as a license never stands between an operator and removing data)."""
        evaluation = self.evaluation
        if not evaluation.writes_allowed:
            raise AccountProblem(
                f"This onshore deployment does not accept new writes: {evaluation.reason}. "
                "Reads, listings and deletes keep working.",
                headers={STATE_HEADER: evaluation.header},
            )
        return evaluation.header

    # --- verification ---------------------------------------------------------------------------
    def verify(self, text: str, now: datetime) -> lic_mod.SignedLicense:
        """Everything a license must pass to be installed or to stay in force."""
        signed = lic_mod.read(text, self.settings.trusted)
        lic_mod.check_deployment(signed.license, self.deployment)
        return signed

    def install(self, text: str) -> Evaluation:
        """Verify and install a license file; refuse one that is not valid now."""
        now = self.clock()
        signed = self.verify(text, now)
        lic = signed.license
        if now < lic.not_before:
            raise lic_mod.LicenseProblem(
                f"license {lic.license_id} is not valid yet (not before "
                f"{lic_mod.format_time(lic.not_before)})"
            )
        if now >= lic.not_after + timedelta(days=lic.grace_days):
            raise lic_mod.LicenseProblem(
                f"license {lic.license_id} has already expired "
                f"({lic_mod.format_time(lic.not_after)}, grace {lic.grace_days} days)"
            )
        self.store.install_license(lic.license_id, text, int(now.timestamp() * 1e6))
        return self.refresh()

    def installed(self, now: datetime) -> Installed:
        text = self.store.current_license()
        if text is None:
            return Installed(None, None)
        try:
            return Installed(self.verify(text, now), None)
        except lic_mod.LicenseProblem as exc:
            return Installed(None, f"the installed license is not usable: {exc}")

    def refresh(self) -> Evaluation:
        """Re-verify the license, check the clock and totals, and update the in-memory state."""
        now = self.clock()
        installed = self.installed(now)
        clock_problem = clock_check.check_and_advance(self.store, self.key, now)
        stored, _, _ = self.store.totals()
        evaluation = evaluate(
            installed.signed.license if installed.signed else None,
            now,
            required=self.settings.required,
            problem=installed.problem,
            clock_problem=clock_problem,
            stored_bytes=stored,
        )
        self._log(evaluation, now)
        self.evaluation = evaluation
        lic = installed.signed.license if installed.signed else None
        self.max_tenants = lic.entitlements.max_tenants if lic is not None else None
        return evaluation

    def check_new_tenant(self) -> None:
        """Refuse a new tenant beyond the license's ``max_tenants`` (offboarded ones do not
        count). Blocking: it counts the tenants in the database."""
        limit = self.max_tenants
        if limit is not None and self.store.active_tenants() >= limit:
            raise TenantLimitReached(
                f"The license allows {limit} tenants and this deployment has that many: "
                "offboard one, or install a license with a higher max_tenants."
            )

    def _log(self, evaluation: Evaluation, now: datetime) -> None:
        previous = self.evaluation
        changed = (previous.state, previous.writes_allowed) != (
            evaluation.state,
            evaluation.writes_allowed,
        )
        due = self._last_warning is None or now - self._last_warning >= timedelta(hours=1)
        if not (changed or due):
            return
        if not evaluation.writes_allowed:
            log.error("license: %s (writes refused): %s", evaluation.state.value, evaluation.reason)
        elif evaluation.state is not LicenseState.VALID:
            log.warning("license: %s: %s", evaluation.state.value, evaluation.reason)
        elif changed:
            log.info("license: valid: %s", evaluation.reason)
        self._last_warning = now

    # --- metering -------------------------------------------------------------------------------
    def sample(self, now: datetime) -> None:
        """Record the store's totals as this hour's latest (and raise the hour's peak)."""
        hour_us = int(now.timestamp() * 1_000_000) // _HOUR_US * _HOUR_US
        stored, objects, tenants = self.store.totals()
        self.store.record_sample(Sample(hour_us, stored, objects, tenants))

    def flush(self) -> None:
        days = self.meter.drain()
        try:
            self.store.add_usage(days)
        except Exception:
            self.meter.restore(days)
            raise

    def tick(self) -> Evaluation:
        """One periodic round: flush, sample, prune, refresh."""
        now = self.clock()
        self.flush()
        self.sample(now)
        cutoff = now - RETENTION
        self.store.prune(f"{cutoff:%Y-%m-%d}", int(cutoff.timestamp() * 1_000_000))
        return self.refresh()

    # --- background thread ----------------------------------------------------------------------
    def start(self) -> None:
        self.tick()
        self._thread = threading.Thread(target=self._run, name="onshore-licensing", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.refresh_seconds):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - keep the last state; try again next round
                log.exception("license refresh failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.flush()
            self.sample(self.clock())
        except Exception:  # noqa: BLE001 - shutting down: nothing better to do than say so
            log.exception("could not store the last usage counters")
