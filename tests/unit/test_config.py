"""Configuration: sources and precedence, the TOML file, and the deployment-identity checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from onshore.config import ConfigError, Destination, load, resolve, to_environ

IDENTITY = """
partition = "onshore-cn"
region = "cn-north-1"
regions = ["cn-north-1", "cn-northwest-1"]
jurisdiction = "CN"
workers = 3

[[destinations]]
name = "dr-site"
endpoint = "https://s3.ningxia.example.cn"
jurisdiction = "CN"
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "onshore.toml"
    path.write_text(text)
    return str(path)


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load(environ={})
    assert (config.partition, config.region, config.regions) == ("onshore", "local-1", ("local-1",))
    assert config.jurisdiction is None and config.destinations == () and config.config is None


def test_file_values_and_precedence(tmp_path: Path) -> None:
    path = write(tmp_path, IDENTITY)
    config = load(environ={"ONSHORE_CONFIG": path})
    assert config.partition == "onshore-cn"
    assert config.regions == ("cn-north-1", "cn-northwest-1")
    assert config.destinations == (Destination("dr-site", "https://s3.ningxia.example.cn", "CN"),)
    assert config.workers == 3
    # environment beats the file, the command line beats both
    env = {"ONSHORE_CONFIG": path, "ONSHORE_WORKERS": "2"}
    assert load(environ=env).workers == 2
    assert load({"workers": 1}, environ=env).workers == 1
    sources = {r.setting.name: (r.source, r.origin) for r in resolve({"workers": 1}, env)}
    assert sources["partition"] == ("file", path)
    assert sources["workers"] == ("cli", "--workers")
    assert sources["address"] == ("default", "")


def test_implicit_file_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, 'partition = "onshore-fr"\n')
    monkeypatch.chdir(tmp_path)
    assert load(environ={}).partition == "onshore-fr"


def test_worker_environment_reproduces_the_configuration(tmp_path: Path) -> None:
    config = load(environ={"ONSHORE_CONFIG": write(tmp_path, IDENTITY)})
    assert load(environ=to_environ(config)) == config


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus = 1\n", "unknown setting(s) bogus"),
        ("config = 'other.toml'\n", "unknown setting(s) config"),
        ("workers = 'many'\n", "invalid value for workers"),
        ("access_log = 1\n", "invalid value for access_log"),
        ("regions = [1, 2]\n", "invalid value for regions"),
        ("partition = \n", "is not valid TOML"),
        ('jurisdiction = "China"\n', "ISO 3166-1 alpha-2"),
        ('region = "x"\nregions = ["y"]\n', "region 'x' is not in regions"),
        ('partition = "a b"\n', "partition must be"),
        (
            '[[destinations]]\nname = "d"\nendpoint = "https://x"\njurisdiction = "CN"\n',
            "has no jurisdiction",
        ),
        (
            'jurisdiction = "CN"\n[[destinations]]\nname = "d"\nendpoint = "https://x.example.com"'
            '\njurisdiction = "US"\n',
            "outside this deployment's jurisdiction 'CN'",
        ),
        (
            'jurisdiction = "CN"\n[[destinations]]\nname = "d"\nendpoint = "ftp://x"\n'
            'jurisdiction = "CN"\n',
            "must be an http(s) URL",
        ),
        ('[[destinations]]\nname = "d"\n', "each destination needs exactly"),
    ],
)
def test_bad_files_are_refused_with_a_clear_message(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load(environ={"ONSHORE_CONFIG": write(tmp_path, text)})
    assert message in str(err.value)


def test_missing_file_and_bad_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load(environ={"ONSHORE_CONFIG": str(tmp_path / "nope.toml")})
    with pytest.raises(ConfigError, match="from ONSHORE_ACCESS_LOG"):
        load(environ={"ONSHORE_ACCESS_LOG": "maybe", "ONSHORE_CONFIG": write(tmp_path, "")})
    destinations = '[{"name": "d", "endpoint": "https://x.cn", "jurisdiction": "CN"}]'
    config = load(environ={"ONSHORE_JURISDICTION": "CN", "ONSHORE_DESTINATIONS": destinations})
    assert config.destinations[0].name == "d"


def test_secrets_are_masked(tmp_path: Path) -> None:
    env = {"ONSHORE_ROOT_SECRET_KEY": "very-secret", "ONSHORE_CONFIG": write(tmp_path, "")}
    shown = {r.setting.name: r.shown() for r in resolve(environ=env)}
    assert shown["root_secret_key"] == "********"
    assert "very-secret" not in "".join(shown.values())
