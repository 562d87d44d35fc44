"""The Op → IAM action table and the request condition keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from onshore.s3api.actions import ACTIONS, Check, check_for_key, checks
from onshore.s3api.auth import AuthResult, PayloadMode
from onshore.s3api.condition_keys import request_context
from onshore.s3api.routing import Op, Route
from onshore.service.identity import ANONYMOUS, Principal, PrincipalKind
from onshore.service.policy.vocabulary import S3_ACTIONS


def test_every_operation_has_an_action_s3_defines() -> None:
    assert set(ACTIONS) == set(Op)
    for action, _, versioned in ACTIONS.values():
        for name in (action, versioned):
            if name is not None:
                assert name.startswith("s3:") and name[3:] in S3_ACTIONS, name


@pytest.mark.parametrize(
    ("route", "query", "expected"),
    [
        (Route(Op.ListBuckets), {}, [Check("s3:ListAllMyBuckets", None)]),
        (Route(Op.ListObjectsV2, "b"), {}, [Check("s3:ListBucket", "b")]),
        (Route(Op.ListObjects, "b"), {}, [Check("s3:ListBucket", "b")]),
        (Route(Op.HeadBucket, "b"), {}, [Check("s3:ListBucket", "b")]),
        (Route(Op.ListObjectVersions, "b"), {}, [Check("s3:ListBucketVersions", "b")]),
        (Route(Op.ListMultipartUploads, "b"), {}, [Check("s3:ListBucketMultipartUploads", "b")]),
        (Route(Op.GetObject, "b", "k"), {}, [Check("s3:GetObject", "b", "k")]),
        (
            Route(Op.GetObject, "b", "k"),
            {"versionId": "v"},
            [Check("s3:GetObjectVersion", "b", "k", "v")],
        ),
        (
            Route(Op.HeadObject, "b", "k"),
            {"versionId": "v"},
            [Check("s3:GetObjectVersion", "b", "k", "v")],
        ),
        (
            Route(Op.DeleteObject, "b", "k"),
            {"versionId": "v"},
            [Check("s3:DeleteObjectVersion", "b", "k", "v")],
        ),
        (Route(Op.CreateMultipartUpload, "b", "k"), {}, [Check("s3:PutObject", "b", "k")]),
        (Route(Op.UploadPart, "b", "k"), {}, [Check("s3:PutObject", "b", "k")]),
        (Route(Op.CompleteMultipartUpload, "b", "k"), {}, [Check("s3:PutObject", "b", "k")]),
        (
            Route(Op.AbortMultipartUpload, "b", "k"),
            {},
            [Check("s3:AbortMultipartUpload", "b", "k")],
        ),
        (Route(Op.ListParts, "b", "k"), {}, [Check("s3:ListMultipartUploadParts", "b", "k")]),
        (Route(Op.DeleteBucketCors, "b"), {}, [Check("s3:PutBucketCORS", "b")]),
        (Route(Op.GetBucketPolicyStatus, "b"), {}, [Check("s3:GetBucketPolicyStatus", "b")]),
    ],
)
def test_checks(route: Route, query: dict[str, str], expected: list[Check]) -> None:
    assert list(checks(route, query, None)) == expected


def test_copy_needs_the_source_too() -> None:
    route = Route(Op.CopyObject, "dst", "k")
    assert checks(route, {}, ("src", "a/b", None)) == (
        Check("s3:PutObject", "dst", "k"),
        Check("s3:GetObject", "src", "a/b"),
    )
    assert checks(Route(Op.UploadPartCopy, "dst", "k"), {}, ("src", "a", "v1"))[1] == Check(
        "s3:GetObjectVersion", "src", "a", "v1"
    )


def test_per_key_and_resources() -> None:
    assert check_for_key(Op.DeleteObjects, "b", "k", None) == Check("s3:DeleteObject", "b", "k")
    assert check_for_key(Op.DeleteObjects, "b", "k", "v").action == "s3:DeleteObjectVersion"
    assert Check("s3:GetObject", "b", "a/b c").resource("onshore-cn") == (
        "arn:onshore-cn:s3:::b/a/b c"
    )
    assert Check("s3:ListBucket", "b").resource("onshore") == "arn:onshore:s3:::b"
    assert Check("s3:ListAllMyBuckets", None).resource("onshore") == "arn:onshore:s3:::*"


def _auth(presigned: bool, signed_at: datetime) -> AuthResult:
    return AuthResult("AK", PayloadMode.SIGNED, None, None, presigned, signed_at)


def test_condition_keys_of_a_signed_request() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    user = Principal(
        "AK",
        "111122223333",
        "arn:onshore:iam::111122223333:user/ann",
        "ann",
        PrincipalKind.USER,
        "ann",
        "AIDAANN",
    )
    ctx = request_context(
        principal=user,
        auth=_auth(False, now - timedelta(seconds=2)),
        client="10.0.0.7",
        secure=True,
        headers={"referer": "r", "user-agent": "ua", "x-amz-acl": "private"},
        query={"prefix": "p/", "delimiter": "/", "max-keys": "5", "versionId": "v"},
        listing=True,
        now=now,
    )
    assert ctx == {
        "aws:currenttime": ("2026-01-02T03:04:05Z",),
        "aws:epochtime": (str(int(now.timestamp())),),
        "aws:securetransport": ("true",),
        "aws:sourceip": ("10.0.0.7",),
        "aws:referer": ("r",),
        "aws:useragent": ("ua",),
        "aws:principalaccount": ("111122223333",),
        "aws:principalarn": ("arn:onshore:iam::111122223333:user/ann",),
        "aws:userid": ("AIDAANN",),
        "aws:username": ("ann",),
        "s3:authtype": ("REST-HEADER",),
        "s3:signatureversion": ("AWS4-HMAC-SHA256",),
        "s3:signatureage": ("2000",),
        "s3:x-amz-acl": ("private",),
        "s3:versionid": ("v",),
        "s3:prefix": ("p/",),
        "s3:delimiter": ("/",),
        "s3:max-keys": ("5",),
    }


def test_condition_keys_of_an_anonymous_request() -> None:
    ctx = request_context(
        principal=ANONYMOUS,
        auth=AuthResult(None, PayloadMode.UNSIGNED, None, None, False, None),
        client="127.0.0.1",
        secure=False,
        headers={},
        query={"prefix": "p"},
        listing=False,
    )
    assert set(ctx) == {"aws:currenttime", "aws:epochtime", "aws:securetransport", "aws:sourceip"}
    assert ctx["aws:securetransport"] == ("false",)
