"""Workload definitions and how ``--scale`` and ``--concurrency`` shape them. Pure: no I/O.

At scale 1 the workloads are the ones issue 3 specifies:

========  ==================================================================  ===========
workload  operations                                                          concurrency
========  ==================================================================  ===========
small     5,000 objects of 4 KiB: PUT all, GET all, HEAD all, DELETE all       32
medium    512 objects of 1 MiB: PUT all, GET all (then cleanup)                8
large     one 512 MiB object PUT then GET, streamed; a 1 GiB multipart upload  1 / 4
          of 16 MiB parts, read back by GET
list      20,000 empty objects under 200 prefixes; 3 full ListObjectsV2 walks  32 (fill), 1
          of 1,000-key pages; a delimiter listing of the root then of each
          prefix
mixed     1,000 objects of 4 KiB-1 MiB (log-uniform), then ``--duration``      16
          seconds of 70% GET, 20% PUT, 5% LIST, 5% DELETE
limits    disk, hashing and a trivial HTTP responder (see ``limits.py``)      32
========  ==================================================================  ===========

``--scale`` multiplies object counts, and the sizes of the large workload (so ``--scale 0.01`` is a
smoke run of seconds). Small and medium sizes never change: a 4 KiB object is what the small
workload means. Multipart parts stay at least 5 MiB, S3's minimum for every part but the last.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
MIN_PART = 5 * MIB

WORKLOADS = ("small", "medium", "large", "list", "mixed", "limits")
DEFAULT_WORKLOADS = ("small", "medium", "large", "list", "mixed")


@dataclass(frozen=True)
class Plan:
    """Every count, size and concurrency the run will use."""

    small_objects: int = 5000
    small_size: int = 4 * KIB
    small_concurrency: int = 32
    medium_objects: int = 512
    medium_size: int = MIB
    medium_concurrency: int = 8
    large_size: int = 512 * MIB
    multipart_size: int = GIB
    part_size: int = 16 * MIB
    multipart_concurrency: int = 4
    list_prefixes: int = 200
    keys_per_prefix: int = 100
    list_walks: int = 3
    list_fill_concurrency: int = 32
    mixed_objects: int = 1000
    mixed_min_size: int = 4 * KIB
    mixed_max_size: int = MIB
    mixed_concurrency: int = 16
    mixed_seconds: float = 30.0
    limits_requests: int = 100_000
    limits_concurrency: int = 32
    limits_disk_bytes: int = 256 * MIB
    limits_fsync_files: int = 500
    phase_timeout: float = 300.0

    @property
    def list_keys(self) -> int:
        return self.list_prefixes * self.keys_per_prefix

    @property
    def parts(self) -> list[int]:
        """Sizes of the multipart upload's parts, in order (the last may be shorter)."""
        full, rest = divmod(self.multipart_size, self.part_size)
        return [self.part_size] * full + ([rest] if rest else [])

    def concurrency(self, workload: str) -> int:
        return {
            "small": self.small_concurrency,
            "medium": self.medium_concurrency,
            "large": self.multipart_concurrency,
            "list": self.list_fill_concurrency,
            "mixed": self.mixed_concurrency,
            "limits": self.limits_concurrency,
        }[workload]


def _scaled(n: int, scale: float, minimum: int = 1) -> int:
    return max(minimum, round(n * scale))


def make_plan(
    scale: float = 1.0,
    *,
    mixed_seconds: float = 30.0,
    phase_timeout: float = 300.0,
    concurrency: Mapping[str, int] | None = None,
    list_keys: int | None = None,
) -> Plan:
    """The plan for ``scale``, with per-workload concurrency overrides (``{"small": 64}``) and,
    with ``list_keys``, a list bucket of that many keys whatever the scale (100 per prefix), to
    show how listing speed holds as a bucket grows."""
    if not (0 < scale <= 100):
        raise ValueError("scale must be in (0, 100]")
    base = Plan()
    large = max(MIB, (round(base.large_size * scale) // MIB) * MIB)
    parts = max(2, round(base.multipart_size * scale / base.part_size))
    multipart = max(parts * MIN_PART, (round(base.multipart_size * scale) // MIB) * MIB)
    part_size = max(MIN_PART, math.ceil(multipart / parts / MIB) * MIB)
    plan = replace(
        base,
        small_objects=_scaled(base.small_objects, scale),
        medium_objects=_scaled(base.medium_objects, scale),
        large_size=large,
        multipart_size=multipart,
        part_size=part_size,
        list_prefixes=_scaled(base.list_prefixes, scale),
        mixed_objects=_scaled(base.mixed_objects, scale, minimum=10),
        mixed_seconds=mixed_seconds,
        limits_requests=_scaled(base.limits_requests, scale, minimum=20_000),
        limits_disk_bytes=max(16 * MIB, (round(base.limits_disk_bytes * scale) // MIB) * MIB),
        limits_fsync_files=_scaled(base.limits_fsync_files, scale, minimum=20),
        phase_timeout=phase_timeout,
    )
    if list_keys is not None:
        if list_keys < 100:
            raise ValueError("--list-keys must be at least 100")
        plan = replace(plan, list_prefixes=math.ceil(list_keys / plan.keys_per_prefix))
    for name, value in (concurrency or {}).items():
        if value < 1:
            raise ValueError(f"concurrency for {name} must be at least 1")
        field_name = {
            "small": "small_concurrency",
            "medium": "medium_concurrency",
            "large": "multipart_concurrency",
            "list": "list_fill_concurrency",
            "mixed": "mixed_concurrency",
            "limits": "limits_concurrency",
        }.get(name)
        if field_name is None:
            raise ValueError(f"unknown workload {name!r} in --concurrency")
        plan = replace(plan, **{field_name: value})
    return plan


def parse_concurrency(text: str | None) -> dict[str, int]:
    """``"16"`` sets every workload; ``"small=64,mixed=8"`` sets some."""
    if not text:
        return {}
    if "=" not in text:
        return {name: int(text) for name in WORKLOADS}
    result: dict[str, int] = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        result[name.strip()] = int(value)
    return result


def parse_workloads(text: str) -> list[str]:
    names = [w.strip() for w in text.split(",") if w.strip()]
    unknown = [w for w in names if w not in WORKLOADS]
    if unknown:
        raise ValueError(
            f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}"
        )
    return names


def split(total: int, workers: int) -> list[int]:
    """Share ``total`` (connections, say) among ``workers`` as evenly as possible."""
    base, rest = divmod(total, workers)
    return [base + (1 if i < rest else 0) for i in range(workers)]


def mixed_size(u: float, low: int, high: int) -> int:
    """Log-uniform object size in [low, high] for a uniform ``u`` in [0, 1): as many 4-8 KiB
    objects as 512 KiB-1 MiB ones, which is how object sizes spread in real buckets."""
    return min(high, int(low * (high / low) ** u))
