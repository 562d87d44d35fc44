"""The audit trail's own steps for one kind of request, counted in instructions (deterministic,
unlike CPU time on a shared machine). Run it under callgrind, which counts only inside
``sorted`` (each step is run inside a call to it, so nothing else is counted):

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=builtin_sorted \\
        python benchmarks/audit_steps.py capture|render|store [--n 2000] [--op GET]

and divide the "Collected" figure by ``--n``. ``capture`` is the request path
(``RequestAudit.begin`` and ``finish``), ``render`` the flusher's rendering of the captured
records, ``store`` rendering plus the writer's job (hash, pack, compress, insert, index): the
writer's part is ``store`` minus ``render``. Without valgrind it runs as a quick smoke test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from typing import Any

from inproc import AK, SK, signed

from onshore.app import build
from onshore.config import load
from onshore.s3api import audit as s3audit
from onshore.service.audit.trail import append


def counted(step: Any) -> Any:
    """Run ``step()`` inside ``sorted``, the one function callgrind is told to count."""
    out: list[Any] = []
    sorted([0], key=lambda _: out.append(step()) or 0)
    return out[0]


async def run(step: str, n: int, op: str) -> None:
    config = load(
        {"data_dir": tempfile.mkdtemp(), "access_log": False},
        environ={"ONSHORE_ROOT_ACCESS_KEY": AK, "ONSHORE_ROOT_SECRET_KEY": SK},
    )
    app: Any = build(config).app
    seen: dict[str, tuple[Any, ...]] = {}
    finish = s3audit.RequestAudit.finish

    def spy(self: s3audit.RequestAudit, pending: Any, req: Any, *rest: Any) -> None:
        seen[req.method] = (self, req, *rest)
        finish(self, pending, req, *rest)

    s3audit.RequestAudit.finish = spy  # type: ignore[method-assign]

    async def call(scope: dict[str, object], payload: bytes = b"") -> None:
        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": payload, "more_body": False}

        async def send(message: dict[str, object]) -> None:
            pass

        await app(scope, receive, send)

    body = b"x" * 4096
    await call(signed("PUT", "/bench"))
    await call(signed("PUT", "/bench/k1", body), body)
    await call(signed(op, "/bench/k1"))
    trail = app.audit.trail
    trail._stop.set()  # no background flush while counting
    trail._thread.join()
    trail.flush()
    audit, req, *rest = seen[op]

    def captures() -> None:
        for _ in range(n):
            finish(audit, audit.begin(req, rest[1]), req, *rest)

    if step == "capture":
        counted(captures)
        return
    captures()
    captured = trail.captured[:]
    del trail.captured[:]
    size = len(captured)
    rows = counted(lambda: trail.groups.captured_rows(captured, 0, size))
    if step == "store":
        for at in range(0, len(rows), 512):
            chunk = rows[at : at + 512]
            trail._writer.submit(
                lambda conn, chunk=chunk: counted(
                    lambda: append(
                        conn, chunk, trail.alg, trail.link, trail.partition, trail.region
                    )
                )
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("step", choices=["capture", "render", "store"])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--op", default="GET", choices=["GET", "HEAD"])
    args = parser.parse_args()
    asyncio.run(run(args.step, args.n, args.op))
    os._exit(0)  # the trail's final flush and digest are not part of the count


if __name__ == "__main__":
    main()
