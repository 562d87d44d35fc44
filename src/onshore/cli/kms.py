"""``onshore kms``: operator commands for the key hierarchy (server stopped).

``onshore kms rotate-root`` seals every tenant key under a new root key without touching
object data; run it again to finish an interrupted rotation
(:mod:`onshore.service.kms.rotation`).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path

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
        "key with it, then make it the root key. The server must be stopped. Resumable: if "
        "interrupted, run it again. Exit status: 0 done, 2 not done.",
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
    from onshore.service.audit.offline import OfflineAudit
    from onshore.service.kms.rotation import rotate_root
    from onshore.service.rootkey import RootKeyError, UnwrapError

    data_dir = Path(
        args.data_dir or os.environ.get(setting("data_dir").env) or str(setting("data_dir").default)
    )
    try:
        meta, _ = open_offline(data_dir)
    except (StorageUnavailable, sqlite3.DatabaseError) as exc:
        print(f"onshore kms rotate-root: {exc}", file=sys.stderr)
        return 2
    audit = OfflineAudit.from_settings()
    try:
        try:
            result = rotate_root(data_dir, meta)
        except (RootKeyError, UnwrapError, OSError) as exc:
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
