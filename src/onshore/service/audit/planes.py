"""Which plane a request came through, for its audit record.

The S3 data plane names its operations itself (:mod:`onshore.s3api.routing`); the other planes
served by the same processes tell the audit trail what they are through a :class:`Plane`:

* the IAM query API (``eventSource`` ``iam.<partition>``, ``eventName`` the IAM action);
* the KMS API (``kms.<partition>``, the KMS operation, e.g. ``GenerateDataKey``);
* the admin API (``admin.<partition>``, the endpoint's handler name in CamelCase, e.g.
  ``CreateTenant``; the caller is an operator, with its role);
* offline CLI commands that change state (``cli.<partition>``, e.g. ``CreateOperator``).

A plane's request parameters come from an allow-list, like S3's: names and ids, never a
secret (an imported access key's secret, a KMS plaintext, a policy document's body are not
parameters worth a record and are left out).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "IAM_PARAMETERS",
    "KMS_PARAMETERS",
    "Plane",
    "camel",
    "pick",
]

# IAM query parameters kept in a record (form fields; never SecretAccessKey, never a document).
IAM_PARAMETERS = frozenset(
    {"UserName", "NewUserName", "AccessKeyId", "Status", "PolicyName", "Path", "Marker",
     "MaxItems", "GroupName", "PolicyArn"}
)  # fmt: skip
# KMS request fields kept (never Plaintext, CiphertextBlob or an EncryptionContext's values).
KMS_PARAMETERS = frozenset(
    {"KeyId", "AliasName", "TargetKeyId", "KeySpec", "NumberOfBytes", "KeyUsage",
     "PendingWindowInDays", "Description", "RotationPeriodInDays", "IncludeKeyMaterial",
     "Limit", "Marker"}
)  # fmt: skip

_READ_PREFIXES = ("Get", "List", "Describe", "Head", "Search")
# KMS's cryptographic operations change nothing: CloudTrail marks them read-only.
_KMS_READS = frozenset({"Encrypt", "Decrypt", "GenerateDataKey"})


@dataclass(slots=True)
class Plane:
    """What a non-S3 request's record says about its plane: ``source`` (``iam``, ``kms``,
    ``admin``, ``cli``), the operation's ``name``, its allow-listed ``parameters`` and, when
    the plane answers errors itself rather than raising them, the ``error_code``."""

    source: str
    name: str = "Unknown"
    parameters: dict[str, str] = field(default_factory=dict)
    error_code: str | None = None
    error_message: str | None = None

    @property
    def read_only(self) -> bool:
        return self.name.startswith(_READ_PREFIXES) or (
            self.source == "kms" and self.name in _KMS_READS
        )

    def failed(self, code: str, message: str) -> None:
        self.error_code = code
        self.error_message = message


def pick(values: Mapping[str, object], allowed: frozenset[str]) -> dict[str, str]:
    """The allow-listed scalar entries of ``values``, as strings (at most 256 characters)."""
    return {
        name: str(value)[:256]
        for name, value in values.items()
        if name in allowed and isinstance(value, str | int) and not isinstance(value, bool)
    }


def camel(name: str) -> str:
    """``create_tenant`` → ``CreateTenant``."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)
