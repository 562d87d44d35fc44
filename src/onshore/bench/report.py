"""The summary table on stdout and the JSON document ``--out`` writes.

JSON layout (``"format": 1``): ``meta`` (endpoint, options, machine), ``rows`` (one object per
workload and operation, the fields of ``stats.Row``), ``limits`` (the physical limits, when
measured) and ``problems`` (anything that went wrong outside the counted errors: failed cleanup, a
refused CreateBucket). Rates: ``ops_per_s``; ``mb_per_s`` in 10^6 bytes/s; ``items_per_s`` is keys
(and common prefixes) per second for listings. Latencies in milliseconds. ``server_*`` fields are
null unless ``--server-pid`` was given.
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .stats import Row

FORMAT = 1


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def document(
    meta: Mapping[str, Any],
    rows: Sequence[Row],
    limits: Mapping[str, float],
    problems: Sequence[str],
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "meta": dict(meta),
        "rows": [row.to_json() for row in rows],
        "limits": dict(limits),
        "problems": list(problems),
    }


def write_json(path: str, doc: Mapping[str, Any]) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(target)


def _num(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


COLUMNS = (
    ("workload", "<"),
    ("op", "<"),
    ("ops", ">"),
    ("errors", ">"),
    ("ops/s", ">"),
    ("MB/s", ">"),
    ("keys/s", ">"),
    ("p50 ms", ">"),
    ("p99 ms", ">"),
    ("srv CPU s/1k", ">"),
    ("srv RSS MiB", ">"),
    ("srv PSS MiB", ">"),
    ("cli CPU s/1k", ">"),
)


def table(rows: Sequence[Row]) -> str:
    """A fixed-width table of every row, for the terminal."""
    cells = [
        [
            r.workload,
            r.op,
            str(r.ops),
            str(r.errors),
            _num(r.ops_per_s),
            _num(r.mb_per_s),
            _num(r.items_per_s, 0) if r.op.startswith("LIST") else "-",
            _num(r.p50_ms, 2),
            _num(r.p99_ms, 2),
            _num(r.server_cpu_s_per_1k_ops, 2),
            _num(r.server_peak_rss_mib, 0),
            _num(r.server_peak_pss_mib, 0),
            _num(r.client_cpu_s_per_1k_ops, 2),
        ]
        for r in rows
    ]
    widths = [max([len(name)] + [len(c[i]) for c in cells]) for i, (name, _) in enumerate(COLUMNS)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            f"{v:{align}{w}}" for v, (_, align), w in zip(values, COLUMNS, widths, strict=True)
        )

    out = [line([name for name, _ in COLUMNS]), line(["-" * w for w in widths])]
    out.extend(line(c) for c in cells)
    return "\n".join(out)


LIMIT_LABELS = {
    "disk_write_fsync_mb_per_s": ("disk write + fsync", "MB/s"),
    "disk_read_mb_per_s": ("disk read (cache dropped)", "MB/s"),
    "durable_4k_files_per_s": ("durable 4 KiB files", "files/s"),
    "md5_mb_per_s": ("MD5, one core", "MB/s"),
    "sha256_mb_per_s": ("SHA-256, one core", "MB/s"),
    "crc32_mb_per_s": ("CRC-32, one core", "MB/s"),
    "crc32c_mb_per_s": ("CRC32C, one core", "MB/s"),
    "loopback_mb_per_s": ("loopback TCP", "MB/s"),
    "trivial_http_get_per_s": ("trivial HTTP 4 KiB GET", "req/s"),
}


def limits_table(limits: Mapping[str, float]) -> str:
    lines = []
    for key, (label, unit) in LIMIT_LABELS.items():
        if key in limits:
            lines.append(f"{label:<28} {limits[key]:>12,.0f} {unit}")
    return "\n".join(lines)
