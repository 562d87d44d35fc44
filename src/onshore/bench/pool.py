"""The parent's side of the client processes: start them, hand out phases, draw progress, merge.

Processes are started with the ``spawn`` method (a fresh interpreter, no inherited event loop or
threads) once per run and reused for every phase, so their start-up cost and the payload pool's
generation happen before anything is timed. A phase's wall time runs from the common start instant
to the last worker's finish; while it runs the parent only sleeps, polls the pipes, reads the shared
counters for the progress bar and, when monitoring a server, samples its memory.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from multiprocessing.process import BaseProcess
from typing import IO, Any

from .procstat import ServerMonitor, Usage
from .stats import Tally, merge_tallies
from .worker import PhaseResult, Spec, Task, WorkerConfig, worker_main

START_DELAY = 0.5
RESULT_GRACE = 60.0
READY_TIMEOUT = 60.0


@dataclass
class PhaseOutcome:
    tallies: dict[str, Tally]
    seconds: float
    client_cpu_seconds: float
    server: Usage | None
    extras: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


class ProgressBar:
    """One self-rewriting line on a terminal; on anything else, one line per finished phase."""

    def __init__(self, stream: IO[str] | None = None, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and self.stream.isatty()
        self._last = 0.0

    def update(
        self,
        label: str,
        done: int,
        total: int,
        nbytes: int,
        elapsed: float,
        seconds: float | None = None,
    ) -> None:
        """Redraw; ``seconds`` makes the bar show time (for phases that run for a duration)."""
        now = time.monotonic()
        if not self.tty or now - self._last < 0.2:
            return
        self._last = now
        if seconds:
            frac = min(1.0, max(0.0, elapsed / seconds))
        else:
            frac = min(1.0, done / total) if total else 0.0
        bar = "#" * int(frac * 24)
        rate = done / elapsed if elapsed > 0 else 0.0
        mbs = nbytes / elapsed / 1e6 if elapsed > 0 else 0.0
        self.stream.write(
            f"\r\x1b[K{label:<24} [{bar:<24}] {done}/{total} {rate:,.0f} op/s"
            f" {mbs:,.1f} MB/s {elapsed:5.1f}s"
        )
        self.stream.flush()

    def done(self, label: str, line: str) -> None:
        if not self.enabled:
            return
        prefix = "\r\x1b[K" if self.tty else ""
        self.stream.write(f"{prefix}{label:<24} {line}\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        if self.enabled:
            self.stream.write(("\r\x1b[K" if self.tty else "") + text + "\n")
            self.stream.flush()


class WorkerPool:
    """``processes`` client processes, each holding its pipe end and two shared counters."""

    def __init__(self, processes: int, config: WorkerConfig, progress: ProgressBar) -> None:
        ctx = mp.get_context("spawn")
        self.size = processes
        self.progress = progress
        self._counters: Any = ctx.RawArray("q", processes * 2)
        self._pipes: list[Pipe] = []
        self._procs: list[BaseProcess] = []
        for index in range(processes):
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(
                target=worker_main,
                args=(index, child_end, config, self._counters),
                name=f"bench-worker-{index}",
                daemon=True,
            )
            proc.start()
            child_end.close()
            self._pipes.append(parent_end)
            self._procs.append(proc)
        for index, pipe in enumerate(self._pipes):
            if not pipe.poll(READY_TIMEOUT) or pipe.recv() != "ready":
                self.close()
                raise RuntimeError(f"client process {index} did not start")

    def run(
        self,
        label: str,
        specs: Sequence[Spec | None],
        *,
        total: int,
        timeout: float,
        monitor: ServerMonitor | None = None,
        seconds: float | None = None,
    ) -> PhaseOutcome:
        """Run one phase: ``specs[i]`` goes to worker ``i`` (``None``: that worker sits it out).

        ``total`` is the expected operation count, ``seconds`` the length of a timed phase (both
        only shape the progress bar)."""
        if len(specs) != self.size:
            raise ValueError("one spec per worker")
        for i in range(len(self._counters)):
            self._counters[i] = 0
        start_at = time.time() + START_DELAY
        deadline = start_at + timeout
        busy = [i for i, spec in enumerate(specs) if spec is not None]
        for i in busy:
            spec = specs[i]
            assert spec is not None
            self._pipes[i].send(Task(spec, start_at, deadline))
        time.sleep(max(0.0, start_at - time.time()))
        if monitor is not None:
            monitor.start()
        results: dict[int, PhaseResult] = {}
        hard_stop = deadline + RESULT_GRACE
        while len(results) < len(busy):
            if time.time() > hard_stop:
                self.close()
                raise TimeoutError(f"{label}: workers did not report within {timeout:.0f}s + grace")
            for i in busy:
                if i not in results and self._pipes[i].poll(0.05 / max(1, len(busy))):
                    results[i] = self._pipes[i].recv()
            ops = sum(self._counters[2 * i] for i in range(self.size))
            nbytes = sum(self._counters[2 * i + 1] for i in range(self.size))
            self.progress.update(label, ops, total, nbytes, time.time() - start_at, seconds)
        usage = monitor.stop() if monitor is not None else None
        finished = max((r.finished for r in results.values()), default=start_at)
        return PhaseOutcome(
            tallies=merge_tallies(r.tallies for r in results.values()),
            seconds=max(finished - start_at, 1e-6),
            client_cpu_seconds=sum(r.cpu_seconds for r in results.values()),
            server=usage,
            extras=[r.extra for r in results.values()],
            failures=[r.failure for r in results.values() if r.failure],
        )

    def close(self) -> None:
        for pipe in self._pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        self._pipes.clear()
        self._procs.clear()
