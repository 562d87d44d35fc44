"""Secrets and signatures are compared in constant time, everywhere.

A ``==`` between a computed and a given signature returns as soon as a byte differs, which leaks
through timing how much of a forged signature was right. This test reads the source of every
module that handles credentials and fails on any ``==`` / ``!=`` / ``in`` whose operands are
named like a signature, secret, key digest or MAC: those must go through
``hmac.compare_digest``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import onshore

SOURCE = Path(onshore.__file__).parent
SENSITIVE = re.compile(r"(signature|secret|(^|_)sig($|_)|mac$|^computed|^expected|^given)", re.I)
MODULES = [
    *sorted((SOURCE / "s3api" / "auth").glob("*.py")),
    SOURCE / "service" / "identity.py",
    SOURCE / "service" / "credentials.py",
    SOURCE / "service" / "rootkey.py",
]


def _names(node: ast.AST) -> list[str]:
    found = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            found.append(sub.id)
        elif isinstance(sub, ast.Attribute):
            found.append(sub.attr)
    return found


def _literal_only(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) or (
        isinstance(node, ast.Call) and _names(node.func)[-1:] in (["len"], ["bool"])
    )


def test_no_plain_comparison_of_signatures_or_secrets() -> None:
    offences = []
    for path in MODULES:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            if not all(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
                continue
            operands = [node.left, *node.comparators]
            if any(_literal_only(operand) for operand in operands):
                continue  # a constant, a length or a truth value reveals nothing
            names = [n for operand in operands for n in _names(operand)]
            if any(SENSITIVE.search(name) for name in names):
                offences.append(f"{path.relative_to(SOURCE)}:{node.lineno}: {ast.unparse(node)}")
    assert offences == []


def test_the_checker_catches_a_plain_comparison(tmp_path: Path) -> None:
    tree = ast.parse("def check(computed, given):\n    return computed == given\n")
    compare = next(n for n in ast.walk(tree) if isinstance(n, ast.Compare))
    assert any(SENSITIVE.search(n) for n in _names(compare.left))


def test_signature_checks_use_compare_digest() -> None:
    for name in ("sigv4.py", "payload.py"):
        assert "hmac.compare_digest" in (SOURCE / "s3api" / "auth" / name).read_text()
