"""Fuzz SigV4 authentication: mutated ``Authorization`` headers and presigned query strings.

Each test starts from a request botocore signed correctly (at a fixed time, which is also the
server time passed to :func:`authenticate`), checks that the untouched request verifies, then
mutates one part of it. Whatever the mutation, the outcome is an ``AuthResult`` or an S3 error;
and a request that still verifies after a mutation must still be the signer's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock
from urllib.parse import urlsplit

from botocore.auth import S3SigV4QueryAuth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]
from hypothesis import example, given
from hypothesis import strategies as st

from onshore.domain.errors import S3Error
from onshore.s3api.auth import AuthResult, authenticate
from tests.api.raw import sign_request
from tests.fuzz.support import fuzz_settings, hostile_text, mutated_text, s3_outcome

ACCESS_KEY = "ONSHOREFUZZACCESSKEY"
SECRET = "fuzz/secret/key/0123456789abcdef0123"
REGION = "local-1"
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
HOST = "127.0.0.1:9000"
PATH = "/fuzz-bucket/some/key%20with%20spaces.txt"
QUERY = "versionId=abc&x-id=GetObject"


def lookup(access_key: str) -> str | None:
    return SECRET if access_key == ACCESS_KEY else None


def verify(method: str, path: str, query: str, headers: dict[str, str]) -> AuthResult | S3Error:
    return s3_outcome(
        lambda: authenticate(method, path, query, headers, lookup=lookup, region=REGION, now=NOW)
    )


def _header_signed() -> dict[str, str]:
    aws = AWSRequest(method="PUT", url=f"http://{HOST}{PATH}?{QUERY}", data=b"hello")
    sign_request(aws, region=REGION, access_key=ACCESS_KEY, secret=SECRET, at=NOW)
    return {k.lower(): v for k, v in aws.headers.items()} | {"host": HOST}


def _presigned_query() -> str:
    aws = AWSRequest(method="GET", url=f"http://{HOST}{PATH}?{QUERY}")
    signer = S3SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET), "s3", REGION, expires=3600)
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        signer.add_auth(aws)
    return str(urlsplit(aws.url).query)


SIGNED_HEADERS = _header_signed()
PRESIGNED_QUERY = _presigned_query()


def test_the_unmutated_requests_verify() -> None:
    header = verify("PUT", PATH, QUERY, dict(SIGNED_HEADERS))
    presigned = verify("GET", PATH, PRESIGNED_QUERY, {"host": HOST})
    assert isinstance(header, AuthResult) and header.access_key == ACCESS_KEY
    assert isinstance(presigned, AuthResult) and presigned.presigned


_HEADER_FIELDS = ("authorization", "x-amz-date", "x-amz-content-sha256", "host", "date")


@fuzz_settings(300)
@given(
    field=st.sampled_from(_HEADER_FIELDS),
    data=st.data(),
    method=st.sampled_from(["PUT", "GET"]).flatmap(mutated_text),
    path=st.one_of(st.just(PATH), st.just(PATH).flatmap(mutated_text)),
)
@example(field="authorization", data=None, method="PUT", path=PATH)
def test_mutated_authorization_header(
    field: str, data: st.DataObject | None, method: str, path: str
) -> None:
    headers = dict(SIGNED_HEADERS)
    if data is None:  # a regression example: Credential with an over-long date field
        headers["authorization"] = headers["authorization"].replace("/20240501/", "/2024050１/")
    else:
        base = headers.get(field, "Wed, 01 May 2024 12:00:00 GMT")
        value = data.draw(st.one_of(mutated_text(base), hostile_text()))
        if field == "x-amz-date" and data.draw(st.booleans()):
            del headers["x-amz-date"]
        headers[field] = value
    outcome = verify(method, path, QUERY, headers)
    if isinstance(outcome, AuthResult):
        assert outcome.access_key == ACCESS_KEY


_QUERY_FIELDS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
)


def _replace_param(query: str, name: str, value: str) -> str:
    parts = [p for p in query.split("&") if not p.startswith(name + "=")]
    return "&".join([*parts, f"{name}={value}"])


@fuzz_settings(300)
@given(
    field=st.sampled_from(_QUERY_FIELDS),
    data=st.data(),
    duplicate=st.booleans(),
    with_authorization=st.integers(0, 9),
)
@example(field="X-Amz-Expires", data=None, duplicate=False, with_authorization=1)
def test_mutated_presigned_query(
    field: str, data: st.DataObject | None, duplicate: bool, with_authorization: int
) -> None:
    params = dict(p.partition("=")[::2] for p in PRESIGNED_QUERY.split("&"))
    if data is None:  # regression: more digits than int() converts
        value = "9" * 5000
    else:
        value = data.draw(st.one_of(mutated_text(params.get(field, "")), hostile_text()))
    query = _replace_param(PRESIGNED_QUERY, field, value)
    if duplicate:
        query += f"&{field}={params.get(field, '')}"
    headers = {"host": HOST}
    if with_authorization == 0:
        headers["authorization"] = SIGNED_HEADERS["authorization"]
    outcome = verify("GET", PATH, query, headers)
    if isinstance(outcome, AuthResult):
        assert outcome.access_key == ACCESS_KEY


@fuzz_settings(300)
@given(
    method=hostile_text(10),
    path=hostile_text(),
    query=st.one_of(hostile_text(), st.just(PRESIGNED_QUERY).flatmap(mutated_text)),
    headers=st.dictionaries(
        st.sampled_from([*_HEADER_FIELDS, "content-encoding", "x-amz-trailer", "x-amz-foo"]),
        hostile_text(),
        max_size=6,
    ),
)
def test_arbitrary_requests(method: str, path: str, query: str, headers: dict[str, str]) -> None:
    verify(method, path, query, headers)
