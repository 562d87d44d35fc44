"""Rendering an :class:`~onshore.domain.errors.S3Error` as S3 does, in exactly one place.

The body is the XML S3 sends (``Code``, ``Message``, ``Resource``, ``RequestId``, ``HostId`` and
the error's own detail elements such as ``BucketName`` or ``Key``); HEAD responses carry the
status and headers only. Unexpected exceptions never reach here: the app turns them into
``InternalError`` first, so no message, path or traceback of ours leaks to a client.
"""

from __future__ import annotations

from onshore.domain.errors import S3Error
from onshore.domain.ids import host_id
from onshore.s3api import xml
from onshore.s3api.http import Response


def error_response(error: S3Error, *, resource: str, request_id: str, head: bool) -> Response:
    headers = {"Content-Type": "application/xml", **error.headers}
    if head:
        return Response(error.status, headers)
    details = "".join(xml.element(name, value) for name, value in error.details.items())
    body = (
        f"{xml.DECLARATION}<Error>{xml.element('Code', error.code)}"
        f"{xml.element('Message', error.message)}{details}"
        f"{xml.element('Resource', error.resource or resource)}"
        f"{xml.element('RequestId', request_id)}{xml.element('HostId', host_id(request_id))}"
        "</Error>"
    )
    return Response(error.status, headers, body.encode())
