"""Crash consistency: the server dies at chosen points of every write path, and at random.

**At each fault point** (:mod:`onshore.service.faults`): a server writes a baseline of objects
and the state the operation needs, and is restarted with ``ONSHORE_FAULT_POINT`` naming the
point; the operation then kills it at that instant (the client sees a broken connection, never
an answer). A server started again without the fault must show:

* every acknowledged object byte for byte (SHA-256 recorded when the client wrote it);
* the interrupted operation applied entirely or not at all — and which one is fixed by where
  the point is: before the metadata commit, not at all; after it, entirely (the commit is the
  moment a write happens, acknowledged or not);
* listings that agree with HEAD on every key;
* no temporary or orphan file once the start-up sweep has run, and ``onshore fsck`` clean.

**At random moments** under concurrent load (PUT, DELETE and multipart uploads of varied sizes
from several threads), the whole server is SIGKILLed three times in a row; after each restart
every acknowledged write is checked, and the one operation each thread had in flight may have
happened or not, but nothing else.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from onshore.service import faults
from tests.api.conftest import make_client
from tests.api.datadir import blob_files, fsck, temp_files
from tests.api.server import ServerProcess

MiB = 1024 * 1024
BUCKET, VERSIONED = "crash", "crash-versioned"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- what the client knows ----------------------------------------------------------------------
@dataclass
class Known:
    """The acknowledged state: bucket -> key -> SHA-256 of the current body (None: deleted)."""

    objects: dict[str, dict[str, str | None]] = field(default_factory=dict)

    def put(self, s3: Any, bucket: str, key: str, body: bytes) -> None:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        self.objects.setdefault(bucket, {})[key] = sha(body)


def upload_parts(s3: Any, bucket: str, key: str, parts: list[bytes]) -> tuple[str, list[Any]]:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    done = []
    for number, body in enumerate(parts, start=1):
        reply = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )
        done.append({"PartNumber": number, "ETag": reply["ETag"]})
    return upload_id, done


def complete(s3: Any, bucket: str, key: str, upload_id: str, done: list[Any]) -> None:
    s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
    )


def body_of(s3: Any, bucket: str, key: str) -> bytes | None:
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as err:
        if err.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return None
        raise


def uploads_of(s3: Any, bucket: str) -> list[str]:
    return [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def check_listing_agrees_with_head(s3: Any, bucket: str) -> set[str]:
    """Every listed key answers HEAD with the listed ETag and size; returns the keys."""
    listed = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            listed[item["Key"]] = (item["ETag"], item["Size"])
    for key, (etag, size) in listed.items():
        head = s3.head_object(Bucket=bucket, Key=key)
        assert (head["ETag"], head["ContentLength"]) == (etag, size), key
    return set(listed)


def check_known(s3: Any, known: Known) -> None:
    """Every acknowledged object reads back byte-identical (or is absent if deleted), and the
    listing shows exactly the present ones."""
    for bucket, objects in known.objects.items():
        listed = check_listing_agrees_with_head(s3, bucket)
        for key, digest in objects.items():
            body = body_of(s3, bucket, key)
            assert (None if body is None else sha(body)) == digest, (bucket, key)
            assert (key in listed) == (digest is not None), (bucket, key)
        unexpected = listed - objects.keys()
        assert not unexpected, f"objects nobody acknowledged: {unexpected}"


# --- the fault-point cases ----------------------------------------------------------------------
@dataclass
class Case:
    """One crash: ``setup`` prepares (on a healthy server) and returns state for ``act``, which
    runs the operation that dies, and ``verify``, which checks its outcome after the restart."""

    point: str
    setup: Callable[[Any, Known], Any]
    act: Callable[[Any, Any], object]
    verify: Callable[[Any, Known, Any], None]
    name: str = ""

    @property
    def id(self) -> str:
        return self.name or self.point


def _nothing(s3: Any, known: Known) -> None:
    return None


def _new_object(applied: bool) -> Case:
    body = os.urandom(300_000)

    def verify(s3: Any, known: Known, _: Any) -> None:
        got = body_of(s3, BUCKET, "new")
        assert got == (body if applied else None)
        known.objects[BUCKET]["new"] = sha(body) if applied else None

    point = "put_object.committed" if applied else "put_object.blob_written"
    return Case(
        point,
        _nothing,
        lambda s3, _: s3.put_object(Bucket=BUCKET, Key="new", Body=body),
        verify,
        name=point + "/new-key",
    )


def _overwrite(point: str, applied: bool) -> Case:
    new = os.urandom(400_000)

    def verify(s3: Any, known: Known, _: Any) -> None:
        got = body_of(s3, BUCKET, "large")
        assert got is not None
        expected = sha(new) if applied else known.objects[BUCKET]["large"]
        assert sha(got) == expected
        known.objects[BUCKET]["large"] = expected

    return Case(
        point,
        _nothing,
        lambda s3, _: s3.put_object(Bucket=BUCKET, Key="large", Body=new),
        verify,
        name=point + "/overwrite",
    )


def _copy(applied: bool) -> Case:
    def verify(s3: Any, known: Known, _: Any) -> None:
        got = body_of(s3, BUCKET, "copy")
        source = known.objects[BUCKET]["large"]
        assert (None if got is None else sha(got)) == (source if applied else None)
        known.objects[BUCKET]["copy"] = source if applied else None

    point = "copy_object.committed" if applied else "copy_object.blob_written"
    return Case(
        point,
        _nothing,
        lambda s3, _: s3.copy_object(
            Bucket=BUCKET, Key="copy", CopySource={"Bucket": BUCKET, "Key": "large"}
        ),
        verify,
    )


def _pending_upload(s3: Any, known: Known) -> tuple[str, list[Any], list[bytes]]:
    parts = [os.urandom(5 * MiB), os.urandom(200_000)]
    upload_id, done = upload_parts(s3, BUCKET, "mp", parts[:1])
    return upload_id, done, parts


def _upload_part(point: str, applied: bool) -> Case:
    """Re-upload part 1 with new data (applied: the new part replaces the old one)."""
    replacement = os.urandom(5 * MiB)

    def act(s3: Any, state: Any) -> None:
        upload_id, _, _ = state
        s3.upload_part(Bucket=BUCKET, Key="mp", UploadId=upload_id, PartNumber=1, Body=replacement)

    def verify(s3: Any, known: Known, state: Any) -> None:
        upload_id, _, parts = state
        listed = s3.list_parts(Bucket=BUCKET, Key="mp", UploadId=upload_id)["Parts"]
        expected = replacement if applied else parts[0]
        assert [p["ETag"] for p in listed] == [f'"{hashlib.md5(expected).hexdigest()}"']
        etag = s3.upload_part(
            Bucket=BUCKET, Key="mp", UploadId=upload_id, PartNumber=2, Body=parts[1]
        )["ETag"]
        done = [{"PartNumber": 1, "ETag": listed[0]["ETag"]}, {"PartNumber": 2, "ETag": etag}]
        complete(s3, BUCKET, "mp", upload_id, done)
        assert body_of(s3, BUCKET, "mp") == expected + parts[1]
        known.objects[BUCKET]["mp"] = sha(expected + parts[1])

    return Case(point, _pending_upload, act, verify)


def _completion(point: str, applied: bool) -> Case:
    """Complete with parts 1 and 2 while a part 3 was uploaded too (freed by the completion)."""
    parts = [os.urandom(5 * MiB), os.urandom(100_000), os.urandom(100_000)]

    def setup(s3: Any, known: Known) -> tuple[str, list[Any]]:
        return upload_parts(s3, BUCKET, "mp", parts)

    def act(s3: Any, state: Any) -> None:
        upload_id, done = state
        complete(s3, BUCKET, "mp", upload_id, done[:2])

    def verify(s3: Any, known: Known, state: Any) -> None:
        upload_id, done = state
        got = body_of(s3, BUCKET, "mp")
        if applied:
            assert got == parts[0] + parts[1]
            assert uploads_of(s3, BUCKET) == []
        else:
            assert got is None and uploads_of(s3, BUCKET) == [upload_id]
            complete(s3, BUCKET, "mp", upload_id, done[:2])  # the client's retry works
        known.objects[BUCKET]["mp"] = sha(parts[0] + parts[1])

    return Case(point, setup, act, verify)


def _abort() -> Case:
    def act(s3: Any, state: Any) -> None:
        s3.abort_multipart_upload(Bucket=BUCKET, Key="mp", UploadId=state[0])

    def verify(s3: Any, known: Known, state: Any) -> None:
        assert uploads_of(s3, BUCKET) == []

    return Case("abort_upload.committed", _pending_upload, act, verify)


def _delete(versioned: bool) -> Case:
    bucket = VERSIONED if versioned else BUCKET

    def verify(s3: Any, known: Known, _: Any) -> None:
        assert body_of(s3, bucket, "large") is None
        known.objects[bucket]["large"] = None
        if versioned:
            versions = s3.list_object_versions(Bucket=bucket, Prefix="large")
            assert [m["IsLatest"] for m in versions["DeleteMarkers"]] == [True]
            assert len(versions["Versions"]) == 2

    return Case(
        "delete_object.committed",
        _nothing,
        lambda s3, _: s3.delete_object(Bucket=bucket, Key="large"),
        verify,
        name="delete_object.committed/" + ("versioned" if versioned else "unversioned"),
    )


def _delete_objects() -> Case:
    """DeleteObjects dies at the first key's commit: each key is deleted or intact, never
    anything else (S3 does not promise the batch is atomic, only each key)."""
    keys = ["large", "small", "multi"]

    def act(s3: Any, _: Any) -> None:
        s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys]})

    def verify(s3: Any, known: Known, _: Any) -> None:
        deleted = 0
        for key in keys:
            got = body_of(s3, BUCKET, key)
            if got is None:
                deleted += 1
                known.objects[BUCKET][key] = None
            else:
                assert sha(got) == known.objects[BUCKET][key], key
        assert deleted >= 1

    return Case("delete_object.committed", _nothing, act, verify, name="delete_objects")


def _versioning() -> Case:
    def act(s3: Any, _: Any) -> None:
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})

    def verify(s3: Any, known: Known, _: Any) -> None:
        assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"

    return Case("set_versioning.committed", _nothing, act, verify)


def _delete_bucket() -> Case:
    def setup(s3: Any, known: Known) -> None:
        s3.create_bucket(Bucket="doomed")
        upload_parts(s3, "doomed", "k", [os.urandom(300_000)])

    def verify(s3: Any, known: Known, _: Any) -> None:
        names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert "doomed" not in names

    return Case(
        "delete_bucket.committed", setup, lambda s3, _: s3.delete_bucket(Bucket="doomed"), verify
    )


def _temp_file() -> Case:
    body = os.urandom(3 * MiB)

    def verify(s3: Any, known: Known, _: Any) -> None:
        assert body_of(s3, BUCKET, "new") is None

    return Case(
        "store_stream.before_blob_commit",
        _nothing,
        lambda s3, _: s3.put_object(Bucket=BUCKET, Key="new", Body=body),
        verify,
    )


CASES = [
    _temp_file(),
    _new_object(applied=False),
    _new_object(applied=True),
    _overwrite("put_object.blob_written", applied=False),
    _overwrite("put_object.committed", applied=True),
    _copy(applied=False),
    _copy(applied=True),
    _upload_part("upload_part.blob_written", applied=False),
    _upload_part("upload_part.committed", applied=True),
    _completion("complete_upload.before_commit", applied=False),
    _completion("complete_upload.committed", applied=True),
    _abort(),
    _delete(versioned=False),
    _delete(versioned=True),
    _delete_objects(),
    _versioning(),
    _delete_bucket(),
]


def test_every_fault_point_is_placed_and_exercised() -> None:
    source = Path(faults.__file__).parent.parent
    placed = {
        name
        for path in source.rglob("*.py")
        if path.name != "faults.py"
        for name in faults.POINTS
        if f'faults.point("{name}")' in path.read_text()
    }
    assert placed == faults.POINTS
    assert {case.point for case in CASES} == faults.POINTS


def baseline(s3: Any) -> Known:
    """Acknowledged objects of every shape, in an unversioned and a versioned bucket."""
    known = Known()
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket=VERSIONED)
    s3.put_bucket_versioning(Bucket=VERSIONED, VersioningConfiguration={"Status": "Enabled"})
    known.put(s3, BUCKET, "small", os.urandom(1000))
    known.put(s3, BUCKET, "large", os.urandom(300_000))
    known.put(s3, BUCKET, "empty", b"")
    parts = [os.urandom(5 * MiB), os.urandom(1000)]
    upload_id, done = upload_parts(s3, BUCKET, "multi", parts)
    complete(s3, BUCKET, "multi", upload_id, done)
    known.objects[BUCKET]["multi"] = sha(b"".join(parts))
    known.put(s3, VERSIONED, "large", os.urandom(200_000))
    known.put(s3, VERSIONED, "large", os.urandom(250_000))
    return known


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "data", extra_args=("--workers", "1"))
    yield proc
    proc.cleanup()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_crash_at_fault_point(server: ServerProcess, case: Case) -> None:
    server.start()
    s3 = make_client(server.endpoint)
    known = baseline(s3)
    state = case.setup(s3, known)
    assert server.stop() == 0

    server.env = {faults.ENV: case.point}
    server.start()
    process = server.process
    assert process is not None
    with pytest.raises((BotoCoreError, ClientError)):
        case.act(make_client(server.endpoint), state)
    assert process.wait(timeout=30) == faults.EXIT_STATUS, "the server did not die at the point"

    server.env = {}
    server.start()
    s3 = make_client(server.endpoint)
    case.verify(s3, known, state)
    check_known(s3, known)
    assert server.stop() == 0
    assert temp_files(server.data_dir) == []
    checked = fsck(server.data_dir)
    assert checked.code == 0 and checked.report["clean"], checked.report
    assert checked.report["checked"]["blobs"] == len(blob_files(server.data_dir))


# --- random SIGKILLs under load -----------------------------------------------------------------
SIZES = [0, 1, 1000, 70_000, 300_000, 2 * MiB]


@dataclass
class Lane:
    """One client thread's keys: acknowledged state, and the operation in flight (if any)."""

    name: str
    acked: dict[str, str | None] = field(default_factory=dict)
    in_flight: tuple[str, str | None] | None = None  # key, SHA-256 it will have (None: deleted)
    errors: list[BaseException] = field(default_factory=list)

    def run(self, endpoint: str, stop: threading.Event, seed: int) -> None:
        rng = random.Random(seed)
        s3 = make_client(endpoint)
        n = 0
        while not stop.is_set():
            n += 1
            key = f"{self.name}-{rng.randrange(8)}"
            roll = rng.random()
            try:
                if roll < 0.55:
                    body = os.urandom(rng.choice(SIZES))
                    self.in_flight = (key, sha(body))
                    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
                elif roll < 0.8:
                    self.in_flight = (key, None)
                    s3.delete_object(Bucket=BUCKET, Key=key)
                else:
                    parts = [os.urandom(5 * MiB), os.urandom(rng.choice(SIZES[:5]))]
                    self.in_flight = (key, sha(b"".join(parts)))
                    upload_id, done = upload_parts(s3, BUCKET, key, parts)
                    complete(s3, BUCKET, key, upload_id, done)
            except (BotoCoreError, ClientError) as exc:
                if not stop.is_set():
                    self.errors.append(exc)
                return  # the server is gone: the in-flight operation stays undecided
            assert self.in_flight is not None
            self.acked[self.in_flight[0]] = self.in_flight[1]
            self.in_flight = None


