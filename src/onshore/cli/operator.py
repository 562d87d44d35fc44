"""``onshore operator``: appoint the deployment's system, security and audit administrators.

Runs on the server host, against the data directory (the server may be running): only whoever
runs the deployment can appoint administrators. ``create`` prints the new operator's access key
and secret once; they sign admin API requests (``onshore admin --access-key ... --secret-key
...``). See :mod:`onshore.service.operators` for what each role may do.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from onshore.config import setting
from onshore.domain.iam import IamError
from onshore.service.operators import Operators
from onshore.storage.sqlite import SqliteMetadataStore

if TYPE_CHECKING:
    from onshore.service.audit.offline import OfflineAudit

HELP = "appoint system, security and audit administrators (on the server host)"


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    data_dir = setting("data_dir")
    parser = commands.add_parser("operator", help=HELP, description=HELP.capitalize() + ".")
    parser.add_argument(
        "--data-dir", metavar="DIR", default=None, help=f"Data directory. [{data_dir.env}]"
    )
    parser.add_argument("--json", action="store_true", help="Print JSON.")
    actions = parser.add_subparsers(dest="operator_command", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create an operator (prints its secret once)")
    create.add_argument("name")
    create.add_argument("--role", required=True, choices=["system", "security", "audit"])
    create.set_defaults(func=_create)
    listing = actions.add_parser("list", help="list operators and their roles")
    listing.set_defaults(func=_list)
    delete = actions.add_parser("delete", help="delete an operator (its key stops working)")
    delete.add_argument("name")
    delete.set_defaults(func=_delete)


def _open(args: argparse.Namespace) -> tuple[SqliteMetadataStore, Operators]:
    from onshore.app import METADATA_FILE
    from onshore.config import load
    from onshore.service.keysource import root_key_for
    from onshore.service.rootkey import RootKeyError

    try:
        config = load({"data_dir": args.data_dir})
    except ValueError as exc:
        raise SystemExit(f"onshore: {exc}") from None
    folder = config.data_dir
    if not (folder / METADATA_FILE).is_file():
        raise SystemExit(f"onshore: no onshore data in {folder} (start the server once first)")
    try:
        root_key = root_key_for(config)
    except RootKeyError as exc:
        raise SystemExit(f"onshore: {exc}") from None
    meta = SqliteMetadataStore(folder / METADATA_FILE)
    return meta, Operators(meta, root_key, ttl=0)


def _audit() -> OfflineAudit:
    """How this command records itself in the audit trail (see onshore.service.audit.offline)."""
    from onshore.service.audit.offline import OfflineAudit

    return OfflineAudit.from_settings()


def _create(args: argparse.Namespace) -> int:
    from onshore.service.operators import Role

    meta, operators = _open(args)
    audit, params = _audit(), {"operatorName": args.name, "role": args.role}
    try:
        with audit.recording("CreateOperator", params):
            operator, secret = operators.create(args.name, Role(args.role))
    except IamError as error:
        audit.record(meta.writer, "CreateOperator", params, error=(error.code, error.message))
        print(f"onshore: {error.message}", file=sys.stderr)
        return 1
    finally:
        meta.close()
    if args.json:
        print(
            json.dumps(
                {
                    "name": operator.name,
                    "role": operator.role.value,
                    "access_key_id": operator.access_key,
                    "secret_access_key": secret,
                }
            )
        )
    else:
        print(f"operator {operator.name} ({operator.role.value} administrator)")
        print(f"  AccessKey: {operator.access_key}")
        print(f"  SecretKey: {secret}   (shown only now)")
    return 0


def _list(args: argparse.Namespace) -> int:
    meta, operators = _open(args)
    try:
        found = operators.list()
    finally:
        meta.close()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": o.name,
                        "role": o.role.value,
                        "access_key_id": o.access_key,
                        "created": o.created.isoformat(),
                    }
                    for o in found
                ]
            )
        )
        return 0
    for o in found:
        print(f"{o.name:<24} {o.role.value:<9} {o.access_key}  {o.created:%Y-%m-%d %H:%M}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    meta, operators = _open(args)
    audit, params = _audit(), {"operatorName": args.name}
    try:
        with audit.recording("DeleteOperator", params):
            operators.delete(args.name)
    except IamError as error:
        audit.record(meta.writer, "DeleteOperator", params, error=(error.code, error.message))
        print(f"onshore: {error.message}", file=sys.stderr)
        return 1
    finally:
        meta.close()
    return 0
