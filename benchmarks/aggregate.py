"""Medians over rounds, ratios onshore/peer, and the markdown summary of a comparison.

Each round produces one JSON document per server (``raw/<server>-r<N>.json``, written by
``onshore bench --out``) and one for the machine's limits (``raw/limits-r<N>.json``). For every
server, workload and operation this module takes the median over rounds of each figure, except
peak RSS, where it takes the maximum (a memory ceiling is about the worst case), and errors, which
it sums.

Each operation has one *headline* figure, the one its workload is about: keys/s for listings, MB/s
for the medium and large objects, operations/s otherwise. Ratios divide onshore's median by the
peer's: above 1 onshore is faster (for latency and CPU tables, lower is better and no ratio is
shown).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Key = tuple[str, str]  # workload, op


@dataclass
class Series:
    """One server's values for one operation across rounds."""

    values: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0
    errors_by_kind: dict[str, int] = field(default_factory=dict)

    def add(self, row: Mapping[str, Any]) -> None:
        for name in (
            "ops_per_s", "mb_per_s", "items_per_s", "p50_ms", "p99_ms",
            "server_cpu_s_per_1k_ops", "server_peak_rss_mib", "server_peak_pss_mib",
            "server_busiest_share", "client_cpu_s_per_1k_ops",
        ):  # fmt: skip
            value = row.get(name)
            self.values.setdefault(name, []).append(math.nan if value is None else float(value))
        self.errors += int(row.get("errors", 0))
        for kind, n in (row.get("errors_by_kind") or {}).items():
            self.errors_by_kind[kind] = self.errors_by_kind.get(kind, 0) + int(n)

    def median(self, name: str) -> float:
        finite = sorted(v for v in self.values.get(name, []) if not math.isnan(v))
        if not finite:
            return math.nan
        mid = len(finite) // 2
        return finite[mid] if len(finite) % 2 else (finite[mid - 1] + finite[mid]) / 2

    def spread(self, name: str) -> tuple[float, float]:
        finite = [v for v in self.values.get(name, []) if not math.isnan(v)]
        return (min(finite), max(finite)) if finite else (math.nan, math.nan)

    def peak(self, name: str) -> float:
        finite = [v for v in self.values.get(name, []) if not math.isnan(v)]
        return max(finite) if finite else math.nan


def headline(workload: str, op: str) -> tuple[str, str]:
    """The figure an operation is judged by: (row field, unit)."""
    if op.startswith("LIST") and workload == "list":
        return "items_per_s", "keys/s"
    if workload in ("medium", "large"):
        return "mb_per_s", "MB/s"
    return "ops_per_s", "ops/s"


@dataclass
class Comparison:
    servers: list[str]
    rounds: int
    series: dict[str, dict[Key, Series]]
    limits: dict[str, list[float]]
    meta: dict[str, Any]
    order: list[Key]
    # each server's rows by round and operation, for the ratios within a round (see paired)
    by_round: dict[str, dict[int, dict[Key, Mapping[str, Any]]]] = field(default_factory=dict)

    def get(self, server: str, key: Key) -> Series | None:
        return self.series.get(server, {}).get(key)


def load(raw_dir: Path, servers: Sequence[str]) -> Comparison:
    series: dict[str, dict[Key, Series]] = {s: {} for s in servers}
    limits: dict[str, list[float]] = {}
    order: list[Key] = []
    meta: dict[str, Any] = {}
    by_round: dict[str, dict[int, dict[Key, Mapping[str, Any]]]] = {}
    rounds = 0
    for path in sorted(raw_dir.glob("*.json")):
        name, _, rnd = path.stem.rpartition("-r")
        doc = json.loads(path.read_text())
        rounds = max(rounds, int(rnd) if rnd.isdigit() else 0)
        if name == "limits":
            for k, v in doc.get("limits", {}).items():
                limits.setdefault(k, []).append(float(v))
        if name not in series and name != "limits":
            continue
        meta = meta or doc.get("meta", {})
        for row in doc.get("rows", []):
            key = (row["workload"], row["op"])
            if name == "limits":
                series.setdefault("limits", {}).setdefault(key, Series()).add(row)
                continue
            if key not in order:
                order.append(key)
            series[name].setdefault(key, Series()).add(row)
            by_round.setdefault(name, {}).setdefault(int(rnd or 0), {})[key] = row
    return Comparison(list(servers), rounds, series, limits, meta, order, by_round)


