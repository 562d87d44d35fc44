"""Injected I/O errors, for tests of how the server survives a failing disk.

``ONSHORE_FAULT_IO`` (read once, at import) names blob operations that fail with ``EIO``, as a
disk with bad sectors or a lost network volume makes them fail: ``write``, ``fsync`` and/or
``read``, comma-separated. Unset (always, outside tests), :func:`check` is an empty function.
``tests/api/test_io_errors.py`` arms each and checks that the request gets a clean 500, the
server stays up, and nothing half-written stays behind.
"""

from __future__ import annotations

import errno
import os

ENV = "ONSHORE_FAULT_IO"
_ARMED = frozenset(part.strip() for part in os.environ.get(ENV, "").split(",") if part.strip())

if not _ARMED:

    def check(operation: str) -> None:
        """Fail ``operation`` with EIO when a test armed it (disarmed: nothing)."""

else:

    def check(operation: str) -> None:
        """Fail ``operation`` with EIO when a test armed it (armed: see above)."""
        if operation in _ARMED:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
