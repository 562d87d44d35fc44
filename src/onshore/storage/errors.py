"""How the storage layer's failures read to the layers above.

Storage implementations raise what their libraries raise (``OSError`` from the filesystem,
``sqlite3.Error`` from SQLite); callers above ask here what such an error *means* instead of
knowing each library's codes.
"""

from __future__ import annotations

import errno
import sqlite3

_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL = 13


def is_out_of_space(error: BaseException) -> bool:
    """Whether ``error`` says the disk (or a quota on it) is full: the write could not be made
    durable, nothing was committed, and it will work again once space is freed."""
    if isinstance(error, OSError):
        return error.errno in _NO_SPACE
    if isinstance(error, sqlite3.Error):
        return getattr(error, "sqlite_errorcode", None) == _SQLITE_FULL or (
            "database or disk is full" in str(error)
        )
    return False
