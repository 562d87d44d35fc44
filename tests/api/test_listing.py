"""ListObjects v1/v2 through boto3 against a real server process."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.test_buckets import code_of

KEYS = sorted(
    ["a/1", "a/2", "a/b/3", "b/4", "c", "d/e/f/5", "é/6", "z"],
    key=lambda k: k.encode(),
)


@pytest.fixture
def filled(s3: Any, bucket: str) -> str:
    for key in KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    return bucket


def test_v2_full_and_paginated(s3: Any, filled: str) -> None:
    assert [c["Key"] for c in s3.list_objects_v2(Bucket=filled)["Contents"]] == KEYS
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=filled, PaginationConfig={"PageSize": 3}
    )
    seen = [c["Key"] for page in pages for c in page.get("Contents", [])]
    assert seen == KEYS


def test_v2_delimiter(s3: Any, filled: str) -> None:
    result = s3.list_objects_v2(Bucket=filled, Delimiter="/")
    assert [c["Key"] for c in result["Contents"]] == ["c", "z"]
    assert [p["Prefix"] for p in result["CommonPrefixes"]] == ["a/", "b/", "d/", "é/"]
    assert result["KeyCount"] == 6
    sub = s3.list_objects_v2(Bucket=filled, Delimiter="/", Prefix="a/")
    assert [c["Key"] for c in sub["Contents"]] == ["a/1", "a/2"]
    assert [p["Prefix"] for p in sub["CommonPrefixes"]] == ["a/b/"]


def test_v2_delimiter_paginated(s3: Any, filled: str) -> None:
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=filled, Delimiter="/", PaginationConfig={"PageSize": 2}
    )
    keys: list[str] = []
    prefixes: list[str] = []
    for page in pages:
        keys += [c["Key"] for c in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    assert keys == ["c", "z"]
    assert prefixes == ["a/", "b/", "d/", "é/"]


def test_v2_start_after_and_max_keys(s3: Any, filled: str) -> None:
    result = s3.list_objects_v2(Bucket=filled, StartAfter="b/4", MaxKeys=2)
    assert [c["Key"] for c in result["Contents"]] == ["c", "d/e/f/5"]
    assert result["IsTruncated"] is True
    zero = s3.list_objects_v2(Bucket=filled, MaxKeys=0)
    assert zero["KeyCount"] == 0
    assert zero["IsTruncated"] is False


def test_v2_fetch_owner(s3: Any, filled: str) -> None:
    plain = s3.list_objects_v2(Bucket=filled)
    assert "Owner" not in plain["Contents"][0]
    owned = s3.list_objects_v2(Bucket=filled, FetchOwner=True)
    assert "ID" in owned["Contents"][0]["Owner"]


def test_v1_marker_pagination(s3: Any, filled: str) -> None:
    pages = s3.get_paginator("list_objects").paginate(
        Bucket=filled, PaginationConfig={"PageSize": 3}
    )
    assert [c["Key"] for page in pages for c in page.get("Contents", [])] == KEYS
    result = s3.list_objects(Bucket=filled, Delimiter="/", MaxKeys=2)
    assert result["IsTruncated"] is True
    assert result["NextMarker"] == "b/"


def test_bad_max_keys_and_encoding(s3: Any, filled: str) -> None:
    import urllib.parse

    with pytest.raises(ClientError) as err:
        s3.list_objects_v2(Bucket=filled, EncodingType="base64")
    assert code_of(err) in ("InvalidArgument",)
    del urllib


def test_url_encoding_of_control_characters(s3: Any, bucket: str) -> None:
    key = "ctl\x01char\x7f"
    s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    listed = s3.list_objects_v2(Bucket=bucket)
    assert [c["Key"] for c in listed["Contents"]] == [key]
    listed_v1 = s3.list_objects(Bucket=bucket)
    assert [c["Key"] for c in listed_v1["Contents"]] == [key]
    versions = s3.list_object_versions(Bucket=bucket)
    assert [v["Key"] for v in versions["Versions"]] == [key]
    # XML 1.0 cannot carry the key in a DeleteObjects body; DeleteObject can delete it.
    s3.delete_object(Bucket=bucket, Key=key)
