"""Clock rollback detection.

Licenses are checked offline, so the deployment's own clock decides when one expires — and
setting the clock back would extend a license for free. The deployment therefore keeps the
highest time it has seen in the database, signed with the deployment key (so the row cannot be
lowered by editing the database without the root key). A clock more than :data:`TOLERANCE`
earlier than that mark, or a mark whose signature fails, is tampering: the deployment goes
read-only with a reason that says so until the clock is right again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature

from onshore.service.licensing.deployment import DeploymentKey
from onshore.storage.sqlite.licensing import SqliteLicensingStore

TOLERANCE = timedelta(minutes=5)


def _message(value_us: int) -> bytes:
    return b"onshore clock high-water mark\0" + str(value_us).encode()


def check_and_advance(store: SqliteLicensingStore, key: DeploymentKey, now: datetime) -> str | None:
    """Record ``now`` as seen; return why the clock is not trustworthy, or None."""
    now_us = int(now.timestamp() * 1_000_000)

    def valid(value_us: int, signature: bytes) -> bool:
        try:
            key.public.verify(signature, _message(value_us))
        except InvalidSignature:
            return False
        return True

    before = store.advance_clock(now_us, lambda v: key.sign(_message(v)), valid)
    if before is None:
        return None
    mark_us, signature = before
    if not valid(mark_us, signature):
        return (
            "the deployment's clock record has been altered (its signature does not verify); "
            "writes are refused as a precaution; contact the licensor"
        )
    mark = datetime.fromtimestamp(mark_us / 1_000_000, UTC)
    if now < mark - TOLERANCE:
        return (
            f"the system clock ({now:%Y-%m-%dT%H:%M:%SZ}) is earlier than a time this deployment "
            f"has already seen ({mark:%Y-%m-%dT%H:%M:%SZ}): the clock was set back; correct the "
            "clock (NTP) and writes resume"
        )
    return None
