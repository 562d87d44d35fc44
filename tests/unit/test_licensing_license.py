"""License files: signing, strict parsing, and every reason a deployment refuses one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from onshore.service.licensing import license as lic_mod
from onshore.service.licensing import signing
from tests.licensing_kit import T0, Deployment, Licensor


@pytest.fixture
def dep(tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(tmp_path, Licensor())
    yield d
    d.close()


def refused(dep: Deployment, text: str) -> str:
    with pytest.raises(lic_mod.LicenseProblem) as err:
        dep.licensing.install(text)
    return str(err.value)


def test_issue_then_install_is_valid(dep: Deployment) -> None:
    evaluation = dep.licensing.install(dep.issue())
    assert evaluation.state.value == "valid"
    assert evaluation.writes_allowed
    assert evaluation.license_id == "LIC-2026-001"


def test_round_trip_keeps_every_field(dep: Deployment) -> None:
    lic = dep.licensor.license(dep.public_key)
    parsed = lic_mod.read(lic_mod.issue(lic, dep.licensor.key), (dep.licensor.key.public_key(),))
    assert parsed.license == lic


def test_reformatted_file_still_verifies(dep: Deployment) -> None:
    pretty = json.dumps(json.loads(dep.issue()), indent=4)
    assert dep.licensing.install(pretty).state.value == "valid"


def test_forged_license_is_refused(dep: Deployment) -> None:
    forger = Licensor()
    message = refused(dep, forger.issue(dep.public_key))
    assert "signature does not verify against any trusted key" in message


def test_altered_license_is_refused(dep: Deployment) -> None:
    doc = json.loads(dep.issue())
    doc["payload"]["entitlements"]["max_stored_bytes"] = 10**18
    message = refused(dep, json.dumps(doc))
    assert "altered" in message


def test_wrong_deployment_is_refused(dep: Deployment) -> None:
    other = signing.public_key_text(Licensor().key.public_key())
    message = refused(dep, dep.licensor.issue(other))
    assert "issued for another deployment" in message


def test_wrong_partition_is_refused(dep: Deployment) -> None:
    message = refused(dep, dep.issue(partition="onshore-cn"))
    assert "partition 'onshore-cn'" in message and "'onshore-fr'" in message


def test_wrong_region_is_refused(dep: Deployment) -> None:
    message = refused(dep, dep.issue(regions=("cn-north-1",)))
    assert "does not cover region 'fr-central-1'" in message


def test_release_newer_than_covered_is_refused(dep: Deployment) -> None:
    message = refused(dep, dep.issue(max_release="0.0"))
    assert "covers releases up to 0.0" in message


def test_not_yet_valid_is_refused(dep: Deployment) -> None:
    message = refused(dep, dep.issue(not_before=T0 + timedelta(days=2)))
    assert "not valid yet" in message


def test_expired_beyond_grace_is_refused(dep: Deployment) -> None:
    text = dep.issue(not_before=T0 - timedelta(days=100), not_after=T0 - timedelta(days=50))
    assert "already expired" in refused(dep, text)


def test_unknown_and_missing_fields_are_rejected(dep: Deployment) -> None:
    payload = dep.licensor.license(dep.public_key).payload()
    with pytest.raises(lic_mod.LicenseProblem, match="unknown license field"):
        lic_mod.from_payload({**payload, "unlimited": True})
    del payload["grace_days"]
    with pytest.raises(lic_mod.LicenseProblem, match="missing license field"):
        lic_mod.from_payload(payload)
    ents = dep.licensor.license(dep.public_key).payload()
    ents["entitlements"] = {"features": [], "max_stored_bytes": None, "max_tenant": 3}
    with pytest.raises(lic_mod.LicenseProblem, match="unknown entitlements field"):
        lic_mod.from_payload(ents)


def test_an_unknown_field_is_rejected_even_when_signed(dep: Deployment) -> None:
    payload = {**dep.licensor.license(dep.public_key).payload(), "extra": 1}
    text = json.dumps(signing.seal(lic_mod.FORMAT, payload, dep.licensor.key))
    assert "unknown license field(s): extra" in refused(dep, text)


@pytest.mark.parametrize(
    "text", ["", "not json", "[]", '{"format": "onshore-license/1"}', '{"a": 1}']
)
def test_garbage_is_refused_cleanly(dep: Deployment, text: str) -> None:
    refused(dep, text)


def test_a_report_cannot_pass_as_a_license(dep: Deployment) -> None:
    payload = dep.licensor.license(dep.public_key).payload()
    text = json.dumps(signing.seal("onshore-usage-report/1", payload, dep.licensor.key))
    assert "expected a onshore-license/1 document" in refused(dep, text)


def test_release_numbers() -> None:
    assert lic_mod.release_tuple("0.1.0") <= lic_mod.release_tuple("0.1", pad=True)
    assert lic_mod.release_tuple("0.2.0") > lic_mod.release_tuple("0.1", pad=True)
    assert lic_mod.release_tuple("1.0") > lic_mod.release_tuple("0.9.9", pad=True)
