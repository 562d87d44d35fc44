"""Fuzz the request parsers of the S3 layer: XML bodies (alone and through the handlers that
take them), ``x-amz-copy-source`` and the router.

The XML handlers run for real, in this process, against a deployment in a temporary directory
(SQLite and blob files, as in production): each example builds a ``Request`` with the fuzzed body
and awaits the handler, so what is checked is exactly the code a server runs after
authentication. Entity expansion, external entities, DTDs and nesting deeper than any S3 shape
must all be ``MalformedXML``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from onshore.app import Deployment, build
from onshore.config import load
from onshore.domain.errors import MalformedXML, S3Error
from onshore.s3api import xml
from onshore.s3api.auth import AuthResult, PayloadMode, PayloadReader
from onshore.s3api.http import Request, Response
from onshore.s3api.operations import load_all
from onshore.s3api.operations.objects import parse_copy_source
from onshore.s3api.routing import SUBRESOURCES, Op, Route, resolve
from onshore.service.objects import NewObject
from tests.fuzz.support import fuzz_settings, hostile_text, mutated_bytes, mutated_text, s3_outcome

# --- hostile XML --------------------------------------------------------------------------------
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    b"<Delete><Object><Key>&lol3;</Key></Object></Delete>"
)
EXTERNAL = (
    b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b"<Delete><Object><Key>&x;</Key></Object></Delete>"
)
PARAMETER = (
    b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x.dtd">%p;]>'
    b"<Delete/>"
)
DTD_ONLY = b'<!DOCTYPE Delete SYSTEM "http://127.0.0.1:1/d.dtd"><Delete/>'
QUADRATIC = (
    b'<!DOCTYPE d [<!ENTITY a "' + b"A" * 5000 + b'">]><Delete>' + b"&a;" * 200 + b"</Delete>"
)


def nested(depth: int, root: str = "Delete") -> bytes:
    return f"<{root}>".encode() + b"<a>" * depth + b"</a>" * depth + f"</{root}>".encode()


REJECTED = (LAUGHS, EXTERNAL, PARAMETER, DTD_ONLY, QUADRATIC, nested(xml.MAX_DEPTH), nested(5000))

TEMPLATES = {
    Op.DeleteObjects: b"<Delete><Quiet>true</Quiet><Object><Key>a/b</Key>"
    b"<VersionId>null</VersionId></Object><Object><Key>c</Key></Object></Delete>",
    Op.CompleteMultipartUpload: b'<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/'
    b'2006-03-01/"><Part><PartNumber>1</PartNumber><ETag>"0123456789abcdef0123456789abcdef"'
    b"</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part></CompleteMultipartUpload>",
    Op.PutBucketVersioning: b"<VersioningConfiguration><Status>Enabled</Status>"
    b"<MfaDelete>Disabled</MfaDelete></VersioningConfiguration>",
    Op.CreateBucket: b"<CreateBucketConfiguration><LocationConstraint>local-1"
    b"</LocationConstraint></CreateBucketConfiguration>",
}


def xml_bodies(op: Op) -> st.SearchStrategy[bytes]:
    template = TEMPLATES[op]
    root = xml.local(xml.parse(template).tag)
    return st.one_of(
        st.just(template).flatmap(lambda t: mutated_bytes(t, max_edits=4)),
        st.binary(max_size=200),
        st.sampled_from(REJECTED),
        st.integers(xml.MAX_DEPTH - 1, 300).map(lambda d: nested(d, root)),
        st.sampled_from(
            [
                b"<?xml version='1.0' encoding='x-unknown'?><Delete/>",
                "<?xml version='1.0' encoding='utf-16'?><Delete/>".encode("utf-16"),
                b"<?xml-stylesheet href='x'?><Delete/>",
                b"<Delete><![CDATA[<Object>]]></Delete>",
                b"<Delete><Object><Key>\xff\xfe</Key></Object></Delete>",
                b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1001 + b"</Delete>",
            ]
        ),
    )


@fuzz_settings(200)
@given(body=st.one_of(*(xml_bodies(op) for op in TEMPLATES)))
@example(body=b"<?xml version='1.0' encoding='x-unknown'?><Delete/>")
def test_xml_parse(body: bytes) -> None:
    outcome = s3_outcome(lambda: xml.parse(body))
    if body in REJECTED:
        assert isinstance(outcome, MalformedXML), body[:60]
    if isinstance(outcome, S3Error):
        assert isinstance(outcome, MalformedXML)


# --- the handlers that take XML -----------------------------------------------------------------
@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, str]]:
    data_dir: Path = tmp_path_factory.mktemp("xml-handlers") / "data"
    config = load(
        {"data_dir": str(data_dir), "workers_threads": 4},
        environ={"ONSHORE_ROOT_ACCESS_KEY": "FUZZ", "ONSHORE_ROOT_SECRET_KEY": "fuzz-secret"},
    )
    deployed = build(config)
    services = deployed.services

    async def setup() -> str:
        await services.buckets.create("fuzz", owner_id="000000000000", location=None)
        upload = await services.multipart.create(
            "fuzz", "multi", NewObject(), owner_id="000000000000"
        )
        return upload.upload_id

    upload_id = asyncio.run(setup())
    yield deployed, upload_id
    assert deployed.app.on_shutdown is not None
    deployed.app.on_shutdown()


def call(
    deployed: Deployment, op: Op, bucket: str, key: str | None, query: str, body: bytes
) -> Response | S3Error:
    scope: dict[str, object] = {
        "type": "http",
        "method": "PUT" if op in (Op.PutBucketVersioning, Op.CreateBucket) else "POST",
        "raw_path": f"/{bucket}/{key or ''}".encode(),
        "query_string": query.encode(),
        "headers": [(b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1),
    }
    sent = False

    async def receive() -> dict[str, object]:
        nonlocal sent
        if sent:
            raise AssertionError("receive() after the end of the body: this would hang")
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def go() -> Response:
        req = Request(scope, receive, "fuzz")
        req.route = Route(op, bucket, key)
        req.principal = deployed.services.identities.principal("FUZZ")
        auth = AuthResult("FUZZ", PayloadMode.UNSIGNED, None, None, presigned=False, signed_at=None)
        req.body = PayloadReader(req.receive, req.headers, auth)
        return await load_all()[op](req, deployed.services)

    return s3_outcome(lambda: asyncio.run(go()))


@fuzz_settings(100, deadline_ms=5000)
@given(data=st.data(), op=st.sampled_from(list(TEMPLATES)))
def test_xml_handlers(deployment: tuple[Deployment, str], data: st.DataObject, op: Op) -> None:
    deployed, upload_id = deployment
    body = data.draw(xml_bodies(op))
    bucket, key, query = "fuzz", None, "delete" if op is Op.DeleteObjects else "versioning"
    if op is Op.CompleteMultipartUpload:
        key, query = "multi", f"uploadId={upload_id}"
    elif op is Op.CreateBucket:
        bucket, query = data.draw(st.sampled_from(["fuzz", "fuzz-new"])), ""
    outcome = call(deployed, op, bucket, key, query, body)
    if body in REJECTED:
        assert isinstance(outcome, MalformedXML), (op, body[:60])


# --- x-amz-copy-source --------------------------------------------------------------------------
@fuzz_settings(300)
@given(
    header=st.one_of(
        hostile_text(),
        st.just("/bucket/some/key%20x?versionId=3HL4kqtJlcpXroDTDmJ%2BrmSpXd3dIbrHY").flatmap(
            mutated_text
        ),
    )
)
@example(header="b/%ff")
@example(header="b/k?versionId=%ff")
def test_parse_copy_source(header: str) -> None:
    outcome = s3_outcome(lambda: parse_copy_source(header))
    if isinstance(outcome, tuple):
        bucket, key, version_id = outcome
        assert bucket and key and version_id != ""


# --- routing ------------------------------------------------------------------------------------
def _utf8(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _encode(raw: bytes, style: str) -> str:
    """``raw`` percent-encoded: every byte, or only those that must be, with upper- or
    lower-case hex digits."""
    if style == "all":
        return "".join(f"%{b:02X}" for b in raw)
    text = quote(raw, safe="!$&'()*+,;=:@~")
    if style == "lower":
        return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)
    return text


QUERY_NAMES = st.one_of(
    st.sampled_from(sorted(SUBRESOURCES | {"x-id", "list-type"})), hostile_text(10)
)
STYLES = st.sampled_from(["all", "needed", "lower"])


@fuzz_settings(300)
@given(
    method=st.one_of(st.sampled_from(["GET", "PUT", "POST", "DELETE", "HEAD"]), hostile_text(8)),
    bucket=st.binary(max_size=12).filter(lambda b: b"/" not in b),
    key=st.binary(max_size=40),
    style=STYLES,
    query=st.dictionaries(QUERY_NAMES, hostile_text(10), max_size=4),
)
def test_resolve_path_style(
    method: str, bucket: bytes, key: bytes, style: str, query: dict[str, str]
) -> None:
    """A path built from any bucket and key bytes, encoded any way, resolves to exactly that
    bucket and key — or, when they are not UTF-8, to an S3 error (InvalidURI)."""
    path = "/" + _encode(bucket, style) + "/" + _encode(key, style)
    outcome = s3_outcome(lambda: resolve(method, path, query, {"host": "127.0.0.1:9000"}))
    bucket_text, key_text = _utf8(bucket), _utf8(key)
    if bucket_text is None or key_text is None:
        assert isinstance(outcome, S3Error)
    elif isinstance(outcome, Route):
        assert outcome.bucket == (bucket_text or None)
        if bucket_text:
            assert (outcome.key or "") == key_text


@fuzz_settings(300)
@given(
    method=hostile_text(8),
    path=st.one_of(hostile_text(), st.just("/b/k?x").flatmap(mutated_text)),
    query=st.dictionaries(QUERY_NAMES, hostile_text(10), max_size=4),
    headers=st.dictionaries(
        st.sampled_from(["host", "x-amz-copy-source"]),
        st.sampled_from(["", "b.s3.local", "B.S3.LOCAL:1:2", "s3.local", "/b/k"]),
        max_size=2,
    ),
)
def test_resolve_anything(
    method: str, path: str, query: dict[str, str], headers: dict[str, str]
) -> None:
    outcome = s3_outcome(lambda: resolve(method, path, query, headers, domain="s3.local"))
    assert isinstance(outcome, Route | S3Error)
