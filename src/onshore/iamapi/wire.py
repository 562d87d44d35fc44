"""IAM query API XML: responses and errors."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from onshore.s3api import xml

NAMESPACE = "https://iam.amazonaws.com/doc/2010-05-08/"


def response(action: str, request_id: str, result: Iterable[str] | None) -> bytes:
    """``<{Action}Response>``, with a ``<{Action}Result>`` unless the action returns nothing."""
    body = "" if result is None else f"<{action}Result>{''.join(result)}</{action}Result>"
    meta = f"<ResponseMetadata>{xml.element('RequestId', request_id)}</ResponseMetadata>"
    return (
        f'{xml.DECLARATION}<{action}Response xmlns="{NAMESPACE}">{body}{meta}</{action}Response>'
    ).encode()


def error(code: str, message: str, request_id: str, *, sender: bool = True) -> bytes:
    kind = "Sender" if sender else "Receiver"
    return (
        f'{xml.DECLARATION}<ErrorResponse xmlns="{NAMESPACE}"><Error>'
        f"{xml.element('Type', kind)}{xml.element('Code', code)}"
        f"{xml.element('Message', message)}</Error>"
        f"{xml.element('RequestId', request_id)}</ErrorResponse>"
    ).encode()


def members(name: str, items: Iterable[str]) -> str:
    return f"<{name}>{''.join(f'<member>{item}</member>' for item in items)}</{name}>"


def timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


element = xml.element
escape = xml.escape
