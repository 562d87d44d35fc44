"""The ``onshore`` command.

``onshore server`` runs the S3 API; ``onshore fsck`` checks (and repairs) a stopped server's
data directory; ``onshore audit`` exports and verifies the audit trail; ``onshore bench`` runs
the benchmark against any S3 endpoint; ``onshore admin`` administers tenants, users, keys,
policies and quotas over the admin API. Options of ``onshore server`` are generated from
:data:`onshore.config.SETTINGS`, so the help text, the environment variables and
``docs/configuration.md`` never disagree.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from onshore import __version__
from onshore.cli import admin, admin_release, audit, config, fsck, kms, license, licensor, operator
from onshore.config import SETTINGS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="onshore",
        description="onshore: an S3-compatible object store for sovereign cloud regions.",
    )
    parser.add_argument("--version", action="version", version=f"onshore {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    server = commands.add_parser(
        "server",
        help="run the S3 API server",
        description="Run the S3 API server. Every option can also be set with the environment "
        "variable shown in brackets; command-line options win.",
    )
    for setting in SETTINGS:
        if not setting.option:
            continue
        default = "" if setting.default is None else f" Default: {setting.default}."
        kwargs: dict[str, object] = {
            "dest": setting.name,
            "default": None,
            "help": f"{setting.help}{default} [{setting.env}]",
        }
        if setting.type == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["metavar"] = setting.name.split("_")[-1].upper()
            kwargs["type"] = {"int": int, "float": float}.get(setting.type, str)
        server.add_argument(setting.flag, **kwargs)  # type: ignore[arg-type]
    server.set_defaults(func=_run_server)
    fsck.register(commands)
    config.register(commands)
    license.register(commands)
    licensor.register(commands)
    admin.register(commands)  # before admin_release: it creates the admin group
    admin_release.register(commands)
    operator.register(commands)
    audit.register(commands)
    kms.register(commands)
    try:
        from onshore.bench.cli import register
    except ImportError:
        pass
    else:
        register(commands)
    return parser


def _run_server(args: argparse.Namespace) -> int:
    from onshore.cli.server import run

    overrides = {s.name: getattr(args, s.name, None) for s in SETTINGS if s.option}
    return run(overrides)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    result: int = func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