def paired(c: Comparison, peer: str, keys: Sequence[Key]) -> list[tuple[float, float]]:
    """For each round in which onshore and ``peer`` both ran every operation of ``keys``:
    onshore's throughput over the peer's, and its server CPU per operation over the peer's,
    counting those operations together (their operations over their time; CPU weighted by
    operations). Both servers run back to back in a round, so a round's ratio compares them
    under the same conditions of the machine."""
    mine_rounds = c.by_round.get("onshore", {})
    theirs_rounds = c.by_round.get(peer, {})
    ratios = []
    for rnd in sorted(set(mine_rounds) & set(theirs_rounds)):
        mine, theirs = mine_rounds[rnd], theirs_rounds[rnd]
        if not all(key in mine and key in theirs for key in keys):
            continue
        rate = _rate([mine[k] for k in keys]) / _rate([theirs[k] for k in keys])
        cpu = _cpu_per_op([mine[k] for k in keys]) / _cpu_per_op([theirs[k] for k in keys])
        ratios.append((rate, cpu))
    return ratios


def _rate(rows: Sequence[Mapping[str, Any]]) -> float:
    """Operations per second of ``rows`` run one after the other."""
    ops = sum(float(r["ops"]) for r in rows)
    seconds = sum(float(r.get("seconds") or float(r["ops"]) / float(r["ops_per_s"])) for r in rows)
    return ops / seconds if seconds else math.nan


def _cpu_per_op(rows: Sequence[Mapping[str, Any]]) -> float:
    ops = sum(float(r["ops"]) for r in rows)
    cpu = sum(float(r.get("server_cpu_s_per_1k_ops") or math.nan) * float(r["ops"]) for r in rows)
    return cpu / ops if ops else math.nan


def _fmt(value: float, digits: int = 1) -> str:
    if math.isnan(value):
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _range(bounds: tuple[float, float], digits: int) -> str:
    low, high = bounds
    if math.isnan(low):
        return "–"
    return _fmt(low, digits) if low == high else f"{_fmt(low, digits)}–{_fmt(high, digits)}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(r) + " |" for r in rows)
    return lines


def _by_server(c: Comparison, cell: Callable[[Series], str]) -> list[str]:
    """A table of one row per workload and operation, one ``cell`` per server ("–" where a
    server has no figures), followed by a blank line."""
    rows = []
    for key in c.order:
        cells = [key[0], key[1]]
        for server in c.servers:
            s = c.get(server, key)
            cells.append(cell(s) if s else "–")
        rows.append(cells)
    return _table(["workload", "op", *c.servers], rows) + [""]


def _paired_section(c: Comparison, peers: Sequence[str]) -> list[str]:
    """Ratios within each round, median and lowest–highest, per operation and per workload."""
    out = [
        "## Ratio within each round (median, lowest–highest over rounds)",
        "",
        "Each round runs the servers back to back, so the ratio of one round compares them under "
        "the same conditions of the machine, and the median of those ratios is steadier than the "
        "ratio of medians above when other work shares the machine. *all* is the workload's "
        "operations together: their operations over their time (throughput), and the server's "
        "CPU per operation weighted by operations (below 1 onshore is cheaper).",
        "",
    ]
    rows = []
    workloads = list(dict.fromkeys(key[0] for key in c.order))
    for key in [*c.order, *((w, "all") for w in workloads)]:
        keys = [k for k in c.order if k[0] == key[0]] if key[1] == "all" else [key]
        cells = [key[0], key[1]]
        for peer in peers:
            ratios = paired(c, peer, keys)
            for at in (0, 1):
                values = sorted(r[at] for r in ratios if not math.isnan(r[at]))
                if not values:
                    cells.append("–")
                    continue
                cells.append(f"{statistics.median(values):.2f}x ({values[0]:.2f}–{values[-1]:.2f})")
        rows.append(cells)
    header = [
        item
        for p in peers
        for item in (f"throughput onshore/{p}", f"server CPU per op onshore/{p}")
    ]
    return out + _table(["workload", "op", *header], rows) + [""]


