"""Verifying an export with nothing but its files and the audit public key.

The checks, in order (the export layout is described in :mod:`.export`):

1. **Digests.** Each digest's signature must verify with the public key; one that does not is
   reported as signed by *another key* when it names a different key fingerprint, otherwise as a
   *bad signature* (its content was changed). Consecutive digests must chain:
   ``previousDigestHash`` is the hash of the previous payload, ``digestSeq`` increases by one,
   and each interval starts right after the previous one (``firstSeq``, ``startPrevHash``) —
   otherwise a digest was removed or replaced (*digest gap*). The first digest of a partial
   export is the anchor: what came before it is outside the export.
2. **Order.** Records must appear in strictly increasing ``seq``; one that does not is
   *reordered* (or, if it repeats a seq, one of the two was *inserted*).
3. **Records.** Each full record's hash is recomputed, ``H(prevHash || canonical(event))``:
   a mismatch is a *changed* record. Each record must link to its predecessor
   (``prevHash`` = the previous record's ``hash``): a missing seq is a *removed* record; a broken
   link between consecutive seqs means the predecessor was changed and re-hashed, or replaced.
4. **Coverage.** Every digest's head hash must be the hash of its last record and its count must
   match; records a digest covers that are missing at the end of the export are *truncated*;
   records no digest covers are *unsigned* (inserted, or their digest was removed).

Omitted records (tenant exports) carry only hashes: their links are checked, their content
cannot be. Nor can an export say for itself that it is whole: a record replaced by its hashes, or
the first intervals left out (digests and records), leaves a chain that links. So the auditor
says what they expect: with ``complete`` (``--complete``), the export must be the whole trail
from its start, and any omitted record is *omitted*, a first digest other than the trail's
first (``digestSeq`` 1, no previous digest, starting at record 1 after the genesis hash) a
*digest gap*. Without it, the report says where the export starts (:attr:`Report.first_digest`)
and how many records it omits.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from onshore.service.audit.events import canonical
from onshore.service.audit.integrity import (
    chain_hash,
    digest_of,
    fingerprint_of,
    signature_valid,
)

__all__ = ["Finding", "Kind", "Report", "verify"]

GENESIS_HEX = "00" * 32


class Kind(str, Enum):
    CHANGED = "changed record"
    REMOVED = "removed record"
    INSERTED = "inserted record"
    REORDERED = "reordered record"
    TRUNCATED = "truncated"
    UNSIGNED = "unsigned record"
    DIGEST_GAP = "gap between digests"
    BAD_SIGNATURE = "bad digest signature"
    OTHER_KEY = "digest signed by another key"
    DIGEST_MISMATCH = "digest does not match records"
    OMITTED = "omitted record"
    MALFORMED = "malformed file"


@dataclass(frozen=True, slots=True)
class Finding:
    kind: Kind
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind.name.lower(), "message": self.message}


@dataclass(slots=True)
class Report:
    findings: list[Finding] = field(default_factory=list)
    records: int = 0
    omitted: int = 0
    digests: int = 0
    first_seq: int = 0
    last_seq: int = 0
    first_digest: int = 0  # the digestSeq the export starts at (1: the trail's first)

    @property
    def ok(self) -> bool:
        return not self.findings

    def add(self, kind: Kind, message: str) -> None:
        self.findings.append(Finding(kind, message))


@dataclass(slots=True)
class _Line:
    seq: int
    alg: str
    prev_hash: str
    hash: str
    event: dict[str, Any] | None  # None: omitted (another account's record)
    where: str


@dataclass(slots=True)
class _Digest:
    payload: dict[str, Any]
    signature: str
    where: str

    def get_int(self, name: str) -> int:
        value = self.payload.get(name)
        return value if isinstance(value, int) else -1


def verify(directory: Path, public_key: Ed25519PublicKey, *, complete: bool = False) -> Report:
    """Check the export in ``directory`` (see the module docstring); ``complete``: it must be
    the whole trail from its first record, every record's content included."""
    report = Report()
    digests = _read_digests(directory / "digests", report)
    lines = list(_read_lines(directory / "segments", report))
    _check_digests(digests, public_key, report)
    ordered = _check_order(lines, report)
    by_seq = _check_records(ordered, report)
    _check_coverage(digests, by_seq, ordered, report)
    if digests:
        report.first_digest = digests[0].get_int("digestSeq")
    if complete:
        _check_complete(digests, ordered, report)
    report.records = sum(1 for line in ordered if line.event is not None)
    report.omitted = sum(1 for line in ordered if line.event is None)
    report.digests = len(digests)
    if ordered:
        report.first_seq, report.last_seq = ordered[0].seq, ordered[-1].seq
    return report


