"""Keeping a server process's memory down: heap trimming, the skipped resource tracker, and the
bench's PSS figure beside RSS."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from onshore.bench.procstat import ServerMonitor, pss_bytes, rss_bytes
from onshore.service import heap

glibc = pytest.mark.skipif(heap.heap_usage() is None, reason="needs glibc's mallinfo2")


def _run(script: str) -> str:
    """Run ``script`` in a fresh interpreter (its own heap, no test runner in it)."""
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@glibc
def test_a_fragmented_heap_is_trimmed_once_then_left_alone() -> None:
    script = """
        from onshore.service import heap

        trimmer = heap.HeapTrimmer(slack=1024 * 1024)
        keep, big = [], []
        for _ in range(64):  # buffers (below the mmap threshold) pinned apart by survivors
            big.append(bytearray(100 * 1024))
            keep.append(bytearray(600))
        del big
        first = trimmer.trim_if_worth_it()
        # nothing allocated or freed since: the free pages are already back with the kernel
        second = trimmer.trim_if_worth_it()
        print(first, second, trimmer.trims)
        """
    assert _run(script) == "True False 1"


@glibc
def test_start_trimming_runs_one_daemon_thread_per_process() -> None:
    first = heap.start_trimming()
    assert first is not None and first is heap.start_trimming()
    assert first._thread.daemon and first._thread.is_alive()


def test_spawned_workers_start_no_resource_tracker() -> None:
    script = """
        import multiprocessing, os
        from multiprocessing import resource_tracker
        from onshore.cli.supervisor import skip_resource_tracker

        skip_resource_tracker()
        child = multiprocessing.get_context("spawn").Process(target=os.getpid)
        child.start()
        child.join()
        assert child.exitcode == 0, child.exitcode
        print(resource_tracker._resource_tracker._pid)  # None: never launched
        """
    assert _run(script) == "None"


def test_pss_is_reported_beside_rss_and_never_above_it() -> None:
    pids = [os.getpid()]
    pss = pss_bytes(pids)
    if pss is None:
        pytest.skip("this kernel has no /proc/PID/smaps_rollup")
    assert 0 < pss <= rss_bytes(pids)
    monitor = ServerMonitor(os.getpid())
    monitor.start()
    usage = monitor.stop()
    assert usage.peak_pss_bytes is not None
    assert 0 < usage.peak_pss_bytes <= usage.peak_rss_bytes
