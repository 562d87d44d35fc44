"""The client processes: each runs an event loop (uvloop when installed) with N keep-alive tasks.

The parent sends a ``Task`` (one phase's share of work plus a common start instant and a deadline)
over a pipe; the worker opens its connections, waits for the start instant so that every process
begins together, runs the phase, and sends back a ``PhaseResult``: tallies, its finish instant and
the CPU it spent. Workers keep state between phases: the size and CRC-32 of every object they PUT,
which is what their GETs are verified against (a key is always handled by the same process).

Every loop is bounded: count-based phases stop at their last key or their deadline, whichever comes
first; the mixed phase stops at its end instant; anything still in flight a grace period after the
deadline is cancelled and counted as a ``timeout`` error. A worker with no command for an hour
exits.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import zlib
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from typing import Any, Literal

from .http import Connection, HttpError, Response
from .payloads import CrcStream, PayloadPool
from .plan import mixed_size
from .s3 import Endpoint, S3Client, parse_list_page
from .signing import Signer
from .stats import Tally

GRACE_SECONDS = 10.0
IDLE_EXIT_SECONDS = 3600.0

ObjectRef = tuple[str, int, int]  # key, body index, size


@dataclass(frozen=True)
class WorkerConfig:
    endpoint: Endpoint
    access_key: str
    secret_key: str
    region: str
    seed: int


@dataclass(frozen=True)
class ObjectsSpec:
    """PUT, GET, HEAD or DELETE each of ``objects`` once, ``concurrency`` at a time."""

    op: Literal["PUT", "GET", "HEAD", "DELETE"]
    bucket: str
    objects: tuple[ObjectRef, ...]
    concurrency: int
    label: str = ""
    verify: bool = True


@dataclass(frozen=True)
class StreamSpec:
    """PUT or GET one object too large to hold, streamed in 1 MiB chunks."""

    op: Literal["PUT", "GET"]
    bucket: str
    key: str
    size: int
    salt: int
    label: str = ""
    expected_crc: int | None = None


@dataclass(frozen=True)
class PartsSpec:
    """Upload some parts of one multipart upload; returns their ETags in ``extra['etags']``."""

    bucket: str
    key: str
    upload_id: str
    parts: tuple[tuple[int, int, int], ...]  # part number, size, salt
    concurrency: int
    label: str = "PART"


@dataclass(frozen=True)
class ListSpec:
    """Listings on one connection: ``walk`` pages through the bucket; ``delimiter`` lists the root
    with ``/`` as delimiter, then each prefix."""

    mode: Literal["walk", "delimiter"]
    bucket: str
    repeats: int
    prefixes: tuple[str, ...]
    expected_items: int
    label: str = ""


@dataclass(frozen=True)
class MixedSpec:
    """70% GET, 20% PUT, 5% LIST, 5% DELETE on this worker's own objects until ``seconds`` pass."""

    bucket: str
    prefix: str
    objects: tuple[ObjectRef, ...]
    seconds: float
    concurrency: int
    seed: int
    min_size: int
    max_size: int
    first_index: int


Spec = ObjectsSpec | StreamSpec | PartsSpec | ListSpec | MixedSpec


@dataclass(frozen=True)
class Task:
    spec: Spec
    start_at: float  # time.time() at which every worker starts
    deadline: float  # time.time() after which no new operation starts


@dataclass
class PhaseResult:
    tallies: dict[str, Tally]
    finished: float
    cpu_seconds: float
    connects: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    failure: str | None = None


class Progress:
    """Two shared counters per worker (operations, bytes) that the parent reads to draw the bar."""

    def __init__(self, counters: Any, index: int) -> None:
        self._counters = counters
        self._slot = index * 2

    def add(self, ops: int, nbytes: int = 0) -> None:
        self._counters[self._slot] += ops
        self._counters[self._slot + 1] += nbytes


