"""The non-S3 planes' record helpers: names, allow-listed parameters, search filters."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from onshore.adminapi.audit_access import filters_of
from onshore.domain.iam import ValidationError
from onshore.service.audit.planes import IAM_PARAMETERS, KMS_PARAMETERS, Plane, camel, pick


def test_handler_names_become_event_names() -> None:
    assert camel("create_tenant") == "CreateTenant"
    assert camel("search_audit_events") == "SearchAuditEvents"
    assert camel("get_key") == "GetKey"


def test_only_allow_listed_scalars_are_kept() -> None:
    iam = {"Action": "CreateAccessKey", "UserName": "bob", "SecretAccessKey": "s3cr3t"}
    assert pick(iam, IAM_PARAMETERS) == {"UserName": "bob"}
    kms = {
        "KeyId": "k1",
        "Plaintext": "c2VjcmV0",
        "EncryptionContext": {"a": "b"},
        "NumberOfBytes": 32,
        "Enabled": True,
    }
    assert pick(kms, KMS_PARAMETERS) == {"KeyId": "k1", "NumberOfBytes": "32"}
    assert pick({"KeyId": "x" * 1000}, KMS_PARAMETERS) == {"KeyId": "x" * 256}


def test_read_only_follows_the_operation() -> None:
    assert Plane("iam", "GetUser").read_only
    assert not Plane("iam", "CreateUser").read_only
    assert Plane("kms", "Decrypt").read_only and Plane("kms", "DescribeKey").read_only
    assert not Plane("kms", "ScheduleKeyDeletion").read_only
    assert not Plane("admin", "Decrypt").read_only  # only KMS's crypto calls are reads


def test_search_filters_from_a_query() -> None:
    f = filters_of({"from": "2026-01-01", "tenant": "111111111111", "limit": "5"})
    assert f.start_ms == 1_767_225_600_000 and f.account == "111111111111" and f.limit == 5
    own = filters_of({"tenant": "222222222222"}, account="111111111111")
    assert own.account == "111111111111"  # a tenant cannot widen its own search
    for bad in ({"limit": "0"}, {"limit": "1001"}, {"to": "soon"}, {"x": "1"}, {"user": ""}):
        with pytest.raises(ValidationError):
            filters_of(bad)


def test_no_trail_is_a_clear_409(tmp_path: Path) -> None:
    from onshore.adminapi.audit_access import AuditAccess, AuditUnavailable
    from onshore.service.audit.reader import Filters
    from onshore.service.blocking import Blocking

    blocking = Blocking(1)
    try:
        for access in (AuditAccess(None, blocking), AuditAccess(tmp_path, blocking)):
            with pytest.raises(AuditUnavailable) as off:
                asyncio.run(access.search(Filters()))
            assert (off.value.status, off.value.code) == (409, "AuditTrailUnavailable")
    finally:
        blocking.shutdown()
