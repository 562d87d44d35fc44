"""``onshore licensor``: the licensor's offline tooling.

``keygen`` makes the licensor's Ed25519 key pair; ``issue`` signs a license for one deployment
(from options, a TOML spec, or both: options win); ``inspect`` shows a license file and checks
its signature; ``verify-report`` checks a deployment's usage report against its license and the
previous report and prints the royalty summary; ``sign-release`` signs a release artifact.
None of these needs the network or a deployment: they run on the licensor's own machine.
Exit status: 0 success, 1 verification failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from onshore.service.licensing import license as lic_mod
from onshore.service.licensing import releases, reports, signing

HELP = "licensor tooling: keys, license files, usage-report checks, release signing (offline)"


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser("licensor", help=HELP, description=__doc__)
    sub = parser.add_subparsers(dest="licensor_command", metavar="COMMAND", required=True)

    keygen = sub.add_parser("keygen", help="create an Ed25519 key pair for signing licenses")
    keygen.add_argument("--out", type=Path, required=True, help="private key file (PEM, 0600)")
    keygen.set_defaults(func=_keygen)

    issue = sub.add_parser("issue", help="sign a license file for one deployment")
    issue.add_argument("--key", type=Path, required=True, help="licensor private key file")
    issue.add_argument("--spec", type=Path, help="TOML file with the license fields")
    issue.add_argument("--out", type=Path, help="license file to write (default: stdout)")
    for name in ("license-id", "licensor", "operator", "partition", "jurisdiction"):
        issue.add_argument(f"--{name}")
    issue.add_argument("--deployment-key", help="from the operator's `onshore license request`")
    issue.add_argument("--region", action="append", help="a served region (repeatable)")
    issue.add_argument("--feature", action="append", help="an enabled feature (repeatable)")
    issue.add_argument("--max-stored-bytes", type=int)
    issue.add_argument("--max-tenants", type=int)
    issue.add_argument("--not-before", help="RFC 3339 time (default: now)")
    issue.add_argument("--not-after", help="RFC 3339 time")
    issue.add_argument("--days", type=int, help="validity in days from not-before")
    issue.add_argument("--grace-days", type=int)
    issue.add_argument("--max-release", help="newest onshore release covered, e.g. 0.1")
    issue.set_defaults(func=_issue)

    inspect = sub.add_parser("inspect", help="show a license file and check its signature")
    inspect.add_argument("file", type=Path)
    inspect.add_argument("--public-key", action="append", help="licensor key or .pub file")
    inspect.set_defaults(func=_inspect)

    verify = sub.add_parser("verify-report", help="check a usage report and summarise it")
    verify.add_argument("report", type=Path)
    verify.add_argument("--license", type=Path, required=True, help="the deployment's license")
    verify.add_argument("--public-key", action="append", required=True, help="licensor key")
    verify.add_argument("--previous", type=Path, help="the previously accepted report")
    verify.set_defaults(func=_verify_report)

    sign_release = sub.add_parser("sign-release", help="sign a release artifact (wheel, sdist)")
    sign_release.add_argument("file", type=Path)
    sign_release.add_argument("--key", type=Path, required=True)
    sign_release.add_argument("--out", type=Path, help="signature file (default: FILE.sig)")
    sign_release.set_defaults(func=_sign_release)

    access = sub.add_parser(
        "access-request",
        help="sign a request for time-boxed support access (the operator approves or denies it)",
    )
    access.add_argument("--key", type=Path, required=True, help="licensor private key file")
    access.add_argument("--licensor", required=True, help="who asks (your organisation)")
    access.add_argument("--partition", required=True, help="the deployment's partition")
    access.add_argument("--scope", required=True, choices=["diagnostics", "admin-read"])
    access.add_argument(
        "--operation", action="append", default=[],
        help="an admin read operation needed (admin-read scope; repeatable), e.g. list_tenants",
    )  # fmt: skip
    access.add_argument("--reason", required=True, help="why access is needed")
    access.add_argument("--hours", type=int, required=True, help="duration, 1 to 8 hours")
    access.add_argument("--out", type=Path, help="request file to write (default: stdout)")
    access.set_defaults(func=_access_request)


def public_keys(values: list[str] | None) -> tuple[Ed25519PublicKey, ...]:
    """Keys given as ``ed25519:…`` text or as files holding that text."""
    keys: list[Ed25519PublicKey] = []
    for value in values or ():
        text = value
        if not value.startswith(signing.PREFIX):
            text = Path(value).read_text()
        keys.extend(signing.parse_public_keys(text))
    return tuple(keys)


def _fail(message: str, status: int = 1) -> int:
    print(f"onshore: {message}", file=sys.stderr)
    return status


def _keygen(args: argparse.Namespace) -> int:
    key = Ed25519PrivateKey.generate()
    try:
        signing.write_private_key(args.out, key)
    except FileExistsError:
        return _fail(f"{args.out} exists; not overwriting a key", 2)
    public = signing.public_key_text(key.public_key())
    Path(str(args.out) + ".pub").write_text(public + "\n")
    print(public)
    return 0


def _spec(args: argparse.Namespace) -> dict[str, object]:
    data: dict[str, object] = {}
    if args.spec:
        data = tomllib.loads(args.spec.read_text())
    ents = data.setdefault("entitlements", {})
    if not isinstance(ents, dict):
        raise lic_mod.LicenseProblem("entitlements must be a table")
    ents.setdefault("features", [])
    ents.setdefault("max_stored_bytes", None)
    ents.setdefault("max_tenants", None)
    for field in ("license_id", "licensor", "operator", "partition", "jurisdiction"):
        if (value := getattr(args, field)) is not None:
            data[field] = value
    if args.deployment_key:
        data["deployment_key"] = args.deployment_key
    if args.region:
        data["regions"] = args.region
    if args.feature:
        ents["features"] = args.feature
    if args.max_stored_bytes is not None:
        ents["max_stored_bytes"] = args.max_stored_bytes
    if args.max_tenants is not None:
        ents["max_tenants"] = args.max_tenants
    now = datetime.now(UTC).replace(microsecond=0)
    for field in ("not_before", "not_after", "max_release"):
        if (value := getattr(args, field)) is not None:
            data[field] = value
    data.setdefault("not_before", lic_mod.format_time(now))
    if args.days is not None:
        start = lic_mod.parse_time(data["not_before"], "not_before")
        data["not_after"] = lic_mod.format_time(start + timedelta(days=args.days))
    if args.grace_days is not None:
        data["grace_days"] = args.grace_days
    data.setdefault("grace_days", 30)
    data["issued_at"] = lic_mod.format_time(now)
    for field in ("not_before", "not_after", "issued_at"):  # TOML datetimes → RFC 3339 text
        if isinstance(data.get(field), datetime):
            data[field] = lic_mod.format_time(data[field])  # type: ignore[arg-type]
    return data


def _issue(args: argparse.Namespace) -> int:
    try:
        key = signing.read_private_key(args.key)
        lic = lic_mod.from_payload(_spec(args))
        text = lic_mod.issue(lic, key)
    except (lic_mod.LicenseProblem, signing.SignatureProblem, tomllib.TOMLDecodeError) as exc:
        return _fail(str(exc), 2)
    except OSError as exc:
        return _fail(f"cannot read {exc.filename}: {exc.strerror}", 2)
    if args.out:
        args.out.write_text(text)
        print(f"license {lic.license_id} written to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def _inspect(args: argparse.Namespace) -> int:
    try:
        text = args.file.read_text()
        lic = lic_mod.read_unverified(text)
    except (OSError, lic_mod.LicenseProblem) as exc:
        return _fail(str(exc), 2)
    print(json.dumps(lic.payload(), indent=2))
    trusted = public_keys(args.public_key)
    if not trusted:
        print("signature: not checked (pass --public-key)")
        return 0
    try:
        signed = lic_mod.read(text, trusted)
    except lic_mod.LicenseProblem as exc:
        return _fail(str(exc))
    print(f"signature: valid (licensor key {signed.signer_id})")
    return 0


def _verify_report(args: argparse.Namespace) -> int:
    try:
        lic = lic_mod.read(args.license.read_text(), public_keys(args.public_key)).license
        previous = args.previous.read_text() if args.previous else None
        report = reports.verify(args.report.read_text(), lic, previous)
    except OSError as exc:
        return _fail(f"cannot read {exc.filename}: {exc.strerror}", 2)
    except (lic_mod.LicenseProblem, reports.ReportProblem, signing.SignatureProblem) as exc:
        return _fail(f"report rejected: {exc}")
    print("report verified: signature, deployment, license and chain are in order")
    print(reports.royalty_summary(report))
    return 0


def _sign_release(args: argparse.Namespace) -> int:
    try:
        key = signing.read_private_key(args.key)
        text = releases.sign(args.file, key)
    except OSError as exc:
        return _fail(f"cannot read {exc.filename}: {exc.strerror}", 2)
    except signing.SignatureProblem as exc:
        return _fail(str(exc), 2)
    out = args.out or Path(str(args.file) + ".sig")
    out.write_text(text)
    print(f"signature written to {out}")
    return 0


def _access_request(args: argparse.Namespace) -> int:
    from onshore.service import support

    try:
        key = signing.read_private_key(args.key)
        payload = support.new_request(
            licensor=args.licensor,
            partition=args.partition,
            scope=args.scope,
            reason=args.reason,
            hours=args.hours,
            operations=args.operation,
        )
    except OSError as exc:
        return _fail(f"cannot read {exc.filename}: {exc.strerror}", 2)
    except (signing.SignatureProblem, support.AccessRequestProblem) as exc:
        return _fail(str(getattr(exc, "message", exc)), 2)
    text = json.dumps(signing.seal(support.FORMAT, payload, key), indent=2) + "\n"
    if args.out is None:
        print(text, end="")
    else:
        args.out.write_text(text)
        print(f"access request {payload['request_id']} written to {args.out}")
    return 0
