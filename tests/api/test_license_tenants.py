"""The license's ``max_tenants`` entitlement: tenant creation stops at the limit with a clear
error, and an offboarded tenant frees its place."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from onshore.cli.adminclient import AdminClientError
from onshore.service.licensing import license as lic_mod
from tests.api.iam_support import admin_client, new_tenant
from tests.api.server import REGION, ServerProcess, client_env
from tests.licensing_kit import Licensor

LICENSOR = Licensor()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("max-tenants") / "data"
    env = {
        "ONSHORE_LICENSOR_PUBLIC_KEYS": LICENSOR.public_text,
        "ONSHORE_LICENSE_REFRESH_SECONDS": "0.2",
        "ONSHORE_DATA_DIR": str(data),
    }
    proc = ServerProcess(data, env=env).start()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "onshore", *args], env=client_env(**env),
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    request = json.loads(cli("license", "request").stdout)
    now = datetime.now(UTC)
    license_file = data.parent / "license.json"
    license_file.write_text(
        LICENSOR.issue(
            request["deployment_key"],
            partition="onshore",
            regions=(REGION,),
            not_before=now - timedelta(days=1),
            not_after=now + timedelta(days=365),
            entitlements=lic_mod.Entitlements(("s3",), None, 2),
        )
    )
    installed = cli("license", "install", str(license_file))
    assert installed.returncode == 0, installed.stderr
    time.sleep(1.0)  # the server's next license refresh (every 0.2 s here) sees it
    yield proc
    proc.cleanup()


def test_tenants_stop_at_the_licensed_number(server: ServerProcess) -> None:
    admin = admin_client(server)
    first = new_tenant(admin, "one")
    new_tenant(admin, "two")
    with pytest.raises(AdminClientError) as refused:
        new_tenant(admin, "three")
    assert refused.value.status == 403 and refused.value.code == "LimitExceeded"
    assert "allows 2 tenants" in refused.value.message
    # An offboarded tenant no longer counts.
    admin.request("POST", f"/tenants/{first.account_id}/offboarding", {"notice_days": 1})
    admin.request("POST", f"/tenants/{first.account_id}/offboarding/execute", {"force": True})
    new_tenant(admin, "three")
