"""Instructions per request, counted by callgrind: the cost of a setting (the audit trail, by
default) as a deterministic ratio.

    python benchmarks/instructions.py [--ops get,head,put,delete] [--n 512] [--concurrency 2]
        [--set audit=false] [--jobs 2]

For each operation, ``benchmarks/inproc.py --http onshore --callgrind`` runs twice under
``valgrind --tool=callgrind --instr-atstart=no``, with the defaults and with ``--set``: only
the measured requests are counted (and the flush of their audit records, which ``inproc.py``
does inside the measurement), in every thread. The counts are the same from run to run
whatever else the machine does, which no timing on a shared machine is: the way to see an
effect of a few percent. Two caveats: valgrind hides the CPU's SHA instructions, so SHA-256
(the audit's chain) is counted as software, several times its cost natively; and counts are
user-space instructions, not the kernel's work for system calls.

``--concurrency 2`` (the default) has the writer commit one or two changes a batch, as the real
server's workers do under ``onshore bench``; 32 makes batches of many, as in ``inproc.py``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent


def instructions(op: str, n: int, concurrency: int, settings: list[str], out: Path) -> int:
    """Instructions counted over ``n`` requests of ``op`` with ``settings`` (NAME=VALUE)."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
        sys.executable,
        str(HERE / "inproc.py"),
        "--op", op,
        "--n", str(n),
        "--http", "onshore",
        "--concurrency", str(concurrency),
        "--callgrind",
        # no periodic flush in the measurement: inproc.py flushes the trail itself
        "--set", "audit_flush_interval=3600",
        *(item for setting in settings for item in ("--set", setting)),
    ]  # fmt: skip
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for line in out.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", default="get,head,put,delete")
    parser.add_argument("--n", type=int, default=512, help="measured requests per run")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument(
        "--set", action="append", default=None, metavar="NAME=VALUE",
        help="the setting compared with the defaults (default: audit=false)",
    )  # fmt: skip
    parser.add_argument("--jobs", type=int, default=2, help="valgrind runs at a time")
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("valgrind is needed (Debian: apt-get install valgrind)")
    changed = args.set or ["audit=false"]
    ops = [op.strip() for op in args.ops.split(",") if op.strip()]
    n = args.n // args.concurrency * args.concurrency  # what inproc.py sends
    with tempfile.TemporaryDirectory() as scratch, ThreadPoolExecutor(args.jobs) as pool:
        runs = {
            (op, variant): pool.submit(
                instructions,
                op,
                args.n,
                args.concurrency,
                settings,
                Path(scratch) / f"{op}-{variant}.out",
            )
            for op in ops
            for variant, settings in (("defaults", []), ("changed", changed))
        }
        counts = {key: future.result() / n for key, future in runs.items()}
    label = " ".join(changed)
    print(f"instructions per request, {n} requests, {args.concurrency} in flight")
    print()
    print(f"| op | defaults | {label} | defaults / {label} |")
    print("| --- | --- | --- | --- |")
    for op in ops:
        mine, theirs = counts[(op, "defaults")], counts[(op, "changed")]
        print(f"| {op.upper()} | {mine:,.0f} | {theirs:,.0f} | {mine / theirs:.3f} |")


if __name__ == "__main__":
    main()
