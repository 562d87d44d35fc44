"""The admin API's offboarding endpoints (system administrator role; ``docs/offboarding.md``).

``POST /tenants/{tenant}/offboarding`` starts the notice period, ``GET`` shows the state,
``DELETE`` cancels during the notice, ``POST /tenants/{tenant}/offboarding/execute`` deletes
everything of the tenant once the notice is over (``{"force": true}`` cuts it short) and
returns the signed deletion certificate.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from onshore.domain.iam import ValidationError
from onshore.service.iam import IamService
from onshore.service.offboarding import Offboarding

if TYPE_CHECKING:
    from onshore.adminapi.routes import Call, Handler

Result = tuple[int, object]


def _service(call: Call) -> Offboarding:
    if call.offboarding is None:
        raise ValidationError("Offboarding is not available on this server.")
    return call.offboarding


def _flag(call: Call, name: str) -> bool:
    value = call.json().get(name, False)
    if not isinstance(value, bool):
        raise ValidationError(f"'{name}' must be true or false.")
    return value


async def request_offboarding(iam: IamService, call: Call) -> Result:
    body = call.json()
    unknown = set(body) - {"notice_days"}
    if unknown:
        raise ValidationError(f"Unknown field(s): {', '.join(sorted(unknown))}.")
    days = body.get("notice_days")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int)):
        raise ValidationError("'notice_days' must be a whole number of days.")
    service = _service(call)
    status = await iam.blocking(service.request, call.params["tenant"], days)
    return 201, status.as_json()


async def get_offboarding(iam: IamService, call: Call) -> Result:
    status = await iam.blocking(_service(call).status, call.params["tenant"])
    return 200, {**status.as_json(), "certificate": _certificate(status.certificate)}


async def cancel_offboarding(iam: IamService, call: Call) -> Result:
    status = await iam.blocking(_service(call).cancel, call.params["tenant"])
    return 200, status.as_json()


async def execute_offboarding(iam: IamService, call: Call) -> Result:
    force = _flag(call, "force")
    service = _service(call)
    status = await iam.blocking(lambda: service.execute(call.params["tenant"], force=force))
    return 200, {**status.as_json(), "certificate": _certificate(status.certificate)}


def _certificate(text: str | None) -> object:
    return None if text is None else json.loads(text)


_O = "/tenants/{tenant}/offboarding"
#: (method, path, handler, summary, body, status) — made into Routes by adminapi/routes.py.
ROUTES: tuple[tuple[str, str, Handler, str, str, int], ...] = (
    ("POST", _O, request_offboarding, "Request a tenant's offboarding: the notice period "
     "starts (reads allowed, writes refused).", '{"notice_days": 21} (optional)', 201),
    ("GET", _O, get_offboarding, "Get a tenant's offboarding state (and its deletion "
     "certificate once offboarded).", "", 200),
    ("DELETE", _O, cancel_offboarding, "Cancel an offboarding during its notice period.", "",
     200),
    ("POST", _O + "/execute", execute_offboarding, "Execute the offboarding after the notice "
     "period (or before it with force): destroy the tenant's keys, delete its data and "
     "identities, return the signed deletion certificate.", '{"force": false}', 200),
)  # fmt: skip
