"""AWS Signature Version 4 for S3: the ``Authorization`` header and presigned URLs.

A SigV4 signature proves that the sender holds the secret key of an access key id, and binds the
signature to the parts of the request it covers. Verifying one means recomputing it:

1. **Canonical request**, six lines joined by ``\\n``::

       METHOD
       /canonical/uri            the path exactly as sent (S3 neither normalises nor re-encodes it)
       a=1&b=x%2Fy               every query parameter, URI-encoded (RFC 3986 unreserved set only),
                                 sorted by name then value; ``name=`` for a valueless parameter
       host:example.com\\n...     each *signed* header as ``name:value``: lower-case name, value
                                 trimmed with inner runs of spaces collapsed, then an empty line
       host;x-amz-date           the signed header names, ``;``-separated
       <payload hash>            ``x-amz-content-sha256``: a hex SHA-256 of the body, or a literal
                                 such as ``UNSIGNED-PAYLOAD`` or ``STREAMING-...`` (see below)

2. **String to sign**: ``AWS4-HMAC-SHA256``, the request time ``YYYYMMDDTHHMMSSZ``, the *scope*
   ``YYYYMMDD/region/s3/aws4_request`` and the hex SHA-256 of the canonical request, one per line.
3. **Signing key**: ``HMAC("AWS4" + secret, date)``, then HMAC in turn with the region, the
   service and ``aws4_request``. It only changes daily, so it is cached.
4. **Signature**: hex ``HMAC(signing key, string to sign)``, compared in constant time.

**Presigned URLs** (query authentication) carry the same fields as query parameters
(``X-Amz-Algorithm``, ``X-Amz-Credential``, ``X-Amz-Date``, ``X-Amz-Expires``,
``X-Amz-SignedHeaders``, ``X-Amz-Signature`` and optionally ``X-Amz-Security-Token``). The
canonical query string then holds every parameter except ``X-Amz-Signature``, the payload hash is
``UNSIGNED-PAYLOAD`` unless an ``x-amz-content-sha256`` header says otherwise, and the URL is valid
for ``X-Amz-Expires`` seconds (at most 604800, a week) after ``X-Amz-Date``.

**Streaming bodies** (``aws-chunked``): with ``x-amz-content-sha256`` set to
``STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`` each chunk of the body carries its own signature,
chained from the header's *seed* signature::

    AWS4-HMAC-SHA256-PAYLOAD \\n date \\n scope \\n previous signature \\n
    sha256("") \\n sha256(chunk)

and a signed trailer (``x-amz-trailer-signature``) is signed with::

    AWS4-HMAC-SHA256-TRAILER \\n date \\n scope \\n previous signature \\n sha256(trailer lines)

:func:`authenticate` checks the request line and headers and returns what the body reader
(:mod:`onshore.s3api.auth.payload`) needs to verify the rest.

References: https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-authenticating-requests.html,
https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html,
https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import Enum
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import quote, unquote, unquote_to_bytes

from onshore.domain.errors import (
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidRequest,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
)
from onshore.domain.errors import NotImplemented as S3NotImplemented
from onshore.domain.numbers import decimal

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
#: Longest validity of a presigned URL, in seconds.
MAX_PRESIGNED_EXPIRES = 604800
#: Largest accepted difference between the request time and the server's clock.
MAX_SKEW = timedelta(minutes=15)
_MAX_SKEW_SECONDS = MAX_SKEW.total_seconds()

_TERMINAL = "aws4_request"
_CHUNK_ALGORITHM = "AWS4-HMAC-SHA256-PAYLOAD"
_TRAILER_ALGORITHM = "AWS4-HMAC-SHA256-TRAILER"
_SIGV4A = "AWS4-ECDSA-P256-SHA256"
# Already in canonical form: unreserved characters and upper-case escapes of other bytes.
_CANONICAL = re.compile(r"(?:[A-Za-z0-9\-._~]|%[0-9A-F]{2})*")
_ESCAPED_UNRESERVED = re.compile(r"%(?:2[DE]|3[0-9]|4[1-9A-F]|5[0-9AF]|6[1-9A-F]|7[0-9AE])")
_CANONICAL_PATH = re.compile(r"[A-Za-z0-9\-._~/]*")
_UNSUPPORTED = (
    "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."
)


class PayloadMode(str, Enum):  # noqa: UP042 - the interface (and models.py) use str+Enum
    """How the body is authenticated, as declared by ``x-amz-content-sha256``."""

    SIGNED = "signed"  # x-amz-content-sha256 is a hex sha256 of the body
    UNSIGNED = "UNSIGNED-PAYLOAD"
    STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
    STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

    @property
    def chunked(self) -> bool:
        """True when the body is ``aws-chunked`` encoded."""
        return self in _CHUNKED_MODES


_CHUNKED_MODES = frozenset(
    {
        PayloadMode.STREAMING_SIGNED,
        PayloadMode.STREAMING_SIGNED_TRAILER,
        PayloadMode.STREAMING_UNSIGNED_TRAILER,
    }
)
#: The literal ``x-amz-content-sha256`` values (anything else must be a hex SHA-256).
_LITERAL_MODES: dict[str, PayloadMode] = {
    m.value: m for m in PayloadMode if m is not PayloadMode.SIGNED
}


@dataclass(frozen=True, slots=True)
class SigningKeyInfo:
    """What the body reader needs to verify chunk and trailer signatures."""

    key: bytes = field(repr=False)  # the derived signing key (never the secret itself)
    amz_date: str  # YYYYMMDDTHHMMSSZ
    scope: str  # YYYYMMDD/region/service/aws4_request
    seed_signature: str  # the request's own signature, which the first chunk chains from

    def chunk_signature(self, previous: str, chunk_sha256: str) -> str:
        """The signature of a chunk whose hex SHA-256 is ``chunk_sha256``."""
        sts = (
            f"{_CHUNK_ALGORITHM}\n{self.amz_date}\n{self.scope}\n{previous}\n"
            f"{EMPTY_SHA256}\n{chunk_sha256}"
        )
        return signature(self.key, sts)

    def trailer_signature(self, previous: str, canonical_trailer: bytes) -> str:
        """The signature of the trailer lines (``name:value\\n`` each, in the order sent)."""
        digest = hashlib.sha256(canonical_trailer).hexdigest()
        sts = f"{_TRAILER_ALGORITHM}\n{self.amz_date}\n{self.scope}\n{previous}\n{digest}"
        return signature(self.key, sts)


@dataclass(frozen=True, slots=True)
class AuthResult:
    access_key: str | None  # None for an anonymous (unsigned) request
    payload_mode: PayloadMode
    content_sha256: str | None  # the declared hex digest when payload_mode is SIGNED
    signing: SigningKeyInfo | None  # for streaming modes
    presigned: bool
    signed_at: datetime | None  # request time (for s3:signatureAge later)
    security_token: str | None = None  # x-amz-security-token, for temporary credentials

    @property
    def anonymous(self) -> bool:
        return self.access_key is None


SecretLookup = Callable[[str], str | None]  # access key id -> secret key, None if unknown


# --- the signature computation ------------------------------------------------------------------
@lru_cache(maxsize=1024)
def signing_key(secret: str, date: str, region: str, service: str = "s3") -> bytes:
    """Step 3: the day-scoped key derived from a secret (cached: it is the same all day)."""
    k = hmac.digest(b"AWS4" + _utf8(secret), date.encode("ascii"), "sha256")
    k = hmac.digest(k, region.encode("utf-8"), "sha256")
    k = hmac.digest(k, service.encode("utf-8"), "sha256")
    return hmac.digest(k, b"aws4_request", "sha256")


def uri_encode(value: str | bytes) -> str:
    """URI-encode every byte except the unreserved ``A-Z a-z 0-9 - _ . ~``."""
    return quote(value, safe="")


def _utf8(text: str) -> bytes:
    """Text back to the bytes it came from (surrogate escapes included)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def _reencode(raw: str, latin1: bool) -> str:
    data = _utf8(raw)
    if latin1:
        with contextlib.suppress(UnicodeEncodeError):
            data = raw.encode("latin-1")
    return quote(unquote_to_bytes(data), safe="")


