"""Monthly usage reports: the one artifact built to cross the border, and the chain that binds them.

A report is a signed envelope (:mod:`.signing`, format ``onshore-usage-report/1``) whose payload
holds, for one calendar month (UTC):

* per day: stored byte-hours (the sum over the day's hours of the stored bytes last sampled in
  each), peak stored bytes,
  object count and tenant count (from the last sample of the day), requests by class (A: PUT,
  COPY, POST, LIST; B: GET, HEAD, other; free: DELETE, abort), bytes in and out;
* the month's totals, and *cumulative* totals since the first report (they only grow, and each
  must equal the previous report's plus this month's: counters cannot go backwards);
* the license id, the deployment id and public key, partition, region, onshore version and a
  fingerprint of the installed build (a hash over the package files);
* its sequence number and the SHA-256 of the previous report, so reports form a hash chain.

It is signed with the deployment key, which only this deployment holds. It holds **no** tenant,
user, bucket or key names or ids and no addresses: only the counters above exist in the tables
it is built from (``usage_days``, ``usage_samples``).

The licensor checks a report with :func:`verify` against the license (which names the
deployment key) and the previous report: a forged or edited report fails the signature, a report
signed by another deployment's key is foreign, and the chain exposes a missing month (gap), a
report sent twice (replay), an older report sent after a newer one (rollback), or cumulative
counters that do not add up.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import onshore
from onshore import __version__
from onshore.service.licensing import signing
from onshore.service.licensing.deployment import DeploymentKey
from onshore.service.licensing.license import License
from onshore.storage.sqlite.licensing import DayUsage, Sample, SqliteLicensingStore, StoredReport

FORMAT = "onshore-usage-report/1"
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_HOUR_US = 3_600_000_000
ADDITIVE = ("byte_hours", "requests_a", "requests_b", "requests_free", "bytes_in", "bytes_out")


class ReportProblem(Exception):
    """A report cannot be generated, or fails verification; the message says why."""


def parse_month(month: str) -> tuple[datetime, datetime]:
    """The first instant of ``YYYY-MM`` and of the month after it (UTC)."""
    match = _MONTH.match(month)
    if not match:
        raise ReportProblem(f"not a month (YYYY-MM): {month!r}")
    year, mon = int(match[1]), int(match[2])
    start = datetime(year, mon, 1, tzinfo=UTC)
    end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=UTC)
    return start, end


def next_month(month: str) -> str:
    return f"{parse_month(month)[1]:%Y-%m}"


def build_fingerprint(package_dir: Path | None = None) -> str:
    """SHA-256 over the installed package's source and schema files (paths and contents)."""
    root = package_dir or Path(onshore.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".sql") and "__pycache__" not in path.parts:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def report_hash(text: str | bytes) -> str:
    """The hash a report is chained by: SHA-256 of its canonical form (formatting-proof)."""
    try:
        return signing.sha256_hex(signing.canonical(json.loads(text)))
    except ValueError:
        raise ReportProblem("a report is not a JSON document") from None


def _aggregate(days: list[DayUsage], samples: list[Sample]) -> list[dict[str, int | str]]:
    by_day: dict[str, dict[str, int | str]] = {}

    def row(day: str) -> dict[str, int | str]:
        return by_day.setdefault(
            day,
            {
                "date": day,
                "byte_hours": 0,
                "peak_stored_bytes": 0,
                "objects": 0,
                "tenants": 0,
                "requests_a": 0,
                "requests_b": 0,
                "requests_free": 0,
                "bytes_in": 0,
                "bytes_out": 0,
            },
        )

    for s in samples:
        day = f"{datetime.fromtimestamp(s.hour_us / 1e6, UTC):%Y-%m-%d}"
        r = row(day)
        r["byte_hours"] = int(r["byte_hours"]) + s.stored_bytes
        r["peak_stored_bytes"] = max(int(r["peak_stored_bytes"]), s.peak_bytes, s.stored_bytes)
        r["objects"] = s.object_count
        r["tenants"] = s.tenant_count
    for d in days:
        r = row(d.day)
        r.update(
            requests_a=d.requests_a,
            requests_b=d.requests_b,
            requests_free=d.requests_free,
            bytes_in=d.bytes_in,
            bytes_out=d.bytes_out,
        )
    return [by_day[day] for day in sorted(by_day)]