def test_random_sigkills_under_concurrent_load(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data")  # default workers: several processes
    lanes = [Lane(f"lane{i}") for i in range(4)]
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)  # which keys, sizes and operations; the kill timing is the OS's
    try:
        server.start()
        make_client(server.endpoint).create_bucket(Bucket=BUCKET)
        for round_number in range(3):
            stop = threading.Event()
            threads = [
                threading.Thread(target=lane.run, args=(server.endpoint, stop, rng.random()))
                for lane in lanes
            ]
            for thread in threads:
                thread.start()
            time.sleep(rng.uniform(0.5, 2.5))
            stop.set()
            server.kill()
            for thread in threads:
                thread.join(60)
            for lane in lanes:
                assert not lane.errors, f"seed {seed} round {round_number}: {lane.errors}"
            server.start()
            s3 = make_client(server.endpoint)
            listed = check_listing_agrees_with_head(s3, BUCKET)
            for lane in lanes:
                keys = set(lane.acked) | ({lane.in_flight[0]} if lane.in_flight else set())
                for key in keys:
                    body = body_of(s3, BUCKET, key)
                    actual = None if body is None else sha(body)
                    allowed = {lane.acked.get(key)}
                    if lane.in_flight and lane.in_flight[0] == key:
                        allowed.add(lane.in_flight[1])
                    assert actual in allowed, (seed, round_number, key)
                    assert (key in listed) == (actual is not None)
                    lane.acked[key] = actual
                lane.in_flight = None
            everyone = {k for lane in lanes for k in lane.acked}
            assert listed <= everyone, f"objects nobody wrote: {listed - everyone}"
        assert server.stop() == 0
        assert temp_files(server.data_dir) == []
        checked = fsck(server.data_dir)
        assert checked.code == 0 and checked.report["clean"], checked.report
    finally:
        server.cleanup()