def _canonical_component(raw: str, plus_is_space: bool, latin1: bool) -> str:
    if _CANONICAL.fullmatch(raw) and ("%" not in raw or not _ESCAPED_UNRESERVED.search(raw)):
        return raw
    if plus_is_space:
        raw = raw.replace("+", " ")
    return _reencode(raw, latin1)


def canonical_query(
    query_string: str,
    *,
    drop_signature: bool = False,
    plus_is_space: bool = True,
    latin1: bool = False,
) -> str:
    """The canonical query string of a raw (still percent-encoded) query string.

    Each name and value is decoded and re-encoded with :func:`uri_encode`, then the pairs are
    sorted. ``drop_signature`` leaves out ``X-Amz-Signature`` (presigned URLs). A raw ``+`` is a
    space, as the query is parsed (SDKs send ``%2B`` for a plus), so that what is signed is what
    the handlers read. Characters sent unencoded are taken as UTF-8 text, or with ``latin1`` as
    the bytes the server decoded them from.
    """
    if not query_string:
        return ""
    pairs: list[tuple[str, str]] = []
    for part in query_string.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if drop_signature and name == "X-Amz-Signature":
            continue
        pairs.append(
            (
                _canonical_component(name, plus_is_space, latin1),
                _canonical_component(value, plus_is_space, latin1),
            )
        )
    pairs.sort()
    return "&".join(f"{n}={v}" for n, v in pairs)


