"""Exporting the trail: JSON Lines segments and signed digests, verifiable offline.

Layout of an export directory::

    segments/<firstSeq>-<lastSeq>.jsonl   one file per digest interval, one record per line:
        {"alg", "event", "hash", "prevHash", "seq"}      (event: the record, canonical JSON)
        {"alg", "hash", "omitted": true, "prevHash", "seq"}   (tenant exports: another
                                                                account's record, hashes only)
    digests/<digestSeq>.json              {"payload": {...}, "signature": "<base64 Ed25519>"}
    manifest.json                         what was asked for (informational, not trusted)

Only records covered by a signed digest are exported (newer ones wait for the next digest, at
most ``audit_digest_minutes`` away, or the one signed at shutdown), so every exported record can
be checked against a signature. A time range selects the digest intervals that overlap it, whole:
verification needs every record of an interval to recompute its head hash.

**Tenant exports** (``--tenant``) keep the chain verifiable without showing other accounts'
events: each such record is replaced by its ``seq``, ``prevHash`` and ``hash`` only. The verifier
checks every link and recomputes the hashes of the tenant's own records, so none of them can
have been changed, reordered, inserted or dropped without breaking the chain or a signed head.
What a tenant cannot check alone is that an omitted record is really another account's: the
trail's operator could mislabel one of the tenant's records as omitted. An auditor holding the
full export can (see ``docs/audit.md``).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from onshore.service.audit.events import accounts_of
from onshore.storage.sqlite import audit as sql

__all__ = ["ExportSummary", "export"]


@dataclass(frozen=True, slots=True)
class ExportSummary:
    records: int
    omitted: int
    digests: int
    first_seq: int
    last_seq: int
    unsigned_after: int  # records newer than the last digest, not exported


def _record_line(event: sql.StoredEvent) -> str:
    return (
        f'{{"alg":"{event.alg}","event":{event.event},"hash":"{event.hash.hex()}",'
        f'"prevHash":"{event.prev_hash.hex()}","seq":{event.seq}}}'
    )


def _omitted_line(event: sql.StoredEvent) -> str:
    return (
        f'{{"alg":"{event.alg}","hash":"{event.hash.hex()}","omitted":true,'
        f'"prevHash":"{event.prev_hash.hex()}","seq":{event.seq}}}'
    )


def export(
    conn: sqlite3.Connection,
    target: Path,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    tenant: str | None = None,
) -> ExportSummary:
    """Write the digest intervals overlapping ``[start_ms, end_ms)`` to ``target``, in one read
    transaction (a consistent snapshot while the server keeps appending)."""
    conn.execute("BEGIN")
    try:
        return _export(conn, target, start_ms, end_ms, tenant)
    finally:
        conn.execute("COMMIT")


def _export(
    conn: sqlite3.Connection,
    target: Path,
    start_ms: int | None,
    end_ms: int | None,
    tenant: str | None,
) -> ExportSummary:
    all_digests = sql.digests(conn)
    head_seq, _ = sql.head(conn)
    signed_to = all_digests[-1].last_seq if all_digests else 0
    chosen = [d for d in all_digests if _overlaps(d, start_ms, end_ms)]
    segments = target / "segments"
    digest_dir = target / "digests"
    segments.mkdir(parents=True, exist_ok=True)
    digest_dir.mkdir(parents=True, exist_ok=True)
    records = omitted = 0
    if chosen:  # every digest between the first and last chosen, so the digest chain is whole
        chosen = [d for d in all_digests if chosen[0].seq <= d.seq <= chosen[-1].seq]
    for digest in chosen:
        (digest_dir / f"{digest.seq:08d}.json").write_text(
            '{"payload":' + digest.payload + ',"signature":"' + digest.signature + '"}\n',
            encoding="utf-8",
        )
        if digest.last_seq < digest.first_seq:
            continue
        path = segments / f"{digest.first_seq:012d}-{digest.last_seq:012d}.jsonl"
        with path.open("w", encoding="utf-8") as out:
            for event in sql.events(conn, digest.first_seq, digest.last_seq):
                if tenant is not None and tenant not in accounts_of(event.event):
                    out.write(_omitted_line(event) + "\n")
                    omitted += 1
                else:
                    out.write(_record_line(event) + "\n")
                    records += 1
    manifest = {
        "from": start_ms,
        "to": end_ms,
        "tenant": tenant,
        "records": records,
        "omitted": omitted,
        "digests": len(chosen),
    }
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return ExportSummary(
        records=records,
        omitted=omitted,
        digests=len(chosen),
        first_seq=chosen[0].first_seq if chosen else 0,
        last_seq=chosen[-1].last_seq if chosen else 0,
        unsigned_after=max(0, head_seq - signed_to),
    )


def _overlaps(digest: sql.DigestRow, start_ms: int | None, end_ms: int | None) -> bool:
    if start_ms is None and end_ms is None:
        return True
    lo, hi = start_ms or 0, end_ms if end_ms is not None else 2**62
    if digest.last_seq < digest.first_seq:
        return lo <= digest.time_ms < hi
    payload = json.loads(digest.payload)  # startTime/endTime: the interval's record times
    return _ms(payload["startTime"]) < hi and _ms(payload["endTime"]) >= lo


def _ms(iso: str) -> int:
    moment = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)
