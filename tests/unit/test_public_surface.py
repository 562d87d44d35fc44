"""The deliberate public surface of onshore, pinned (STYLE habit 8).

What users and other tools rely on: the Python package exports only ``__version__``; the
console script ``onshore`` and its subcommands; the ``onshore --version`` line. Changing any of
these is a decision, made by editing this file.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import onshore
from onshore.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_package_exports_only_the_version() -> None:
    assert onshore.__all__ == ["__version__"]
    assert re.fullmatch(r"\d+\.\d+\.\d+(\S*)", onshore.__version__)


def test_version_agrees_with_pyproject() -> None:
    assert PYPROJECT["project"]["version"] == onshore.__version__


def test_console_script_entry_point() -> None:
    assert PYPROJECT["project"]["scripts"] == {"onshore": "onshore.cli.main:main"}
    installed = entry_points(group="console_scripts", name="onshore")
    assert [ep.value for ep in installed] == ["onshore.cli.main:main"]
    assert callable(next(iter(installed)).load())


def test_subcommands() -> None:
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert sorted(commands.choices) == [
        "admin",
        "audit",
        "bench",
        "config",
        "fsck",
        "kms",
        "license",
        "licensor",
        "operator",
        "server",
    ]


def test_version_output() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "onshore", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"onshore {onshore.__version__}\n"


def test_no_command_prints_usage_and_exits_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "onshore"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert result.stdout.startswith("usage: onshore")
