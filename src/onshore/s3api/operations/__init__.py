"""S3 operations: one module per resource family, one function per AWS operation.

Handlers are thin: parse the wire format, make one service call, render the response. Each is
registered under its boto3 name with :func:`operation`; ``REGISTRY`` is the list of what this
server implements (``scripts/compat_table.py`` turns it into ``docs/s3-compatibility.md``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from onshore.config import Config
from onshore.s3api.http import Request, Response
from onshore.s3api.routing import Op
from onshore.service.access import AccessControl
from onshore.service.blocking import Blocking
from onshore.service.buckets import BucketService
from onshore.service.iam import IamService
from onshore.service.identity import Identities
from onshore.service.kms.keys import KmsService
from onshore.service.listing import ListingService
from onshore.service.multipart import MultipartService
from onshore.service.objects import ObjectService
from onshore.service.space import DiskSpace


@dataclass(frozen=True, slots=True)
class Services:
    config: Config
    identities: Identities
    buckets: BucketService
    objects: ObjectService
    multipart: MultipartService
    listing: ListingService
    blocking: Blocking
    space: DiskSpace
    access: AccessControl
    iam: IamService | None = None
    kms: KmsService | None = None


Handler = Callable[[Request, Services], Awaitable[Response]]
REGISTRY: dict[Op, Handler] = {}


def operation(op: Op) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        REGISTRY[op] = handler
        return handler

    return register


def load_all() -> dict[Op, Handler]:
    """Import every operations module so that all handlers are registered."""
    from onshore.s3api.operations import (  # noqa: F401
        acl,
        buckets,
        encryption,  # noqa: F401
        listing,
        multipart,
        objects,
        policy,
    )

    return REGISTRY
