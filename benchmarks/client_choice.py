"""Which HTTP client drives the most 4 KiB GETs per client CPU-second? The evidence behind
``onshore.bench.http``.

Starts the trivial responder (uvicorn + uvloop + httptools, one worker) on a free loopback port and
drives it from one process with 32 concurrent keep-alive connections, each request SigV4-signed,
with:

- ``protocol``: ``onshore.bench.http`` (asyncio ``Protocol``, hand-written response parsing) on
  uvloop;
- ``streams``: asyncio streams (``open_connection``, ``readuntil``/``readexactly``) on uvloop;
- ``threads``: ``http.client.HTTPConnection`` in 32 threads.

It prints requests/s and requests per client CPU-second (``time.process_time`` of this process).
Usage: ``python benchmarks/client_choice.py [--seconds 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import threading
import time

import uvloop

from onshore.bench.http import Connection
from onshore.bench.limits import start_responder, stop
from onshore.bench.s3 import Endpoint, S3Client
from onshore.bench.signing import Signer

CONCURRENCY = 32


def _client(port: int) -> S3Client:
    return S3Client(Endpoint("127.0.0.1", port), Signer("a", "b"))


def run_protocol(port: int, seconds: float) -> int:
    client = _client(port)
    count = 0

    async def task() -> None:
        nonlocal count
        conn = Connection("127.0.0.1", port)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            response = await client.get_object(conn, "b", "k")
            assert response.length == 4096
            count += 1
        conn.close()

    async def main() -> None:
        await asyncio.gather(*(task() for _ in range(CONCURRENCY)))

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
    return count


def run_streams(port: int, seconds: float) -> int:
    client = _client(port)
    count = 0

    async def task() -> None:
        nonlocal count
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            writer.write(client.head_bytes("GET", "/b/k"))
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length)
            assert len(body) == 4096
            count += 1
        writer.close()

    async def main() -> None:
        await asyncio.gather(*(task() for _ in range(CONCURRENCY)))

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
    return count


def run_threads(port: int, seconds: float) -> int:
    counts = [0] * CONCURRENCY
    signer = Signer("a", "b")
    host = f"127.0.0.1:{port}"

    def task(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            headers = dict(signer.sign("GET", "/b/k", (), host))
            conn.request("GET", "/b/k", headers=headers)
            response = conn.getresponse()
            assert len(response.read()) == 4096
            counts[i] += 1
        conn.close()

    threads = [threading.Thread(target=task, args=(i,)) for i in range(CONCURRENCY)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    return sum(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    proc, port = start_responder()
    try:
        print(f"{'client':<10} {'req/s':>9} {'req per client CPU-s':>22}")
        for name, fn in (
            ("protocol", run_protocol),
            ("streams", run_streams),
            ("threads", run_threads),
        ):
            cpu0, t0 = time.process_time(), time.perf_counter()
            n = fn(port, args.seconds)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
            print(f"{name:<10} {n / wall:>9,.0f} {n / cpu:>22,.0f}")
    finally:
        stop(proc)


if __name__ == "__main__":
    main()