def canonical_uri(raw_path: str, *, latin1: bool = False) -> str:
    """The path with each segment decoded and re-encoded (``/`` kept, ``%2F`` stays encoded).

    S3 signs the path as sent; this is only tried when the raw path did not verify, for clients
    that leave some reserved characters unencoded on the wire.
    """
    if not raw_path:
        return "/"
    if _CANONICAL_PATH.fullmatch(raw_path):
        return raw_path
    return "/".join(_reencode(segment, latin1) for segment in raw_path.split("/"))


def canonical_headers(headers: Mapping[str, str], signed: list[str]) -> str:
    """The ``name:value\\n`` block of the signed headers (missing headers sign as empty)."""
    return "".join(f"{n}:{' '.join(headers.get(n, '').split())}\n" for n in signed)


def canonical_request(
    method: str,
    uri: str,
    query: str,
    header_block: str,
    signed_headers: str,
    payload_hash: str,
) -> str:
    """Step 1: the canonical request (``header_block`` from :func:`canonical_headers`)."""
    return f"{method}\n{uri}\n{query}\n{header_block}\n{signed_headers}\n{payload_hash}"


def string_to_sign(amz_date: str, scope: str, canonical: str | bytes) -> str:
    """Step 2: the string to sign for a canonical request."""
    data = _utf8(canonical) if isinstance(canonical, str) else canonical
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(data).hexdigest()}"


@lru_cache(maxsize=1024)
def _mac(key: bytes) -> hmac.HMAC:
    # An HMAC keyed once; copying it per signature skips re-keying (half the cost of an HMAC).
    return hmac.new(key, digestmod=hashlib.sha256)


def signature(key: bytes, sts: str | bytes) -> str:
    """Step 4: the hex signature of a string to sign."""
    mac = _mac(key).copy()
    mac.update(_utf8(sts) if isinstance(sts, str) else sts)
    return mac.hexdigest()


# --- parsing helpers ----------------------------------------------------------------------------
class _Credential(NamedTuple):
    access_key: str
    date: str
    scope: str  # date/region/service/aws4_request


