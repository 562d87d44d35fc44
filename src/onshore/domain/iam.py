"""Tenants, users, access keys, inline policies and quotas: the IAM model, as values.

* A **tenant** is an account: a 12-digit account id (``aws:PrincipalAccount``, the owner id of
  its buckets) and a unique name. It is created with its **admin user**, which acts as the
  account's root inside the tenant (``PrincipalKind.TENANT_ADMIN``).
* A **user** belongs to one tenant; its name is unique in the tenant (case-insensitively, as
  AWS treats IAM names) and it has a stable id (``AIDA`` + 17 characters, ``aws:userid``) that
  a new user of the same name does not inherit.
* An **access key** (``AKIA`` + 16 characters) belongs to one user, is ``Active`` or
  ``Inactive``, and at most :data:`MAX_KEYS_PER_USER` exist per user, as on AWS. Its secret is
  kept only wrapped by the operator's root key.
* An **inline policy** is a named JSON document on a user. Here it is checked only for shape
  (a JSON object, at most :data:`MAX_USER_POLICY_CHARS` characters not counting whitespace, as
  AWS counts); the policy engine validates the language.
* A **quota** caps a tenant's stored bytes, objects and buckets (``None`` = unlimited).
  :class:`Usage` is what the tenant holds now.

IAM errors are not S3 errors: the admin API and the IAM query API render them in their own
formats, each carrying the IAM error code (``NoSuchEntity``, ``EntityAlreadyExists``...).
"""

from __future__ import annotations

import json
import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

MAX_KEYS_PER_USER = 2
MAX_USER_POLICY_CHARS = 2048
ADMIN_USER = "admin"

_ID_ALPHABET = string.ascii_uppercase + "234567"
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
_NAME = re.compile(r"^[\w+=,.@-]{1,64}$", re.ASCII)
_POLICY_NAME = re.compile(r"^[\w+=,.@-]{1,128}$", re.ASCII)
_TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_IMPORTED_KEY_ID = re.compile(r"^[A-Za-z0-9]{3,128}$")


# --- errors -------------------------------------------------------------------------------------
class IamError(Exception):
    """An IAM failure a caller can see: ``code`` (the IAM error code) and HTTP ``status``."""

    status = 400
    code = "InvalidInput"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class InvalidInput(IamError):
    status, code = 400, "InvalidInput"


class ValidationError(IamError):
    status, code = 400, "ValidationError"


class MalformedPolicyDocument(IamError):
    status, code = 400, "MalformedPolicyDocument"


class NoSuchEntity(IamError):
    status, code = 404, "NoSuchEntity"


class EntityAlreadyExists(IamError):
    status, code = 409, "EntityAlreadyExists"


class LimitExceeded(IamError):
    status, code = 409, "LimitExceeded"


class DeleteConflict(IamError):
    status, code = 409, "DeleteConflict"


class OffboardingError(IamError):
    """The request conflicts with the tenant's offboarding state (the message says how): for
    example deleting a tenant whose offboarding is pending or done, whose row is the tombstone
    that keeps its name and account id from being reused."""

    status, code = 409, "OffboardingConflict"


# --- values -------------------------------------------------------------------------------------
class KeyStatus(str, Enum):  # noqa: UP042 - str+Enum like the rest of the domain
    ACTIVE = "Active"
    INACTIVE = "Inactive"


@dataclass(frozen=True, slots=True)
class Tenant:
    account_id: str
    name: str
    created: datetime


@dataclass(frozen=True, slots=True)
class User:
    account_id: str
    name: str
    user_id: str
    created: datetime
    is_admin: bool = False


@dataclass(frozen=True, slots=True)
class AccessKey:
    """An access key's public part (the secret is never in this value)."""

    access_key: str
    account_id: str
    user_name: str
    status: KeyStatus
    created: datetime


@dataclass(frozen=True, slots=True)
class NewAccessKey:
    """An access key as created: the one moment its secret is shown."""

    key: AccessKey
    secret_key: str

    def __repr__(self) -> str:  # never show the secret
        return f"NewAccessKey(key={self.key!r}, secret_key='***')"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What authentication needs about a key: its owner and the wrapped secret."""

    key: AccessKey
    user: User
    wrapped_secret: bytes


@dataclass(frozen=True, slots=True)
class Quota:
    max_bytes: int | None = None
    max_objects: int | None = None
    max_buckets: int | None = None

    @property
    def unlimited(self) -> bool:
        return self.max_bytes is None and self.max_objects is None and self.max_buckets is None


@dataclass(frozen=True, slots=True)
class Usage:
    bytes: int = 0
    objects: int = 0
    buckets: int = 0


# --- generators and checks ----------------------------------------------------------------------
def new_account_id() -> str:
    return "".join(secrets.choice(string.digits) for _ in range(12))


def new_user_id() -> str:
    return "AIDA" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


def new_access_key_id() -> str:
    return "AKIA" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


def new_secret_key() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def check_tenant_name(name: str) -> str:
    if not _TENANT_NAME.match(name) or name.isdigit():
        raise ValidationError(
            "A tenant name is 2 to 63 lower-case letters, digits and hyphens, starts with a "
            "letter or digit, and is not all digits (those are account ids)."
        )
    return name


def is_account_id(value: str) -> bool:
    return bool(_ACCOUNT_ID.match(value))


def check_user_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValidationError(
            "A user name is 1 to 64 characters: letters, digits and _+=,.@- only."
        )
    return name


def check_policy_name(name: str) -> str:
    if not _POLICY_NAME.match(name):
        raise ValidationError(
            "A policy name is 1 to 128 characters: letters, digits and _+=,.@- only."
        )
    return name


def check_policy_document(document: str) -> str:
    """Shape checks AWS makes on any inline user policy: JSON object, size limit."""
    size = sum(1 for ch in document if not ch.isspace())
    if size > MAX_USER_POLICY_CHARS:
        raise LimitExceeded(
            f"Maximum policy size of {MAX_USER_POLICY_CHARS} bytes exceeded for user policy "
            f"(this one is {size}, not counting whitespace)."
        )
    try:
        parsed = json.loads(document)
    except ValueError as exc:
        raise MalformedPolicyDocument(f"The policy is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise MalformedPolicyDocument("The policy must be a JSON object.")
    return document


def check_imported_key(access_key: str, secret_key: str) -> None:
    """An access key pair brought from another S3 server (migrations)."""
    if not _IMPORTED_KEY_ID.match(access_key):
        raise ValidationError("An imported access key id is 3 to 128 letters and digits.")
    if not 8 <= len(secret_key) <= 128 or not all(33 <= ord(ch) < 127 for ch in secret_key):
        raise ValidationError(
            "An imported secret key is 8 to 128 printable ASCII characters without spaces."
        )


def check_quota_value(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{name} must be a non-negative integer or null (unlimited).")
    return value
