"""The condition keys of a request: what ``Condition`` blocks in policies test.

Each key maps to a tuple of values (multi-valued keys hold several; most hold one). A key the
request does not carry is simply absent — which ``Null`` and the ``...IfExists`` forms test.

Global keys: ``aws:SourceIp`` (the TCP peer), ``aws:SecureTransport`` (TLS), ``aws:CurrentTime``
(ISO 8601, UTC), ``aws:EpochTime``, ``aws:Referer`` and ``aws:UserAgent`` (headers), and for a
signed request ``aws:PrincipalAccount``, ``aws:PrincipalArn``, ``aws:userid`` and, for an IAM
user, ``aws:username``.

S3 keys: ``s3:prefix``, ``s3:delimiter``, ``s3:max-keys`` (listing parameters as sent),
``s3:x-amz-acl``, ``s3:x-amz-server-side-encryption`` and the other request headers S3 defines
keys for, ``s3:VersionId``, ``s3:authType`` (``REST-HEADER`` or ``REST-QUERY-STRING``),
``s3:signatureversion`` and ``s3:signatureAge`` (milliseconds since the request was signed).
``s3:RequestObjectTag/<key>`` and ``s3:ExistingObjectTag/<key>`` are never present: object
tagging is not implemented yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from onshore.s3api.auth import AuthResult
from onshore.service.identity import Principal, PrincipalKind

_HEADER_KEYS = (
    "x-amz-acl",
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-storage-class",
    "x-amz-copy-source",
    "x-amz-metadata-directive",
    "x-amz-content-sha256",
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
    "x-amz-website-redirect-location",
)
_LIST_KEYS = ("prefix", "delimiter", "max-keys")


def request_context(
    *,
    principal: Principal,
    auth: AuthResult | None,
    client: str,
    secure: bool,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    listing: bool,
    now: datetime | None = None,
) -> dict[str, tuple[str, ...]]:
    """The condition keys (lower-case names) of one request."""
    now = now or datetime.now(UTC)
    ctx: dict[str, tuple[str, ...]] = {
        "aws:currenttime": (now.strftime("%Y-%m-%dT%H:%M:%SZ"),),
        "aws:epochtime": (str(int(now.timestamp())),),
        "aws:securetransport": ("true" if secure else "false",),
    }
    if client:
        ctx["aws:sourceip"] = (client,)
    for header, key in (("referer", "aws:referer"), ("user-agent", "aws:useragent")):
        if header in headers:
            ctx[key] = (headers[header],)
    if principal.kind is not PrincipalKind.ANONYMOUS:
        ctx["aws:principalaccount"] = (principal.account_id,)
        ctx["aws:principalarn"] = (principal.arn,)
        if principal.user_id:
            ctx["aws:userid"] = (principal.user_id,)
        if principal.user_name:
            ctx["aws:username"] = (principal.user_name,)
    if auth is not None and auth.access_key is not None:
        ctx["s3:authtype"] = ("REST-QUERY-STRING" if auth.presigned else "REST-HEADER",)
        ctx["s3:signatureversion"] = ("AWS4-HMAC-SHA256",)
        if auth.signed_at is not None:
            age = max(0, int((now - auth.signed_at).total_seconds() * 1000))
            ctx["s3:signatureage"] = (str(age),)
    for header in _HEADER_KEYS:
        if header in headers:
            ctx["s3:" + header] = (headers[header],)
    if "versionId" in query:
        ctx["s3:versionid"] = (query["versionId"],)
    if listing:
        for name in _LIST_KEYS:
            if name in query:
                ctx["s3:" + name] = (query[name],)
    return ctx