@lru_cache(maxsize=256)
def _parse_amz_date(value: str) -> datetime | None:
    """``YYYYMMDDTHHMMSSZ`` -> aware datetime, None if malformed (strptime is 10x slower)."""
    if len(value) != 16 or value[8] != "T" or value[15] != "Z":
        return None
    d, t = value[:8], value[9:15]
    if not (d.isdigit() and t.isdigit() and d.isascii() and t.isascii()):
        return None
    try:
        return datetime(
            int(d[:4]), int(d[4:6]), int(d[6:]), int(t[:2]), int(t[2:4]), int(t[4:]), tzinfo=UTC
        )
    except ValueError:
        return None


def _format_amz_date(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=256)
def _parse_credential(value: str, query: bool, region: str, service: str) -> _Credential:
    error: type[AuthorizationHeaderMalformed | AuthorizationQueryParametersError]
    if query:
        error = AuthorizationQueryParametersError
        prefix = "Error parsing the X-Amz-Credential parameter;"
    else:
        error = AuthorizationHeaderMalformed
        prefix = "The authorization header is malformed;"
    parts = value.strip().split("/")
    if len(parts) != 5 or not all(parts):
        raise error(
            f"{prefix} the Credential is mal-formed; expecting "
            '"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'
        )
    access_key, date, cred_region, cred_service, terminal = parts
    if len(date) != 8 or not date.isdigit() or not date.isascii():
        raise error(
            f'{prefix} incorrect date format "{date}". This date in the credential '
            'must be in the format "yyyyMMdd".'
        )
    if cred_region != region:
        raise error(
            f"{prefix} the region '{cred_region}' is wrong; expecting '{region}'", Region=region
        )
    if cred_service != service:
        raise error(
            f'{prefix} incorrect service "{cred_service}". This endpoint belongs to "{service}".'
        )
    if terminal != _TERMINAL:
        raise error(f'{prefix} incorrect terminal "{terminal}". This endpoint uses "{_TERMINAL}".')
    return _Credential(access_key, date, f"{date}/{cred_region}/{cred_service}/{_TERMINAL}")


_THREE_COMPONENTS = (
    "The authorization header is malformed; the authorization header requires three "
    "components: Credential, SignedHeaders, and Signature."
)


def _parse_authorization(value: str) -> tuple[str, str, str]:
    """``Credential=..., SignedHeaders=..., Signature=...`` (after the algorithm) ->
    (credential, signed headers, signature). Spaces and commas between fields are free."""
    parts = value.split(",")
    if len(parts) == 3:  # the usual "Credential=a, SignedHeaders=b, Signature=c"
        cred, signed, sig = parts[0].strip(), parts[1].strip(), parts[2].strip()
        if (
            cred.startswith("Credential=")
            and signed.startswith("SignedHeaders=")
            and sig.startswith("Signature=")
            and " " not in cred + signed + sig
        ):
            return cred[11:], signed[14:], sig[10:]
    fields: dict[str, str] = {}
    for item in value.replace(" ", ",").split(","):
        if not item:
            continue
        name, eq, val = item.partition("=")
        if not eq or name in fields:
            raise AuthorizationHeaderMalformed(_THREE_COMPONENTS)
        fields[name] = val
    for name in ("Credential", "SignedHeaders", "Signature"):
        if name not in fields:
            raise AuthorizationHeaderMalformed(
                f"The authorization header is malformed; missing {name}."
            )
    if len(fields) != 3:
        raise AuthorizationHeaderMalformed(_THREE_COMPONENTS)
    return fields["Credential"], fields["SignedHeaders"], fields["Signature"]


def _payload_mode(content_sha256: str) -> tuple[PayloadMode, str | None]:
    mode = _LITERAL_MODES.get(content_sha256)
    if mode is not None:
        return mode, None
    if len(content_sha256) == 64 and content_sha256.isalnum() and _is_hex(content_sha256):
        return PayloadMode.SIGNED, content_sha256.lower()
    if content_sha256.startswith("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"):
        raise S3NotImplemented("SigV4a (AWS4-ECDSA-P256-SHA256) is not supported.")
    raise InvalidArgument(
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a "
        "valid sha256 value.",
        ArgumentName="x-amz-content-sha256",
        ArgumentValue=content_sha256[:128],
    )


