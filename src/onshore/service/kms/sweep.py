"""The key sweep: KMS key deletions and automatic rotations carried out when they fall due.

``ScheduleKeyDeletion`` and ``EnableKeyRotation`` only set dates; something has to act on them.
Every server process runs a :class:`KeySweeper` thread: one sweep at start-up, then one every
``kms_sweep_seconds``. A sweep asks the store for

1. keys pending deletion whose date has passed: each is deleted — key row, every key material,
   aliases — in one fsynced transaction (:meth:`KmsService.delete_due`). From then on the key is
   ``NotFoundException``, and SSE-KMS objects under it answer ``400 KMS.NotFoundException``:
   their data keys can never be unsealed again (crypto-shredding);
2. Enabled keys with automatic rotation on whose next rotation has come: each gets a new current
   key material and its next date, in one transaction (:meth:`KmsService.rotate_due`).

Several processes sweep the same database, so every change is conditional, checked inside its
own transaction (due, in the expected state, at the expected material version): the first
process to get there does it, the others' attempts change nothing (``KmsNotChanged``) and leave
no record. Each change commits with its audit record, as CloudTrail records these service
events: ``DeleteKey`` and ``RotateKey``, ``eventType`` ``AwsServiceEvent``, the service as
``userIdentity.invokedBy``, the key's account as recipient, the key's ARN (and, for a rotation,
CloudTrail's ``serviceEventDetails``: rotation type, previous and current key material ids) in
``additionalEventData``. With ``audit`` off, none is kept.

A sweep that fails (the disk is full, the database is locked for too long) is logged and tried
again at the next interval; nothing is half-done, since each key is its own transaction.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass

from onshore.domain.ids import new_request_id
from onshore.domain.models import KmsKey
from onshore.service.audit.events import Facts
from onshore.service.audit.trail import AuditTrail
from onshore.service.kms.keys import AUTOMATIC, KmsService, key_material_id
from onshore.storage.ports import KmsNotChanged

__all__ = ["INVOKED_BY", "KeySweeper", "SweepResult", "trail_recorder"]

log = logging.getLogger("onshore.kms")

#: Who the records of the sweep's changes name as the caller (CloudTrail: "AWS Internal").
INVOKED_BY = "onshore internal"

Recorder = Callable[[Facts], AbstractContextManager[None]]


def trail_recorder(trail: AuditTrail) -> Recorder:
    """Commit each change made within the block with the record of ``facts``, in the same write
    (see :mod:`onshore.service.audit.trail`); a change that does not happen leaves none."""

    @contextmanager
    def recording(facts: Facts) -> Iterator[None]:
        pending = trail.begin(lambda: facts)
        try:
            yield
        finally:
            trail.finish(pending, None)

    return recording


@dataclass(frozen=True, slots=True)
class SweepResult:
    """The key ARNs this sweep deleted and rotated (those other processes did are not here)."""

    deleted: tuple[str, ...] = ()
    rotated: tuple[str, ...] = ()


class KeySweeper:
    """Runs the sweep (see the module docstring). Blocking; :meth:`start` for a thread."""

    def __init__(
        self, kms: KmsService, *, interval: float = 300.0, recorder: Recorder | None = None
    ) -> None:
        self.kms = kms
        self.interval = max(0.05, interval)
        self._recorder = recorder
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep(self) -> SweepResult:
        """Delete every key due for deletion, then rotate every key due for rotation."""
        now = self.kms.clock()
        deleted: list[str] = []
        for key in self.kms.store.due_kms_deletions(now):
            try:
                with self._recording(key, "DeleteKey"):
                    self.kms.delete_due(key.key_id)
            except KmsNotChanged:
                continue  # cancelled meanwhile, or another process deleted it
            deleted.append(self.kms.arn(key))
            log.info("KMS key %s deleted: its deletion date had passed", self.kms.arn(key))
        rotated: list[str] = []
        for key in self.kms.store.due_kms_rotations(now):
            details: dict[str, object] = {
                "rotationType": AUTOMATIC,
                "keyOrigin": "AWS_KMS",
                "previousKeyMaterialId": key_material_id(key.key_id, key.material_version),
                "currentKeyMaterialId": key_material_id(key.key_id, key.material_version + 1),
            }
            try:
                with self._recording(key, "RotateKey", details):
                    self.kms.rotate_due(key)
            except KmsNotChanged:
                continue  # disabled, deleted or rotated by another process meanwhile
            rotated.append(self.kms.arn(key))
            log.info("KMS key %s rotated (automatic rotation)", self.kms.arn(key))
        return SweepResult(tuple(deleted), tuple(rotated))

    def _recording(
        self, key: KmsKey, name: str, details: dict[str, object] | None = None
    ) -> AbstractContextManager[None]:
        if self._recorder is None:
            return nullcontext()
        facts = Facts(
            time_ms=int(self.kms.clock().timestamp() * 1000),
            event_name=name,
            request_id=new_request_id(),
            source_ip=INVOKED_BY,
            user_agent=INVOKED_BY,
            read_only=False,
            identity_type="AWSService",
            account_id=key.account_id,
            recipient=key.account_id,
            event_source="kms",
            extra={"keyId": self.kms.arn(key), **(details or {})},
            event_type="AwsServiceEvent",
            invoked_by=INVOKED_BY,
        )
        return self._recorder(facts)

    # --- background thread ----------------------------------------------------------------------
    def start(self) -> None:
        """Sweep once now (start-up), then every ``interval`` seconds in a daemon thread."""
        self._sweep_logged()
        self._thread = threading.Thread(target=self._run, name="onshore-kms-sweep", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sweep_logged()

    def _sweep_logged(self) -> None:
        try:
            self.sweep()
        except Exception:  # noqa: BLE001 - try again at the next interval
            log.exception("KMS key sweep failed; retrying in %.0f s", self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
