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


class _Glob:
    """A wildcard pattern, split at its ``*``: a list of fixed-length segments, each a regular
    expression with no quantifier (literal text and ``.`` for ``?``). Matching anchors the
    first segment at the start, the last at the end, and finds the middle ones leftmost in
    between: linear in the value for each segment, never the exponential backtracking a
    ``.*``-per-star regular expression allows (a policy is tenant input)."""

    __slots__ = ("segments",)

    def __init__(self, segments: list[tuple[re.Pattern[str], int]]) -> None:
        self.segments = segments

    def matches(self, value: str) -> bool:
        segments = self.segments
        if len(segments) == 1:
            regex, length = segments[0]
            return length == len(value) and regex.fullmatch(value) is not None
        head, head_len = segments[0]
        tail, tail_len = segments[-1]
        end = len(value) - tail_len
        if end < head_len:
            return False
        if head.fullmatch(value, 0, head_len) is None:
            return False
        if tail.fullmatch(value, end) is None:
            return False
        pos = head_len
        for regex, _ in segments[1:-1]:
            found = regex.search(value, pos, end)
            if found is None:
                return False
            pos = found.end()
        return True


def _build(pieces: list[tuple[str, str]], ignore_case: bool) -> _Glob:
    """``pieces``: ("text", literal), ("?", "") or ("*", "")."""
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    segments: list[tuple[re.Pattern[str], int]] = []
    regex: list[str] = []
    length = 0
    for kind, text in pieces:
        if kind == "*":
            segments.append((re.compile("".join(regex), flags), length))
            regex, length = [], 0
        elif kind == "?":
            regex.append(".")
            length += 1
        else:
            regex.append(re.escape(text))
            length += len(text)
    segments.append((re.compile("".join(regex), flags), length))
    return _Glob(segments)


def _wild_pieces(text: str) -> list[tuple[str, str]]:
    pieces: list[tuple[str, str]] = []
    literal: list[str] = []
    for char in text:
        if char in "*?":
            if literal:
                pieces.append(("text", "".join(literal)))
                literal = []
            pieces.append((char, ""))
        else:
            literal.append(char)
    if literal:
        pieces.append(("text", "".join(literal)))
    return pieces


@lru_cache(maxsize=4096)
def _compiled(pattern: str, ignore_case: bool) -> _Glob:
    return _build(_wild_pieces(pattern), ignore_case)


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


def _expanded(pattern: str, context: Context, ignore_case: bool) -> _Glob | None:
    pieces: list[tuple[str, str]] = []
    last = 0
    for found in _VARIABLE.finditer(pattern):
        pieces.extend(_wild_pieces(pattern[last : found.start()]))
        value = variable_value(found.group(1), context)
        if value is None:
            return None
        pieces.append(("text", value))
        last = found.end()
    pieces.extend(_wild_pieces(pattern[last:]))
    return _build(pieces, ignore_case)


def matches(
    pattern: str, value: str, context: Context | None = None, *, ignore_case: bool = False
) -> bool:
    """Whether ``value`` matches the wildcard ``pattern`` (variables from ``context``, which is
    None when the policy version does not substitute them)."""
    if pattern == "*":
        return True
    if context is None or "${" not in pattern:
        return _compiled(pattern, ignore_case).matches(value)
    glob = _expanded(pattern, context, ignore_case)
    return glob is not None and glob.matches(value)


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
