"""The workloads, as sequences of phases run by the worker pool (see ``plan.py`` for their shapes).

Every workload makes its own bucket (``<prefix>-<workload>-<run id>``) and removes it afterwards,
whatever happened: objects by DeleteObjects in batches of 1,000, unfinished multipart uploads by
AbortMultipartUpload, then DeleteBucket. Keys are spread over the worker processes so that each
key is always handled by the same process, which remembers its size and CRC-32 for verification.

The parent makes the few calls that are not load (CreateBucket, Create/CompleteMultipartUpload,
cleanup) on its own connection through ``Control``.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from .http import Connection, Response
from .payloads import PayloadPool
from .plan import Plan, mixed_size, split
from .pool import PhaseOutcome, WorkerPool
from .procstat import ServerMonitor
from .s3 import S3Client, parse_keys, parse_upload_id
from .stats import Row, Tally, summarise
from .worker import ListSpec, MixedSpec, ObjectRef, ObjectsSpec, PartsSpec, Spec, StreamSpec

T = TypeVar("T")
_UPLOAD = re.compile(
    rb"<Upload>.*?<Key>([^<]*)</Key>.*?<UploadId>([^<]*)</UploadId>.*?</Upload>", re.S
)


class BenchError(Exception):
    """The server refused something the benchmark cannot go on without (e.g. CreateBucket)."""


class Control:
    """Sequential S3 calls from the parent process, on one event loop."""

    def __init__(self, client: S3Client) -> None:
        self.client = client
        self._runner = asyncio.Runner()

    def call(self, fn: Callable[[Connection], Awaitable[T]], timeout: float = 120.0) -> T:
        async def run() -> T:
            conn = Connection(self.client.endpoint.host, self.client.endpoint.port)
            try:
                return await asyncio.wait_for(fn(conn), timeout)
            finally:
                conn.close()

        return self._runner.run(run())

    def close(self) -> None:
        self._runner.close()

    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket`` and warm it up with one PUT and DELETE, untimed: some servers set up
        storage for a bucket lazily (SeaweedFS grows its volumes on the first write, which takes
        0.2-1 s), and that one-off cost is not the steady state a workload measures."""
        response = self.call(lambda c: self.client.create_bucket(c, bucket))
        if response.status != 200:
            raise BenchError(
                f"CreateBucket {bucket}: HTTP {response.status} {response.body[:300]!r}"
            )

        async def warm(conn: Connection) -> Response:
            body = b"w" * 4096
            put = await self.client.put_object(conn, bucket, "warmup", body, len(body))
            await self.client.delete_object(conn, bucket, "warmup")
            return put

        put = self.call(warm)
        if put.status != 200:
            raise BenchError(f"warm-up PUT in {bucket}: HTTP {put.status} {put.body[:300]!r}")

    def cleanup(self, bucket: str) -> list[str]:
        """Delete everything in ``bucket`` and the bucket; return what went wrong, if anything."""
        problems: list[str] = []

        async def run(conn: Connection) -> None:
            client = self.client
            for _ in range(100_000):  # at most 100M keys: bounded
                listing = await client.list_objects_v2(conn, bucket, max_keys=1000)
                if listing.status != 200:
                    problems.append(f"ListObjectsV2 {bucket}: HTTP {listing.status}")
                    break
                keys = parse_keys(listing.body)
                if not keys:
                    break
                deleted = await client.delete_objects(conn, bucket, keys)
                if deleted.status != 200:
                    for key in keys:  # a server without DeleteObjects: one by one
                        await client.delete_object(conn, bucket, key)
            uploads = await client.list_multipart_uploads(conn, bucket)
            for key, upload_id in _UPLOAD.findall(uploads.body)[:10_000]:
                await client.abort_multipart_upload(conn, bucket, key.decode(), upload_id.decode())
            gone = await client.delete_bucket(conn, bucket)
            if gone.status not in (200, 204):
                problems.append(f"DeleteBucket {bucket}: HTTP {gone.status} {gone.body[:200]!r}")

        try:
            self.call(run, timeout=600)
        except Exception as exc:  # cleanup must not hide the results
            problems.append(f"cleanup of {bucket}: {type(exc).__name__}: {exc}")
        return problems