def _error_kind(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    return "connection"


class Worker:
    """The state one client process keeps between phases, and the code that runs each phase."""

    def __init__(self, index: int, config: WorkerConfig, progress: Progress) -> None:
        self.index = index
        self.pool = PayloadPool(config.seed)
        self.client = S3Client(
            config.endpoint, Signer(config.access_key, config.secret_key, config.region)
        )
        self.endpoint = config.endpoint
        self.progress = progress
        self.objects: dict[tuple[str, str], tuple[int, int]] = {}

    # -- one phase -------------------------------------------------------------------------------
    async def run(self, task: Task) -> PhaseResult:
        spec = task.spec
        tallies: dict[str, Tally] = {}
        extra: dict[str, Any] = {}
        conns = [Connection(self.endpoint.host, self.endpoint.port) for _ in range(_width(spec))]
        failure: str | None = None
        try:
            await asyncio.wait_for(asyncio.gather(*(c.connect() for c in conns)), 30)
        except (TimeoutError, OSError) as exc:
            failure = f"cannot connect to {self.endpoint.netloc}: {exc}"
        delay = task.start_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        cpu0 = time.process_time()
        if failure is None:
            bodies = self._bodies(spec, conns, tallies, extra, task.deadline)
            jobs = [asyncio.ensure_future(b) for b in bodies]
            hard_stop = task.deadline + GRACE_SECONDS - time.time()
            _, late = await asyncio.wait(jobs, timeout=max(hard_stop, 0.1))
            for job in late:
                job.cancel()
            if late:
                await asyncio.wait(late, timeout=5)
            for job in jobs:
                if job.done() and not job.cancelled() and job.exception() is not None:
                    failure = repr(job.exception())
        finished = time.time()
        connects = sum(c.connects for c in conns)
        for conn in conns:
            conn.close()
        return PhaseResult(tallies, finished, time.process_time() - cpu0, connects, extra, failure)

    def _bodies(
        self,
        spec: Spec,
        conns: list[Connection],
        tallies: dict[str, Tally],
        extra: dict[str, Any],
        deadline: float,
    ) -> list[Awaitable[None]]:
        if isinstance(spec, ObjectsSpec):
            tally = tallies.setdefault(spec.label or spec.op, Tally())
            refs = iter(spec.objects)
            return [self._objects_loop(spec, c, refs, tally, deadline) for c in conns]
        if isinstance(spec, StreamSpec):
            tally = tallies.setdefault(spec.label or spec.op, Tally())
            return [self._stream(spec, conns[0], tally)]
        if isinstance(spec, PartsSpec):
            tally = tallies.setdefault(spec.label, Tally())
            etags: dict[int, str] = {}
            extra["etags"] = etags
            parts = iter(spec.parts)
            return [self._parts_loop(spec, c, parts, tally, etags, deadline) for c in conns]
        if isinstance(spec, ListSpec):
            tally = tallies.setdefault(spec.label or f"LIST {spec.mode}", Tally())
            return [self._listing(spec, conns[0], tally, deadline)]
        mixed = _MixedState(spec, self, tallies, deadline=min(deadline, time.time() + spec.seconds))
        return [mixed.loop(c) for c in conns]

    async def _timed(
        self, tally: Tally, call: Awaitable[Response]
    ) -> tuple[Response | None, float]:
        """Await one request; count transport failures and non-2xx statuses as errors."""
        t0 = time.perf_counter()
        try:
            response = await call
        except asyncio.CancelledError:
            tally.error("timeout", time.perf_counter() - t0)
            raise
        except (TimeoutError, HttpError, OSError) as exc:
            tally.error(_error_kind(exc), time.perf_counter() - t0)
            self.progress.add(1)
            return None, 0.0
        latency = time.perf_counter() - t0
        if not 200 <= response.status < 300:
            tally.error(str(response.status), latency)
            self.progress.add(1)
            return None, latency
        return response, latency

    # -- count-based object operations -----------------------------------------------------------
    async def _objects_loop(
        self,
        spec: ObjectsSpec,
        conn: Connection,
        refs: Iterator[ObjectRef],
        tally: Tally,
        deadline: float,
    ) -> None:
        client, bucket, objects = self.client, spec.bucket, self.objects
        for key, index, size in refs:
            if time.time() > deadline:
                return
            if spec.op == "PUT":
                body = self.pool.body(index, size)
                crc = zlib.crc32(body)
                response, latency = await self._timed(
                    tally, client.put_object(conn, bucket, key, body, size)
                )
                if response is not None:
                    objects[(bucket, key)] = (size, crc)
                    tally.ok(latency, size)
                    self.progress.add(1, size)
            elif spec.op == "GET":
                response, latency = await self._timed(tally, client.get_object(conn, bucket, key))
                if response is not None:
                    self._check_body(tally, latency, bucket, key, response, spec.verify)
            elif spec.op == "HEAD":
                response, latency = await self._timed(tally, client.head_object(conn, bucket, key))
                if response is not None:
                    expected = objects.get((bucket, key))
                    length = int(response.header("content-length", "-1"))
                    if spec.verify and expected is not None and length != expected[0]:
                        tally.error("size", latency)
                    else:
                        tally.ok(latency)
                    self.progress.add(1)
            else:
                response, latency = await self._timed(
                    tally, client.delete_object(conn, bucket, key)
                )
                if response is not None:
                    objects.pop((bucket, key), None)
                    tally.ok(latency)
                    self.progress.add(1)

    def _check_body(
        self, tally: Tally, latency: float, bucket: str, key: str, response: Response, verify: bool
    ) -> None:
        """Compare a GET's length and CRC-32 with what this process wrote; mismatches are errors."""
        expected = self.objects.get((bucket, key)) if verify else None
        if expected is not None and response.length != expected[0]:
            tally.error("size", latency)
        elif expected is not None and response.crc != expected[1]:
            tally.error("checksum", latency)
        else:
            tally.ok(latency, response.length)
        self.progress.add(1, response.length)

    # -- large objects ---------------------------------------------------------------------------
    def _counted(self, chunks: Iterator[memoryview]) -> Iterator[memoryview]:
        for chunk in chunks:
            self.progress.add(0, len(chunk))
            yield chunk

    async def _stream(self, spec: StreamSpec, conn: Connection, tally: Tally) -> None:
        client, bucket, key = self.client, spec.bucket, spec.key
        if spec.op == "PUT":
            body = CrcStream(self._counted(self.pool.stream(spec.salt, spec.size)))
            response, latency = await self._timed(
                tally, client.put_object(conn, bucket, key, body, spec.size)
            )
            if response is not None:
                self.objects[(bucket, key)] = (spec.size, body.crc)
                tally.ok(latency, spec.size)
                self.progress.add(1)
            return
        if spec.expected_crc is not None:
            self.objects[(bucket, key)] = (spec.size, spec.expected_crc)
        response, latency = await self._timed(tally, client.get_object(conn, bucket, key))
        if response is not None:
            self._check_body(tally, latency, bucket, key, response, True)

    async def _parts_loop(
        self,
        spec: PartsSpec,
        conn: Connection,
        parts: Iterator[tuple[int, int, int]],
        tally: Tally,
        etags: dict[int, str],
        deadline: float,
    ) -> None:
        client = self.client
        for number, size, salt in parts:
            if time.time() > deadline:
                return
            body = self._counted(self.pool.stream(salt, size))
            response, latency = await self._timed(
                tally,
                client.upload_part(conn, spec.bucket, spec.key, spec.upload_id, number, body, size),
            )
            if response is not None:
                etag = response.header("etag")
                if etag:
                    etags[number] = etag
                    tally.ok(latency, size)
                else:
                    tally.error("no-etag", latency)
                self.progress.add(1)

    # -- listings --------------------------------------------------------------------------------
    async def _listing(
        self, spec: ListSpec, conn: Connection, tally: Tally, deadline: float
    ) -> None:
        client, bucket = self.client, spec.bucket
        for _ in range(spec.repeats):
            seen = 0
            if spec.mode == "walk":
                token: str | None = None
                for _page in range(spec.expected_items // 100 + 1000):  # bounded
                    if time.time() > deadline:
                        return
                    response, latency = await self._timed(
                        tally, client.list_objects_v2(conn, bucket, token=token)
                    )
                    if response is None:
                        return
                    page = parse_list_page(response.body)
                    seen += page.keys
                    tally.ok(latency, len(response.body), page.keys)
                    self.progress.add(1)
                    token = page.token
                    if not page.truncated or not token:
                        break
            else:
                targets = [("", "/"), *((p, "/") for p in spec.prefixes)]
                for prefix, delimiter in targets:
                    if time.time() > deadline:
                        return
                    token = None
                    for _page in range(1000):
                        response, latency = await self._timed(
                            tally,
                            client.list_objects_v2(
                                conn, bucket, prefix=prefix, delimiter=delimiter, token=token
                            ),
                        )
                        if response is None:
                            break
                        page = parse_list_page(response.body)
                        seen += page.keys + page.prefixes
                        tally.ok(latency, len(response.body), page.keys + page.prefixes)
                        self.progress.add(1)
                        token = page.token
                        if not page.truncated or not token:
                            break
            if seen != spec.expected_items:
                tally.error("count")


class _MixedState:
    """The live keys of one worker during the mixed phase, shared by its tasks (one event loop,
    so no locks): ``busy`` counts in-flight GETs per key so that a DELETE never races a GET."""

    def __init__(
        self, spec: MixedSpec, worker: Worker, tallies: dict[str, Tally], deadline: float
    ) -> None:
        self.spec = spec
        self.worker = worker
        self.deadline = deadline
        self.rng = random.Random(spec.seed)
        self.live: list[str] = [key for key, _, _ in spec.objects]
        self.busy: dict[str, int] = {}
        self.next_index = spec.first_index
        self.tallies = {
            op: tallies.setdefault(op, Tally()) for op in ("GET", "PUT", "LIST", "DELETE")
        }

    async def loop(self, conn: Connection) -> None:
        spec, worker, rng = self.spec, self.worker, self.rng
        client, bucket = worker.client, spec.bucket
        while time.time() < self.deadline:
            roll = rng.random()
            if roll < 0.70 and self.live:
                key = self.live[rng.randrange(len(self.live))]
                self.busy[key] = self.busy.get(key, 0) + 1
                try:
                    tally = self.tallies["GET"]
                    response, latency = await worker._timed(
                        tally, client.get_object(conn, bucket, key)
                    )
                    if response is not None:
                        worker._check_body(tally, latency, bucket, key, response, True)
                finally:
                    self.busy[key] -= 1
            elif roll < 0.90 or not self.live:
                index = self.next_index
                self.next_index += 1
                key = f"{spec.prefix}m{index}"
                size = mixed_size(rng.random(), spec.min_size, spec.max_size)
                body = worker.pool.body(index, size)
                crc = zlib.crc32(body)
                tally = self.tallies["PUT"]
                response, latency = await worker._timed(
                    tally, client.put_object(conn, bucket, key, body, size)
                )
                if response is not None:
                    worker.objects[(bucket, key)] = (size, crc)
                    self.live.append(key)
                    tally.ok(latency, size)
                    worker.progress.add(1, size)
            elif roll < 0.95:
                tally = self.tallies["LIST"]
                response, latency = await worker._timed(
                    tally,
                    client.list_objects_v2(conn, bucket, prefix=spec.prefix, max_keys=100),
                )
                if response is not None:
                    page = parse_list_page(response.body)
                    tally.ok(latency, len(response.body), page.keys)
                    worker.progress.add(1)
            else:
                victim = self._take_idle_key()
                if victim is None:
                    continue
                tally = self.tallies["DELETE"]
                response, latency = await worker._timed(
                    tally, client.delete_object(conn, bucket, victim)
                )
                if response is not None:
                    worker.objects.pop((bucket, victim), None)
                    tally.ok(latency)
                    worker.progress.add(1)

    def _take_idle_key(self) -> str | None:
        """Remove and return a live key no GET is reading, keeping at least 10 keys alive."""
        if len(self.live) <= 10:
            return None
        for _ in range(8):
            i = self.rng.randrange(len(self.live))
            key = self.live[i]
            if not self.busy.get(key):
                self.live[i] = self.live[-1]
                self.live.pop()
                return key
        return None


def _width(spec: Spec) -> int:
    if isinstance(spec, ObjectsSpec | PartsSpec | MixedSpec):
        return max(1, spec.concurrency)
    return 1


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def worker_main(index: int, pipe: Pipe, config: WorkerConfig, counters: Any) -> None:
    """Entry point of a client process: serve phases from ``pipe`` until told to stop."""
    worker = Worker(index, config, Progress(counters, index))
    pipe.send("ready")  # the parent times nothing before every worker has said this
    with asyncio.Runner(loop_factory=_new_loop) as runner:
        while pipe.poll(IDLE_EXIT_SECONDS):
            try:
                task = pipe.recv()
            except EOFError:
                break
            if task is None:
                break
            try:
                result = runner.run(worker.run(task))
            except Exception as exc:  # report, do not die: the parent decides
                result = PhaseResult({}, time.time(), 0.0, failure=f"{type(exc).__name__}: {exc}")
            pipe.send(result)
    pipe.close()
    os._exit(0)  # skip interpreter teardown: the pool and connections are gone with the process
