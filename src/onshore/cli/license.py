"""``onshore license``: the operator's side of licensing.

``request`` prints the deployment's identity and public key for the licensor (creating the
deployment key on first use); ``install FILE`` verifies a license file and installs it (running
servers pick it up at their next refresh); ``status`` shows the state, the days left and usage
against the entitlements; ``report --month YYYY-MM`` writes the signed usage report. They read
the same configuration as ``onshore server`` (``ONSHORE_*`` variables, ``--data-dir``) and may
run while the server is running. Exit status: 0 success, 1 refused, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from onshore.config import Config, load, setting
from onshore.service.licensing import license as lic_mod
from onshore.service.licensing import reports
from onshore.service.licensing.monitor import Licensing
from onshore.service.licensing.state import LicenseState
from onshore.service.licensing.wiring import deployment_licensing
from onshore.service.rootkey import RootKeyError, UnwrapError

HELP = "the deployment's license: request, install, status, usage reports"


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser("license", help=HELP, description=__doc__)
    data_dir = setting("data_dir")
    parser.add_argument(
        "--data-dir", metavar="DIR", help=f"Data directory. [{data_dir.env}]", default=None
    )
    sub = parser.add_subparsers(dest="license_command", metavar="COMMAND", required=True)
    sub.add_parser("request", help="print this deployment's identity for the licensor")
    install = sub.add_parser("install", help="verify and install a license file")
    install.add_argument("file", type=Path)
    status = sub.add_parser("status", help="show the license state and usage")
    status.add_argument("--json", action="store_true", help="one JSON document")
    report = sub.add_parser("report", help="write the signed usage report of a month")
    report.add_argument("--month", required=True, help="YYYY-MM (a month that is over)")
    report.add_argument("--out", type=Path, help="report file (default: stdout)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from onshore.app import open_storage

    # The commands print the state themselves; the monitor's log lines would only repeat it.
    logging.getLogger("onshore.licensing").setLevel(logging.CRITICAL)

    try:
        config = load({"data_dir": args.data_dir})
        meta, blobs = open_storage(config)
    except (ValueError, OSError) as exc:
        print(f"onshore: {exc}", file=sys.stderr)
        return 2
    try:
        licensing = deployment_licensing(config, meta)
        command: Callable[[argparse.Namespace, Config, Licensing], int] = _COMMANDS[
            args.license_command
        ]
        return command(args, config, licensing)
    except (RootKeyError, UnwrapError, ValueError) as exc:
        print(f"onshore: {exc}", file=sys.stderr)
        return 2
    finally:
        meta.close()


def _request(args: argparse.Namespace, config: Config, licensing: Licensing) -> int:
    from onshore import __version__

    print(
        json.dumps(
            {
                "deployment_id": licensing.key.deployment_id,
                "deployment_key": licensing.key.public_text,
                "partition": config.partition,
                "region": config.region,
                "onshore_version": __version__,
                "build_fingerprint": reports.build_fingerprint(),
            },
            indent=2,
        )
    )
    return 0


def _install(args: argparse.Namespace, config: Config, licensing: Licensing) -> int:
    if not licensing.settings.trusted:
        print("onshore: no licensor public key is pinned (licensor_public_keys)", file=sys.stderr)
        return 2
    try:
        evaluation = licensing.install(args.file.read_text())
    except OSError as exc:
        print(f"onshore: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    except lic_mod.LicenseProblem as exc:
        print(f"onshore: license refused: {exc}", file=sys.stderr)
        return 1
    print(f"license installed; state: {evaluation.state.value}: {evaluation.reason}")
    return 0


def _status(args: argparse.Namespace, config: Config, licensing: Licensing) -> int:
    if not licensing.settings.trusted:
        evaluation_state, reason = LicenseState.INACTIVE.value, "no licensor key is pinned"
        doc: dict[str, object] = {"state": evaluation_state, "reason": reason}
    else:
        e = licensing.refresh()
        _, objects, tenants = licensing.store.totals()
        signed = licensing.installed(licensing.clock()).signed
        doc = {
            "state": e.state.value,
            "reason": e.reason,
            "writes_allowed": e.writes_allowed,
            "license_id": e.license_id,
            "days_left": e.days_left,
            "stored_bytes": e.stored_bytes,
            "max_stored_bytes": e.max_stored_bytes,
            "objects": objects,
            "tenants": tenants,
            "max_tenants": signed.license.entitlements.max_tenants if signed else None,
        }
    doc["deployment_id"] = licensing.key.deployment_id
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        for name, value in doc.items():
            print(f"{name:18} {'-' if value is None else value}")
    return 0


def _report(args: argparse.Namespace, config: Config, licensing: Licensing) -> int:
    installed = licensing.installed(licensing.clock())
    context = reports.ReportContext(
        installed.signed.license if installed.signed else None, config.partition, config.region
    )
    try:
        licensing.flush()
        stored = reports.generate(
            licensing.store, licensing.key, context, args.month, licensing.clock()
        )
    except reports.ReportProblem as exc:
        print(f"onshore: {exc}", file=sys.stderr)
        return 1
    if args.out:
        args.out.write_text(stored.document + "\n")
        print(f"report #{stored.seq} for {stored.month} written to {args.out}")
    else:
        print(stored.document)
    return 0


_COMMANDS = {"request": _request, "install": _install, "status": _status, "report": _report}
