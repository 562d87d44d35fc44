"""The ``onshore admin`` command group, shared by every module that adds an admin area.

Each area (``release``, ``tenant``, ...) calls :func:`admin_areas` with the top-level
subparsers and adds its own parser to what it returns; whichever module comes first creates the
group, so areas registered by different modules coexist.
"""

from __future__ import annotations

import argparse

_AREAS: dict[int, argparse._SubParsersAction] = {}  # type: ignore[type-arg]


def admin_areas(commands: argparse._SubParsersAction) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    parser = commands.choices.get("admin")
    if parser is None or id(parser) not in _AREAS:
        parser = commands.add_parser("admin", help="operator administration")
        _AREAS[id(parser)] = parser.add_subparsers(dest="admin_area", metavar="AREA", required=True)
    return _AREAS[id(parser)]


def adopt(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    parser: argparse.ArgumentParser,
    areas: argparse._SubParsersAction,  # type: ignore[type-arg]
) -> None:
    """Make ``parser`` (already added to ``commands`` as ``admin``, with its own options) the
    group that :func:`admin_areas` returns ``areas`` of."""
    assert commands.choices.get("admin") is parser
    _AREAS[id(parser)] = areas
