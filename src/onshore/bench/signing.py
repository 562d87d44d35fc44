"""AWS Signature Version 4 for the load generator: small, and fast enough to never be the
bottleneck.

A SigV4 signature is built in four steps (AWS General Reference, "Signature Version 4 signing
process"):

1. The *canonical request*: method, URI-encoded path, sorted query string, the signed headers as
   ``name:value`` lines (lower-case names, sorted), the list of their names joined by ``;``, and the
   payload hash. The load generator sends ``x-amz-content-sha256: UNSIGNED-PAYLOAD``, which S3
   accepts over any transport and which spares hashing request bodies (a 512 MiB PUT would otherwise
   cost a full SHA-256 pass on the client).
2. The *string to sign*: ``AWS4-HMAC-SHA256``, the request time, the *scope*
   ``YYYYMMDD/region/s3/aws4_request``, and the hex SHA-256 of the canonical request.
3. The *signing key*: ``HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), "s3"),
   "aws4_request")``. It depends only on the day, so it is derived once per process per day, not per
   request.
4. The *signature*: hex ``HMAC(signing_key, string_to_sign)``. The HMAC's inner and outer states for
   the signing key are also precomputed: per request we only ``copy()`` them, which saves two
   SHA-256 block compressions and Python-level HMAC set-up on every call.

Per request the remaining work is one SHA-256 of a ~250-byte canonical request and one HMAC
finalisation: a few microseconds.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_ALGORITHM = "AWS4-HMAC-SHA256"


_PLAIN = re.compile(r"[A-Za-z0-9/_.~-]*").fullmatch


def uri_encode_path(path: str) -> str:
    """Encode a path as S3 canonicalises it: every byte but unreserved characters and ``/``."""
    return path if _PLAIN(path) else quote(path, safe="/-_.~")


def canonical_query(params: Sequence[tuple[str, str]]) -> str:
    """The canonical query string: names and values URI-encoded (``/`` too), sorted by name,
    value."""
    encoded = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in encoded)


def derive_signing_key(secret_key: str, date: str, region: str, service: str = "s3") -> bytes:
    """Step 3 above: the day-scoped key every signature of that day is made with."""
    k = hmac.new(b"AWS4" + secret_key.encode(), date.encode(), hashlib.sha256).digest()
    k = hmac.new(k, region.encode(), hashlib.sha256).digest()
    k = hmac.new(k, service.encode(), hashlib.sha256).digest()
    return hmac.new(k, b"aws4_request", hashlib.sha256).digest()


class _Mac:
    """HMAC-SHA256 with a fixed key, its inner and outer hash states computed once (RFC 2104:
    ``H((K ^ opad) || H((K ^ ipad) || m))``); each message then costs two ``copy()``s of C
    objects."""

    def __init__(self, key: bytes) -> None:
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def hexdigest(self, message: bytes) -> str:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


@dataclass
class Signer:
    """Signs S3 requests for one access key and region; cache the instance for the process's
    life."""

    access_key: str
    secret_key: str
    region: str = "us-east-1"
    _date: str = field(default="", init=False, repr=False)
    _scope: str = field(default="", init=False, repr=False)
    _mac: _Mac | None = field(default=None, init=False, repr=False)
    _second: int = field(default=-1, init=False, repr=False)
    _amz_date: str = field(default="", init=False, repr=False)

    def _keys_for(self, date: str) -> _Mac:
        if date != self._date or self._mac is None:
            self._mac = _Mac(derive_signing_key(self.secret_key, date, self.region))
            self._date = date
            self._scope = f"{date}/{self.region}/s3/aws4_request"
        return self._mac

    def amz_date(self, now: float | None = None) -> str:
        """``YYYYMMDDTHHMMSSZ`` for now (cached per second: formatting time is not free)."""
        t = int(time.time() if now is None else now)
        if t != self._second:
            self._second = t
            self._amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))
        return self._amz_date

    def sign(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        host: str,
        *,
        extra_headers: Sequence[tuple[str, str]] = (),
        payload_hash: str = UNSIGNED_PAYLOAD,
        amz_date: str | None = None,
    ) -> list[tuple[str, str]]:
        """Return the headers that authenticate this request (Authorization included).

        ``path`` is the raw (unencoded) path, e.g. ``/bucket/key``; ``extra_headers`` are signed too
        and returned with the rest. Header values must already be trimmed.
        """
        stamp = amz_date or self.amz_date()
        mac = self._keys_for(stamp[:8])
        headers = [
            ("host", host),
            ("x-amz-content-sha256", payload_hash),
            ("x-amz-date", stamp),
            *((k.lower(), v) for k, v in extra_headers),
        ]
        headers.sort()
        signed_names = ";".join(k for k, _ in headers)
        canonical = "\n".join(
            (
                method,
                uri_encode_path(path),
                canonical_query(query) if query else "",
                "".join(f"{k}:{v}\n" for k, v in headers),
                signed_names,
                payload_hash,
            )
        )
        string_to_sign = "\n".join(
            (_ALGORITHM, stamp, self._scope, hashlib.sha256(canonical.encode()).hexdigest())
        )
        authorization = (
            f"{_ALGORITHM} Credential={self.access_key}/{self._scope}, "
            f"SignedHeaders={signed_names}, Signature={mac.hexdigest(string_to_sign.encode())}"
        )
        headers.append(("authorization", authorization))
        return headers

    def authorize(
        self, method: str, target_path: str, target_query: str, host: str, stamp: str
    ) -> str:
        """The Authorization value for the common case, with nothing to sort or encode per call:
        signed headers exactly ``host``, ``x-amz-content-sha256: UNSIGNED-PAYLOAD`` and
        ``x-amz-date``; ``target_path`` and ``target_query`` already canonical (as sent)."""
        mac = self._keys_for(stamp[:8])
        canonical = (
            f"{method}\n{target_path}\n{target_query}\nhost:{host}\n"
            f"x-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:{stamp}\n\n"
            f"host;x-amz-content-sha256;x-amz-date\nUNSIGNED-PAYLOAD"
        )
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        signature = mac.hexdigest(f"{_ALGORITHM}\n{stamp}\n{self._scope}\n{digest}".encode())
        return (
            f"{_ALGORITHM} Credential={self.access_key}/{self._scope}, "
            f"SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={signature}"
        )
