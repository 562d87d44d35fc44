"""Reading the audit trail through the admin API.

* ``GET /audit/events`` — search (audit administrator role only): query parameters ``from``,
  ``to`` (ISO 8601, ``to`` exclusive), ``tenant`` (account id), ``user``, ``event`` (the
  ``eventName``), ``bucket``, ``key_prefix``, ``error_code`` and ``limit`` (1–1000, default 100),
  served by the trail's indexes (:func:`onshore.storage.sqlite.audit.search`);
* ``GET /audit/public-key`` — the audit public keys (audit role), what
  ``onshore audit verify`` checks an export's digests with;
* ``GET /audit/tenant-events`` — the same search for a **tenant's admin user**, signed with its
  own access key (SecNumCloud 12.6.d: a tenant may read every event about its account, and only
  those): the ``tenant`` filter is forced to the caller's account; no operator may call it.

Each result is ``{"seq", "hash", "record"}`` where ``record`` is the stored canonical JSON text
itself (not re-encoded), so a client can recompute its hash.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from onshore.domain.iam import IamError, ValidationError
from onshore.service.audit.reader import (
    Filters,
    TrailUnavailable,
    parse_time,
    public_keys,
    reading,
    search,
)
from onshore.service.blocking import Blocking

__all__ = ["AuditAccess", "AuditUnavailable", "filters_of"]

MAX_LIMIT = 1000


class AuditUnavailable(IamError):
    status, code = 409, "AuditTrailUnavailable"


@dataclass(frozen=True, slots=True)
class AuditAccess:
    """Read-only access to the deployment's trail (``None`` data dir: the trail is off)."""

    data_dir: Path | None
    blocking: Blocking

    async def search(self, filters: Filters) -> list[dict[str, object]]:
        return await self.blocking(self._search, filters)

    async def public_keys(self) -> list[tuple[str, str]]:
        return await self.blocking(self._keys)

    def _search(self, filters: Filters) -> list[dict[str, object]]:
        try:
            with reading(self._dir()) as conn:
                found = search(conn, filters)
        except TrailUnavailable as exc:
            raise AuditUnavailable(str(exc)) from None
        return [{"seq": e.seq, "hash": e.hash.hex(), "record": e.event} for e in found]

    def _keys(self) -> list[tuple[str, str]]:
        try:
            with reading(self._dir()) as conn:
                return public_keys(conn)
        except TrailUnavailable as exc:
            raise AuditUnavailable(str(exc)) from None

    def _dir(self) -> Path:
        if self.data_dir is None:
            raise AuditUnavailable("The audit trail is off on this deployment.")
        return self.data_dir


def filters_of(query: Mapping[str, str], *, account: str | None = None) -> Filters:
    """Search filters from the query string; ``account`` (a tenant's own) overrides
    ``tenant``. Bad values are a 400 ``ValidationError``."""

    def text(name: str) -> str | None:
        value = query.get(name)
        if value is None:
            return None
        if not value or len(value) > 1024:
            raise ValidationError(f"'{name}' must be 1 to 1024 characters.")
        return value

    def moment(name: str) -> int | None:
        value = text(name)
        if value is None:
            return None
        try:
            return parse_time(value)
        except ValueError as exc:
            raise ValidationError(f"'{name}': {exc}") from None

    raw_limit = query.get("limit", "100")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise ValidationError(f"'limit' must be an integer from 1 to {MAX_LIMIT}.")
    unknown = set(query) - {
        "from", "to", "tenant", "user", "event", "bucket", "key_prefix", "error_code", "limit"
    }  # fmt: skip
    if unknown:
        raise ValidationError(f"Unknown query parameter(s): {', '.join(sorted(unknown))}.")
    return Filters(
        start_ms=moment("from"),
        end_ms=moment("to"),
        account=account if account is not None else text("tenant"),
        user_name=text("user"),
        event_name=text("event"),
        bucket=text("bucket"),
        key_prefix=text("key_prefix"),
        error_code=text("error_code"),
        limit=int(raw_limit),
    )
