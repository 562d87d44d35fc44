"""``onshore bench``: the command line of the load generator.

``register(subparsers)`` adds the ``bench`` subcommand to the ``onshore`` CLI; ``python -m
onshore.bench`` builds a parser of its own with the same options. Exit status: 0 when every
operation succeeded, 1 when any error was counted or something had to be reported, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from collections.abc import Callable
from typing import Any

from . import limits as limits_mod
from .plan import (
    DEFAULT_WORKLOADS,
    WORKLOADS,
    Plan,
    make_plan,
    parse_concurrency,
    parse_workloads,
    split,
)
from .pool import ProgressBar, WorkerPool
from .procstat import ServerMonitor
from .report import document, limits_table, machine, table, write_json
from .s3 import Endpoint, S3Client
from .signing import Signer
from .stats import Row
from .worker import ObjectsSpec, Spec, WorkerConfig
from .workloads import Bench, BenchError, Context, Control, rows_from

HELP = "Measure an S3 endpoint (and this machine's limits) with a multi-process load generator."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument("--endpoint", help="S3 endpoint URL, e.g. http://127.0.0.1:9000")
    parser.add_argument(
        "--access-key",
        default=env("ONSHORE_BENCH_ACCESS_KEY") or env("AWS_ACCESS_KEY_ID"),
        help="access key (default: $ONSHORE_BENCH_ACCESS_KEY or $AWS_ACCESS_KEY_ID)",
    )
    parser.add_argument(
        "--secret-key",
        default=env("ONSHORE_BENCH_SECRET_KEY") or env("AWS_SECRET_ACCESS_KEY"),
        help="secret key (default: $ONSHORE_BENCH_SECRET_KEY or $AWS_SECRET_ACCESS_KEY)",
    )
    parser.add_argument("--region", default="us-east-1", help="SigV4 region (default: us-east-1)")
    parser.add_argument(
        "--workloads",
        default=",".join(DEFAULT_WORKLOADS),
        help=f"comma-separated, from {','.join(WORKLOADS)} (default: all but limits)",
    )
    parser.add_argument("--limits", action="store_true", help="also measure this machine's limits")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply object counts and large sizes (0.01 for a smoke run)",
    )
    parser.add_argument(
        "--duration", type=float, default=30.0, help="seconds of the mixed workload (default: 30)"
    )
    parser.add_argument(
        "--list-keys",
        type=int,
        default=None,
        help="keys in the list workload's bucket, whatever the scale (e.g. 100000)",
    )
    parser.add_argument(
        "--phase-timeout",
        type=float,
        default=300.0,
        help="no phase starts new requests after this many seconds (default: 300)",
    )
    parser.add_argument(
        "--concurrency",
        default=None,
        help="connections: N for every workload, or small=64,mixed=8,...",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="client processes (default: min(2, CPUs))",
    )
    parser.add_argument(
        "--server-pid",
        type=int,
        default=None,
        help="measure this process tree's CPU and peak RSS per workload",
    )
    parser.add_argument(
        "--data-dir", default=None, help="run the disk limit test in a temporary directory here"
    )
    parser.add_argument("--bucket-prefix", default="onshore-bench", help="bucket name prefix")
    parser.add_argument(
        "--seed", type=int, default=1, help="seed of payloads and the mixed workload"
    )
    parser.add_argument("--out", default=None, help="write the results as JSON to this file")
    parser.add_argument("--no-progress", action="store_true", help="no progress output on stderr")
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback endpoint (a benchmark is a load test: aim it on purpose)",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``bench`` to the ``onshore`` command's subcommands."""
    parser = subparsers.add_parser("bench", help=HELP, description=HELP)
    add_arguments(parser)
    parser.set_defaults(func=run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="onshore bench", description=HELP)
    add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """The ``bench`` handler: run the workloads, print the table, write JSON; return the exit
    code."""
    try:
        names = parse_workloads(args.workloads)
        if args.limits and "limits" not in names:
            names.append("limits")
        plan = make_plan(
            args.scale,
            mixed_seconds=args.duration,
            phase_timeout=args.phase_timeout,
            concurrency=parse_concurrency(args.concurrency),
            list_keys=args.list_keys,
        )
        if args.processes < 1:
            raise ValueError("--processes must be at least 1")
        s3_names = [n for n in names if n != "limits"]
        endpoint = _endpoint(args) if s3_names else None
    except ValueError as exc:
        print(f"onshore bench: {exc}", file=sys.stderr)
        return 2
    progress = ProgressBar(enabled=not args.no_progress)
    rows: list[Row] = []
    problems: list[str] = []
    limits: dict[str, float] = {}
    meta: dict[str, Any] = {
        "tool": "onshore bench",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "endpoint": f"http://{endpoint.netloc}" if endpoint else None,
        "workloads": names,
        "scale": args.scale,
        "processes": args.processes,
        "server_pid": args.server_pid,
        "plan": _plan_meta(plan),
        "machine": machine(),
    }

    def config_of(ep: Endpoint) -> WorkerConfig:
        return WorkerConfig(
            ep, args.access_key or "", args.secret_key or "", args.region, args.seed
        )

    if endpoint is not None:
        monitor = ServerMonitor(args.server_pid) if args.server_pid else None
        pool = WorkerPool(args.processes, config_of(endpoint), progress)
        control = Control(S3Client(endpoint, Signer(args.access_key, args.secret_key, args.region)))
        run_id = secrets.token_hex(3)
        bench = Bench(Context(plan, pool, control, monitor, args.bucket_prefix, run_id, args.seed))
        try:
            for name in s3_names:
                try:
                    bench.run(name)
                except (BenchError, TimeoutError, OSError) as exc:
                    problems.append(f"{name}: {exc}")
                    progress.note(f"{name}: {exc}")
        finally:
            pool.close()
            control.close()
        rows.extend(bench.rows)
        problems.extend(bench.problems)
    if "limits" in names:
        limit_rows, limits = _limits(args, plan, progress, config_of)
        rows.extend(limit_rows)
    meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(table(rows))
    if limits:
        print()
        print(limits_table(limits))
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    if args.out:
        write_json(args.out, document(meta, rows, limits, problems))
    return 1 if problems or any(r.errors for r in rows) else 0


