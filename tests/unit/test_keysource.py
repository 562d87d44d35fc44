"""Which root key a deployment uses (``root_key_service``), and the checks made before any
network call: settings that cannot work, a local key left behind, a token never shown."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from onshore.config import Config, load, resolve
from onshore.service.keysource import (
    check_no_local_key,
    has_root_key,
    local_key,
    root_key_for,
    transit_settings,
)
from onshore.service.rootkey import LocalRootKey, RootKeyError
from tests.api.server import client_env


def config_for(tmp_path: Path, **env: str) -> Config:
    base = {"ONSHORE_DATA_DIR": str(tmp_path / "data"), "ONSHORE_CONFIG": str(tmp_path / "x.toml")}
    (tmp_path / "x.toml").write_text("")
    return load(environ={**base, **env})


def transit(tmp_path: Path, **env: str) -> Config:
    defaults = {
        "ONSHORE_ROOT_KEY_SERVICE": "transit",
        "ONSHORE_TRANSIT_ADDRESS": "https://127.0.0.1:9",  # never reached: refused before
        "ONSHORE_TRANSIT_TOKEN": "s.secret-token",
    }
    return config_for(tmp_path, **{**defaults, **env})


def test_local_is_the_default_and_creates_its_key(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    assert config.root_key_service == "local"
    assert not has_root_key(config, environ={})
    (tmp_path / "data").mkdir()
    root = root_key_for(config, environ={})
    assert isinstance(root, LocalRootKey)
    assert (tmp_path / "data" / "root.key").exists()
    assert has_root_key(config, environ={})


def test_settings_that_cannot_work_are_refused(tmp_path: Path) -> None:
    cases = {
        "root_key_service must be one of local, transit": {"ONSHORE_ROOT_KEY_SERVICE": "hsm"},
        "transit_address is not set": {"ONSHORE_TRANSIT_ADDRESS": ""},
        "no token": {"ONSHORE_TRANSIT_TOKEN": ""},
        "transit_mount is not a mount path": {"ONSHORE_TRANSIT_MOUNT": "../sys"},
        "transit_key is not a Transit key name": {"ONSHORE_TRANSIT_KEY": "a/b"},
        "transit_timeout must be positive": {"ONSHORE_TRANSIT_TIMEOUT": "0"},
        "transit_cache_seconds must be 0 or more": {"ONSHORE_TRANSIT_CACHE_SECONDS": "-1"},
    }
    for message, env in cases.items():
        config = transit(tmp_path, **env)
        with pytest.raises(RootKeyError, match=message):
            root_key_for(config, environ={})
    settings = transit_settings(transit(tmp_path, ONSHORE_TRANSIT_MOUNT="kv/transit-cn"))
    assert settings.key_path == "kv/transit-cn/keys/onshore"
    assert "secret-token" not in repr(settings)


def test_a_transit_deployment_with_a_local_key_left_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    check_no_local_key(data, environ={})
    assert local_key(data, environ={}) is None
    key = os.urandom(32)
    encoded = base64.b64encode(key).decode()
    with pytest.raises(RootKeyError, match="ONSHORE_ROOT_KEY is set"):
        check_no_local_key(data, environ={"ONSHORE_ROOT_KEY": encoded})
    found = local_key(data, environ={"ONSHORE_ROOT_KEY": encoded})
    assert found is not None and found.fingerprint == LocalRootKey(key).fingerprint
    (data / "root.key").write_text(encoded)
    (data / "root.key").chmod(0o600)
    with pytest.raises(RootKeyError, match="rotate-root"):
        check_no_local_key(data, environ={})
    with pytest.raises(RootKeyError, match="rotate-root"):  # before any network call
        root_key_for(transit(tmp_path), environ={})
    assert local_key(data, environ={}) is not None


def test_the_token_is_masked_and_has_no_option(tmp_path: Path) -> None:
    env = {"ONSHORE_TRANSIT_TOKEN": "s.very-secret", "ONSHORE_CONFIG": str(tmp_path / "x.toml")}
    (tmp_path / "x.toml").write_text("")
    shown = {r.setting.name: r.shown() for r in resolve(environ=env)}
    assert shown["transit_token"] == "********"
    assert "s.very-secret" not in "".join(shown.values())
    printed = subprocess.run(
        [sys.executable, "-m", "onshore", "config", "show"],
        env=client_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert printed.returncode == 0, printed.stderr
    assert "transit_token" in printed.stdout and "s.very-secret" not in printed.stdout
