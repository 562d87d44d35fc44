"""``onshore fsck``: check a stopped server's data directory, and optionally repair it.

Prints one line per problem and a summary (or, with ``--json``, one JSON document), and exits
with 0 when the store is clean — or when ``--repair`` repaired everything it found — 1 when
problems remain, and 2 when the data directory cannot be checked (none there, or a server has it
open). What is checked and what ``--repair`` changes is described in
:mod:`onshore.service.fsck` and ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path
from typing import TextIO

from onshore.config import setting
from onshore.service.fsck import Kind, Problem, Report, repair_refusal

HELP = "check (and with --repair, repair) a stopped server's data directory"

_LABELS = {
    Kind.INTEGRITY: "database",
    Kind.UNINDEXED_BLOB: "unindexed blob",
    Kind.MISSING_BLOB: "missing blob",
    Kind.SIZE_MISMATCH: "wrong size",
    Kind.CHECKSUM_MISMATCH: "corrupt data",
    Kind.ORPHAN_BLOB: "orphan blob",
    Kind.TEMP_FILE: "temporary file",
}
_WHAT_REPAIR_DOES = (
    "`onshore fsck --repair` deletes orphan blobs and temporary files, deletes each version "
    "whose data is missing or corrupt (that data is lost: restore it from a backup) and aborts "
    "each upload in progress with a bad part."
)


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    data_dir = setting("data_dir")
    parser = commands.add_parser(
        "fsck",
        help=HELP,
        description="Check that the metadata database and the blob files of a data directory "
        "agree: database integrity, missing blobs, blobs of the wrong size, data that no longer "
        "matches its recorded MD5 or checksum, orphan blobs and temporary files. The server must "
        "be stopped. Exit status: 0 clean (or all repaired), 1 problems remain, 2 not checked.",
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        default=None,
        help=f"Data directory to check. Default: {data_dir.default}. [{data_dir.env}]",
    )
    parser.add_argument(
        "--repair",
        action="store_true",
        help="Delete orphan blobs and temporary files; delete versions whose data is missing or "
        "corrupt (unrecoverable) and abort uploads with a bad part.",
    )
    parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from onshore.app import StorageUnavailable, offline_unsealer, open_offline
    from onshore.config import load
    from onshore.service import fsck
    from onshore.service.rootkey import RootKeyError

    try:
        config = load({"data_dir": args.data_dir})
    except ValueError as exc:
        print(f"onshore fsck: {exc}", file=sys.stderr)
        return 2
    data_dir = config.data_dir
    show_progress = sys.stderr.isatty() and not args.json
    try:
        meta, blobs = open_offline(data_dir)
    except StorageUnavailable as exc:
        print(f"onshore fsck: {exc}", file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as exc:  # the embedded metadata store (onshore.app) is SQLite
        report = _unreadable(exc, repairing=args.repair)
    else:
        try:
            unseal = offline_unsealer(config, meta)
        except RootKeyError as exc:  # e.g. the key service is down: the sizes can still be checked
            print(f"onshore fsck: {exc}: sealed data gets size checks only", file=sys.stderr)
            unseal = None
        try:
            report = fsck.check(
                meta,
                blobs,
                progress=_progress if show_progress else None,
                unseal=unseal,
            )
            if args.repair and not report.clean:
                report = fsck.repair(meta, blobs, report)
        except sqlite3.DatabaseError as exc:
            report = _unreadable(exc, repairing=args.repair)
        finally:
            meta.close()
            if show_progress:
                print(file=sys.stderr)
    if args.json:
        print(json.dumps({"data_dir": str(data_dir), **report.as_dict()}, indent=2))
    else:
        _print(report, data_dir, repairing=args.repair, out=sys.stdout)
    return 0 if not report.unrepaired else 1


def _unreadable(exc: Exception, *, repairing: bool) -> Report:
    """The report for a metadata database that cannot even be read through."""
    import time

    report = Report(started=time.time())
    report.problems.append(Problem(Kind.INTEGRITY, f"the metadata database cannot be read: {exc}"))
    if repairing:
        report.repair_refused = repair_refusal()
    return report


def _progress(line: str) -> None:
    print(f"\r{line}", end="", file=sys.stderr, flush=True)


def _print(report: Report, data_dir: Path, *, repairing: bool, out: TextIO) -> None:
    print(f"onshore fsck {data_dir}", file=out)
    print(
        f"checked {report.versions} versions, {report.parts} parts of uploads in progress and "
        f"{report.blobs} blob files ({report.bytes_read / 2**20:.1f} MiB read)",
        file=out,
    )
    if report.skipped_recent:
        print(
            f"left alone {report.skipped_recent} blob or temporary files newer than this check",
            file=out,
        )
    for problem in report.problems:
        print(_line(problem), file=out)
    if report.clean:
        print("clean: no problems found", file=out)
        return
    remaining = len(report.unrepaired)
    if report.repair_refused:
        print(f"nothing was repaired or changed: {report.repair_refused}", file=out)
    if remaining:
        print(f"{remaining} of {len(report.problems)} problems remain", file=out)
        if not repairing and report.repairable:
            print(_WHAT_REPAIR_DOES, file=out)
        elif not repairing:
            print(f"--repair would change nothing: {repair_refusal()}", file=out)
    else:
        print(f"repaired all {len(report.problems)} problems", file=out)


def _line(problem: Problem) -> str:
    where = problem.where
    if problem.blob_id and problem.blob_id not in where:
        where += f" blob {problem.blob_id}"
    text = f"{_LABELS[problem.kind]:<15} {where + ': ' if where else ''}{problem.message}"
    if problem.repaired:
        text += f" -> {problem.repaired}"
    return text
