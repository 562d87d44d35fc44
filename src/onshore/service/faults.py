"""Fault points: named instants in the write paths where a test can make the server die.

``faults.point("put_object.committed")`` does nothing — unless the environment variable
``ONSHORE_FAULT_POINT`` named that point when the process started, in which case the process
ends on the spot with ``os._exit(137)``: no ``finally`` block, no ``atexit`` handler, no flush,
exactly as if it had been sent ``SIGKILL`` at that instant (137 = 128 + 9 is the status a
shell shows for that). ``tests/api/test_crash_points.py`` arms each point in turn, makes a
request reach it, restarts the server and checks that nothing acknowledged was lost and nothing
half-done is visible.

When the variable is unset (always, outside such tests) ``point`` is an empty function: a call
costs a few tens of nanoseconds, on paths that then fsync.

The points sit where a crash is most interesting, at the edges of the durability rule (data
durable → metadata commit → freed blobs deleted):

=================================  ==============================================================
point                              the process dies ...
=================================  ==============================================================
``store_stream.before_blob_commit``  with a complete temporary file not yet fsynced and renamed
``put_object.blob_written``        after the blob is durable, before the metadata commit
``put_object.committed``           after the commit, before the replaced version's blob is freed
``copy_object.blob_written``       after the copy's blob is durable, before the metadata commit
``copy_object.committed``          after the commit, before the replaced version's blob is freed
``upload_part.blob_written``       after the part's blob is durable, before the part is recorded
``upload_part.committed``          after the part is recorded, before a replaced part is freed
``complete_upload.before_commit``  after the completion request is validated, before the commit
``complete_upload.committed``      after the commit, before unused parts' blobs are freed
``abort_upload.committed``         after the upload is deleted, before its parts' blobs are freed
``delete_object.committed``        after the delete (or delete marker) is committed, before the
                                   removed version's blobs are freed (DeleteObject and each key
                                   of DeleteObjects)
``set_versioning.committed``       after a versioning change is committed, before the answer
``delete_bucket.committed``        after the bucket is deleted, before its uploads' blobs are
                                   freed
``rotate_root.rewrapped_one``      (``onshore kms rotate-root``) after each tenant key is
                                   re-wrapped under the next root key
``rotate_root.before_switch``      after every tenant key is re-wrapped, before the next root
                                   key replaces the current one
``offboard.key_fingerprint_recorded``  (tenant offboarding) after the tenant key's fingerprint is
                                   recorded, before the key is destroyed
``offboard.keys_destroyed``        after the tenant's keys are destroyed, before its buckets go
``offboard.bucket_deleted``        after one bucket's rows are deleted, before its blob files are
                                   deleted (the start-up sweep removes them)
=================================  ==============================================================
"""

from __future__ import annotations

import os

#: The environment variable that arms one point (read once, at import).
ENV = "ONSHORE_FAULT_POINT"
#: Exit status of a process killed at a point (as if by SIGKILL).
EXIT_STATUS = 137

#: Every point placed in the code (a test checks that each is placed, and exercised).
POINTS = frozenset(
    {
        "store_stream.before_blob_commit",
        "put_object.blob_written",
        "put_object.committed",
        "copy_object.blob_written",
        "copy_object.committed",
        "upload_part.blob_written",
        "upload_part.committed",
        "complete_upload.before_commit",
        "complete_upload.committed",
        "abort_upload.committed",
        "delete_object.committed",
        "set_versioning.committed",
        "delete_bucket.committed",
    }
)

_ARMED = os.environ.get(ENV) or None

if _ARMED is None:

    def point(name: str) -> None:
        """A named instant at which a test may make the process die (disarmed: nothing)."""

else:

    def point(name: str) -> None:
        """A named instant at which a test may make the process die (armed: see above)."""
        if name == _ARMED:
            os._exit(EXIT_STATUS)
