"""``onshore audit search --endpoint URL``: the search through the admin API.

The operator's audit administrator signs ``GET /audit/events`` with its own key (``--access-key``
/ ``--secret-key``, or the environment of :mod:`onshore.cli.adminclient`); with ``--own``, a
tenant's admin user signs ``GET /audit/tenant-events`` and gets its own account's records.
Without ``--endpoint``, ``onshore audit search`` reads the data directory (on the server host).
"""

from __future__ import annotations

import argparse
from urllib.parse import quote

from onshore.cli.adminclient import AdminClientError, client_from

__all__ = ["add_arguments", "search_remote"]


def add_arguments(search: argparse.ArgumentParser) -> None:
    search.add_argument(
        "--endpoint",
        metavar="URL",
        help="Search through the admin API at URL (e.g. http://127.0.0.1:9001) instead of "
        "reading the data directory. [ONSHORE_ADMIN_ENDPOINT]",
    )
    search.add_argument(
        "--access-key", help="With --endpoint: the signing key id [ONSHORE_ADMIN_ACCESS_KEY]"
    )
    search.add_argument(
        "--secret-key", help="With --endpoint: its secret [ONSHORE_ADMIN_SECRET_KEY]"
    )
    search.add_argument("--region", help="With --endpoint: the deployment's region.")
    search.add_argument(
        "--own",
        action="store_true",
        help="With --endpoint: a tenant admin's own account's records (signed by that tenant "
        "admin's key; --tenant is then ignored).",
    )


def search_remote(args: argparse.Namespace) -> list[tuple[int, str]]:
    """``(seq, record text)`` of the matching records; AdminClientError on failure."""
    client = client_from(
        endpoint=args.endpoint,
        access_key=args.access_key,
        secret_key=args.secret_key,
        region=args.region,
        data_dir=args.data_dir,
    )
    query = {
        "from": args.start,
        "to": args.end,
        "tenant": None if args.own else args.tenant,
        "user": args.user,
        "event": args.operation,
        "bucket": args.bucket,
        "key_prefix": args.key_prefix,
        "error_code": args.error_code,
        "limit": str(args.limit),
    }
    text = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(query.items())
        if v is not None
    )
    path = "/audit/tenant-events" if args.own else "/audit/events"
    answer = client.request("GET", f"{path}?{text}")
    if not isinstance(answer, dict) or not isinstance(answer.get("events"), list):
        raise AdminClientError(0, "BadAnswer", "the admin API's answer has no events")
    return [(int(e["seq"]), str(e["record"])) for e in answer["events"]]
