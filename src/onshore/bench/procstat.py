"""What the server process spent: CPU-seconds and peak resident memory, read from ``/proc``.

``/proc/PID/stat`` gives ``utime`` and ``stime`` (fields 14 and 15, in clock ticks) for the process
and ``cutime``/``cstime`` (16, 17) for children it has waited for. A server may fork workers, so the
monitor counts the whole tree: the root, every live descendant (found through each process's parent
id, field 4), and the root's waited-for children. CPU per phase is the difference of two readings.

Memory is the sum of ``VmRSS`` over the tree, sampled every 50 ms by a background thread; the peak
of those samples is reported. ``VmHWM`` (the kernel's own high-water mark) is not used because it
never resets, so it cannot say which workload caused the peak.

That sum counts a page shared by several processes of the tree (the interpreter, the shared
libraries, copy-on-write pages) once in each of them, so it overstates what the tree costs the
machine. Each sample therefore also sums the proportional set size, ``Pss`` in
``/proc/PID/smaps_rollup`` (Linux 4.14 and later): a page shared by *n* processes counts 1/*n* in
each, so the sum counts it once. RSS stays the headline (it is what "RSS" in a target means);
PSS is the second figure, ``None`` where the kernel does not offer it.

A server of several worker processes that share one listening socket does not choose which of
them accepts a connection: the first awake takes what is queued, so a burst of connections (a
benchmark's, or a client pool's) may land on one worker and stay there, keep-alive, while the
other idles. The monitor therefore also reports the *busiest process's share* of the tree's CPU
in the phase: about 1/N when N workers shared the work, near 1 when one did it all. Rounds of a
multi-process server that differ in it are not comparable, whatever the code.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("latin-1")
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may contain spaces
    return raw[raw.rfind(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return [pid]
    for entry in entries:
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    tree: list[int] = []
    todo = [pid]
    while todo and len(tree) < 10_000:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, ()))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User+system CPU of ``pids`` (the first is the root: its reaped children count too)."""
    return sum(cpu_by_process(pids).values())


def cpu_by_process(pids: list[int]) -> dict[int, float]:
    """User+system CPU of each of ``pids`` that is still alive (the first is the root: its
    reaped children count in its figure)."""
    found: dict[int, float] = {}
    for i, pid in enumerate(pids):
        fields = _stat_fields(pid)
        if fields is None:
            continue
        ticks = int(fields[11]) + int(fields[12])
        if i == 0:
            ticks += int(fields[13]) + int(fields[14])
        found[pid] = ticks / _TICKS
    return found


def busiest_share(before: dict[int, float], after: dict[int, float]) -> float | None:
    """The largest share of the CPU spent between two readings that one process spent; None
    if none was spent."""
    spent = [max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in after.items()]
    total = sum(spent)
    return max(spent) / total if total > 0 else None


def _summed(pids: list[int], name: str, prefix: bytes) -> int | None:
    """The sum over ``pids`` of the kB figure on the line starting with ``prefix`` in
    ``/proc/PID/<name>`` (processes gone meanwhile count 0); ``None`` if no process had it."""
    total = 0
    seen = False
    for pid in pids:
        try:
            with open(f"/proc/{pid}/{name}", "rb") as f:
                for line in f:
                    if line.startswith(prefix):
                        total += int(line.split()[1]) * 1024
                        seen = True
                        break
        except OSError:
            continue
    return total if seen else None


def rss_bytes(pids: list[int]) -> int:
    return _summed(pids, "status", b"VmRSS:") or 0


def pss_bytes(pids: list[int]) -> int | None:
    """The summed ``Pss`` of ``pids``; ``None`` if this kernel has no ``smaps_rollup``."""
    return _summed(pids, "smaps_rollup", b"Pss:")


def alive(pid: int) -> bool:
    return _stat_fields(pid) is not None


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float
    peak_rss_bytes: int
    peak_pss_bytes: int | None = None
    busiest_share: float | None = None  # of the CPU, by one process (see the module docstring)


class ServerMonitor:
    """Measures one phase: ``start()`` before it, ``stop()`` after, which returns the ``Usage``."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        if not alive(pid):
            raise ValueError(f"no process {pid} to monitor")
        self.pid = pid
        self.interval = interval
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._peak = 0
        self._peak_pss: int | None = None
        self._cpu0: dict[int, float] = {}
        self._pids = [pid]

    def start(self) -> None:
        self._pids = descendants(self.pid)
        self._cpu0 = cpu_by_process(self._pids)
        self._peak = rss_bytes(self._pids)
        self._peak_pss = pss_bytes(self._pids)
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        last_scan = time.monotonic()
        while not self._stop.wait(self.interval):
            if time.monotonic() - last_scan > 1.0:
                self._pids = descendants(self.pid)
                last_scan = time.monotonic()
            self._measure(self._pids)

    def _measure(self, pids: list[int]) -> None:
        self._peak = max(self._peak, rss_bytes(pids))
        pss = pss_bytes(pids)
        if pss is not None:
            self._peak_pss = max(self._peak_pss or 0, pss)

    def stop(self) -> Usage:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        pids = descendants(self.pid)
        self._measure(pids)
        cpu = cpu_by_process(pids)
        spent = max(0.0, sum(cpu.values()) - sum(self._cpu0.values()))
        return Usage(spent, self._peak, self._peak_pss, busiest_share(self._cpu0, cpu))