# --- reading ------------------------------------------------------------------------------------
def _read_digests(folder: Path, report: Report) -> list[_Digest]:
    found: list[_Digest] = []
    if not folder.is_dir():
        report.add(Kind.MALFORMED, f"{folder} is missing: no digests to verify against")
        return found
    for path in sorted(folder.glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            payload, signature = doc["payload"], doc["signature"]
            if not isinstance(payload, dict) or not isinstance(signature, str):
                raise TypeError("payload must be an object and signature a string")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            report.add(Kind.MALFORMED, f"{path.name}: not a digest ({exc})")
            continue
        found.append(_Digest(payload, signature, path.name))
    if not found:
        report.add(Kind.MALFORMED, "the export holds no digest: nothing is signed")
    return found


def _read_lines(folder: Path, report: Report) -> Iterator[_Line]:
    if not folder.is_dir():
        report.add(Kind.MALFORMED, f"{folder} is missing: no records")
        return
    for path in sorted(folder.glob("*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            for number, text in enumerate(handle, 1):
                where = f"{path.name}:{number}"
                if not text.strip():
                    continue
                try:
                    doc = json.loads(text)
                    event = None if doc.get("omitted") is True else doc["event"]
                    line = _Line(
                        int(doc["seq"]),
                        str(doc["alg"]),
                        str(doc["prevHash"]),
                        str(doc["hash"]),
                        event,
                        where,
                    )
                    if event is not None and not isinstance(event, dict):
                        raise TypeError("event is not an object")
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    report.add(Kind.MALFORMED, f"{where}: unreadable record ({exc})")
                    continue
                yield line


# --- digests ------------------------------------------------------------------------------------
def _check_digests(digests: list[_Digest], public_key: Ed25519PublicKey, report: Report) -> None:
    ours = fingerprint_of(public_key)
    previous: _Digest | None = None
    for digest in digests:
        payload = digest.payload
        text = canonical(payload).encode("utf-8")
        label = f"digest {payload.get('digestSeq')} ({digest.where})"
        if not signature_valid(public_key, text, digest.signature):
            named = payload.get("keyFingerprint")
            if named != ours:
                report.add(
                    Kind.OTHER_KEY,
                    f"{label} is signed by another key (fingerprint {named}, "
                    f"the given public key is {ours})",
                )
            else:
                report.add(Kind.BAD_SIGNATURE, f"{label}: the signature does not match its content")
        if digest.get_int("count") != digest.get_int("lastSeq") - digest.get_int("firstSeq") + 1:
            report.add(Kind.DIGEST_MISMATCH, f"{label}: count does not match firstSeq..lastSeq")
        if previous is not None:
            _check_digest_link(previous, digest, label, report)
        previous = digest


def _check_digest_link(previous: _Digest, digest: _Digest, label: str, report: Report) -> None:
    before, payload = previous.payload, digest.payload
    alg = str(before.get("hashAlgorithm", "sha256"))
    try:
        expected = digest_of(alg, canonical(before).encode("utf-8")).hex()
    except ValueError:
        expected = ""
    seq, prev_seq = digest.get_int("digestSeq"), previous.get_int("digestSeq")
    if seq <= prev_seq:
        report.add(Kind.DIGEST_GAP, f"{label} comes after digest {prev_seq}: digests reordered")
        return
    if seq != prev_seq + 1:
        report.add(
            Kind.DIGEST_GAP,
            f"digests {prev_seq + 1}..{seq - 1} are missing (between {previous.where} and "
            f"{digest.where})",
        )
    elif payload.get("previousDigestHash") != expected:
        report.add(
            Kind.DIGEST_GAP,
            f"{label} does not chain to digest {prev_seq}: a digest was replaced",
        )
    first, prev_last = digest.get_int("firstSeq"), previous.get_int("lastSeq")
    if first != prev_last + 1:
        report.add(
            Kind.DIGEST_GAP,
            f"{label} starts at record {first} but digest {prev_seq} ended at {prev_last}: "
            f"records {prev_last + 1}..{first - 1} are covered by no digest"
            if first > prev_last + 1
            else f"{label} overlaps digest {prev_seq} (starts at record {first})",
        )
    elif payload.get("startPrevHash") != before.get("headHash"):
        report.add(Kind.DIGEST_GAP, f"{label} does not continue digest {prev_seq}'s head hash")


# --- records ------------------------------------------------------------------------------------
def _check_order(lines: list[_Line], report: Report) -> list[_Line]:
    """Report records out of order or repeated; return them in seq order, one per seq (for a
    repeated seq, the one whose link fits is kept)."""
    highest = 0
    for line in lines:
        if line.seq < highest:
            report.add(
                Kind.REORDERED, f"record {line.seq} ({line.where}) appears after record {highest}"
            )
        highest = max(highest, line.seq)
    by_seq: dict[int, list[_Line]] = {}
    for line in lines:
        by_seq.setdefault(line.seq, []).append(line)
    ordered: list[_Line] = []
    for seq in sorted(by_seq):
        candidates = by_seq[seq]
        if len(candidates) == 1:
            ordered.append(candidates[0])
            continue
        prev_hash = ordered[-1].hash if ordered and ordered[-1].seq == seq - 1 else None
        following = by_seq.get(seq + 1)
        next_prev = following[0].prev_hash if following else None
        fits = [
            c
            for c in candidates
            if (prev_hash is None or c.prev_hash == prev_hash)
            and (next_prev is None or c.hash == next_prev)
            and _hash_ok(c)
        ]
        keep = fits[0] if fits else candidates[0]
        for other in candidates:
            if other is not keep:
                report.add(
                    Kind.INSERTED,
                    f"record {seq} at {other.where} is an extra record: "
                    f"{keep.where} holds the record {seq} the chain links",
                )
        ordered.append(keep)
    return ordered


def _hash_ok(line: _Line) -> bool:
    if line.event is None:
        return True
    try:
        prev = bytes.fromhex(line.prev_hash)
        computed = chain_hash(line.alg, prev, canonical(line.event).encode("utf-8"))
    except ValueError:
        return False
    return computed.hex() == line.hash


def _check_records(ordered: list[_Line], report: Report) -> dict[int, _Line]:
    previous: _Line | None = None
    for line in ordered:
        if not _hash_ok(line):
            report.add(
                Kind.CHANGED,
                f"record {line.seq} ({line.where}) was changed: its content does not hash to "
                "its recorded hash",
            )
        if previous is not None:
            if line.seq > previous.seq + 1:
                report.add(
                    Kind.REMOVED,
                    f"records {previous.seq + 1}..{line.seq - 1} are missing "
                    f"(between {previous.where} and {line.where})"
                    if line.seq > previous.seq + 2
                    else f"record {previous.seq + 1} is missing "
                    f"(between {previous.where} and {line.where})",
                )
            elif line.prev_hash != previous.hash:
                report.add(
                    Kind.CHANGED,
                    f"record {previous.seq} ({previous.where}) was changed or replaced: "
                    f"record {line.seq} does not link to it",
                )
        previous = line
    return {line.seq: line for line in ordered}


def _check_coverage(
    digests: list[_Digest], by_seq: dict[int, _Line], ordered: list[_Line], report: Report
) -> None:
    covered: set[int] = set()
    last_line = ordered[-1].seq if ordered else 0
    for digest in digests:
        first, last = digest.get_int("firstSeq"), digest.get_int("lastSeq")
        label = f"digest {digest.payload.get('digestSeq')}"
        if last < first:
            continue
        covered.update(range(first, last + 1))
        head = by_seq.get(last)
        start = by_seq.get(first)
        if start is None and ordered and first < ordered[0].seq <= last:
            report.add(
                Kind.REMOVED,
                f"records {first}..{ordered[0].seq - 1} signed by {label} are missing at the "
                "start of the export",
            )
        if start is not None and start.prev_hash != digest.payload.get("startPrevHash"):
            report.add(
                Kind.DIGEST_MISMATCH,
                f"record {first} does not link to the start of {label} (its predecessor was "
                "changed, or records were inserted before it)",
            )
        if head is None:
            if last > last_line:
                report.add(
                    Kind.TRUNCATED,
                    f"records {max(first, last_line + 1)}..{last} signed by {label} are missing "
                    "at the end of the export",
                )
            continue
        if head.hash != digest.payload.get("headHash"):
            report.add(
                Kind.DIGEST_MISMATCH,
                f"record {last} ({head.where}) is not the head {label} signed: records of that "
                "interval were changed",
            )
    unsigned = [line for line in ordered if line.seq not in covered]
    if unsigned:
        seqs = f"{unsigned[0].seq}..{unsigned[-1].seq}" if len(unsigned) > 1 else unsigned[0].seq
        report.add(
            Kind.UNSIGNED,
            f"{len(unsigned)} record(s) ({seqs}) are covered by no digest: inserted, or their "
            "digest was removed",
        )


def _check_complete(digests: list[_Digest], ordered: list[_Line], report: Report) -> None:
    """What an export claimed whole must also hold: the trail's first digest, and every
    record's content."""
    if digests:
        first = digests[0]
        payload = first.payload
        seq = first.get_int("digestSeq")
        if seq != 1:
            report.add(
                Kind.DIGEST_GAP,
                f"digests 1..{seq - 1} are missing: the export starts at digest {seq} "
                f"({first.where}), not at the trail's beginning",
            )
        elif (
            payload.get("previousDigestHash") is not None
            or first.get_int("firstSeq") != 1
            or payload.get("startPrevHash") != GENESIS_HEX
        ):
            report.add(
                Kind.DIGEST_GAP,
                f"digest 1 ({first.where}) does not start the trail (a previous digest, a first "
                "record other than 1, or a start other than the genesis hash)",
            )
    omitted = [line for line in ordered if line.event is None]
    if omitted:
        seqs = ", ".join(str(line.seq) for line in omitted[:10])
        more = f" and {len(omitted) - 10} more" if len(omitted) > 10 else ""
        report.add(
            Kind.OMITTED,
            f"{len(omitted)} record(s) hold only their hashes ({seqs}{more}, e.g. "
            f"{omitted[0].where}): a complete export holds every record's content",
        )
