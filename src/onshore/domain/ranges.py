"""HTTP byte ranges for GetObject (RFC 9110 section 14, as S3 applies it).

S3 serves one range per request: ``bytes=first-last``, ``bytes=first-`` (to the end) and
``bytes=-suffix`` (the last *suffix* bytes). A header that does not parse, or that asks for
several ranges, is ignored and the whole object is returned with 200, as S3 does. A range that
parses but starts at or beyond the end of the object is unsatisfiable: 416 ``InvalidRange``.
"""

from __future__ import annotations

from dataclasses import dataclass

from onshore.domain.errors import InvalidRange
from onshore.domain.numbers import decimal


@dataclass(frozen=True, slots=True)
class ByteRange:
    """A satisfiable range: ``start`` and ``end`` inclusive, within an object of ``total``."""

    start: int
    end: int
    total: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.total}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range to serve for ``header`` on an object of ``size`` bytes, or None for all of it.

    Raises InvalidRange when the range is well formed but unsatisfiable.
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    first, last = decimal(first_text.strip()), decimal(last_text.strip())
    if not dash or (first is None and first_text.strip()) or (last is None and last_text.strip()):
        return None
    if first is None:
        if last is None:
            return None
        if last == 0 or size == 0:
            raise _unsatisfiable(size)
        return ByteRange(max(0, size - last), size - 1, size)
    start = first
    end = size - 1 if last is None else last
    if last is not None and end < start:
        return None
    if start >= size:
        raise _unsatisfiable(size)
    return ByteRange(start, min(end, size - 1), size)


def _unsatisfiable(size: int) -> InvalidRange:
    return InvalidRange(headers={"Content-Range": f"bytes */{size}"}, ActualObjectSize=str(size))
