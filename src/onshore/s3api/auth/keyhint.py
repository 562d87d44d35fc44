"""The access key a request claims, read before any verification, so that its secret can be
loaded off the event loop (:meth:`Identities.warm`) before SigV4 asks for it synchronously."""

from __future__ import annotations

import re
from collections.abc import Mapping

_HEADER = re.compile(r"Credential=([^/,\s]{1,256})/")


def claimed_access_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    authorization = headers.get("authorization")
    if authorization is not None:
        match = _HEADER.search(authorization)
        return match[1] if match else None
    credential = query.get("X-Amz-Credential")
    if credential:
        key = credential.partition("/")[0]
        return key or None
    return None
