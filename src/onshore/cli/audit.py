"""``onshore audit``: the auditor's commands.

* ``public-key`` prints the deployment's audit public key (PEM) — what an auditor verifies with;
* ``export --from T --to T [--tenant ID] DIR`` writes segments and signed digests;
* ``verify DIR --public-key FILE`` checks an export with only its files and the key;
* ``search`` finds records by time, tenant, user, operation, bucket, key prefix or error code.

``public-key``, ``export`` and ``search`` read the data directory (read-only: they can run while
the server does). ``verify`` needs no data directory and no server. Exit status: 0 success (for
``verify``: the export is intact), 1 ``verify`` found problems, 2 the command could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from onshore.cli import audit_remote, offboarding
from onshore.config import setting

HELP = "audit trail: public key, export, verify, search"


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser(
        "audit",
        help=HELP,
        description="The tamper-evident audit trail (see docs/audit.md).",
    )
    sub = parser.add_subparsers(dest="audit_command", metavar="COMMAND")
    data_dir = setting("data_dir")
    data_help = f"Data directory. Default: {data_dir.default}. [{data_dir.env}]"

    key = sub.add_parser(
        "public-key",
        help="print the audit public key (PEM)",
        description="Print the "
        "deployment's audit public key (PEM), which `onshore audit verify` checks digests with.",
    )
    key.add_argument("--data-dir", metavar="DIR", default=None, help=data_help)
    key.add_argument(
        "--all", action="store_true", help="Print every audit key ever used, oldest first."
    )
    key.set_defaults(func=_public_key)

    export = sub.add_parser(
        "export",
        help="export records and signed digests to a directory",
        description="Write the digest intervals overlapping --from..--to as JSON Lines segments "
        "and signed digest files. Records newer than the last digest are not exported yet.",
    )
    export.add_argument("directory", metavar="DIR", help="Directory to write (created).")
    export.add_argument("--data-dir", metavar="DIR", default=None, help=data_help)
    export.add_argument("--from", dest="start", metavar="TIME", help="ISO 8601 start (UTC).")
    export.add_argument("--to", dest="end", metavar="TIME", help="ISO 8601 end, exclusive.")
    export.add_argument(
        "--tenant",
        metavar="ACCOUNT",
        help="Only this account's records; others' are reduced to their hashes.",
    )
    export.set_defaults(func=_export)

    verify = sub.add_parser(
        "verify",
        help="verify an export with the audit public key",
        description="Check every record and digest of an export. Needs only the export and the "
        "public key. Exit status 0: intact; 1: problems found (each is printed); 2: not checked.",
    )
    verify.add_argument("directory", metavar="DIR", help="An export directory.")
    verify.add_argument(
        "--public-key", metavar="FILE", required=True, help="The audit public key (PEM)."
    )
    verify.add_argument("--json", action="store_true", help="Print the report as JSON.")
    verify.add_argument(
        "--complete",
        action="store_true",
        help="The export is the whole trail (`onshore audit export` without --from or "
        "--tenant): also require the trail's first digest and every record's content.",
    )
    verify.set_defaults(func=_verify)

    offboarding.add_verify_command(sub)

    search = sub.add_parser(
        "search",
        help="search records",
        description="Search audit records; filters combine with AND. Oldest first.",
    )
    search.add_argument("--data-dir", metavar="DIR", default=None, help=data_help)
    search.add_argument("--from", dest="start", metavar="TIME", help="ISO 8601 start (UTC).")
    search.add_argument("--to", dest="end", metavar="TIME", help="ISO 8601 end, exclusive.")
    search.add_argument("--tenant", metavar="ACCOUNT", help="Account (tenant) id.")
    search.add_argument("--user", metavar="NAME", help="User name (or ARN for root).")
    search.add_argument("--operation", metavar="NAME", help="Operation, e.g. PutObject.")
    search.add_argument("--bucket", metavar="NAME")
    search.add_argument("--key-prefix", metavar="PREFIX", help="Object key prefix.")
    search.add_argument("--error-code", metavar="CODE", help="S3 error code, e.g. AccessDenied.")
    search.add_argument("--limit", type=int, default=100, help="At most this many records.")
    search.add_argument("--json", action="store_true", help="One JSON record per line.")
    audit_remote.add_arguments(search)
    search.set_defaults(func=_search)
    parser.set_defaults(func=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _data_dir(args: argparse.Namespace) -> Path:
    default = setting("data_dir")
    return Path(args.data_dir or os.environ.get(default.env) or str(default.default))


def _fail(message: str) -> int:
    print(f"onshore audit: {message}", file=sys.stderr)
    return 2


def _public_key(args: argparse.Namespace) -> int:
    from onshore.service.audit.reader import TrailUnavailable, public_keys, reading

    try:
        with reading(_data_dir(args)) as conn:
            found = public_keys(conn)
    except TrailUnavailable as exc:
        return _fail(str(exc))
    if not found:
        return _fail("no audit key yet: start the server once")
    for _, pem in found if args.all else found[-1:]:
        sys.stdout.write(pem)
    return 0


def _times(args: argparse.Namespace) -> tuple[int | None, int | None]:
    from onshore.service.audit.reader import parse_time

    start = parse_time(args.start) if args.start else None
    end = parse_time(args.end) if args.end else None
    return start, end


def _export(args: argparse.Namespace) -> int:
    from onshore.service.audit.export import export
    from onshore.service.audit.reader import TrailUnavailable, reading

    try:
        start, end = _times(args)
    except ValueError as exc:
        return _fail(str(exc))
    target = Path(args.directory)
    if target.exists() and any(target.iterdir()):
        return _fail(f"{target} is not empty")
    try:
        with reading(_data_dir(args)) as conn:
            summary = export(conn, target, start_ms=start, end_ms=end, tenant=args.tenant)
    except TrailUnavailable as exc:
        return _fail(str(exc))
    omitted = f" ({summary.omitted} of other accounts as hashes only)" if args.tenant else ""
    print(
        f"exported {summary.records} records{omitted} "
        f"(seq {summary.first_seq}..{summary.last_seq}) and {summary.digests} digests to {target}"
    )
    if summary.unsigned_after:
        print(
            f"{summary.unsigned_after} newer records are not signed by a digest yet and were "
            "not exported (they will be after the next digest)"
        )
    return 0


def _verify(args: argparse.Namespace) -> int:
    from onshore.service.audit.integrity import fingerprint_of, load_public_key
    from onshore.service.audit.verify import verify

    directory = Path(args.directory)
    if not directory.is_dir():
        return _fail(f"{directory} is not a directory")
    try:
        key = load_public_key(Path(args.public_key).read_bytes())
    except (OSError, ValueError) as exc:
        return _fail(f"cannot read the public key {args.public_key}: {exc}")
    report = verify(directory, key, complete=args.complete)
    if args.json:
        doc = {
            "ok": report.ok,
            "records": report.records,
            "omitted": report.omitted,
            "digests": report.digests,
            "firstSeq": report.first_seq,
            "lastSeq": report.last_seq,
            "firstDigest": report.first_digest,
            "complete": args.complete,
            "keyFingerprint": fingerprint_of(key),
            "findings": [f.as_dict() for f in report.findings],
        }
        print(json.dumps(doc, indent=2))
    else:
        for finding in report.findings:
            print(f"{finding.kind.value}: {finding.message}")
        omitted = f", {report.omitted} omitted (hashes only)" if report.omitted else ""
        print(
            f"checked {report.records} records{omitted} (seq {report.first_seq}.."
            f"{report.last_seq}) and {report.digests} digests with key {fingerprint_of(key)}"
        )
        if report.first_digest > 1 and not args.complete:
            print(
                f"the export starts at digest {report.first_digest}: what came before it is "
                "not in it (--complete requires the whole trail)"
            )
        print(
            "OK: the export is intact" if report.ok else f"FAILED: {len(report.findings)} problems"
        )
    return 0 if report.ok else 1


def _search(args: argparse.Namespace) -> int:
    from onshore.service.audit.reader import Filters, TrailUnavailable, reading, search

    try:
        start, end = _times(args)
    except ValueError as exc:
        return _fail(str(exc))
    if args.endpoint:
        from onshore.cli.adminclient import AdminClientError

        try:
            _print_found(args, audit_remote.search_remote(args))
        except AdminClientError as exc:
            return _fail(f"{exc.code}: {exc.message}")
        return 0
    filters = Filters(
        start_ms=start,
        end_ms=end,
        account=args.tenant,
        user_name=args.user,
        event_name=args.operation,
        bucket=args.bucket,
        key_prefix=args.key_prefix,
        error_code=args.error_code,
        limit=args.limit,
    )
    try:
        with reading(_data_dir(args)) as conn:
            found = search(conn, filters)
    except TrailUnavailable as exc:
        return _fail(str(exc))
    _print_found(args, [(stored.seq, stored.event) for stored in found])
    return 0


def _print_found(args: argparse.Namespace, found: list[tuple[int, str]]) -> None:
    if args.json:
        for _, text in found:
            print(text)
        return
    print(f"{'SEQ':>8}  {'TIME':<24} {'ACCOUNT':<12} {'OPERATION':<24} {'ERROR':<16} RESOURCE")
    for seq, text in found:
        event = json.loads(text)
        params = event.get("requestParameters") or {}
        resource = "/".join(
            part for part in (params.get("bucketName"), params.get("key")) if part is not None
        )
        print(
            f"{seq:>8}  {event.get('eventTime', ''):<24} "
            f"{_account(event):<12} "
            f"{event.get('eventName', ''):<24} {event.get('errorCode') or '-':<16} {resource}"
        )


def _account(event: dict[str, object]) -> str:
    """The account a record is about (an operator's action: the tenant acted on)."""
    identity = event.get("userIdentity")
    own = identity.get("accountId") if isinstance(identity, dict) else None
    return str(event.get("recipientAccountId") or own or "-")