def _is_hex(value: str) -> bool:
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return True


def _signed_header_list(value: str) -> list[str]:
    return [h for h in value.strip().lower().split(";") if h]


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def _has_query_param(query_string: str, name: str) -> bool:
    return query_string.startswith(name) or f"&{name}" in query_string


def _candidates(
    method: str,
    raw_path: str,
    query_string: str,
    drop_signature: bool,
    header_block: str,
    signed_headers: str,
    payload_hash: str,
) -> Iterator[str]:
    """Canonical requests to try, most likely first: the path as sent, then variants that only
    differ in how the client percent-encoded the same characters."""
    uri = raw_path or "/"
    query = canonical_query(query_string, drop_signature=drop_signature)
    yield canonical_request(method, uri, query, header_block, signed_headers, payload_hash)
    uris = {uri, canonical_uri(raw_path)}
    queries = {query}
    if not raw_path.isascii():  # raw bytes the server decoded as latin-1, or UTF-8 text
        uris.add(canonical_uri(raw_path, latin1=True))
    if not query_string.isascii():
        queries.add(canonical_query(query_string, drop_signature=drop_signature, latin1=True))
    for u in sorted(uris):
        for q in sorted(queries):
            if u != uri or q != query:
                yield canonical_request(method, u, q, header_block, signed_headers, payload_hash)


def _verify(
    key: bytes,
    given: str,
    amz_date: str,
    scope: str,
    candidates: Iterator[str],
    access_key: str,
) -> str:
    """Return the computed signature if one candidate canonical request matches ``given``."""
    given_bytes = given.encode("utf-8", "replace")
    first_canonical = ""
    first_sts = ""
    for canonical in candidates:
        encodings = [_utf8(canonical)]
        if not canonical.isascii():
            with contextlib.suppress(UnicodeEncodeError):
                encodings.append(canonical.encode("latin-1"))
        for data in encodings:
            sts = string_to_sign(amz_date, scope, data)
            computed = signature(key, sts)
            if hmac.compare_digest(computed.encode("ascii"), given_bytes):
                return computed
            if not first_sts:
                first_canonical, first_sts = canonical, sts
    error = SignatureDoesNotMatch(
        AWSAccessKeyId=access_key, StringToSign=first_sts, SignatureProvided=given[:128]
    )
    # AWS also returns the canonical request, to help debug clients; not when it holds a
    # session token, which must not end up in logs.
    if "\nx-amz-security-token:" not in first_canonical:
        error.details["CanonicalRequest"] = first_canonical
    raise error


# --- entry point --------------------------------------------------------------------------------
def authenticate(
    method: str,
    raw_path: str,
    query_string: str,
    headers: Mapping[str, str],
    *,
    lookup: SecretLookup,
    region: str,
    now: datetime | None = None,
    service: str = "s3",
) -> AuthResult:
    """Verify a request's SigV4 signature (header or presigned URL) and describe its payload.

    ``raw_path`` and ``query_string`` are as received, still percent-encoded (non-ASCII
    characters, if a client sent any unencoded, are taken as UTF-8). ``headers`` has lower-case
    names, duplicates joined with ``,``. A request with neither an ``Authorization`` header nor
    an ``X-Amz-Algorithm`` query parameter is anonymous (``access_key`` None): whether that is
    allowed is the caller's decision.
    """
    authorization = headers.get("authorization")
    presigned = _has_query_param(query_string, "X-Amz-Algorithm=")
    if authorization is not None:
        if presigned:
            raise InvalidArgument(
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                "Signature query string parameter or the Authorization header should be "
                "specified",
                ArgumentName="Authorization",
            )
        return _header_auth(
            method, raw_path, query_string, headers, authorization, lookup, region, now, service
        )
    if presigned:
        return _query_auth(method, raw_path, query_string, headers, lookup, region, now, service)
    if _has_query_param(query_string, "AWSAccessKeyId=") and "Signature=" in query_string:
        raise InvalidRequest(_UNSUPPORTED)
    return _anonymous(headers)


