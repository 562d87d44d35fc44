"""``onshore config show``: the effective configuration, where each value came from, secrets
masked.

Reads the same sources, in the same order, as ``onshore server`` (:func:`onshore.config.resolve`:
command-line option, environment variable, configuration file, default) and then validates the
whole, so a configuration that ``show`` accepts is one the server starts with.
"""

from __future__ import annotations

import argparse
import json
import sys

from onshore.config import ConfigError, load, resolve

HELP = "show the effective configuration and the source of each value (secrets masked)"


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser("config", help=HELP, description=HELP.capitalize() + ".")
    actions = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = actions.add_parser("show", help=HELP, description=HELP.capitalize() + ".")
    show.add_argument(
        "--config", metavar="FILE", default=None, help="Configuration file to read (TOML)."
    )
    show.add_argument("--json", action="store_true", help="Print one JSON document.")
    show.set_defaults(func=_show)


def _show(args: argparse.Namespace) -> int:
    overrides = {"config": args.config}
    try:
        resolved = resolve(overrides)
        load(overrides)  # the cross-setting checks the server makes at start-up
    except ConfigError as exc:
        print(f"onshore: {exc}", file=sys.stderr)
        return 2
    if args.json:
        document = {
            r.setting.name: {"value": r.shown() or None, "source": r.source, "from": r.origin}
            for r in resolved
        }
        print(json.dumps(document, indent=2))
        return 0
    rows = [("setting", "value", "source")]
    for r in resolved:
        source = r.source if not r.origin else f"{r.source} ({r.origin})"
        rows.append((r.setting.name, r.shown() or "(unset)", source))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for name, value, source in rows:
        print(f"{name:<{widths[0]}}  {value:<{widths[1]}}  {source}")
    return 0
