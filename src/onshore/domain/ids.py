"""Identifiers the server generates: request ids, version ids and upload ids.

Version ids and upload ids are opaque to clients. Ours are 32 URL-safe characters: a
time-ordered prefix (so ids created later sort later, which helps humans reading listings) and
random bits (so they cannot be guessed).
"""

from __future__ import annotations

import base64
import itertools
import os
import time


def _token(nbytes_random: int) -> str:
    stamp = time.time_ns().to_bytes(8, "big")
    raw = stamp + os.urandom(nbytes_random)
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def new_version_id() -> str:
    return _token(16)


def new_upload_id() -> str:
    return _token(22)


_REQUEST_PREFIX = os.urandom(3).hex().upper()
_REQUEST_COUNTER = itertools.count(int.from_bytes(os.urandom(4), "big"))


def new_request_id() -> str:
    """A 16-character upper-case hex id, shaped like AWS's ``x-amz-request-id``: a random
    per-process prefix and a counter (unique, cheap; request ids need not be secret)."""
    return f"{_REQUEST_PREFIX}{next(_REQUEST_COUNTER) & 0xFFFFFFFFFF:010X}"


def host_id(request_id: str) -> str:
    """The ``x-amz-id-2`` value for a request: opaque, derived from the request id."""
    return base64.b64encode(bytes.fromhex(request_id) * 3).decode("ascii")