def markdown(c: Comparison, title: str, notes: Sequence[str] = ()) -> str:
    m = c.meta.get("machine", {})
    out = [
        f"# {title}",
        "",
        f"Machine: {m.get('cpus', '?')} CPUs ({m.get('cpu_model', '?')}), shared by the load "
        f"generator and the server; Python {m.get('python', '?')}; {m.get('platform', '?')}.",
        f"Servers: {', '.join(c.servers)}, run interleaved ({' '.join(c.servers)}, the order "
        f"rotated by one each round) for {c.rounds} rounds; each figure is the median over rounds "
        "(peak RSS: the maximum).",
        f"Scale {c.meta.get('scale', '?')}, {c.meta.get('processes', '?')} client processes; "
        "see docs/benchmarks.md for the method.",
        "",
    ]
    out.extend(f"> {note}" for note in notes)
    if notes:
        out.append("")
    peers = [s for s in c.servers if s != "onshore"]
    out += ["## Throughput (median)", ""]
    rows = []
    for key in c.order:
        field_name, unit = headline(*key)
        cells = [key[0], key[1], unit]
        for server in c.servers:
            s = c.get(server, key)
            cells.append(_fmt(s.median(field_name)) if s else "–")
        rows.append(cells)
    out += _table(["workload", "op", "unit", *c.servers], rows) + [""]
    out += ["## Ratio onshore / peer (headline figure; above 1 means onshore is faster)", ""]
    if "onshore" in c.servers and peers:
        rows = []
        for key in c.order:
            field_name, _ = headline(*key)
            mine = c.get("onshore", key)
            cells = [key[0], key[1]]
            for peer in peers:
                theirs = c.get(peer, key)
                if mine is None or theirs is None or not theirs.median(field_name):
                    cells.append("–")
                else:
                    cells.append(f"{mine.median(field_name) / theirs.median(field_name):.2f}x")
            rows.append(cells)
        out += _table(["workload", "op", *(f"onshore/{p}" for p in peers)], rows) + [""]
        out += _paired_section(c, peers)
    else:
        out += ["onshore was not part of this run.", ""]
    out += ["## Latency p50 / p99 (ms, median)", ""]
    out += _by_server(c, lambda s: f"{_fmt(s.median('p50_ms'), 2)} / {_fmt(s.median('p99_ms'), 2)}")
    out += ["## Server cost: CPU-seconds per 1,000 operations · peak RSS (MiB)", ""]
    out += _by_server(
        c,
        lambda s: (
            f"{_fmt(s.median('server_cpu_s_per_1k_ops'), 2)} · "
            f"{_fmt(s.peak('server_peak_rss_mib'))}"
        ),
    )
    out += [
        "## Server memory: peak RSS / peak PSS (MiB)",
        "",
        "RSS sums each process's resident pages, so pages its processes share (interpreter, "
        "libraries) count once per process; PSS divides each shared page among the processes "
        "sharing it, so the tree's pages count once. Maximum over rounds.",
        "",
    ]
    out += _by_server(
        c,
        lambda s: f"{_fmt(s.peak('server_peak_rss_mib'))} / {_fmt(s.peak('server_peak_pss_mib'))}",
    )
    out += [
        "## Busiest server process's share of the server's CPU (lowest–highest over rounds)",
        "",
        "A multi-process server's workers share one listening socket and whichever is awake "
        "accepts what is queued, so a burst of connections may all land on one worker: about "
        "0.5 means two workers shared the work, near 1.0 that one did it all. Rounds that differ "
        "here differ in throughput whatever the code.",
        "",
    ]
    out += _by_server(c, lambda s: _range(s.spread("server_busiest_share"), 2))
    errors = [
        (server, key, s)
        for server in c.servers
        for key, s in c.series.get(server, {}).items()
        if s.errors
    ]
    out += ["## Errors (sum over rounds)", ""]
    if errors:
        out += _table(
            ["server", "workload", "op", "errors", "by kind"],
            (
                [srv, k[0], k[1], str(s.errors), json.dumps(s.errors_by_kind)]
                for srv, k, s in errors
            ),
        )
    else:
        out.append("None: every response had a 2xx status and every body read back matched.")
    out.append("")
    if c.limits:
        from onshore.bench.report import LIMIT_LABELS

        out += ["## Limits of this machine (median over rounds)", ""]
        rows = []
        for key, (label, unit) in LIMIT_LABELS.items():
            values = c.limits.get(key)
            if values:
                rows.append([label, f"{_fmt(statistics.median(values))} {unit}"])
        out += _table(["limit", "value"], rows) + [""]
        trivial_rate = statistics.median(c.limits.get("trivial_http_get_per_s", [math.nan]))
        if not math.isnan(trivial_rate):
            out += ["Small-object GET as a fraction of the trivial responder's rate:", ""]
            for server in c.servers:
                s = c.get(server, ("small", "GET"))
                if s is not None:
                    out.append(f"- {server}: {s.median('ops_per_s') / trivial_rate:.0%}")
            out.append("")
    return "\n".join(out)
