"""``onshore fsck`` against data written by a real server, then damaged on purpose.

A server writes the object shapes the store has — inline, one blob, multipart, a versioned key,
an upload in progress — and is stopped. Each test damages the data directory in known ways and
runs the real command (``onshore fsck --json``), asserting that it reports exactly the damage
done, that ``--repair`` fixes what can be fixed and says what was lost, and that a server started
afterwards serves every undamaged object byte for byte.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from tests.api.conftest import make_client
from tests.api.datadir import (
    blob_files,
    blob_path,
    flip_byte,
    fsck,
    part_blobs,
    temp_files,
    version_blobs,
)
from tests.api.server import ServerProcess

MiB = 1024 * 1024
BUCKET, VERSIONED = "fsck", "fsck-versioned"


@dataclass
class Written:
    server: ServerProcess
    bodies: dict[str, bytes]  # key -> body, in BUCKET
    old_version: bytes  # VERSIONED/v, first version
    new_version: bytes  # VERSIONED/v, latest version
    upload_id: str  # an upload in progress of BUCKET/pending

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir


@pytest.fixture
def written(tmp_path: Path) -> Iterator[Written]:
    server = ServerProcess(tmp_path / "data", extra_args=("--workers", "1")).start()
    try:
        s3 = make_client(server.endpoint)
        s3.create_bucket(Bucket=BUCKET)
        bodies = {
            "inline": os.urandom(100),
            "large": os.urandom(300_000),
            "corrupt": os.urandom(200_000),
            "missing": os.urandom(150_000),
        }
        for key, body in bodies.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        parts = [os.urandom(5 * MiB), os.urandom(100_000)]
        bodies["multi"] = b"".join(parts)
        upload = s3.create_multipart_upload(Bucket=BUCKET, Key="multi")["UploadId"]
        done = [
            {
                "PartNumber": n,
                "ETag": s3.upload_part(
                    Bucket=BUCKET, Key="multi", UploadId=upload, PartNumber=n, Body=part
                )["ETag"],
            }
            for n, part in enumerate(parts, start=1)
        ]
        s3.complete_multipart_upload(
            Bucket=BUCKET, Key="multi", UploadId=upload, MultipartUpload={"Parts": done}
        )
        pending = s3.create_multipart_upload(Bucket=BUCKET, Key="pending")["UploadId"]
        s3.upload_part(
            Bucket=BUCKET, Key="pending", UploadId=pending, PartNumber=1, Body=os.urandom(90_000)
        )
        s3.create_bucket(Bucket=VERSIONED)
        s3.put_bucket_versioning(Bucket=VERSIONED, VersioningConfiguration={"Status": "Enabled"})
        old, new = os.urandom(120_000), os.urandom(130_000)
        s3.put_object(Bucket=VERSIONED, Key="v", Body=old)
        s3.put_object(Bucket=VERSIONED, Key="v", Body=new)
        assert server.stop() == 0
        yield Written(server, bodies, old, new, pending)
    finally:
        server.cleanup()


def test_a_clean_store_is_clean(written: Written) -> None:
    result = fsck(written.data_dir)
    assert result.code == 0, result
    assert result.report["clean"] is True and result.report["problems"] == []
    checked = result.report["checked"]
    assert checked["versions"] == 7  # 5 in BUCKET, 2 of VERSIONED/v
    assert checked["parts"] == 1
    assert checked["blobs"] == len(blob_files(written.data_dir))
    assert checked["bytes_read"] >= sum(len(b) for b in written.bodies.values())


def test_every_kind_of_damage_is_found_then_repaired(written: Written) -> None:
    data_dir = written.data_dir
    [[missing]] = version_blobs(data_dir, BUCKET, "missing")
    [[corrupt]] = version_blobs(data_dir, BUCKET, "corrupt")
    [[_, multi_tail]] = version_blobs(data_dir, BUCKET, "multi")
    [[latest], [older]] = version_blobs(data_dir, VERSIONED, "v")
    [pending_part] = part_blobs(data_dir, written.upload_id)
    blob_path(data_dir, missing).unlink()
    flip_byte(blob_path(data_dir, corrupt), 1000)
    flip_byte(blob_path(data_dir, multi_tail), 99_999)
    flip_byte(blob_path(data_dir, latest))
    with blob_path(data_dir, pending_part).open("r+b") as handle:
        handle.truncate(10)
    orphan = "0123456789abcdef" * 2
    blob_path(data_dir, orphan).parent.mkdir(parents=True, exist_ok=True)
    blob_path(data_dir, orphan).write_bytes(b"nobody names me")
    (data_dir / "tmp" / f"{'f' * 32}.part").write_bytes(b"a write that never committed")

    found = fsck(data_dir)
    assert found.code == 1, found
    assert found.kinds() == {
        ("missing_blob", "missing"),
        ("checksum_mismatch", "corrupt"),
        ("checksum_mismatch", "multi"),
        ("checksum_mismatch", "v"),
        ("size_mismatch", "pending"),
        ("orphan_blob", orphan),
        ("temp_file", f"tmp/{'f' * 32}.part"),
    }
    by_key = {p.get("key"): p for p in found.report["problems"]}
    # Encryption at rest is on by default: a flipped byte fails its segment's tag first.
    assert "failed authentication" in by_key["corrupt"]["message"]
    assert by_key["multi"]["message"].startswith("part 2:")
    assert by_key["v"]["version_id"] != "null" and by_key["v"]["blob_id"] == latest
    assert by_key["pending"]["upload_id"] == written.upload_id
    assert blob_path(data_dir, orphan).exists(), "a check without --repair changes nothing"

    repaired = fsck(data_dir, "--repair")
    assert repaired.code == 0, repaired
    outcomes = {p.get("key", p.get("blob_id")): p["repaired"] for p in repaired.report["problems"]}
    for key in ("missing", "corrupt", "multi", "v"):
        assert "cannot be recovered" in outcomes[key]
    assert "aborted" in outcomes["pending"]
    assert outcomes[orphan] == outcomes[f"tmp/{'f' * 32}.part"] == "deleted"
    assert fsck(data_dir).code == 0
    assert temp_files(data_dir) == []
    assert not blob_path(data_dir, orphan).exists()

    written.server.start()
    s3 = make_client(written.server.endpoint)
    for key in ("inline", "large"):
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == written.bodies[key]
    for key in ("missing", "corrupt", "multi"):
        with pytest.raises(ClientError) as err:
            s3.head_object(Bucket=BUCKET, Key=key)
        assert err.value.response["Error"]["Code"] == "404"
    # The corrupt latest version is gone: the older one is current again.
    assert s3.get_object(Bucket=VERSIONED, Key="v")["Body"].read() == written.old_version
    assert [v["IsLatest"] for v in s3.list_object_versions(Bucket=VERSIONED)["Versions"]] == [True]
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert blob_path(data_dir, older).exists()


def test_a_damaged_database_is_reported_and_nothing_is_repaired(written: Written) -> None:
    data_dir = written.data_dir
    orphan = "fedcba9876543210" * 2
    blob_path(data_dir, orphan).parent.mkdir(parents=True, exist_ok=True)
    blob_path(data_dir, orphan).write_bytes(b"orphan")
    conn = sqlite3.connect(data_dir / "metadata.db")
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("UPDATE uploads SET bucket_id = 999")  # an upload of a bucket that is not there
    conn.commit()
    conn.close()
    result = fsck(data_dir, "--repair")
    assert result.code == 1, result
    assert ("integrity", None) in result.kinds()
    assert "damaged" in result.report["repair_refused"]
    assert all(p.get("repaired") is None for p in result.report["problems"])
    assert blob_path(data_dir, orphan).exists()


def test_a_blob_missing_from_the_reference_index_blocks_repair(written: Written) -> None:
    """The orphan sweep trusts the blob reference index: a row whose blob the index lost would
    have its data deleted by the next sweep, so fsck reports it and refuses to repair."""
    [[large]] = version_blobs(written.data_dir, BUCKET, "large")
    conn = sqlite3.connect(written.data_dir / "metadata.db")
    conn.execute("DELETE FROM version_blobs WHERE blob_id = ?", (large,))
    conn.commit()
    conn.close()
    result = fsck(written.data_dir, "--repair")
    assert result.code == 1
    assert result.kinds() == {("unindexed_blob", "large")}
    assert result.report["repair_refused"]
    assert blob_path(written.data_dir, large).exists()


def test_an_unreadable_database(tmp_path: Path) -> None:
    (tmp_path / "metadata.db").write_bytes(b"not a database, " * 100)
    result = fsck(tmp_path, "--repair")
    assert result.code == 1
    [problem] = result.report["problems"]
    assert problem["kind"] == "integrity" and "cannot be read" in problem["message"]
    assert result.report["repair_refused"]


def test_refuses_while_a_server_has_the_store_open(written: Written) -> None:
    written.server.start()
    result = fsck(written.data_dir)
    assert result.code == 2
    assert "stop the onshore server" in result.stderr
    written.server.stop()
    assert fsck(written.data_dir).code == 0


def test_no_data_directory(tmp_path: Path) -> None:
    result = fsck(tmp_path / "nothing-here")
    assert result.code == 2 and "no onshore data" in result.stderr
    assert not (tmp_path / "nothing-here").exists()


def test_files_newer_than_the_check_are_left_alone(written: Written) -> None:
    """A blob or temporary file written after fsck started may belong to a write in progress:
    never reported, never deleted (here: dated in the future, as if written during the run)."""
    data_dir = written.data_dir
    later = time.time() + 3600
    young = "abcdef0123456789" * 2
    blob_path(data_dir, young).parent.mkdir(parents=True, exist_ok=True)
    blob_path(data_dir, young).write_bytes(b"in flight")
    temp = data_dir / "tmp" / f"{'e' * 32}.part"
    temp.write_bytes(b"in flight")
    for path in (blob_path(data_dir, young), temp):
        os.utime(path, (later, later))
    result = fsck(data_dir, "--repair")
    assert result.code == 0 and result.report["clean"], result
    assert result.report["checked"]["skipped_recent"] == 2
    assert blob_path(data_dir, young).exists() and temp.exists()


def test_human_output(written: Written) -> None:
    import subprocess
    import sys

    [[corrupt]] = version_blobs(written.data_dir, BUCKET, "corrupt")
    flip_byte(blob_path(written.data_dir, corrupt))
    command = [sys.executable, "-m", "onshore", "fsck", "--data-dir", str(written.data_dir)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 1
    line = f"corrupt data    {BUCKET}/corrupt (version null) blob {corrupt}: a sealed segment"
    assert line in out.stdout
    assert "1 of 1 problems remain" in out.stdout and "--repair" in out.stdout
    fixed = subprocess.run([*command, "--repair"], capture_output=True, text=True, check=False)
    assert fixed.returncode == 0 and "repaired all 1 problems" in fixed.stdout
    assert "cannot be recovered" in fixed.stdout
