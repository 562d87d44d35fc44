"""Looking inside a stopped server's data directory: blob files, metadata rows, ``onshore fsck``.

For tests that damage the store on purpose (``test_fsck.py``) or check it after a crash
(``test_crash_points.py``). Metadata is read with a plain read-only SQLite connection, so what a
test sees does not depend on the code under test.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def blob_path(data_dir: Path, blob_id: str) -> Path:
    return data_dir / "blobs" / blob_id[:2] / blob_id[2:4] / blob_id


def blob_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in (data_dir / "blobs").rglob("*") if p.is_file())


def temp_files(data_dir: Path) -> list[Path]:
    tmp = data_dir / "tmp"
    return sorted(p for p in tmp.iterdir() if p.is_file()) if tmp.exists() else []


def _connect(data_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{data_dir / 'metadata.db'}?mode=ro", uri=True)


def version_blobs(data_dir: Path, bucket: str, key: str) -> list[list[str]]:
    """The blob ids of each version of ``bucket/key``, newest first."""
    conn = _connect(data_dir)
    try:
        rows = conn.execute(
            "SELECT v.segments FROM versions v JOIN buckets b ON v.bucket_id = b.id"
            " WHERE b.name = ? AND v.object_key = ? ORDER BY v.seq DESC",
            (bucket, key.encode()),
        ).fetchall()
    finally:
        conn.close()
    return [[s[0] for s in json.loads(row[0])] if row[0] else [] for row in rows]


def part_blobs(data_dir: Path, upload_id: str) -> list[str]:
    conn = _connect(data_dir)
    try:
        rows = conn.execute(
            "SELECT p.blob_id FROM parts p JOIN uploads u ON p.upload_seq = u.seq"
            " WHERE u.upload_id = ? ORDER BY p.part_number",
            (upload_id,),
        ).fetchall()
    finally:
        conn.close()
    return [str(row[0]) for row in rows]


def flip_byte(path: Path, offset: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@dataclass
class FsckResult:
    code: int
    report: dict[str, Any]
    stderr: str

    def kinds(self) -> set[tuple[str, str | None]]:
        """(kind, key or blob id) of every problem."""
        return {(p["kind"], p.get("key", p.get("blob_id"))) for p in self.report["problems"]}


def fsck(data_dir: Path, *args: str) -> FsckResult:
    """Run the real ``onshore fsck --json`` command."""
    done = subprocess.run(
        [sys.executable, "-m", "onshore", "fsck", "--data-dir", str(data_dir), "--json", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(done.stdout) if done.stdout.strip() else {}
    return FsckResult(done.returncode, report, done.stderr)