def _endpoint(args: argparse.Namespace) -> Endpoint:
    if not args.endpoint:
        raise ValueError("--endpoint is required for S3 workloads")
    if not args.access_key or not args.secret_key:
        raise ValueError("--access-key and --secret-key are required")
    endpoint = Endpoint.parse(args.endpoint)
    if not endpoint.is_loopback() and not args.allow_remote:
        raise ValueError(
            f"{endpoint.host} is not a loopback address; pass --allow-remote to aim at it"
        )
    return endpoint


def _plan_meta(plan: Plan) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(plan)


def _limits(
    args: argparse.Namespace,
    plan: Plan,
    progress: ProgressBar,
    config_of: Callable[[Endpoint], WorkerConfig],
) -> tuple[list[Row], dict[str, float]]:
    progress.note("limits: hashing, one core")
    limits = limits_mod.hashing()
    progress.note("limits: disk")
    limits.update(limits_mod.disk(args.data_dir, plan.limits_disk_bytes, plan.limits_fsync_files))
    progress.note("limits: loopback TCP")
    limits.update(limits_mod.loopback(1024**3))
    proc, port = limits_mod.start_responder()
    rows: list[Row] = []
    try:
        pool = WorkerPool(args.processes, config_of(Endpoint("127.0.0.1", port)), progress)
        try:
            n = plan.limits_requests
            widths = split(plan.limits_concurrency, pool.size)
            objects = [(f"trivial/{i}", i, 4096) for i in range(n)]
            active = [w for w, width in enumerate(widths) if width]
            specs: list[Spec | None] = [None] * pool.size
            for k, w in enumerate(active):
                specs[w] = ObjectsSpec(
                    "GET",
                    "limits",
                    tuple(objects[k :: len(active)]),
                    widths[w],
                    label="GET trivial responder",
                    verify=False,
                )
            outcome = pool.run(
                "limits GET trivial",
                specs,
                total=n,
                timeout=plan.phase_timeout,
                monitor=ServerMonitor(proc.pid),
            )
            rows = rows_from("limits", outcome, plan.limits_concurrency, False)
            for row in rows:
                limits["trivial_http_get_per_s"] = row.ops_per_s
                progress.done(
                    "limits GET trivial", f"{row.ops_per_s:,.0f} req/s, p50 {row.p50_ms:.2f} ms"
                )
        finally:
            pool.close()
    finally:
        limits_mod.stop(proc)
    return rows, limits


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code
