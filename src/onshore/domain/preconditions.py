"""Conditional requests, evaluated in the order S3 (and RFC 9110 section 13.2.2) uses.

For GetObject and HeadObject:

1. ``If-Match`` present and false → 412 PreconditionFailed; if it is present and true,
   ``If-Unmodified-Since`` is ignored.
2. Otherwise ``If-Unmodified-Since`` false → 412.
3. ``If-None-Match`` present and it matches → 304 Not Modified; if it is present and does not
   match, ``If-Modified-Since`` is ignored.
4. Otherwise ``If-Modified-Since`` with no modification since → 304.

CopyObject and UploadPartCopy apply the same four checks to the *source* through the
``x-amz-copy-source-if-*`` headers, except that every failure is 412.
Dates compare at one-second precision, as ``Last-Modified`` is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime

from onshore.domain import etag as etags
from onshore.domain.errors import PreconditionFailed


class NotModified(Exception):
    """Raised for a 304: not an error, but it ends the request early."""

    def __init__(self, etag: str, last_modified: datetime) -> None:
        super().__init__("Not Modified")
        self.etag = etag
        self.last_modified = last_modified


def parse_http_date(value: str | None) -> datetime | None:
    """An HTTP date, or None if absent or unparseable (an unparseable date is ignored)."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):  # a huge day or year
        return None
    return parsed if parsed.tzinfo else None


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def check(
    headers: Mapping[str, str], etag: str, last_modified: datetime, *, prefix: str = "if-"
) -> None:
    """Apply the conditional headers (``if-*``, or ``x-amz-copy-source-if-*`` with that prefix)."""
    copy = prefix != "if-"
    if_match = headers.get(prefix + "match")
    if_none_match = headers.get(prefix + "none-match")
    if if_match is not None:
        if not etags.matches(if_match, etag):
            raise PreconditionFailed(Condition="If-Match")
    else:
        since = parse_http_date(headers.get(prefix + "unmodified-since"))
        if since is not None and _seconds(last_modified) > _seconds(since):
            raise PreconditionFailed(Condition="If-Unmodified-Since")
    if if_none_match is not None:
        if etags.matches(if_none_match, etag):
            if copy:
                raise PreconditionFailed(Condition="x-amz-copy-source-If-None-Match")
            raise NotModified(etag, last_modified)
    else:
        since = parse_http_date(headers.get(prefix + "modified-since"))
        if since is not None and _seconds(last_modified) <= _seconds(since):
            if copy:
                raise PreconditionFailed(Condition="x-amz-copy-source-If-Modified-Since")
            raise NotModified(etag, last_modified)
