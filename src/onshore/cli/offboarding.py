"""The offboarding commands of the ``onshore`` CLI.

* ``onshore admin tenant offboard NAME [--notice-days N]``, ``offboard-status``,
  ``offboard-cancel`` and ``offboard-execute NAME [--force] [--certificate FILE]`` — over the
  admin API (registered by :mod:`onshore.cli.admin`);
* ``onshore audit verify-certificate FILE --public-key PEM`` — offline, with only the
  certificate and the audit public key (registered by :mod:`onshore.cli.audit`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from onshore.cli.adminclient import AdminClient, segment

AddCommand = Callable[..., argparse.ArgumentParser]


def add_admin_commands(
    tenant: argparse._SubParsersAction[argparse.ArgumentParser], add: AddCommand
) -> None:
    """The ``tenant offboard*`` actions (``add`` is :func:`onshore.cli.admin._add`)."""
    request_help = "request a tenant's offboarding: the notice period starts (reads allowed, "
    request_help += "writes refused)"
    offboard = add(tenant, "offboard", _offboard, request_help, "tenant")
    offboard.add_argument(
        "--notice-days", type=int, metavar="N", help="notice period (default: the server's)"
    )
    add(tenant, "offboard-status", _status, "show a tenant's offboarding state", "tenant")
    add(tenant, "offboard-cancel", _cancel, "cancel an offboarding during its notice", "tenant")
    execute_help = "delete everything of a tenant after its notice period and print the "
    execute_help += "signed deletion certificate"
    execute = add(tenant, "offboard-execute", _execute, execute_help, "tenant")
    execute.add_argument(
        "--force", action="store_true", help="execute before the notice period ends"
    )
    execute.add_argument(
        "--certificate", metavar="FILE", help="also write the deletion certificate to FILE"
    )


def _path(tenant: str) -> str:
    return f"/tenants/{segment(tenant)}/offboarding"


def _offboard(c: AdminClient, a: argparse.Namespace) -> object:
    body = {} if a.notice_days is None else {"notice_days": a.notice_days}
    return c.request("POST", _path(a.tenant), body)


def _status(c: AdminClient, a: argparse.Namespace) -> object:
    return c.request("GET", _path(a.tenant))


def _cancel(c: AdminClient, a: argparse.Namespace) -> object:
    return c.request("DELETE", _path(a.tenant))


def _execute(c: AdminClient, a: argparse.Namespace) -> object:
    result = c.request("POST", _path(a.tenant) + "/execute", {"force": bool(a.force)})
    if a.certificate and isinstance(result, dict) and result.get("certificate") is not None:
        text = json.dumps(result["certificate"], indent=2, sort_keys=True, ensure_ascii=False)
        Path(a.certificate).write_text(text + "\n", encoding="utf-8")
    return result


# --- offline verification -----------------------------------------------------------------------
def add_verify_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    verify = sub.add_parser(
        "verify-certificate",
        help="verify a tenant's deletion certificate with the audit public key",
        description="Check the signature of a deletion certificate (from `onshore admin tenant "
        "offboard-execute --certificate FILE`) with the audit public key (`onshore audit "
        "public-key`). Exit status 0: valid (the facts are printed); 1: invalid; 2: not "
        "checked.",
    )
    verify.add_argument("file", metavar="FILE", help="The certificate (JSON).")
    verify.add_argument(
        "--public-key", metavar="FILE", required=True, help="The audit public key (PEM)."
    )
    verify.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    from onshore.service.audit.integrity import load_public_key
    from onshore.service.offboarding.certificate import CertificateError, verify_certificate

    try:
        key = load_public_key(Path(args.public_key).read_bytes())
    except (OSError, ValueError) as exc:
        print(
            f"onshore audit: cannot read the public key {args.public_key}: {exc}", file=sys.stderr
        )
        return 2
    try:
        text = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"onshore audit: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    try:
        verified = verify_certificate(text, key)
    except CertificateError as exc:
        print(f"INVALID: {exc}")
        return 1
    print(json.dumps(verified.facts, indent=2, sort_keys=True, ensure_ascii=False))
    print(f"OK: the certificate is signed by the audit key {verified.key_fingerprint}")
    return 0
