"""``onshore admin``: the operator's command line over the admin API.

Human-readable tables by default, ``--json`` for scripts (the API's own JSON). Users are named
``TENANT/USER`` (tenant by name or account id), or ``USER`` with ``--tenant TENANT``. Where it
connects and with which credentials: see :mod:`onshore.cli.adminclient`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from onshore.cli import admin_group, offboarding
from onshore.cli.adminclient import AdminClient, AdminClientError, client_from, segment

Command = Callable[[AdminClient, argparse.Namespace], object]
_SIZE = re.compile(r"^(\d+)\s*([KMGTP]?)(i?B?)?$", re.IGNORECASE)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    admin = commands.add_parser(
        "admin",
        help="administer tenants, users, access keys, policies and quotas (admin API client)",
        description="Administer tenants, users, access keys, inline user policies and quotas "
        "through the admin API of a running server.",
    )
    admin.add_argument("--endpoint", help="admin API URL [ONSHORE_ADMIN_ENDPOINT]")
    admin.add_argument("--root-access-key", help="root access key id [ONSHORE_ROOT_ACCESS_KEY]")
    admin.add_argument("--root-secret-key", help="root secret key [ONSHORE_ROOT_SECRET_KEY]")
    admin.add_argument("--region", help="deployment region [ONSHORE_REGION]")
    admin.add_argument("--data-dir", help="read root-credentials.json from here [ONSHORE_DATA_DIR]")
    admin.add_argument("--json", action="store_true", help="print the API's JSON")
    admin.set_defaults(func=_run, command_func=None)
    groups = admin.add_subparsers(dest="group", metavar="GROUP")
    admin_group.adopt(commands, admin, groups)  # other modules add areas (``release``)

    tenant = groups.add_parser("tenant", help="tenants").add_subparsers(metavar="ACTION")
    _add(tenant, "create", _tenant_create, "create a tenant (prints its admin key once)", "name")
    _add(tenant, "list", _tenant_list, "list tenants")
    _add(tenant, "show", _tenant_show, "show a tenant with quota and usage", "tenant")
    _add(tenant, "delete", _tenant_delete, "delete a tenant that owns no buckets", "tenant")
    offboarding.add_admin_commands(tenant, _add)

    user = groups.add_parser("user", help="users").add_subparsers(metavar="ACTION")
    _add(user, "create", _user_create, "create a user", "tenant", "name")
    _add(user, "list", _user_list, "list a tenant's users", "tenant")
    _add(user, "delete", _user_delete, "delete a user (no keys or policies left)", "user")

    key = groups.add_parser("key", help="access keys").add_subparsers(metavar="ACTION")
    create = _add(key, "create", _key_create, "create (or import) an access key", "user")
    create.add_argument("--access-key", help="import this access key id (with --secret-key)")
    create.add_argument("--secret-key", help="the imported key's secret")
    _add(key, "list", _key_list, "list a user's access keys", "user")
    _add(key, "disable", _key_status("Inactive"), "disable an access key", "access_key")
    _add(key, "enable", _key_status("Active"), "enable an access key", "access_key")
    _add(key, "delete", _key_delete, "delete an access key", "access_key")

    policy = groups.add_parser("policy", help="inline user policies").add_subparsers(
        metavar="ACTION"
    )
    _add(policy, "attach", _policy_attach, "attach (or replace) a policy from a JSON file "
         "('-' for stdin)", "user", "name", "file")  # fmt: skip
    _add(policy, "list", _policy_list, "list a user's policies", "user")
    _add(policy, "show", _policy_show, "print a policy document", "user", "name")
    _add(policy, "detach", _policy_detach, "delete a policy", "user", "name")

    quota = groups.add_parser("quota", help="tenant quotas").add_subparsers(metavar="ACTION")
    qset = _add(quota, "set", _quota_set, "set quotas ('none' = unlimited)", "tenant")
    for name in ("bytes", "objects", "buckets"):
        qset.add_argument(f"--max-{name}", metavar="N", help=f"maximum {name} (or 'none')")
    _add(quota, "show", _quota_show, "show quotas and usage", "tenant")

    access = groups.add_parser(
        "access", help="the licensor's support access requests (security administrator)"
    ).add_subparsers(metavar="ACTION")
    _add(access, "submit", _access_submit, "submit a signed access request file", "file")
    _add(access, "list", _access_list, "list access requests and their state")
    _add(access, "approve", _access_approve,
         "approve a request (id, or a request file to submit first): prints the time-boxed "
         "credentials once", "request")  # fmt: skip
    _add(access, "deny", _access_deny, "deny a pending request", "request")
    _add(access, "revoke", _access_revoke, "end an approved access now", "request")


def _add(
    group: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    func: Command,
    help_text: str,
    *args: str,
) -> argparse.ArgumentParser:
    parser = group.add_parser(
        name, help=help_text, description=help_text[:1].upper() + help_text[1:] + "."
    )
    for arg in args:
        parser.add_argument(arg, metavar=arg.upper())
    if "user" in args:
        parser.add_argument("--tenant", help="the user's tenant, if USER has no TENANT/ prefix")
    parser.set_defaults(command_func=func)
    return parser


def _run(args: argparse.Namespace) -> int:
    func: Command | None = args.command_func
    if func is None:
        print("onshore admin: choose a command (see onshore admin --help)", file=sys.stderr)
        return 2
    try:
        client = client_from(
            endpoint=args.endpoint,
            access_key=args.root_access_key,
            secret_key=args.root_secret_key,
            region=args.region,
            data_dir=args.data_dir,
        )
        result = func(client, args)
    except AdminClientError as error:
        print(f"onshore admin: {error.code}: {error.message}", file=sys.stderr)
        return 1
    except ValueError as error:
        print(f"onshore admin: {error}", file=sys.stderr)
        return 2
    if args.json:
        if result is not None:
            print(json.dumps(result, indent=2))
    else:
        _print_human(args, result)
    return 0


# --- commands -----------------------------------------------------------------------------------
def _user_path(args: argparse.Namespace) -> str:
    ref: str = args.user
    tenant, slash, user = ref.partition("/")
    if not slash:
        if not args.tenant:
            raise ValueError(f"name the user as TENANT/USER or add --tenant (got {ref!r})")
        tenant, user = args.tenant, ref
    return f"/tenants/{segment(tenant)}/users/{segment(user)}"


def _tenant_create(c: AdminClient, a: argparse.Namespace) -> object:
    return c.request("POST", "/tenants", {"name": a.name})


def _tenant_list(c: AdminClient, a: argparse.Namespace) -> object:
    return c.request("GET", "/tenants")


def _tenant_show(c: AdminClient, a: argparse.Namespace) -> object:
    return c.request("GET", f"/tenants/{segment(a.tenant)}")


def _tenant_delete(c: AdminClient, a: argparse.Namespace) -> object:
    return c.request("DELETE", f"/tenants/{segment(a.tenant)}")


def _user_create(c: AdminClient, a: argparse.Namespace) -> object:
    return c.request("POST", f"/tenants/{segment(a.tenant)}/users", {"name": a.name})


def _user_list(c: AdminClient, a: argparse.Namespace) -> object:
    return c.request("GET", f"/tenants/{segment(a.tenant)}/users")


def _user_delete(c: AdminClient, a: argparse.Namespace) -> object:
    return c.request("DELETE", _user_path(a))


def _key_create(c: AdminClient, a: argparse.Namespace) -> object:
    body: dict[str, str] = {}
    if a.access_key or a.secret_key:
        if not (a.access_key and a.secret_key):
            raise ValueError("importing a key needs both --access-key and --secret-key")
        body = {"access_key_id": a.access_key, "secret_access_key": a.secret_key}
    return c.request("POST", _user_path(a) + "/keys", body)


def _key_list(c: AdminClient, a: argparse.Namespace) -> object:
    return c.request("GET", _user_path(a) + "/keys")


def _key_status(status: str) -> Command:
    def command(c: AdminClient, a: argparse.Namespace) -> object:
        return c.request("PATCH", f"/keys/{segment(a.access_key)}", {"status": status})

    return command


def _key_delete(c: AdminClient, a: argparse.Namespace) -> object:
    return c.request("DELETE", f"/keys/{segment(a.access_key)}")


def _policy_attach(c: AdminClient, a: argparse.Namespace) -> object:
    try:
        document = sys.stdin.read() if a.file == "-" else Path(a.file).read_text(encoding="utf-8")
    except OSError as error:
        raise ValueError(f"cannot read {a.file}: {error.strerror}") from None
    path = f"{_user_path(a)}/policies/{segment(a.name)}"
    return c.request("PUT", path, raw=document.encode("utf-8"))


def _policy_list(c: AdminClient, a: argparse.Namespace) -> object:
    return c.request("GET", _user_path(a) + "/policies")


def _policy_show(c: AdminClient, a: argparse.Namespace) -> object:
    return c.request("GET", f"{_user_path(a)}/policies/{segment(a.name)}")


def _policy_detach(c: AdminClient, a: argparse.Namespace) -> object:
    return c.request("DELETE", f"{_user_path(a)}/policies/{segment(a.name)}")


def parse_size(text: str) -> int | None:
    """``none``/``unlimited`` → None; ``1000``, ``10G``, ``10GiB``, ``512M`` → bytes (binary
    multiples: K = 1024)."""
    if text.strip().lower() in ("none", "unlimited", "null"):
        return None
    match = _SIZE.match(text.strip())
    if not match:
        raise ValueError(f"not a size: {text!r} (use e.g. 1000, 512M, 10GiB or none)")
    scale: int = 1024 ** " KMGTP".index(match[2].upper() or " ")
    return int(match[1]) * scale


def _quota_set(c: AdminClient, a: argparse.Namespace) -> object:
    body: dict[str, int | None] = {}
    for name in ("bytes", "objects", "buckets"):
        value = getattr(a, f"max_{name}")
        if value is not None:
            body[f"max_{name}"] = parse_size(value)
    if not body:
        raise ValueError("give at least one of --max-bytes, --max-objects, --max-buckets")
    return c.request("PUT", f"/tenants/{segment(a.tenant)}/quota", body)


def _quota_show(c: AdminClient, a: argparse.Namespace) -> object:
    return c.request("GET", f"/tenants/{segment(a.tenant)}/quota")


def _access_submit(c: AdminClient, a: argparse.Namespace) -> object:
    return c.request("POST", "/support/requests", raw=Path(a.file).read_bytes())


def _access_list(c: AdminClient, a: argparse.Namespace) -> object:
    return c.request("GET", "/support/requests")


def _request_id(c: AdminClient, ref: str) -> str:
    """A request id, or the id of a request file, submitted first (idempotent)."""
    if Path(ref).is_file():
        submitted = c.request("POST", "/support/requests", raw=Path(ref).read_bytes())
        assert isinstance(submitted, dict)
        return str(submitted["request_id"])
    return ref


def _access_approve(c: AdminClient, a: argparse.Namespace) -> object:
    return c.request("POST", f"/support/requests/{segment(_request_id(c, a.request))}/approve")


def _access_deny(c: AdminClient, a: argparse.Namespace) -> object:
    return c.request("POST", f"/support/requests/{segment(_request_id(c, a.request))}/deny")


def _access_revoke(c: AdminClient, a: argparse.Namespace) -> object:
    return c.request("POST", f"/support/requests/{segment(a.request)}/revoke")


# --- human output -------------------------------------------------------------------------------
def table(rows: Sequence[dict[str, object]], columns: Sequence[str]) -> str:
    cells = [[_cell(row.get(col)) for col in columns] for row in rows]
    widths = [max([len(col)] + [len(r[i]) for r in cells]) for i, col in enumerate(columns)]
    lines = ["  ".join(col.upper().ljust(w) for col, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _print_human(args: argparse.Namespace, result: object) -> None:
    if result is None:
        print("done")
        return
    assert isinstance(result, dict)
    if "tenants" in result:
        print(table(result["tenants"], ("account_id", "name", "created")))
    elif "users" in result:
        print(table(result["users"], ("name", "user_id", "admin", "arn", "created")))
    elif "access_keys" in result:
        print(table(result["access_keys"], ("access_key_id", "user_name", "status", "created")))
    elif "policies" in result:
        print("\n".join(result["policies"]) if result["policies"] else "(no policies)")
    elif "document" in result:
        print(json.dumps(result["document"], indent=2))
    elif "max_bytes" in result:
        _print_quota(result)
    elif "admin_user" in result:
        key = result["access_key"]
        print(f"tenant {result['name']} created, account id {result['account_id']}")
        print(f"admin user: {result['admin_user']['arn']}")
        if key is None:
            print("No access key yet: a security administrator issues the admin user's first key.")
        else:
            _print_secret(key)
    elif "requests" in result:
        print(table(result["requests"], ("request_id", "licensor", "scope", "state", "expires")))
    elif "request_id" in result:
        print(
            f"access request {result['request_id']} from {result['licensor']}: "
            f"{result['state']} (scope {result['scope']}: {', '.join(result['operations'])})"
        )
        print(f"reason: {result['reason']}")
        if result.get("secret_access_key"):
            print(f"access key id:     {result['access_key_id']}  (expires {result['expires']})")
            print(f"secret access key: {result['secret_access_key']}")
            print(
                "Give these to the licensor's engineer; they stop working at expiry or on "
                "`onshore admin access revoke`."
            )
    elif "secret_access_key" in result:
        _print_secret(result)
    elif "quota" in result:
        print(f"tenant {result['name']}, account id {result['account_id']}, "
              f"created {result['created']}")  # fmt: skip
        _print_quota(result["quota"])
    elif "access_key_id" in result:
        print(table([result], ("access_key_id", "user_name", "status", "created")))
    elif "user_id" in result:
        print(table([result], ("name", "user_id", "admin", "arn", "created")))
    else:
        print(json.dumps(result, indent=2))


def _print_secret(key: dict[str, object]) -> None:
    print(f"access key id:     {key['access_key_id']}  (user {key['user_name']})")
    print(f"secret access key: {key['secret_access_key']}")
    print("The secret is shown only now: store it safely.")


def _print_quota(quota: dict[str, object]) -> None:
    usage = quota.get("usage")
    assert isinstance(usage, dict)
    rows = [
        {"quota": name, "limit": quota[f"max_{name}"], "used": usage[name]}
        for name in ("bytes", "objects", "buckets")
    ]
    print(table(rows, ("quota", "limit", "used")))