@dataclass
class Context:
    plan: Plan
    pool: WorkerPool
    control: Control
    monitor: ServerMonitor | None
    bucket_prefix: str
    run_id: str
    seed: int


class Bench:
    """Runs workloads and turns each phase into result rows."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.rows: list[Row] = []
        self.problems: list[str] = []

    # -- helpers -----------------------------------------------------------------------------------
    @property
    def workers(self) -> int:
        return self.ctx.pool.size

    def _bucket(self, workload: str) -> str:
        return f"{self.ctx.bucket_prefix}-{workload}-{self.ctx.run_id}"

    def _shard(self, objects: Sequence[ObjectRef]) -> list[tuple[ObjectRef, ...]]:
        return [tuple(objects[w :: self.workers]) for w in range(self.workers)]

    def _phase(
        self,
        workload: str,
        label: str,
        specs: Sequence[Spec | None],
        total: int,
        concurrency: int,
        *,
        items: bool = False,
        report: bool = True,
        timeout: float | None = None,
        seconds: float | None = None,
    ) -> PhaseOutcome:
        outcome = self.ctx.pool.run(
            f"{workload} {label}",
            specs,
            total=total,
            timeout=timeout or self.ctx.plan.phase_timeout,
            monitor=self.ctx.monitor,
            seconds=seconds,
        )
        for failure in outcome.failures:
            self.problems.append(f"{workload} {label}: {failure}")
        rows = self._rows(workload, outcome, concurrency, items)
        if report:
            self.rows.extend(rows)
        for row in rows:
            self.ctx.pool.progress.done(f"{workload} {row.op}", brief(row))
        return outcome

    def _rows(
        self, workload: str, outcome: PhaseOutcome, concurrency: int, items: bool
    ) -> list[Row]:
        return rows_from(workload, outcome, concurrency, items)

    def _objects(
        self,
        op: str,
        bucket: str,
        shards: list[tuple[ObjectRef, ...]],
        concurrency: int,
        label: str = "",
    ) -> list[Spec | None]:
        widths = split(concurrency, self.workers)
        return [
            ObjectsSpec(op, bucket, shard, width, label=label) if shard and width else None  # type: ignore[arg-type]
            for shard, width in zip(shards, widths, strict=True)
        ]

    def _fair_shards(
        self, objects: Sequence[ObjectRef], concurrency: int
    ) -> list[tuple[ObjectRef, ...]]:
        """Shard objects over the workers that have connections (concurrency may be < workers)."""
        widths = split(concurrency, self.workers)
        active = [w for w, width in enumerate(widths) if width]
        shards: list[tuple[ObjectRef, ...]] = [() for _ in range(self.workers)]
        for n, w in enumerate(active):
            shards[w] = tuple(objects[n :: len(active)])
        return shards

    def run(self, name: str) -> None:
        bucket = self._bucket(name)
        self.ctx.control.create_bucket(bucket)
        try:
            getattr(self, f"_{name}")(bucket)
        finally:
            self.problems.extend(self.ctx.control.cleanup(bucket))

    # -- workloads ---------------------------------------------------------------------------------
    def _small(self, bucket: str) -> None:
        plan = self.ctx.plan
        objects = [(f"small/{i:07d}", i, plan.small_size) for i in range(plan.small_objects)]
        shards = self._fair_shards(objects, plan.small_concurrency)
        for op in ("PUT", "GET", "HEAD", "DELETE"):
            specs = self._objects(op, bucket, shards, plan.small_concurrency)
            self._phase("small", op, specs, len(objects), plan.small_concurrency)

    def _medium(self, bucket: str) -> None:
        plan = self.ctx.plan
        objects = [(f"medium/{i:06d}", i, plan.medium_size) for i in range(plan.medium_objects)]
        shards = self._fair_shards(objects, plan.medium_concurrency)
        for op in ("PUT", "GET"):
            specs = self._objects(op, bucket, shards, plan.medium_concurrency)
            self._phase("medium", op, specs, len(objects), plan.medium_concurrency)

    def _large(self, bucket: str) -> None:
        plan = self.ctx.plan
        solo: list[Spec | None] = [None] * self.workers
        key = "large/single"
        for op in ("PUT", "GET"):
            solo[0] = StreamSpec(op, bucket, key, plan.large_size, salt=1)
            self._phase("large", op, solo, 1, 1)
        self._multipart(bucket)

    def _multipart(self, bucket: str) -> None:
        plan, control = self.ctx.plan, self.ctx.control
        # a monitor of its own: the whole upload (create, parts, complete) is one MPU operation
        monitor = ServerMonitor(self.ctx.monitor.pid) if self.ctx.monitor is not None else None
        key = "large/multipart"
        parts = [(n, size, 1000 + n) for n, size in enumerate(plan.parts, start=1)]
        if monitor is not None:
            monitor.start()
        # the MPU's time is create + parts phase + complete, without the pool's start delay
        t0 = time.perf_counter()
        created = control.call(lambda c: control.client.create_multipart_upload(c, bucket, key))
        elapsed = time.perf_counter() - t0
        upload_id = parse_upload_id(created.body)
        if created.status != 200 or not upload_id:
            raise BenchError(f"CreateMultipartUpload: HTTP {created.status} {created.body[:300]!r}")
        widths = split(plan.multipart_concurrency, self.workers)
        active = [w for w, width in enumerate(widths) if width]
        specs: list[Spec | None] = [None] * self.workers
        for n, w in enumerate(active):
            mine = tuple(parts[n :: len(active)])
            specs[w] = PartsSpec(bucket, key, upload_id, mine, widths[w]) if mine else None
        outcome = self._phase("large", "PART", specs, len(parts), plan.multipart_concurrency)
        etags: dict[int, str] = {}
        for extra in outcome.extras:
            etags.update(extra.get("etags", {}))
        mpu = Tally()
        elapsed += outcome.seconds
        ordered = [etags.get(n, "") for n, _, _ in parts]
        if all(ordered):
            t0 = time.perf_counter()
            done = control.call(
                lambda c: control.client.complete_multipart_upload(
                    c, bucket, key, upload_id, ordered
                ),
                timeout=plan.phase_timeout,
            )
            elapsed += time.perf_counter() - t0
            if done.status == 200 and b"<Error>" not in done.body:
                mpu.ok(elapsed, plan.multipart_size)
            else:
                mpu.error(str(done.status if done.status != 200 else "complete-error"), elapsed)
        else:
            mpu.error("parts-missing", elapsed)
        fake = PhaseOutcome(
            {"MPU": mpu},
            elapsed,
            outcome.client_cpu_seconds,
            monitor.stop() if monitor is not None else None,
        )
        rows = self._rows("large", fake, plan.multipart_concurrency, False)
        self.rows.extend(rows)
        for row in rows:
            self.ctx.pool.progress.done("large MPU", brief(row))
        if mpu.ops:
            pool = PayloadPool(self.ctx.seed)
            crc = 0
            for _, size, salt in parts:
                for chunk in pool.stream(salt, size):
                    crc = zlib.crc32(chunk, crc)
            solo: list[Spec | None] = [None] * self.workers
            solo[0] = StreamSpec(
                "GET", bucket, key, plan.multipart_size, salt=0, label="GET MPU", expected_crc=crc
            )
            self._phase("large", "GET MPU", solo, 1, 1)

    def _list(self, bucket: str) -> None:
        plan = self.ctx.plan
        prefixes = [f"p{p:04d}/" for p in range(plan.list_prefixes)]
        objects = [
            (f"{prefix}k{k:05d}", 0, 0) for prefix in prefixes for k in range(plan.keys_per_prefix)
        ]
        shards = self._fair_shards(objects, plan.list_fill_concurrency)
        specs = self._objects("PUT", bucket, shards, plan.list_fill_concurrency, label="PUT (fill)")
        self._phase("list", "PUT (fill)", specs, len(objects), plan.list_fill_concurrency)
        solo: list[Spec | None] = [None] * self.workers
        solo[0] = ListSpec("walk", bucket, plan.list_walks, (), len(objects), label="LIST walk")
        pages = plan.list_walks * (len(objects) // 1000 + 1)
        self._phase("list", "LIST walk", solo, pages, 1, items=True)
        solo[0] = ListSpec(
            "delimiter",
            bucket,
            plan.list_walks,
            tuple(prefixes),
            len(prefixes) + len(objects),
            label="LIST delimiter",
        )
        self._phase(
            "list", "LIST delimiter", solo, plan.list_walks * (len(prefixes) + 1), 1, items=True
        )

    def _mixed(self, bucket: str) -> None:
        plan = self.ctx.plan
        rng = random.Random(self.ctx.seed)
        widths = split(plan.mixed_concurrency, self.workers)
        active = [w for w, width in enumerate(widths) if width]
        per_worker: dict[int, list[ObjectRef]] = {w: [] for w in active}
        for i in range(plan.mixed_objects):
            w = active[i % len(active)]
            index = w * 10_000_000 + i
            size = mixed_size(rng.random(), plan.mixed_min_size, plan.mixed_max_size)
            per_worker[w].append((f"w{w}/m{index}", index, size))
        shards = [tuple(per_worker.get(w, ())) for w in range(self.workers)]
        specs = self._objects("PUT", bucket, shards, plan.mixed_concurrency, label="PUT (fill)")
        self._phase(
            "mixed", "PUT (fill)", specs, plan.mixed_objects, plan.mixed_concurrency, report=False
        )
        mixed: list[Spec | None] = [None] * self.workers
        for w in active:
            mixed[w] = MixedSpec(
                bucket,
                f"w{w}/",
                shards[w],
                plan.mixed_seconds,
                widths[w],
                seed=self.ctx.seed + w,
                min_size=plan.mixed_min_size,
                max_size=plan.mixed_max_size,
                first_index=w * 10_000_000 + plan.mixed_objects,
            )
        self._phase(
            "mixed",
            "70/20/10",
            mixed,
            0,
            plan.mixed_concurrency,
            items=True,
            timeout=plan.mixed_seconds,
            seconds=plan.mixed_seconds,
        )


def rows_from(workload: str, outcome: PhaseOutcome, concurrency: int, items: bool) -> list[Row]:
    """One row per operation of a phase. CPU per 1,000 operations divides the phase's CPU by all of
    its operations (in the mixed phase, GET, PUT, LIST and DELETE share one figure)."""
    total_ops = sum(t.ops + t.error_count for t in outcome.tallies.values()) or 1
    rows = []
    for op, tally in outcome.tallies.items():
        row = summarise(workload, op, tally, outcome.seconds, concurrency, count_items=items)
        row.client_cpu_s_per_1k_ops = outcome.client_cpu_seconds / total_ops * 1000
        if outcome.server is not None:
            row.server_cpu_s_per_1k_ops = outcome.server.cpu_seconds / total_ops * 1000
            row.server_peak_rss_mib = outcome.server.peak_rss_bytes / 2**20
            pss = outcome.server.peak_pss_bytes
            row.server_peak_pss_mib = None if pss is None else pss / 2**20
            row.server_busiest_share = outcome.server.busiest_share
        rows.append(row)
    return rows


def brief(row: Row) -> str:
    """The one-line summary printed when a phase ends."""
    text = f"{row.ops:>7} ok {row.ops_per_s:>9,.1f} op/s {row.mb_per_s:>8,.1f} MB/s"
    if row.items_per_s is not None and row.op.startswith("LIST"):
        text += f" {row.items_per_s:>9,.0f} keys/s"
    text += f"  p50 {row.p50_ms:7.2f} ms  p99 {row.p99_ms:7.2f} ms"
    if row.errors:
        text += f"  errors {row.errors_by_kind}"
    return text
