"""Decimal numbers in request fields (headers, query parameters, XML), parsed strictly.

Python's own tools are wrong for untrusted input in three ways: ``str.isdigit()`` is true for
characters that ``int()`` refuses (``"²"``), ``int()`` accepts what no S3 client sends (``"١٢"``,
``"1_000"``, ``" 7"``), and since Python 3.11 ``int()`` raises ``ValueError`` for strings of more
than 4,300 digits. Any of these, unguarded, turns a bad request into a 500.

:func:`decimal` accepts ASCII digits only, of any length; a value too large to matter is clamped
to :data:`HUGE` (more than any size, count or duration S3 allows), so "too large" is still
answered by the caller's own range check with the right S3 error.
"""

from __future__ import annotations

#: Every parsed value is at most this (about 10^19, beyond any S3 size or count).
HUGE = 10**19
_MAX_DIGITS = 19


def decimal(text: str) -> int | None:
    """The value of ``text`` if it is one or more ASCII digits (clamped to :data:`HUGE`), else
    None."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    significant = text.lstrip("0")
    if len(significant) > _MAX_DIGITS:
        return HUGE
    return min(int(significant or "0"), HUGE)
