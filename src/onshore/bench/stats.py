"""Counting operations and summarising them: what a row of the results means.

A *tally* collects, for one operation (say the GETs of the small workload), the successful count,
bytes moved, listed items, each request's latency and errors by kind: an HTTP status (``"404"``),
``"checksum"`` for a body that does not match what was written, ``"size"`` for a wrong length,
``"connection"`` or ``"timeout"``. Each worker process fills its own tallies; the parent merges
them.

A *row* is the summary the report and JSON show. Rates divide by the phase's wall time, from the
common start instant to the moment the last worker finished, so they are what the server sustained
with every process and connection busy. Latency percentiles use the nearest-rank method over every
request (successful or not): no sampling, no histogram buckets.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

MIB = 1024 * 1024


@dataclass
class Tally:
    ops: int = 0
    bytes: int = 0
    items: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies: array[float] = field(default_factory=lambda: array("d"))

    def ok(self, latency: float, nbytes: int = 0, items: int = 0) -> None:
        self.ops += 1
        self.bytes += nbytes
        self.items += items
        self.latencies.append(latency)

    def error(self, kind: str, latency: float | None = None) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if latency is not None:
            self.latencies.append(latency)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def merge(self, other: Tally) -> None:
        self.ops += other.ops
        self.bytes += other.bytes
        self.items += other.items
        for kind, n in other.errors.items():
            self.errors[kind] = self.errors.get(kind, 0) + n
        self.latencies.extend(other.latencies)


def merge_tallies(parts: Iterable[dict[str, Tally]]) -> dict[str, Tally]:
    merged: dict[str, Tally] = {}
    for part in parts:
        for op, tally in part.items():
            merged.setdefault(op, Tally()).merge(tally)
    return merged


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of an ascending sequence; NaN when empty."""
    if not sorted_values:
        return math.nan
    rank = math.ceil(q / 100 * len(sorted_values))
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]


@dataclass
class Row:
    """One line of results: a workload's operation, summarised."""

    workload: str
    op: str
    ops: int
    errors: int
    errors_by_kind: dict[str, int]
    seconds: float
    ops_per_s: float
    mb_per_s: float
    items_per_s: float | None
    bytes: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    concurrency: int
    client_cpu_s_per_1k_ops: float | None = None
    server_cpu_s_per_1k_ops: float | None = None
    server_peak_rss_mib: float | None = None
    server_peak_pss_mib: float | None = None
    server_busiest_share: float | None = None  # see onshore.bench.procstat

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in data.items()}


def summarise(
    workload: str,
    op: str,
    tally: Tally,
    seconds: float,
    concurrency: int,
    *,
    count_items: bool = False,
) -> Row:
    """Turn a merged tally into a row; MB/s is decimal megabytes (10^6 bytes) per second."""
    lat = sorted(tally.latencies)
    seconds = max(seconds, 1e-9)
    return Row(
        workload=workload,
        op=op,
        ops=tally.ops,
        errors=tally.error_count,
        errors_by_kind=dict(sorted(tally.errors.items())),
        seconds=round(seconds, 4),
        ops_per_s=tally.ops / seconds,
        mb_per_s=tally.bytes / seconds / 1e6,
        items_per_s=(tally.items / seconds) if count_items else None,
        bytes=tally.bytes,
        p50_ms=percentile(lat, 50) * 1e3,
        p99_ms=percentile(lat, 99) * 1e3,
        mean_ms=(sum(lat) / len(lat) * 1e3) if lat else math.nan,
        concurrency=concurrency,
    )


def median(values: Sequence[float]) -> float:
    """The median of the finite values; NaN if there are none."""
    finite = sorted(v for v in values if not math.isnan(v))
    if not finite:
        return math.nan
    mid = len(finite) // 2
    return finite[mid] if len(finite) % 2 else (finite[mid - 1] + finite[mid]) / 2
