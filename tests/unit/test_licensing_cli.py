"""The ``onshore licensor``, ``onshore license`` and ``onshore admin release`` commands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from onshore.cli.admin_group import admin_areas
from onshore.cli.main import build_parser, main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def licensor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    key = tmp_path / "licensor.pem"
    code, out, _ = run(capsys, "licensor", "keygen", "--out", str(key))
    assert code == 0 and out.startswith("ed25519:")
    assert key.stat().st_mode & 0o077 == 0
    return key, out.strip()


@pytest.fixture
def deployment(tmp_path: Path, licensor: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    for name, value in {
        "ONSHORE_DATA_DIR": str(data),
        "ONSHORE_LICENSOR_PUBLIC_KEYS": licensor[1],
        "ONSHORE_PARTITION": "onshore-fr",
        "ONSHORE_REGION": "fr-central-1",
    }.items():
        monkeypatch.setenv(name, value)
    return data


def test_keygen_never_overwrites(
    capsys: pytest.CaptureFixture[str], licensor: tuple[Path, str]
) -> None:
    code, _, err = run(capsys, "licensor", "keygen", "--out", str(licensor[0]))
    assert code == 2 and "not overwriting" in err


SPEC = """
license_id = "LIC-TOML-1"
licensor = "Technology Owner Ltd"
operator = "Operateur SA"
partition = "onshore-fr"
jurisdiction = "FR"
regions = ["fr-central-1"]
not_before = 2026-01-01T00:00:00Z
not_after = 2099-01-01T00:00:00Z
grace_days = 15
max_release = "0.1"

[entitlements]
features = ["s3", "versioning"]
max_stored_bytes = 1000000000
max_tenants = 10
"""


def test_issue_from_toml_install_status_and_report(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    licensor: tuple[Path, str],
    deployment: Path,
) -> None:
    code, out, _ = run(capsys, "license", "request")
    assert code == 0
    request = json.loads(out)
    assert request["partition"] == "onshore-fr" and request["deployment_id"].startswith("dep-")
    spec = tmp_path / "spec.toml"
    # TOML: top-level keys must come before tables.
    spec.write_text(f'deployment_key = "{request["deployment_key"]}"\n' + SPEC)
    lic = tmp_path / "license.json"
    code, _, err = run(
        capsys,
        "licensor",
        "issue",
        "--key",
        str(licensor[0]),
        "--spec",
        str(spec),
        "--out",
        str(lic),
    )
    assert code == 0, err
    code, out, _ = run(capsys, "licensor", "inspect", str(lic), "--public-key", licensor[1])
    assert code == 0 and "signature: valid" in out and '"max_tenants": 10' in out
    code, out, _ = run(capsys, "license", "install", str(lic))
    assert code == 0 and "state: valid" in out
    code, out, _ = run(capsys, "license", "status", "--json")
    status = json.loads(out)
    assert status["state"] == "valid" and status["license_id"] == "LIC-TOML-1"
    assert status["max_stored_bytes"] == 1000000000
    report = tmp_path / "r1.json"
    code, out, err = run(capsys, "license", "report", "--month", "2026-01", "--out", str(report))
    assert code == 0, err
    code, out, err = run(
        capsys,
        "licensor",
        "verify-report",
        str(report),
        "--license",
        str(lic),
        "--public-key",
        licensor[1],
    )
    assert code == 0, err
    assert "report verified" in out and "LIC-TOML-1" in out
    report2 = tmp_path / "r2.json"
    assert run(capsys, "license", "report", "--month", "2026-02", "--out", str(report2))[0] == 0
    report3 = tmp_path / "r3.json"
    assert run(capsys, "license", "report", "--month", "2026-03", "--out", str(report3))[0] == 0
    code, _, err = run(
        capsys,
        "licensor",
        "verify-report",
        str(report3),
        "--license",
        str(lic),
        "--public-key",
        licensor[1],
        "--previous",
        str(report),
    )
    assert code == 1 and "report rejected: gap" in err
    code, _, err = run(capsys, "license", "report", "--month", "2026-05")
    assert code == 1 and "generate 2026-04 first" in err


def test_issue_rejects_unknown_spec_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], licensor: tuple[Path, str]
) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text("unlimited_storage = true\n" + SPEC)
    code, _, err = run(capsys, "licensor", "issue", "--key", str(licensor[0]), "--spec", str(spec))
    assert code == 2 and "unknown license field(s): unlimited_storage" in err


def test_install_refuses_a_license_for_another_deployment(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    licensor: tuple[Path, str],
    deployment: Path,
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from onshore.service.licensing import signing

    stranger = signing.public_key_text(Ed25519PrivateKey.generate().public_key())
    lic = tmp_path / "license.json"
    code, _, err = run(
        capsys,
        "licensor",
        "issue",
        "--key",
        str(licensor[0]),
        "--out",
        str(lic),
        "--license-id",
        "L",
        "--licensor",
        "T",
        "--operator",
        "O",
        "--partition",
        "onshore-fr",
        "--jurisdiction",
        "FR",
        "--region",
        "fr-central-1",
        "--deployment-key",
        stranger,
        "--days",
        "30",
        "--max-release",
        "1",
    )
    assert code == 0, err
    code, _, err = run(capsys, "license", "install", str(lic))
    assert code == 1 and "issued for another deployment" in err
    code, out, _ = run(capsys, "license", "status")
    assert "unlicensed" in out


def test_signed_release_verifies_and_tampering_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    licensor: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wheel = tmp_path / "onshore-0.2.0-py3-none-any.whl"
    wheel.write_bytes(b"PK\x03\x04 pretend wheel" * 1000)
    code, out, _ = run(capsys, "licensor", "sign-release", str(wheel), "--key", str(licensor[0]))
    assert code == 0 and Path(str(wheel) + ".sig").exists()
    monkeypatch.setenv("ONSHORE_LICENSOR_PUBLIC_KEYS", licensor[1])
    code, out, _ = run(capsys, "admin", "release", "verify", str(wheel))
    assert code == 0 and "signature valid" in out
    wheel.write_bytes(wheel.read_bytes() + b"backdoor")
    code, _, err = run(capsys, "admin", "release", "verify", str(wheel))
    assert code == 1 and "not the file that was signed" in err
    other = tmp_path / "other.pem"
    run(capsys, "licensor", "keygen", "--out", str(other))
    code, _, err = run(
        capsys,
        "admin",
        "release",
        "verify",
        str(wheel),
        "--licensor-public-keys",
        Path(str(other) + ".pub").read_text().strip(),
    )
    assert code == 1 and "does not verify against any trusted key" in err
    monkeypatch.delenv("ONSHORE_LICENSOR_PUBLIC_KEYS")
    code, _, err = run(capsys, "admin", "release", "verify", str(wheel))
    assert code == 2 and "no licensor public key is pinned" in err


def test_admin_areas_from_different_modules_share_one_group() -> None:
    parser = argparse.ArgumentParser(prog="onshore")
    commands = parser.add_subparsers(dest="command")
    admin_areas(commands).add_parser("release")
    admin_areas(commands).add_parser("tenant")
    areas = admin_areas(commands)
    assert sorted(areas.choices) == ["release", "tenant"]
    assert "admin" in build_parser().format_help()
