"""Generate the parts of ``docs/configuration.md`` and ``docs/cli.md`` that restate the code.

Each generated block sits between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` markers; the
prose around the blocks is written by hand and left alone.

* ``settings`` in ``docs/configuration.md``: one row per entry of
  :data:`onshore.config.SETTINGS` (name, option, environment variable, type, default, help).
* ``commands`` and ``server-options`` in ``docs/cli.md``: read from the real argparse parser,
  :func:`onshore.cli.main.build_parser`, so they show what ``onshore --help`` and
  ``onshore server --help`` show.

Usage: ``python scripts/config_docs.py`` rewrites the blocks; ``--check`` exits 1 when one is out
of date. ``tests/unit/test_docs.py`` runs the check.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from onshore.cli.main import build_parser
from onshore.config import SETTINGS, Setting

DOCS = Path(__file__).resolve().parent.parent / "docs"
CONFIGURATION = DOCS / "configuration.md"
CLI = DOCS / "cli.md"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default(setting: Setting) -> str:
    if setting.default is None:
        return "(unset)"
    if isinstance(setting.default, bool):
        return "`true`" if setting.default else "`false`"
    return f"`{setting.default}`"


def settings_table() -> str:
    lines = [
        "| setting | option | environment variable | type | default | description |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for s in SETTINGS:
        flag = f"`{s.flag}`" if s.option else "(environment only)"
        lines.append(
            f"| `{s.name}` | {flag} | `{s.env}` | {s.type} | {_default(s)} | {_cell(s.help)} |"
        )
    return "\n".join(lines)


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise LookupError("the onshore parser has no subcommands")


def _usage(action: argparse.Action) -> str:
    if not action.option_strings:
        return str(action.metavar or action.dest)
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    metavar = action.metavar or action.dest.upper()
    return ", ".join(f"{option} {metavar}" for option in action.option_strings)


def commands_table() -> str:
    lines = ["| command | what it does |", "| --- | --- |"]
    for choice in _subcommands(build_parser())._choices_actions:
        lines.append(f"| `onshore {choice.dest}` | {_cell(choice.help or '')} |")
    return "\n".join(lines)


def server_options_table() -> str:
    server = _subcommands(build_parser()).choices["server"]
    lines = ["| option | description |", "| --- | --- |"]
    for action in server._actions:
        lines.append(f"| `{_usage(action)}` | {_cell(action.help or '')} |")
    return "\n".join(lines)


def admin_commands_table() -> str:
    admin = _subcommands(build_parser()).choices["admin"]
    lines = ["| command | what it does |", "| --- | --- |"]
    for group_name, group in _subcommands(admin).choices.items():
        for action in _subcommands(group)._choices_actions:
            parser = _subcommands(group).choices[action.dest]
            args = " ".join(
                f"[{_usage(a)}]" if a.option_strings else str(a.metavar)
                for a in parser._actions
                if a.dest != "help"
            )
            usage = f"onshore admin {group_name} {action.dest} {args}".strip()
            lines.append(f"| `{usage}` | {_cell(action.help or '')} |")
    return "\n".join(lines)


BLOCKS: Mapping[Path, Mapping[str, Callable[[], str]]] = {
    CONFIGURATION: {"settings": settings_table},
    CLI: {
        "commands": commands_table,
        "server-options": server_options_table,
        "admin-commands": admin_commands_table,
    },
}


def fill(text: str, name: str, body: str) -> str:
    """``text`` with the block ``name`` replaced by ``body``. Raises ValueError if the markers
    are missing or out of order."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    head, found, rest = text.partition(start)
    _, found_end, tail = rest.partition(end)
    if not found or not found_end:
        raise ValueError(f"markers {start} ... {end} not found")
    return f"{head}{start}\n{body}\n{end}{tail}"


def render(path: Path) -> str:
    text = path.read_text()
    for name, make in BLOCKS[path].items():
        text = fill(text, name, make())
    return text


def stale() -> list[Path]:
    """The documents whose generated blocks differ from what the code says now."""
    return [path for path in BLOCKS if render(path) != path.read_text()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if a block is out of date")
    args = parser.parse_args(argv)
    if args.check:
        outdated = stale()
        for path in outdated:
            print(f"{path} is out of date: run python scripts/config_docs.py", file=sys.stderr)
        return 1 if outdated else 0
    for path in BLOCKS:
        path.write_text(render(path))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
