"""Every license state transition, with simulated time (no sleeping), and the write gate."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from onshore.domain.errors import AccountProblem
from onshore.service.licensing.monitor import STATE_HEADER, Licensing
from onshore.service.licensing.state import LicenseState
from onshore.storage.sqlite.licensing import SqliteLicensingStore
from tests.licensing_kit import T0, Deployment, Licensor


@pytest.fixture
def dep(tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(tmp_path, Licensor())
    yield d
    d.close()


def state(dep: Deployment) -> LicenseState:
    return dep.licensing.refresh().state


def assert_writes_refused(licensing: Licensing, *, mentions: str) -> None:
    with pytest.raises(AccountProblem) as err:
        licensing.gate()
    assert err.value.status == 403
    assert mentions in err.value.message
    assert "Reads, listings and deletes keep working" in err.value.message
    assert err.value.headers[STATE_HEADER] == licensing.evaluation.state.value


def assert_writes_allowed(licensing: Licensing) -> None:
    assert licensing.gate() == licensing.evaluation.state.value


def test_full_life_cycle(dep: Deployment) -> None:
    lic = dep.licensing
    # Keys pinned, no license: required by default, so writes are refused.
    assert state(dep) is LicenseState.UNLICENSED
    assert_writes_refused(lic, mentions="no license is installed")
    # Installed: valid.
    assert lic.install(dep.issue()).state is LicenseState.VALID
    assert_writes_allowed(lic)
    assert lic.evaluation.days_left == 40
    # Past not_after: grace, everything still works.
    dep.clock.now = T0 + timedelta(days=30, seconds=1)
    assert state(dep) is LicenseState.GRACE
    assert_writes_allowed(lic)
    assert "expired on 2026-02-09" in lic.evaluation.reason
    assert lic.evaluation.days_left == 9
    # Past the grace period: read-only.
    dep.clock.now = T0 + timedelta(days=40, seconds=1)
    assert state(dep) is LicenseState.READ_ONLY
    assert_writes_refused(lic, mentions="license LIC-2026-001 expired on 2026-02-09")
    # Renewal: back to valid.
    renewed = dep.issue(
        license_id="LIC-2026-002",
        not_before=dep.clock.now,
        not_after=dep.clock.now + timedelta(365),
    )
    assert lic.install(renewed).state is LicenseState.VALID
    assert_writes_allowed(lic)


def test_license_not_required_lets_writes_through(tmp_path: Path) -> None:
    dep = Deployment(tmp_path, Licensor(), required=False)
    try:
        assert state(dep) is LicenseState.UNLICENSED
        assert_writes_allowed(dep.licensing)
    finally:
        dep.close()


def test_pending_license_is_not_yet_in_force(dep: Deployment) -> None:
    dep.licensing.install(dep.issue())
    # Installed earlier; the clock is correct but the stored license starts later (renewal
    # delivered in advance) — stored directly, since install refuses it.
    store = dep.licensing.store
    store.install_license("LIC-NEXT", dep.issue(not_before=T0 + timedelta(days=5)), 0)
    assert state(dep) is LicenseState.PENDING
    assert_writes_refused(dep.licensing, mentions="not valid before 2026-01-15")


def test_clock_set_back_is_read_only_until_corrected(dep: Deployment) -> None:
    dep.licensing.install(dep.issue())
    dep.clock.advance(days=2)
    assert state(dep) is LicenseState.VALID
    dep.clock.advance(days=-1)  # someone sets the clock back a day to stretch the license
    assert state(dep) is LicenseState.READ_ONLY
    assert_writes_refused(dep.licensing, mentions="the clock was set back")
    dep.clock.advance(minutes=1)
    assert state(dep) is LicenseState.READ_ONLY  # still before the high-water mark
    dep.clock.advance(days=1)  # the clock is right again
    assert state(dep) is LicenseState.VALID


def test_small_clock_jitter_is_tolerated(dep: Deployment) -> None:
    dep.licensing.install(dep.issue())
    dep.clock.advance(minutes=10)
    assert state(dep) is LicenseState.VALID
    dep.clock.advance(minutes=-3)  # NTP step backwards
    assert state(dep) is LicenseState.VALID


def test_lowered_clock_record_is_detected(dep: Deployment, tmp_path: Path) -> None:
    dep.licensing.install(dep.issue())
    dep.clock.advance(days=20)
    state(dep)
    # Editing the database to lower the mark (without the deployment key) is caught.
    conn = sqlite3.connect(tmp_path / "metadata.db")
    conn.execute("UPDATE license_clock SET high_water_us = high_water_us - 86400000000")
    conn.commit()
    conn.close()
    assert state(dep) is LicenseState.READ_ONLY
    assert "clock record has been altered" in dep.licensing.evaluation.reason
    dep.clock.advance(days=1)
    assert state(dep) is LicenseState.READ_ONLY  # not healed by time: the record stays suspect


def test_over_stored_bytes_refuses_writes_until_usage_falls(dep: Deployment) -> None:
    from onshore.domain.models import Bucket

    dep.licensing.install(dep.issue())
    dep.meta.create_bucket(Bucket("b", "owner", "fr-central-1", T0))
    lic = dep.licensing
    quota_text = dep.licensor.license(dep.public_key)
    lic.install(
        dep.licensor.issue(
            dep.public_key,
            license_id="LIC-SMALL",
            entitlements=type(quota_text.entitlements)(("s3",), 10, None),
        )
    )
    assert lic.evaluation.writes_allowed
    _put(dep, "b", b"x" * 11)
    assert state(dep) is LicenseState.VALID
    assert_writes_refused(lic, mentions="exceeds the 10 bytes license LIC-SMALL allows")
    _delete_all(dep, "b")
    state(dep)
    assert_writes_allowed(lic)


def test_tampered_installed_license_is_unlicensed(dep: Deployment, tmp_path: Path) -> None:
    dep.licensing.install(dep.issue())
    conn = sqlite3.connect(tmp_path / "metadata.db")
    conn.execute("UPDATE license_files SET document = replace(document, '\"FR\"', '\"CN\"')")
    conn.commit()
    conn.close()
    assert state(dep) is LicenseState.UNLICENSED
    assert "the installed license is not usable" in dep.licensing.evaluation.reason


def test_deployment_key_survives_reopen_and_needs_the_root_key(
    dep: Deployment, tmp_path: Path
) -> None:
    from onshore.service.rootkey import LocalRootKey, UnwrapError

    again = Licensing(SqliteLicensingStore(dep.meta), dep.root, dep.settings, clock=dep.clock)
    assert again.key.public_text == dep.public_key
    with pytest.raises(UnwrapError):
        Licensing(
            SqliteLicensingStore(dep.meta), LocalRootKey(b"z" * 32), dep.settings, clock=dep.clock
        )
    raw = (
        sqlite3.connect(tmp_path / "metadata.db")
        .execute("SELECT wrapped_key FROM license_deployment")
        .fetchone()[0]
    )
    assert len(raw) > 32 and dep.public_key.encode() not in raw


def _put(dep: Deployment, bucket: str, data: bytes) -> None:
    from onshore.domain.models import ObjectVersion

    dep.meta.put_object(
        ObjectVersion(bucket, "k", "null", T0, size=len(data), etag="e", inline=data)
    )


def _delete_all(dep: Deployment, bucket: str) -> None:
    from onshore.domain.models import ObjectVersion

    marker = ObjectVersion(bucket, "k", "null", T0, is_delete_marker=True)
    dep.meta.delete_object(bucket, "k", version_id=None, marker=marker)


def test_a_license_stops_verifying_when_the_deployment_changes(dep: Deployment) -> None:
    from dataclasses import replace

    dep.licensing.install(dep.issue())
    moved = replace(dep.settings, partition="onshore-cn")
    restarted = Licensing(dep.licensing.store, dep.root, moved, clock=dep.clock)
    evaluation = restarted.refresh()
    assert evaluation.state is LicenseState.UNLICENSED
    assert "is for partition 'onshore-fr', but this deployment is partition 'onshore-cn'" in (
        evaluation.reason
    )
    assert_writes_refused(restarted, mentions="partition 'onshore-cn'")


def test_states_are_logged_with_their_reason(
    dep: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="onshore.licensing")
    dep.licensing.install(dep.issue())
    dep.clock.now = T0 + timedelta(days=31)
    dep.licensing.refresh()
    dep.clock.now = T0 + timedelta(days=41)
    dep.licensing.refresh()
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert ("INFO", "license: valid: license LIC-2026-001 is valid until 2026-02-09T12:00:00Z") in (
        messages
    )
    assert any(level == "WARNING" and "license: grace" in m for level, m in messages)
    assert any(level == "ERROR" and "read-only (writes refused)" in m for level, m in messages)


def test_no_pinned_key_means_licensing_is_inactive(tmp_path: Path) -> None:
    from onshore.config import load
    from onshore.service.licensing.wiring import licensing_for, settings_for
    from onshore.service.rootkey import LocalRootKey

    config = load({"data_dir": str(tmp_path)}, environ={})
    assert settings_for(config) is None
    dep = Deployment(tmp_path, Licensor())
    try:
        assert licensing_for(config, dep.meta, LocalRootKey(bytes(32))) is None
    finally:
        dep.close()
    with pytest.raises(ValueError, match="licensor_public_keys"):
        settings_for(load({"licensor_public_keys": "ed25519:???"}, environ={}))
