"""Records of offline CLI commands that change state (``eventSource`` ``cli.<partition>``).

``onshore operator create/delete`` and ``onshore kms rotate-root`` run on the server host
against the data directory, not through an API, yet change who may administer the deployment
or what seals its keys: each leaves a record in the same chain as the server's records. The
caller is the host account that ran the command (``userIdentity.type`` ``HostUser``, its login
name as ``userName``), from ``localhost``.

A command whose change is one metadata write (operator create/delete) commits its record in that
write's savepoint, like the server does (:data:`~onshore.storage.sqlite.writer.JOB_WRAPPER`):
no change without its record. ``rotate-root`` (many writes, resumable) appends one record when
it has finished. With ``audit`` off (the setting), nothing is recorded.
"""

from __future__ import annotations

import getpass
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from onshore.config import resolve
from onshore.domain.ids import new_request_id
from onshore.service.audit.events import Facts, row_of
from onshore.service.audit.integrity import link_function
from onshore.service.audit.trail import append
from onshore.storage.sqlite.writer import JOB_WRAPPER, GroupCommitWriter

__all__ = ["OfflineAudit"]

Work = Callable[[sqlite3.Connection], Any]


@dataclass(frozen=True, slots=True)
class OfflineAudit:
    enabled: bool
    partition: str
    region: str
    alg: str

    @classmethod
    def from_settings(cls) -> OfflineAudit:
        """From the deployment's settings (environment, config file), as the server reads them."""
        values = {r.setting.name: r.value for r in resolve()}
        return cls(
            bool(values["audit"]),
            str(values["partition"]),
            str(values["region"]),
            str(values["audit_hash"]),
        )

    def facts(self, name: str, parameters: dict[str, str], *, read_only: bool = False) -> Facts:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        return Facts(
            time_ms=time.time_ns() // 1_000_000,
            event_name=name,
            request_id=new_request_id(),
            source_ip="localhost",
            user_agent="onshore-cli",
            read_only=read_only,
            parameters=parameters,
            identity_type="HostUser",
            user_name=user,
            event_source="cli",
        )

    @contextmanager
    def recording(self, name: str, parameters: dict[str, str]) -> Iterator[None]:
        """Within this block, each metadata write commits the command's record with it."""
        if not self.enabled:
            yield
            return
        facts = self.facts(name, parameters)
        link = link_function(self.alg)

        def wrap(work: Work) -> Work:
            def audited(conn: sqlite3.Connection) -> Any:
                result = work(conn)
                row = row_of(facts, partition=self.partition, region=self.region)
                append(conn, [row], self.alg, link, self.partition, self.region)
                return result

            return audited

        token = JOB_WRAPPER.set(wrap)
        try:
            yield
        finally:
            JOB_WRAPPER.reset(token)

    def record(
        self,
        writer: GroupCommitWriter,
        name: str,
        parameters: dict[str, str],
        *,
        error: tuple[str, str] | None = None,
    ) -> None:
        """Append the command's record now (its own write)."""
        if not self.enabled:
            return
        facts = self.facts(name, parameters)
        if error is not None:
            facts.error_code, facts.error_message = error
        row = row_of(facts, partition=self.partition, region=self.region)
        link = link_function(self.alg)
        writer.submit(lambda conn: append(conn, [row], self.alg, link, self.partition, self.region))