def _anonymous(headers: Mapping[str, str]) -> AuthResult:
    declared = headers.get("x-amz-content-sha256")
    mode, digest = PayloadMode.UNSIGNED, None
    if declared is not None:
        mode, digest = _payload_mode(declared.strip())
    elif "aws-chunked" in headers.get("content-encoding", "") and "x-amz-trailer" in headers:
        mode = PayloadMode.STREAMING_UNSIGNED_TRAILER
    if mode in (PayloadMode.STREAMING_SIGNED, PayloadMode.STREAMING_SIGNED_TRAILER):
        raise InvalidRequest(f"{mode.value} requires a signed request.")
    return AuthResult(None, mode, digest, None, presigned=False, signed_at=None)


def _header_auth(
    method: str,
    raw_path: str,
    query_string: str,
    headers: Mapping[str, str],
    authorization: str,
    lookup: SecretLookup,
    region: str,
    now: datetime | None,
    service: str,
) -> AuthResult:
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        if algorithm == _SIGV4A:
            raise S3NotImplemented("SigV4a (AWS4-ECDSA-P256-SHA256) is not supported.")
        if algorithm == "AWS":
            raise InvalidRequest(_UNSUPPORTED)
        raise InvalidArgument("Unsupported Authorization Type", ArgumentName="Authorization")
    credential, signed_headers, given = _parse_authorization(rest)
    cred = _parse_credential(credential, False, region, service)
    signed = _signed_header_list(signed_headers)
    if "host" not in signed:
        raise AuthorizationHeaderMalformed(
            "The authorization header is malformed; the host header must be signed."
        )

    declared = headers.get("x-amz-content-sha256")
    if declared is None:
        raise InvalidRequest("Missing required header for this request: x-amz-content-sha256")
    mode, digest = _payload_mode(declared.strip())

    amz_date = headers.get("x-amz-date")
    when = _parse_amz_date(amz_date.strip()) if amz_date is not None else None
    if amz_date is None:
        date_header = headers.get("date")
        if date_header is not None:
            try:
                parsed = parsedate_to_datetime(date_header)
                when = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
                amz_date = _format_amz_date(when)
            except (TypeError, ValueError, OverflowError):
                when = amz_date = None
    if when is None or amz_date is None:
        raise AccessDenied("AWS authentication requires a valid Date or x-amz-date header")
    amz_date = amz_date.strip()
    if amz_date[:8] != cred.date:
        raise AuthorizationHeaderMalformed(
            f'The authorization header is malformed; Invalid credential date "{cred.date}". '
            f'This date is not the same as X-Amz-Date: "{amz_date[:8]}".'
        )
    now_ts = time.time() if now is None else _now(now).timestamp()
    if abs(now_ts - when.timestamp()) > _MAX_SKEW_SECONDS:
        raise RequestTimeTooSkewed(
            RequestTime=amz_date,
            ServerTime=_iso(datetime.fromtimestamp(now_ts, UTC)),
            MaxAllowedSkewMilliseconds=str(int(MAX_SKEW.total_seconds() * 1000)),
        )

    secret = lookup(cred.access_key)
    if secret is None:
        raise InvalidAccessKeyId(AWSAccessKeyId=cred.access_key)
    key = signing_key(secret, cred.date, region, service)
    scope = cred.scope
    header_block = canonical_headers(headers, signed)
    computed = _verify(
        key,
        given,
        amz_date,
        scope,
        _candidates(
            method, raw_path, query_string, False, header_block, ";".join(signed), declared
        ),
        cred.access_key,
    )
    return AuthResult(
        access_key=cred.access_key,
        payload_mode=mode,
        content_sha256=digest,
        signing=SigningKeyInfo(key, amz_date, scope, computed) if mode.chunked else None,
        presigned=False,
        signed_at=when,
        security_token=headers.get("x-amz-security-token"),
    )


_QUERY_REQUIRED = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Expires",
)


