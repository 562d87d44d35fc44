"""``onshore kms``: operator commands for the key hierarchy (server stopped).

``onshore kms rotate-root`` seals every tenant key under a new root key without touching
object data; run it again to finish an interrupted rotation
(:mod:`onshore.service.kms.rotation`). With ``root_key_service = "transit"`` the new root key is
the Transit key's latest version: the command moves a deployment from a local root key to the
key service, or re-wraps what older versions sealed after the key was rotated at the service.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys

from onshore.config import setting


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    data_dir = setting("data_dir")
    kms = commands.add_parser(
        "kms", help="Operator key management (root key rotation).", description=__doc__
    )
    actions = kms.add_subparsers(dest="kms_command", metavar="COMMAND")
    rotate = actions.add_parser(
        "rotate-root",
        help="Seal every tenant key under a new root key (no object data is rewritten).",
        description="Generate a new root key in the data directory and re-wrap every tenant "
        "key with it, then make it the root key. With root_key_service = transit, re-wrap "
        "every secret under the Transit key's latest version instead (moving from a local root "
        "key, whose root.key is then deleted, or after rotating the key at the service). The "
        "server must be stopped. Resumable: if interrupted, run it again. Exit status: 0 done, "
        "2 not done.",
    )
    rotate.add_argument(
        "--data-dir",
        metavar="DIR",
        default=None,
        help=f"Data directory. Default: {data_dir.default}. [{data_dir.env}]",
    )
    rotate.set_defaults(func=run_rotate_root)
    kms.set_defaults(func=lambda _args: (kms.print_help(), 2)[1])


def run_rotate_root(args: argparse.Namespace) -> int:
    from onshore.app import StorageUnavailable, open_offline
    from onshore.config import load
    from onshore.service import keysource
    from onshore.service.audit.offline import OfflineAudit
    from onshore.service.kms.rotation import RotationPending, rotate_root
    from onshore.service.rootkey import RootKeyError, UnwrapError

    try:
        config = load({"data_dir": args.data_dir})
    except ValueError as exc:
        print(f"onshore kms rotate-root: {exc}", file=sys.stderr)
        return 2
    data_dir = config.data_dir
    try:
        meta, _ = open_offline(data_dir)
    except (StorageUnavailable, sqlite3.DatabaseError) as exc:
        print(f"onshore kms rotate-root: {exc}", file=sys.stderr)
        return 2
    audit = OfflineAudit.from_settings()
    try:
        try:
            if keysource.service_of(config) == "transit":
                result = rotate_root(
                    data_dir,
                    meta,
                    target=keysource.transit_for(config),
                    previous=keysource.local_key(data_dir),
                )
            else:
                result = rotate_root(data_dir, meta)
        except (RootKeyError, UnwrapError, RotationPending, OSError) as exc:
            audit.record(meta.writer, "RotateRootKey", {}, error=("RotationFailed", str(exc)))
            print(f"onshore kms rotate-root: {exc}", file=sys.stderr)
            return 2
        audit.record(
            meta.writer,
            "RotateRootKey",
            {
                "oldKeyFingerprint": result.old_fingerprint,
                "newKeyFingerprint": result.new_fingerprint,
                "rewrapped": str(result.rewrapped),
            },
        )
    finally:
        meta.close()
    print(
        f"root key {result.old_fingerprint} -> {result.new_fingerprint}: "
        f"{result.rewrapped} tenant keys re-wrapped, {result.already_done} already were"
    )
    return 0
