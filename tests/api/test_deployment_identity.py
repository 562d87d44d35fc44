"""A deployment configured from ``onshore.toml``: partition, served regions, jurisdiction and the
residency allow-list, seen from real clients and the real CLI."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.api.server import ACCESS_KEY, SECRET_KEY, ServerProcess, client_env

CONFIG = """
partition = "onshore-cn"
region = "cn-north-1"
regions = ["cn-north-1", "cn-northwest-1"]
jurisdiction = "CN"

[[destinations]]
name = "dr-site"
endpoint = "https://s3.ningxia.example.cn"
jurisdiction = "CN"
"""


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "onshore.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture(scope="module")
def s3_cn(tmp_path_factory: pytest.TempPathFactory, config_file: Path) -> Iterator[Any]:
    server = ServerProcess(
        tmp_path_factory.mktemp("onshore-cn") / "data", extra_args=("--config", str(config_file))
    ).start()
    session = boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name="cn-north-1"
    )
    yield session.client(
        "s3",
        endpoint_url=server.endpoint,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    server.cleanup()


def error_code(err: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = err.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_bucket_lives_in_the_endpoint_region(s3_cn: Any) -> None:
    name = f"b-{uuid.uuid4().hex[:12]}"
    s3_cn.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "cn-north-1"})
    assert s3_cn.get_bucket_location(Bucket=name)["LocationConstraint"] == "cn-north-1"
    head = s3_cn.head_bucket(Bucket=name)
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "cn-north-1"
    listed = s3_cn.list_buckets()["Buckets"]
    assert [b.get("BucketRegion") for b in listed if b["Name"] == name] == ["cn-north-1"]


def test_another_served_region_is_illegal_at_this_endpoint(s3_cn: Any) -> None:
    with pytest.raises(ClientError) as err:
        s3_cn.create_bucket(
            Bucket=f"b-{uuid.uuid4().hex[:12]}",
            CreateBucketConfiguration={"LocationConstraint": "cn-northwest-1"},
        )
    assert error_code(err) == ("IllegalLocationConstraintException", 400)


def test_a_region_outside_the_deployment_is_invalid(s3_cn: Any) -> None:
    with pytest.raises(ClientError) as err:
        s3_cn.create_bucket(
            Bucket=f"b-{uuid.uuid4().hex[:12]}",
            CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
        )
    assert error_code(err) == ("InvalidLocationConstraint", 400)


def test_requests_signed_for_another_region_are_refused(s3_cn: Any) -> None:
    session = boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name="eu-west-1"
    )
    other = session.client(
        "s3", endpoint_url=s3_cn.meta.endpoint_url, config=Config(retries={"max_attempts": 1})
    )
    with pytest.raises(ClientError) as err:
        other.list_buckets()
    assert error_code(err) == ("AuthorizationHeaderMalformed", 400)


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "onshore", *args],
        env=client_env(ONSHORE_ROOT_SECRET_KEY="do-not-print-me"),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_config_show_names_each_source_and_masks_secrets(config_file: Path) -> None:
    shown = run_cli("config", "show", "--config", str(config_file))
    assert shown.returncode == 0, shown.stderr
    lines = {line.split()[0]: line for line in shown.stdout.splitlines()}
    assert "onshore-cn" in lines["partition"] and f"file ({config_file})" in lines["partition"]
    assert "cn-north-1,cn-northwest-1" in lines["regions"]
    assert "env (ONSHORE_ROOT_SECRET_KEY)" in lines["root_secret_key"]
    assert "do-not-print-me" not in shown.stdout
    assert lines["address"].split()[-1] == "default"


def test_server_refuses_a_destination_outside_the_jurisdiction(tmp_path: Path) -> None:
    path = tmp_path / "onshore.toml"
    path.write_text(
        CONFIG.replace('jurisdiction = "CN"\n', 'jurisdiction = "US"\n', 2).replace(
            'jurisdiction = "US"\n', 'jurisdiction = "CN"\n', 1
        )
    )
    started = run_cli("server", "--config", str(path), "--data-dir", str(tmp_path / "data"))
    assert started.returncode == 2
    assert "outside this deployment's jurisdiction 'CN'" in started.stderr
    assert not (tmp_path / "data").exists()