def _query_auth(
    method: str,
    raw_path: str,
    query_string: str,
    headers: Mapping[str, str],
    lookup: SecretLookup,
    region: str,
    now: datetime | None,
    service: str,
) -> AuthResult:
    params: dict[str, str] = {}
    for part in query_string.split("&"):
        name, _, value = part.partition("=")
        if name.startswith("X-Amz-") and name not in params:
            params[name] = unquote(value)
    if any(p not in params for p in _QUERY_REQUIRED):
        raise AuthorizationQueryParametersError(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, "
            "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and "
            "X-Amz-Expires parameters."
        )
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise AuthorizationQueryParametersError('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"')
    cred = _parse_credential(params["X-Amz-Credential"], True, region, service)
    amz_date = params["X-Amz-Date"]
    when = _parse_amz_date(amz_date)
    if when is None:
        raise AuthorizationQueryParametersError(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\""
        )
    raw_expires = params["X-Amz-Expires"]
    negative = raw_expires.startswith("-")
    magnitude = decimal(raw_expires[1:] if negative else raw_expires)
    if magnitude is None:
        raise AuthorizationQueryParametersError("X-Amz-Expires should be a number")
    expires = -magnitude if negative else magnitude
    if expires < 0:
        raise AuthorizationQueryParametersError("X-Amz-Expires must be non-negative")
    if expires > MAX_PRESIGNED_EXPIRES:
        raise AuthorizationQueryParametersError(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800"
        )
    if amz_date[:8] != cred.date:
        raise AuthorizationQueryParametersError(
            f'Invalid credential date "{cred.date}". This date is not the same as '
            f'X-Amz-Date: "{amz_date[:8]}".'
        )
    signed = _signed_header_list(params["X-Amz-SignedHeaders"])
    if "host" not in signed:
        raise AuthorizationQueryParametersError(
            "Query-string authentication requires the host header to be signed."
        )
    server_now = _now(now)
    if when - server_now > MAX_SKEW:
        raise AccessDenied("Request is not valid yet")
    if server_now > when + timedelta(seconds=expires):
        expired = AccessDenied(
            "Request has expired",
            Expires=_iso(when + timedelta(seconds=expires)),
            ServerTime=_iso(server_now),
        )
        expired.details["X-Amz-Expires"] = raw_expires
        raise expired
    unsigned = sorted(
        n
        for n in headers
        if n.startswith("x-amz-") and n not in signed and n != "x-amz-content-sha256"
    )
    if unsigned:
        raise AccessDenied(
            "There were headers present in the request which were not signed",
            HeadersNotSigned=", ".join(unsigned),
        )

    declared = headers.get("x-amz-content-sha256")
    payload_hash = UNSIGNED_PAYLOAD if declared is None else declared.strip()
    mode, digest = _payload_mode(payload_hash)

    secret = lookup(cred.access_key)
    if secret is None:
        raise InvalidAccessKeyId(AWSAccessKeyId=cred.access_key)
    key = signing_key(secret, cred.date, region, service)
    scope = cred.scope
    header_block = canonical_headers(headers, signed)
    computed = _verify(
        key,
        params["X-Amz-Signature"],
        amz_date,
        scope,
        _candidates(
            method, raw_path, query_string, True, header_block, ";".join(signed), payload_hash
        ),
        cred.access_key,
    )
    return AuthResult(
        access_key=cred.access_key,
        payload_mode=mode,
        content_sha256=digest,
        signing=SigningKeyInfo(key, amz_date, scope, computed) if mode.chunked else None,
        presigned=True,
        signed_at=when,
        security_token=params.get("X-Amz-Security-Token"),
    )


__all__ = [
    "ALGORITHM",
    "EMPTY_SHA256",
    "MAX_PRESIGNED_EXPIRES",
    "MAX_SKEW",
    "UNSIGNED_PAYLOAD",
    "AuthResult",
    "PayloadMode",
    "SecretLookup",
    "SigningKeyInfo",
    "authenticate",
    "canonical_headers",
    "canonical_query",
    "canonical_request",
    "canonical_uri",
    "signature",
    "signing_key",
    "string_to_sign",
    "uri_encode",
]
