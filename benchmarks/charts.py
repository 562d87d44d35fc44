"""PNG charts of a comparison: one figure per workload, throughput on the left (median bar,
whiskers from the worst to the best round), p50 and p99 latency on the right (log scale)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from aggregate import Comparison, headline  # noqa: E402
from matplotlib import ticker  # noqa: E402

COLORS = {
    "onshore": "#1f77b4",
    "onshore-plain": "#9467bd",
    "onshore-noaudit": "#8c564b",
    "seaweedfs": "#2ca02c",
    "moto": "#ff7f0e",
}


def _color(server: str, index: int) -> str:
    return COLORS.get(server, f"C{index + 3}")


def workload_chart(c: Comparison, workload: str, path: Path) -> bool:
    keys = [k for k in c.order if k[0] == workload]
    if not keys:
        return False
    units = {headline(*k)[1] for k in keys}
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6), constrained_layout=True)
    width = 0.8 / max(1, len(c.servers))
    xs = range(len(keys))
    for i, server in enumerate(c.servers):
        meds, lo, hi, p50, p99 = [], [], [], [], []
        for key in keys:
            s = c.get(server, key)
            field_name, _ = headline(*key)
            if s is None:
                meds.append(math.nan)
                lo.append(0.0)
                hi.append(0.0)
                p50.append(math.nan)
                p99.append(math.nan)
                continue
            med = s.median(field_name)
            low, high = s.spread(field_name)
            meds.append(med)
            lo.append(max(0.0, med - low) if not math.isnan(low) else 0.0)
            hi.append(max(0.0, high - med) if not math.isnan(high) else 0.0)
            p50.append(s.median("p50_ms"))
            p99.append(s.median("p99_ms"))
        offsets = [x + (i - (len(c.servers) - 1) / 2) * width for x in xs]
        color = _color(server, i)
        left.bar(offsets, meds, width, yerr=[lo, hi], capsize=3, label=server, color=color)
        right.bar(offsets, p50, width, color=color, label=server)
        right.scatter(offsets, p99, color=color, marker="v", edgecolors="black", zorder=3)
    labels = [f"{k[1]}\n({headline(*k)[1]})" if len(units) > 1 else k[1] for k in keys]
    for ax in (left, right):
        ax.set_xticks(list(xs), labels, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    left.set_title(f"{workload}: throughput (median; whiskers: min-max over rounds)")
    left.set_ylabel(" / ".join(sorted(units)))
    right.set_title(f"{workload}: latency, bar p50, triangle p99")
    right.set_ylabel("ms (log scale)")
    right.set_yscale("log")
    right.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    right.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    right.yaxis.set_minor_formatter(ticker.NullFormatter())
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def all_charts(c: Comparison, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for workload in dict.fromkeys(k[0] for k in c.order):
        path = out_dir / f"{workload}.png"
        if workload_chart(c, workload, path):
            written.append(path)
    return written
