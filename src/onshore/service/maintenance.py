"""Keeping the store tidy: the orphan sweep.

Blobs become orphans when the server stops between writing a blob and committing the metadata
that names it, or between a commit and deleting the blobs it freed. Neither loses acknowledged
data (an acknowledged write has committed metadata), and both are cleaned here: temporary files
first, then every committed blob no metadata row references. Run at start-up, before requests
are served, so no in-flight write can be mistaken for an orphan.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

from onshore.storage.ports import BlobStore, MetadataStore

log = logging.getLogger("onshore.maintenance")
BATCH = 500


@dataclass(frozen=True, slots=True)
class SweepReport:
    temp_files: int
    orphan_blobs: int


def sweep_orphans(meta: MetadataStore, blobs: BlobStore, *, temp_age: float = 0.0) -> SweepReport:
    temp = blobs.sweep_temp(temp_age)
    orphans = 0
    ids = blobs.iter_blob_ids()
    while batch := list(itertools.islice(ids, BATCH)):
        referenced = meta.referenced_blobs(batch)
        doomed = [b for b in batch if b not in referenced]
        if doomed:
            blobs.delete(doomed)
            orphans += len(doomed)
    if temp or orphans:
        log.info("swept %d temporary files and %d orphan blobs", temp, orphans)
    return SweepReport(temp, orphans)
