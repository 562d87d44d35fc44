"""Tenant offboarding: provable deletion at contract end (issue 5, ``docs/offboarding.md``).

A tenant's contract ends in three stages::

    (active) --request--> NOTICE --execute (after notice_days)--> EXECUTING --> OFFBOARDED
                 ^            |
                 +--cancel----+

* **NOTICE** (default 21 days, SecNumCloud 19.4): the tenant can still read, list and export
  everything; new writes — S3 writes, and IAM and KMS calls that change state or make new
  ciphertext — are refused with ``AccountProblem`` (:mod:`.gate`).
* **EXECUTING**: crypto-shredding first — the tenant key (and the tenant's KMS keys) are
  destroyed, so every object it stored becomes unreadable at once — then its buckets (objects,
  versions, multipart uploads, blobs on disk), users, access keys, policies and quota are
  deleted. Each step is idempotent and recorded, so a run killed half-way finishes when run
  again (:mod:`.lifecycle`).
* **OFFBOARDED**: the tenant row stays as a tombstone (the account id and name are never
  reused; deleting the tenant is refused from the request on) with a
  deletion certificate signed by the deployment's audit key (:mod:`.certificate`), which an
  auditor verifies offline with ``onshore audit public-key``'s output.

The audit trail is never deleted: it is kept under its own retention rule.
"""

from __future__ import annotations

from onshore.domain.iam import OffboardingError
from onshore.service.offboarding.certificate import CertificateError, verify_certificate
from onshore.service.offboarding.gate import OffboardingGate
from onshore.service.offboarding.lifecycle import Offboarding
from onshore.service.offboarding.models import OffboardingState, Status

__all__ = [
    "CertificateError",
    "Offboarding",
    "OffboardingError",
    "OffboardingGate",
    "OffboardingState",
    "Status",
    "verify_certificate",
]
