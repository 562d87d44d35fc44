"""Wildcards and policy variables, as ``Action``, ``Resource`` and the String/Arn conditions use
them.

``*`` matches any run of characters (``/`` included), ``?`` exactly one. A *policy variable*
``${aws:username}`` is replaced by the request's value for that key before matching, and
``${key, 'default'}`` falls back to ``default`` when the request has no such key. Three
variables stand for the wildcard characters themselves, matched literally: ``${*}``, ``${?}``
and ``${$}``. A variable the request does not carry (``${aws:username}`` for an anonymous
request) makes the pattern match nothing, as AWS does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

Context = Mapping[str, tuple[str, ...]]
_LITERALS = {"*": "*", "?": "?", "$": "$"}
_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def normalize_key(key: str) -> str:
    """Condition keys are case-insensitive, except the tag name after ``/``."""
    head, slash, tail = key.partition("/")
    return head.lower() + slash + tail


def _glob_regex(pattern: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


@lru_cache(maxsize=4096)
def _compiled(regex: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def variable_value(name: str, context: Context) -> str | None:
    """The value a ``${...}`` body stands for in ``context``, or None."""
    name, comma, default = name.partition(",")
    name = name.strip()
    if name in _LITERALS:
        return _LITERALS[name]
    values = context.get(normalize_key(name))
    if values:
        return values[0]
    if comma:
        default = default.strip()
        if len(default) >= 2 and default[0] == default[-1] == "'":
            return default[1:-1]
    return None


def expand(pattern: str, context: Context | None) -> str | None:
    """The regular expression for ``pattern``, variables substituted; None if one is missing."""
    if context is None or "${" not in pattern:
        return _glob_regex(pattern)
    out: list[str] = []
    last = 0
    for found in _VARIABLE.finditer(pattern):
        out.append(_glob_regex(pattern[last : found.start()]))
        value = variable_value(found.group(1), context)
        if value is None:
            return None
        out.append(re.escape(value))
        last = found.end()
    out.append(_glob_regex(pattern[last:]))
    return "".join(out)


def matches(
    pattern: str, value: str, context: Context | None = None, *, ignore_case: bool = False
) -> bool:
    """Whether ``value`` matches the wildcard ``pattern`` (variables from ``context``, which is
    None when the policy version does not substitute them)."""
    if pattern == "*":
        return True
    regex = expand(pattern, context)
    if regex is None:
        return False
    return _compiled(regex, ignore_case).fullmatch(value) is not None


def substitute(text: str, context: Context | None) -> str | None:
    """``text`` with its variables replaced (for the exact-match operators); None if one is
    missing."""
    if context is None or "${" not in text:
        return text
    out: list[str] = []
    last = 0
    for found in _VARIABLE.finditer(text):
        value = variable_value(found.group(1), context)
        if value is None:
            return None
        out.append(text[last : found.start()])
        out.append(value)
        last = found.end()
    out.append(text[last:])
    return "".join(out)