def _totals(days: Sequence[Mapping[str, int | str]]) -> dict[str, int]:
    totals = {name: sum(int(d[name]) for d in days) for name in ADDITIVE}
    totals["peak_stored_bytes"] = max((int(d["peak_stored_bytes"]) for d in days), default=0)
    totals["objects"] = int(days[-1]["objects"]) if days else 0
    totals["tenants"] = max((int(d["tenants"]) for d in days), default=0)
    return totals


@dataclass(frozen=True, slots=True)
class ReportContext:
    license: License | None
    partition: str
    region: str


def generate(
    store: SqliteLicensingStore,
    key: DeploymentKey,
    context: ReportContext,
    month: str,
    now: datetime,
) -> StoredReport:
    """The signed report for ``month`` (generated once, then the same document every time).

    Months are reported in order with none skipped, and only once they are over.
    """
    start, end = parse_month(month)
    existing = store.report(month)
    if existing is not None:
        return existing
    if end > now:
        raise ReportProblem(f"{month} is not over yet: a report covers a whole month")
    last = store.last_report()
    if last is not None and month < last.month:
        raise ReportProblem(f"a report for a later month ({last.month}) already exists")
    if last is not None and month != next_month(last.month):
        raise ReportProblem(
            f"the last report is for {last.month}: generate {next_month(last.month)} first, "
            "so the chain has no gap"
        )
    previous = json.loads(last.document)["payload"] if last else None
    last_day = f"{end - timedelta(days=1):%Y-%m-%d}"
    days, samples = store.usage(
        f"{start:%Y-%m-%d}", last_day, int(start.timestamp() * 1e6), int(end.timestamp() * 1e6)
    )
    rows = _aggregate(days, samples)
    totals = _totals(rows)
    before = previous["cumulative"] if previous else dict.fromkeys(ADDITIVE, 0)
    cumulative = {name: int(before[name]) + totals[name] for name in ADDITIVE}
    lic = context.license
    seq = last.seq + 1 if last else 1
    payload: dict[str, object] = {
        "seq": seq,
        "month": month,
        "previous_report_hash": last.hash if last else None,
        "license_id": lic.license_id if lic else None,
        "licensor": lic.licensor if lic else None,
        "deployment_id": key.deployment_id,
        "deployment_key": key.public_text,
        "partition": context.partition,
        "region": context.region,
        "onshore_version": __version__,
        "build_fingerprint": build_fingerprint(),
        "generated_at": f"{now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}",
        "sampled_hours": len(samples),
        "days": rows,
        "totals": totals,
        "cumulative": cumulative,
    }
    text = signing.canonical(signing.seal(FORMAT, payload, key.private)).decode()
    stored = StoredReport(month, seq, report_hash(text), text)
    store.save_report(stored, int(now.timestamp() * 1e6))
    return stored


@dataclass(frozen=True, slots=True)
class VerifiedReport:
    """A report whose signature and license checked out, with its chain facts typed."""

    payload: dict[str, object]
    hash: str
    seq: int
    month: str
    previous_hash: str | None
    totals: dict[str, int]
    cumulative: dict[str, int]


def _counters(value: object, names: tuple[str, ...], what: str) -> dict[str, int]:
    if not isinstance(value, dict) or not all(
        isinstance(value.get(n), int) and not isinstance(value.get(n), bool) for n in names
    ):
        raise ReportProblem(f"malformed report: {what} must hold integer counters")
    return {n: int(value[n]) for n in names}


def _facts(payload: dict[str, object], digest: str) -> VerifiedReport:
    seq, month, previous = (
        payload.get("seq"),
        payload.get("month"),
        payload.get("previous_report_hash"),
    )
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ReportProblem("malformed report: seq must be a positive integer")
    if not isinstance(month, str):
        raise ReportProblem("malformed report: month is missing")
    parse_month(month)
    if previous is not None and not isinstance(previous, str):
        raise ReportProblem("malformed report: previous_report_hash must be text or null")
    totals_names = (*ADDITIVE, "peak_stored_bytes", "objects", "tenants")
    totals = _counters(payload.get("totals"), totals_names, "totals")
    cumulative = _counters(payload.get("cumulative"), ADDITIVE, "cumulative")
    days = payload.get("days")
    if not isinstance(days, list):
        raise ReportProblem("malformed report: days must be a list")
    rows = [_counters(d, totals_names, "days") for d in days]
    if _totals(rows) != totals:
        raise ReportProblem("the report's totals do not match its days")
    return VerifiedReport(payload, digest, seq, month, previous, totals, cumulative)


