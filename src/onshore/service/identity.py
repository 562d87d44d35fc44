"""Who is calling: access keys → principals.

Today there is one principal, the operator's root (see :mod:`onshore.service.credentials`);
tenants, users and their keys arrive with the IAM work and plug in behind the same two calls:
``secret_for`` (SigV4 needs the secret to recompute the signature) and ``principal``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from onshore.service.credentials import ROOT_ACCOUNT_ID, RootCredentials


@dataclass(frozen=True, slots=True)
class Principal:
    access_key: str
    account_id: str
    arn: str
    display_name: str
    is_root: bool = False


class Identities:
    def __init__(self, root: RootCredentials, *, partition: str) -> None:
        self._root = root
        self._root_principal = Principal(
            access_key=root.access_key,
            account_id=ROOT_ACCOUNT_ID,
            arn=f"arn:{partition}:iam::{ROOT_ACCOUNT_ID}:root",
            display_name="root",
            is_root=True,
        )

    def secret_for(self, access_key: str) -> str | None:
        if hmac.compare_digest(access_key.encode(), self._root.access_key.encode()):
            return self._root.secret_key
        return None

    def principal(self, access_key: str) -> Principal | None:
        if access_key == self._root.access_key:
            return self._root_principal
        return None
