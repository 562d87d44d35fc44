"""The tamper-evident audit trail (issue 6; ``docs/audit.md``).

* :mod:`.events` — what a record says (CloudTrail's shape) and its canonical JSON;
* :mod:`.render` — the canonical JSON written directly, and from a group's template;
* :mod:`.integrity` — the hash chain, the Ed25519 audit key and signed digests;
* :mod:`.trail` — how records reach the chain in a running server (with the change they
  describe, or buffered and group-committed for reads);
* :mod:`.capture` — the S3 request path's records: captured as values, rendered by the flusher;
* :mod:`.search` — searching the trail through its search rows;
* :mod:`.export` and :mod:`.verify` — the offline side: export segments and digests, and check
  them with only the public key;
* :mod:`.retention` — the retention rule.
"""

from __future__ import annotations

from onshore.config import Config
from onshore.service.audit.retention import check_retention
from onshore.service.audit.trail import AuditTrail
from onshore.service.rootkey import KeyWrapper
from onshore.storage.sqlite import SqliteMetadataStore

__all__ = ["AuditTrail", "check_retention", "open_trail"]


def open_trail(config: Config, meta: SqliteMetadataStore, root: KeyWrapper) -> AuditTrail | None:
    """The audit trail of a server process, or None when ``audit`` is off."""
    if not config.audit:
        return None
    check_retention(config)
    return AuditTrail(
        meta.writer,
        root,
        partition=config.partition,
        region=config.region,
        alg=config.audit_hash,
        flush_interval=config.audit_flush_interval,
        digest_minutes=config.audit_digest_minutes,
    )
