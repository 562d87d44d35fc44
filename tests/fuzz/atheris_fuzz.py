"""Coverage-guided fuzzing of the request parsers with atheris (libFuzzer for Python).

The hypothesis suite next to this file explores inputs shaped by hand; atheris instruments the
parsers' bytecode and mutates towards inputs that reach new branches. Each target states the same
contract as the rest of ``tests/fuzz`` (an S3 error or a value, never another exception, never a
500) and libFuzzer adds the other two: an input that takes longer than ``-timeout`` seconds is a
hang, and a process above ``-rss_limit_mb`` is unbounded memory; both fail the run.

Run one target::

    .venv/bin/python tests/fuzz/atheris_fuzz.py sigv4 -max_total_time=600

Targets: ``sigv4`` (Authorization header and presigned query), ``chunked`` (aws-chunked and plain
bodies in every payload mode), ``range``, ``xml``, ``copy_source``, ``names`` (key and bucket
names) and ``route``. ``tests/fuzz/test_atheris.py`` runs each briefly in the test suite
(``ONSHORE_ATHERIS_SECONDS`` per target, default 8).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

with atheris.instrument_imports(include=["onshore"], exclude=[]):
    from onshore.domain.names import check_bucket_name, check_key
    from onshore.domain.ranges import parse_range
    from onshore.s3api import xml
    from onshore.s3api.auth import PayloadMode
    from onshore.s3api.operations.objects import parse_copy_source
    from onshore.s3api.routing import resolve

from tests.fuzz import test_auth_fuzz as auth  # noqa: E402
from tests.fuzz import test_payload_fuzz as payload  # noqa: E402
from tests.fuzz.support import s3_outcome  # noqa: E402

_HEADER_FIELDS = ("authorization", "x-amz-date", "x-amz-content-sha256", "host", "content-md5")


def sigv4(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    headers = dict(auth.SIGNED_HEADERS)
    query = ""
    if fdp.ConsumeBool():
        headers[fdp.PickValueInList(list(_HEADER_FIELDS))] = fdp.ConsumeUnicodeNoSurrogates(300)
    else:
        query = auth.PRESIGNED_QUERY
        cut = fdp.ConsumeIntInRange(0, len(query))
        query = query[:cut] + fdp.ConsumeUnicodeNoSurrogates(120) + query[cut + 8 :]
        headers = {"host": auth.HOST}
    auth.verify("PUT" if not query else "GET", auth.PATH, query, headers)


def chunked(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.PickValueInList(list(PayloadMode))
    body = payload.Body(mode, b"", b"", {})
    headers: dict[str, str] = {}
    if mode.chunked:
        headers["content-encoding"] = "aws-chunked"
        headers["x-amz-decoded-content-length"] = str(fdp.ConsumeIntInRange(0, 400))
        if fdp.ConsumeBool():
            headers["x-amz-trailer"] = "x-amz-checksum-crc32"
    wire = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 800))
    if fdp.ConsumeBool():
        headers["content-length"] = str(len(wire))
    cuts = [fdp.ConsumeIntInRange(0, 800) for _ in range(fdp.ConsumeIntInRange(0, 4))]
    outcome = payload.drive(body, wire, headers, cuts, fdp.ConsumeBool())
    if isinstance(outcome, bytes) and body.signed:
        assert outcome == body.data


def byte_range(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    size = fdp.ConsumeIntInRange(0, 1 << 40)
    header = fdp.ConsumeUnicodeNoSurrogates(200)
    outcome = s3_outcome(lambda: parse_range(header, size))
    if outcome is not None and not isinstance(outcome, Exception):
        assert 0 <= outcome.start <= outcome.end < size


def xml_body(data: bytes) -> None:
    s3_outcome(lambda: xml.parse(data))


def copy_source(data: bytes) -> None:
    text = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(400)
    s3_outcome(lambda: parse_copy_source(text))


def names(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    s3_outcome(lambda: check_key(fdp.ConsumeUnicodeNoSurrogates(300)))
    s3_outcome(lambda: check_bucket_name(fdp.ConsumeUnicodeNoSurrogates(80)))


def route(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    method = fdp.PickValueInList(["GET", "PUT", "POST", "DELETE", "HEAD", "PATCH", ""])
    path = fdp.ConsumeUnicodeNoSurrogates(200)
    query = {
        fdp.ConsumeUnicodeNoSurrogates(20): fdp.ConsumeUnicodeNoSurrogates(20)
        for _ in range(fdp.ConsumeIntInRange(0, 4))
    }
    headers = {"host": fdp.ConsumeUnicodeNoSurrogates(40)}
    if fdp.ConsumeBool():
        headers["x-amz-copy-source"] = fdp.ConsumeUnicodeNoSurrogates(80)
    s3_outcome(lambda: resolve(method, path, query, headers, domain="s3.local"))


TARGETS: dict[str, Callable[[bytes], None]] = {
    "sigv4": sigv4,
    "chunked": chunked,
    "range": byte_range,
    "xml": xml_body,
    "copy_source": copy_source,
    "names": names,
    "route": route,
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: atheris_fuzz.py {{{','.join(TARGETS)}}} [libFuzzer options]")
    target = TARGETS[sys.argv.pop(1)]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
