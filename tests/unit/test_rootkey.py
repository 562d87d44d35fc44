"""The operator root key: sources, file permissions, wrapping bound to its context."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from onshore.service.rootkey import LocalRootKey, RootKeyError, UnwrapError, load_root_key


def test_generated_once_with_mode_0600_and_reused(tmp_path: Path) -> None:
    first = load_root_key(tmp_path, environ={})
    assert (tmp_path / "root.key").stat().st_mode & 0o777 == 0o600
    again = load_root_key(tmp_path, environ={})
    assert first.fingerprint == again.fingerprint
    assert [p.name for p in tmp_path.iterdir()] == ["root.key"]


def test_environment_wins_and_is_validated(tmp_path: Path) -> None:
    key = os.urandom(32)
    from_env = load_root_key(tmp_path, environ={"ONSHORE_ROOT_KEY": base64.b64encode(key).decode()})
    assert from_env.fingerprint == LocalRootKey(key).fingerprint
    assert not (tmp_path / "root.key").exists()
    with pytest.raises(RootKeyError, match="base64"):
        load_root_key(tmp_path, environ={"ONSHORE_ROOT_KEY": "not base64!"})
    with pytest.raises(RootKeyError, match="32 bytes"):
        load_root_key(tmp_path, environ={"ONSHORE_ROOT_KEY": base64.b64encode(b"short").decode()})


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "operator.key"
    path.write_text(base64.b64encode(os.urandom(32)).decode())
    path.chmod(0o644)
    with pytest.raises(RootKeyError, match="chmod 600"):
        load_root_key(tmp_path, environ={"ONSHORE_ROOT_KEY_FILE": str(path)})
    path.chmod(0o600)
    assert load_root_key(tmp_path, environ={"ONSHORE_ROOT_KEY_FILE": str(path)})


def test_wrap_is_bound_to_context_key_and_bytes() -> None:
    root = LocalRootKey(os.urandom(32))
    blob = root.wrap(b"tenant key", context=b"tenant:1")
    assert b"tenant key" not in blob
    assert root.unwrap(blob, context=b"tenant:1") == b"tenant key"
    with pytest.raises(UnwrapError):
        root.unwrap(blob, context=b"tenant:2")
    with pytest.raises(UnwrapError, match="another root key"):
        LocalRootKey(os.urandom(32)).unwrap(blob, context=b"tenant:1")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(UnwrapError):
        root.unwrap(tampered, context=b"tenant:1")
    assert "tenant key" not in repr(root)
