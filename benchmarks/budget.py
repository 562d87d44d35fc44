"""The CPU budget of a throughput target: how much server CPU per operation a target allows.

On a machine whose cores are shared by the load generator and the server, and kept busy by them,
throughput is the cores in use divided by the CPU one operation costs, client and server
together::

    ops/s  =  cores used / (server CPU per op + client CPU per op)

Every term is measured by ``onshore bench`` (``--server-pid``) in each run. So a target such as
"1.5x the peer's ops/s" turns into the server CPU per operation that onshore may spend, given the
cores it kept busy and its client's CPU per operation in the same run::

    allowed server CPU per op  =  cores used / (1.5 x peer's ops/s) - client CPU per op

This prints that budget for the small-object operations of a comparison (medians over rounds),
beside what onshore spent, and the same for "small GET within 3x of the trivial responder"::

    python benchmarks/budget.py benchmarks/results/2026-11-30-s7 --server onshore-plain
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from aggregate import Comparison, Series, load

SMALL = ("PUT", "GET", "HEAD", "DELETE")


def _figures(series: Series) -> tuple[float, float, float]:
    """(ops/s, server CPU ms per op, client CPU ms per op), medians over rounds."""
    return (
        series.median("ops_per_s"),
        series.median("server_cpu_s_per_1k_ops"),
        series.median("client_cpu_s_per_1k_ops"),
    )


def allowed_server_cpu(ops: float, server_ms: float, client_ms: float, target_ops: float) -> float:
    """Server CPU (ms per op) that would reach ``target_ops`` with the cores this run kept busy."""
    cores = ops * (server_ms + client_ms) / 1000
    return cores / target_ops * 1000 - client_ms


def _row(target_name: str, mine: Series, target: float, reference: str) -> list[str]:
    """One table row: ``mine`` (onshore's series) against ``target`` ops/s."""
    ops, server_ms, client_ms = _figures(mine)
    allowed = allowed_server_cpu(ops, server_ms, client_ms, target)
    return [
        target_name,
        f"{ops:,.0f} / {target:,.0f}",
        f"{ops * (server_ms + client_ms) / 1000:.2f}",
        f"{client_ms:.3f}",
        f"{server_ms:.3f} ({reference})",
        f"{allowed:.3f}" if allowed > 0 else "none (< 0)",
        f"{server_ms / allowed:.1f}x" if allowed > 0 else "-",
    ]


def rows(c: Comparison, server: str, peer: str, factor: float) -> list[list[str]]:
    out = []
    for op in SMALL:
        mine, theirs = c.get(server, ("small", op)), c.get(peer, ("small", op))
        if mine is not None and theirs is not None:
            peer_ops, peer_server_ms, _ = _figures(theirs)
            name = f"{op} ≥ {factor:g}x {peer}"
            out.append(_row(name, mine, factor * peer_ops, f"peer {peer_server_ms:.3f}"))
    return out


def responder_row(c: Comparison, server: str, factor: float) -> list[str] | None:
    mine = c.get(server, ("small", "GET"))
    trivial = c.get("limits", ("limits", "GET trivial responder"))
    if mine is None or trivial is None:
        return None
    responder_ms = trivial.median("server_cpu_s_per_1k_ops")
    target = trivial.median("ops_per_s") / factor
    name = f"GET ≥ trivial responder / {factor:g}"
    return _row(name, mine, target, f"responder {responder_ms:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="a benchmarks/results/<name> folder")
    parser.add_argument("--server", default="onshore-plain")
    parser.add_argument("--peer", default="seaweedfs")
    parser.add_argument("--factor", type=float, default=1.5, help="target ratio to the peer")
    parser.add_argument("--responder-factor", type=float, default=3.0)
    args = parser.parse_args()
    c = load(args.results / "raw", [args.server, args.peer])
    table = rows(c, args.server, args.peer, args.factor)
    extra = responder_row(c, args.server, args.responder_factor)
    if extra is not None:
        table.append(extra)
    header = [
        f"target ({args.server})",
        "ops/s: now / target",
        "cores in use",
        "client CPU ms/op",
        "server CPU ms/op",
        "allowed server CPU ms/op",
        "spent / allowed",
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for row in table:
        print("| " + " | ".join(row) + " |")
    if not table or any(math.isnan(float(r[3])) for r in table):
        raise SystemExit("no CPU figures: was the run made with --server-pid?")


if __name__ == "__main__":
    main()
