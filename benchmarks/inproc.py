"""In-process microbenchmark of the S3 app: requests go straight into the ASGI callable, no
sockets, so the figure is onshore's own CPU per request. Used to profile before and after.

    python benchmarks/inproc.py [--profile] [--n 5000]
        [--op head|get|put|delete|list|walk|delimiter] [--size BYTES] [--set audit=false]
        [--http onshore|uvicorn] [--concurrency N] [--callgrind]

``walk`` and ``delimiter`` mirror the ``list`` workload of ``onshore bench``: a bucket of 2,000
empty objects under 20 prefixes; ``walk`` asks for a page of 1,000 keys, ``delimiter`` lists one
prefix of 100 keys with ``/`` as delimiter.

With ``--http``, each request goes in as bytes through an HTTP/1.1 protocol instance (onshore's
own, or uvicorn's httptools one) on a transport that keeps what it is given, so the figure adds
the HTTP layer's CPU but still no socket system calls.

With ``--callgrind``, run under ``valgrind --tool=callgrind --instr-atstart=no``: instructions
are counted only around the measured requests (and the flush of their audit records), which
``benchmarks/instructions.py`` does for each operation with and without a setting.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import subprocess
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from onshore.app import build
from onshore.config import load
from onshore.service.collector import tune_collector

AK, SK, REGION = "bench", "benchsecret", "local-1"


def thread_cpu() -> dict[str, tuple[float, float]]:
    """CPU seconds used so far by each live thread of this process, by thread name, as (user,
    system) (Linux)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, tuple[float, float]] = {}
    for task in Path("/proc/self/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        name = names.get(int(task.name), "other").rstrip("0123456789-")
        user, system = out.get(name, (0.0, 0.0))
        out[name] = (user + int(fields[11]) / tick, system + int(fields[12]) / tick)
    return out


def signed(method: str, path: str, body: bytes = b"", query: str = "") -> dict[str, object]:
    url = f"http://127.0.0.1:9000{path}" + (f"?{query}" if query else "")
    req = AWSRequest(
        method=method, url=url, data=body, headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}
    )
    # UNSIGNED-PAYLOAD, as `onshore bench` sends (botocore would hash the body over http)
    req.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    S3SigV4Auth(Credentials(AK, SK), "s3", REGION).add_auth(req)
    headers = [(b"host", b"127.0.0.1:9000")] + [
        (k.lower().encode(), v.encode()) for k, v in req.headers.items()
    ]
    if body:
        headers.append((b"content-length", str(len(body)).encode()))
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": headers,
        "client": ("127.0.0.1", 5000),
    }


class _Transport:
    """Stands in for a socket: takes the response bytes and drops them."""

    def __init__(self) -> None:
        self.closing = False

    def write(self, data: bytes) -> None:
        pass

    def writelines(self, data: object) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"sockname": ("127.0.0.1", 9000), "peername": ("127.0.0.1", 5000)}.get(name)


class _ServerState:
    """uvicorn's per-server state, with a wake-up when a response completes."""

    def __init__(self) -> None:
        self.connections: set[object] = set()
        self.tasks: set[object] = set()
        self.default_headers = [(b"date", b"Mon, 30 Nov 2026 00:00:00 GMT")]
        self.done: asyncio.Future[None] | None = None
        self._total = 0

    @property
    def total_requests(self) -> int:
        return self._total

    @total_requests.setter
    def total_requests(self, value: int) -> None:
        self._total = value
        if self.done is not None and not self.done.done():
            self.done.set_result(None)


def connection(app: object, http: str) -> tuple[asyncio.Protocol, _ServerState]:
    """An HTTP/1.1 protocol instance serving ``app`` on a :class:`_Transport`."""
    import uvicorn

    if http == "onshore":
        from onshore.s3api.protocol import S3HttpProtocol as protocol_class
    else:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as protocol_class
    config = uvicorn.Config(app, loop="none", access_log=False, lifespan="off", proxy_headers=False)  # type: ignore[arg-type]
    config.load()
    state = _ServerState()
    proto = protocol_class(config, state, {})  # type: ignore[arg-type]
    proto.connection_made(_Transport())  # type: ignore[arg-type]
    return proto, state


def request_bytes(scope: dict[str, object], payload: bytes) -> bytes:
    query = scope["query_string"]
    target = scope["raw_path"] + (b"?" + query if query else b"")  # type: ignore[operator]
    head = [f"{scope['method']} ".encode() + target + b" HTTP/1.1"]  # type: ignore[operator]
    head += [name + b": " + value for name, value in scope["headers"]]  # type: ignore[attr-defined]
    return b"\r\n".join(head) + b"\r\n\r\n" + payload


