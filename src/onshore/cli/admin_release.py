"""``onshore admin release verify FILE``: check a release artifact before installing it.

The artifact must match the signature file the licensor made with ``onshore licensor
sign-release`` (``FILE.sig`` by default), signed by one of the pinned licensor keys
(``licensor_public_keys``). Exit status: 0 verified, 1 refused, 2 bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from onshore.cli.admin_group import admin_areas
from onshore.config import setting
from onshore.service.licensing import releases, signing


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    release = admin_areas(commands).add_parser("release", help="verify signed releases")
    sub = release.add_subparsers(dest="release_command", metavar="COMMAND", required=True)
    verify = sub.add_parser("verify", help="check a release artifact against the pinned keys")
    verify.add_argument("file", type=Path)
    verify.add_argument("--signature", type=Path, help="signature file (default: FILE.sig)")
    keys = setting("licensor_public_keys")
    verify.add_argument(
        "--licensor-public-keys", help=f"pinned licensor keys [{keys.env}]", default=None
    )
    verify.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    text = args.licensor_public_keys or os.environ.get(setting("licensor_public_keys").env)
    try:
        trusted = signing.parse_public_keys(text)
        if not trusted:
            print("onshore: no licensor public key is pinned", file=sys.stderr)
            return 2
        sig = args.signature or Path(str(args.file) + ".sig")
        signer = releases.verify(args.file, sig.read_text(), trusted)
    except OSError as exc:
        print(f"onshore: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    except (signing.SignatureProblem, releases.ReleaseProblem) as exc:
        print(f"onshore: release refused: {exc}", file=sys.stderr)
        return 1
    print(f"{args.file.name}: signature valid (licensor key {signer}); safe to install")
    return 0
