"""Usage metering and the signed monthly report chain, including every chain attack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from onshore.service.licensing import reports, signing
from onshore.service.licensing.license import License
from onshore.service.licensing.metering import CLASS_A, CLASS_B, FREE, UsageMeter, request_class
from tests.licensing_kit import Deployment, Licensor


@pytest.fixture
def dep(tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(tmp_path, Licensor())
    d.licensing.install(d.issue(not_after=datetime(2027, 1, 1, tzinfo=UTC)))
    yield d
    d.close()


def lic_of(dep: Deployment) -> License:
    return dep.licensor.license(dep.public_key, not_after=datetime(2027, 1, 1, tzinfo=UTC))


def report(dep: Deployment, month: str) -> str:
    context = reports.ReportContext(lic_of(dep), "onshore-fr", "fr-central-1")
    stored = reports.generate(dep.licensing.store, dep.licensing.key, context, month, dep.clock())
    return stored.document


def busy_month(dep: Deployment, month: str, requests: int) -> None:
    """Traffic and hourly samples across ``month`` (clock moves through it)."""
    start, _ = reports.parse_month(month)
    for day in range(3):
        dep.clock.now = start + timedelta(days=day, hours=1)
        for _ in range(requests):
            dep.licensing.meter.record("PutObject", 100, 0)
            dep.licensing.meter.record("GetObject", 0, 1000)
            dep.licensing.meter.record("ListObjectsV2", 0, 50)
            dep.licensing.meter.record("DeleteObject", 0, 0)
        dep.licensing.tick()
        dep.clock.advance(hours=1)
        dep.licensing.tick()


def test_request_classes() -> None:
    for op in (
        "PutObject",
        "CopyObject",
        "PostObject",
        "ListObjectsV2",
        "ListBuckets",
        "CreateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
        "PutBucketVersioning",
    ):
        assert request_class(op) == CLASS_A, op
    for op in ("GetObject", "HeadObject", "HeadBucket", "GetBucketLocation"):
        assert request_class(op) == CLASS_B, op
    for op in ("DeleteObject", "DeleteObjects", "DeleteBucket", "AbortMultipartUpload"):
        assert request_class(op) == FREE, op


def test_meter_counts_per_utc_day_and_drains() -> None:
    now = [datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC).timestamp()]
    meter = UsageMeter(lambda: now[0])
    meter.record("PutObject", 10, 0)
    meter.record("Internal", 0, 5)  # health checks are not metered
    now[0] += 2
    meter.record("GetObject", 0, 7)
    days = meter.drain()
    assert [(d.day, d.requests_a, d.requests_b, d.bytes_in, d.bytes_out) for d in days] == [
        ("2026-03-01", 1, 0, 10, 0),
        ("2026-03-02", 0, 1, 0, 7),
    ]
    assert meter.drain() == []


def test_flushes_from_several_processes_add_up(dep: Deployment) -> None:
    from onshore.service.licensing.monitor import Licensing

    other = Licensing(dep.licensing.store, dep.root, dep.settings, clock=dep.clock)
    for meter in (dep.licensing.meter, other.meter):
        meter.record("PutObject", 5, 0)
    dep.licensing.flush()
    other.flush()
    day = f"{dep.clock():%Y-%m-%d}"
    days, _ = dep.licensing.store.usage(day, day, 0, 2**62)
    assert days[0].requests_a == 2 and days[0].bytes_in == 10


def test_report_aggregates_and_verifies(dep: Deployment) -> None:
    busy_month(dep, "2026-02", requests=5)
    dep.clock.now = datetime(2026, 3, 2, tzinfo=UTC)
    text = report(dep, "2026-02")
    verified = reports.verify(text, lic_of(dep))
    t = verified.totals
    assert t["requests_a"] == 30 and t["requests_b"] == 15 and t["requests_free"] == 15
    assert t["bytes_in"] == 1500 and t["bytes_out"] == 15750
    assert verified.payload["sampled_hours"] == 6
    assert verified.payload["deployment_id"] == dep.licensing.key.deployment_id
    assert verified.payload["license_id"] == "LIC-2026-001"
    assert len(str(verified.payload["build_fingerprint"])) == 64
    assert "GiB-months" in reports.royalty_summary(verified)
    assert report(dep, "2026-02") == text  # generated once; the same document every time


def test_reports_are_generated_in_order_only_for_finished_months(dep: Deployment) -> None:
    dep.clock.now = datetime(2026, 5, 2, tzinfo=UTC)
    with pytest.raises(reports.ReportProblem, match="not over yet"):
        report(dep, "2026-05")
    report(dep, "2026-02")
    with pytest.raises(reports.ReportProblem, match="generate 2026-03 first"):
        report(dep, "2026-04")
    with pytest.raises(reports.ReportProblem, match="later month"):
        report(dep, "2026-01")
    with pytest.raises(reports.ReportProblem, match="not a month"):
        report(dep, "2026-13")


@pytest.fixture
def chain(dep: Deployment) -> list[str]:
    texts = []
    for month in ("2026-02", "2026-03", "2026-04"):
        busy_month(dep, month, requests=2)
        dep.clock.now = reports.parse_month(month)[1] + timedelta(hours=2)
        texts.append(report(dep, month))
    return texts


def test_a_good_chain_verifies(dep: Deployment, chain: list[str]) -> None:
    reports.verify(chain[0], lic_of(dep))
    reports.verify(chain[1], lic_of(dep), chain[0])
    last = reports.verify(chain[2], lic_of(dep), chain[1])
    assert last.payload["cumulative"]["requests_a"] == 3 * 12  # type: ignore[index]


def test_gap_is_detected(dep: Deployment, chain: list[str]) -> None:
    with pytest.raises(reports.ReportProblem, match="gap"):
        reports.verify(chain[2], lic_of(dep), chain[0])


def test_replay_is_detected(dep: Deployment, chain: list[str]) -> None:
    with pytest.raises(reports.ReportProblem, match="replay"):
        reports.verify(chain[1], lic_of(dep), chain[1])


def test_rollback_is_detected(dep: Deployment, chain: list[str]) -> None:
    with pytest.raises(reports.ReportProblem, match="rollback"):
        reports.verify(chain[0], lic_of(dep), chain[1])


def test_edited_counter_is_detected(dep: Deployment, chain: list[str]) -> None:
    doc = json.loads(chain[1])
    doc["payload"]["totals"]["requests_a"] -= 1
    doc["payload"]["days"][0]["requests_a"] -= 1
    with pytest.raises(reports.ReportProblem, match="altered"):
        reports.verify(json.dumps(doc), lic_of(dep), chain[0])


def test_foreign_key_is_detected(dep: Deployment, chain: list[str]) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    other = Ed25519PrivateKey.generate()
    payload = json.loads(chain[1])["payload"]
    payload["deployment_key"] = signing.public_key_text(other.public_key())
    forged = json.dumps(signing.seal(reports.FORMAT, payload, other))
    with pytest.raises(reports.ReportProblem, match="foreign key"):
        reports.verify(forged, lic_of(dep), chain[0])


def test_counters_that_go_backwards_are_detected(dep: Deployment, chain: list[str]) -> None:
    # Even a report signed with the real deployment key (a tampered deployment) cannot lower
    # the cumulative counters without breaking the chain arithmetic.
    payload = json.loads(chain[1])["payload"]
    payload["cumulative"]["bytes_out"] = 0
    resigned = json.dumps(signing.seal(reports.FORMAT, payload, dep.licensing.key.private))
    with pytest.raises(reports.ReportProblem, match="went backwards"):
        reports.verify(resigned, lic_of(dep), chain[0])


def test_broken_hash_link_is_detected(dep: Deployment, chain: list[str]) -> None:
    payload = json.loads(chain[1])["payload"]
    payload["previous_report_hash"] = "0" * 64
    resigned = json.dumps(signing.seal(reports.FORMAT, payload, dep.licensing.key.private))
    with pytest.raises(reports.ReportProblem, match="hash mismatch"):
        reports.verify(resigned, lic_of(dep), chain[0])


def test_a_later_report_needs_its_predecessor(dep: Deployment, chain: list[str]) -> None:
    with pytest.raises(reports.ReportProblem, match="pass the previous report"):
        reports.verify(chain[1], lic_of(dep))


def test_report_for_another_license_is_refused(dep: Deployment, chain: list[str]) -> None:
    other = dep.licensor.license(dep.public_key, license_id="LIC-OTHER")
    with pytest.raises(reports.ReportProblem, match="not 'LIC-OTHER'"):
        reports.verify(chain[0], other)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p.pop("totals"),
        lambda p: p.update(seq="2"),
        lambda p: p.update(month="March"),
        lambda p: p["cumulative"].update(bytes_in="lots"),
        lambda p: p.update(days={}),
    ],
)
def test_malformed_but_signed_reports_are_refused_cleanly(
    dep: Deployment, chain: list[str], mutate: object
) -> None:
    payload = json.loads(chain[0])["payload"]
    mutate(payload)  # type: ignore[operator]
    resigned = json.dumps(signing.seal(reports.FORMAT, payload, dep.licensing.key.private))
    with pytest.raises(reports.ReportProblem, match="malformed|not a month"):
        reports.verify(resigned, lic_of(dep))
