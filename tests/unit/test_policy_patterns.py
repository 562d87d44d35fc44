"""Wildcard matching: the same answers as a regular expression, in linear time."""

from __future__ import annotations

import re
import time

from hypothesis import given
from hypothesis import strategies as st

from onshore.service.policy.patterns import matches, normalize_key, substitute


def reference(pattern: str, value: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


@given(st.text("ab*?/", max_size=12), st.text("ab/", max_size=14))
def test_same_as_a_regular_expression(pattern: str, value: str) -> None:
    assert matches(pattern, value) is reference(pattern, value)


def test_pathological_pattern_is_fast() -> None:
    pattern = "*a" * 30 + "*c"
    value = "a" * 5000
    started = time.perf_counter()
    assert not matches(pattern, value)
    assert time.perf_counter() - started < 0.5


def test_variables_are_literal_text() -> None:
    ctx = {"aws:username": ("a*b",)}
    assert matches("home/${aws:username}/*", "home/a*b/x", ctx)
    assert not matches("home/${aws:username}/*", "home/axxb/x", ctx)
    assert matches("${aws:missing, 'dflt'}/x", "dflt/x", ctx)
    assert not matches("${aws:missing}/x", "/x", ctx)
    assert matches("a${*}b${?}c${$}", "a*b?c$", ctx)
    assert substitute("u=${aws:username}", ctx) == "u=a*b"
    assert substitute("u=${aws:nope}", ctx) is None
    assert substitute("u=${aws:username}", None) == "u=${aws:username}"


def test_case() -> None:
    assert matches("S3:Get*", "s3:getobject", ignore_case=True)
    assert not matches("S3:Get*", "s3:getobject")
    assert normalize_key("S3:ExistingObjectTag/Team") == "s3:existingobjecttag/Team"
