"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from onshore.service.blocking import Blocking


@pytest.fixture
def blocking() -> Iterator[Blocking]:
    """A small pool of I/O threads, stopped (after its queued jobs) at the end of the test."""
    pool = Blocking(4)
    yield pool
    pool.shutdown()
