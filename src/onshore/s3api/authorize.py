"""The authorize step of a request: every S3 request passes here after authentication and
before its handler looks anything up.

The operation's permissions come from :mod:`onshore.s3api.actions`, the request's condition
keys from :mod:`onshore.s3api.condition_keys`, the decision from
:class:`onshore.service.access.AccessControl`. A denied request gets ``403 AccessDenied`` and
nothing else: since this runs before any object or version is read, the answer is the same
whether the key exists or not. For a missing bucket the caller is judged as if it owned it
(its own permissions decide), so nobody learns more than "no such bucket" — which CreateBucket
would tell anyone anyway, bucket names being global.
"""

from __future__ import annotations

from onshore.domain.errors import AccessDenied
from onshore.s3api.actions import COPIES, PER_KEY, Check, check_for_key, checks
from onshore.s3api.condition_keys import request_context
from onshore.s3api.http import Request
from onshore.s3api.operations import Services
from onshore.s3api.operations.objects import parse_copy_source
from onshore.s3api.routing import Op

_LISTINGS = frozenset({Op.ListObjects, Op.ListObjectsV2, Op.ListObjectVersions})
_NO_BUCKET_POLICY = frozenset({Op.CreateBucket, Op.ListBuckets})


def _context(req: Request, op: Op) -> dict[str, tuple[str, ...]]:
    assert req.principal is not None
    return request_context(
        principal=req.principal,
        auth=req.auth,
        client=req.client,
        secure=req.scheme == "https",
        headers=req.headers,
        query=req.query,
        listing=op in _LISTINGS,
    )


async def _require(req: Request, services: Services, check: Check, op: Op) -> None:
    assert req.principal is not None
    decision = await services.access.decide(
        req.principal,
        check.action,
        check.resource(services.config.partition),
        lambda: _context(req, op),
        check.bucket,
        use_bucket_policy=op not in _NO_BUCKET_POLICY,
        key=check.key,
        version_id=check.version_id,
    )
    if req.recipient is None and check.bucket is not None:
        # Whose bucket it is, for the audit record: its owner sees the request in its own
        # trail (granted or refused) when the caller is another account or anonymous.
        owner = services.access.owner_of(check.bucket)
        req.recipient = owner if owner and owner != req.principal.account_id else ""
    if not decision.allowed:
        raise AccessDenied()


async def authorize(req: Request, services: Services, op: Op) -> None:
    """Raise AccessDenied unless the request's principal may perform ``op`` as routed."""
    assert req.route is not None
    if op in PER_KEY:
        return  # the handler checks each key (authorize_key)
    source = None
    if op in COPIES and "x-amz-copy-source" in req.headers:
        source = parse_copy_source(req.headers["x-amz-copy-source"])
    if op is Op.DeleteBucket or op is Op.CreateBucket:
        services.access.invalidate(req.route.bucket or "")
    for check in checks(req.route, req.query, source):
        await _require(req, services, check, op)


async def authorize_key(
    req: Request, services: Services, op: Op, key: str, version_id: str | None
) -> None:
    """For an operation in :data:`~onshore.s3api.actions.PER_KEY`: one key's permission."""
    await _require(req, services, check_for_key(op, req.bucket, key, version_id), op)
