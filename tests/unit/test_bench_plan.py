"""Workload planning: the issue's shapes at scale 1, and what --scale and --concurrency do."""

from __future__ import annotations

import pytest

from onshore.bench.plan import (
    GIB,
    KIB,
    MIB,
    MIN_PART,
    make_plan,
    mixed_size,
    parse_concurrency,
    parse_workloads,
    split,
)


def test_full_scale_is_the_issue_workload() -> None:
    plan = make_plan(1.0)
    assert (plan.small_objects, plan.small_size, plan.small_concurrency) == (5000, 4 * KIB, 32)
    assert (plan.medium_size, plan.medium_concurrency) == (MIB, 8)
    assert plan.large_size == 512 * MIB
    assert plan.multipart_size == GIB and plan.part_size == 16 * MIB
    assert plan.parts == [16 * MIB] * 64
    assert plan.multipart_concurrency == 4
    assert plan.list_keys == 20_000 and plan.list_prefixes == 200
    assert (plan.mixed_min_size, plan.mixed_max_size) == (4 * KIB, MIB)


@pytest.mark.parametrize("scale", [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 2.0])
def test_scaled_plans_stay_valid(scale: float) -> None:
    plan = make_plan(scale)
    assert plan.small_objects >= 1 and plan.medium_objects >= 1
    assert plan.large_size >= MIB and plan.large_size % MIB == 0
    parts = plan.parts
    assert len(parts) >= 2
    assert all(size >= MIN_PART for size in parts[:-1])
    assert sum(parts) == plan.multipart_size
    assert plan.mixed_objects >= 10
    assert plan.small_size == 4 * KIB  # sizes of small and medium never scale


def test_smoke_scale_is_small() -> None:
    plan = make_plan(0.01)
    assert plan.small_objects == 50
    assert plan.large_size == 5 * MIB
    assert plan.multipart_size <= 16 * MIB
    assert plan.list_keys == 200


def test_concurrency_overrides() -> None:
    assert parse_concurrency(None) == {}
    assert parse_concurrency("16")["small"] == 16
    assert parse_concurrency("small=64,mixed=8") == {"small": 64, "mixed": 8}
    plan = make_plan(1.0, concurrency={"small": 64, "large": 2})
    assert plan.small_concurrency == 64 and plan.multipart_concurrency == 2
    with pytest.raises(ValueError):
        make_plan(1.0, concurrency={"tiny": 3})
    with pytest.raises(ValueError):
        make_plan(1.0, concurrency={"small": 0})
    with pytest.raises(ValueError):
        make_plan(0)


def test_workload_names() -> None:
    assert parse_workloads("small, list") == ["small", "list"]
    with pytest.raises(ValueError, match="huge"):
        parse_workloads("small,huge")


def test_split_is_even_and_complete() -> None:
    assert split(32, 2) == [16, 16]
    assert split(5, 2) == [3, 2]
    assert split(1, 3) == [1, 0, 0]
    assert sum(split(17, 4)) == 17


def test_mixed_sizes_are_log_uniform_within_bounds() -> None:
    low, high = 4 * KIB, MIB
    assert mixed_size(0.0, low, high) == low
    assert mixed_size(0.999999, low, high) <= high
    assert mixed_size(0.5, low, high) == 64 * KIB  # the geometric middle


def test_list_keys_override() -> None:
    plan = make_plan(0.01, list_keys=100_000)
    assert plan.list_keys == 100_000 and plan.list_prefixes == 1000
    assert plan.small_objects == 50  # the rest stays scaled
    with pytest.raises(ValueError):
        make_plan(1.0, list_keys=10)