def _open(text: str | bytes, lic: License, what: str) -> VerifiedReport:
    try:
        payload, signature = signing.parse_envelope(text, FORMAT)
    except signing.SignatureProblem as exc:
        raise ReportProblem(f"{what}: {exc}") from None
    expected = signing.parse_public_key(lic.deployment_key)
    message = FORMAT.encode() + b"\n" + signing.canonical(payload)
    try:
        expected.verify(signature, message)
    except InvalidSignature:
        claimed = payload.get("deployment_key")
        if (
            isinstance(claimed, str)
            and claimed != lic.deployment_key
            and _verifies(claimed, signature, message)
        ):
            raise ReportProblem(
                f"{what} is signed by another deployment ({claimed}), not the deployment "
                f"license {lic.license_id} was issued to: foreign key"
            ) from None
        raise ReportProblem(
            f"{what}: the signature does not verify with the licensed deployment key: "
            "the report was altered (an edited counter?) or forged"
        ) from None
    if payload.get("license_id") != lic.license_id:
        raise ReportProblem(
            f"{what} is for license {payload.get('license_id')!r}, not {lic.license_id!r}"
        )
    return _facts(payload, report_hash(text))


def _verifies(key_text: str, signature: bytes, message: bytes) -> bool:
    try:
        key: Ed25519PublicKey = signing.parse_public_key(key_text)
        key.verify(signature, message)
    except (signing.SignatureProblem, InvalidSignature):
        return False
    return True


def verify(text: str | bytes, lic: License, previous: str | bytes | None = None) -> VerifiedReport:
    """Check a report's signature and license, and its place in the chain (see the module doc)."""
    r = _open(text, lic, "the report")
    if previous is None:
        if r.seq != 1 or r.previous_hash is not None:
            raise ReportProblem(
                f"report #{r.seq} follows an earlier report: pass the previous report "
                "to check the chain"
            )
        if r.cumulative != {k: r.totals[k] for k in ADDITIVE}:
            raise ReportProblem("the first report's cumulative counters do not match its totals")
        return r
    q = _open(previous, lic, "the previous report")
    if r.hash == q.hash or r.month == q.month:
        raise ReportProblem(f"replay: a report for {r.month} was already accepted")
    if r.month < q.month or r.seq < q.seq:
        raise ReportProblem(
            f"rollback: this report ({r.month}, #{r.seq}) is older than the previous "
            f"one ({q.month}, #{q.seq})"
        )
    expected_month = next_month(q.month)
    if r.month != expected_month or r.seq != q.seq + 1:
        raise ReportProblem(
            f"gap: the report after {q.month} (#{q.seq}) should be {expected_month} "
            f"(#{q.seq + 1}), got {r.month} (#{r.seq})"
        )
    if r.previous_hash != q.hash:
        raise ReportProblem("the report does not chain to the previous report (hash mismatch)")
    for name in ADDITIVE:
        if r.cumulative[name] < q.cumulative[name]:
            raise ReportProblem(
                f"counter {name} went backwards ({q.cumulative[name]} → {r.cumulative[name]})"
            )
        if r.cumulative[name] != q.cumulative[name] + r.totals[name]:
            raise ReportProblem(f"cumulative counter {name} does not add up")
    return r


def royalty_summary(report: VerifiedReport) -> str:
    """A human summary of what the licensor bills on (usage, not money: rates are contractual)."""
    p, t = report.payload, report.totals
    start, end = parse_month(report.month)
    hours = (end - start).total_seconds() / 3600
    gib = 1024**3
    lines = [
        f"usage report #{p['seq']} for {p['month']}",
        f"  license          {p['license_id']} ({p['licensor']})",
        f"  deployment       {p['deployment_id']} ({p['partition']}, {p['region']})",
        f"  onshore          {p['onshore_version']} build {str(p['build_fingerprint'])[:16]}",
        f"  storage          {t['byte_hours'] / hours / gib:.3f} GiB-months average, "
        f"peak {t['peak_stored_bytes'] / gib:.3f} GiB, {t['objects']} objects",
        f"  tenants          {t['tenants']} (peak)",
        f"  requests         class A {t['requests_a']}, class B {t['requests_b']}, "
        f"free {t['requests_free']}",
        f"  transfer         in {t['bytes_in'] / gib:.3f} GiB, out {t['bytes_out'] / gib:.3f} GiB",
        f"  sampled hours    {p['sampled_hours']} of {int(hours)}",
    ]
    return "\n".join(lines)
