from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from onshore.cli.adminclient import AdminClient
from tests.api.iam_support import admin_client
from tests.api.server import ACCESS_KEY, REGION, SECRET_KEY, ServerProcess, client_env
from tests.openbao import openbao  # noqa: F401 - fixture: a real OpenBao server

# Hermetic boto3 in this process too: no machine-wide AWS configuration.
for _name in [n for n in os.environ if n.startswith("AWS_")]:
    del os.environ[_name]
os.environ.update({k: v for k, v in client_env().items() if k.startswith("AWS_")})


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("onshore") / "data").start()
    yield proc
    proc.cleanup()


def make_client(endpoint: str, **config: Any) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
    )
    verify = config.pop("verify", None)
    return session.client(
        "s3",
        endpoint_url=endpoint,
        verify=verify,
        config=Config(
            s3={"addressing_style": "path"},
            retries=config.pop("retries", {"max_attempts": 1, "mode": "standard"}),
            **config,
        ),
    )


@pytest.fixture(scope="module")
def admin(server: ServerProcess) -> AdminClient:
    """The admin API of this module's ``server``, as the root credentials."""
    return admin_client(server)


@pytest.fixture(scope="session")
def s3(server: ServerProcess) -> Any:
    return make_client(server.endpoint)


@pytest.fixture
def bucket(s3: Any) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    yield name
    empty_bucket(s3, name)
    s3.delete_bucket(Bucket=name)


def empty_bucket(s3: Any, name: str) -> None:
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
        items = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        if items:
            s3.delete_objects(Bucket=name, Delete={"Objects": items, "Quiet": True})
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=name):
        for upload in page.get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
