"""HTTP byte ranges for GetObject (RFC 9110 section 14, as S3 applies it).

S3 serves one range per request: ``bytes=first-last``, ``bytes=first-`` (to the end) and
``bytes=-suffix`` (the last *suffix* bytes). A header that does not parse, or that asks for
several ranges, is ignored and the whole object is returned with 200, as S3 does. A range that
parses but starts at or beyond the end of the object is unsatisfiable: 416 ``InvalidRange``.
"""

from __future__ import annotations

from dataclasses import dataclass

from onshore.domain.errors import InvalidRange


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
    first, dash, last = spec.strip().partition("-")
    first, last = first.strip(), last.strip()
    if not dash or not (first.isdigit() or first == "") or not (last.isdigit() or last == ""):
        return None
    if first == "":
        if last == "":
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise _unsatisfiable(size)
        return ByteRange(max(0, size - suffix), size - 1, size)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise _unsatisfiable(size)
    return ByteRange(start, min(end, size - 1), size)


def _unsatisfiable(size: int) -> InvalidRange:
    return InvalidRange(headers={"Content-Range": f"bytes */{size}"}, ActualObjectSize=str(size))
