"""The server process's garbage collector settings (:mod:`onshore.service.collector`), checked in
a child interpreter so this test process keeps its own."""

from __future__ import annotations

import json
import subprocess
import sys

from onshore.service.collector import YOUNG_THRESHOLD

PROBE = """
import gc, json
leftover = []
leftover.append(leftover)  # start-up garbage in a cycle: collected, not frozen
del leftover
from onshore.service.collector import tune_collector
before = gc.get_freeze_count()
tune_collector()
print(json.dumps({
    "before": before,
    "frozen": gc.get_freeze_count(),
    "threshold": gc.get_threshold(),
    "young": gc.get_count()[0],
}))
"""


def test_tune_collector_freezes_start_up_and_collects_young_objects_less_often() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    seen = json.loads(done.stdout)
    assert seen["before"] == 0
    assert seen["frozen"] > 1000  # the interpreter's and onshore's objects, moved out of reach
    assert seen["threshold"][0] == YOUNG_THRESHOLD > 700
    assert seen["threshold"][1:] == [10, 10]  # the older generations' ratios are CPython's
    assert seen["young"] < 50  # counting restarts from what was frozen
