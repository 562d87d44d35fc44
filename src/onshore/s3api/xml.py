"""XML in and out.

Out: S3 responses are small, fixed shapes, so they are built as text with :func:`element`
(escaping every value) rather than through a DOM; this is several times faster than
ElementTree on listing pages. Keys that XML 1.0 cannot carry (control characters) are only
representable with ``encoding-type=url``; without it they are escaped as character references
so the document stays well formed for lenient parsers.

In: request bodies are parsed with defusedxml, which rejects entity expansion, external
entities and DTDs. Bodies are size-limited before parsing (``max_xml_body``), nesting deeper
than S3's shapes is rejected, and any parse failure is ``MalformedXML``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from onshore.domain.errors import MalformedXML
from onshore.domain.times import iso_ms, to_us

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
MAX_DEPTH = 8

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;", "\r": "&#13;"}
_NEEDS_ESCAPE = re.compile(r"[&<>\"'\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _escape_char(match: re.Match[str]) -> str:
    char = match.group(0)
    return _ESCAPES.get(char) or f"&#{ord(char)};"


def escape(text: str) -> str:
    if _NEEDS_ESCAPE.search(text) is None:
        return text
    return _NEEDS_ESCAPE.sub(_escape_char, text)


def element(name: str, value: str | int | bool | None) -> str:
    """``<name>value</name>`` with the value escaped; booleans as ``true``/``false``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return f"<{name}>{'true' if value else 'false'}</{name}>"
    return f"<{name}>{escape(str(value))}</{name}>"


def document(root: str, children: Iterable[str]) -> bytes:
    """A complete S3 response document with the S3 namespace on the root element."""
    # One join and one encode: a listing page is ~300 KB, and each copy of it costs page faults.
    return "".join([f'{DECLARATION}<{root} xmlns="{S3_NS}">', *children, f"</{root}>"]).encode()


def timestamp(moment: datetime) -> str:
    """ISO 8601 with milliseconds and ``Z``, as S3 writes times in XML (naive: UTC)."""
    return iso_ms(to_us(moment) // 1000)


def timestamp_us(micros: int) -> str:
    """:func:`timestamp` of a time in microseconds since the epoch, as the store keeps it."""
    return iso_ms(micros // 1000)


def parse(body: bytes) -> Element:
    """Parse a request body safely; raise MalformedXML on anything unexpected."""
    if not body.strip():
        raise MalformedXML()
    try:
        root: Element = SafeET.fromstring(body, forbid_dtd=True)
    except (SafeET.ParseError, DefusedXmlException, ValueError, SyntaxError, LookupError):
        # LookupError: an XML declaration naming an encoding Python does not know.
        raise MalformedXML() from None
    if _depth(root) > MAX_DEPTH:
        raise MalformedXML()
    return root


def _depth(node: Element, level: int = 1) -> int:
    if level > MAX_DEPTH:
        return level
    return max((_depth(child, level + 1) for child in node), default=level)


def local(tag: str) -> str:
    """The tag name without its ``{namespace}``."""
    return tag.rpartition("}")[2]


def child(node: Element, name: str) -> Element | None:
    for sub in node:
        if local(sub.tag) == name:
            return sub
    return None


def children(node: Element, name: str) -> list[Element]:
    return [sub for sub in node if local(sub.tag) == name]


def text(node: Element, name: str) -> str | None:
    sub = child(node, name)
    if sub is None:
        return None
    return (sub.text or "").strip()