async def run(
    op: str,
    n: int,
    profile: bool,
    settings: dict[str, object],
    size: int = 4096,
    http: str | None = None,
    concurrency: int = 32,
    callgrind: bool = False,
) -> None:
    data = Path(tempfile.mkdtemp())
    config = load(
        {"data_dir": str(data), "access_log": False, **settings},
        environ={"ONSHORE_ROOT_ACCESS_KEY": AK, "ONSHORE_ROOT_SECRET_KEY": SK},
    )
    app = build(config).app
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)

    async def call(scope: dict[str, object], payload: bytes = b"") -> int:
        status = 0
        sent = False

        async def receive() -> dict[str, object]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": payload, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, object]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])  # type: ignore[call-overload]

        await app(scope, receive, send)  # type: ignore[arg-type]
        return status

    assert await call(signed("PUT", "/bench")) == 200
    for i in range(200 if size <= 65536 else 2):
        assert await call(signed("PUT", f"/bench/k{i}", body), body) == 200
    scopes = {
        "head": (signed("HEAD", "/bench/k1"), b""),
        "get": (signed("GET", "/bench/k1"), b""),
        "put": (signed("PUT", "/bench/new", body), body),
        "list": (signed("GET", "/bench", query="list-type=2&max-keys=100"), b""),
        "walk": (signed("GET", "/listed", query="list-type=2"), b""),
        "delimiter": (
            signed("GET", "/listed", query="delimiter=%2F&list-type=2&prefix=p0007%2F"),
            b"",
        ),
    }
    if op in ("walk", "delimiter"):
        await fill_listed(call)
    if op == "delete":  # each request deletes an object of its own, created beforehand
        for i in range(n):
            assert await call(signed("PUT", f"/bench/d{i}", body), body) == 200
        requests = [(signed("DELETE", f"/bench/d{i}"), b"") for i in range(n)]
    else:
        requests = [scopes[op]] * n
    expected = 204 if op == "delete" else 200
    profiler = cProfile.Profile() if profile else None
    turns = iter(requests)

    # One connection per worker, made before the measurement (making one loads uvicorn's
    # configuration: a fixed cost that would weigh on the figure per request).
    connections = [connection(app, http) for _ in range(concurrency)] if http is not None else []

    async def worker(count: int) -> None:
        if connections:
            return await http_worker(count, *connections.pop())
        for _ in range(count):
            scope, payload = next(turns)
            status = await call(dict(scope), payload)
            assert status == expected, status

    async def http_worker(count: int, proto: asyncio.Protocol, state: _ServerState) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(count):
            scope, payload = next(turns)
            state.done = loop.create_future()
            proto.data_received(request_bytes(scope, payload))
            await state.done

    # The audit trail appends buffered records in a background flusher (every second): flush
    # the set-up's records before measuring, and this run's inside the measurement, so the
    # figure includes the whole cost of the records of the requests measured.
    trail = app.audit.trail if getattr(app, "audit", None) is not None else None
    if trail is not None:
        trail.flush()
    # As a server process does once its application is built: what exists now (here also the
    # requests to send) is frozen out of the cyclic collector's way, and young collections run
    # less often (see onshore.service.collector).
    tune_collector()
    if profiler:
        profiler.enable()
    if callgrind:
        count_instructions(True)
    started = time.perf_counter()
    cpu0 = time.process_time()
    threads0 = thread_cpu()
    await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
    if trail is not None:
        trail.flush()
    if callgrind:
        count_instructions(False)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    done = (n // concurrency) * concurrency
    print(f"{op}: {done / elapsed:,.0f} req/s, {cpu / done * 1e6:,.0f} µs CPU/request")
    before = threads0.get
    print("  by thread (user + system): " + ", ".join(
        f"{name} {(user - u0) / done * 1e6:,.0f} + {(system - s0) / done * 1e6:,.0f} µs"
        for name, (user, system) in sorted(thread_cpu().items())
        for u0, s0 in [before(name, (0.0, 0.0))]
        if user + system > u0 + s0
    ))  # fmt: skip


def count_instructions(on: bool) -> None:
    """Switch callgrind's counting on or off for this process (run under callgrind)."""
    subprocess.run(
        ["callgrind_control", "--instr=" + ("on" if on else "off"), str(os.getpid())],
        check=True,
        stdout=subprocess.DEVNULL,
    )


async def fill_listed(call: Callable[..., Awaitable[int]]) -> None:
    """The ``listed`` bucket: 2,000 empty objects, 100 under each of 20 prefixes."""
    assert await call(signed("PUT", "/listed")) == 200
    keys = [f"p{p:04d}/k{k:05d}" for p in range(20) for k in range(100)]

    async def put(chunk: list[str]) -> None:
        for key in chunk:
            assert await call(signed("PUT", f"/listed/{key}")) == 200

    await asyncio.gather(*(put(keys[i::32]) for i in range(32)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--op", default="head")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--size", type=int, default=4096, help="object size in bytes")
    parser.add_argument(
        "--http", choices=("onshore", "uvicorn"), default=None,
        help="feed requests as bytes through this HTTP/1.1 protocol (default: straight to ASGI)",
    )  # fmt: skip
    parser.add_argument(
        "--concurrency", type=int, default=32,
        help="requests in flight (1 for listings, as `onshore bench` sends them)",
    )  # fmt: skip
    parser.add_argument(
        "--callgrind", action="store_true",
        help="under callgrind (--instr-atstart=no): count only the measured requests",
    )  # fmt: skip
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="a setting, e.g. --set audit=false --set encryption=false",
    )  # fmt: skip
    args = parser.parse_args()
    import uvloop

    settings = dict(item.split("=", 1) for item in args.set)
    uvloop.run(
        run(
            args.op,
            args.n,
            args.profile,
            settings,
            args.size,
            args.http,
            args.concurrency,
            args.callgrind,
        )
    )


if __name__ == "__main__":
    main()
