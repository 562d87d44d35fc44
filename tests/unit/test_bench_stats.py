"""Counting and summarising benchmark operations."""

from __future__ import annotations

import math

from onshore.bench.stats import Tally, median, merge_tallies, percentile, summarise


def test_nearest_rank_percentile() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile(values, 0) == 1
    assert percentile([7.0], 99) == 7
    assert math.isnan(percentile([], 50))


def test_tallies_merge_counts_bytes_errors_and_latencies() -> None:
    a, b = Tally(), Tally()
    a.ok(0.001, 4096)
    a.error("503", 0.002)
    b.ok(0.003, 4096, items=10)
    b.error("503")
    b.error("checksum", 0.004)
    merged = merge_tallies([{"GET": a}, {"GET": b, "PUT": Tally()}])
    get = merged["GET"]
    assert (get.ops, get.bytes, get.items) == (2, 8192, 10)
    assert get.errors == {"503": 2, "checksum": 1}
    assert get.error_count == 3
    assert sorted(get.latencies) == [0.001, 0.002, 0.003, 0.004]
    assert merged["PUT"].ops == 0


def test_summary_rates_and_latencies() -> None:
    tally = Tally()
    for i in range(100):
        tally.ok((i + 1) / 1000, 1_000_000, items=1000)
    tally.error("500", 0.5)
    row = summarise("medium", "GET", tally, 2.0, 8, count_items=True)
    assert row.ops == 100 and row.errors == 1 and row.errors_by_kind == {"500": 1}
    assert row.ops_per_s == 50
    assert row.mb_per_s == 50  # 10^6 bytes per second
    assert row.items_per_s == 50_000
    assert row.p50_ms == 51  # the error's latency counts too: 101 samples
    assert row.p99_ms == 100
    assert row.to_json()["p50_ms"] == 51


def test_empty_tally_summarises_without_crashing() -> None:
    row = summarise("small", "PUT", Tally(), 0.0, 32)
    assert row.ops == 0 and math.isnan(row.p50_ms)
    assert row.to_json()["p50_ms"] is None
    assert row.items_per_s is None


def test_median_ignores_nan() -> None:
    assert median([3.0, 1.0, 2.0]) == 2
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert median([math.nan, 5.0]) == 5
    assert math.isnan(median([]))
