"""Shared pieces of the fuzz suite: settings, mutation strategies and the one assertion.

Every fuzz test states the same contract (DESIGN.md, hard guarantee 6): a parser either returns
a value or raises an :class:`~onshore.domain.errors.S3Error` subclass — never another exception
(which the server would turn into a 500), and never hangs. :func:`s3_outcome` encodes it.

Inputs are kept small and every example has a deadline, so a quadratic blow-up or a loop that
never ends shows up as a failure rather than a slow suite. The default example counts keep all of
``tests/fuzz`` near a minute; ``ONSHORE_FUZZ_EXAMPLES=N`` multiplies them for long runs
(``N`` is the count for a test whose default is 100, and the others scale with it)::

    ONSHORE_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/fuzz

Mutations (:func:`mutated_text`, :func:`mutated_bytes`) start from a valid input and apply a few
random edits — insert, delete, replace, truncate, duplicate a span, or splice in one of the
``HOSTILE`` values that have broken parsers before (non-ASCII digits, 5,000-digit numbers, lone
surrogates, percent signs, CR/LF) — so most examples get past the first check of a parser and
exercise the later ones.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from typing import AnyStr, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from onshore.domain.errors import S3Error

T = TypeVar("T")

_SCALE = int(os.environ.get("ONSHORE_FUZZ_EXAMPLES", "0") or 0)


def fuzz_settings(default_examples: int, *, deadline_ms: int = 2000) -> settings:
    """Hypothesis settings for one fuzz test: ``default_examples`` unless the environment asks
    for more, a per-example deadline, and no health check that small generated inputs trip."""
    examples = default_examples if _SCALE <= 0 else max(1, _SCALE * default_examples // 100)
    return settings(
        max_examples=examples,
        deadline=timedelta(milliseconds=deadline_ms),
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )


def s3_outcome(fn: Callable[[], T]) -> T | S3Error:
    """Run ``fn``: its result, or the ``S3Error`` it raised. Any other exception propagates and
    fails the test, and so does an ``InternalError`` (a 500 is never the answer to bad input)."""
    try:
        return fn()
    except S3Error as error:
        assert error.status != 500, f"{error.code}: {error.message}"
        return error


#: Values that have broken parsers somewhere: each is spliced into mutated inputs.
HOSTILE: tuple[str, ...] = (
    "",
    " ",
    "\t",
    "\x00",
    "\r\n",
    "\n",
    "²",  # str.isdigit() is True, int() refuses it
    "١٢",  # Arabic-Indic digits: int() accepts them
    "9" * 5000,  # beyond int()'s 4,300-digit limit
    "0" * 300 + "1",
    "-1",
    "-0",
    "+1",
    "1_0",
    "0x10",
    "1e3",
    "18446744073709551616",
    "%",
    "%%",
    "%zz",
    "%ff",
    "%C2%B2",
    "%00",
    "%2F",
    "\ud800",  # a lone surrogate (not encodable as UTF-8)
    "\u202e",
    "😀",
    "Ā",
    "=",
    "==",
    ",",
    ";",
    "/",
    "//",
    "..",
    "?",
    "&",
    "*",
    '"',
    "<",
    "&amp;",
    "A" * 3000,
)


def _edit(text: AnyStr, kind: str, start: int, stop: int, extra: AnyStr) -> AnyStr:
    start, stop = sorted((min(start, len(text)), min(stop, len(text))))
    if kind == "insert":
        return text[:start] + extra + text[start:]
    if kind == "delete":
        return text[:start] + text[stop:]
    if kind == "replace":
        return text[:start] + extra + text[stop:]
    if kind == "truncate":
        return text[:start]
    if kind == "duplicate":
        return text[:stop] + text[start:stop] + text[stop:]
    return text[:start] + text[start:stop].swapcase() + text[stop:]


_KINDS = ("insert", "delete", "replace", "truncate", "duplicate", "swapcase")


@st.composite
def mutated_text(draw: st.DrawFn, base: str, *, max_edits: int = 3) -> str:
    """``base`` with up to ``max_edits`` random edits (possibly none)."""
    text = base
    for _ in range(draw(st.integers(0, max_edits))):
        kind = draw(st.sampled_from(_KINDS))
        start = draw(st.integers(0, len(text)))
        stop = draw(st.integers(start, min(len(text), start + 40)))
        extra = draw(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=8)))
        text = _edit(text, kind, start, stop, extra)
    return text


@st.composite
def mutated_bytes(draw: st.DrawFn, base: bytes, *, max_edits: int = 3) -> bytes:
    """``base`` with up to ``max_edits`` random edits, including single-byte flips."""
    data = base
    for _ in range(draw(st.integers(0, max_edits))):
        kind = draw(st.sampled_from((*_KINDS, "flip")))
        start = draw(st.integers(0, len(data)))
        stop = draw(st.integers(start, min(len(data), start + 40)))
        if kind == "flip":
            if data:
                at = min(start, len(data) - 1)
                bit = 1 << draw(st.integers(0, 7))
                data = data[:at] + bytes([data[at] ^ bit]) + data[at + 1 :]
            continue
        extra = draw(
            st.one_of(
                st.sampled_from(HOSTILE).map(lambda s: s.encode("utf-8", "surrogatepass")),
                st.binary(max_size=8),
            )
        )
        data = _edit(data, kind, start, stop, extra)
    return data


def hostile_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """Arbitrary text, often one of ``HOSTILE`` or built around one."""
    return st.one_of(
        st.sampled_from(HOSTILE),
        st.text(max_size=max_size),
        st.builds(
            lambda a, b, c: a + b + c,
            st.text(max_size=8),
            st.sampled_from(HOSTILE),
            st.text(max_size=8),
        ),
    )
